"""MMD flow on the grid (MATH.md section 9): orders, energy and mass (mmd_grid), and Arbel et
al.'s learning Gaussians in 1D with and without noise (mmd_arbel), the Sobolev critic's lambda sweep
(mmd_critic).

Runs the studies alone, exactly as ``fpsolver validate --only mmd_grid,mmd_arbel,mmd_critic`` does:

    python validation/mmd.py [--quick] [--out DIR]

and writes DIR/mmd_grid.png, DIR/mmd_arbel.png, DIR/mmd_critic.png (and .pdf), DIR/report.md and DIR/summary.json
(default DIR: validation-report/mmd).
"""
import argparse
import os
import sys

from fpsolver.validate import validate_cli

if __name__ == "__main__":
    p = argparse.ArgumentParser(description="run the MMD verification studies alone")
    p.add_argument("--out", default=os.path.join("validation-report", "mmd"), help="output folder")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    args.only = "mmd_grid,mmd_arbel,mmd_critic"
    os.makedirs(args.out, exist_ok=True)
    sys.exit(validate_cli(args))
