"""fpsolver: nonlinear Fokker-Planck equations of GANs as gradient flows, solved and verified.

The PDE family (MATH.md section 2) is

    d_t rho = div( rho_d grad beta(rho / rho_d) ),   no-flux walls,

solved on a grid by backward Euler (the Crandall-Liggett resolvent), by FiPy as an
independent cross-check, and by particles following the distribution-dependent ODE
dY/dt = v(rho_t)(Y); the MMD flow (section 9) by upwind transport and exact kernel sums.

Three lines from a case to a figure::

    import fpsolver
    r = fpsolver.solve("examples/bimodal_1d.toml")
    fpsolver.plot(r)
"""
__version__ = "0.1.0"

from .errors import FpsolverError, CaseError, InputError, SolverError  # noqa: F401
from .case import Case  # noqa: F401,E402
from .result import Result  # noqa: F401,E402
from .flows import Flow, custom_flow, get_flow  # noqa: F401,E402
from .monoflow import flow_from_hprime  # noqa: F401,E402
# the modules of the same names first, so that the functions below keep the names
# (import statements such as ``from fpsolver.particles import solve_particles`` still reach them)
from . import compare as _compare_module, gan as _gan_package, particles as _particles_package  # noqa: F401,E402
from . import sweep as _sweep_package, validate as _validate_module  # noqa: F401,E402
from .api import compare, gan, load, particles, plot, solve, sweep, validate  # noqa: F401,E402

__all__ = ["Case", "Result", "solve", "particles", "gan", "sweep", "compare", "plot", "validate", "load",
           "Flow", "custom_flow", "flow_from_hprime", "get_flow",
           "FpsolverError", "CaseError", "InputError", "SolverError", "__version__"]
