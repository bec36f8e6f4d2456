"""The grid KDE (linear binning + FFT convolution with reflection) against the direct sum it approximates.

    rho_hat(x) = (1/N) sum_p sum_images phi_b(x - y),   images of Y_p: Y_p + 2kL and 2 lo - Y_p + 2kL,

evaluated here point by point at the cell centres (no binning, no FFT). Linear binning moves each
point's mass to the two neighbouring centres preserving its mean, so the binned estimate differs from
the direct sum by O(h^2 phi_b'') = O((h/b)^2) relative: second order in h at fixed b.
"""
from __future__ import annotations

import numpy as np
import pytest

from fpsolver.grid import Grid
from fpsolver.kde import kde_bandwidth, kde_on_grid


def _direct_reflected_kde(points: np.ndarray, grid: Grid, b: float) -> np.ndarray:
    lo, hi = grid.lower[0], grid.upper[0]
    L = hi - lo
    x = grid.centres[0][:, None]
    out = np.zeros(x.shape[0])
    for k in range(-2, 3):
        for y in (points + 2 * k * L, 2 * lo - points + 2 * k * L):
            out += np.exp(-0.5 * ((x - y[None, :]) / b) ** 2).sum(axis=1)
    out /= len(points) * np.sqrt(2 * np.pi) * b
    return out / (out.sum() * grid.cell_volume)


def test_kde_on_grid_converges_to_the_direct_reflected_sum_at_second_order():
    rng = np.random.default_rng(5)
    pts = np.concatenate([rng.normal(-0.5, 0.3, 300), rng.uniform(-1.0, -0.9, 40)])  # some near the wall
    pts = pts[(pts >= -1.0) & (pts <= 1.0)][:, None]
    b = 0.08
    errors = []
    for cells in (100, 200, 400):
        grid = Grid((-1.0,), (1.0,), (cells,))
        est = kde_on_grid(pts, grid, b)
        ref = _direct_reflected_kde(pts[:, 0], grid, b)
        errors.append(np.sum(np.abs(est - ref)) * grid.cell_volume)
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2) <= 0.15), (errors, orders)


def test_kde_bandwidth_is_silvermans_rule():
    """0.9 min(std, IQR/1.34) N^(-1/5) for a 1D sample, written out; floored at one cell on a grid."""
    x = np.random.default_rng(6).normal(0.0, 2.0, 5000)
    q75, q25 = np.percentile(x, [75, 25])
    expect = 0.9 * min(x.std(ddof=1), (q75 - q25) / 1.34) * 5000 ** -0.2
    assert kde_bandwidth(x[:, None]) == pytest.approx(expect, rel=1e-12)
    assert kde_bandwidth(x[:, None], Grid((-10.0,), (10.0,), (20,))) == 1.0
