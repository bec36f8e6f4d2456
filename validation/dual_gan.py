"""Dual-flow study 'dual_gan' (MATH.md section 10; fpsolver/studies/dual.py).

Runs the study alone, exactly as ``fpsolver validate --only dual_gan`` does:

    python validation/dual_gan.py [--quick] [--out DIR]

and writes DIR/dual_gan.png, .pdf, DIR/report.md and DIR/summary.json (default DIR: validation-report/dual_gan).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("dual_gan"))
