"""fpsolver: nonlinear Fokker-Planck equations of GANs as gradient flows, solved and verified.

The PDE family (MATH.md section 2) is

    d_t rho = div( rho_d grad beta(rho / rho_d) ),   no-flux walls,

solved on a grid by backward Euler (the Crandall-Liggett resolvent), by FiPy as an
independent cross-check, and by particles following the distribution-dependent ODE
dY/dt = v(rho_t)(Y).
"""
__version__ = "0.1.0"

from .errors import FpsolverError, CaseError, InputError, SolverError  # noqa: F401
