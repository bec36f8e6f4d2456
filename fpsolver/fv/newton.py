"""One backward-Euler step, (I + hA)^{-1} b, by damped Newton in w = log(rho / rho_d).

Solves  rho - h div(rho_d grad beta(rho/rho_d)) = b  (MATH.md section 3) for rho = rho_d e^w > 0.
Each Newton correction solves the scaled symmetric positive definite system of
:mod:`fpsolver.fv.operators`: a direct tridiagonal solve in 1D, Jacobi-preconditioned conjugate
gradients (matrix-free, Numba) in 2D, or, as the plain reference, scipy's ``spsolve`` on the
assembled matrix. A backtracking line search on ||Rhat||_2, with |dw| clipped per cell, damps far tails.

Convergence: the mass residual sum_i |R_i| (R the volume-weighted residual) must fall below
``rtol`` times the mass of b, or to the round-off floor eps/2 sum_i a_i scale_i (scale_i the sum
of magnitudes of the terms of R_i), or stall (stop halving) below 32 eps sum_i a_i scale_i. The
mass error of the step is bounded by it, because the flux form conserves mass exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..flows import Flow
from .operators import FVOperator, pcg_kernel, residual_kernel, residual_numpy, thomas_kernel

EPS = np.finfo(float).eps
MAX_DW = 5.0            # largest Newton change of log u in one cell in one iteration
CG_RTOL_MIN = 1e-10     # inexact Newton: CG tolerance eta_k = clip(mass residual, 1e-10, 1e-2)


class NewtonFailure(RuntimeError):
    """Newton did not converge (the caller rejects the step and retries with a smaller one)."""


@dataclass
class NewtonStats:
    iterations: int = 0
    linear_iterations: int = 0
    mass_residual: float = 0.0


def _eval(op, flow, w, bhat, h, plain):
    with np.errstate(over="ignore", invalid="ignore"):
        u = np.exp(w)
        bu = flow.beta(u)
    if plain:
        r = residual_numpy(op, u, bu, bhat, h)
        mres = float(np.sum(op.a * np.abs(r)))
        scale = float(np.sum(op.a * op.volume * (op.a * u + np.abs(bhat))))
        # each face enters the residuals of both its cells, weighted a_i * (h S a_j): as in the kernel
        scale += float(np.sum(2 * h * op.sx * op.a[1:] * op.a[:-1] * (np.abs(bu[1:]) + np.abs(bu[:-1]))))
        if op.sy.size:
            scale += float(np.sum(2 * h * op.sy * op.a[:, 1:] * op.a[:, :-1]
                                  * (np.abs(bu[:, 1:]) + np.abs(bu[:, :-1]))))
    else:
        r = np.empty_like(u)
        mres, scale = residual_kernel(u, bu, op.a, bhat, op.sx, op.sy, op.volume, h, r)
    return u, r, mres, scale


def _split_correction(a, dbu, u, z):
    """Turn the scaled correction z = a beta'(u) du into an update of w = log u.

    Increases are taken in u (w <- log(u + du), via logaddexp): du = z / (a beta'(u)) is finite
    even where u = e^w underflows, so a cell 40 standard deviations out can still fill up.
    Decreases are taken in w (dw = du / u, clipped per cell to MAX_DW so a tail cell cannot
    shrink the bulk's step), which keeps rho > 0. Both agree with Newton to second order.
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        du = z / (a * dbu)
        du = np.where(np.isfinite(du), du, 0.0)
        grow = du > 0
        log_du = np.log(np.where(grow, du, 1.0))
        dw = np.where(grow, 0.0, du / u)
    dw = np.where(np.isfinite(dw), dw, -MAX_DW)
    np.clip(dw, -MAX_DW, MAX_DW, out=dw)
    return grow, log_du, dw


def backward_euler_step(op: FVOperator, flow: Flow, w0: np.ndarray, bhat: np.ndarray, h: float, *,
                        rtol: float = 1e-15, max_iter: int = 40, linear: str = "auto") -> tuple[np.ndarray, NewtonStats]:
    """Return w with rho_d e^w = (I + hA)^{-1} b, b = a * bhat (see module docstring).

    ``w0`` is the starting guess (usually the previous step). ``linear`` is "auto"
    (tridiagonal in 1D, PCG in 2D), "pcg", "thomas" or "spsolve" (the plain reference, which
    also evaluates residuals with numpy instead of Numba). Raises :class:`NewtonFailure`.
    """
    plain = linear == "spsolve"
    if linear == "auto":
        linear = "thomas" if op.a.shape[1] == 1 else "pcg"
    stats = NewtonStats()
    mass_b = float(np.sum(op.volume * op.a * np.abs(bhat)))
    target = rtol * mass_b
    w = np.array(w0, dtype=float, copy=True)
    u, r, mres, scale = _eval(op, flow, w, bhat, h, plain)
    phi = float(np.sqrt(np.sum(r * r)))
    z = np.zeros_like(w)
    mres_prev = np.inf
    for it in range(max_iter + 1):
        if not (np.isfinite(mres) and np.isfinite(phi)):
            raise NewtonFailure("non-finite residual")
        floor = 0.5 * EPS * scale
        # converged: below tolerance or round-off, or stalled within the loose round-off bound
        stalled = mres <= 32 * EPS * scale and mres > 0.5 * mres_prev
        if mres <= max(target, floor) or stalled:
            stats.iterations, stats.mass_residual = it, mres
            return w, stats
        if it == max_iter:
            break
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            dbu = flow.dbeta(u)
            diag = op.volume / dbu + h * op.ksum
        if not np.all(np.isfinite(diag)) or not np.all(diag > 0):
            raise NewtonFailure("Newton matrix lost positivity (beta'(u) not finite and positive)")
        z[:] = 0.0
        if linear == "thomas":
            thomas_kernel(diag[:, 0], -h * op.sx[:, 0], -r[:, 0], z[:, 0])
        elif linear == "pcg":
            eta = min(1e-2, max(CG_RTOL_MIN, mres / max(mass_b, 1e-300)))
            k = pcg_kernel(diag, op.sx, op.sy, h, -r, z, eta, 20 * sum(op.a.shape) + 200)
            if k < 0:
                raise NewtonFailure("conjugate gradients did not converge")
            stats.linear_iterations += k
        else:
            import scipy.sparse.linalg as spla
            from .operators import newton_matrix_scipy
            z[:] = spla.spsolve(newton_matrix_scipy(op, dbu, h).tocsc(), -r.ravel()).reshape(z.shape)
        grow, log_du, dw = _split_correction(op.a, dbu, u, z)
        alpha = 1.0
        for _ in range(40):
            w_try = np.where(grow, np.logaddexp(w, np.log(alpha) + log_du), w + alpha * dw)
            u_t, r_t, mres_t, scale_t = _eval(op, flow, w_try, bhat, h, plain)
            phi_t = float(np.sqrt(np.sum(r_t * r_t)))
            if np.isfinite(phi_t) and (phi_t <= (1 - 1e-4 * alpha) * phi or mres_t <= 8 * EPS * scale_t):
                break
            alpha *= 0.5
        else:
            if mres <= 32 * floor:   # stagnation at round-off: accept the iterate we have
                stats.iterations, stats.mass_residual = it, mres
                return w, stats
            raise NewtonFailure("line search failed")
        mres_prev = mres
        w, u, r, mres, scale, phi = w_try, u_t, r_t, mres_t, scale_t, phi_t
    raise NewtonFailure(f"no convergence in {max_iter} iterations (mass residual {mres:.2e})")
