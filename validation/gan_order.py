"""GAN study 'gan_order' (MATH.md sections 7 and 8; fpsolver/studies/gan_loop.py): order in eps of Algorithm 1 with the exact discriminator and the exact-fit monotone generator (slope 1 +- 0.1, js and kl).

Runs the study alone, exactly as ``fpsolver validate --only gan_order`` does:

    python validation/gan_order.py [--quick] [--out DIR]

and writes DIR/gan_order.png, .pdf, DIR/report.md and DIR/summary.json.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("gan_order"))
