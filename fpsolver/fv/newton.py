"""One backward-Euler step, (I + hA)^{-1} b, by damped Newton in w = log(rho / rho_d).

Solves  rho - h div(rho_d grad beta(rho/rho_d)) = b  (MATH.md section 3) for rho = rho_d e^w > 0,
for any density ratio: every quantity is a row-scaled ratio evaluated in log space
(:mod:`fpsolver.fv.operators`). The Newton system J_w dw = -R is scaled on both sides,

    (S^{-1} J_w E) y = -S^{-1} R,   dw = E y,   E = diag(c / p),   S = diag(J_ii) E,

with p = u beta'(u), so that c y is the Newton change of s = beta(u), and c the smaller of two
scales of that change: the one a change of rho by the mean density causes (M beta'(u) / rho_d),
and max(1, |s|). The matrix is I - C with unit diagonal, similar to the Jacobi-scaled SPD
s-form Jacobian, and y = O(1) in both far regimes: where a cell e^1700 too empty is filled
within the step (dw ~ e^1700, but the change of u or rho is finite) and where a cell
e^1700 too full is drained (the change of rho is finite, that of u is not). It is solved directly
(tridiagonal) in 1D; in 2D by CG on the symmetric form, preconditioned by a geometric
multigrid V-cycle (:mod:`fpsolver.fv.multigrid`: iterations nearly independent of the grid), or
by matrix-free BiCGStab (Numba) with the unit diagonal as (Jacobi) preconditioner
(``linear="krylov"``, iterations growing like the grid width), or, as the plain reference, by scipy's ``spsolve`` on the assembled matrix with
numpy residuals. A backtracking line search
on ||R / S||_2 (S frozen at the current iterate, so the Newton direction is a descent
direction) damps far tails. The update of w is taken in s = beta(u) for decreases and in the
larger of s and u for increases (:func:`_update`), so that every preset fills an almost empty
cell in one step, and rho > 0 always.

Convergence: the mass residual sum_i |R_i| must fall below ``rtol`` times the mass of b, or
to the round-off floor eps/2 sum_i scale_i (scale_i the sum of magnitudes of the terms of
R_i), or stall (stop halving) below 32 eps sum_i scale_i. The mass error of the step is
bounded by it, because the flux form conserves mass exactly.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Union

import numba
import numpy as np

from ..errors import InputError
from ..flows import Flow
from .multigrid import mg_cg, scaling
from .operators import (FVOperator, bicgstab_kernel, coupling, log_add_exp, residual_kernel, residual_numpy, scale_kernel,
                        tridiagonal_newton)

EPS = np.finfo(float).eps
MAX_DW = 5.0            # largest Newton decrease of log u in one cell in one iteration
CG_RTOL_MIN = 1e-10     # inexact Newton: Krylov tolerance eta_k = clip(mass residual, 1e-10, 1e-2)


class NewtonFailure(RuntimeError):
    """Newton did not converge (the caller rejects the step and retries with a smaller one)."""


@dataclass
class NewtonStats:
    iterations: int = 0
    linear_iterations: int = 0
    mass_residual: float = 0.0
    linear_seconds: float = 0.0    # wall time in the linear solves (set-up included)


@dataclass
class Rhs:
    """A right-hand side b = mant * exp(log) per cell (mass density), representable at any ratio."""

    mant: np.ndarray
    log: np.ndarray

    @classmethod
    def of(cls, b: Union["Rhs", np.ndarray]) -> "Rhs":
        if isinstance(b, Rhs):
            return b
        b = np.asarray(b, dtype=float)
        return cls(b, np.zeros_like(b))

    @classmethod
    def from_log(cls, log_b: np.ndarray) -> "Rhs":
        return cls(np.ones_like(log_b), np.asarray(log_b, dtype=float))

    def plus(self, other: np.ndarray) -> "Rhs":
        """b + other (other a plain density array), rescaled to the larger of the two."""
        with np.errstate(divide="ignore"):
            lo = np.log(np.abs(other))
        top = np.maximum(self.log, lo)
        top = np.where(np.isfinite(top), top, 0.0)
        return Rhs(self.mant * np.exp(self.log - top) + other * np.exp(-top), top)

    def mass(self, volume: float) -> float:
        return float(np.sum(np.abs(self.mant) * np.exp(self.log)) * volume)


class _System:
    """The residual and Newton matrix of one step at the current iterate (module docstring)."""

    def __init__(self, op: FVOperator, flow: Flow, rhs: Rhs, h: float, plain: bool):
        rhs = Rhs(np.ascontiguousarray(rhs.mant, dtype=float), np.ascontiguousarray(rhs.log, dtype=float))
        self.op, self.flow, self.rhs, self.h, self.plain = op, flow, rhs, h, plain
        self.log_mref = np.log(max(rhs.mass(op.volume), 1e-300) / (op.volume * op.log_rho_d.size))

    # (called inside backward_euler_step's one np.errstate: over- and underflow in the log-space
    # forms are expected and handled, a context per call cost a tenth of a 1D step)
    def terms(self, w):
        """(sign, log|beta|) at w."""
        return self.flow.beta_log(w)

    def scale(self, w, lb):
        """(log p, log J_ii, log c, log S) at w, lb = log|beta| there (module docstring)."""
        op = self.op
        lp = np.ascontiguousarray(self.flow.log_p(w), dtype=float)
        lj, lc, ls = np.empty_like(lp), np.empty_like(lp), np.empty_like(lp)
        scale_kernel(op.log_rho_d, np.ascontiguousarray(w), lp, np.ascontiguousarray(lb, dtype=float), op.log_k,
                     np.log(op.volume), np.log(self.h), self.log_mref, lj, lc, ls)
        return lp, lj, lc, ls

    def residual(self, w, ls, sb, lb):
        """(R / S, sum |R|, sum S scale, ||R / S||_2) at w, where beta = sb e^lb, with row log scales
        ls (frozen in a line search)."""
        op, rhs = self.op, self.rhs
        if self.plain:
            r, sc = residual_numpy(op, w, sb, lb, ls, rhs.mant, rhs.log, self.h)
            e = np.exp(ls)
            mres, scale = float(np.sum(e * np.abs(r))), float(np.sum(e * sc))
        else:
            r = np.empty_like(w)
            # C-contiguous float arrays only: one compiled specialisation, so bitwise-reproducible sums
            c = np.ascontiguousarray
            mres, scale = residual_kernel(op.log_rho_d, c(w), c(sb, dtype=float), c(lb, dtype=float), c(ls),
                                          rhs.mant, rhs.log, op.lfx, op.efx, op.okx, op.lfy, op.efy, op.oky,
                                          op.tx, op.ty, op.volume, self.h, r)
        return r, mres, scale, float(np.sqrt(np.sum(r * r)))


LINEAR_SOLVERS = ("auto", "thomas", "multigrid", "krylov", "spsolve")


def _solve(op, lp, lj, lc, ls, h, r, linear, eta, stats):
    """y with (I - C) y = -r, C from the iterate's (log p, log J, log c, log S)."""
    z = np.zeros_like(r)
    sym = scaling(op, lp, lj, lc, h) if linear == "multigrid" else None
    if linear == "thomas":
        tridiagonal_newton(lp, lj, ls, op.lfx, float(np.log(h * op.tx)), -r, z)
    elif sym is not None:
        k = mg_cg(*sym, np.ascontiguousarray(-r), z, eta, 200)
        if k < 0:
            raise NewtonFailure("multigrid-preconditioned CG did not converge")
        stats.linear_iterations += k
    elif linear in ("krylov", "multigrid"):   # multigrid: the symmetric scaling does not fit in double
        cs = coupling(op, lp, lj, ls, h)       # precision, the Jacobi path instead
        k = bicgstab_kernel(*cs, np.ascontiguousarray(-r), z, eta, 20 * sum(r.shape) + 200)
        if k < 0:
            raise NewtonFailure("BiCGStab did not converge")
        stats.linear_iterations += k
    else:
        import scipy.sparse.linalg as spla
        from .operators import newton_matrix_scipy
        z[:] = spla.spsolve(newton_matrix_scipy(*coupling(op, lp, lj, ls, h)).tocsc(), -r.ravel()).reshape(r.shape)
    if not np.all(np.isfinite(z)):
        raise NewtonFailure("non-finite Newton correction")
    return z


