"""Finite-volume solver internals: Numba kernels against their references, step rejection and
failure, custom flows. (Scheme properties: test_fv_properties.py; orders: test_fv_orders.py.)"""
from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from fpsolver import cli
from fpsolver.case import Case
from fpsolver.densities import GaussianMixture, discretise
from fpsolver.errors import SolverError
from fpsolver.flows import PRESETS, custom_flow, get_flow
from fpsolver.fv import FVOperator, NewtonFailure, backward_euler_step, crandall_liggett, solve_case
from fpsolver.fv import stepper as stepper_module
from fpsolver.fv.newton import Rhs, _System
from fpsolver.fv.operators import (bicgstab_kernel, coupling, newton_matrix_scipy, residual_numpy,
                                   tridiagonal_kernel)
from fpsolver.grid import Grid

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
EPS = np.finfo(float).eps


def _bimodal() -> Case:
    return Case.from_toml(os.path.join(EXAMPLES, "bimodal_1d.toml"))


def _operator(dim: int, n: int) -> FVOperator:
    grid = Grid((-4.0,) * dim, (4.0,) * dim, (n,) * dim)
    if dim == 1:
        target = GaussianMixture([0.5, 0.5], [[-1.5], [1.5]], [[[0.25]], [[0.36]]])
    else:
        target = GaussianMixture([0.5, 0.5], [[-1.5, 0.0], [1.5, 0.5]],
                                 [[[0.25, 0.0], [0.0, 0.25]], [[0.3, 0.1], [0.1, 0.4]]])
    return FVOperator.build(grid, discretise(target, grid))


def _random_state(op, rng, spread=1.5):
    w = rng.normal(0.0, spread, op.shape)
    rhs = Rhs(np.exp(rng.normal(0.0, 0.3, op.shape)), op.log_rho_d + rng.normal(0.0, spread, op.shape))
    return w, rhs


def _scaled_residual(op, fl, w, rhs, h, plain):
    sys_ = _System(op, fl, rhs, h, plain)
    sb, lb = sys_.terms(w)
    lp, lj, lc, ls = sys_.scale(w, lb)
    return sys_.residual(w, ls, sb, lb), ls


# ---------------------------------------------------------------- Numba kernels vs references

@pytest.mark.parametrize("flow", sorted(PRESETS))
@pytest.mark.parametrize("dim,n", [(1, 200), (2, 40)])
def test_residual_kernel_matches_numpy_and_the_mass_form(dim, n, flow):
    """R / S by the kernel and by numpy agree to round-off of the row's terms; where everything is
    representable, S * (R / S) is the plain mass residual V (rho - b) - h sum_f T rho_d,f (beta_j - beta_i)."""
    op = _operator(dim, n)
    fl = get_flow(flow)
    rng = np.random.default_rng(1)
    for h in (1e-3, 0.1, 10.0):
        w, rhs = _random_state(op, rng)
        (r, mres, msc, _), ls = _scaled_residual(op, fl, w, rhs, h, False)
        (r2, mres2, msc2, _), _ = _scaled_residual(op, fl, w, rhs, h, True)
        sb, lb = fl.beta_log(w)
        _, sc = residual_numpy(op, w, sb, lb, ls, rhs.mant, rhs.log, h)
        # the kernel multiplies e^{l_f} beta_j e^{-log S_i} where the numpy reference takes the exponential
        # of the sum: each term's logarithm carries eps times its size, exp turns that into relative error
        cond = 1 + np.max(np.abs(op.log_rho_d)) + np.max(np.abs(lb[np.isfinite(lb)])) + np.abs(ls)
        assert np.all(np.abs(r - r2) <= 8 * EPS * cond * sc)
        assert mres == pytest.approx(mres2, rel=1e-12) and msc == pytest.approx(msc2, rel=1e-12)
        plain = _plain_mass_residual(op, fl, w, rhs.mant * np.exp(rhs.log), h)
        np.testing.assert_allclose(r * np.exp(ls), plain, rtol=0, atol=64 * EPS * msc)


