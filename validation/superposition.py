"""Study 5: superposition particles (driven by the PDE velocity) vs the PDE: W1 and histogram L1 ~ N^{-1/2}.

Runs the study alone, exactly as ``fpsolver validate --only superposition`` does:

    python validation/superposition.py [--quick] [--out DIR]

and writes DIR/superposition.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/superposition).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("superposition"))
