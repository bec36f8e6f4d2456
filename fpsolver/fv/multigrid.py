"""Geometric multigrid for the 2-D Newton system (I - C) y = f of :mod:`fpsolver.fv.newton`.

The scaled Newton matrix is a diagonal similarity of a symmetric positive definite one
(MATH.md section 3: the Jacobi-scaled s-form Jacobian),

    I - C = D^{-1} (I - Chat) D,    Chat_ij = h T_f exp(l_f + g_i + g_j),   g = (log p - log J) / 2,
    log D = log c - g,

(C_ij = Chat_ij D_j / D_i, so Chat_ij = sqrt(C_ij C_ji) is O(1) however wide the ratios are), and
y = D^{-1} z with (I - Chat) z = D f. That system is solved by conjugate gradients preconditioned
by one V-cycle. The stopping test is the one of the Jacobi path, on the residual of the original
system: ||D^{-1} (D f - (I - Chat) z)||_2 <= eta ||f||_2. D spans e^{+-1000s} only in the far
tails of the GAN regime; where its range does not fit in double precision the caller keeps the
Jacobi-preconditioned BiCGStab (:func:`scaling`).

The V-cycle: the grid is a structured tensor grid and I - Chat a symmetric 5-point matrix with
unit diagonal and non-negative couplings (x-faces ``sx``, y-faces ``sy``). Coarse levels are
the Galerkin products P^T A P with piecewise-constant P over 2x2 cell agglomerates (cell-centred:
a coarse equation is the sum of its four children's), with the couplings then halved at fixed
row sums: a coarse face spans two fine faces while T_f = |sigma_f| / |x_j - x_i| is the same on
every level in 2-D, so the plain Galerkin product doubles the diffusion part of the operator
relative to the coarse discretisation, the known defect of piecewise-constant coarsening of
cell-centred diffusion (measured on the Newton matrix of two_mode_2d at t = 0, random right-hand
side, tolerance 1e-10, V-cycle-preconditioned BiCGStab: 6, 7, 8, 9 iterations at 128^2 ... 1024^2
with the halving, 7, 10, 14, 20 without). A coarse operator stays symmetric positive definite
(its diagonal is kept at least half the Galerkin one). The smoother is red-black Gauss-Seidel,
red then black before and black then red after the coarse correction, so the cycle is a
symmetric positive definite preconditioner (as CG needs); cells of one colour do not couple, so
a sweep has no dependency chain. The coarsest level (at most ``COARSEST`` cells) is solved with
a dense inverse.

Level shapes and work arrays depend only on the grid and are built once per run
(:func:`hierarchy_for`); the couplings change with every Newton iterate (the row scalings do)
and are re-aggregated per solve, at the cost of about one smoothing sweep. Every loop and sum
has a fixed order: bitwise reproducible.
"""
from __future__ import annotations

import numba
import threading

import numpy as np

from .operators import _dot

COARSEST = 64           # cells on the level solved directly
MAX_LOG_RANGE = 1300.0  # D = exp(log D - centre) is representable when log D spans less than this


class _Level:
    def __init__(self, shape):
        nx, ny = shape
        self.d = np.zeros(shape)
        self.sx, self.sy = np.zeros((max(nx - 1, 0), ny)), np.zeros((nx, max(ny - 1, 0)))
        self.x, self.b = np.zeros(shape), np.zeros(shape)