def _plain_mass_residual(op, fl, w, b, h):
    """The definition in mass units, face by face, from rho_d and beta(u) formed directly."""
    rho_d = np.exp(op.log_rho_d)
    bu = fl.beta(np.exp(w))
    r = op.volume * (rho_d * np.exp(w) - b)
    faces = [(op.tx * np.exp(op.lfx), np.s_[:-1], np.s_[1:])]
    if op.lfy.size:
        faces.append((op.ty * np.exp(op.lfy), np.s_[:, :-1], np.s_[:, 1:]))
    for coef, lo, hi in faces:
        flux = h * coef * (bu[hi] - bu[lo])
        r[lo] -= flux
        r[hi] += flux
    return r


def _newton_matrix(op, flow, w, rhs, h):
    sys_ = _System(op, get_flow(flow), rhs, h, False)
    lp, lj, lc, ls = sys_.scale(w, sys_.terms(w)[1])
    return newton_matrix_scipy(*coupling(op, lp, lj, ls, h)), coupling(op, lp, lj, ls, h)


@pytest.mark.parametrize("n", [5, 200])
@pytest.mark.parametrize("flow", ["js", "kl", "reverse-kl"])
def test_tridiagonal_solve_matches_scipy_spsolve(n, flow):
    op = _operator(1, n)
    rng = np.random.default_rng(2)
    for h in (1e-3, 1.0, 100.0):
        w, rhs = _random_state(op, rng)
        a, cs = _newton_matrix(op, flow, w, rhs, h)
        b = rng.normal(size=n)
        ref = spla.spsolve(a.tocsc(), b)
        x = np.empty(n)
        tridiagonal_kernel(np.ascontiguousarray(cs[0][:, 0]), np.ascontiguousarray(cs[1][:, 0]), b, x)
        # both backward stable on the same system: agree to ~ cond * eps
        assert np.linalg.norm(x - ref) <= 10 * np.linalg.cond(a.toarray()) * EPS * np.linalg.norm(ref)


@pytest.mark.parametrize("dim,n", [(2, 24), (1, 300)])
def test_bicgstab_matches_scipy_spsolve(dim, n):
    op = _operator(dim, n)
    rng = np.random.default_rng(3)
    rtol = 1e-12
    for h in (1e-3, 1.0):
        w, rhs = _random_state(op, rng, spread=0.5)
        a, cs = _newton_matrix(op, "js", w, rhs, h)
        b = rng.normal(size=op.shape)
        ref = spla.spsolve(a.tocsc(), b.ravel()).reshape(op.shape)
        x = np.zeros(op.shape)
        k = bicgstab_kernel(*cs, b, x, rtol, 5000)
        assert k > 0
        # its own stopping test, re-checked with the assembled matrix
        res = np.linalg.norm(a @ x.ravel() - b.ravel())
        assert res <= 1.01 * rtol * np.linalg.norm(b) + 1e3 * EPS * np.linalg.norm(b)
        # ||x - x*|| <= cond ||r|| / ||b|| ||x*||
        cond = np.linalg.cond(a.toarray())
        assert np.linalg.norm(x - ref) <= 2 * cond * (rtol + 1e3 * EPS) * np.linalg.norm(ref)


def test_bicgstab_reports_non_convergence():
    op = _operator(2, 32)
    w, rhs = _random_state(op, np.random.default_rng(4))
    _, cs = _newton_matrix(op, "js", w, rhs, 1.0)
    x = np.zeros(op.shape)
    b = np.random.default_rng(4).normal(size=op.shape)
    assert bicgstab_kernel(*cs, b, x, 1e-14, 2) == -1


