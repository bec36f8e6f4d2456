"""Adaptive time steps: work-precision diagram and tolerance proportionality.

Runs the study alone, exactly as ``fpsolver validate --only adaptive`` does:

    python validation/adaptive.py [--quick] [--out DIR]

and writes DIR/adaptive.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/adaptive).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("adaptive"))
