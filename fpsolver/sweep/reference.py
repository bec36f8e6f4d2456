"""Errors of a run against the sweep's reference density, at the run's final time.

Density runs: the reference is brought onto the run's cells (unchanged when the grids agree,
otherwise by cubic splines through its cell values, interpolation error O(h_ref^4), as the
fine-grid reference of the spatial-order study does) and

    L1 = sum_K |rho_K - rho_ref(x_K)| |K|.

W1 (1D) is exact between the two piecewise-constant densities on their own cells, each
normalised to mass 1: W1 = int |F - F_ref| dx, both CDFs piecewise linear, so the integral
is exact on the merged cell edges. In 2D W1 is left blank.
Particle runs: L1 of the particle histogram on the reference's cells and W1 of the particles
to the reference (exact in 1D, sliced in 2D), as ``fpsolver compare`` reports them.
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline, RectBivariateSpline

from .. import metrics
from ..errors import InputError
from ..grid import Grid
from ..result import Result

TIME_RTOL = 1e-9   # as fpsolver compare: save times match to 1e-9 max(1, |t|)
BOX_RTOL = 1e-9    # the two grids must cover the same box


def reference_errors(res: Result, ref: Result) -> tuple[float, float]:
    """(L1, W1) of ``res`` at its final time against ``ref`` at the same time (W1 NaN in 2D densities)."""
    t = float(res.t[-1])
    j = int(np.argmin(np.abs(ref.t - t)))
    if abs(ref.t[j] - t) > TIME_RTOL * max(1.0, abs(t)):
        raise InputError(f"the reference has no save time t = {t:g}")
    ref_rho, ref_grid = ref.rho[j], ref.grid
    if res.kind == "particles":
        pts = res.positions[-1]
        return metrics.histogram_l1(pts, ref_grid, ref_rho), metrics.w1_to_density(pts, ref_grid, ref_rho)
    grid = res.grid
    same_box(grid, ref_grid)
    rho = res.rho[-1]
    on_grid = ref_rho if grid.shape == ref_grid.shape else _interpolate(ref_grid, ref_rho, grid)
    l1 = float(np.sum(np.abs(rho - on_grid)) * grid.cell_volume)
    w1 = w1_densities_1d(grid, rho, ref_grid, ref_rho) if grid.dim == 1 else float("nan")
    return l1, w1


def same_box(a: Grid, b: Grid) -> None:
    """InputError unless the two grids cover the same box (their cells may differ)."""
    scale = max(max(abs(v) for v in a.lower + a.upper), 1.0)
    if a.dim != b.dim or any(abs(x - y) > BOX_RTOL * scale for x, y in
                             zip(a.lower + a.upper, b.lower + b.upper)):
        raise InputError(f"the reference's domain {b.lower}..{b.upper} differs from the run's {a.lower}..{a.upper}")


def _interpolate(src: Grid, values: np.ndarray, dst: Grid) -> np.ndarray:
    if src.dim == 1:
        return CubicSpline(src.centres[0], values)(dst.centres[0])
    return RectBivariateSpline(*src.centres, values, kx=3, ky=3, s=0)(*dst.centres)


def _cdf(grid: Grid, rho: np.ndarray):
    m = np.asarray(rho, float) * grid.cell_volume
    return grid.edges[0], np.concatenate([[0.0], np.cumsum(m) / m.sum()])


def w1_densities_1d(grid_a: Grid, rho_a: np.ndarray, grid_b: Grid, rho_b: np.ndarray) -> float:
    """int |F_a - F_b| dx for piecewise-constant densities on two 1D grids of the same box, exactly.

    On each interval between merged edges d = F_a - F_b is linear, from d0 to d1 over length L:
    int |d| = L (|d0| + |d1|) / 2 without a sign change, L (d0^2 + d1^2) / (2 (|d0| + |d1|)) with one.
    """
    ea, fa = _cdf(grid_a, rho_a)
    eb, fb = _cdf(grid_b, rho_b)
    z = np.union1d(ea, eb)
    d = np.interp(z, ea, fa) - np.interp(z, eb, fb)
    d0, d1, L = d[:-1], d[1:], np.diff(z)
    a0, a1 = np.abs(d0), np.abs(d1)
    same = d0 * d1 >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = L * (d0 * d0 + d1 * d1) / (2.0 * (a0 + a1))
    return float(np.sum(np.where(same, L * (a0 + a1) / 2.0, crossing)))
