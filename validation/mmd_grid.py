"""MMD study 'mmd_grid' (MATH.md section 9; fpsolver/studies/mmd.py).

Runs the study alone, exactly as ``fpsolver validate --only mmd_grid`` does:

    python validation/mmd_grid.py [--quick] [--out DIR]

and writes DIR/mmd_grid.png, .pdf, DIR/report.md and DIR/summary.json (default DIR: validation-report/mmd_grid).
validation/mmd.py runs the three MMD grid studies.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("mmd_grid"))