def _update(flow: Flow, sb, lb, y, log_c, log_e, log_alpha, w):
    """The Newton update of w for the step alpha y (ds = c y in s = beta(u), dw = e y in w).

    Decreases are taken in s: beta(e^w_new) = beta(e^w) + alpha ds, clipped to w - MAX_DW where
    that leaves the range of beta (s <= 0 where beta > 0) or lowers w by more: a tail cell cannot
    stall the bulk, and rho stays > 0. Increases take the larger of the step in s and the step in
    u, u_new = u (1 + alpha dw): in u a degenerate flow (chi2: s = u^2) fills a cell ahead of its
    front in one step, in s logarithmic diffusion (reverse-kl: s = w) fills a tail that is e^1700
    too small; for kl (s = u) the two agree and Newton is exact in one iteration. Called under
    the step's np.errstate.
    """
    n = y.size
    c = np.ascontiguousarray
    log_y, sign, lbv = np.empty(n), np.empty(n), np.empty(n)
    _update_in_s(c(sb, dtype=float).ravel(), c(lb, dtype=float).ravel(), c(y).ravel(), c(log_c).ravel(),
                 float(log_alpha), log_y, sign, lbv)
    w_s = np.ascontiguousarray(flow.w_of_beta(sign.reshape(y.shape), lbv.reshape(y.shape)), dtype=float)
    out = np.empty(n)
    _update_pick(c(w).ravel(), w_s.ravel(), c(y).ravel(), log_y, c(log_e).ravel(), sign,
                 bool(flow.beta_positive), MAX_DW, out)
    return out.reshape(y.shape)


