"""The discrete operator of MATH.md section 3, scaled so nothing underflows.

Two-point fluxes on interior faces, no flux through walls. With a = sqrt(rho_d) (cells),
u = rho / rho_d and the (row-and-column) scaled face coefficients

    S_f = exp(l_f - (l_i + l_j) / 2) |sigma_f| / |x_j - x_i|,   l = log rho_d,

the backward-Euler residual of ``rho - h div(rho_d grad beta(u)) = b``, multiplied by the
cell volume V and divided by a_i, is

    Rhat_i = V (a_i u_i - bhat_i) - h sum_{j ~ i} S_f a_j (beta(u_j) - beta(u_i)),   bhat = b / a,

and the true (mass) residual is R_i = a_i Rhat_i. Its Newton matrix in w = log u, scaled
the same way, is  Atilde diag(a D),  D = beta'(u) u,  with the symmetric positive definite

    Atilde = V diag(1 / beta'(u)) + h Khat,   Khat_ii = sum_f exp(l_f - l_i) |sigma|/d,
    Khat_ij = -S_f,

(the s = beta(u) Jacobian of MATH.md, symmetrically scaled by diag(1/a)). All entries are
O(1) even 40 standard deviations into a Gaussian tail, where rho_d itself underflows.
Arrays are 2-D ``[ix, iy]``; a 1-D grid is stored with ny = 1 and no y-faces.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..densities import Discretised
from ..grid import Grid


@dataclass
class FVOperator:
    """Static, per-grid data of the scaled operator (built once per run)."""

    grid: Grid
    a: np.ndarray        # (nx, ny) sqrt(rho_d)
    log_rho_d: np.ndarray  # (nx, ny)
    sx: np.ndarray       # (nx-1, ny) scaled x-face coefficients S_f
    sy: np.ndarray       # (nx, ny-1) scaled y-face coefficients (shape (nx, 0) in 1D)
    ksum: np.ndarray     # (nx, ny) Khat diagonal: sum_f exp(l_f - l_i) |sigma|/d
    volume: float

    @classmethod
    def build(cls, grid: Grid, target: Discretised) -> "FVOperator":
        lc = target.log_cells.reshape(grid.shape[0], -1)
        dx = grid.spacing[0]
        dy = grid.spacing[1] if grid.dim == 2 else 1.0
        lfx = target.log_faces[0].reshape(grid.shape[0] - 1, -1)
        sx = np.exp(lfx - 0.5 * (lc[1:] + lc[:-1])) * (dy / dx)
        ksum = np.zeros_like(lc)
        ksum[:-1] += np.exp(lfx - lc[:-1]) * (dy / dx)
        ksum[1:] += np.exp(lfx - lc[1:]) * (dy / dx)
        if grid.dim == 2:
            lfy = target.log_faces[1]
            sy = np.exp(lfy - 0.5 * (lc[:, 1:] + lc[:, :-1])) * (dx / dy)
            ksum[:, :-1] += np.exp(lfy - lc[:, :-1]) * (dx / dy)
            ksum[:, 1:] += np.exp(lfy - lc[:, 1:]) * (dx / dy)
        else:
            sy = np.zeros((lc.shape[0], 0))
        return cls(grid, np.exp(0.5 * lc), lc, np.ascontiguousarray(sx), np.ascontiguousarray(sy),
                   ksum, grid.cell_volume)

    def rho(self, w: np.ndarray) -> np.ndarray:
        """rho = rho_d e^w, computed in log space."""
        return np.exp(self.log_rho_d + w)

    def mass(self, w: np.ndarray) -> float:
        return float(np.sum(self.rho(w)) * self.volume)


# ------------------------------------------------------------------ residual

def residual_numpy(op: FVOperator, u, bu, bhat, h):
    """Reference implementation of Rhat (module docstring), face by face."""
    r = op.volume * (op.a * u - bhat)
    r[:-1] -= h * op.sx * op.a[1:] * (bu[1:] - bu[:-1])    # left cell of each x-face
    r[1:] -= h * op.sx * op.a[:-1] * (bu[:-1] - bu[1:])    # right cell
    if op.sy.shape[1]:
        r[:, :-1] -= h * op.sy * op.a[:, 1:] * (bu[:, 1:] - bu[:, :-1])
        r[:, 1:] -= h * op.sy * op.a[:, :-1] * (bu[:, :-1] - bu[:, 1:])
    return r


@numba.njit(cache=True)
def residual_kernel(u, bu, a, bhat, sx, sy, vol, h, out):
    """Rhat into ``out``; returns (sum a|Rhat| (mass residual), sum a*scale (round-off scale))."""
    nx, ny = u.shape
    mres = 0.0
    msc = 0.0
    for i in range(nx):
        for j in range(ny):
            b_i = bu[i, j]
            r = vol * (a[i, j] * u[i, j] - bhat[i, j])
            sc = vol * (abs(a[i, j] * u[i, j]) + abs(bhat[i, j]))
            if i > 0:
                t = h * sx[i - 1, j] * a[i - 1, j]
                r -= t * (bu[i - 1, j] - b_i)
                sc += t * (abs(bu[i - 1, j]) + abs(b_i))
            if i < nx - 1:
                t = h * sx[i, j] * a[i + 1, j]
                r -= t * (bu[i + 1, j] - b_i)
                sc += t * (abs(bu[i + 1, j]) + abs(b_i))
            if j > 0:
                t = h * sy[i, j - 1] * a[i, j - 1]
                r -= t * (bu[i, j - 1] - b_i)
                sc += t * (abs(bu[i, j - 1]) + abs(b_i))
            if j < ny - 1:
                t = h * sy[i, j] * a[i, j + 1]
                r -= t * (bu[i, j + 1] - b_i)
                sc += t * (abs(bu[i, j + 1]) + abs(b_i))
            out[i, j] = r
            mres += a[i, j] * abs(r)
            msc += a[i, j] * sc
    return mres, msc


# ------------------------------------------------------------------ linear solves

@numba.njit(cache=True)
def thomas_kernel(diag, off, rhs, out):
    """Solve the SPD tridiagonal system (diag, off, off) x = rhs (1-D, no pivoting needed)."""
    n = diag.shape[0]
    c = np.empty(n)
    d = np.empty(n)
    beta = diag[0]
    c[0] = off[0] / beta if n > 1 else 0.0
    d[0] = rhs[0] / beta
    for i in range(1, n):
        beta = diag[i] - off[i - 1] * c[i - 1]
        if i < n - 1:
            c[i] = off[i] / beta
        d[i] = (rhs[i] - off[i - 1] * d[i - 1]) / beta
    out[n - 1] = d[n - 1]
    for i in range(n - 2, -1, -1):
        out[i] = d[i] - c[i] * out[i + 1]


_FAST = {"reassoc", "contract", "arcp", "nsz"}  # vectorised sums; NaN/inf semantics kept


@numba.njit(cache=True, fastmath=_FAST)
def _apply(diag, sx, sy, h, z, out):
    """out = Atilde z: diagonal, then each face's two off-diagonal entries (branch-free loops)."""
    nx, ny = z.shape
    for i in range(nx):
        for j in range(ny):
            out[i, j] = diag[i, j] * z[i, j]
    for i in range(nx - 1):
        for j in range(ny):
            c = h * sx[i, j]
            out[i, j] -= c * z[i + 1, j]
            out[i + 1, j] -= c * z[i, j]
    for i in range(nx):
        for j in range(ny - 1):
            c = h * sy[i, j]
            out[i, j] -= c * z[i, j + 1]
            out[i, j + 1] -= c * z[i, j]


