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

from ..flows import dbeta_scalar

RHO_FLOOR = 1e-300   # a density estimate is never exactly zero at a particle; this guards 0/0
LOG_U_MAX = 700.0    # exp(700) is finite: u = rho/rho_d far in the target's tails
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


@numba.njit(cache=True, inline="always")
def _coord(x, lo, h, n):
    s = (x - lo) / h - 0.5
    s = min(max(s, 0.0), n - 1.0)
    i0 = min(int(np.floor(s)), n - 2)
    return i0, s - i0


@numba.njit(cache=True, parallel=True)
def interp_cells_1d(x, values, lo, h):
    """Numba version of :func:`interp_cells_numpy` in 1D."""
    n = values.shape[0]
    out = np.empty(x.shape[0])
    for p in numba.prange(x.shape[0]):
        i, f = _coord(x[p, 0], lo, h, n)
        out[p] = (1.0 - f) * values[i] + f * values[i + 1]
    return out


@numba.njit(cache=True, parallel=True)
def interp_cells_2d(x, values, lo0, h0, lo1, h1):
    """Numba version of :func:`interp_cells_numpy` in 2D."""
    n0, n1 = values.shape
    out = np.empty(x.shape[0])
    for p in numba.prange(x.shape[0]):
        i, fx = _coord(x[p, 0], lo0, h0, n0)
        j, fy = _coord(x[p, 1], lo1, h1, n1)
        out[p] = ((1.0 - fx) * ((1.0 - fy) * values[i, j] + fy * values[i, j + 1])
                  + fx * ((1.0 - fy) * values[i + 1, j] + fy * values[i + 1, j + 1]))
    return out


# ------------------------------------------------------------------ Gaussian mixture target

def mixture_log_grad_numpy(x, logw, means, prec):
    """log rho_d and grad log rho_d of sum_k exp(logw_k - (x - m_k)^T P_k (x - m_k) / 2)."""
    diff = x[:, None, :] - means[None, :, :]
    logs = logw[None, :] - 0.5 * np.einsum("mki,kij,mkj->mk", diff, prec, diff)
    top = logs.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(logs - top).sum(axis=1))
    resp = np.exp(logs - lse[:, None])
    grad = -np.einsum("mk,kij,mkj->mi", resp, prec, diff)
    return lse, grad


@numba.njit(cache=True, inline="always")
def _mixture_1d(x, logw, means, prec):
    """(top, s, grad log rho_d): rho_d = s exp(top), top the largest component's log."""
    top = -np.inf
    kmax = 0
    for k in range(logw.shape[0]):
        dx = x - means[k, 0]
        lk = logw[k] - 0.5 * prec[k, 0, 0] * dx * dx
        if lk > top:
            top, kmax = lk, k
    s = 0.0
    g = 0.0
    for k in range(logw.shape[0]):
        dx = x - means[k, 0]
        e = 1.0  # the largest component needs no exp
        if k != kmax:
            e = np.exp(logw[k] - 0.5 * prec[k, 0, 0] * dx * dx - top)
        s += e
        g -= e * prec[k, 0, 0] * dx
    return top, s, g / s


@numba.njit(cache=True, inline="always")
def _quad_2d(dx, dy, prec, k):
    return prec[k, 0, 0] * dx * dx + (prec[k, 0, 1] + prec[k, 1, 0]) * dx * dy + prec[k, 1, 1] * dy * dy


@numba.njit(cache=True, inline="always")
def _mixture_2d(x, y, logw, means, prec):
    """(top, s, d/dx, d/dy of log rho_d) as :func:`_mixture_1d`."""
    top = -np.inf
    kmax = 0
    for k in range(logw.shape[0]):
        lk = logw[k] - 0.5 * _quad_2d(x - means[k, 0], y - means[k, 1], prec, k)
        if lk > top:
            top, kmax = lk, k
    s = 0.0
    gx = 0.0
    gy = 0.0
    for k in range(logw.shape[0]):
        dx, dy = x - means[k, 0], y - means[k, 1]
        e = 1.0
        if k != kmax:
            e = np.exp(logw[k] - 0.5 * _quad_2d(dx, dy, prec, k) - top)
        s += e
        gx -= e * (prec[k, 0, 0] * dx + prec[k, 0, 1] * dy)
        gy -= e * (prec[k, 1, 0] * dx + prec[k, 1, 1] * dy)
    return top, s, gx / s, gy / s


