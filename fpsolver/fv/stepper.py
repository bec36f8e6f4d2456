"""Time stepping: the Crandall-Liggett exponential formula, BDF2, save times, checkpoints.

Backward Euler is the exponential formula of MATH.md section 3 with n = t/dt factors:

    rho(t_n) ~ (I + dt A)^{-n} rho_0,    A rho = -div(rho_d grad beta(rho / rho_d)).

BDF2 solves (3 rho^{n+1} - 4 rho^n + rho^{n-1}) / (2 dt) = -A rho^{n+1}, i.e. the same resolvent
with step 2dt/3 and right-hand side (4 rho^n - rho^{n-1})/3; its first step (and the step after
a rejection) is backward Euler. A step whose Newton solve fails is rejected and replaced by two
backward-Euler half steps, recursively up to ``MAX_HALVINGS`` times; rejections are counted.

Newton starts from the polynomial extrapolation of w through the last (up to) four steps, its
increment clipped per cell (:func:`predict`): a smooth solution's cubic extrapolation is
O(dt^4) off, so one Newton iteration often reaches the round-off tolerance where the linear one
(O(dt^2)) needed two. The start changes the iterations, not the answer (the same resolvent to
the Newton tolerance); should Newton fail from it, the step is retried from w^n before it is
rejected.
With ``time.rtol`` in the case, :func:`solve_case` takes error-controlled steps instead
(:mod:`.adaptive`); every step's wall time is recorded either way.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .. import __version__
from ..errors import InputError, SolverError
from ..flows import Flow, get_flow
from ..result import Result, atomic_savez, json_plain
from .newton import NewtonFailure, Rhs, backward_euler_step
from .operators import FVOperator

MAX_HALVINGS = 10
PREDICTOR_CLIP = 0.5  # largest extrapolated change of log u per cell in the Newton start
PREDICTOR_DEPTH = 2   # earlier steps kept beyond w^{n-1}: extrapolation up to cubic


@dataclass
class RunState:
    """Everything needed to continue a run bit for bit (what a checkpoint holds)."""

    n: int                       # steps done
    w: np.ndarray                # log(rho / rho_d) at step n
    w_prev: Optional[np.ndarray]  # at step n - 1 (BDF2 history), None after a restart
    w_older: list = field(default_factory=list)   # at steps n - 2, n - 3 (the Newton start), [] after a restart
    saved_t: list = field(default_factory=list)
    saved_rho: list = field(default_factory=list)
    newton_iterations: list = field(default_factory=list)
    mass_residuals: list = field(default_factory=list)   # per step: sum over its resolvents of sum_i |R_i|
    mass: list = field(default_factory=list)
    energy: list = field(default_factory=list)
    rejected_steps: int = 0
    linear_iterations: int = 0
    wall_time: float = 0.0
    step_wall_times: list = field(default_factory=list)   # seconds per step (solve, record, save)
    linear_seconds: float = 0.0  # of which in the linear solves of Newton (not checkpointed: timing only)


JUMP_HINT = 50.0     # a change of log(rho / rho_d) between neighbouring cells above which to say so


def _resolution_hint(w) -> str:
    """An addendum to a Newton failure where the grid does not resolve rho / rho_d: w jumping by
    more than JUMP_HINT between neighbouring cells (a target about one cell wide)."""
    jumps = [np.max(np.abs(np.diff(w, axis=a))) for a in range(w.ndim) if w.shape[a] > 1]
    jump = max(jumps, default=0.0)
    if not jump > JUMP_HINT:
        return ""
    return (f"; log(rho / rho_d) changes by up to {jump:.0f} between neighbouring cells: the grid does "
            "not resolve the target, refine domain.cells")


def predict(state: RunState) -> Optional[np.ndarray]:
    """The Newton start for step n + 1: w^n plus the increment of the polynomial through the last
    k + 1 states (k = 1, 2, 3: linear, quadratic, cubic), clipped to +-PREDICTOR_CLIP per cell (far
    tail cells barely enter the mass residual, so an unbounded extrapolation there would be
    accepted and compound from step to step). None without history (start from w^n itself)."""
    w = state.w
    if state.w_prev is None:
        return None
    hist = [w, state.w_prev, *state.w_older]
    if len(hist) == 2:
        d = w - hist[1]
    elif len(hist) == 3:
        d = (2.0 * w - 3.0 * hist[1]) + hist[2]
    else:
        d = ((3.0 * w - 6.0 * hist[1]) + 4.0 * hist[2]) - hist[3]
    return w + np.clip(d, -PREDICTOR_CLIP, PREDICTOR_CLIP)


class CrandallLiggett:
    """Backward Euler / BDF2 time stepper on a :class:`FVOperator`."""

    def __init__(self, op: FVOperator, flow: Flow, dt: float, scheme: str = "backward-euler",
                 rtol: float = 1e-15, linear: str = "auto",
                 source: Optional[Callable[[float], np.ndarray]] = None):
        if scheme not in ("backward-euler", "bdf2"):
            raise ValueError(f"unknown scheme {scheme!r}")
        self.op, self.flow, self.dt, self.scheme = op, flow, float(dt), scheme
        self.rtol, self.linear, self.source = rtol, linear, source

    # --- one resolvent, with rejection and halving
    def _resolvent(self, w_start, rhs, h, state: RunState):
        """One resolvent from w_start; its Newton and linear iterations are booked only when it
        succeeds (a failed attempt, like a rejected step, is not counted in ``meta``)."""
        w, st = backward_euler_step(self.op, self.flow, w_start, rhs, h, rtol=self.rtol, linear=self.linear)
        state.newton_iterations[-1] += st.iterations
        state.mass_residuals[-1] += st.mass_residual
        state.linear_iterations += st.linear_iterations
        state.linear_seconds += st.linear_seconds
        return w

    def _with_source(self, rhs: Rhs, t_new, h) -> Rhs:
        """Add h S(t_new) to the right-hand side, if there is a source."""
        if self.source is not None:
            rhs = rhs.plus(h * self.source(t_new).reshape(rhs.log.shape))
        return rhs

    def _rhs_be(self, w) -> Rhs:
        """b = rho^n = rho_d e^w, kept in log form."""
        return Rhs.from_log(self.op.log_rho_d + w)

    def _rhs_bdf2(self, w, w_prev) -> Rhs:
        """b = (4 rho^n - rho^{n-1}) / 3 in log form, scaled by the larger of the two."""
        top = np.maximum(w, w_prev)
        return Rhs((4 * np.exp(w - top) - np.exp(w_prev - top)) / 3, self.op.log_rho_d + top)

    def _resolvent_from(self, w_guess, w, rhs, h, state: RunState):
        """The resolvent from the extrapolated start ``w_guess``, and from w^n where that fails or
        where there is none; raises NewtonFailure if the start from w^n fails too."""
        if w_guess is not None:
            try:
                return self._resolvent(w_guess, rhs, h, state)
            except NewtonFailure:
                pass
        return self._resolvent(w, rhs, h, state)

    def _be_substeps(self, w, t0, h, depth, state, w_guess=None):
        """Advance w from t0 by h with backward Euler, halving on failure (after a retry from w
        where Newton started from an extrapolation)."""
        try:
            return self._resolvent_from(w_guess, w, self._with_source(self._rhs_be(w), t0 + h, h), h, state)
        except NewtonFailure as exc:
            if depth >= MAX_HALVINGS:
                raise SolverError(f"Newton failed at t = {t0:.6g} even with step {h:.3g} "
                                  f"({MAX_HALVINGS} halvings): {exc}{_resolution_hint(w)}") from None
            state.rejected_steps += 1
            w_half = self._be_substeps(w, t0, h / 2, depth + 1, state)
            return self._be_substeps(w_half, t0 + h / 2, h / 2, depth + 1, state)

    def step(self, state: RunState) -> None:
        """Advance ``state`` by one step dt."""
        t0 = state.n * self.dt
        state.newton_iterations.append(0)
        state.mass_residuals.append(0.0)
        w = state.w
        w_guess = predict(state)
        if self.scheme == "bdf2" and state.w_prev is not None:
            h = 2 * self.dt / 3
            rhs = self._with_source(self._rhs_bdf2(w, state.w_prev), t0 + self.dt, h)
            try:
                w_new = self._resolvent_from(w_guess, w, rhs, h, state)
                restart = False
            except NewtonFailure:
                state.rejected_steps += 1
                w_new = self._be_substeps(w, t0, self.dt, 1, state)
                restart = True
        else:
            rejected = state.rejected_steps
            w_new = self._be_substeps(w, t0, self.dt, 0, state, w_guess)
            restart = state.rejected_steps > rejected
        older = [] if restart or state.w_prev is None else [state.w_prev, *state.w_older][:PREDICTOR_DEPTH]
        state.w_prev = None if restart else w
        state.w_older = older
        state.w = w_new
        state.n += 1

    def record(self, state: RunState) -> None:
        rho = self.op.rho(state.w)
        state.mass.append(float(np.sum(rho) * self.op.volume))
        if self.flow.has_energy:
            state.energy.append(self.flow.energy_from_logs(self.op.log_rho_d + state.w, self.op.log_rho_d,
                                                           self.op.volume))


def crandall_liggett(op: FVOperator, flow, w0: np.ndarray, dt: float, save_steps, *,
                     scheme: str = "backward-euler", rtol: float = 1e-15, linear: str = "auto",
                     source=None, progress: Callable = None, state: Optional[RunState] = None,
                     checkpoint: Optional[Callable[[RunState], None]] = None) -> RunState:
    """Run the exponential formula (or BDF2) from w0 through the given save steps.

    Returns the final :class:`RunState`, whose ``saved_rho`` holds rho at step 0 and at each
    of ``save_steps`` (step k is time k*dt). ``state`` continues an interrupted run;
    ``checkpoint(state)`` is called after every step (it decides itself whether to write).
    """
    stepper = CrandallLiggett(op, get_flow(flow), dt, scheme, rtol, linear, source)
    if state is None:
        stepper.flow.check_representable(op.log_rho_d + w0, op.log_rho_d, op.volume)
    save_steps = [int(k) for k in save_steps]
    if state is None:
        state = RunState(n=0, w=np.array(w0, dtype=float), w_prev=None)
        state.saved_t.append(0.0)
        state.saved_rho.append(op.rho(state.w))
        stepper.record(state)
    total = save_steps[-1]
    t_start = time.perf_counter() - state.wall_time
    while state.n < total:
        t_step = time.perf_counter()
        stepper.step(state)
        stepper.record(state)
        if state.n in save_steps:
            state.saved_t.append(state.n * dt)
            state.saved_rho.append(op.rho(state.w))
        now = time.perf_counter()
        state.step_wall_times.append(now - t_step)
        state.wall_time = now - t_start
        if progress is not None:
            progress(state.n, f"t={state.n * dt:.4g}")
        if checkpoint is not None:
            checkpoint(state)
    return state


# ------------------------------------------------------------------ case -> Result

def solve_case(case, *, scheme: Optional[str] = None, rtol: float = 1e-15, linear: str = "auto",
               progress: Callable = None, checkpoint_path: Optional[str] = None,
               checkpoint_every: float = 60.0, resume: Optional[str] = None) -> Result:
    """Solve a :class:`~fpsolver.case.Case` with the finite-volume solver; return a Result.

    Local flows (MATH.md section 2) take the implicit Crandall-Liggett scheme; kernel flows
    (``kind = "mmd"``, section 9) the explicit transport scheme of :mod:`.kernel_solve`; a case
    with a ``[discriminator]`` table the dual flow of section 10 (:mod:`fpsolver.dynamics.grid`).
    """
    if case.discriminator is not None:
        if checkpoint_path or resume:
            raise InputError("--checkpoint/--resume: not available for the dual flows ([discriminator])")
        from ..dynamics.grid import solve_case_dual
        return solve_case_dual(case, progress=progress)
    if case.flow == "mmd":
        if checkpoint_path or resume:
            raise InputError("--checkpoint/--resume: not available for the kernel (mmd) flows")
        from .kernel_solve import solve_case_transport
        return solve_case_transport(case, progress=progress)
    scheme = scheme or case.scheme
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    flow = case.local_flow()
    w0 = (initial.log_cells - target.log_cells).reshape(op.shape)
    adaptive = {}
    if case.rtol is not None:
        if checkpoint_path or resume:
            raise InputError("--checkpoint/--resume: not available with adaptive steps (time.rtol)")
        from .adaptive import adaptive_run
        flow.check_representable(op.log_rho_d + w0, op.log_rho_d, op.volume)
        stepper = CrandallLiggett(op, flow, case.dt, scheme, rtol, linear)
        state, log = adaptive_run(stepper, w0, case.save_times, case.rtol, progress=progress)
        adaptive = {"time_rtol": case.rtol, "step_end_times": log.t, "step_sizes": log.h,
                    "step_errors": log.err, "rejected_by_error": log.rejected_error,
                    "resolvents": log.resolvents, "newton_iterations_all": log.newton}
    else:
        state = load_checkpoint(resume, case, scheme, op.log_rho_d.shape) if resume else None
        writer = _CheckpointWriter(checkpoint_path, checkpoint_every, case, scheme) if checkpoint_path else None
        state = crandall_liggett(op, flow, w0, case.dt, case.save_steps, scheme=scheme, rtol=rtol,
                                 linear=linear, progress=progress, state=state, checkpoint=writer)
    mass = np.array(state.mass)
    meta = {
        "kind": "density", "backend": "fv", "version": __version__, "case": case.raw,
        "source": case.source, "flow": case.flow, "scheme": scheme, "dt": case.dt,
        "grid": case.grid.to_dict(), "newton_rtol": rtol, "linear_solver": linear,
        "steps": state.n, "newton_iterations": state.newton_iterations,
        "newton_mass_residual": state.mass_residuals,
        "linear_iterations": state.linear_iterations, "rejected_steps": state.rejected_steps,
        "mass": state.mass, "energy": state.energy,
        "mass_error": float(np.max(np.abs(mass - mass[0])) / mass[0]),
        "min_rho": float(min(np.min(r) for r in state.saved_rho)),
        "wall_time": state.wall_time, "step_wall_times": state.step_wall_times,
        "linear_solve_time": state.linear_seconds, **adaptive,
    }
    shape = case.grid.shape
    return Result(t=np.array(state.saved_t), meta=meta, axes=case.grid.centres,
                  rho=np.stack([r.reshape(shape) for r in state.saved_rho]),
                  rho_d=np.exp(target.log_cells).reshape(shape))


class _CheckpointWriter:
    def __init__(self, path, every, case, scheme):
        self.path, self.every, self.case, self.scheme = path, float(every), case, scheme
        self.last = time.perf_counter()

    def __call__(self, state: RunState) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every:
            save_checkpoint(self.path, state, self.case, self.scheme)
            self.last = now


def save_checkpoint(path, state: RunState, case, scheme: str) -> None:
    """Write the run state atomically (``.npz``; arrays plus a JSON header)."""
    head = {"kind": "fv-checkpoint", "version": __version__, "case": case.raw, "scheme": scheme,
            "n": state.n, "rejected_steps": state.rejected_steps,
            "linear_iterations": state.linear_iterations, "wall_time": state.wall_time,
            "step_wall_times": state.step_wall_times, "saved_t": state.saved_t, "newton_iterations": state.newton_iterations,
            "mass_residuals": state.mass_residuals,
            "mass": state.mass, "energy": state.energy}
    arrays = {"meta": np.array(json.dumps(json_plain(head))), "w": state.w, "saved_rho": np.stack(state.saved_rho)}
    if state.w_prev is not None:
        arrays["w_prev"] = state.w_prev
    if state.w_older:
        arrays["w_older"] = np.stack(state.w_older)
    atomic_savez(path, **arrays)


def load_checkpoint(path, case, scheme: str, shape) -> RunState:
    """Read a checkpoint written by :func:`save_checkpoint` for the same case and scheme."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as z:
            head = json.loads(str(z["meta"]))
            w, saved = z["w"], z["saved_rho"]
            w_prev = z["w_prev"] if "w_prev" in z.files else None
            w_older = list(z["w_older"]) if "w_older" in z.files else []
    except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(head, dict) or head.get("kind") != "fv-checkpoint":
        raise InputError(f"{path}: not a grid-solver checkpoint")
    if head.get("case") != json_plain(case.raw) or head.get("scheme") != scheme:
        raise InputError(f"{path}: checkpoint was written for a different case or scheme")
    # (a checkpoint without w_older resumes from the linear Newton start: the same answers to the
    # Newton tolerance, not bitwise those of the uninterrupted run)
    kept = [w, *w_older] + ([] if w_prev is None else [w_prev])
    if any(v.shape != tuple(shape) or not np.all(np.isfinite(v)) for v in kept):
        raise InputError(f"{path}: checkpoint state does not match the grid")
    return RunState(n=int(head["n"]), w=w, w_prev=w_prev, w_older=w_older, saved_t=list(head["saved_t"]),
                    saved_rho=[r.reshape(shape) for r in saved],
                    newton_iterations=list(head["newton_iterations"]),
                    mass_residuals=list(head["mass_residuals"]), mass=list(head["mass"]),
                    energy=list(head["energy"]), rejected_steps=int(head["rejected_steps"]),
                    linear_iterations=int(head["linear_iterations"]), wall_time=float(head["wall_time"]),
                    step_wall_times=list(head.get("step_wall_times", [None] * int(head["n"]))))  # None: not recorded
