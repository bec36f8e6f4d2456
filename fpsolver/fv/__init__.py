"""Finite-volume Crandall-Liggett solver (MATH.md section 3)."""
from .operators import FVOperator  # noqa: F401
from .newton import NewtonFailure, Rhs, backward_euler_step  # noqa: F401
from .stepper import crandall_liggett, solve_case  # noqa: F401
