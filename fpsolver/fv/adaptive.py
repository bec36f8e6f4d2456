"""Error-controlled time steps for the Crandall-Liggett stepper (backward Euler and BDF2).

Every accepted step is one resolvent rho_{n+1} = (I + h' A)^{-1} b (MATH.md section 3): backward
Euler h' = h, b = rho_n; variable-step BDF2 with omega = h / h_{n-1}

    h' = h (1 + omega) / (1 + 2 omega),   b = ((1 + omega)^2 rho_n - omega^2 rho_{n-1}) / (1 + 2 omega)

(omega = 1: the constant-step BDF2 of :mod:`.stepper`). A resolvent also gives the exact time
derivative at its result, f_{n+1} = (rho_{n+1} - b) / h' (= -A rho_{n+1} + source), so the local
error is estimated without extra solves, by comparing with an explicit predictor (an embedded
pair: for backward Euler the companion is the trapezoidal rule, rho_n + h (f_n + f_{n+1}) / 2):

    backward Euler: le = (rho_{n+1} - rho_n - h f_n) / 2                  (error h^2 rho'' / 2)
    BDF2: le = K_c / (K_c + K_p) (rho_{n+1} - p(t_{n+1})),  p the quadratic with p(t_n) = rho_n,
          p'(t_n) = f_n, p(t_{n-1}) = rho_{n-1};  K_c = (1 + omega)^2 / (6 omega (1 + 2 omega)),
          K_p = (1 + omega) / (6 omega)  (the rho''' coefficients of the two local errors).

The first step has no f_0; it is taken twice, as one step h and as two steps h/2, and
le = rho_{h/2,h/2} - rho_h (Richardson: the error of the two half steps); the half steps are kept.

Control is error per unit step: a step is accepted when err = ||le||_1 / (h rtol M) <= 1
(M the mass, ||.||_1 the discrete L1 norm), so the global error, the sum of the local errors
carried by the L1-contractive flow, is at most about rtol M T: proportional to rtol for both
schemes (tolerance proportionality). The next step is h min(FAC_MAX, max(FAC_MIN, SAFETY
err^{-1/q})), q = 1 for backward Euler (le / h = O(h)) and 2 for BDF2 (O(h^2)); never above dt
(the case's dt is the first step and an upper bound), and cut so that steps land exactly on the
save times. BDF2 steps grow by at most FAC_MAX = 2 < 1 + sqrt(2), the bound for zero-stability of
variable-step BDF2. A Newton failure halves the step (counted with the rejections).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..errors import SolverError
from .newton import NewtonFailure, Rhs
from .stepper import PREDICTOR_CLIP, CrandallLiggett, RunState

SAFETY = 0.9
FAC_MIN, FAC_MAX = 0.2, 2.0
MAX_REJECTIONS = 60      # consecutive rejections before giving up


@dataclass
class _History:
    """The last accepted step: rho and w at t, f = d rho / dt there, the step h that led to t, and
    rho at t - h (BDF2)."""

    t: float
    w: np.ndarray
    rho: np.ndarray
    f: Optional[np.ndarray] = None
    h: float = 0.0
    rho_prev: Optional[np.ndarray] = None
    w_prev: Optional[np.ndarray] = None


@dataclass
class StepLog:
    t: list = field(default_factory=list)        # end time of each accepted step
    h: list = field(default_factory=list)
    err: list = field(default_factory=list)      # its error estimate (1 = the tolerance)
    rejected_error: int = 0
    rejected_newton: int = 0
    resolvents: int = 0        # every resolvent solved, rejected ones included (the work)
    newton: int = 0            # Newton iterations over all of them


class AdaptiveStepper:
    """Backward Euler / BDF2 with local error control (module docstring)."""

    def __init__(self, base: CrandallLiggett, rtol: float, log: "StepLog"):
        self.base, self.rtol, self.log = base, float(rtol), log
        self.op = base.op
        self.q = 2 if base.scheme == "bdf2" else 1

    def _norm(self, x) -> float:
        return float(np.sum(np.abs(x)) * self.op.volume)

    def _resolve(self, hist: _History, h: float, bdf2: bool, state: RunState):
        """(w, rho, f) after one resolvent of step h from ``hist``; raises NewtonFailure."""
        op, t_new = self.op, hist.t + h
        if bdf2:
            om = h / hist.h
            hp = h * (1 + om) / (1 + 2 * om)
            a, c = (1 + om) ** 2 / (1 + 2 * om), om ** 2 / (1 + 2 * om)
            top = np.maximum(hist.w, hist.w_prev)
            rhs = Rhs(a * np.exp(hist.w - top) - c * np.exp(hist.w_prev - top), op.log_rho_d + top)
        else:
            hp, rhs = h, Rhs.from_log(op.log_rho_d + hist.w)
        rhs = self.base._with_source(rhs, t_new, hp)
        guess = hist.w
        if hist.w_prev is not None:
            guess = hist.w + np.clip((hist.w - hist.w_prev) * (h / hist.h), -PREDICTOR_CLIP, PREDICTOR_CLIP)
        before = state.newton_iterations[-1]
        self.log.resolvents += 1
        try:
            w = self.base._resolvent(guess, rhs, hp, state)
        finally:
            self.log.newton += state.newton_iterations[-1] - before
        rho = op.rho(w)
        with np.errstate(over="ignore", invalid="ignore"):
            f = (rho - rhs.mant * np.exp(rhs.log)) / hp
        return w, rho, f

    def _error(self, hist: _History, h: float, rho: np.ndarray, bdf2: bool) -> np.ndarray:
        """The local error estimate le (module docstring)."""
        pred = hist.rho + h * hist.f
        if not bdf2:
            return 0.5 * (rho - pred)
        hm = hist.h
        om = h / hm
        pred = pred + h * h * (hist.rho_prev - hist.rho + hm * hist.f) / (hm * hm)
        kc, kp = (1 + om) ** 2 / (6 * om * (1 + 2 * om)), (1 + om) / (6 * om)
        return kc / (kc + kp) * (rho - pred)

    def _accept(self, err: float, h: float) -> float:
        """The controller's next step from this one's error."""
        fac = SAFETY * err ** (-1.0 / self.q) if err > 0 else FAC_MAX
        return h * min(FAC_MAX, max(FAC_MIN, fac))

    def first_step(self, hist: _History, h: float, state: RunState, log: StepLog, mass: float) -> tuple:
        """Step doubling from t = 0; returns (history after the two half steps, proposed next h)."""
        w_full, rho_full, _ = self._resolve(hist, h, False, state)
        w_mid, rho_mid, f_mid = self._resolve(hist, h / 2, False, state)
        mid = _History(hist.t + h / 2, w_mid, rho_mid, f_mid, h / 2, hist.rho, hist.w)
        w_end, rho_end, f_end = self._resolve(mid, h / 2, False, state)
        err = self._norm(rho_end - rho_full) / (h * self.rtol * mass)
        if err > 1.0:
            raise _Rejected(err)
        for t_k in (hist.t + h / 2, hist.t + h):
            log.t.append(t_k)
            log.h.append(h / 2)
            log.err.append(err)
        return _History(hist.t + h, w_end, rho_end, f_end, h / 2, rho_mid, w_mid), mid, self._accept(err, h)

    def step(self, hist: _History, h: float, state: RunState, log: StepLog, mass: float) -> tuple:
        """One controlled step; returns (new history, proposed next h) or raises _Rejected."""
        bdf2 = self.base.scheme == "bdf2"
        w, rho, f = self._resolve(hist, h, bdf2, state)
        err = self._norm(self._error(hist, h, rho, bdf2)) / (h * self.rtol * mass)
        if not np.isfinite(err):
            raise NewtonFailure("non-finite error estimate")
        if err > 1.0:
            raise _Rejected(err)
        log.t.append(hist.t + h)
        log.h.append(h)
        log.err.append(err)
        return _History(hist.t + h, w, rho, f, h, hist.rho, hist.w), self._accept(err, h)


class _Rejected(Exception):
    def __init__(self, err):
        self.err = err


def _landing(t: float, h: float, targets: list) -> float:
    """h cut so that the step lands on the next save time (and leaves no sliver before it)."""
    nxt = next(s for s in targets if s > t + 1e-12 * max(1.0, abs(t)))
    rem = nxt - t
    if h >= rem * (1 - 1e-12):
        return rem
    if h > 0.75 * rem:       # two nearly equal steps instead of a step and a sliver
        return 0.5 * rem
    return h


def adaptive_run(base: CrandallLiggett, w0: np.ndarray, save_times, rtol: float,
                 progress: Optional[Callable] = None) -> tuple[RunState, StepLog]:
    """Run from t = 0 through ``save_times`` with error control (module docstring).

    Returns the :class:`RunState` (saved densities at t = 0 and each save time, per-step Newton
    counts, mass, energy, wall times) and the :class:`StepLog` of accepted steps.
    """
    log = StepLog()
    ctl = AdaptiveStepper(base, rtol, log)
    op, dt = base.op, base.dt
    state = RunState(n=0, w=np.array(w0, dtype=float), w_prev=None)
    state.saved_t.append(0.0)
    state.saved_rho.append(op.rho(state.w))
    base.record(state)
    targets = [float(s) for s in save_times]
    mass = max(state.mass[0], 1e-300)
    hist = _History(0.0, state.w, state.saved_rho[0])
    h, t_start, fails = dt, time.perf_counter(), 0
    while hist.t < targets[-1] * (1 - 1e-12):
        t_step = time.perf_counter()
        h_free = min(h, dt)
        h_try = _landing(hist.t, h_free, targets)
        if base.scheme == "bdf2" and hist.f is not None:
            h_try = min(h_try, FAC_MAX * hist.h)     # zero-stability of variable-step BDF2
        state.newton_iterations.append(0)
        state.mass_residuals.append(0.0)
        try:
            if hist.f is None:
                hist, mid, h = ctl.first_step(hist, h_try, state, log, mass)
                _record(base, state, mid, targets, t_step)
                t_step = time.perf_counter()
            else:
                hist, h = ctl.step(hist, h_try, state, log, mass)
            if h_try < h_free and hist.f is not None:   # cut to land on a save time: the same
                err = log.err[-1]                         # controller, clamped relative to the free step
                h = min(h_try * SAFETY * err ** (-1.0 / ctl.q) if err > 0 else np.inf, FAC_MAX * h_free)
            fails = 0
        except (_Rejected, NewtonFailure) as exc:
            fails += 1
            if fails > MAX_REJECTIONS:
                raise SolverError(f"adaptive steps: {MAX_REJECTIONS} rejections in a row at t = {hist.t:.6g} "
                                  f"(step {h_try:.3g})") from None
            if isinstance(exc, _Rejected):
                log.rejected_error += 1
                h = h_try * max(FAC_MIN, SAFETY * exc.err ** (-1.0 / ctl.q))
            else:
                log.rejected_newton += 1
                state.rejected_steps += 1
                h = h_try / 2
            state.newton_iterations.pop()
            state.mass_residuals.pop()
            continue
        _record(base, state, hist, targets, t_step)
        state.wall_time = time.perf_counter() - t_start
        if progress is not None:
            progress(int(round(hist.t / dt)), f"t={hist.t:.4g} h={log.h[-1]:.3g}")
    return state, log


def _record(base: CrandallLiggett, state: RunState, hist: _History, targets, t_step: float) -> None:
    """Book an accepted step: mass, energy, a save if it landed on a save time, its wall time."""
    state.w, state.w_prev = hist.w, hist.w_prev
    state.n += 1
    base.record(state)
    if any(abs(hist.t - s) <= 1e-12 * max(1.0, s) for s in targets):
        state.saved_t.append(float(hist.t))
        state.saved_rho.append(hist.rho)
    state.step_wall_times.append(time.perf_counter() - t_step)
    if len(state.newton_iterations) < state.n:
        state.newton_iterations.append(0)
        state.mass_residuals.append(0.0)
