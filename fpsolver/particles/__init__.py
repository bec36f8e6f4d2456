"""Particle solvers for the distribution-dependent ODE dY/dt = v(rho_t)(Y) (MATH.md sections 4, 5).

``interacting``: rho_t estimated from the particles by a reflected Gaussian KDE;
``superposition``: v taken from a grid solution of the PDE. Both return a particle
:class:`~fpsolver.result.Result`.
"""
from .command import solve_particles_cli, summary_particles  # noqa: F401
from .solver import solve_particles  # noqa: F401
