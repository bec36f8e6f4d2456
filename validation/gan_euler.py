"""Study 9: the GAN generator step is an explicit Euler step: order 1 and the stability limit eps ~ b^2.

Runs the study alone, exactly as ``fpsolver validate --only gan_euler`` does:

    python validation/gan_euler.py [--quick] [--out DIR]

and writes DIR/gan_euler.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/gan_euler).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("gan_euler"))
