"""Study 3: the exponential formula (I + (t/n)A_h)^{-n} rho_0 -> rho(t): the a-priori bound 2t||A_h rho_0||/sqrt(n)
on every grid and datum, slope -1 for smooth data, observed rates for a box indicator.

Runs the study alone, exactly as ``fpsolver validate --only crandall_liggett`` does:

    python validation/crandall_liggett.py [--quick] [--out DIR]

and writes DIR/crandall_liggett.png, .pdf, DIR/report.md and DIR/summary.json
(default DIR: validation-report/crandall_liggett).
"""
import sys

from fpsolver.validate import main_single

if __name__ == "__main__":
    sys.exit(main_single("crandall_liggett"))
