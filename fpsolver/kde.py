"""Kernel density estimates on a grid: linear binning, Gaussian FFT convolution, reflection.

    rho_hat(x) = (1/N) sum_p phi_b(x - Y_p)  (+ the mirror images of Y_p in the walls),

phi_b the Gaussian of standard deviation b per axis. Reflection at the walls keeps the
estimate's mass inside the box and its normal derivative zero at the walls (MATH.md section 5).
"""
from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on shared cores spinning stalls parallel kernels.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from .grid import Grid


def kde_bandwidth(points: np.ndarray, grid: Grid | None = None) -> float:
    """Silverman's rule, b = 0.9 min(std, IQR/1.34) N^(-1/(d+4)) (averaged over axes).

    Floored at one grid cell when a grid is given, so the estimate is resolved.
    """
    pts = np.atleast_2d(np.asarray(points, float))
    n, d = pts.shape
    std = pts.std(axis=0, ddof=1) if n > 1 else np.ones(d)
    q75, q25 = np.percentile(pts, [75, 25], axis=0)
    spread = np.where((q75 - q25) > 0, np.minimum(std, (q75 - q25) / 1.34), std)
    b = float(0.9 * np.mean(spread) * n ** (-1.0 / (d + 4)))
    if grid is not None:
        b = max(b, max(grid.spacing))
    return b


def linear_binning(points: np.ndarray, grid: Grid, weights: np.ndarray | None = None) -> np.ndarray:
    """Counts on cell centres with linear (cloud-in-cell) weights; total weight preserved.

    Points between a wall and the first centre go wholly to the edge cell (this is the
    reflected image's share). Returns an array of grid.shape summing to sum(weights).
    """
    pts = np.atleast_2d(points)
    w = np.ones(len(pts)) if weights is None else np.asarray(weights, float)
    idx, frac = [], []
    for a in range(grid.dim):
        s = (pts[:, a] - grid.lower[a]) / grid.spacing[a] - 0.5
        s = np.clip(s, 0.0, grid.shape[a] - 1.0)
        i0 = np.minimum(np.floor(s).astype(np.int64), grid.shape[a] - 2)
        idx.append(i0)
        frac.append(s - i0)
    out = np.zeros(grid.shape)
    if grid.dim == 1:
        np.add.at(out, idx[0], w * (1 - frac[0]))
        np.add.at(out, idx[0] + 1, w * frac[0])
    else:
        for dx in (0, 1):
            fx = frac[0] if dx else 1 - frac[0]
            for dy in (0, 1):
                fy = frac[1] if dy else 1 - frac[1]
                np.add.at(out, (idx[0] + dx, idx[1] + dy), w * fx * fy)
    return out


def gaussian_smooth_reflect(counts: np.ndarray, grid: Grid, bandwidth: float) -> np.ndarray:
    """Convolve cell values with phi_b, reflecting at the walls, by FFT on an even extension."""
    out = counts
    for a in range(grid.dim):
        n = counts.shape[a]
        ext = np.concatenate([out, np.flip(out, axis=a)], axis=a)  # period 2n: exact reflection
        k = np.fft.rfftfreq(2 * n, d=grid.spacing[a])
        kernel = np.exp(-0.5 * (2 * np.pi * k * bandwidth) ** 2)
        shape = [1] * counts.ndim
        shape[a] = k.size
        sm = np.fft.irfft(np.fft.rfft(ext, axis=a) * kernel.reshape(shape), n=2 * n, axis=a)
        out = np.take(sm, np.arange(n), axis=a)
    return out


def kde_on_grid(points: np.ndarray, grid: Grid, bandwidth: float) -> np.ndarray:
    """Reflected Gaussian KDE of ``points`` at the cell centres, unit mass on the grid."""
    counts = linear_binning(points, grid)
    dens = gaussian_smooth_reflect(counts, grid, bandwidth)
    dens = np.maximum(dens, 0.0)
    return dens / (dens.sum() * grid.cell_volume)


# --- Numba version of the binning (kept next to the numpy reference; tests check they agree) ---

_BIN_CHUNK = 32768   # points per private histogram: the partition depends on N only
_BIN_MAX_CHUNKS = 16


def _bin_chunks(n: int) -> int:
    """Number of private histograms: fixed by N, so the sums do not depend on the thread count."""
    return int(min(_BIN_MAX_CHUNKS, max(1, -(-n // _BIN_CHUNK))))


@numba.njit(cache=True, inline="always")
def cell_coordinate(x, lo, inv_h, n):
    """(i0, frac): x lies between cell centres i0 and i0 + 1 at fraction frac (clamped to the grid)."""
    s = (x - lo) * inv_h - 0.5
    s = min(max(s, 0.0), n - 1.0)
    i0 = min(int(s), n - 2)  # s >= 0, so truncation is the floor
    return i0, s - i0


@numba.njit(cache=True, parallel=True)
def _bin_linear_1d(x, lo, h, n, nchunks):
    """Cloud-in-cell counts of x[:, 0] on n cell centres; private histogram per chunk."""
    m = x.shape[0]
    ih = 1.0 / h
    part = np.zeros((nchunks, n))
    for c in numba.prange(nchunks):
        for p in range(c * m // nchunks, (c + 1) * m // nchunks):
            i0, f = cell_coordinate(x[p, 0], lo, ih, n)
            part[c, i0] += 1.0 - f
            part[c, i0 + 1] += f
    out = np.zeros(n)
    for c in range(nchunks):  # fixed order: deterministic sums
        out += part[c]
    return out


@numba.njit(cache=True, parallel=True)
def _bin_linear_2d(x, lo0, h0, n0, lo1, h1, n1, nchunks):
    """Cloud-in-cell counts on an n0 x n1 grid of cell centres; private histogram per chunk."""
    m = x.shape[0]
    ih0, ih1 = 1.0 / h0, 1.0 / h1
    part = np.zeros((nchunks, n0, n1))
    for c in numba.prange(nchunks):
        for p in range(c * m // nchunks, (c + 1) * m // nchunks):
            i, fx = cell_coordinate(x[p, 0], lo0, ih0, n0)
            j, fy = cell_coordinate(x[p, 1], lo1, ih1, n1)
            part[c, i, j] += (1.0 - fx) * (1.0 - fy)
            part[c, i, j + 1] += (1.0 - fx) * fy
            part[c, i + 1, j] += fx * (1.0 - fy)
            part[c, i + 1, j + 1] += fx * fy
    out = np.empty((n0, n1))
    for i in numba.prange(n0):  # rows in parallel, chunks summed in a fixed order
        for j in range(n1):
            acc = 0.0
            for c in range(nchunks):
                acc += part[c, i, j]
            out[i, j] = acc
    return out


def linear_binning_numba(points: np.ndarray, grid: Grid) -> np.ndarray:
    """Numba version of :func:`linear_binning` (unit weights), same convention and result.

    Each of a fixed number of point chunks fills a private histogram; the histograms are added
    in a fixed order, so the counts are identical for any number of threads.
    """
    pts = np.ascontiguousarray(np.atleast_2d(points), dtype=float)
    nch = _bin_chunks(len(pts))
    if grid.dim == 1:
        return _bin_linear_1d(pts, grid.lower[0], grid.spacing[0], grid.shape[0], nch)
    return _bin_linear_2d(pts, grid.lower[0], grid.spacing[0], grid.shape[0],
                          grid.lower[1], grid.spacing[1], grid.shape[1], nch)
