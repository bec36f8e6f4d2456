"""GAN study 'gan_persistence' (MATH.md sections 7 and 8; fpsolver/studies/gan_loop.py): persistence: K steps of the MSE converge to the exact-fit curve, K steps of the minimax loss with D frozen move away as K grows.

Runs the study alone, exactly as ``fpsolver validate --only gan_persistence`` does:

    python validation/gan_persistence.py [--quick] [--out DIR]

and writes DIR/gan_persistence.png, .pdf, DIR/report.md and DIR/summary.json.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("gan_persistence"))
