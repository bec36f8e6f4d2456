"""GAN study 'gan_kernel_floor' (MATH.md sections 7 and 8; fpsolver/studies/gan_losses.py): the W1 floor of a kernel (random Fourier feature) discriminator against the sample size n and the penalty lambda.

Runs the study alone, exactly as ``fpsolver validate --only gan_kernel_floor`` does:

    python validation/gan_kernel_floor.py [--quick] [--out DIR]

and writes DIR/gan_kernel_floor.png, .pdf, DIR/report.md and DIR/summary.json.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("gan_kernel_floor"))
