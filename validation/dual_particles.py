"""Dual-flow study 'dual_particles' (MATH.md section 10; fpsolver/studies/dual_particles.py): the
dual flow with the kernel metric by particles (f on the grid, exact sums over the particles, no
density estimate) against the grid solver, W1 at the i.i.d. Monte-Carlo floor and falling like
N^{-1/2}, 1D and 2D.

Runs the study alone, exactly as ``fpsolver validate --only dual_particles`` does:

    python validation/dual_particles.py [--quick] [--out DIR]

and writes DIR/dual_particles.png, .pdf, DIR/report.md and DIR/summary.json.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("dual_particles"))
