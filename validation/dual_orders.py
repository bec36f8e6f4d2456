"""Dual-flow study 'dual_orders' (MATH.md section 10; fpsolver/studies/dual_modes.py).

Runs the study alone, exactly as ``fpsolver validate --only dual_orders`` does:

    python validation/dual_orders.py [--quick] [--out DIR]

and writes DIR/dual_orders.png, .pdf, DIR/report.md and DIR/summary.json (default DIR: validation-report/dual_orders).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("dual_orders"))
