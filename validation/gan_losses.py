"""GAN study 'gan_losses' (MATH.md sections 7 and 8; fpsolver/studies/gan_losses.py): MonoFlow's losses at the density level: saturating losses (js, minimax C = 0) stall far from the data, the others converge.

Runs the study alone, exactly as ``fpsolver validate --only gan_losses`` does:

    python validation/gan_losses.py [--quick] [--out DIR]

and writes DIR/gan_losses.png, .pdf, DIR/report.md and DIR/summary.json.
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("gan_losses"))
