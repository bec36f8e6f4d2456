"""The FiPy formulation (fpsolver.fipy_backend) and our solver, each against exact solutions.

FiPy is written as a FiPy user would write the PDE (its own face values and terms, nothing
from fpsolver.fv), so the two solvers are independent discretisations. Each is measured on its
own against the exact solutions of fpsolver.exact_solutions (the problems of the "fipy"
validation study), and their difference must shrink at order 2 on a smooth case.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import inspect

import numpy as np
import pytest

import fpsolver.fipy_backend as fipy_backend
from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.densities import GridDensity, Uniform
from fpsolver.errors import InputError, SolverError
from fpsolver.exact_solutions import barenblatt, barenblatt_time_of_radius
from fpsolver.fipy_backend import SWEEP_TOL, solve_case_fipy
from fpsolver.fv import solve_case
from fpsolver.grid import Grid
from fpsolver.result import Result
from fpsolver.studies import _common as C
from fpsolver.studies.fipy_check import (BARENBLATT_FLOOR, BARENBLATT_MIN_ORDER, ORDER_TOL, PROBLEMS,
                                         difference_case, errors_against_exact, exact_case, fit_power)

EPS = np.finfo(float).eps
SOLVERS = {"fv": solve_case, "FiPy": solve_case_fipy}
PROBLEM = {p.key: p for p in PROBLEMS}


@functools.lru_cache(maxsize=None)
def _errors(key: str) -> dict:
    problem = PROBLEM[key]
    return errors_against_exact(problem, problem.quick_cells, SOLVERS)


def test_fipy_backend_takes_nothing_from_fv():
    tree = ast.parse(inspect.getsource(fipy_backend))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not any(m and (m == "fv" or m.startswith("fv.") or "fpsolver.fv" in m) for m in imported), imported
    assert imported <= {"__future__", "time", "warnings", "dataclasses", "typing", "numpy", None,
                        "errors", "result", "fipy"}, imported


def test_dbeta_is_the_derivative_of_the_presets_beta():
    """beta of MATH.md section 2, differentiated by central differences (error ~ 1e-9 here)."""
    beta = {"js": lambda u: 0.5 * np.log1p(u), "reverse-kl": np.log, "kl": lambda u: u,
            "chi2": lambda u: u * u, "non-saturating": lambda u: u - np.log1p(u)}
    assert set(fipy_backend.DBETA) == set(beta)
    u, d = np.geomspace(1e-2, 1e2, 41), 1e-6
    for name, b in beta.items():
        fd = (b(u * (1 + d)) - b(u * (1 - d))) / (2 * d * u)
        np.testing.assert_allclose(fipy_backend.DBETA[name](u), fd, rtol=1e-7, err_msg=name)


@pytest.mark.parametrize("key", ["kl-wall", "kl-ou"])
@pytest.mark.parametrize("solver", ["fv", "FiPy"])
def test_each_solver_converges_at_order_2_against_the_exact_solution(key, solver):
    """kl with rho_d ~ e^{gx} on [0, 1] (both walls matter) and the Ornstein-Uhlenbeck
    Gaussian; BDF2 with dt ~ h, so the time error is O(h^2) too."""
    e = _errors(key)
    p, _ = fit_power(e["h"], e[solver])
    assert abs(p - 2.0) <= ORDER_TOL, (key, solver, e[solver], p)
    assert np.all(np.diff(e[solver]) < 0)
    assert sum(e["rejected"]) == 0


@pytest.mark.parametrize("solver", ["fv", "FiPy"])
def test_barenblatt_each_solver_above_the_theory_bound(solver):
    """chi2 with a uniform target: the porous-medium Barenblatt profile (a kink at the front)."""
    e = _errors("barenblatt-1d")
    p, c = fit_power(e["h"], e[solver])
    assert p >= BARENBLATT_MIN_ORDER, (solver, e[solver], p)
    assert e[solver][-1] < 1e-3  # L1 at 100 cells, unit mass


def test_barenblatt_on_a_non_square_grid_the_two_schemes_coincide():
    """For chi2 and a uniform rho_d, beta(u_j) - beta(u_i) = 2 u_f (u_j - u_i) with u_f FiPy's
    arithmetic face value: the two schemes are the same algebraic system and differ by solver
    tolerances only. An off-centre profile on a non-square grid with unequal spacings makes any
    [ix, iy] <-> FiPy cell-order mistake an O(1) difference, and both stay near the exact profile."""
    grid = Grid((-1.0, -0.8), (1.0, 1.0), (24, 18))
    c = 1.0 / 3.6
    t_shift = barenblatt_time_of_radius(0.35, c=c, dim=2)
    centre = (0.15, -0.05)
    rho0 = barenblatt(grid, 0.0, c=c, t_shift=t_shift, centre=centre) + BARENBLATT_FLOOR
    T = 0.5 * t_shift
    case = exact_case(grid, Uniform(2), GridDensity(rho0), "chi2", T / 4, T, "backward-euler", "test")
    fp, ours = solve_case_fipy(case, sweep_tol=1e-12), solve_case(case, rtol=1e-13)
    exact = barenblatt(grid, T, c=c, t_shift=t_shift, centre=centre)
    assert C.l1(fp.rho[-1], ours.rho[-1], grid) < 1e-9
    assert C.l1(fp.rho[-1], exact, grid) < 0.1
    assert C.l1(fp.rho[-1], exact, grid) < 0.2 * C.l1(rho0, exact, grid)
    np.testing.assert_allclose(fp.rho_d, ours.rho_d, rtol=1e-14)


@pytest.mark.parametrize("dim,flow,cells,T", [(1, "js", (50, 100, 200), 0.5), (1, "reverse-kl", (50, 100, 200), 0.5),
                                              (2, "js", (32, 64), 0.1)])
def test_difference_of_the_two_solvers_shrinks_at_order_2(dim, flow, cells, T):
    """Two different second-order discretisations of a smooth problem (same dt, backward Euler):
    their difference is O(h^2) and does not vanish."""
    h, diff = [], []
    for n in cells:
        case = difference_case(dim, n, flow).with_overrides(save_times=[T])
        fp, ours = solve_case_fipy(case), solve_case(case)
        np.testing.assert_allclose(fp.t, ours.t, rtol=0, atol=1e-12)
        h.append(case.grid.spacing[0])
        diff.append(C.l1(fp.rho[-1], ours.rho[-1], case.grid))
    p, _ = fit_power(h, diff)
    assert abs(p - 2.0) <= ORDER_TOL, (dim, flow, diff, p)
    assert diff[-1] > 1e3 * SWEEP_TOL


@functools.lru_cache(maxsize=None)
def _js_run() -> tuple:
    case = difference_case(1, 100).with_overrides(save_times=[0.05, 0.2])
    return case, solve_case_fipy(case)


def test_meta_mass_and_residuals():
    case, fp = _js_run()
    meta = fp.meta
    steps = case.save_steps[-1]
    assert meta["backend"] == "fipy" and meta["kind"] == "density"
    assert meta["flow"] == "js" and meta["scheme"] == "backward-euler" and meta["dt"] == case.dt
    assert meta["grid"] == case.grid.to_dict() and meta["case"] == case.raw
    assert meta["fipy_version"].split(".")[0].isdigit()
    assert meta["linear_solver"] == "scipy LinearLUSolver" and meta["linear_tolerance"] < SWEEP_TOL
    assert meta["sweep_tol"] == SWEEP_TOL and "DiffusionTerm" in meta["formulation"]
    assert len(meta["sweeps"]) == steps and all(s >= 1 for s in meta["sweeps"])
    assert len(meta["final_residuals"]) == steps and max(meta["final_residuals"]) <= SWEEP_TOL
    assert len(meta["mass"]) == steps + 1
    assert meta["min_rho"] > 0 and meta["wall_time"] > 0
    np.testing.assert_allclose(fp.rho_d, np.exp(case.discretised()[0].log_cells), rtol=1e-15)
    np.testing.assert_allclose(fp.axes[0], case.grid.centres[0], rtol=0, atol=1e-14)
    assert abs(meta["mass"][0] - 1.0) < 1e-12
    assert list(fp.t) == [0.0, 0.05, 0.2]


def test_mass_conserved_to_the_sweep_residual():
    """sum_i R_i = mass(rho^{n+1}) - mass(rho^n): each step's mass change is bounded by its
    residual, plus the round-off of two sums of N positive terms."""
    meta = _js_run()[1].meta
    m = np.array(meta["mass"])
    floor = 2 * np.prod(meta["grid"]["cells"]) * EPS
    assert np.all(np.abs(np.diff(m)) <= (np.array(meta["final_residuals"]) + floor) * m[0])
    assert meta["mass_error"] <= 1e-12


def test_target_is_an_exact_steady_state():
    case = difference_case(1, 60).with_overrides(save_times=[0.1])
    case = Case.from_dict({**case.raw, "initial": case.raw["target"]})
    fp = solve_case_fipy(case)
    np.testing.assert_allclose(fp.rho[-1], fp.rho_d, rtol=1e-13)


def test_bdf2_is_second_order_in_time():
    """Errors at dt and dt/2 against a dt/8 run (kl, wall problem, same grid): with e(dt) = K dt^p
    the ratio is r(p) = (1 - 8^-p) / (2^-p - 8^-p) (2.33 for p = 1, 4.2 for p = 2); the order
    recovered from it must be 1 +- 0.15 for backward Euler and 2 +- 0.15 for BDF2."""
    from scipy.optimize import brentq

    case, _ = PROBLEM["kl-wall"].build(40)
    for scheme, order in (("backward-euler", 1.0), ("bdf2", 2.0)):
        runs = [solve_case_fipy(dataclasses.replace(case, dt=dt), scheme=scheme).rho[-1]
                for dt in (0.01, 0.005, 0.00125)]
        e = [C.l1(r, runs[-1], case.grid) for r in runs[:2]]
        p = brentq(lambda q: (1 - 8.0 ** -q) / (2.0 ** -q - 8.0 ** -q) - e[0] / e[1], 0.05, 6.0)
        assert abs(p - order) <= 0.15, (scheme, e, p)


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
    assert main(["solve", str(case), "--backend", "fipy", "--scheme", "bdf2", "--cells", "40",
                 "--out", str(out), "--quiet"]) == 0
    res = Result.load(out, expect="density")
    assert res.meta["scheme"] == "bdf2" and res.rho.shape == (3, 40)


def test_unconverged_sweeps_raise_not_nan():
    case = difference_case(1, 60, "reverse-kl").with_overrides(save_times=[0.05])
    with pytest.raises(SolverError, match="did not converge"):
        solve_case_fipy(case, max_sweeps=2)


def test_bad_input_is_one_clear_error():
    case = difference_case(1, 60).with_overrides(save_times=[0.05])
    with pytest.raises(InputError, match="scheme"):
        solve_case_fipy(case, scheme="rk4")
    with pytest.raises(InputError, match="sweep_tol"):
        solve_case_fipy(case, sweep_tol=0.0)
    with pytest.raises(InputError, match="no beta'"):
        solve_case_fipy(dataclasses.replace(case, flow="mmd"))
    far = Case.from_dict({
        "domain": {"lower": [-60.0], "upper": [60.0], "cells": [100]},
        "target": {"kind": "gaussian", "mean": [0.0], "std": [1.0]},
        "initial": {"kind": "gaussian", "mean": [0.0], "std": [1.0]},
        "flow": {"kind": "js"}, "time": {"dt": 0.1, "save_times": [0.1]}})
    with pytest.raises(InputError, match="underflows"):
        solve_case_fipy(far)
