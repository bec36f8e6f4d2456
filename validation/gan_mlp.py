"""GAN study 'gan_mlp' (MATH.md sections 1 and 8; fpsolver/studies/gan_mlp.py): an MLP GAN
(mlp discriminator x mlp generator, Algorithm 1 compiled in JAX and vmapped over seeds) in 2D on
a two-mode target against the js PDE solution: sliced W1 at T within a third of the distance the
flow covers, its seed-to-seed spread, and the Monte-Carlo floor of N samples.

Runs the study alone, exactly as ``fpsolver validate --only gan_mlp`` does:

    python validation/gan_mlp.py [--quick] [--out DIR]

and writes DIR/gan_mlp.png, .pdf, DIR/report.md and DIR/summary.json.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("gan_mlp"))
