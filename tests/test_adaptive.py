"""Adaptive, error-controlled time steps (fpsolver.fv.adaptive): case files and CLI, landing on the
save times, every backward-Euler step one resolvent, tolerance proportionality in 1D and 2D."""
from __future__ import annotations

import os

import numpy as np
import pytest

from fpsolver import cli
from fpsolver.case import Case
from fpsolver.errors import CaseError
from fpsolver.flows import get_flow
from fpsolver.fv import FVOperator, backward_euler_step, solve_case

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _bimodal(**kw) -> Case:
    return Case.from_toml(os.path.join(EXAMPLES, "bimodal_1d.toml")).with_overrides(cells=[100], **kw)


def _l1(a, b, case) -> float:
    return float(np.sum(np.abs(a - b)) * case.grid.cell_volume)


@pytest.mark.parametrize("value,message", [(-1e-3, "must be > 0"), (1.5, "must be < 1"), ("x", "must be a number")])
def test_bad_rtol_is_one_line_naming_the_key(value, message):
    with pytest.raises(CaseError) as exc:
        _bimodal(rtol=value)
    text = str(exc.value)
    assert text.startswith("time.rtol") and message in text and "\n" not in text


def test_rtol_is_refused_for_kernel_flows():
    with pytest.raises(CaseError, match="time.rtol"):
        Case.from_toml(os.path.join(EXAMPLES, "mmd_1d.toml")).with_overrides(rtol=1e-3)


def test_cli_rtol_runs_adaptive_steps_and_fipy_refuses_it(tmp_path, capsys):
    out = tmp_path / "r.npz"
    ex = os.path.join(EXAMPLES, "bimodal_1d.toml")
    assert cli.main(["solve", ex, "--out", str(out), "--rtol", "1e-3", "--cells", "100", "--quiet"]) == 0
    from fpsolver.result import Result
    res = Result.load(str(out))
    assert res.meta["time_rtol"] == 1e-3 and len(res.meta["step_sizes"]) == res.meta["steps"]
    assert cli.main(["solve", ex, "--out", str(tmp_path / "f.npz"), "--rtol", "1e-3", "--backend", "fipy"]) == 2
    assert "fv backend only" in capsys.readouterr().err


@pytest.mark.parametrize("scheme", ["backward-euler", "bdf2"])
def test_steps_land_on_the_save_times_and_never_exceed_dt(scheme):
    case = _bimodal(scheme=scheme, save_times=[0.3, 0.5], dt=0.1, rtol=1e-3)
    res = solve_case(case)
    m = res.meta
    assert list(res.t) == [0.0, 0.3, 0.5]                       # exactly, not to round-off
    assert max(m["step_sizes"]) <= 0.1 and len(m["step_sizes"]) == m["steps"] == len(m["step_wall_times"])
    assert m["step_end_times"][-1] == 0.5 and abs(sum(m["step_sizes"]) - 0.5) <= 1e-14
    if scheme == "backward-euler":     # flux form and round-off Newton: mass to round-off
        assert m["mass_error"] <= 1e-12
    assert all(e <= 1.0 for e in m["step_errors"])


def test_every_backward_euler_step_is_one_resolvent():
    """Composing (I + h_k A)^{-1} with the recorded steps h_k reproduces the adaptive run to the
    Newton tolerance (round-off: both solves stop at the mass-residual floor, ~1e-15 per step)."""
    case = _bimodal(save_times=[0.2], dt=0.1, rtol=1e-2)
    res = solve_case(case)
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    w = (initial.log_cells - target.log_cells).reshape(op.shape)
    for h in res.meta["step_sizes"]:
        w, _ = backward_euler_step(op, get_flow("js"), w, op.rho(w), h)
    assert _l1(op.rho(w).ravel(), res.rho[-1].ravel(), case) <= 1e-13 * len(res.meta["step_sizes"])


def _errors(case_of_rtol, ref, rtols):
    return [_l1(solve_case(case_of_rtol(r)).rho[-1], ref, case_of_rtol(r)) for r in rtols]


@pytest.mark.parametrize("scheme", ["backward-euler", "bdf2"])
def test_tolerance_proportionality_1d(scheme):
    """Error per unit step: the global error is proportional to rtol (slope 1; +-0.15 as in the
    order studies), and for backward Euler, an L1 contraction, at most rtol M T."""
    ref = solve_case(_bimodal(scheme="bdf2", dt=0.5 / 512, save_times=[0.5])).rho[-1]
    rtols = [1e-2, 1e-3] if scheme == "backward-euler" else [1e-3, 1e-5]
    errs = _errors(lambda r: _bimodal(scheme=scheme, dt=0.1, save_times=[0.5], rtol=r), ref, rtols)
    slope = np.log(errs[0] / errs[1]) / np.log(rtols[0] / rtols[1])
    assert abs(slope - 1.0) <= 0.15, (errs, slope)
    if scheme == "backward-euler":
        assert max(e / (r * 0.5) for e, r in zip(errs, rtols)) <= 1.0


@pytest.mark.parametrize("scheme", ["backward-euler", "bdf2"])
def test_adaptive_steps_in_2d(scheme):
    """2D (multigrid Newton solves): lands on the save times, conserves mass (backward Euler), and
    the global error stays below rtol M T against a fine fixed-step reference."""
    base = Case.from_toml(os.path.join(EXAMPLES, "two_mode_2d.toml")).with_overrides(cells=[16, 16])
    ref = solve_case(base.with_overrides(scheme="bdf2", dt=0.2 / 256, save_times=[0.2])).rho[-1]
    case = base.with_overrides(scheme=scheme, dt=0.1, save_times=[0.2], rtol=1e-3)
    res = solve_case(case)
    assert list(res.t) == [0.0, 0.2]
    assert _l1(res.rho[-1], ref, case) <= 1e-3 * 0.2
    if scheme == "backward-euler":
        assert res.meta["mass_error"] <= 1e-12


def test_checkpoints_are_refused_with_adaptive_steps(tmp_path):
    from fpsolver.errors import InputError
    with pytest.raises(InputError, match="time.rtol"):
        solve_case(_bimodal(rtol=1e-3), checkpoint_path=str(tmp_path / "c.npz"))
