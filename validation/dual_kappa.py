"""Dual-flow study 'dual_kappa' (MATH.md section 10; fpsolver/studies/dual.py).

Runs the study alone, exactly as ``fpsolver validate --only dual_kappa`` does:

    python validation/dual_kappa.py [--quick] [--out DIR]

and writes DIR/dual_kappa.png, .pdf, DIR/report.md and DIR/summary.json (default DIR: validation-report/dual_kappa).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("dual_kappa"))
