"""Study 10: ours and the FiPy formulation, each against exact solutions; their difference O(h^2).

Runs the study alone, exactly as ``fpsolver validate --only fipy`` does:

    python validation/fipy.py [--quick] [--out DIR]

and writes DIR/fipy.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/fipy).
"""
import os
import sys

# Python puts this script's folder first on the path, and this file is called fipy.py:
# without this, the backend's `import fipy` would import this script instead of FiPy.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from fpsolver.validate import main_single  # noqa: E402

if __name__ == "__main__":
    sys.exit(main_single("fipy"))
