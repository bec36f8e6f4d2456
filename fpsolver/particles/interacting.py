"""Interacting particles: the distribution-dependent ODE with a kernel density estimate.

    dY_i/dt = v(Y_i),   v = beta'(u) (grad log rho_d - grad log rho_hat),   u = rho_hat / rho_d

(MATH.md sections 2, 5), rho_hat the reflected Gaussian KDE of the N particles
(:mod:`.estimate`) and rho_d the target tabulated on the same grid (:mod:`.target`). The
velocity is evaluated by :meth:`fpsolver.flows.Flow.velocity` (the definition the grid solver
uses) at the cell centres of the KDE grid, and read at the particles by linear interpolation;
this differs from interpolating rho_hat and grad rho_hat first by O(h^2), the order of the
interpolation itself, and costs one interpolation per particle instead of four (d = 1).
Centres that hold no particle weight after binning are never read (a particle's
interpolation weights are exactly its binning weights), so v is set to zero there.

Step-size limit. Linearising around a smooth state, a density perturbation of wave number k
feels v = -beta'(u) grad(phi_b * delta rho) / rho, so it evolves as
d/dt delta rho_k = -beta'(u) k^2 exp(-k^2 b^2 / 2) delta rho_k. The rate is largest at
k^2 = 2 / b^2, where it equals 2 beta'(u) / (e b^2); explicit Euler and Heun are stable for
h * rate <= 2, i.e. h <= e b^2 / beta'_max. We take h <= C_DIFF b^2 / beta'_max with
C_DIFF = 1 (a margin of e), and h <= C_MOVE b / max |v| so that no particle moves more than
half a bandwidth in one step (the velocity field varies on the scale b). Both maxima are over
the occupied centres, which bound the interpolated values at every particle.
"""
from __future__ import annotations

import math

import numpy as np

from ..grid import Grid
from ..kde import linear_binning
from . import kernels
from .estimate import DensityEstimator, smooth_with_gradient_numpy, velocity_bandwidth
from .target import TargetField

C_DIFF = 1.0
C_MOVE = 0.5
RHO_FLOOR = 1e-300
CELLS_PER_BANDWIDTH = 3             # KDE grid cells per bandwidth (see default_kde_grid)
_MAX_KDE_CELLS = {1: 2**16, 2: 2**10}  # per axis


class InteractingVelocity:
    """The velocity of the interacting system and its step-size limit."""

    def __init__(self, case, bandwidth: float, kde_grid: Grid):
        self.flow = case.local_flow()
        self.dim, self.bandwidth = case.grid.dim, float(bandwidth)
        self.target = TargetField(case, kde_grid)
        self.estimate = DensityEstimator(kde_grid, bandwidth)
        self.kde_grid = kde_grid
        self.breakpoints = ()

    def grid_velocity(self, rho: np.ndarray, grad: np.ndarray, occupied: np.ndarray):
        """(v at the centres (d, *shape), max beta'(u), max |v|), both maxima over ``occupied``."""
        tg = self.target
        r = np.maximum(rho[occupied], RHO_FLOOR)  # a particle's own kernel keeps rho_hat >> 0 here
        log_r = np.log(r)
        log_rd = tg.log_rho_d[occupied]          # in log space: rho_d underflows 40 sigma out
        g = np.stack([c[occupied] for c in grad], axis=-1) / r[:, None]
        gd = np.stack([c[occupied] for c in tg.grad_log], axis=-1)
        v = np.zeros((self.dim,) + rho.shape)
        with np.errstate(over="ignore", invalid="ignore"):  # not finite -> step limit 0 -> error
            vo = self.flow.velocity(log_r, g, log_rd, gd)
            dmax = float(np.exp(np.max(self.flow.log_dbeta(log_r - log_rd)))) if r.size else 0.0
        for a in range(self.dim):
            v[a][occupied] = vo[:, a]
        vmax = float(np.max(np.abs(vo))) if r.size else 0.0
        return v, dmax, vmax

    def __call__(self, x: np.ndarray, out: np.ndarray, t: float, t_start: float) -> float:
        """Write v(x) into ``out``; return the step-size limit at this state."""
        rho, grad, counts = self.estimate(x)
        v, dmax, vmax = self.grid_velocity(rho, grad, counts > 0)
        g = self.kde_grid
        if self.dim == 1:
            kernels.interp_field_1d(x, v, g.lower[0], g.spacing[0], out)
        else:
            kernels.interp_field_2d(x, v, g.lower[0], g.spacing[0], g.lower[1], g.spacing[1], out)
        return step_limit(self.bandwidth, dmax, vmax)

    def velocity_numpy(self, x: np.ndarray) -> np.ndarray:
        """The same velocity with the plain numpy reference functions (for tests and benchmarks)."""
        g = self.kde_grid
        counts = linear_binning(x, g)
        rho, grad = smooth_with_gradient_numpy(counts, g, self.bandwidth)
        scale = 1.0 / (len(x) * g.cell_volume)
        v, _, _ = self.grid_velocity(rho * scale, grad * scale, counts > 0)
        return kernels.interp_field_numpy(x, v, g.lower, g.spacing)


