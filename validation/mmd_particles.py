"""MMD study 'mmd_particles' (MATH.md section 9; fpsolver/studies/mmd_particles.py): MMD particles
with no density estimate against the MMD grid solution, W1 rate N^{-1/2} and W1 below the i.i.d.
Monte-Carlo floor, 1D and 2D.

Runs the study alone, exactly as ``fpsolver validate --only mmd_particles`` does:

    python validation/mmd_particles.py [--quick] [--out DIR]

and writes DIR/mmd_particles.png, .pdf, DIR/report.md and DIR/summary.json.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("mmd_particles"))
