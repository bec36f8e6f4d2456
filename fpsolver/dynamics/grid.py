"""The dual flows on the grid (MATH.md §10): generator density and discriminator logit together.

    d_t rho = -div(rho h'(f) grad f),     d_t f = kappa G(rho, f)   or   kappa K[G(rho, f)],

G = rho_d sigma(-f) - rho sigma(f), no-flux walls, 1D or 2D. One step of length dt (Lie
splitting, f first):

1. f^{n+1} from f^n with rho^n frozen: backward Euler cell by cell for L2 (stiff: rate
   kappa sigma(1 - sigma)(rho_d + rho)), forward Euler with the FFT convolution for the kernel
   metric; kappa = inf (API only) sets f^{n+1} = log(rho_d / rho^n), the §2 / §7 flow itself;
2. rho^{n+1} = rho^n + dt L(rho^n) by first-order upwind finite volumes
   (:func:`fpsolver.fv.transport.flux_divergence`) with the face velocity h'(f^{n+1}) grad f^{n+1}.

Orders. Splitting and both Euler steps are first order in dt; upwind is first order in dx where
the solution is smooth and at the fronts this hyperbolic system forms where mass advances into
near-vacuum. So the scheme is first order (measured: tests/test_dual_grid.py, the dual_orders
and dual_gan studies); a higher-order reconstruction would not raise the order at the fronts.
As kappa dt -> inf step 1 returns the exact equilibrium log(rho_d / rho^n): the scheme is
asymptotic preserving, its kappa -> inf limit at fixed dt is the same transport scheme driven by
the optimal discriminator, so kappa -> inf studies compare like with like.

Step size: dt = min(fraction * dynamics.dual.step_limit (damped-wave speed and stiffness), the
case's dt, the time to the next save), then cut until the transport step is positive:
dt * max_i (outflow of cell i) / dx <= fraction (transport.cfl_rate, order 1: each cell's
outflow through both faces, so diverging velocities are covered). rho stays >= 0 and the mass
sum |K| rho is exact to round-off. No density is floored anywhere.
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numpy as np

from .. import __version__
from ..errors import SolverError
from ..flows import Flow, get_flow
from ..flows.kernel import GaussianKernel, KernelConvolution
from ..fv.kernel_solve import wall_mass
from ..fv.transport import cfl_rate, flux_divergence
from ..grid import Grid
from ..result import Result
from . import dual
from .spec import DiscriminatorSpec

DEFAULT_FRACTION = 0.9    # dt = 0.9 x the stability and positivity limits
_MAX_CUTS = 40


def kernel_convolution(grid: Grid, spec: DiscriminatorSpec) -> Optional[KernelConvolution]:
    """K of the kernel metric on ``grid`` (None for L2)."""
    return KernelConvolution(grid, GaussianKernel(spec.sigma)) if spec.metric == "kernel" else None


def dual_step(rho: np.ndarray, f: np.ndarray, rho_d: np.ndarray, grid: Grid, flow: Flow,
              spec: DiscriminatorSpec, dt: float, *, conv=None, log_rho_d=None):
    """One step (module docstring): returns (rho^{n+1}, f^{n+1}, transport outflow rate)."""
    with np.errstate(divide="ignore"):
        log_rho = np.log(rho) if np.isinf(spec.rate) else None
    f_new = dual.update_logit(f, rho, rho_d, dt, spec.rate, spec.metric, conv, log_rho, log_rho_d)
    if not np.all(np.isfinite(f_new)):
        raise SolverError("the discriminator logit is not finite (rho underflowed to 0 with kappa = inf)")
    vel = dual.face_velocities(f_new, flow, grid.spacing)
    rate = cfl_rate(vel, grid, 1)
    return rho + dt * flux_divergence(rho, vel, grid, 1), f_new, rate


def _advance(rho, f, rho_d, grid, flow, spec, remaining, dt_max, fraction, conv, log_rho_d, dt_fixed):
    """One step of at most ``remaining``, cut until the transport step is positive:
    (rho, f, dt, the number of tries rejected by the cut)."""
    if dt_fixed is not None:
        dt = min(dt_fixed, remaining)
    else:
        limit = dual.step_limit(f, rho, rho_d, flow, spec.rate, grid.spacing, spec.metric, conv)
        rate_now = cfl_rate(dual.face_velocities(f, flow, grid.spacing), grid, 1)   # f^{n+1} ~ f^n
        dt = min(fraction * limit, fraction / rate_now if rate_now > 0 else np.inf, dt_max, remaining)
        if remaining <= dt * (1.0 + 1e-9):     # no sliver step before a save time
            dt = remaining
    for cuts in range(_MAX_CUTS):
        rho_new, f_new, rate = dual_step(rho, f, rho_d, grid, flow, spec, dt, conv=conv, log_rho_d=log_rho_d)
        if dt * rate <= 1.0 + 1e-12:       # the positivity limit of the upwind step itself
            return rho_new, f_new, dt, cuts
        if dt_fixed is not None:
            raise SolverError(f"fixed dt = {dt:.3g} breaks the positivity limit 1/{rate:.3g} of the transport step")
        dt = fraction / rate
    raise SolverError("the transport CFL limit kept shrinking dt (40 cuts)")


def dual_run(rho0: np.ndarray, f0: np.ndarray, rho_d: np.ndarray, grid: Grid, flow: Flow,
             spec: DiscriminatorSpec, save_times: Sequence[float], *, dt_max: float = np.inf,
             fraction: float = DEFAULT_FRACTION, dt_fixed: Optional[float] = None,
             log_rho_d: Optional[np.ndarray] = None, observe: Optional[Callable] = None,
             progress: Optional[Callable] = None, stats: Optional[dict] = None):
    """Integrate the dual flow from (rho0, f0) and return (rho and f at each save time, dts, wall s).

    ``observe(t, rho, f)`` is called at t = 0 and after every step, ``progress(t)`` after every
    step. ``dt_fixed`` takes equal steps (landing on the save times) and raises SolverError if
    one breaks the positivity limit (for convergence studies in dt). ``stats["rejected_steps"]``
    (if given) counts the tries the positivity cut rejected.
    """
    rho = np.ascontiguousarray(rho0, dtype=float).copy()
    f = np.ascontiguousarray(f0, dtype=float).copy()
    conv = kernel_convolution(grid, spec)
    start, t, saved_rho, saved_f, dts = time.perf_counter(), 0.0, [], [], []
    if observe is not None:
        observe(0.0, rho, f)
    for t_save in save_times:
        while t < t_save:
            remaining = t_save - t
            rho, f, dt, cuts = _advance(rho, f, rho_d, grid, flow, spec, remaining, dt_max, fraction, conv,
                                        log_rho_d, dt_fixed)
            if stats is not None:
                stats["rejected_steps"] = stats.get("rejected_steps", 0) + cuts
            t = t_save if dt >= remaining * (1.0 - 1e-12) else t + dt
            dts.append(dt)
            if observe is not None:
                observe(t, rho, f)
            if progress is not None:
                progress(t)
        saved_rho.append(rho.copy())
        saved_f.append(f.copy())
    return saved_rho, saved_f, np.asarray(dts), time.perf_counter() - start


class _Recorder:
    """observe(t, rho, f): time, mass, GAN value, JS(rho, rho_d) and the flow's energy per step."""

    def __init__(self, flow: Flow, rho_d, log_rho_d, cell_volume):
        self.flow, self.rho_d, self.log_rho_d, self.vol = flow, rho_d, log_rho_d, cell_volume
        self.js_flow = get_flow("js")
        self.t, self.mass, self.gan, self.js, self.energy = [], [], [], [], []

    def __call__(self, t, rho, f):
        with np.errstate(divide="ignore"):
            log_rho = np.log(rho)
        self.t.append(t)
        self.mass.append(float(np.sum(rho) * self.vol))
        self.gan.append(dual.gan_value(f, rho, self.rho_d, self.vol))
        self.js.append(self.js_flow.energy_from_logs(log_rho, self.log_rho_d, self.vol))
        if self.flow.name == "js":
            self.energy.append(self.js[-1])          # the js flow's energy is JS itself
        elif self.flow.has_energy:
            self.energy.append(self.flow.energy_from_logs(log_rho, self.log_rho_d, self.vol))