@pytest.mark.parametrize("flow", sorted(PRESETS))
def test_newton_with_kernels_matches_the_plain_reference(flow):
    """linear="auto" (tridiagonal / BiCGStab, Numba residuals) and "spsolve" (assembled matrix, numpy)
    solve the same equations: both converge to round-off, so the answers agree to ~1e-12."""
    for dim, n in ((1, 200), (2, 32)):
        op = _operator(dim, n)
        rng = np.random.default_rng(5)
        w0 = rng.normal(0.0, 0.5, op.shape)
        b = op.rho(w0)
        fl = get_flow(flow)
        w1, s1 = backward_euler_step(op, fl, w0, b, 0.05)
        w2, s2 = backward_euler_step(op, fl, w0, b, 0.05, linear="spsolve")
        rho1, rho2 = op.rho(w1), op.rho(w2)
        assert np.sum(np.abs(rho1 - rho2)) * op.volume <= 1e-12
        assert s1.iterations >= 1 and s2.iterations >= 1


@pytest.mark.parametrize("linear", ["auto", "spsolve"])
def test_a_wrong_guess_in_a_far_tail_cell_is_not_accepted(linear):
    """b = rho_d (answer w = 0) on [-9, 9]^2 with rho_d = N(0, I): rho_d ~ 1e-36 in the
    corner. A guess with w = 60 there puts mass ~1e-9 into that cell; the step must remove it
    (mass of the answer = mass of b), whatever the residual scale of the guess."""
    grid = Grid((-9.0, -9.0), (9.0, 9.0), (40, 40))
    op = FVOperator.build(grid, discretise(GaussianMixture([1.0], [[0.0, 0.0]], [np.eye(2)]), grid))
    w0 = np.zeros(op.shape)
    w0[0, 0] = 60.0
    w, _ = backward_euler_step(op, get_flow("kl"), w0, np.exp(op.log_rho_d), 0.1, linear=linear)
    assert abs(op.mass(w) - op.mass(np.zeros(op.shape))) <= 1e-12


# ---------------------------------------------------------------- rejection and failure

def _fail_above(h_max):
    def step(op, flow, w0, rhs, h, **kw):
        if h > h_max:
            raise NewtonFailure("forced failure for the test")
        return backward_euler_step(op, flow, w0, rhs, h, **kw)
    return step


def test_failed_steps_are_rejected_and_halved(monkeypatch):
    """Each dt step fails, each dt/2 half fails, the dt/4 quarters succeed: 3 rejections per step,
    and the run equals one with dt/4 throughout (the same resolvents)."""
    case = _bimodal().with_overrides(save_times=[0.1, 0.2])
    ref = solve_case(case.with_overrides(dt=case.dt / 4))
    monkeypatch.setattr(stepper_module, "backward_euler_step", _fail_above(case.dt / 3))
    res = solve_case(case)
    assert res.meta["rejected_steps"] == 3 * 20
    assert ref.meta["rejected_steps"] == 0
    np.testing.assert_allclose(res.rho, ref.rho, rtol=1e-12, atol=1e-14)
    assert res.meta["mass_error"] <= 1e-11


def test_bdf2_step_that_fails_restarts_with_backward_euler(monkeypatch):
    """Make every BDF2 resolvent (h = 2dt/3) fail: each BDF2 step is rejected and done by
    backward Euler, and the step after it restarts with backward Euler too, so steps 2, 4, ...
    are rejected (5 of 10) and the run is plain backward Euler."""
    case = _bimodal().with_overrides(save_times=[0.1])
    dt = case.dt

    def no_bdf2(op, flow, w0, rhs, h, **kw):
        if abs(h - 2 * dt / 3) < 1e-12:
            raise NewtonFailure("forced BDF2 failure for the test")
        return backward_euler_step(op, flow, w0, rhs, h, **kw)

    ref = solve_case(case, scheme="backward-euler")
    monkeypatch.setattr(stepper_module, "backward_euler_step", no_bdf2)
    res = solve_case(case, scheme="bdf2")
    assert res.meta["rejected_steps"] == 5 and res.meta["scheme"] == "bdf2"
    np.testing.assert_allclose(res.rho, ref.rho, rtol=1e-12, atol=1e-14)


