"""The discrete operator of MATH.md section 3, evaluated in log space for any density ratio.

Two-point fluxes on interior faces, no flux through walls. With l = log rho_d (cells), l_f
(faces), T_f = |sigma_f| / |x_j - x_i|, u = e^w and the volume V, the backward-Euler residual
of ``rho - h div(rho_d grad beta(u)) = b`` in mass units is

    R_i = V (rho_d,i e^{w_i} - b_i) - h sum_{f = (i, j)} T_f e^{l_f} (beta(u_j) - beta(u_i)),

and its Jacobian in w is the column-diagonally-dominant M-matrix

    J_ii = V rho_i + h p_i sum_f T_f e^{l_f},   J_ij = -h T_f e^{l_f} p_j,   p = u beta'(u) = d beta/dw.

Where the data are much narrower than the generator, rho_d, u and beta(u) span e^{+-1800} and
none of these products can be formed. So every row i is divided by a positive scale S_i (chosen
by :mod:`fpsolver.fv.newton` from J_ii) and every term is evaluated as one exponential of a sum
of logarithms: log S_i, the flow's log|beta| and log p (:mod:`fpsolver.flows`), l, l_f and the
right-hand side b = b_mant e^{b_log}; or, where every factor lies within e^{+-SAFE_LOG}, as the
product e^{l_f} beta_j / S_i of precomputed factors (equal up to the rounding of the
logarithms, and 4x cheaper).
The scaled Newton matrix I - C,

    C_ij = h T_f exp(l_f + log p_j + log e_j - log S_i),   e = S / J,

has unit diagonal and is similar to a symmetric positive definite matrix with the spectrum of
the Jacobi-scaled s-form Jacobian (MATH.md section 3), so its eigenvalues are real and positive.
Arrays are 2-D ``[ix, iy]``; a 1-D grid is stored with ny = 1 and no y-faces.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..grid import Grid


SAFE_LOG = 230.0   # three factors each within e^{+-230} multiply without over- or underflow


@dataclass
class FVOperator:
    """Static, per-grid data of the operator (built once per run), all in log space."""

    grid: Grid
    log_rho_d: np.ndarray   # (nx, ny) l
    lfx: np.ndarray         # (nx-1, ny) l_f on x-faces
    lfy: np.ndarray         # (nx, ny-1) l_f on y-faces (shape (nx, 0) in 1D)
    tx: float               # T_f on x-faces: dy / dx (1 / dx in 1D)
    ty: float               # T_f on y-faces: dx / dy
    log_k: np.ndarray       # (nx, ny) log sum_f T_f e^{l_f} over the cell's interior faces
    volume: float

    def __post_init__(self):
        # e^{l_f} where it is a safe factor (see _fast_factors), flagged per face
        self.okx, self.oky = np.abs(self.lfx) < SAFE_LOG, np.abs(self.lfy) < SAFE_LOG
        self.efx = np.where(self.okx, np.exp(np.where(self.okx, self.lfx, 0.0)), 0.0)
        self.efy = np.where(self.oky, np.exp(np.where(self.oky, self.lfy, 0.0)), 0.0)

    @classmethod
    def build(cls, grid: Grid, target) -> "FVOperator":
        nx = grid.shape[0]
        lc = target.log_cells.reshape(nx, -1)
        dx = grid.spacing[0]
        dy = grid.spacing[1] if grid.dim == 2 else 1.0
        tx, ty = dy / dx, dx / dy
        lfx = np.ascontiguousarray(target.log_faces[0].reshape(nx - 1, -1))
        terms = [np.full(lc.shape, -np.inf)]
        pad = np.full((1, lc.shape[1]), -np.inf)
        terms += [np.log(tx) + np.vstack([lfx, pad]), np.log(tx) + np.vstack([pad, lfx])]
        if grid.dim == 2:
            lfy = np.ascontiguousarray(target.log_faces[1])
            pad = np.full((nx, 1), -np.inf)
            terms += [np.log(ty) + np.hstack([lfy, pad]), np.log(ty) + np.hstack([pad, lfy])]
        else:
            lfy = np.zeros((nx, 0))
        log_k = np.logaddexp.reduce(np.stack(terms), axis=0)
        return cls(grid, np.ascontiguousarray(lc), lfx, lfy, tx, ty, log_k, grid.cell_volume)

    @property
    def shape(self) -> tuple:
        """(nx, ny) of the cell arrays (ny = 1 in 1D)."""
        return self.log_rho_d.shape

    @property
    def a(self) -> np.ndarray:
        """sqrt(rho_d) (the symmetric scaling of :attr:`sx`; underflows for very narrow targets)."""
        return np.exp(0.5 * self.log_rho_d)

    def rho(self, w: np.ndarray) -> np.ndarray:
        """rho = rho_d e^w, computed in log space (underflows to 0 only where rho itself does)."""
        return np.exp(self.log_rho_d + w)

    def mass(self, w: np.ndarray) -> float:
        return float(np.sum(self.rho(w)) * self.volume)

    # --- the symmetric scaled face operator Khat = D^{-1/2} K D^{-1/2}, D = diag(rho_d)
    # (O(1) entries even where rho_d underflows; the linearised operator of MATH.md section 6)
    @property
    def sx(self) -> np.ndarray:
        """Khat off-diagonal magnitudes on x-faces: T exp(l_f - (l_i + l_j)/2)."""
        return self.tx * np.exp(self.lfx - 0.5 * (self.log_rho_d[1:] + self.log_rho_d[:-1]))

    @property
    def sy(self) -> np.ndarray:
        if not self.lfy.size:
            return np.zeros((self.log_rho_d.shape[0], 0))
        return self.ty * np.exp(self.lfy - 0.5 * (self.log_rho_d[:, 1:] + self.log_rho_d[:, :-1]))

    @property
    def ksum(self) -> np.ndarray:
        """Khat diagonal: sum_f T exp(l_f - l_i)."""
        return np.exp(self.log_k - self.log_rho_d)


# ------------------------------------------------------------------ residual

@numba.njit(cache=True, inline="always")
def log_add_exp(a, b):
    """log(e^a + e^b) = max(a, b) + log1p(e^{-|a - b|}) for scalars, as ``np.logaddexp``: +-inf
    where the larger is infinite, NaN where either is NaN."""
    if np.isnan(a) or np.isnan(b):
        return a + b
    top = max(a, b)
    if np.isinf(top):
        return top
    return top + np.log1p(np.exp(-abs(a - b)))


@numba.njit(cache=True)
def scale_kernel(lrd, w, lp, lb, log_k, log_vol, log_h, log_mref, lj, lc, ls):
    """Per cell, into lj, lc, ls: log J_ii = log(V rho_i + h p_i sum_f T_f e^{l_f}) (module docstring),
    log c = min(log M_ref + log p - w - l, max(0, log|beta|)) and log S = log J + log c - log p
    (:mod:`fpsolver.fv.newton`), the logarithm of the sum as max + log1p(e^{-|a - b|})."""
    nx, ny = w.shape
    for i in range(nx):
        for j in range(ny):
            lj[i, j] = log_add_exp(log_vol + lrd[i, j] + w[i, j], log_h + lp[i, j] + log_k[i, j])
            lcap = lb[i, j] if not lb[i, j] <= 0.0 else 0.0       # np.maximum(0, lb): NaN stays NaN
            lm = log_mref + lp[i, j] - w[i, j] - lrd[i, j]
            lc[i, j] = lm if lm < lcap or np.isnan(lm) else lcap
            ls[i, j] = lj[i, j] + lc[i, j] - lp[i, j]


def residual_numpy(op: FVOperator, w, sb, lb, ls, b_mant, b_log, h):
    """Reference R_i / S_i and the round-off scale of each row (sum of its terms' magnitudes / S_i),
    every term the exponential of a sum of logarithms (``ls`` = log S)."""
    with np.errstate(over="ignore", invalid="ignore"):
        m = op.volume * np.exp(op.log_rho_d + w - ls)
        bb = op.volume * b_mant * np.exp(b_log - ls)
        r, sc = m - bb, m + np.abs(bb)
        faces = [(op.lfx, op.tx, np.s_[:-1], np.s_[1:])]
        if op.lfy.size:
            faces.append((op.lfy, op.ty, np.s_[:, :-1], np.s_[:, 1:]))
        for lf, t, lo, hi in faces:
            for me, nb in ((lo, hi), (hi, lo)):
                tj = h * t * sb[nb] * np.exp(lf + lb[nb] - ls[me])
                ti = h * t * sb[me] * np.exp(lf + lb[me] - ls[me])
                r[me] -= tj - ti
                sc[me] += np.abs(tj) + np.abs(ti)
    return r, sc


@numba.njit(cache=True)
def _fast_factors(sb, lb, ls, beta, inv_s, ok):
    """Per cell: (beta, e^{-log S}, ok) for the factored evaluation of the face terms.

    exp(l_f + log|beta_j| - log S_i) = e^{l_f} beta_j e^{-log S_i} when each factor lies within
    e^{+-SAFE_LOG}: one exponential per cell instead of four per face. ``ok`` marks the cells
    where that holds; elsewhere (the far tails of the GAN regime) the kernel takes the exponential
    of the sum.
    """
    nx, ny = sb.shape
    for i in range(nx):
        for j in range(ny):
            o = abs(lb[i, j]) < SAFE_LOG and abs(ls[i, j]) < SAFE_LOG
            ok[i, j] = o
            beta[i, j] = sb[i, j] * np.exp(lb[i, j]) if o else 0.0
            inv_s[i, j] = np.exp(-ls[i, j]) if o else 0.0


@numba.njit(cache=True, inline="always")
def _face_terms(lf, ef, okf, lj, inv, ok_i, sb_j, lb_j, b_j, ok_j, sb_i, lb_i, b_i, c):
    if okf and ok_i and ok_j:
        f = c * ef * inv
        return f * b_j, f * b_i
    return c * sb_j * np.exp(lf + lb_j - lj), c * sb_i * np.exp(lf + lb_i - lj)


@numba.njit(cache=True)
def residual_kernel(lrd, w, sb, lb, ls, bm, bl, lfx, efx, okx, lfy, efy, oky, tx, ty, vol, h, out):
    """R_i / S_i into ``out`` (``ls`` = log S); returns (sum_i |R_i| (mass residual), sum_i S_i scale_i).

    The face terms use the factors of :func:`_fast_factors` where all are in range (``okx``,
    ``oky``: |l_f| < SAFE_LOG), the exponential of the summed logarithms elsewhere.
    """
    nx, ny = w.shape
    beta, inv_s = np.empty((nx, ny)), np.empty((nx, ny))
    ok = np.empty((nx, ny), dtype=np.bool_)
    _fast_factors(sb, lb, ls, beta, inv_s, ok)
    cx, cy = h * tx, h * ty
    mres = 0.0
    msc = 0.0
    for i in range(nx):
        for j in range(ny):
            L = ls[i, j]
            inv, o = inv_s[i, j], ok[i, j]
            m = vol * np.exp(lrd[i, j] + w[i, j] - L)
            bb = vol * bm[i, j] * np.exp(bl[i, j] - L)
            r = m - bb
            sc = m + abs(bb)
            s_i, l_i, b_i = sb[i, j], lb[i, j], beta[i, j]
            if i > 0:
                a, b = _face_terms(lfx[i - 1, j], efx[i - 1, j], okx[i - 1, j], L, inv, o,
                                   sb[i - 1, j], lb[i - 1, j], beta[i - 1, j], ok[i - 1, j], s_i, l_i, b_i, cx)
                r -= a - b
                sc += abs(a) + abs(b)
            if i < nx - 1:
                a, b = _face_terms(lfx[i, j], efx[i, j], okx[i, j], L, inv, o,
                                   sb[i + 1, j], lb[i + 1, j], beta[i + 1, j], ok[i + 1, j], s_i, l_i, b_i, cx)
                r -= a - b
                sc += abs(a) + abs(b)
            if j > 0:
                a, b = _face_terms(lfy[i, j - 1], efy[i, j - 1], oky[i, j - 1], L, inv, o,
                                   sb[i, j - 1], lb[i, j - 1], beta[i, j - 1], ok[i, j - 1], s_i, l_i, b_i, cy)
                r -= a - b
                sc += abs(a) + abs(b)
            if j < ny - 1:
                a, b = _face_terms(lfy[i, j], efy[i, j], oky[i, j], L, inv, o,
                                   sb[i, j + 1], lb[i, j + 1], beta[i, j + 1], ok[i, j + 1], s_i, l_i, b_i, cy)
                r -= a - b
                sc += abs(a) + abs(b)
            out[i, j] = r
            if L < 700.0:
                e = np.exp(L)
                mres += e * abs(r)
                msc += e * sc
            else:   # S_i itself overflows; R_i = S_i r_i does not
                mres += np.exp(L + np.log(abs(r))) if r != 0.0 else 0.0
                msc += np.exp(L + np.log(sc))
    return mres, msc


# ------------------------------------------------------------------ the row-scaled Newton matrix I - C

def coupling(op: FVOperator, log_p, lj, ls, h):
    """C as four neighbour arrays (west, east, south, north), each (nx, ny), zero at walls.

    C_ij = h T_f exp(l_f + log p_j + log e_j - log S_i), e = S / J: the Newton matrix
    S^{-1} J_w E with unit diagonal (module docstring of :mod:`fpsolver.fv.newton`).
    """
    nx, ny = lj.shape
    cw, ce = np.zeros((nx, ny)), np.zeros((nx, ny))
    cs, cn = np.zeros((nx, ny)), np.zeros((nx, ny))
    col = log_p + ls - lj
    c = np.log(h * op.tx)
    ce[:-1] = np.exp(c + op.lfx + col[1:] - ls[:-1])
    cw[1:] = np.exp(c + op.lfx + col[:-1] - ls[1:])
    if op.lfy.size:
        c = np.log(h * op.ty)
        cn[:, :-1] = np.exp(c + op.lfy + col[:, 1:] - ls[:, :-1])
        cs[:, 1:] = np.exp(c + op.lfy + col[:, :-1] - ls[:, 1:])
    return cw, ce, cs, cn


@numba.njit(cache=True)
def tridiagonal_kernel(lower, upper, rhs, out):
    """Solve x_i - lower_i x_{i-1} - upper_i x_{i+1} = rhs_i (unit diagonal), no pivoting.

    Stable here: the matrix is a row scaling of a column-diagonally-dominant M-matrix, for which
    Gaussian elimination without pivoting has no growth (Wilkinson).
    """
    n = rhs.shape[0]
    c = np.empty(n)
    d = np.empty(n)
    piv = 1.0
    c[0] = -upper[0] / piv
    d[0] = rhs[0] / piv
    for i in range(1, n):
        piv = 1.0 + lower[i] * c[i - 1]
        c[i] = -upper[i] / piv
        d[i] = (rhs[i] + lower[i] * d[i - 1]) / piv
    out[n - 1] = d[n - 1]
    for i in range(n - 2, -1, -1):
        out[i] = d[i] - c[i] * out[i + 1]


@numba.njit(cache=True)
def tridiagonal_newton(lp, lj, ls, lfx, log_htx, rhs, out):
    """Solve (I - C) y = rhs on a 1-D grid (arrays (n, 1)): the couplings C of :func:`coupling`,
    formed cell by cell, then :func:`tridiagonal_kernel`."""
    n = rhs.shape[0]
    lower, upper = np.zeros(n), np.zeros(n)
    for i in range(n):
        col_i = lp[i, 0] + ls[i, 0] - lj[i, 0]
        if i > 0:
            upper[i - 1] = np.exp(log_htx + lfx[i - 1, 0] + col_i - ls[i - 1, 0])
        if i < n - 1:
            lower[i + 1] = np.exp(log_htx + lfx[i, 0] + col_i - ls[i + 1, 0])
    x = np.empty(n)
    tridiagonal_kernel(lower, upper, rhs[:, 0].copy(), x)
    out[:, 0] = x


# No fastmath here: with reassociation the rounding of a sum depends on how LLVM vectorises and
# inlines it, which differs between a kernel compiled in-process and one loaded from the cache, so
# two processes gave different last bits. Sums use four fixed accumulators instead (deterministic,
# and nearly as fast).


@numba.njit(cache=True)
def _apply(cw, ce, cs, cn, x, out):
    """out = (I - C) x, matrix-free 5-point."""
    nx, ny = x.shape
    for i in range(nx):
        for j in range(ny):
            v = x[i, j]
            if i > 0:
                v -= cw[i, j] * x[i - 1, j]
            if i < nx - 1:
                v -= ce[i, j] * x[i + 1, j]
            if j > 0:
                v -= cs[i, j] * x[i, j - 1]
            if j < ny - 1:
                v -= cn[i, j] * x[i, j + 1]
            out[i, j] = v


@numba.njit(cache=True)
def _dot(a, b):
    """sum a * b over C-ordered arrays with four interleaved accumulators (a fixed order)."""
    x, y = a.reshape(-1), b.reshape(-1)
    n = x.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    m = n - n % 4
    for k in range(0, m, 4):
        s0 += x[k] * y[k]
        s1 += x[k + 1] * y[k + 1]
        s2 += x[k + 2] * y[k + 2]
        s3 += x[k + 3] * y[k + 3]
    for k in range(m, n):
        s0 += x[k] * y[k]
    return (s0 + s1) + (s2 + s3)


@numba.njit(cache=True)
def bicgstab_kernel(cw, ce, cs, cn, rhs, x, rtol, maxiter):
    """BiCGStab (van der Vorst) for (I - C) x = rhs, matrix-free; x is the start.

    The unit diagonal already is the Jacobi preconditioner. Returns the iteration count, or
    -1 if ||r|| <= rtol ||rhs|| was not reached. Fixed summation order: bitwise reproducible.
    """
    nx, ny = rhs.shape
    r = np.empty_like(rhs)
    _apply(cw, ce, cs, cn, x, r)
    for i in range(nx):
        for j in range(ny):
            r[i, j] = rhs[i, j] - r[i, j]
    r0 = r.copy()
    p = np.zeros_like(rhs)
    v = np.zeros_like(rhs)
    s = np.empty_like(rhs)
    t = np.empty_like(rhs)
    tol2 = rtol * rtol * _dot(rhs, rhs)
    if _dot(r, r) <= tol2:
        return 0
    rho_old, alpha, omega = 1.0, 1.0, 1.0
    for it in range(1, maxiter + 1):
        rho = _dot(r0, r)
        if rho == 0.0 or omega == 0.0:
            return -1
        beta = (rho / rho_old) * (alpha / omega)
        for i in range(nx):
            for j in range(ny):
                p[i, j] = r[i, j] + beta * (p[i, j] - omega * v[i, j])
        _apply(cw, ce, cs, cn, p, v)
        alpha = rho / _dot(r0, v)
        for i in range(nx):
            for j in range(ny):
                s[i, j] = r[i, j] - alpha * v[i, j]
        if _dot(s, s) <= tol2:
            for i in range(nx):
                for j in range(ny):
                    x[i, j] += alpha * p[i, j]
            return it
        _apply(cw, ce, cs, cn, s, t)
        tt = _dot(t, t)
        omega = _dot(t, s) / tt if tt > 0.0 else 0.0
        for i in range(nx):
            for j in range(ny):
                x[i, j] += alpha * p[i, j] + omega * s[i, j]
                r[i, j] = s[i, j] - omega * t[i, j]
        if _dot(r, r) <= tol2:
            return it
        rho_old = rho
    return -1


def newton_matrix_scipy(cw, ce, cs, cn):
    """I - C as a scipy sparse matrix (for the plain reference solver and for tests)."""
    import scipy.sparse as sp

    nx, ny = cw.shape
    idx = np.arange(nx * ny).reshape(nx, ny)
    rows, cols, vals = [idx.ravel()], [idx.ravel()], [np.ones(nx * ny)]
    for c, me, nb in ((cw, np.s_[1:], np.s_[:-1]), (ce, np.s_[:-1], np.s_[1:]),
                      (cs, np.s_[:, 1:], np.s_[:, :-1]), (cn, np.s_[:, :-1], np.s_[:, 1:])):
        if idx[me].size:
            rows.append(idx[me].ravel())
            cols.append(idx[nb].ravel())
            vals.append(-c[me].ravel())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(nx * ny, nx * ny))