@numba.njit(cache=True, fastmath=_FAST)
def pcg_kernel(diag, sx, sy, h, rhs, x, rtol, maxiter):
    """Jacobi-preconditioned CG for Atilde x = rhs (matrix-free 5-point); x is the start.

    Returns the iteration count, or -1 if ||r|| <= rtol ||rhs|| was not reached.
    Loops are fused and sequential, so results are bitwise reproducible.
    """
    nx, ny = rhs.shape
    r = np.empty_like(rhs)
    q = np.empty_like(rhs)
    _apply(diag, sx, sy, h, x, q)
    rnorm2 = 0.0
    bnorm2 = 0.0
    rz = 0.0
    p = np.empty_like(rhs)
    dinv = 1.0 / diag
    for i in range(nx):
        for j in range(ny):
            r[i, j] = rhs[i, j] - q[i, j]
            rnorm2 += r[i, j] * r[i, j]
            bnorm2 += rhs[i, j] * rhs[i, j]
            p[i, j] = r[i, j] * dinv[i, j]
            rz += r[i, j] * p[i, j]
    tol2 = rtol * rtol * bnorm2
    if rnorm2 <= tol2:
        return 0
    for it in range(1, maxiter + 1):
        _apply(diag, sx, sy, h, p, q)
        pq = 0.0
        for i in range(nx):
            for j in range(ny):
                pq += p[i, j] * q[i, j]
        alpha = rz / pq
        rnorm2 = 0.0
        rz_new = 0.0
        for i in range(nx):
            for j in range(ny):
                x[i, j] += alpha * p[i, j]
                r[i, j] -= alpha * q[i, j]
                rnorm2 += r[i, j] * r[i, j]
                rz_new += r[i, j] * r[i, j] * dinv[i, j]
        if rnorm2 <= tol2:
            return it
        beta = rz_new / rz
        rz = rz_new
        for i in range(nx):
            for j in range(ny):
                p[i, j] = r[i, j] * dinv[i, j] + beta * p[i, j]
    return -1


def newton_matrix_scipy(op: FVOperator, dbu, h):
    """Atilde as a scipy sparse matrix (for the plain reference solver and for tests)."""
    import scipy.sparse as sp

    nx, ny = op.a.shape
    idx = np.arange(nx * ny).reshape(nx, ny)
    rows = [idx.ravel()]
    cols = [idx.ravel()]
    vals = [(op.volume / dbu + h * op.ksum).ravel()]
    for s, i0, i1 in ((op.sx, idx[:-1], idx[1:]), (op.sy, idx[:, :-1], idx[:, 1:])):
        if s.size:
            rows += [i0.ravel(), i1.ravel()]
            cols += [i1.ravel(), i0.ravel()]
            vals += [-h * s.ravel(), -h * s.ravel()]
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(nx * ny, nx * ny))
