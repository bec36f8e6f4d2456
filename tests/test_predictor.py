"""The Newton start of the grid stepper (fpsolver.fv.stepper.predict): polynomial extrapolation
through the last four steps, clipped per cell, and a retry from w^n before a step is rejected."""
from __future__ import annotations

import os

import numpy as np
import pytest

from fpsolver.case import Case
from fpsolver.fv import FVOperator, crandall_liggett
from fpsolver.fv import stepper as st
from fpsolver.fv.newton import NewtonFailure

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _state(ws):
    """A RunState whose history is ws[-1] (current), ws[-2], ... (oldest first in ws)."""
    s = st.RunState(n=len(ws) - 1, w=ws[-1], w_prev=ws[-2] if len(ws) > 1 else None)
    s.w_older = [ws[-3 - k] for k in range(min(len(ws) - 2, st.PREDICTOR_DEPTH))] if len(ws) > 2 else []
    return s


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_extrapolation_is_exact_for_polynomials_of_its_degree(degree):
    """With k + 1 states the start is the degree-k polynomial through them at the next step: exact
    (to the rounding of the combination, a few ulp of the values) for a polynomial of degree k."""
    rng = np.random.default_rng(degree)
    coef = rng.normal(0.0, 0.05, (degree + 1, 7, 1))
    t = np.arange(degree + 2) * 0.3
    ws = [sum(c * tk ** p for p, c in enumerate(coef)) for tk in t]
    guess = st.predict(_state(ws[:-1]))
    np.testing.assert_allclose(guess, ws[-1], rtol=0, atol=64 * np.finfo(float).eps)


def test_cubic_start_error_falls_like_dt_to_the_fourth():
    """On a smooth w(t) = sin(t + x) the start is off by O(dt^4): halving dt divides it by 16
    (observed order 4 +- 0.15)."""
    x = np.linspace(0.0, 1.0, 9)[:, None]
    errs = []
    for dt in (0.02, 0.01):
        ws = [0.1 * np.sin(k * dt + x) for k in range(5)]
        errs.append(float(np.max(np.abs(st.predict(_state(ws[:-1])) - ws[-1]))))
    assert np.log2(errs[0] / errs[1]) == pytest.approx(4.0, abs=0.15)


def test_the_increment_is_clipped_per_cell():
    ws = [np.full((4, 1), 0.0), np.full((4, 1), 10.0)]
    state = _state(ws)
    np.testing.assert_array_equal(st.predict(state), 10.0 + st.PREDICTOR_CLIP)


def test_one_newton_iteration_per_step_once_the_history_is_full():
    """bimodal_1d (js, dt = 0.01, 1000 cells): once the initial layer has passed (t > 0.4), the
    cubic start is O(dt^4) off and one Newton iteration reaches the round-off tolerance in nearly
    every step; the linear start (O(dt^2) off) needed two in every step."""
    case = Case.from_toml(os.path.join(EXAMPLES, "bimodal_1d.toml")).with_overrides(cells=[1000], dt=0.01)
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    state = crandall_liggett(op, "js", (initial.log_cells - target.log_cells).reshape(op.shape), 0.01, [100])
    iters = np.array(state.newton_iterations[40:])
    assert np.mean(iters == 1) >= 0.9 and state.rejected_steps == 0, np.bincount(iters)


@pytest.mark.parametrize("scheme", ["backward-euler", "bdf2"])
def test_a_failure_from_the_extrapolated_start_is_retried_from_w_not_rejected(monkeypatch, scheme):
    """Newton is made to fail whenever it does not start from w^n itself: every step is then
    solved from w^n, with no rejection, and gives the same answer as the plain start."""
    case = Case.from_toml(os.path.join(EXAMPLES, "bimodal_1d.toml")).with_overrides(cells=[200], dt=0.02)
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    w0 = (initial.log_cells - target.log_cells).reshape(op.shape)
    real = st.backward_euler_step
    plain = {}

    def only_from_w(op_, flow, w_start, rhs, h, **kw):
        if not any(np.array_equal(w_start, w) for w in plain["w"]):
            raise NewtonFailure("refused: not started from w^n")
        return real(op_, flow, w_start, rhs, h, **kw)

    monkeypatch.setattr(st, "backward_euler_step", only_from_w)
    orig_step = st.CrandallLiggett.step

    def step(self, state):
        plain["w"] = [state.w]
        orig_step(self, state)

    monkeypatch.setattr(st.CrandallLiggett, "step", step)
    state = crandall_liggett(op, "js", w0, 0.02, [10], scheme=scheme)
    assert state.rejected_steps == 0 and state.n == 10
    monkeypatch.setattr(st, "predict", lambda s: None)     # the plain start throughout
    monkeypatch.setattr(st, "backward_euler_step", real)
    ref = crandall_liggett(op, "js", w0, 0.02, [10], scheme=scheme)
    np.testing.assert_array_equal(state.w, ref.w)


def test_a_first_step_that_fails_is_halved_after_one_attempt(monkeypatch):
    """Without history the start is w^n itself: a failure there goes straight to the halving,
    not to a second, identical solve."""
    case = Case.from_toml(os.path.join(EXAMPLES, "bimodal_1d.toml")).with_overrides(cells=[100], dt=0.02)
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    real, full_steps = st.backward_euler_step, []

    def refuse_full_steps(op_, flow, w_start, rhs, h, **kw):
        if h == 0.02:
            full_steps.append(h)
            raise NewtonFailure("refused")
        return real(op_, flow, w_start, rhs, h, **kw)

    monkeypatch.setattr(st, "backward_euler_step", refuse_full_steps)
    state = crandall_liggett(op, "js", (initial.log_cells - target.log_cells).reshape(op.shape), 0.02, [1])
    assert full_steps == [0.02] and state.rejected_steps == 1
