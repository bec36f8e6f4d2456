"""Study 8: the kl preset against the exact Ornstein-Uhlenbeck Gaussians, 1D and 2D.

Runs the study alone, exactly as ``fpsolver validate --only exact_ou`` does:

    python validation/exact_ou.py [--quick] [--out DIR]

and writes DIR/exact_ou.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/exact_ou).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("exact_ou"))
