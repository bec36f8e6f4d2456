"""MMD study 'mmd_critic' (MATH.md section 9; fpsolver/studies/mmd.py): the kernel-Sobolev critic's
lambda sweep on Arbel's case.

Runs the study alone, exactly as ``fpsolver validate --only mmd_critic`` does:

    python validation/mmd_critic.py [--quick] [--out DIR]

and writes DIR/mmd_critic.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/mmd_critic). validation/mmd.py runs all MMD grid studies.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("mmd_critic"))