@numba.njit(cache=True)
def _update_in_s(sb, lb, y, log_c, log_alpha, log_y, sign, lbv):
    """Per cell: log|alpha y|, and beta + alpha ds = sign e^lbv, the sum taken at the scale of the
    larger term (ds = c y, beta = sb e^lb)."""
    for i in range(y.size):
        ly = log_alpha + np.log(abs(y[i]))
        log_y[i] = ly
        log_ds = ly + log_c[i]
        top = max(lb[i], log_ds)
        if not np.isfinite(top):
            top = 0.0
        val = sb[i] * np.exp(lb[i] - top) + np.sign(y[i]) * np.exp(log_ds - top)
        sign[i] = np.sign(val)
        lbv[i] = top + np.log(abs(val))


@numba.njit(cache=True)
def _update_pick(w, w_s, y, log_y, log_e, sign, beta_positive, max_dw, out):
    """Per cell the new w: for y < 0 the step in s, clipped to w - max_dw (w where it is NaN, -inf
    where it leaves the range of a positive beta); for y > 0 the larger of that and the step in u,
    w + softplus(log(alpha y e)); w for y = 0."""
    for i in range(y.size):
        ws = w_s[i]
        if beta_positive and not sign[i] > 0.0:
            ws = -np.inf
        if np.isnan(ws):
            ws = w[i]
        elif ws < w[i] - max_dw:
            ws = w[i] - max_dw
        if y[i] > 0.0:
            wu = w[i] + log_add_exp(log_y[i] + log_e[i], 0.0)
            out[i] = wu if wu > ws or np.isnan(wu) else ws      # np.maximum: NaN propagates
        elif y[i] < 0.0:
            out[i] = ws
        else:
            out[i] = w[i]


def _quantisation_floor(op: FVOperator, w, log_p, h) -> float:
    """eps/2 sum_j |w_j| sum_i |J_ij|: the mass residual that rounding w to double precision leaves.

    Within half an ulp of w_j (eps |w_j| / 2) R moves by that times column j of the Jacobian, whose
    absolute sum is V rho_j + 2 h p_j sum_f T_f e^{l_f} (module docstring of
    :mod:`fpsolver.fv.operators`). Where narrow data lie away from the generator (N(2, 0.1^2) from
    N(-1, 1.5^2): the mass sits at w ~ 560 on average, w reaches 3200 at the wall) this floor lies
    far above the evaluation's eps/2 sum of the terms' magnitudes."""
    with np.errstate(over="ignore", invalid="ignore"):
        col = op.volume * np.exp(op.log_rho_d + w) + 2.0 * h * np.exp(log_p + op.log_k)
        q = float(0.5 * EPS * np.sum(col * np.abs(w)))
    return q if np.isfinite(q) else 0.0     # never a reason to accept where it cannot be formed