@numba.njit(cache=True, parallel=True)
def mixture_log_grad(x, logw, means, prec):
    """Numba version of :func:`mixture_log_grad_numpy` (d = 1 or 2)."""
    n, d = x.shape
    lp = np.empty(n)
    g = np.empty((n, d))
    for p in numba.prange(n):
        if d == 1:
            top, s, g[p, 0] = _mixture_1d(x[p, 0], logw, means, prec)
        else:
            top, s, g[p, 0], g[p, 1] = _mixture_2d(x[p, 0], x[p, 1], logw, means, prec)
        lp[p] = top + np.log(s)
    return lp, g


# ------------------------------------------------------------------ interacting velocity

def velocity_numpy(flow, x, rho_hat, grad_hat, kde_lower, kde_spacing, target):
    """v = beta'(u) (grad log rho_d - grad rho_hat / rho_hat) at the particles, u = rho_hat/rho_d.

    ``grad_hat`` has shape (d, *rho_hat.shape); ``target`` is a :class:`TargetField`.
    Plain numpy, with :meth:`fpsolver.flows.Flow.velocity` doing the flow part.
    """
    d = x.shape[1]
    r = np.maximum(interp_cells_numpy(x, rho_hat, kde_lower, kde_spacing), RHO_FLOOR)
    g = np.stack([interp_cells_numpy(x, grad_hat[a], kde_lower, kde_spacing) for a in range(d)], axis=1)
    log_rd, grad_log_rd = target.log_grad_numpy(x)
    log_u = np.minimum(np.log(r) - log_rd, LOG_U_MAX)
    rd = r / np.exp(log_u)  # so that u = r / rd is exactly exp(log_u)
    return flow.velocity(r, g, rd, grad_log_rd * rd[:, None])


@numba.njit(cache=True, inline="always")
def _dbeta_at(code, r, top, s):
    """beta'(u) for u = r / rho_d, rho_d = s exp(top); one exp unless rho_d underflows."""
    rd = np.exp(top) * s
    if rd > 1e-290:
        return dbeta_scalar(code, r / rd)
    return dbeta_scalar(code, np.exp(min(np.log(r) - top - np.log(s), LOG_U_MAX)))


