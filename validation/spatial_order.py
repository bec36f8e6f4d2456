"""Study 1: spatial order of the finite-volume solver (manufactured solution and fine-grid reference; expected 2).

Runs the study alone, exactly as ``fpsolver validate --only spatial_order`` does:

    python validation/spatial_order.py [--quick] [--out DIR]

and writes DIR/spatial_order.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/spatial_order).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("spatial_order"))