def backward_euler_step(op: FVOperator, flow: Flow, w0: np.ndarray, b, h: float, *,
                        rtol: float = 1e-15, max_iter: int = 40, linear: str = "auto") -> tuple[np.ndarray, NewtonStats]:
    """Return w with rho_d e^w = (I + hA)^{-1} b (see module docstring).

    ``b`` is the right-hand side in mass density: a plain array, or an :class:`Rhs`
    (mantissa and log scale) where it is not representable. ``w0`` is the starting guess
    (usually the previous step). ``linear`` is "auto" (tridiagonal in 1D, multigrid-preconditioned
    CG in 2D), "multigrid" (2D), "krylov" (the Jacobi-preconditioned BiCGStab, the earlier 2D default: its answers
    agree with the multigrid ones to the Newton tolerance, not bitwise),
    "thomas" or "spsolve" (the plain reference, which also evaluates residuals with numpy instead of
    Numba). Raises :class:`NewtonFailure`.
    """
    if linear not in LINEAR_SOLVERS:
        raise InputError(f"linear: unknown solver {linear!r} (one of {', '.join(LINEAR_SOLVERS)})")
    if linear in ("multigrid", "krylov") and w0.shape[1] == 1:
        raise InputError(f"linear={linear!r} is for 2D grids; 1D takes the tridiagonal solve (\"thomas\")")
    plain = linear == "spsolve"
    if linear == "auto":
        linear = "thomas" if w0.shape[1] == 1 else "multigrid"
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _newton(op, flow, w0, Rhs.of(b), h, rtol, max_iter, linear, plain)


def _converged(mres, scale, mres_prev, target) -> bool:
    """Below tolerance or round-off, or stalled within the loose round-off bound."""
    stalled = mres <= 32 * EPS * scale and mres > 0.5 * mres_prev
    return mres <= max(target, 0.5 * EPS * scale) or stalled


def _newton(op, flow, w0, rhs, h, rtol, max_iter, linear, plain):
    """The damped Newton iteration of :func:`backward_euler_step` (module docstring)."""
    sys_ = _System(op, flow, rhs, h, plain)
    stats = NewtonStats()
    mass_b = rhs.mass(op.volume)
    target = rtol * mass_b
    w = np.array(w0, dtype=float, copy=True)
    sb, lb = sys_.terms(w)
    lp, lj, lc, ls = sys_.scale(w, lb)
    r, mres, scale, phi = sys_.residual(w, ls, sb, lb)
    mres_prev = np.inf
    for it in range(max_iter + 1):
        if not (np.isfinite(mres) and np.isfinite(phi) and np.all(np.isfinite(ls))):
            raise NewtonFailure("non-finite residual")
        if _converged(mres, scale, mres_prev, target):
            stats.iterations, stats.mass_residual = it, mres
            return w, stats
        if it == max_iter:
            break
        eta = min(1e-2, max(CG_RTOL_MIN, mres / max(mass_b, 1e-300)))
        t_lin = time.perf_counter()
        y = _solve(op, lp, lj, lc, ls, h, r, linear, eta, stats)
        stats.linear_seconds += time.perf_counter() - t_lin
        alpha = 1.0
        for _ in range(40):
            w_try = _update(flow, sb, lb, y, lc, lc - lp, np.log(alpha), w)
            sb_t, lb_t = sys_.terms(w_try)
            r_t, mres_t, scale_t, phi_t = sys_.residual(w_try, ls, sb_t, lb_t)
            if np.isfinite(phi_t) and (phi_t <= (1 - 1e-4 * alpha) * phi or mres_t <= 8 * EPS * scale_t):
                break
            alpha *= 0.5
        else:
            # stagnation at round-off: accept the iterate we have. Its floor is the evaluation's
            # or that of w itself: one ulp of w changes rho_i by eps |w_i| relative, and where
            # narrow data lie away from the generator the mass sits at w in the hundreds
            if mres <= 32 * max(0.5 * EPS * scale, _quantisation_floor(op, w, lp, h)):
                stats.iterations, stats.mass_residual = it, mres
                return w, stats
            raise NewtonFailure("line search failed")
        mres_prev = mres
        w, mres, scale, sb, lb = w_try, mres_t, scale_t, sb_t, lb_t
        if np.isfinite(mres) and _converged(mres, scale, mres_prev, target):
            # the test at the top of the next iteration, before the scales it does not need (it
            # returns the same iterate, except that a non-finite row scale of an iterate that has
            # already converged no longer fails the step)
            stats.iterations, stats.mass_residual = it + 1, mres
            return w, stats
        lp, lj, lc, ls_new = sys_.scale(w, lb)
        r = r_t * np.exp(ls - ls_new)          # the same residual R, divided by the new row scales
        ls = ls_new
        phi = float(np.sqrt(np.sum(r * r)))
        if not np.isfinite(phi):               # a scale changed by more than e^700: evaluate afresh
            r, mres, scale, phi = sys_.residual(w, ls, sb, lb)
    raise NewtonFailure(f"no convergence in {max_iter} iterations (mass residual {mres:.2e})")
