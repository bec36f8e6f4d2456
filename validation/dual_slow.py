"""Dual-flow study 'dual_slow' (MATH.md section 10; fpsolver/studies/dual_modes.py).

Runs the study alone, exactly as ``fpsolver validate --only dual_slow`` does:

    python validation/dual_slow.py [--quick] [--out DIR]

and writes DIR/dual_slow.png, .pdf, DIR/report.md and DIR/summary.json (default DIR: validation-report/dual_slow).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("dual_slow"))
