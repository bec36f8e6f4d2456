"""The FiPy formulation against our finite-volume solver (fpsolver.fipy_backend).

Cross-check: the two are different O(h^2) discretisations (FiPy: exponential convection,
beta' at the arithmetic face value of u; ours: beta(u_j) - beta(u_i) across the face), so
their difference must be below the discretisation error, measured against our solver on a
grid 4x finer per axis (fine cells averaged onto the coarse ones).
For the linear kl flow the two discretisations coincide exactly, so there the difference is
bounded by the solvers' residuals alone.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.errors import InputError, SolverError
from fpsolver.fipy_backend import SWEEP_TOL, solve_case_fipy
from fpsolver.fv import solve_case
from fpsolver.result import Result

EPS = np.finfo(float).eps
RTOL_FV = 1e-12


def _case(dim: int, flow: str) -> Case:
    if dim == 1:
        return Case.from_dict({
            "domain": {"lower": [-4.0], "upper": [4.0], "cells": [400]},
            "target": {"kind": "gaussian_mixture", "components": [
                {"weight": 0.5, "mean": [-1.5], "std": [0.5]}, {"weight": 0.5, "mean": [1.5], "std": [0.5]}]},
            "initial": {"kind": "gaussian", "mean": [0.5], "std": [1.0]},
            "flow": {"kind": flow}, "time": {"dt": 0.01, "save_times": [0.02, 0.05]}})
    return Case.from_dict({
        "domain": {"lower": [-4.0, -4.0], "upper": [4.0, 4.0], "cells": [64, 64]},
        "target": {"kind": "gaussian_mixture", "components": [
            {"weight": 0.5, "mean": [-1.5, 0.0], "std": [0.5, 0.5]},
            {"weight": 0.5, "mean": [1.5, 0.5], "cov": [[0.3, 0.1], [0.1, 0.4]]}]},
        "initial": {"kind": "gaussian", "mean": [0.0, -0.5], "std": [1.0, 1.0]},
        "flow": {"kind": flow}, "time": {"dt": 0.02, "save_times": [0.02, 0.06]}})


def _restrict(fine: np.ndarray, shape: tuple) -> np.ndarray:
    """Average each block of 4 (4x4 in 2D) fine cells onto its coarse cell."""
    if len(shape) == 1:
        return fine.reshape(shape[0], 4).mean(axis=1)
    return fine.reshape(shape[0], 4, shape[1], 4).mean(axis=(1, 3))


@functools.lru_cache(maxsize=None)
def _runs(dim: int, flow: str) -> dict:
    case = _case(dim, flow)
    fine = [4 * n for n in case.grid.cells]
    return {"case": case, "fipy": solve_case_fipy(case), "ours": solve_case(case),
            "ref": solve_case(case.with_overrides(cells=fine, dt=case.dt / 4)),
            "ref_space": solve_case(case.with_overrides(cells=fine))}


def _l1(a, b, case) -> float:
    return float(np.sum(np.abs(a - b)) * case.grid.cell_volume)


@pytest.mark.parametrize("dim,flow", [(1, "js"), (1, "reverse-kl"), (2, "js"), (2, "reverse-kl")])
def test_fipy_agrees_with_ours_within_discretisation_error(dim, flow):
    r = _runs(dim, flow)
    case, fp, ours = r["case"], r["fipy"], r["ours"]
    np.testing.assert_allclose(fp.t, ours.t, rtol=0, atol=1e-12)
    assert fp.rho.shape == ours.rho.shape
    for k in range(1, len(fp.t)):
        diff = _l1(fp.rho[k], ours.rho[k], case)
        # error in space and time (4x finer grid, dt/4): the difference is below either's
        ref = _restrict(r["ref"].rho[k], case.grid.shape)
        err_ours, err_fipy = _l1(ours.rho[k], ref, case), _l1(fp.rho[k], ref, case)
        assert diff <= min(err_ours, err_fipy), (fp.t[k], diff, err_ours, err_fipy)
        # spatial error alone (same dt): the difference is no larger than the larger of the two
        ref_s = _restrict(r["ref_space"].rho[k], case.grid.shape)
        sp_ours, sp_fipy = _l1(ours.rho[k], ref_s, case), _l1(fp.rho[k], ref_s, case)
        assert diff <= max(sp_ours, sp_fipy), (fp.t[k], diff, sp_ours, sp_fipy)
        assert diff > 0  # the discretisations differ (beta' at the face vs the secant)


@pytest.mark.parametrize("scheme", ["backward-euler", "bdf2"])
def test_kl_discretisations_coincide_on_a_non_square_grid(scheme):
    """kl (beta' = 1): FiPy's exponential flux is our two-point flux exactly, so the answers
    differ only by the step residuals R_n; with the L1-contractive resolvent the error obeys
    e_{n+1} <= e_n + R_n (backward Euler) or e_{n+1} <= (4 e_n + e_{n-1})/3 + R_n (BDF2).
    A transposed [ix, iy] <-> FiPy cell ordering would give an O(1) difference."""
    case = Case.from_dict({
        "domain": {"lower": [-3.0, -2.0], "upper": [3.0, 2.5], "cells": [30, 18]},
        "target": {"kind": "gaussian", "mean": [0.3, 0.2], "cov": [[0.8, 0.3], [0.3, 0.6]]},
        "initial": {"kind": "gaussian", "mean": [-0.5, -0.4], "std": [0.7, 0.5]},
        "flow": {"kind": "kl"}, "time": {"dt": 0.05, "save_times": [0.1, 0.25], "scheme": scheme}})
    fp = solve_case_fipy(case, sweep_tol=1e-12)
    ours = solve_case(case, rtol=RTOL_FV)
    mass_b = 5.0 / 3.0 if scheme == "bdf2" else 1.0  # bound on sum |K| |b| of the resolvent
    res = [mass_b * (rf + RTOL_FV) for rf in fp.meta["final_residuals"]]
    bound = [0.0]
    for n, rn in enumerate(res):
        prev2 = bound[-2] if len(bound) > 1 else 0.0
        step = bound[-1] if (scheme == "backward-euler" or n == 0) else (4 * bound[-1] + prev2) / 3
        bound.append(step + rn)
    for k, t in enumerate(fp.t):
        n = int(round(t / case.dt))
        assert _l1(fp.rho[k], ours.rho[k], case) <= bound[n] + 64 * EPS, (t, bound[n])
    assert np.max(np.abs(fp.rho[-1] - ours.rho[-1])) < 1e-9 * np.max(ours.rho[-1])


def test_meta_mass_and_residuals():
    r = _runs(1, "js")
    fp, case = r["fipy"], r["case"]
    meta = fp.meta
    steps = case.save_steps[-1]
    assert meta["backend"] == "fipy" and meta["kind"] == "density"
    assert meta["flow"] == "js" and meta["scheme"] == "backward-euler" and meta["dt"] == case.dt
    assert meta["grid"] == case.grid.to_dict() and meta["case"] == case.raw
    assert meta["fipy_version"].split(".")[0].isdigit()
    assert meta["linear_solver"] == "scipy LinearLUSolver" and meta["linear_tolerance"] < SWEEP_TOL
    assert meta["convection_scheme"] == "exponential" and meta["sweep_tol"] == SWEEP_TOL
    assert len(meta["sweeps"]) == steps and all(s >= 1 for s in meta["sweeps"])
    assert len(meta["final_residuals"]) == steps and max(meta["final_residuals"]) <= SWEEP_TOL
    assert len(meta["mass"]) == len(meta["energy"]) == steps + 1
    assert meta["energy"][-1] < meta["energy"][0]
    assert meta["min_rho"] > 0 and meta["wall_time"] > 0
    np.testing.assert_allclose(fp.rho_d, np.exp(case.discretised()[0].log_cells), rtol=1e-15)
    np.testing.assert_allclose(fp.axes[0], case.grid.centres[0], rtol=0, atol=1e-14)
    assert abs(meta["mass"][0] - 1.0) < 1e-12


@pytest.mark.parametrize("dim,flow", [(1, "js"), (1, "reverse-kl"), (2, "js"), (2, "reverse-kl")])
def test_mass_conserved_to_the_sweep_residual(dim, flow):
    """sum_i R_i = mass(rho^{n+1}) - mass(rho^n): each step's mass change is bounded by its
    residual, plus the round-off of two sums of N positive terms."""
    meta = _runs(dim, flow)["fipy"].meta
    m = np.array(meta["mass"])
    floor = 2 * np.prod(meta["grid"]["cells"]) * EPS
    assert np.all(np.abs(np.diff(m)) <= (np.array(meta["final_residuals"]) + floor) * m[0])
    assert meta["mass_error"] <= 1e-12


def test_cli_solve_with_fipy_backend(tmp_path):
    case = tmp_path / "c.toml"
    case.write_text('[domain]\nlower = [-3.0]\nupper = [3.0]\ncells = [50]\n'
                    '[target]\nkind = "gaussian"\nmean = [0.0]\nstd = [1.0]\n'
                    '[initial]\nkind = "gaussian"\nmean = [1.0]\nstd = [0.6]\n'
                    '[flow]\nkind = "non-saturating"\n'
                    '[time]\ndt = 0.05\nsave_times = [0.05, 0.1]\n')
    out = tmp_path / "r.npz"
    assert main(["solve", str(case), "--backend", "fipy", "--out", str(out), "--quiet"]) == 0
    res = Result.load(out, expect="density")
    assert res.meta["backend"] == "fipy" and res.meta["flow"] == "non-saturating"
    assert res.rho.shape == (3, 50) and list(res.t) == [0.0, 0.05, 0.1]
    assert len(res.meta["sweeps"]) == 2
    direct = solve_case_fipy(Case.from_toml(case))
    np.testing.assert_array_equal(res.rho, direct.rho)
    assert direct.meta["sweeps"] == res.meta["sweeps"]


def test_unconverged_sweeps_raise_not_nan():
    case = _case(1, "reverse-kl").with_overrides(cells=[60], save_times=[0.01])
    with pytest.raises(SolverError, match="did not converge"):
        solve_case_fipy(case, max_sweeps=2)


def test_bad_input_is_one_clear_error():
    case = _case(1, "js").with_overrides(cells=[60], save_times=[0.01])
    with pytest.raises(InputError, match="scheme"):
        solve_case_fipy(case, scheme="rk4")
    far = Case.from_dict({
        "domain": {"lower": [-60.0], "upper": [60.0], "cells": [100]},
        "target": {"kind": "gaussian", "mean": [0.0], "std": [1.0]},
        "initial": {"kind": "gaussian", "mean": [0.0], "std": [1.0]},
        "flow": {"kind": "js"}, "time": {"dt": 0.1, "save_times": [0.1]}})
    with pytest.raises(InputError, match="underflows"):
        solve_case_fipy(far)