def test_run_that_cannot_succeed_raises_solver_error(monkeypatch):
    monkeypatch.setattr(stepper_module, "backward_euler_step", _fail_above(0.0))
    with pytest.raises(SolverError, match=r"Newton failed at t = 0 even with step .* \(10 halvings\)"):
        solve_case(_bimodal())


def test_cli_reports_a_failed_solve_in_one_line_and_writes_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(stepper_module, "backward_euler_step", _fail_above(0.0))
    out = tmp_path / "r.npz"
    code = cli.main(["solve", os.path.join(EXAMPLES, "bimodal_1d.toml"), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and not out.exists()
    assert len(err) == 1 and err[0].startswith("fpsolver: error: Newton failed at t = 0")


def test_nan_from_a_flow_is_a_failure_not_a_result():
    """A flow whose beta is NaN above u = 2 cannot be stepped from data with u > 2 anywhere:
    Newton sees a non-finite residual, every halving fails, and the run raises."""
    fl = custom_flow(lambda u: np.where(u < 2.0, np.log(u), np.nan), lambda u: 1.0 / u, name="broken")
    op = _operator(1, 50)
    w0 = np.full(op.shape, np.log(3.0)) - np.log(3.0) * (np.arange(50) > 10)[:, None]
    with pytest.raises(SolverError, match="non-finite residual"):
        crandall_liggett(op, fl, w0, 0.01, [2])


# ---------------------------------------------------------------- custom flows

_JS = ("js", lambda u: 0.5 * np.log1p(u), lambda u: 0.5 / (1.0 + u))
_KL = ("kl", lambda u: u, lambda u: np.ones_like(u))
_CHI2 = ("chi2", lambda u: u * u, lambda u: 2.0 * u)


@pytest.mark.parametrize("name,beta,dbeta,dim", [_JS + (1,), _KL + (1,), _CHI2 + (1,), _JS + (2,), _KL + (2,)])
def test_custom_flow_gives_the_preset_answer(name, beta, dbeta, dim):
    case = _bimodal() if dim == 1 else Case.from_toml(os.path.join(EXAMPLES, "two_mode_2d.toml")).with_overrides(
        cells=[24, 24])
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    w0 = (initial.log_cells - target.log_cells).reshape(op.shape)
    fl = custom_flow(beta, dbeta, name="mine", energy_density=PRESETS[name].energy_density)
    a = crandall_liggett(op, name, w0, 0.02, [5, 10])
    b = crandall_liggett(op, fl, w0, 0.02, [5, 10])
    for ra, rb in zip(a.saved_rho, b.saved_rho):
        assert np.sum(np.abs(ra - rb)) * op.volume <= 1e-13
    # the same F by two formulas (the preset's in log space, the user's f(u) at u = rho/rho_d): they
    # agree to the summation round-off n eps sum |K| rho_d (f(u) + u^2 + 1), a bound on every term's size
    bound = [op.volume * op.shape[0] * op.shape[1] * EPS * float(np.sum(
        np.exp(op.log_rho_d) * (1.0 + np.exp(2 * (np.log(r) - op.log_rho_d))))) for r in a.saved_rho]
    assert np.all(np.abs(np.array(a.energy)[[0, 5, 10]] - np.array(b.energy)[[0, 5, 10]]) <= bound)
    np.testing.assert_allclose(a.energy, b.energy, rtol=max(bound) / min(a.energy), atol=0)
    # the user's flow inverts beta by bisection and the preset in closed form: round-off may cost
    # an iteration, never a rejected step
    assert len(a.newton_iterations) == len(b.newton_iterations) == 10


def test_custom_flow_without_energy_reports_none():
    op = _operator(1, 40)
    fl = custom_flow(lambda u: u, lambda u: np.ones_like(u))
    st = crandall_liggett(op, fl, np.zeros(op.shape), 0.1, [3])
    assert st.energy == [] and len(st.mass) == 4


def _update_numpy(flow, sb, lb, y, log_c, log_e, log_alpha, w):
    """The Newton update of fpsolver.fv.newton._update written in numpy (its definition)."""
    from fpsolver.flows import softplus
    from fpsolver.fv.newton import MAX_DW
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_y = log_alpha + np.log(np.abs(y))
        log_ds = log_y + log_c
        top = np.maximum(lb, log_ds)
        top = np.where(np.isfinite(top), top, 0.0)
        val = sb * np.exp(lb - top) + np.sign(y) * np.exp(log_ds - top)
        sign = np.sign(val)
        w_s = flow.w_of_beta(sign, top + np.log(np.abs(val)))
        if flow.beta_positive:
            w_s = np.where(sign > 0, w_s, -np.inf)
        w_s = np.where(np.isnan(w_s), w, np.maximum(w_s, w - MAX_DW))
        w_u = w + softplus(log_y + log_e)
    return np.where(y > 0, np.maximum(w_s, w_u), np.where(y < 0, w_s, w))


@pytest.mark.parametrize("flow", sorted(PRESETS))
def test_compiled_update_is_the_numpy_formula(flow):
    """The Numba update agrees with its numpy definition to 4 ulp of max(1, |w|) times the
    condition number (|beta| + |alpha ds|) / |beta + alpha ds| of the sum taken in s (the C
    library's exp and log against numpy's vectorised ones, an ulp each, amplified where the step
    nearly cancels beta), and exactly in its special values: y = 0 keeps w, decreases clipped to
    w - MAX_DW (also where a positive beta's range is left), NaN where log e is NaN."""
    from fpsolver.fv.newton import _update
    fl = get_flow(flow)
    rng = np.random.default_rng(5)
    for _ in range(10):
        w = np.clip(rng.normal(0.0, 3.0, (300, 1)) * rng.choice([1.0, 100.0], (300, 1)), -2000.0, 2000.0)
        sb, lb = fl.beta_log(w)
        y = rng.normal(0.0, 1.0, w.shape) * rng.choice([0.0, 1.0, 1e-8, 1e3], w.shape)
        lc, le = rng.normal(0.0, 3.0, w.shape), rng.normal(0.0, 3.0, w.shape)
        le[::37] = np.nan             # log e = lc - lp of cells where both are -inf
        alpha = float(rng.choice([1.0, 0.5, 2.0 ** -30]))
        with np.errstate(all="ignore"):
            ours = _update(fl, sb, lb, y, lc, le, np.log(alpha), w)
        ref = _update_numpy(fl, sb, lb, y, lc, le, np.log(alpha), w)
        special = ~np.isfinite(ref) | (y == 0)
        assert np.any(np.isnan(ref))      # the NaN cells are exercised
        np.testing.assert_array_equal(ours[special], ref[special])
        with np.errstate(all="ignore"):
            log_ds = np.log(alpha) + np.log(np.abs(y)) + lc
            top = np.maximum(lb, log_ds)
            t1, t2 = sb * np.exp(lb - top), np.sign(y) * np.exp(log_ds - top)
            cond = (np.abs(t1) + np.abs(t2)) / np.abs(t1 + t2)
        tol = 4 * EPS * np.maximum(1.0, np.abs(ref)) * cond
        assert np.all(np.abs(ours - ref)[~special] <= tol[~special])


def test_softplus_and_logaddexp_are_numpys_to_a_few_ulp_with_its_special_values():
    """The vectorised forms agree with np.logaddexp to 4 ulp of the two terms of max(a, b) +
    log1p(e^{-|a - b|}) (exp and log1p of numpy's SIMD loops against the C library's; the sum
    cancels where it is near zero), and exactly at +-inf and NaN."""
    from fpsolver.flows.local import logaddexp, softplus
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.normal(0.0, 30.0, 100_000), [np.inf, -np.inf, np.nan, 0.0, 800.0, -800.0]])
    y = np.concatenate([rng.normal(0.0, 30.0, 100_000), [np.inf, -np.inf, 1.0, np.nan, -np.inf, -np.inf]])
    with np.errstate(invalid="ignore"):
        cases = ((softplus(x), np.logaddexp(0.0, x), np.maximum(x, 0.0)),
                 (logaddexp(x, y), np.logaddexp(x, y), np.maximum(x, y)))
        for ours, ref, top in cases:
            finite = np.isfinite(ref)
            np.testing.assert_array_equal(ours[~finite], ref[~finite])
            size = np.abs(top) + np.abs(ref - top)
            assert np.all(np.abs(ours - ref)[finite] <= 4 * EPS * size[finite])
    assert logaddexp(-np.inf, -np.inf) == -np.inf and logaddexp(np.inf, np.inf) == np.inf