def solve_case_dual(case, *, progress: Optional[Callable] = None, spec: Optional[DiscriminatorSpec] = None,
                    dt_fixed: Optional[float] = None) -> Result:
    """Solve a case with a ``[discriminator]`` table on its grid; a density Result with ``f``.

    ``spec`` replaces the case's table (e.g. rate = inf: the optimal discriminator through the same
    scheme); ``dt_fixed`` takes equal steps (convergence studies)."""
    grid, spec = case.grid, spec or case.discriminator
    target, initial = case.discretised()
    log_rho_d = target.log_cells.reshape(grid.shape)
    log_rho0 = initial.log_cells.reshape(grid.shape)
    rho_d, rho0 = np.exp(log_rho_d), np.exp(log_rho0)
    flow = case.local_flow()
    f0 = dual.initial_logit(spec.initial, log_rho0, log_rho_d)
    rec = _Recorder(flow, rho_d, log_rho_d, grid.cell_volume)
    tick = None if progress is None else (lambda t: progress(int(round(t / case.dt)), f"t={t:.4g}"))
    stats = {"rejected_steps": 0}
    rhos, fs, dts, wall = dual_run(rho0, f0, rho_d, grid, flow, spec, case.save_times, dt_max=case.dt,
                                   log_rho_d=log_rho_d, observe=rec, progress=tick, dt_fixed=dt_fixed,
                                   stats=stats)
    saved_rho, saved_f = [rho0] + rhos, [f0] + fs
    m = np.array(rec.mass)
    meta = {
        "kind": "density", "backend": "fv-dual", "version": __version__, "case": case.raw,
        "source": case.source, "flow": case.flow, "scheme": case.scheme, "dt": case.dt,
        "grid": grid.to_dict(), "discriminator": spec.to_dict(), "steps": len(dts),
        "step_times": rec.t, "mass": rec.mass, "gan_value": rec.gan, "js": rec.js, "energy": rec.energy,
        "dt_fixed": dt_fixed, "dt_taken": {"min": float(dts.min()), "median": float(np.median(dts)), "max": float(dts.max())},
        "wall_mass": [wall_mass(r, grid) for r in saved_rho],
        "mass_error": float(np.max(np.abs(m - m[0])) / m[0]),
        "min_rho": float(min(np.min(r) for r in saved_rho)), "max_abs_f": float(max(np.max(np.abs(x)) for x in saved_f)),
        "wall_time": wall, "rejected_steps": stats["rejected_steps"],
    }
    return Result(t=np.array((0.0,) + tuple(case.save_times)), meta=meta, axes=grid.centres,
                  rho=np.stack(saved_rho), rho_d=rho_d, f=np.stack(saved_f))
