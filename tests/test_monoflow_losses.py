"""MonoFlow's minimax (logit shift C) and arcsinh losses (MATH.md section 7) as flows of every solver."""
from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np
import pytest
from scipy.integrate import quad

from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.errors import CaseError
from fpsolver.fipy_backend import solve_case_fipy
from fpsolver.flows import GAN_FORM_FLOWS, PRESETS, get_flow, minimax_flow
from fpsolver.fv import solve_case
from fpsolver.metrics import mc_floor_w1, w1_samples_density_1d
from fpsolver.particles.solver import solve_particles
from fpsolver.result import Result

EPS = np.finfo(float).eps
W = np.concatenate([np.linspace(-600.0, 600.0, 49), np.linspace(-3.0, 3.0, 25), [1e-9, -1e-9]])


def _minimax_beta_exact(w: float, c: float) -> Decimal:
    """e^C log(1 + e^{w - C}) in 700 digits (1 + e^{-600} must not round to 1)."""
    return Decimal(c).exp() * (1 + (Decimal(w) - Decimal(c)).exp()).ln()


@pytest.mark.parametrize("shift", [0.0, 5.0, -3.0])
def test_minimax_beta_log_space_to_round_off(shift):
    """log beta against 700-digit decimals (relative error of a few eps in beta), log p = log(u beta')
    exact, the inverse w(beta) back to w, beta' of the u-space form."""
    getcontext().prec = 700
    fl = get_flow("minimax", shift=shift)
    sign, lb = fl.beta_log(W)
    exact = np.array([float(_minimax_beta_exact(w, shift).ln()) for w in W])
    assert np.all(sign == 1.0)
    assert np.all(np.abs(lb - exact) <= 8 * EPS * np.maximum(1.0, np.abs(exact)))
    # log(u beta'(u)) = w - log(1 + e^{w - C})
    lp = np.array([float(Decimal(w) - (1 + (Decimal(w) - Decimal(shift)).exp()).ln()) for w in W])
    assert np.all(np.abs(fl.log_p(W) - lp) <= 8 * EPS * (1.0 + np.abs(W)))
    np.testing.assert_allclose(fl.w_of_beta(sign, lb), W, rtol=64 * EPS, atol=64 * EPS)
    u = np.geomspace(1e-3, 1e3, 13)
    np.testing.assert_allclose(fl.dbeta(u), np.exp(fl.log_dbeta(np.log(u))), rtol=8 * EPS)


def test_minimax_without_shift_is_twice_js():
    """MATH.md section 7: C = 0 gives h' = sigmoid, twice js's sigmoid/2 (beta, energy)."""
    fl, js = get_flow("minimax"), PRESETS["js"]
    assert fl is get_flow("minimax", shift=0.0) and fl.dbeta_at_one == 0.5
    np.testing.assert_allclose(fl.beta_log(W)[1], js.beta_log(W)[1] + np.log(2.0), rtol=4 * EPS, atol=4 * EPS)
    L = np.linspace(-50.0, 50.0, 41)
    np.testing.assert_allclose(fl.energy_log(L, 0 * L), 2 * js.energy_log(L, 0 * L), rtol=16 * EPS, atol=0)


def _f_by_quadrature(fl, u: float) -> float:
    """f(u) = int_1^u (u - z) beta'(z)/z dz = int_0^w expm1(w - r) e^{log p(r)} dr, QUADPACK at 1e-13."""
    w = np.log(u)
    return quad(lambda r: np.expm1(w - r) * np.exp(fl.log_p(np.array([r]))[0]), 0.0, w,
                epsabs=0.0, epsrel=1e-13, limit=400)[0]


@pytest.mark.parametrize("name,shift", [("minimax", 0.0), ("minimax", 5.0), ("arcsinh", None)])
def test_energy_against_quadrature_of_f_second_derivative(name, shift):
    """f'' = beta'/u with f(1) = f'(1) = 0, against QUADPACK (asked for 1e-13): the closed form
    (minimax) and the tabulated second quadrature (arcsinh) agree to 1e-13 from u = 1e-6 to 1e8,
    including 1 +- 1e-3 where the far forms cancel."""
    fl = get_flow(name, shift=shift)
    for u in [1e-6, 1e-2, 0.3, 0.999, 1.001, 1.7, 10.0, 1e4, 1e8]:
        assert fl.energy_density(np.array([u]))[0] == pytest.approx(_f_by_quadrature(fl, u), rel=1e-13)
    assert fl.energy_density(np.array([1.0]))[0] == 0.0


