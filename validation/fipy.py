"""Study 10: our finite-volume solver and the FiPy formulation agree to O(h^2).

Runs the study alone, exactly as ``fpsolver validate --only fipy`` does:

    python validation/fipy.py [--quick] [--out DIR]

and writes DIR/fipy.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/fipy).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("fipy"))
