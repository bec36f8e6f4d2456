"""Distances between particles and grid densities (L1, 1-Wasserstein, sliced W1, KS, energy).

A grid density is read as piecewise constant: the value rho_K on each cell K, total mass
sum_K rho_K |K|. Distances between a measure and a density (W1, sliced W1, KS) use the cell
masses m_K = rho_K |K| / sum_K rho_K |K| (a probability measure); L1 distances use the values
as given. Every W1 here is exact for these piecewise-constant densities (no resampling, no
grid approximation of the CDF), up to floating-point round-off; the sliced distance in 2D
is an average over directions (a midpoint rule on the half circle, see :func:`sliced_w1_2d`).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from .errors import InputError
from .flows import Flow, get_flow
from .grid import Grid

# Axis-aligned projections: a cell's projected width is floored at this fraction of its side
# (the slopes m/(ab) would be infinite); this moves a projected W1 by at most 2.5e-5 cell
# widths, in practice by O(1e-8) relative (the change is second order in the width).
_MIN_WIDTH = 1e-4


# ------------------------------------------------------------------ checks and helpers

def _values(rho: np.ndarray, grid: Grid, name: str = "rho") -> np.ndarray:
    rho = np.asarray(rho, dtype=float)
    if rho.shape != grid.shape:
        raise InputError(f"{name} has shape {rho.shape}, the grid has {grid.shape}")
    if not np.all(np.isfinite(rho)) or np.any(rho < 0):
        raise InputError(f"{name} must be finite and non-negative")
    return rho


def _masses(rho: np.ndarray, grid: Grid) -> np.ndarray:
    """Cell masses m_K = rho_K |K| / sum_L rho_L |L| (a probability vector of grid.shape)."""
    m = _values(rho, grid) * grid.cell_volume
    total = m.sum()
    if not total > 0:
        raise InputError("rho has zero mass")
    return m / total


def _points(positions: np.ndarray, dim: int) -> np.ndarray:
    pts = np.asarray(positions, dtype=float)
    if dim == 1 and pts.ndim == 1:
        pts = pts[:, None]
    if pts.ndim != 2 or pts.shape[1] != dim or pts.shape[0] == 0:
        raise InputError(f"positions must be a non-empty (N, {dim}) array, got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise InputError("positions must be finite")
    return pts


def cell_index(positions: np.ndarray, grid: Grid) -> tuple[np.ndarray, ...]:
    """Cell index per axis of each point; the walls belong to their edge cells."""
    pts = _points(positions, grid.dim)
    return tuple(np.clip(np.floor((pts[:, a] - grid.lower[a]) / grid.spacing[a]).astype(np.int64),
                         0, grid.shape[a] - 1) for a in range(grid.dim))


def cell_histogram(positions: np.ndarray, grid: Grid) -> np.ndarray:
    """Particle histogram as a density on the cells: rho_hat_K = #{Y_p in K} / (N |K|).

    Particles on or beyond a wall are counted in the edge cell (walls reflect, so anything
    outside can only be round-off).
    """
    idx = cell_index(positions, grid)
    flat = np.ravel_multi_index(idx, grid.shape)
    counts = np.bincount(flat, minlength=grid.size).reshape(grid.shape)
    return counts / (len(flat) * grid.cell_volume)


def sample_cell_density(grid: Grid, rho: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n exact samples (n, d) of the piecewise-constant density: a cell drawn with probability
    m_K, then a uniform point inside it."""
    return grid.sample_cells(_masses(rho, grid), n, rng)


# ------------------------------------------------------------------ L1 and energy

def l1_density(rho_a: np.ndarray, rho_b: np.ndarray, grid: Grid) -> float:
    """L1 distance of two cell densities: sum_K |a_K - b_K| |K|."""
    a, b = _values(rho_a, grid, "rho_a"), _values(rho_b, grid, "rho_b")
    return float(np.sum(np.abs(a - b)) * grid.cell_volume)


def histogram_l1(positions: np.ndarray, grid: Grid, rho: np.ndarray) -> float:
    """L1 between the particle histogram and the cell values:
    sum_K |#{Y_p in K}/(N |K|) - rho_K| |K|."""
    return l1_density(cell_histogram(positions, grid), rho, grid)


def energy(rho: np.ndarray, rho_d: np.ndarray, flow: Union[Flow, str], grid: Grid) -> float:
    """Discrete energy F = sum_K |K| rho_d,K f(rho_K / rho_d,K) of the flow (Flow.energy)."""
    return get_flow(flow).energy(_values(rho, grid), _values(rho_d, grid, "rho_d"), grid.cell_volume)


# ------------------------------------------------------------------ exact 1D kernels

