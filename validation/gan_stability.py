"""GAN study 'gan_stability' (MATH.md sections 7 and 8; fpsolver/studies/gan_loop.py): the stability map (J, eps) of the exact-fit loop near equilibrium against eps_c = 8 s^2 / pi^2.

Runs the study alone, exactly as ``fpsolver validate --only gan_stability`` does:

    python validation/gan_stability.py [--quick] [--out DIR]

and writes DIR/gan_stability.png, .pdf, DIR/report.md and DIR/summary.json.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("gan_stability"))