def test_arcsinh_beta_and_derivative():
    """beta'(u) = 1 / sqrt(1 + log^2 u); beta(e^w) = int_-inf^w e^s / sqrt(1 + s^2) ds (QUADPACK 1e-13);
    f'(e^w) = asinh(w) in closed form, seen as d f / d w = u asinh(w) by central differences."""
    fl = get_flow("arcsinh")
    u = np.geomspace(1e-4, 1e4, 9)
    np.testing.assert_allclose(fl.dbeta(u), 1.0 / np.sqrt(1.0 + np.log(u) ** 2), rtol=4 * EPS)
    for w in [-40.0, -2.0, 0.0, 0.5, 3.0, 40.0]:
        ref = quad(lambda s: np.exp(s) / np.sqrt(1.0 + s * s), -np.inf, w, epsabs=0.0, epsrel=1e-13, limit=400)[0]
        assert np.exp(fl.beta_log(np.array([w]))[1][0]) == pytest.approx(ref, rel=1e-13)
    w, h = np.array([-3.0, 2.0, 20.0]), 1e-5
    df = (fl.energy_density(np.exp(w + h)) - fl.energy_density(np.exp(w - h))) / (2 * h)
    np.testing.assert_allclose(df, np.exp(w) * np.arcsinh(w), rtol=1e-8)   # central difference: O(h^2)


def test_gan_form_flows_are_all_defined():
    assert GAN_FORM_FLOWS == ("js", "non-saturating", "minimax", "kl", "arcsinh")
    for name in GAN_FORM_FLOWS:
        assert get_flow(name).has_energy


def _case(kind, shift=None, cells=80, dt=0.05, save=(0.5, 1.0)):
    flow = {"kind": kind} if shift is None else {"kind": kind, "shift": shift}
    return Case.from_dict({"domain": {"lower": [-4.0], "upper": [4.0], "cells": [cells]},
                           "target": {"kind": "gaussian", "mean": [0.0], "std": [1.0]},
                           "initial": {"kind": "gaussian", "mean": [1.5], "std": [0.5]},
                           "flow": flow, "time": {"dt": dt, "save_times": list(save)}})


def test_case_file_shift_is_validated_and_reaches_the_flow():
    assert _case("minimax", 5.0).local_flow().name == "minimax(shift=5)"
    assert _case("minimax").local_flow() is get_flow("minimax")
    with pytest.raises(CaseError, match="flow.shift: only for kind"):
        _case("js", 1.0)
    with pytest.raises(CaseError, match="flow.shift: must be a number"):
        _case("minimax", "5")
    with pytest.raises(CaseError, match=r"flow.shift: must lie in \[-30, 30\]"):
        _case("minimax", 100.0)


def test_solve_with_shift_is_the_stepper_on_the_shifted_flow():
    """The case's shift reaches the grid solver: the result is the stepper on minimax_flow(5) bit for
    bit; and minimax with C = 0 at step dt is js at step 2 dt (the same nonlinear system)."""
    from fpsolver.fv import FVOperator, crandall_liggett
    case = _case("minimax", 5.0)
    res = solve_case(case)
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    w0 = (initial.log_cells - target.log_cells).reshape(op.log_rho_d.shape)
    st = crandall_liggett(op, minimax_flow(5.0), w0, case.dt, case.save_steps)
    np.testing.assert_array_equal(res.rho[-1], st.saved_rho[-1].reshape(case.grid.shape))
    a, b = solve_case(_case("minimax")), solve_case(_case("js", dt=0.1, save=(1.0, 2.0)))
    assert np.max(np.abs(a.rho[-1] - b.rho[-1])) <= 1e-13


@pytest.mark.parametrize("name,shift", [("minimax", 5.0), ("arcsinh", None)])
def test_fipy_agrees_with_fv_at_second_order(name, shift):
    """FiPy's beta'(u_f) (u_j - u_i) and ours beta(u_j) - beta(u_i) differ by O(h^2) (fipy_backend
    docstring), both with the same backward-Euler steps: the L1 gap falls by 4 per halving of h
    (observed order 2 +- 0.3)."""
    gaps = []
    for cells in (40, 80):
        case = _case(name, shift, cells=cells)
        a, b = solve_case(case), solve_case_fipy(case)
        gaps.append(float(np.sum(np.abs(a.rho[-1] - b.rho[-1])) * case.grid.cell_volume))
    assert abs(np.log2(gaps[0] / gaps[1]) - 2.0) <= 0.3, gaps


@pytest.mark.parametrize("name,shift", [("minimax", 5.0), ("arcsinh", None)])
def test_particles_follow_the_pde_of_the_flow(name, shift, tmp_path):
    """Interacting particles of the flow (CLI) against its grid solution: W1 within twice the i.i.d.
    Monte-Carlo floor of n samples (95 % over 20 seeds) plus the KDE bias (bandwidth^2 scale, ~0.01)."""
    case = _case(name, shift)
    pde = solve_case(case)
    res = solve_particles(case, n=4000, seed=1)
    x = res.positions[-1].reshape(-1)
    floor = mc_floor_w1(case.grid, pde.rho[-1], 4000)
    assert w1_samples_density_1d(x, case.grid, pde.rho[-1]) <= 2 * floor + 0.01


