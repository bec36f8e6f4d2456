"""The dual flows with particles (MATH.md §10): N generator particles, the logit f on the case grid.

    dX_i/dt = h'(f(X_i)) grad f(X_i),
    d_t f = kappa (rho_d sigma(-f) - rho_hat sigma(f))                 (L2 metric),
    d_t f = kappa (K[rho_d sigma(-f)] - (1/N) sum_i k(., X_i) sigma(f(X_i)))   (kernel metric),

reflecting walls. The kernel metric needs no density estimate: K[rho sigma(f)] at the cell
centres x_j is the exact sum (1/N) sum_i k(x_j - X_i) sigma(f(X_i)), O(N G) by
:func:`kernel_sum_at_centres`; K[rho_d sigma(-f)] is the grid's FFT convolution. The L2 metric
needs rho itself on the grid: rho_hat, the reflected Gaussian KDE of the particles (bandwidth b,
:func:`fpsolver.particles.interacting.default_bandwidth` unless given), so its error is the KDE's
bias O(b^2) plus noise (MATH.md §5).

One step of length dt is the grid solver's (:mod:`.grid`), with the particles in place of the
upwind transport: f^{n+1} from f^n with the particles X^n frozen (L2: backward Euler cell by cell,
:func:`.dual.l2_implicit_update`; kernel: forward Euler), then the particles move in the frozen
field v = h'(f^{n+1}) grad f^{n+1}, by Euler or Heun, reflected at the walls. v is the grid
solver's face velocity (h' averaged over the two cells times the difference of f, zero on the
walls), read at a particle by staggered linear interpolation
(:func:`fpsolver.particles.kernels.interp_faces_1d`), so the two solvers share one velocity.
f at a particle is the linear interpolation of the cell values (constant between a wall and the
first centre).

Step size: the grid solver's rules, dt = min(0.9 dual.step_limit, 0.9 / cfl_rate(v(f^n)), the
case's dt, the time to the next save), no sliver step before a save time, and cut to
0.9 / cfl_rate(v(f^{n+1})) if the new field breaks dt * cfl_rate <= 1. The step limit needs rho on
the grid: the KDE (L2) or the cloud-in-cell histogram of the particles (kernel metric; used for
the step size only). Runs are deterministic for a seed: every sum runs in a fixed order.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import numba
import numpy as np
from scipy.special import expit

from .. import __version__
from ..errors import InputError, SolverError
from ..flows.kernel import GaussianKernel, KernelConvolution
from ..fv.transport import cfl_rate
from ..grid import Grid
from ..kde import gaussian_smooth_reflect, linear_binning_numba
from ..particles import kernels
from ..particles.interacting import default_bandwidth
from ..particles.run import ParticleState, record
from ..particles.vector_exp import LOG2E, exp2_nonpositive
from ..result import Result
from . import dual
from .spec import DiscriminatorSpec

DEFAULT_FRACTION = 0.9     # as the grid solver (dynamics.grid.DEFAULT_FRACTION)
POINT_BLOCK = 256          # cell centres per task of the 1D kernel sum
ROW_BLOCKS = 8             # tasks of the 2D kernel sum (each recomputes the y-factors: few blocks)
_MAX_CUTS = 40


# ------------------------------------------------------------------ the exact kernel sum

@numba.njit(cache=True, parallel=True)
def _kernel_sum_1d(centres, x, w, c, out):
    """out[j] = sum_i w_i 2^(-(x_j - X_i)^2 c), i in order; blocks of centres in parallel, the
    innermost loop over a block's centres (plain arithmetic: it vectorises)."""
    g = centres.shape[0]
    for b in numba.prange((g + POINT_BLOCK - 1) // POINT_BLOCK):
        j0 = b * POINT_BLOCK
        size = min(g, j0 + POINT_BLOCK) - j0
        acc = np.zeros(POINT_BLOCK)
        cen = np.zeros(POINT_BLOCK)
        for j in range(size):
            cen[j] = centres[j0 + j]
        for i in range(x.shape[0]):
            xi, wi = x[i, 0], w[i]
            for j in range(size):
                d = cen[j] - xi
                acc[j] += wi * exp2_nonpositive(-(d * d) * c)
        for j in range(size):
            out[j0 + j] = acc[j]
    return out


@numba.njit(cache=True, parallel=True)
def _kernel_sum_2d(c0, c1, x, w, c, out):
    """out[j, l] = sum_i w_i 2^(-(x_j - X_i0)^2 c) 2^(-(y_l - X_i1)^2 c), i in order (the Gaussian
    factorises over the axes: n0 + ROW_BLOCKS n1 exponentials per particle, n0 n1 multiply-adds);
    ROW_BLOCKS blocks of rows in parallel, the innermost loop over a row (it vectorises)."""
    n0, n1 = c0.shape[0], c1.shape[0]
    rows = (n0 + ROW_BLOCKS - 1) // ROW_BLOCKS
    for b in numba.prange((n0 + rows - 1) // rows):
        j0 = b * rows
        size = min(n0, j0 + rows) - j0
        acc = np.zeros((size, n1))
        e0 = np.zeros(size)
        e1 = np.zeros(n1)
        for i in range(x.shape[0]):
            x0, x1, wi = x[i, 0], x[i, 1], w[i]
            for l in range(n1):
                d = c1[l] - x1
                e1[l] = exp2_nonpositive(-(d * d) * c)
            for j in range(size):
                d = c0[j0 + j] - x0
                e0[j] = wi * exp2_nonpositive(-(d * d) * c)
            for j in range(size):
                a = e0[j]
                for l in range(n1):
                    acc[j, l] += a * e1[l]
        for j in range(size):
            for l in range(n1):
                out[j0 + j, l] = acc[j, l]
    return out


def kernel_sum_at_centres(x: np.ndarray, weights: np.ndarray, grid: Grid, sigma: float) -> np.ndarray:
    """S_j = (1/N) sum_i exp(-|x_j - X_i|^2 / (2 sigma^2)) w_i at the cell centres x_j of ``grid``:
    K[rho w] of the empirical measure of the N points X (N, d), exactly (no density estimate)."""
    x = np.ascontiguousarray(x, dtype=float)
    w = np.ascontiguousarray(weights, dtype=float)
    c = 0.5 * LOG2E / sigma ** 2       # exp(-r^2 / (2 sigma^2)) = 2^(-r^2 c)
    if grid.dim == 1:
        out = _kernel_sum_1d(np.ascontiguousarray(grid.centres[0]), x, w, c, np.empty(grid.shape))
    else:
        out = _kernel_sum_2d(np.ascontiguousarray(grid.centres[0]), np.ascontiguousarray(grid.centres[1]),
                             x, w, c, np.empty(grid.shape))
    return out / len(x)


def kernel_sum_numpy(x: np.ndarray, weights: np.ndarray, grid: Grid, sigma: float) -> np.ndarray:
    """Plain numpy reference of :func:`kernel_sum_at_centres` (one exp per pair; for tests)."""
    pts = grid.points()
    r2 = np.sum((pts[:, None, :] - np.asarray(x, float)[None, :, :]) ** 2, axis=-1)
    return (np.exp(-r2 / (2.0 * sigma ** 2)) @ np.asarray(weights, float)).reshape(grid.shape) / len(x)


# ------------------------------------------------------------------ fields at the particles

def logit_at(x: np.ndarray, f: np.ndarray, grid: Grid) -> np.ndarray:
    """f at the points x (N, d): linear interpolation of the cell values (clamped at the walls);
    the numpy reference is :func:`fpsolver.particles.kernels.interp_cells_numpy`."""
    out = np.empty(len(x))
    f = np.ascontiguousarray(f, dtype=float)
    if grid.dim == 1:
        return kernels.interp_cells_1d(x, f, grid.lower[0], grid.spacing[0], out)
    return kernels.interp_cells_2d(x, f, grid.lower[0], grid.spacing[0], grid.lower[1], grid.spacing[1], out)


def _wall_faces(f: np.ndarray, flow, grid: Grid) -> list:
    """The grid solver's face velocities h'(f) grad f, walls included (zero there)."""
    out = []
    for a, v in enumerate(dual.face_velocities(f, flow, grid.spacing)):
        shape = list(v.shape)
        shape[a] += 2
        full = np.zeros(shape)
        inner = [slice(None)] * grid.dim
        inner[a] = slice(1, -1)
        full[tuple(inner)] = v
        out.append(full)
    return out


def velocity_at(x: np.ndarray, f: np.ndarray, flow, grid: Grid, out: np.ndarray,
                faces: Optional[list] = None) -> np.ndarray:
    """v = h'(f) grad f at the particles: the face velocities (``faces``, computed from f when not
    given) read by staggered interpolation."""
    faces = _wall_faces(f, flow, grid) if faces is None else faces
    if grid.dim == 1:
        kernels.interp_faces_1d(x, faces[0], grid.lower[0], grid.spacing[0], out)
    else:
        kernels.interp_faces_2d(x, faces[0], faces[1], grid.lower[0], grid.spacing[0],
                                grid.lower[1], grid.spacing[1], out)
    return out


# ------------------------------------------------------------------ the discriminator on the grid

class ParticleDiscriminator:
    """The logit's update from the particles, and rho on the grid for the step-size limit."""

    def __init__(self, grid: Grid, flow, spec: DiscriminatorSpec, rho_d: np.ndarray,
                 bandwidth: Optional[float]):
        self.grid, self.flow, self.spec, self.rho_d = grid, flow, spec, rho_d
        self.bandwidth = bandwidth
        self.conv = (KernelConvolution(grid, GaussianKernel(spec.sigma)) if spec.metric == "kernel" else None)

    def density(self, x: np.ndarray) -> np.ndarray:
        """rho on the cells: the reflected KDE (L2), the cloud-in-cell histogram (kernel metric)."""
        counts = linear_binning_numba(x, self.grid)
        if self.spec.metric == "L2":
            counts = gaussian_smooth_reflect(counts, self.grid, self.bandwidth)
            counts = np.maximum(counts, 0.0)     # the FFT leaves round-off of either sign far out
        return counts / (len(x) * self.grid.cell_volume)

    def update(self, f: np.ndarray, x: np.ndarray, rho: np.ndarray, dt: float) -> np.ndarray:
        """f^{n+1} from f^n with the particles frozen (module docstring)."""
        rate = self.spec.rate
        if self.spec.metric == "L2":
            return dual.l2_implicit_update(f, rho, self.rho_d, dt, rate)
        s = expit(logit_at(x, f, self.grid))
        drive = self.conv(self.rho_d * expit(-f)) - kernel_sum_at_centres(x, s, self.grid, self.spec.sigma)
        return f + dt * rate * drive

    def step_limit(self, f: np.ndarray, rho: np.ndarray) -> float:
        return dual.step_limit(f, rho, self.rho_d, self.flow, self.spec.rate, self.grid.spacing,
                               self.spec.metric, self.conv)


def gan_value(f: np.ndarray, x: np.ndarray, rho_d: np.ndarray, grid: Grid) -> float:
    """L = int rho_d log sigma(f) + (1/N) sum_i log sigma(-f(X_i)), the particle term exact."""
    fx = logit_at(x, f, grid)
    return -float(np.sum(rho_d * np.logaddexp(0.0, -f)) * grid.cell_volume) - float(np.mean(np.logaddexp(0.0, fx)))


# ------------------------------------------------------------------ time stepping

class _Stepper:
    """One coupled step at a time, with the grid solver's step-size rules (module docstring)."""

    def __init__(self, disc: ParticleDiscriminator, integrator: str, n: int, fraction: float = DEFAULT_FRACTION):
        self.disc, self.integrator, self.fraction = disc, integrator, fraction
        g = disc.grid
        self.lower, self.upper = np.array(g.lower, dtype=float), np.array(g.upper, dtype=float)
        self.v1, self.v2, self.x1 = np.empty((n, g.dim)), np.empty((n, g.dim)), np.empty((n, g.dim))
        self._known = (None, 0.0)     # (the last f^{n+1}, its rate): the next step's f^n

    def _rate(self, f):
        if f is self._known[0]:
            return self._known[1]
        return cfl_rate(dual.face_velocities(f, self.disc.flow, self.disc.grid.spacing), self.disc.grid, 1)

    def __call__(self, x: np.ndarray, f: np.ndarray, remaining: float, dt_max: float):
        """(new positions, f^{n+1}, dt); ``x`` is overwritten."""
        disc, frac = self.disc, self.fraction
        rho = disc.density(x)
        rate_now = self._rate(f)
        dt = min(frac * disc.step_limit(f, rho), frac / rate_now if rate_now > 0 else np.inf, dt_max, remaining)
        if remaining <= dt * (1.0 + 1e-9):     # no sliver step before a save time
            dt = remaining
        for _ in range(_MAX_CUTS):
            f_new = disc.update(f, x, rho, dt)
            if not np.all(np.isfinite(f_new)):
                raise SolverError("the discriminator logit is not finite")
            rate = self._rate(f_new)
            if dt * rate <= 1.0 + 1e-12:       # the grid solver's transport limit, kept for the same dt
                break
            dt = frac / rate
        else:
            raise SolverError("the CFL limit kept shrinking dt (40 cuts)")
        self._known = (f_new, rate)
        return self._move(x, f_new, dt), f_new, dt

    def _move(self, x, f, dt):
        """Euler or Heun in the frozen field v = h'(f) grad f, reflected at the walls."""
        g, flow = self.disc.grid, self.disc.flow
        faces = _wall_faces(f, flow, g)
        velocity_at(x, f, flow, g, self.v1, faces)
        kernels.move_reflect(x, self.v1, dt, self.lower, self.upper, self.x1)
        if self.integrator == "heun":
            velocity_at(self.x1, f, flow, g, self.v2, faces)
            kernels.heun_move_reflect(x, self.v1, self.v2, dt, self.lower, self.upper, self.x1)
        x[:] = self.x1
        return x


def check_dual_options(case, *, mode: str, pde, bandwidth, checkpoint_path, resume, kde_cells) -> None:
    """One clear line for each option the dual particle solver does not take."""
    spec = case.discriminator
    if mode != "interacting" or pde is not None:
        raise InputError("[discriminator]: particles run in --mode interacting (the logit f moves with "
                         "them; no --pde)")
    if checkpoint_path or resume:
        raise InputError("--checkpoint/--resume: not available for the dual flows ([discriminator])")
    if kde_cells is not None:
        raise InputError("[discriminator]: the KDE lives on the case grid (where f lives); no kde_cells")
    if bandwidth is not None and spec.metric == "kernel":
        raise InputError("--bandwidth: the kernel metric needs no density estimate (exact sums over "
                         "the particles); --bandwidth applies to metric = \"L2\" only")


def solve_dual_particles(case, *, n: int, seed: int, bandwidth: Optional[float] = None,
                         integrator: str = "heun", save_positions: Optional[int] = None,
                         progress: Optional[Callable] = None, spec: Optional[DiscriminatorSpec] = None) -> Result:
    """Run the dual flow of ``case`` with N particles; a particle Result with f at the save times.

    Positions at t = 0 and the save times (the first ``save_positions``), cell counts of all
    particles (``counts``), f (nt, *grid.shape); meta: the GAN value, the mass in the box and dt
    per step. ``spec`` replaces the case's [discriminator] (finite rate)."""
    spec = spec or case.discriminator
    if np.isinf(spec.rate):     # log(rho_d / rho_hat) is infinite where the KDE underflows
        raise InputError("kappa = inf: the optimal discriminator with particles is the interacting "
                         "solver of the case without [discriminator]; the dual particles need a finite rate")
    grid, flow = case.grid, case.local_flow()
    target, initial = case.discretised()
    log_rho_d, log_rho0 = target.log_cells.reshape(grid.shape), initial.log_cells.reshape(grid.shape)
    rho_d = np.exp(log_rho_d)
    rule = None
    if spec.metric == "L2":
        rule = "given" if bandwidth is not None else "default rule: min of AMISE and Silverman for rho_0, rho_d"
        bandwidth = float(bandwidth) if bandwidth is not None else default_bandwidth(case, n)
    disc = ParticleDiscriminator(grid, flow, spec, rho_d, bandwidth)
    n_saved = n if save_positions is None else int(save_positions)
    rng = np.random.default_rng(seed)
    x = np.ascontiguousarray(case.initial.sample(n, rng, grid), dtype=float)
    f = dual.initial_logit(spec.initial, log_rho0, log_rho_d)
    state = ParticleState(steps=0, t=0.0, x=x, rng_state=rng.bit_generator.state)
    record(state, grid, n_saved)
    saved_f, hist = [f.copy()], {"t": [0.0], "mass": [1.0], "gan": [gan_value(f, x, rho_d, grid)]}
    step, dts, t_final = _Stepper(disc, integrator, n), [], float(case.save_times[-1])
    start = time.perf_counter()
    for t_save in case.save_times:
        while state.t < t_save:
            remaining = t_save - state.t
            x, f, dt = step(x, f, remaining, case.dt)
            state.t = t_save if dt >= remaining * (1.0 - 1e-12) else state.t + dt
            state.steps += 1
            dts.append(dt)
            inside = np.all((x >= step.lower) & (x <= step.upper), axis=1)
            hist["t"].append(state.t)
            hist["mass"].append(float(np.count_nonzero(inside)) / n)
            hist["gan"].append(gan_value(f, x, rho_d, grid))
            if progress is not None:
                progress(int(1000 * state.t / t_final), f"t={state.t:.4g} steps={state.steps}")
        state.x = x
        record(state, grid, n_saved)
        saved_f.append(f.copy())
    dts = np.asarray(dts)
    meta = {"kind": "particles", "backend": "particles-dual", "version": __version__, "mode": "interacting",
            "case": case.raw, "source": case.source, "flow": case.flow, "n": int(n), "n_saved": n_saved,
            "seed": int(seed), "integrator": integrator, "grid": grid.to_dict(), "dt_max": case.dt,
            "discriminator": spec.to_dict(), "bandwidth": bandwidth, "bandwidth_rule": rule,
            "kde_cells": list(grid.shape) if bandwidth is not None else None,
            "steps": state.steps, "steps_at_save": state.steps_per_save,
            "min_step": float(dts.min()) if dts.size else 0.0, "max_step": float(dts.max()) if dts.size else 0.0,
            "step_times": hist["t"], "mass": hist["mass"], "gan_value": hist["gan"],
            "wall_time": time.perf_counter() - start, "particles_inside": state.inside,
            "mean": state.mean, "std": state.std, "max_abs_f": float(max(np.max(np.abs(a)) for a in saved_f))}
    return Result(t=np.array(state.saved_t), meta=meta, axes=grid.centres, rho_d=rho_d,
                  positions=np.stack(state.saved_x), f=np.stack(saved_f),
                  extra={"counts": np.stack(state.counts)})