@numba.njit(cache=True, parallel=True)
def velocity_1d(code, x, rho_hat, grad_hat, lo, h, tkind, logw, means, prec,
                t_logrho, t_grad, t_lo, t_h, out):
    """Numba version of :func:`velocity_numpy` in 1D; returns per-chunk (max beta', max |v|).

    tkind 0: the target is the Gaussian mixture (logw, means, prec), normalised on the grid;
    tkind 1: the target is tabulated on cell centres (log rho_d, grad log rho_d).
    """
    n = rho_hat.shape[0]
    m = x.shape[0]
    dmax = np.zeros(N_CHUNKS)
    vmax = np.zeros(N_CHUNKS)
    for c in numba.prange(N_CHUNKS):
        dm, vm = 0.0, 0.0  # chunk-local maxima: no shared cache lines inside the loop
        for p in range(c * m // N_CHUNKS, (c + 1) * m // N_CHUNKS):
            xp = x[p, 0]
            i, f = _coord(xp, lo, h, n)
            r = max((1.0 - f) * rho_hat[i] + f * rho_hat[i + 1], RHO_FLOOR)
            g = (1.0 - f) * grad_hat[0, i] + f * grad_hat[0, i + 1]
            if tkind == 0:
                top, sm, gl = _mixture_1d(xp, logw, means, prec)
            else:
                it, ft = _coord(xp, t_lo[0], t_h[0], t_logrho.shape[0])
                top, sm = (1.0 - ft) * t_logrho[it, 0] + ft * t_logrho[it + 1, 0], 1.0
                gl = (1.0 - ft) * t_grad[0, it, 0] + ft * t_grad[0, it + 1, 0]
            db = _dbeta_at(code, r, top, sm)
            v = db * (gl - g / r)
            out[p, 0] = v
            dm = max(dm, db)
            vm = max(vm, abs(v))
        dmax[c], vmax[c] = dm, vm
    return dmax.max(), vmax.max()


@numba.njit(cache=True, parallel=True)
def velocity_2d(code, x, rho_hat, grad_hat, lo, h, tkind, logw, means, prec,
                t_logrho, t_grad, t_lo, t_h, out):
    """Numba version of :func:`velocity_numpy` in 2D; returns (max beta', max |v| per axis)."""
    n0, n1 = rho_hat.shape
    m = x.shape[0]
    dmax = np.zeros(N_CHUNKS)
    vmax = np.zeros(N_CHUNKS)
    for c in numba.prange(N_CHUNKS):
        dm, vm = 0.0, 0.0
        for p in range(c * m // N_CHUNKS, (c + 1) * m // N_CHUNKS):
            xp, yp = x[p, 0], x[p, 1]
            i, fx = _coord(xp, lo[0], h[0], n0)
            j, fy = _coord(yp, lo[1], h[1], n1)
            w00, w01 = (1.0 - fx) * (1.0 - fy), (1.0 - fx) * fy
            w10, w11 = fx * (1.0 - fy), fx * fy
            r = max(w00 * rho_hat[i, j] + w01 * rho_hat[i, j + 1]
                    + w10 * rho_hat[i + 1, j] + w11 * rho_hat[i + 1, j + 1], RHO_FLOOR)
            gx = (w00 * grad_hat[0, i, j] + w01 * grad_hat[0, i, j + 1]
                  + w10 * grad_hat[0, i + 1, j] + w11 * grad_hat[0, i + 1, j + 1])
            gy = (w00 * grad_hat[1, i, j] + w01 * grad_hat[1, i, j + 1]
                  + w10 * grad_hat[1, i + 1, j] + w11 * grad_hat[1, i + 1, j + 1])
            if tkind == 0:
                top, sm, glx, gly = _mixture_2d(xp, yp, logw, means, prec)
            else:
                it, gx0 = _coord(xp, t_lo[0], t_h[0], t_logrho.shape[0])
                jt, gy0 = _coord(yp, t_lo[1], t_h[1], t_logrho.shape[1])
                a00, a01 = (1.0 - gx0) * (1.0 - gy0), (1.0 - gx0) * gy0
                a10, a11 = gx0 * (1.0 - gy0), gx0 * gy0
                top = (a00 * t_logrho[it, jt] + a01 * t_logrho[it, jt + 1]
                       + a10 * t_logrho[it + 1, jt] + a11 * t_logrho[it + 1, jt + 1])
                sm = 1.0
                glx = (a00 * t_grad[0, it, jt] + a01 * t_grad[0, it, jt + 1]
                       + a10 * t_grad[0, it + 1, jt] + a11 * t_grad[0, it + 1, jt + 1])
                gly = (a00 * t_grad[1, it, jt] + a01 * t_grad[1, it, jt + 1]
                       + a10 * t_grad[1, it + 1, jt] + a11 * t_grad[1, it + 1, jt + 1])
            db = _dbeta_at(code, r, top, sm)
            vx = db * (glx - gx / r)
            vy = db * (gly - gy / r)
            out[p, 0] = vx
            out[p, 1] = vy
            dm = max(dm, db)
            vm = max(vm, max(abs(vx), abs(vy)))
        dmax[c], vmax[c] = dm, vm
    return dmax.max(), vmax.max()


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
def _face_coord(x, lo, h, n):
    s = min(max((x - lo) / h, 0.0), float(n))
    i = min(int(np.floor(s)), n - 1)
    return i, s - i


@numba.njit(cache=True, parallel=True)
def interp_faces_1d(x, vf, lo, h, out):
    """Numba version of :func:`interp_faces_numpy` in 1D; returns max |v| (per-chunk maxima)."""
    n = vf.shape[0] - 1
    m = x.shape[0]
    vmax = np.zeros(N_CHUNKS)
    for c in numba.prange(N_CHUNKS):
        vm = 0.0
        for p in range(c * m // N_CHUNKS, (c + 1) * m // N_CHUNKS):
            i, f = _face_coord(x[p, 0], lo, h, n)
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
    vmax = np.zeros(N_CHUNKS)
    for c in numba.prange(N_CHUNKS):
        vm = 0.0
        for p in range(c * m // N_CHUNKS, (c + 1) * m // N_CHUNKS):
            i, f = _face_coord(x[p, 0], lo0, h0, n0)
            j, g = _coord(x[p, 1], lo1, h1, n1)
            a = ((1.0 - f) * (vx[i, j] * (1.0 - g) + vx[i, j + 1] * g)
                 + f * (vx[i + 1, j] * (1.0 - g) + vx[i + 1, j + 1] * g))
            j, g = _face_coord(x[p, 1], lo1, h1, n1)
            i, f = _coord(x[p, 0], lo0, h0, n0)
            b = ((1.0 - g) * (vy[i, j] * (1.0 - f) + vy[i + 1, j] * f)
                 + g * (vy[i, j + 1] * (1.0 - f) + vy[i + 1, j + 1] * f))
            out[p, 0] = a
            out[p, 1] = b
            vm = max(vm, max(abs(a), abs(b)))
        vmax[c] = vm
    return vmax.max()