def test_cli_solve_minimax_with_shift(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[domain]\nlower = [-4.0]\nupper = [4.0]\ncells = [60]\n'
                    '[target]\nkind = "gaussian"\nmean = [0.0]\nstd = [1.0]\n'
                    '[initial]\nkind = "gaussian"\nmean = [1.5]\nstd = [0.5]\n'
                    '[flow]\nkind = "minimax"\nshift = 5\n[time]\ndt = 0.1\nsave_times = [0.5]\n')
    assert main(["solve", str(path), "--out", str(tmp_path / "r.npz")]) == 0
    res = Result.load(tmp_path / "r.npz")
    assert res.meta["case"]["flow"]["shift"] == 5.0 and res.meta["mass_error"] <= 1e-12


def _cauchy_flow():
    """A flow given by h' alone: h'(t) = 1 / (1 + t^2), beta'(u) = 1 / (1 + log^2 u)."""
    from fpsolver.monoflow import flow_from_hprime
    return flow_from_hprime(lambda t: 1.0 / (1.0 + np.square(t)),
                            log_hprime=lambda t: -np.log1p(np.square(np.asarray(t, float))), name="cauchy")


def test_hprime_flow_energy_to_round_off():
    """f'' = beta'/u by the second tabulated quadrature, against QUADPACK at 1e-13 (u = 1e-6 ... 1e8)."""
    fl = _cauchy_flow()
    for u in [1e-6, 1e-2, 0.5, 0.999, 1.001, 3.0, 1e4, 1e8]:
        assert fl.energy_density(np.array([u]))[0] == pytest.approx(_f_by_quadrature(fl, u), rel=1e-13)


def test_hprime_flow_in_every_solver(tmp_path):
    """Case.with_flow hands a Flow built from h' to the grid solver, FiPy, the particles and the GAN loop:
    the preset arcsinh and the same h' through with_flow agree to round-off (1e-12); FiPy and fv
    agree at O(h^2) (order 2 +- 0.3); particles and the GAN loop land on the PDE (W1 within twice the
    Monte-Carlo floor + the KDE bias ~0.01; GAN with eps = 0.05 within 5e-3, its Euler error, gan_order)."""
    from fpsolver.compare import compare
    from fpsolver.gan import run_gan
    from fpsolver.monoflow import flow_from_hprime
    h = flow_from_hprime(lambda t: 1.0 / np.sqrt(1.0 + np.square(t)),
                         log_hprime=lambda t: -0.5 * np.log1p(np.square(np.asarray(t, float))), name="arcsinh")
    a, b = solve_case(_case("arcsinh")), solve_case(_case("js").with_flow(h))
    # the preset evaluates beta near u = 1 by its own Gauss-Legendre rule: the same to round-off
    assert np.max(np.abs(a.rho - b.rho)) <= 1e-12
    fl = _cauchy_flow()
    gaps = []
    for cells in (40, 80):
        case = _case("js", cells=cells).with_flow(fl)
        gaps.append(float(np.sum(np.abs(solve_case(case).rho[-1] - solve_case_fipy(case).rho[-1])) * case.grid.cell_volume))
    assert abs(np.log2(gaps[0] / gaps[1]) - 2.0) <= 0.3, gaps
    case = _case("js").with_flow(fl)
    pde = solve_case(case.with_overrides(dt=0.01))
    assert pde.meta["flow"] == "python:cauchy" and case.with_overrides(dt=0.01).custom is fl
    part = solve_particles(case, n=4000, seed=1)
    floor = mc_floor_w1(case.grid, pde.rho[-1], 4000)
    assert w1_samples_density_1d(part.positions[-1].reshape(-1), case.grid, pde.rho[-1]) <= 2 * floor + 0.01
    gan = run_gan(case, epsilon=0.05, n=4000)
    assert gan.meta["flow_name"] == "cauchy" and compare(pde, gan)[-1]["w1"] <= 5e-3


def test_arcsinh_reaches_equilibrium_without_rejected_steps():
    """At equilibrium every cell has u ~ 1, a panel edge of the tabulated beta; the preset's smooth rule
    there lets Newton reach its mass residual: to t = 100 (JS ~ 1e-30) no step is rejected."""
    from fpsolver.studies.gan_losses import _losses_case
    res = solve_case(_losses_case("arcsinh", None, [50.0, 100.0], 120))
    assert res.meta["rejected_steps"] == 0 and res.meta["mass_error"] <= 1e-12
    fl = get_flow("arcsinh")
    w = np.array([-0.4, -1e-9, 0.0, 1e-12, 0.3])
    s, lb = fl.beta_log(w)
    np.testing.assert_allclose(fl.w_of_beta(s, lb), w, rtol=0, atol=1e-15)
