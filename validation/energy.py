"""Study 4: energy dissipation, mass conservation and positivity for every flow preset.

Runs the study alone, exactly as ``fpsolver validate --only energy`` does:

    python validation/energy.py [--quick] [--out DIR]

and writes DIR/energy.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/energy).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("energy"))