def _w1_vs_quadratic_cdf(s: np.ndarray, knots: np.ndarray, F: np.ndarray, f: np.ndarray,
                         q: np.ndarray) -> float:
    """int |F_emp(z) - F(z)| dz, exactly, for sorted samples s and a CDF F that is quadratic
    between sorted knots: F(z) = F_k + f_k (z - z_k) + q_k (z - z_k)^2 / 2 on [z_k, z_k+1],
    0 before the first knot and 1 after the last, with density f >= 0.

    On every interval between consecutive breakpoints (knots and samples) F_emp is a constant c
    and g = F - c is non-decreasing, so it has at most one root r and
    int |g| = int g - 2 int_0^r g, all in closed form.
    """
    n, K = s.size, knots.size
    # stable merge of two sorted runs: at equal values knots come first, so the running counts
    # below are exact on every interval of positive length (zero-length ones contribute 0)
    order = np.argsort(np.concatenate([knots, s]), kind="stable")
    z = np.concatenate([knots, s])[order]
    from_sample = order >= K
    left = z[:-1]
    L = np.diff(z)
    k = np.cumsum(~from_sample[:-1]) - 1          # last knot <= left
    below = np.cumsum(from_sample[:-1]) / n        # F_emp on the interval
    kc = np.clip(k, 0, K - 2)
    tau = left - knots[kc]
    qk = q[kc]
    f0 = np.maximum(f[kc] + qk * tau, 0.0)
    g0 = F[kc] + tau * (f[kc] + 0.5 * qk * tau) - below
    for mask, cdf in ((k < 0, 0.0), (k >= K - 1, 1.0)):  # outside the knots F is 0 or 1
        g0[mask] = cdf - below[mask]
        f0[mask] = 0.0
        qk[mask] = 0.0
    total = L * (g0 + L * (0.5 * f0 + L * qk / 6.0))     # int_0^L g
    g1 = g0 + L * (f0 + 0.5 * qk * L)
    # no root inside: g keeps its sign; with a root r, int |g| = int g - 2 int_0^r g
    cross = np.flatnonzero((g0 < 0) & (g1 > 0))
    g0c, f0c, qc = g0[cross], f0[cross], qk[cross]
    r = -2.0 * g0c / (f0c + np.sqrt(np.maximum(f0c**2 - 2.0 * qc * g0c, 0.0)))
    r = np.clip(r, 0.0, L[cross])
    head = r * (g0c + r * (0.5 * f0c + r * qc / 6.0))
    return float(np.sum(np.abs(total)) - np.sum(np.abs(total[cross]))
                 + np.sum(total[cross] - 2.0 * head))


def _cell_cdf_1d(grid: Grid, rho: np.ndarray):
    m = _masses(rho, grid)
    F = np.concatenate([[0.0], np.cumsum(m)])
    return grid.edges[0], F, m / grid.spacing[0]


def w1_samples_density_1d(samples: np.ndarray, grid: Grid, rho: np.ndarray) -> float:
    """Exact W1 = int |F_N(x) - F_rho(x)| dx between the empirical measure of the samples
    and the piecewise-constant density (F_rho piecewise linear between cell edges)."""
    if grid.dim != 1:
        raise InputError("w1_samples_density_1d needs a 1D grid")
    s = np.sort(_points(samples, 1)[:, 0])
    edges, F, f = _cell_cdf_1d(grid, rho)
    return _w1_vs_quadratic_cdf(s, edges, F, f, np.zeros_like(f))


def w1_samples_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Exact W1 = int |F_a(x) - F_b(x)| dx between two empirical measures on the line."""
    a = np.sort(np.asarray(a, dtype=float).ravel())
    b = np.sort(np.asarray(b, dtype=float).ravel())
    if a.size == 0 or b.size == 0 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InputError("w1_samples_1d needs two non-empty finite samples")
    z = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(a, z[:-1], side="right") / a.size
    fb = np.searchsorted(b, z[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * np.diff(z)))


def ks_1d(samples: np.ndarray, grid: Grid, rho: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic sup_x |F_N(x) - F_rho(x)|, exact: F_rho is continuous and
    monotone, so the sup is attained at a jump x_(i) of F_N, from the left (i/N) or right ((i+1)/N)."""
    if grid.dim != 1:
        raise InputError("ks_1d needs a 1D grid")
    s = np.sort(_points(samples, 1)[:, 0])
    edges, F, _ = _cell_cdf_1d(grid, rho)
    Fs = np.interp(s, edges, F)
    i = np.arange(s.size)
    return float(max(np.max((i + 1) / s.size - Fs), np.max(Fs - i / s.size)))


# ------------------------------------------------------------------ sliced W1 in 2D

def slice_angles(n_dirs: int, seed: Optional[int] = None) -> np.ndarray:
    """Angles theta_k = pi (k + u) / n_dirs, k < n_dirs, of the directions (cos, sin) on the
    half circle (a projection and its opposite give the same W1): u = 1/2 (midpoint rule) when
    seed is None, else u uniform in [0, 1) from the seed (a randomly rotated equispaced set)."""
    if int(n_dirs) < 1:
        raise InputError("n_dirs must be at least 1")
    u = 0.5 if seed is None else float(np.random.default_rng(seed).uniform())
    return np.pi * (np.arange(int(n_dirs)) + u) / int(n_dirs)