def step_limit(bandwidth: float, dbeta_max: float, v_max: float) -> float:
    """min(C_DIFF b^2 / beta'_max, C_MOVE b / |v|_max) (module docstring)."""
    if not (np.isfinite(dbeta_max) and np.isfinite(v_max)):
        return 0.0
    h = np.inf
    if dbeta_max > 0:
        h = C_DIFF * bandwidth**2 / dbeta_max
    if v_max > 0:
        h = min(h, C_MOVE * bandwidth / v_max)
    return float(h)


# ------------------------------------------------------------------ default bandwidth

def default_bandwidth(case, n: int) -> float:
    """The default KDE bandwidth for N particles: optimal for the velocity (README "Particles").

    The velocity is built from grad rho_hat, whose error is bias O(b^2) plus noise
    O((N b^(d+2))^(-1/2)) (MATH.md section 5); :func:`.estimate.velocity_bandwidth` minimises
    its AMISE, b^(d+6) = (d+2) R(grad phi) / (N int |grad Laplacian rho|^2), b ~ N^(-1/(d+6)),
    for each of rho_0 and rho_d (never more than the normal-reference value for the same spread)
    and takes the smaller: the flow carries rho_0 to rho_d, so the sharper of the two sets the
    resolution the estimate needs. The velocity error is then O(N^(-2/(d+6))). Floored so that
    :func:`default_kde_grid` stays within MAX_KDE_CELLS cells per axis.
    """
    target, initial = case.discretised()
    return float(max(velocity_bandwidth(case.grid, [initial.cells, target.cells], n), _min_bandwidth(case.grid)))


def default_kde_grid(grid: Grid, bandwidth: float) -> Grid:
    """The case grid, refined per axis until a cell is at most b / CELLS_PER_BANDWIDTH.

    Linear binning cannot see particles bunching inside a cell, so with b close to the
    cell size nothing opposes grid-scale clustering: the kl example with b = 1.1 cells
    develops an odd-even histogram by t = 1 (L1 0.6), with b = 2 cells it does not.
    """
    cells = [min(_MAX_KDE_CELLS[grid.dim], max(n, math.ceil(CELLS_PER_BANDWIDTH * (hi - lo) / bandwidth)))
             for n, lo, hi in zip(grid.cells, grid.lower, grid.upper)]
    return Grid(grid.lower, grid.upper, tuple(cells))


def _min_bandwidth(grid: Grid) -> float:
    return CELLS_PER_BANDWIDTH * max(hi - lo for lo, hi in zip(grid.lower, grid.upper)) \
        / _MAX_KDE_CELLS[grid.dim]
