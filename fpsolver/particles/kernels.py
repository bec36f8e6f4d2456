"""Numba kernels of the particle solvers, each next to the plain numpy function it replaces.

Conventions shared with :func:`fpsolver.kde.linear_binning`: a value on the cell centres of an
axis with n cells, lower wall ``lo`` and spacing ``h`` is read at x by linear interpolation in
s = (x - lo)/h - 1/2, clamped to [0, n - 1] (constant between a wall and the first centre,
which is the reflected estimate's zero normal derivative). Kernels loop over particles in
parallel; each particle's result is computed alone, so results do not depend on the thread
count. Maxima used for step control are taken per fixed chunk and then reduced in order.
"""
from __future__ import annotations

import numba
import numpy as np

from ..kde import cell_coordinate

N_CHUNKS = 64        # chunks for the per-chunk maxima (fixed, not the thread count)


# ------------------------------------------------------------------ reflection

def reflect_numpy(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Mirror points into the box [lower, upper] (reflecting walls), any distance outside."""
    lo, hi = np.asarray(lower, float), np.asarray(upper, float)
    length = hi - lo
    y = np.mod(x - lo, 2 * length)
    y = np.where(y > length, 2 * length - y, y)
    out = np.where((x >= lo) & (x <= hi), x, lo + y)
    return np.clip(out, lo, hi)


@numba.njit(cache=True, inline="always")
def _reflect_scalar(x, lo, hi):
    if x >= lo and x <= hi:
        return x
    length = hi - lo
    y = np.mod(x - lo, 2.0 * length)
    if y > length:
        y = 2.0 * length - y
    return min(max(lo + y, lo), hi)


@numba.njit(cache=True, parallel=True)
def move_reflect(x, v, h, lower, upper, out):
    """out = reflect(x + h v): an explicit move followed by reflection at the walls."""
    n, d = x.shape
    for p in numba.prange(n):
        for a in range(d):
            out[p, a] = _reflect_scalar(x[p, a] + h * v[p, a], lower[a], upper[a])
    return out


@numba.njit(cache=True, parallel=True)
def heun_move_reflect(x, v1, v2, h, lower, upper, out):
    """out = reflect(x + h (v1 + v2) / 2): the Heun corrector."""
    n, d = x.shape
    for p in numba.prange(n):
        for a in range(d):
            out[p, a] = _reflect_scalar(x[p, a] + 0.5 * h * (v1[p, a] + v2[p, a]), lower[a], upper[a])
    return out


# ------------------------------------------------------------------ interpolation from cells

def interp_cells_numpy(x: np.ndarray, values: np.ndarray, lower, spacing) -> np.ndarray:
    """Linear interpolation of cell-centre ``values`` (shape n or (n0, n1)) at points x (M, d)."""
    x = np.atleast_2d(x)
    idx, frac = [], []
    for a, n in enumerate(values.shape):
        s = np.clip((x[:, a] - lower[a]) / spacing[a] - 0.5, 0.0, n - 1.0)
        i0 = np.minimum(np.floor(s).astype(np.int64), n - 2)
        idx.append(i0)
        frac.append(s - i0)
    if values.ndim == 1:
        return (1 - frac[0]) * values[idx[0]] + frac[0] * values[idx[0] + 1]
    i, j, fx, fy = idx[0], idx[1], frac[0], frac[1]
    return ((1 - fx) * ((1 - fy) * values[i, j] + fy * values[i, j + 1])
            + fx * ((1 - fy) * values[i + 1, j] + fy * values[i + 1, j + 1]))


def interp_field_numpy(x: np.ndarray, field: np.ndarray, lower, spacing) -> np.ndarray:
    """A vector field (d, *shape) of cell values read at points x (M, d): shape (M, d)."""
    return np.stack([interp_cells_numpy(x, f, lower, spacing) for f in field], axis=1)


@numba.njit(cache=True, parallel=True)
def interp_cells_1d(x, values, lo, h, out):
    """Numba version of :func:`interp_cells_numpy` in 1D (values of shape (n,)), into ``out`` (M,)."""
    n = values.shape[0]
    ih = 1.0 / h
    for p in numba.prange(x.shape[0]):
        i, s = cell_coordinate(x[p, 0], lo, ih, n)
        out[p] = (1.0 - s) * values[i] + s * values[i + 1]
    return out


@numba.njit(cache=True, parallel=True)
def interp_cells_2d(x, values, lo0, h0, lo1, h1, out):
    """Numba version of :func:`interp_cells_numpy` in 2D (values of shape (n0, n1)), into ``out`` (M,)."""
    n0, n1 = values.shape
    ih0, ih1 = 1.0 / h0, 1.0 / h1
    for p in numba.prange(x.shape[0]):
        i, s = cell_coordinate(x[p, 0], lo0, ih0, n0)
        j, r = cell_coordinate(x[p, 1], lo1, ih1, n1)
        out[p] = ((1.0 - s) * ((1.0 - r) * values[i, j] + r * values[i, j + 1])
                  + s * ((1.0 - r) * values[i + 1, j] + r * values[i + 1, j + 1]))
    return out


def interp_field_1d(x, field, lo, h, out):
    """:func:`interp_field_numpy` in 1D (field of shape (1, n)), into ``out`` (M, 1): the one
    component by :func:`interp_cells_1d`."""
    interp_cells_1d(x, field[0], lo, h, out[:, 0])
    return out


@numba.njit(cache=True, parallel=True)
def interp_field_2d(x, field, lo0, h0, lo1, h1, out):
    """Numba version of :func:`interp_field_numpy` in 2D (field of shape (2, n0, n1))."""
    n0, n1 = field.shape[1], field.shape[2]
    ih0, ih1 = 1.0 / h0, 1.0 / h1
    for p in numba.prange(x.shape[0]):
        i, fx = cell_coordinate(x[p, 0], lo0, ih0, n0)
        j, fy = cell_coordinate(x[p, 1], lo1, ih1, n1)
        w00, w01 = (1.0 - fx) * (1.0 - fy), (1.0 - fx) * fy
        w10, w11 = fx * (1.0 - fy), fx * fy
        for a in range(2):
            out[p, a] = (w00 * field[a, i, j] + w01 * field[a, i, j + 1]
                         + w10 * field[a, i + 1, j] + w11 * field[a, i + 1, j + 1])
    return out


# ------------------------------------------------------------------ face velocities (superposition)

def interp_faces_numpy(x: np.ndarray, faces: list, lower, spacing) -> np.ndarray:
    """Velocity at points x (M, d) from face values, staggered (MAC) interpolation.

    ``faces[a]`` holds the a-component on all faces normal to axis a, walls included: shape
    n_a + 1 along a and n_b (cell centres) along the other axis. Component a is linear in the
    face coordinate (x_a - lo_a) / h_a along a and linear between cell centres (clamped) along b.
    """
    x = np.atleast_2d(x)
    d = x.shape[1]
    out = np.empty_like(x, dtype=float)
    for a in range(d):
        vals = faces[a]
        n = vals.shape[a] - 1
        s = np.clip((x[:, a] - lower[a]) / spacing[a], 0.0, float(n))
        i = np.minimum(np.floor(s).astype(np.int64), n - 1)
        f = s - i
        if d == 1:
            out[:, 0] = (1 - f) * vals[i] + f * vals[i + 1]
            continue
        b = 1 - a
        m = vals.shape[b]
        sb = np.clip((x[:, b] - lower[b]) / spacing[b] - 0.5, 0.0, m - 1.0)
        j = np.minimum(np.floor(sb).astype(np.int64), m - 2)
        g = sb - j
        if a == 0:
            lo_, hi_ = vals[i, j] * (1 - g) + vals[i, j + 1] * g, vals[i + 1, j] * (1 - g) + vals[i + 1, j + 1] * g
        else:
            lo_, hi_ = vals[j, i] * (1 - g) + vals[j + 1, i] * g, vals[j, i + 1] * (1 - g) + vals[j + 1, i + 1] * g
        out[:, a] = (1 - f) * lo_ + f * hi_
    return out


@numba.njit(cache=True, inline="always")
def _face_coord(x, lo, inv_h, n):
    s = min(max((x - lo) * inv_h, 0.0), float(n))
    i = min(int(s), n - 1)
    return i, s - i


@numba.njit(cache=True, parallel=True)
def interp_faces_1d(x, vf, lo, h, out):
    """Numba version of :func:`interp_faces_numpy` in 1D; returns max |v| (per-chunk maxima)."""
    n = vf.shape[0] - 1
    m = x.shape[0]
    ih = 1.0 / h
    vmax = np.zeros(N_CHUNKS)
    for c in numba.prange(N_CHUNKS):
        vm = 0.0
        for p in range(c * m // N_CHUNKS, (c + 1) * m // N_CHUNKS):
            i, f = _face_coord(x[p, 0], lo, ih, n)
            v = (1.0 - f) * vf[i] + f * vf[i + 1]
            out[p, 0] = v
            vm = max(vm, abs(v))
        vmax[c] = vm
    return vmax.max()


@numba.njit(cache=True, parallel=True)
def interp_faces_2d(x, vx, vy, lo0, h0, lo1, h1, out):
    """Numba version of :func:`interp_faces_numpy` in 2D; returns max |v| over components."""
    n0, n1 = vy.shape[0], vx.shape[1]
    m = x.shape[0]
    ih0, ih1 = 1.0 / h0, 1.0 / h1
    vmax = np.zeros(N_CHUNKS)
    for c in numba.prange(N_CHUNKS):
        vm = 0.0
        for p in range(c * m // N_CHUNKS, (c + 1) * m // N_CHUNKS):
            i, f = _face_coord(x[p, 0], lo0, ih0, n0)
            j, g = cell_coordinate(x[p, 1], lo1, ih1, n1)
            a = ((1.0 - f) * (vx[i, j] * (1.0 - g) + vx[i, j + 1] * g)
                 + f * (vx[i + 1, j] * (1.0 - g) + vx[i + 1, j + 1] * g))
            j, g = _face_coord(x[p, 1], lo1, ih1, n1)
            i, f = cell_coordinate(x[p, 0], lo0, ih0, n0)
            b = ((1.0 - g) * (vy[i, j] * (1.0 - f) + vy[i + 1, j] * f)
                 + g * (vy[i, j + 1] * (1.0 - f) + vy[i + 1, j + 1] * f))
            out[p, 0] = a
            out[p, 1] = b
            vm = max(vm, max(abs(a), abs(b)))
        vmax[c] = vm
    return vmax.max()