@pytest.mark.parametrize("dim,n", [(1, 200), (2, 40)])
def test_scale_kernel_is_the_numpy_formula(dim, n):
    """log J = logaddexp(log V + l + w, log h + log p + log K), log c = min(log M + log p - w - l,
    max(0, log|beta|)), log S = log J + log c - log p: the compiled rows agree with numpy to 4 ulp
    of the terms' size (libm exp/log1p against numpy's), and give NaN where numpy does."""
    op = _operator(dim, n)
    rng = np.random.default_rng(7)
    fl = get_flow("js")
    for h in (1e-3, 10.0):
        w, rhs = _random_state(op, rng)
        sys_ = _System(op, fl, rhs, h, False)
        lb = fl.beta_log(w)[1]
        lb[0, 0] = np.nan
        lp, lj, lc, ls = sys_.scale(w, lb)
        a = np.log(op.volume) + op.log_rho_d + w
        b = np.log(h) + lp + op.log_k
        lj_ref = np.logaddexp(a, b)
        lc_ref = np.minimum(sys_.log_mref + lp - w - op.log_rho_d, np.maximum(0.0, lb))
        size = 1.0 + np.abs(a) + np.abs(b)
        assert np.all(np.abs(lj - lj_ref) <= 4 * EPS * size)
        np.testing.assert_array_equal(np.isnan(lc), np.isnan(lc_ref))
        np.testing.assert_array_equal(lc[~np.isnan(lc)], lc_ref[~np.isnan(lc_ref)])
        assert np.isnan(ls[0, 0]) and np.all(np.isfinite(ls.ravel()[1:]))


@pytest.mark.parametrize("flow", ["js", "kl", "reverse-kl"])
def test_fused_tridiagonal_solve_matches_scipy_spsolve(flow):
    """The 1D Newton solve (couplings formed inside the tridiagonal elimination) against scipy's
    LU of the assembled matrix I - C: both backward stable, so they agree to ~ cond * eps."""
    from fpsolver.fv.operators import tridiagonal_newton
    op = _operator(1, 200)
    rng = np.random.default_rng(8)
    for h in (1e-3, 1.0, 100.0):
        w, rhs = _random_state(op, rng)
        sys_ = _System(op, get_flow(flow), rhs, h, False)
        lp, lj, lc, ls = sys_.scale(w, sys_.terms(w)[1])
        a = newton_matrix_scipy(*coupling(op, lp, lj, ls, h))
        b = rng.normal(size=op.shape)
        ref = spla.spsolve(a.tocsc(), b.ravel())
        x = np.zeros(op.shape)
        tridiagonal_newton(lp, lj, ls, op.lfx, float(np.log(h * op.tx)), b, x)
        assert np.linalg.norm(x.ravel() - ref) <= 10 * np.linalg.cond(a.toarray()) * EPS * np.linalg.norm(ref)