def _shapes(shape) -> list:
    """Level shapes from the fine one down to the first with at most COARSEST cells."""
    out = [tuple(shape)]
    while out[-1][0] * out[-1][1] > COARSEST and min(out[-1]) > 1:
        nx, ny = out[-1]
        out.append(((nx + 1) // 2, (ny + 1) // 2))
    return out


class Hierarchy:
    """Work arrays of every level for one grid shape (build once per run; module docstring)."""

    def __init__(self, shape):
        self.levels = [_Level(s) for s in _shapes(shape)]
        self.shape = tuple(shape)
        self._inv = None

    def set_operator(self, sx: np.ndarray, sy: np.ndarray) -> None:
        """Take the fine couplings of I - Chat (unit diagonal) and aggregate them to every level."""
        fine = self.levels[0]
        fine.d[:] = 1.0
        fine.sx, fine.sy = sx, sy
        for lo, hi in zip(self.levels[:-1], self.levels[1:]):
            _coarsen(lo.d, lo.sx, lo.sy, hi.d, hi.sx, hi.sy)
        self._inv = np.linalg.inv(_dense(self.levels[-1]))   # <= 64 x 64

    def vcycle(self, f: np.ndarray, out: np.ndarray) -> None:
        """out = one V(1,1)-cycle applied to f from a zero start (the preconditioner M^{-1} f)."""
        self._cycle(0, f, out)

    def _cycle(self, k, f, x):
        lv = self.levels[k]
        if k == len(self.levels) - 1:
            x[:] = (self._inv @ f.ravel()).reshape(f.shape)
            return
        x[:] = 0.0
        _red_black(lv.d, lv.sx, lv.sy, f, x, True)
        nxt = self.levels[k + 1]
        _restrict_residual(lv.d, lv.sx, lv.sy, f, x, nxt.b)
        self._cycle(k + 1, nxt.b, nxt.x)
        _prolong_add(nxt.x, x)
        _red_black(lv.d, lv.sx, lv.sy, f, x, False)


def _dense(lv: _Level) -> np.ndarray:
    nx, ny = lv.d.shape
    idx = np.arange(nx * ny).reshape(nx, ny)
    a = np.diag(lv.d.ravel().copy())
    for s, lo, hi in ((lv.sx, idx[:-1], idx[1:]), (lv.sy, idx[:, :-1], idx[:, 1:])):
        a[lo.ravel(), hi.ravel()] = -s.ravel()
        a[hi.ravel(), lo.ravel()] = -s.ravel()
    return a


_LOCAL = threading.local()     # work arrays are overwritten by every solve: one set per thread


def hierarchy_for(shape) -> Hierarchy:
    """The hierarchy for a grid shape, built once per thread and reused by every step of a run
    (two solves in two threads, e.g. a multi-threaded Dask worker, never share work arrays)."""
    cache = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    key = tuple(shape)
    if key not in cache:
        if len(cache) >= 4:
            cache.clear()
        cache[key] = Hierarchy(key)
    return cache[key]


def scaling(op, log_p, lj, lc, h):
    """(sx, sy, D) of the symmetric form (module docstring), or None where D is not representable."""
    g = 0.5 * (log_p - lj)
    log_d = lc - g
    lo, hi = float(np.min(log_d)), float(np.max(log_d))
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi - lo > MAX_LOG_RANGE:
        return None
    with np.errstate(under="ignore"):
        sx = np.exp(np.log(h * op.tx) + op.lfx + g[:-1] + g[1:])
        sy = np.exp(np.log(h * op.ty) + op.lfy + g[:, :-1] + g[:, 1:])
        d = np.exp(log_d - 0.5 * (lo + hi))
    if not (np.all(np.isfinite(sx)) and np.all(np.isfinite(sy))):
        return None
    return sx, sy, d


# ------------------------------------------------------------------ Numba kernels

@numba.njit(cache=True)
def _coarsen(d, sx, sy, dc, sxc, syc):
    """Galerkin P^T A P over 2x2 agglomerates (diagonal: the children's diagonals minus twice
    their mutual couplings; a coarse coupling: the fine couplings across), then the couplings
    halved at fixed row sums, the diagonal kept >= half its Galerkin value."""
    nx, ny = d.shape
    dc[:] = 0.0
    sxc[:] = 0.0
    syc[:] = 0.0
    for i in range(nx):
        for j in range(ny):
            dc[i // 2, j // 2] += d[i, j]
    for i in range(nx - 1):
        for j in range(ny):
            if i % 2 == 0:
                dc[i // 2, j // 2] -= 2.0 * sx[i, j]
            else:
                sxc[i // 2, j // 2] += sx[i, j]
    for i in range(nx):
        for j in range(ny - 1):
            if j % 2 == 0:
                dc[i // 2, j // 2] -= 2.0 * sy[i, j]
            else:
                syc[i // 2, j // 2] += sy[i, j]
    mx, my = dc.shape
    for i in range(mx):
        for j in range(my):
            half = 0.0
            if i > 0:
                half += sxc[i - 1, j]
            if i < mx - 1:
                half += sxc[i, j]
            if j > 0:
                half += syc[i, j - 1]
            if j < my - 1:
                half += syc[i, j]
            dc[i, j] = max(dc[i, j] - 0.5 * half, 0.5 * dc[i, j])
    for i in range(mx - 1):
        for j in range(my):
            sxc[i, j] *= 0.5
    for i in range(mx):
        for j in range(my - 1):
            syc[i, j] *= 0.5


# (the neighbour sum is written out in each kernel: a shared helper, even inlined, compiled 30x slower)

@numba.njit(cache=True)
def _red_black(d, sx, sy, f, x, forward):
    """One red-black Gauss-Seidel sweep for d x - Chat x = f: red ((i + j) even) then black, or
    black then red (the adjoint, after the coarse correction)."""
    nx, ny = d.shape
    for k in range(2):
        colour = k if forward else 1 - k
        for i in range(nx):
            for j in range((i + colour) % 2, ny, 2):
                v = f[i, j]
                if i > 0:
                    v += sx[i - 1, j] * x[i - 1, j]
                if i < nx - 1:
                    v += sx[i, j] * x[i + 1, j]
                if j > 0:
                    v += sy[i, j - 1] * x[i, j - 1]
                if j < ny - 1:
                    v += sy[i, j] * x[i, j + 1]
                x[i, j] = v / d[i, j]


@numba.njit(cache=True)
def _restrict_residual(d, sx, sy, f, x, bc):
    """bc = P^T (f - A x): the residual summed over each agglomerate."""
    nx, ny = d.shape
    bc[:] = 0.0
    for i in range(nx):
        for j in range(ny):
            v = f[i, j] - d[i, j] * x[i, j]
            if i > 0:
                v += sx[i - 1, j] * x[i - 1, j]
            if i < nx - 1:
                v += sx[i, j] * x[i + 1, j]
            if j > 0:
                v += sy[i, j - 1] * x[i, j - 1]
            if j < ny - 1:
                v += sy[i, j] * x[i, j + 1]
            bc[i // 2, j // 2] += v


@numba.njit(cache=True)
def _prolong_add(xc, x):
    """x += P xc (piecewise constant)."""
    nx, ny = x.shape
    for i in range(nx):
        for j in range(ny):
            x[i, j] += xc[i // 2, j // 2]


@numba.njit(cache=True)
def _apply(sx, sy, x, out):
    """out = (I - Chat) x."""
    nx, ny = x.shape
    for i in range(nx):
        for j in range(ny):
            v = 0.0
            if i > 0:
                v += sx[i - 1, j] * x[i - 1, j]
            if i < nx - 1:
                v += sx[i, j] * x[i + 1, j]
            if j > 0:
                v += sy[i, j - 1] * x[i, j - 1]
            if j < ny - 1:
                v += sy[i, j] * x[i, j + 1]
            out[i, j] = x[i, j] - v


@numba.njit(cache=True)
def _update_xr(x, r, alpha, p, q, d, rs):
    """x += alpha p, r -= alpha q; returns ||r / D||^2 (the residual of the original system)."""
    nx, ny = x.shape
    s0 = s1 = 0.0
    for i in range(nx):
        for j in range(ny):
            x[i, j] += alpha * p[i, j]
            r[i, j] -= alpha * q[i, j]
            v = r[i, j] / d[i, j]
            rs[i, j] = v
            if j % 2 == 0:
                s0 += v * v
            else:
                s1 += v * v
    return s0 + s1


@numba.njit(cache=True)
def _new_direction(p, z, beta):
    """p = z + beta p."""
    nx, ny = p.shape
    for i in range(nx):
        for j in range(ny):
            p[i, j] = z[i, j] + beta * p[i, j]


# ------------------------------------------------------------------ the Krylov solve

def mg_cg(sx, sy, d, f: np.ndarray, y: np.ndarray, rtol: float, maxiter: int) -> int:
    """Solve (I - C) y = f through the symmetric form by V-cycle-preconditioned CG; y starts at 0.

    Returns the iteration count, or -1 if ||f - (I - C) y||_2 <= rtol ||f||_2 was not reached.
    """
    hier = hierarchy_for(f.shape)
    hier.set_operator(sx, sy)
    x = np.zeros_like(f)
    r = d * f
    tol2 = rtol * rtol * _dot(f, f)
    if _dot(f, f) <= tol2:
        y[:] = 0.0
        return 0
    z, q, rs = np.empty_like(f), np.empty_like(f), np.empty_like(f)
    hier.vcycle(r, z)
    p = z.copy()
    rz = _dot(r, z)
    for it in range(1, maxiter + 1):
        _apply(sx, sy, p, q)
        pq = _dot(p, q)
        if not pq > 0.0:
            return -1
        res2 = _update_xr(x, r, rz / pq, p, q, d, rs)
        if res2 <= tol2:
            y[:] = x / d
            return it
        hier.vcycle(r, z)
        rz_new = _dot(r, z)
        _new_direction(p, z, rz_new / rz)
        rz = rz_new
    return -1
