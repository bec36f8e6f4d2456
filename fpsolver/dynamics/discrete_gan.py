"""The discrete GAN whose small-step limit is the dual flow (MATH.md section 10).

Alternating steps on the grid, generator step eta_G = eta, discriminator step eta_D = kappa eta:

    f^{k+1}   = f^k + eta_D G(rho^k, f^k)          (L2: one gradient-ascent step on L(rho^k, .)),
              = f^k + eta_D K[G(rho^k, f^k)]       (kernel metric),
    rho^{k+1} = rho^k + eta L(rho^k; h'(f^{k+1}) grad f^{k+1})   (the generator moves its samples
                                                   by eta v: one upwind step of the law),

G = rho_d sigma(-f) - rho sigma(f) = dL/df. With kappa = eta_D / eta_G fixed, the k-th iterate is
forward Euler with step eta for f followed by an upwind Euler step for rho: a Lie splitting of the
dual flow, so it converges to it at first order in eta (on a fixed grid). Each step must keep the
generator step positive (eta max outflow / dx <= 1), checked here.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import SolverError
from ..flows import Flow
from ..fv.transport import cfl_rate, flux_divergence
from ..grid import Grid
from . import dual
from .spec import DiscriminatorSpec


def discrete_gan(rho0: np.ndarray, f0: np.ndarray, rho_d: np.ndarray, grid: Grid, flow: Flow,
                 spec: DiscriminatorSpec, eta: float, steps: int, *, conv=None):
    """Run ``steps`` alternating steps with generator step ``eta`` and discriminator step
    ``spec.rate * eta``; return (rho, f) after the last one (time steps * eta of the dual flow)."""
    if not (np.isfinite(spec.rate) and eta > 0 and steps >= 1):
        raise ValueError("discrete_gan needs a finite rate, eta > 0 and steps >= 1")
    if spec.metric == "kernel" and conv is None:
        raise ValueError("the kernel metric needs its convolution (dynamics.grid.kernel_convolution)")
    rho, f = np.ascontiguousarray(rho0, dtype=float).copy(), np.asarray(f0, dtype=float).copy()
    eta_d = spec.rate * eta
    for k in range(steps):
        drive = dual.discriminator_drive(f, rho, rho_d)
        f = f + eta_d * (conv(drive) if spec.metric == "kernel" else drive)
        vel = dual.face_velocities(f, flow, grid.spacing)
        rate = cfl_rate(vel, grid, 1)
        if eta * rate > 1.0:
            raise SolverError(f"discrete GAN step {k}: eta = {eta:g} breaks the generator's positivity "
                              f"limit 1/{rate:.3g}")
        rho = rho + eta * flux_divergence(rho, vel, grid, 1)
    return rho, f


def run_discrete_gan(case, eta: float, spec: Optional[DiscriminatorSpec] = None):
    """The discrete GAN of a dual-flow case to its final time (eta must divide it); (rho, f)."""
    from .grid import kernel_convolution
    spec = spec or case.discriminator
    steps = int(round(case.final_time / eta))
    if abs(steps * eta - case.final_time) > 1e-9 * case.final_time:
        raise ValueError(f"eta = {eta} does not divide the final time {case.final_time}")
    target, initial = case.discretised()
    shape = case.grid.shape
    log_rho_d, log_rho0 = target.log_cells.reshape(shape), initial.log_cells.reshape(shape)
    f0 = dual.initial_logit(spec.initial, log_rho0, log_rho_d)
    return discrete_gan(np.exp(log_rho0), f0, np.exp(log_rho_d), case.grid, case.local_flow(), spec,
                        eta, steps, conv=kernel_convolution(case.grid, spec))