def _projected_cdf(grid: Grid, m: np.ndarray, theta: float):
    """The CDF of the density projected on (cos theta, sin theta), exactly.

    A uniform cell projects to a trapezoid (the convolution of uniforms of widths
    a = hx |cos|, b = hy |sin|), whose density has kinks at p -+ (a+b)/2 (slope jump +m/(ab))
    and p -+ |a-b|/2 (jump -m/(ab)); summing the jumps gives the slope q of the piecewise-linear
    projected density f, and F is piecewise quadratic between the sorted kinks.
    """
    c, s = np.cos(theta), np.sin(theta)
    hx, hy = grid.spacing
    a = max(hx * abs(c), _MIN_WIDTH * hx)
    b = max(hy * abs(s), _MIN_WIDTH * hy)
    p = (grid.centres[0][:, None] * c + grid.centres[1][None, :] * s).ravel()
    w = m.ravel() / (a * b)
    outer, inner = 0.5 * (a + b), 0.5 * abs(a - b)
    knots = np.concatenate([p - outer, p - inner, p + inner, p + outer])
    jumps = np.concatenate([w, -w, -w, w])
    # p is sorted along each row (sin >= 0), so timsort sees 4 nx sorted runs
    order = np.argsort(knots, kind="stable")
    knots, jumps = knots[order], jumps[order]
    q = np.cumsum(jumps)[:-1]
    L = np.diff(knots)
    f = np.concatenate([[0.0], np.cumsum(q * L)])[:-1]
    F = np.concatenate([[0.0], np.cumsum(f * L + 0.5 * q * L**2)])
    return knots, F, f, q


def w1_projected(samples: np.ndarray, grid: Grid, rho: np.ndarray, theta: float) -> float:
    """Exact W1 between the projections on (cos theta, sin theta) of the samples and of the
    piecewise-constant 2D density (axis-aligned directions: see _MIN_WIDTH)."""
    if grid.dim != 2:
        raise InputError("w1_projected needs a 2D grid")
    pts = _points(samples, 2)
    knots, F, f, q = _projected_cdf(grid, _masses(rho, grid), theta)
    s = np.sort(pts @ np.array([np.cos(theta), np.sin(theta)]))
    return _w1_vs_quadratic_cdf(s, knots, F, f, q)


def sliced_w1_2d(samples: np.ndarray, grid: Grid, rho: np.ndarray, n_dirs: int = 100,
                 seed: Optional[int] = None) -> float:
    """Sliced W1 = (1/pi) int_0^pi W1(P_theta mu_N, P_theta rho) d theta, by the mean over the
    directions of :func:`slice_angles`; each projected W1 is exact (:func:`w1_projected`).

    The only approximation is the angle quadrature: theta -> W1 is Lipschitz (constant at most
    the diameter of the box), so the mean over n_dirs midpoint angles is within
    pi * diam / (4 n_dirs) of the integral, and within O(n_dirs^-2) for piecewise-smooth cases
    (e.g. a translation).
    """
    if grid.dim != 2:
        raise InputError("sliced_w1_2d needs a 2D grid")
    pts = _points(samples, 2)
    m = _masses(rho, grid)
    total = 0.0
    angles = slice_angles(n_dirs, seed)
    for theta in angles:
        knots, F, f, q = _projected_cdf(grid, m, theta)
        s = np.sort(pts @ np.array([np.cos(theta), np.sin(theta)]))
        total += _w1_vs_quadratic_cdf(s, knots, F, f, q)
    return total / len(angles)


def sliced_w1_samples(a: np.ndarray, b: np.ndarray, n_dirs: int = 100,
                      seed: Optional[int] = None) -> float:
    """Sliced W1 between two point clouds in 2D: mean over :func:`slice_angles` of the exact
    1D W1 of their projections."""
    pa, pb = _points(a, 2), _points(b, 2)
    angles = slice_angles(n_dirs, seed)
    dirs = np.stack([np.cos(angles), np.sin(angles)])
    return float(np.mean([w1_samples_1d(pa @ d, pb @ d) for d in dirs.T]))


def w1_to_density(samples: np.ndarray, grid: Grid, rho: np.ndarray, n_dirs: int = 100) -> float:
    """W1 between samples and a cell density: exact in 1D, sliced (midpoint angles) in 2D."""
    if grid.dim == 1:
        return w1_samples_density_1d(samples, grid, rho)
    return sliced_w1_2d(samples, grid, rho, n_dirs=n_dirs)


def mc_floor_w1(grid: Grid, rho: np.ndarray, n: int, seeds: Union[int, Sequence[int]] = 20,
                quantile: float = 0.95, n_dirs: int = 100) -> float:
    """Monte-Carlo floor: the ``quantile`` over seeds of W1(mu_n, rho), mu_n the empirical
    measure of n exact samples of the cell density (:func:`sample_cell_density`), W1 as in
    :func:`w1_to_density`. ``seeds`` is a list of seeds or a count k (seeds 0..k-1)."""
    seeds = range(int(seeds)) if np.isscalar(seeds) else list(seeds)
    if len(seeds) == 0 or not 0 <= quantile <= 1:
        raise InputError("mc_floor_w1 needs at least one seed and 0 <= quantile <= 1")
    w = [w1_to_density(sample_cell_density(grid, rho, n, np.random.default_rng(sd)), grid, rho,
                       n_dirs) for sd in seeds]
    return float(np.quantile(w, quantile))
