"""MMD study 'mmd_arbel' (MATH.md section 9; fpsolver/studies/mmd.py).

Runs the study alone, exactly as ``fpsolver validate --only mmd_arbel`` does:

    python validation/mmd_arbel.py [--quick] [--out DIR]

and writes DIR/mmd_arbel.png, .pdf, DIR/report.md and DIR/summary.json (default DIR: validation-report/mmd_arbel).
validation/mmd.py runs the three MMD grid studies.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("mmd_arbel"))
