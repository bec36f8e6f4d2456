"""External exact solutions: Barenblatt (chi2, uniform target, 1D and 2D) and the kl wall solution.

Runs the study alone, exactly as ``fpsolver validate --only external_exact`` does:

    python validation/external_exact.py [--quick] [--out DIR]

and writes DIR/external_exact.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/external_exact).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("external_exact"))
