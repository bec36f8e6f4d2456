"""Study 7: long-time convergence to rho_d at ln(1 + h beta'(1) lambda_1)/h, lambda_1 the discrete spectral gap.

Runs the study alone, exactly as ``fpsolver validate --only long_time`` does:

    python validation/long_time.py [--quick] [--out DIR]

and writes DIR/long_time.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/long_time).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("long_time"))
