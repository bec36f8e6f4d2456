"""Study 6: interacting particles vs the PDE with the default (velocity-optimal) bandwidth: grad rho_hat error vs N (-2/7), W1 vs N, W1 vs b.

Runs the study alone, exactly as ``fpsolver validate --only interacting`` does:

    python validation/interacting.py [--quick] [--out DIR]

and writes DIR/interacting.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/interacting).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("interacting"))
