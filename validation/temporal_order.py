"""Study 2: temporal order, backward Euler (expected 1) and BDF2 (expected 2).

Runs the study alone, exactly as ``fpsolver validate --only temporal_order`` does:

    python validation/temporal_order.py [--quick] [--out DIR]

and writes DIR/temporal_order.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/temporal_order).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("temporal_order"))
