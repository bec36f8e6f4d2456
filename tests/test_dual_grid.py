"""The dual flows on the grid (MATH.md section 10): case table, discriminator update, guarantees,
the kappa -> inf limit and the observed orders.

d_t rho = -div(rho h'(f) grad f), d_t f = kappa (rho_d sigma(-f) - rho sigma(f)), by
fpsolver.dynamics.grid (upwind transport + backward Euler for f, cell by cell).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.dynamics import dual
from fpsolver.dynamics.grid import solve_case_dual
from fpsolver.errors import CaseError, InputError
from fpsolver.flows import get_flow
from fpsolver.fv import solve_case
from fpsolver.result import Result
from casefiles import to_toml

EPS = np.finfo(float).eps


def _raw(n=100, lower=-6.0, upper=6.0, target=(0.0, 1.0), initial=(0.3, 1.2), T=1.0, initial_logit="optimal",
         **disc):
    table = {"rate": 10.0, "initial": initial_logit}
    table.update(disc)
    return {"domain": {"lower": [lower], "upper": [upper], "cells": [n]},
            "target": {"kind": "gaussian", "mean": [target[0]], "std": [target[1]]},
            "initial": {"kind": "gaussian", "mean": [initial[0]], "std": [initial[1]]},
            "flow": {"kind": "js"}, "discriminator": table,
            "time": {"dt": T / 4, "save_times": [T], "scheme": "upwind"}}


def _coarsen(rho):
    return rho.reshape(-1, 2).mean(axis=1)


# ------------------------------------------------------------------ the case table

@pytest.mark.parametrize("change,key", [
    (lambda r: r["discriminator"].pop("rate"), "discriminator.rate"),
    (lambda r: r["discriminator"].update(rate=0.0), "discriminator.rate"),
    (lambda r: r["discriminator"].update(rate=float("inf")), "discriminator.rate"),
    (lambda r: r["discriminator"].update(metric="W2"), "discriminator.metric"),
    (lambda r: r["discriminator"].update(initial="random"), "discriminator.initial"),
    (lambda r: r["discriminator"].update(metric="kernel"), "discriminator.kernel"),
    (lambda r: r["discriminator"].update(metric="kernel", kernel={"kind": "gaussian"}), "discriminator.kernel.sigma"),
    (lambda r: r["discriminator"].update(metric="kernel", kernel={"kind": "laplace", "sigma": 1.0}),
     "discriminator.kernel.kind"),
    (lambda r: r["discriminator"].update(kernel={"kind": "gaussian", "sigma": 1.0}), "discriminator.kernel"),
    (lambda r: r["discriminator"].update(speed=1.0), "discriminator.speed"),
    (lambda r: r.update(discriminator=3.0), "discriminator"),
    (lambda r: r["flow"].update(kind="chi2"), "discriminator"),
    (lambda r: r["flow"].update(kind="reverse-kl"), "discriminator"),
    (lambda r: r["time"].update(scheme="backward-euler"), "time.scheme"),
])
def test_case_table_errors_name_the_key(change, key):
    raw = _raw()
    change(raw)
    with pytest.raises(CaseError, match="^" + key.replace(".", r"\.") + ":") as err:
        Case.from_dict(raw)
    assert "\n" not in str(err.value)


def test_mmd_flow_has_no_gan_form():
    raw = _raw()
    raw["flow"] = {"kind": "mmd", "kernel": {"kind": "gaussian", "sigma": 1.0}}
    with pytest.raises(CaseError, match="^discriminator: flow 'mmd' has no GAN form"):
        Case.from_dict(raw)


def test_table_defaults_and_absence():
    raw = _raw()
    raw["discriminator"] = {"rate": 3}
    case = Case.from_dict(raw)
    assert case.discriminator == dual_spec(3.0) and case.scheme == "upwind"
    del raw["discriminator"]
    raw["time"].pop("scheme")
    assert Case.from_dict(raw).discriminator is None


def dual_spec(rate, **kw):
    from fpsolver.dynamics.spec import DiscriminatorSpec
    return DiscriminatorSpec(rate, **kw)


# ------------------------------------------------------------------ the discriminator update

def _extreme_cells(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    f0 = rng.normal(size=n) * 30.0
    rho_d = 10.0 ** rng.uniform(-45, 1, n)
    rho = 10.0 ** rng.uniform(-45, 1, n)
    rho[:50] = 0.0                                   # an emptied cell
    f0[50:100], rho[50:100] = 60.0, 1e-43            # the offset start near a wall
    return f0, rho, rho_d


@pytest.mark.parametrize("h", [1e-4, 1.0, 1e3, 1e7])
def test_implicit_update_solves_backward_euler(h):
    """The Newton root (numba) and a 200-halving bisection of the same bracket agree to the root's
    condition number: g(x) = x - f0 - h G(x) is evaluated with an error eps (|x| + |f0| + h (rho_d
    sigma(-x) + rho sigma(x))) and has slope g' = 1 + h (rho_d + rho) sigma(x) sigma(-x), so the root
    is defined to that error / g'; the Newton iterate is x = f^n + e^y, formed with an error
    eps (|f^n| + |x|) (16 x: a few roundings each). Densities 1e-45 ... 10, logits to +-100."""
    f0, rho, rho_d = _extreme_cells()
    ours = dual.l2_implicit_update(f0, rho, rho_d, h, 1.0)
    ref = dual.l2_implicit_update_numpy(f0, rho, rho_d, h, 1.0)
    assert np.all(np.isfinite(ours))
    sp, sm = dual.expit(ref), dual.expit(-ref)
    cond = (np.abs(ref) + np.abs(f0) + h * (rho_d * sm + rho * sp)) / (1.0 + h * (rho_d + rho) * sp * sm)
    assert np.all(np.abs(ours - ref) <= 16 * EPS * (cond + np.abs(f0) + np.abs(ref)))
    # the root lies between f^n and the equilibrium log(rho_d / rho) (BE of a monotone decay)
    with np.errstate(divide="ignore"):
        eq = np.log(rho_d) - np.log(rho)
    tol = 64 * EPS * np.maximum(1.0, np.abs(ours))
    assert np.all((ours >= np.minimum(f0, eq) - tol) & (ours <= np.maximum(f0, eq) + tol))


def test_implicit_update_tends_to_the_optimal_logit():
    """kappa dt -> inf: f^{n+1} -> log(rho_d / rho) (the scheme is asymptotic preserving); the
    distance is |f^n - f*| / (1 + kappa dt a), a = sigma(f*) sigma(-f*) (rho_d + rho)."""
    f0 = np.array([0.0, 60.0, -5.0])
    rho, rho_d = np.array([0.3, 1e-43, 0.2]), np.array([0.1, 1e-17, 0.4])
    star = np.log(rho_d) - np.log(rho)
    for h in (1e8, 1e12):
        f1 = dual.l2_implicit_update(f0, rho, rho_d, h, 1.0)
        a = dual.expit(star) * dual.expit(-star) * (rho + rho_d)
        assert np.allclose(f1 - star, (f0 - star) / (1.0 + h * a), rtol=1e-6, atol=1e-13 * np.abs(star).max())


def test_gan_value_at_the_optimal_logit_is_twice_js_minus_log4():
    rng = np.random.default_rng(3)
    rho, rho_d = rng.random(50) + 1e-3, rng.random(50) + 1e-3
    vol = 0.1
    js = get_flow("js").energy(rho, rho_d, vol)
    val = dual.gan_value(np.log(rho_d / rho), rho, rho_d, vol)
    assert val == pytest.approx(2 * js - np.log(4) * np.sum(rho + rho_d) * vol / 2, abs=100 * EPS)
    # any other logit gives less (the optimal one maximises L pointwise)
    assert dual.gan_value(np.log(rho_d / rho) + 0.1 * rng.normal(size=50), rho, rho_d, vol) < val


# ------------------------------------------------------------------ guarantees of the grid solver

def test_offset_start_without_floors():
    """f(0) = log(rho_d / rho_0) on an offset start: f ~ 60 near a wall, rho_0 ~ 1e-43 there; the
    solve stays finite, rho >= 0, and the mass is exact to round-off (every flux leaves one cell
    and enters its neighbour: the sum changes by N eps at most)."""
    raw = _raw(n=200, target=(-2.0, 0.5), initial=(3.0, 0.5), lower=-6.0, upper=6.0, T=2.0, rate=100.0)
    res = solve_case_dual(Case.from_dict(raw))
    assert res.f[0].max() > 55.0 and res.rho[0].min() < 1e-40
    assert np.all(np.isfinite(res.f)) and res.rho.min() >= 0.0
    assert res.meta["mass_error"] <= 200 * EPS
    assert res.f.shape == res.rho.shape


def test_kappa_to_infinity_is_first_order_in_one_over_kappa():
    """Equal-variance Gaussians (log(rho_d / rho_0) linear, bounded, and both densities >= 0.02 on
    the box, so kappa a >> 1 everywhere from kappa ~ 100): the L1 distance at t = 1 to the
    optimal-discriminator solution of the same scheme and dt (kappa = inf) falls like 1/kappa
    (MATH.md section 10), slope -1 +- 0.15 over kappa = 100 ... 1e4."""
    case = Case.from_dict(_raw(n=100, lower=-3.0, upper=3.0, target=(0.0, 2.0), initial=(1.0, 2.0)))
    dt = 0.4 * 0.06 ** 2
    run = lambda k: solve_case_dual(case, spec=dataclasses.replace(case.discriminator, rate=k), dt_fixed=dt)  # noqa: E731
    ref = run(np.inf).rho[-1]
    kappas = [100.0, 300.0, 1000.0, 3000.0, 10000.0]
    err = [np.sum(np.abs(run(k).rho[-1] - ref)) * 0.06 for k in kappas]
    slope = np.polyfit(np.log(kappas), np.log(err), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.15)


def test_optimal_discriminator_limit_is_the_section2_flow():
    """kappa = inf through the same scheme is an upwind scheme for the js flow of section 2: its
    L1 distance to the Crandall-Liggett solution (backward Euler, dt = 1e-3) falls at first order
    in dx (upwind), 1 +- 0.1 between 50, 100 and 200 cells."""
    dist = []
    for n in (50, 100, 200):
        raw = _raw(n=n, lower=-3.0, upper=3.0, target=(0.0, 1.0), initial=(1.0, 0.8))
        case = Case.from_dict(raw)
        ours = solve_case_dual(case, spec=dataclasses.replace(case.discriminator, rate=np.inf))
        del raw["discriminator"]
        raw["time"] = {"dt": 1e-3, "save_times": [1.0]}
        cl = solve_case(Case.from_dict(raw))
        dist.append(np.sum(np.abs(ours.rho[-1] - cl.rho[-1])) * 6.0 / n)
    orders = np.log2(np.array(dist[:-1]) / dist[1:])
    assert np.all(np.abs(orders - 1.0) <= 0.1), orders


def test_observed_order_where_the_solution_is_smooth():
    """kappa = 10, dt = dx / 4 (time and space refined together): self-convergence in L1 at t = 1
    between 200 / 400 / 800 cells, the fine solution averaged onto the coarse cells. Splitting,
    Euler steps and upwind are all first order: 1 +- 0.1 on the finest pair. (The box [-6, 6]
    keeps the walls in the far tails: where the velocity at a wall points inward, the no-flux wall
    opens a vacuum layer, a discontinuity that lowers the L1 order there.)"""
    sols = []
    for n in (200, 400, 800):
        case = Case.from_dict(_raw(n=n))
        sols.append(solve_case_dual(case, dt_fixed=12.0 / n / 4).rho[-1])
    d = [np.sum(np.abs(_coarsen(b) - a)) * 12.0 / len(a) for a, b in zip(sols[:-1], sols[1:])]
    assert np.log2(d[0] / d[1]) == pytest.approx(1.0, abs=0.1)


# ------------------------------------------------------------------ result file and commands

def test_result_keeps_the_logit_and_old_files_still_load(tmp_path):
    res = solve_case_dual(Case.from_dict(_raw(n=40, T=0.2)))
    path = tmp_path / "r.npz"
    res.save(path)
    back = Result.load(path)
    assert np.array_equal(back.f, res.f) and back.f.shape == back.rho.shape
    plain = dataclasses.replace(res, f=None)
    plain.save(path)
    assert Result.load(path).f is None
    bad = dataclasses.replace(res, f=res.f[:, :-1])
    bad.save(path)
    with pytest.raises(InputError, match="'f' has shape"):
        Result.load(path)


def test_cli_solves_and_other_backends_refuse_in_one_line(tmp_path, capsys):
    case = tmp_path / "d.toml"
    case.write_text(to_toml(_raw(n=40, T=0.2)))
    out = tmp_path / "r.npz"
    assert main(["solve", str(case), "--out", str(out)]) == 0
    assert "GAN value" in capsys.readouterr().out
    assert main(["plot", str(out), "--out", str(tmp_path / "r.png")]) == 0
    assert main(["solve", str(case), "--out", str(out), "--backend", "fipy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dual flow" in err[0]
    # particles run the dual flow (fpsolver.dynamics.particles; tests/test_dual_particles.py)
    assert main(["particles", str(case), "--out", str(tmp_path / "p.npz"), "--n", "100", "--quiet"]) == 0


# ------------------------------------------------------------------ the discrete GAN

def test_discrete_gan_converges_to_the_dual_flow_at_first_order():
    """Alternating steps f += kappa eta G, then one upwind step eta of the generator, are a Lie
    splitting of the dual flow with Euler steps: self-convergence order 1 +- 0.1 in eta, and the
    distance to the dual-flow solver (backward Euler for f, dt = eta_min / 8) falls with eta."""
    from fpsolver.dynamics.discrete_gan import run_discrete_gan
    raw = _raw(n=100, target=(0.0, 1.0), initial=(1.0, 0.7), rate=10.0, initial_logit="zero")
    case = Case.from_dict(raw)
    etas = (0.02, 0.01, 0.005)
    sols = [run_discrete_gan(case, eta)[0] for eta in etas]
    d = [np.sum(np.abs(a - b)) * 0.12 for a, b in zip(sols[:-1], sols[1:])]
    assert np.log2(d[0] / d[1]) == pytest.approx(1.0, abs=0.1)
    ref = solve_case_dual(case, dt_fixed=etas[-1] / 8).rho[-1]
    dist = [np.sum(np.abs(s - ref)) for s in sols]
    assert dist[0] > dist[1] > dist[2]


def test_discrete_gan_refuses_a_step_that_breaks_positivity():
    from fpsolver.dynamics.discrete_gan import run_discrete_gan
    from fpsolver.errors import SolverError
    case = Case.from_dict(_raw(n=100, target=(-2.0, 0.5), initial=(3.0, 0.5), T=1.0))
    with pytest.raises(SolverError, match="positivity"):
        run_discrete_gan(case, 0.5)


@pytest.mark.parametrize("flow", __import__("fpsolver.dynamics.spec", fromlist=["x"]).gan_form_flows())
def test_every_gan_form_flow_reaches_its_optimal_discriminator_flow(flow):
    """For each preset with a GAN form (h'(f) from flow.log_dbeta(-f)), on the equal-variance case
    of the kappa test: mass exact, rho >= 0, and the distance to the kappa = inf run falls like
    1/kappa between kappa = 1e3 and 1e4 (local slope -1 +- 0.15, MATH.md section 10)."""
    raw = _raw(n=100, lower=-3.0, upper=3.0, target=(0.0, 2.0), initial=(1.0, 2.0))
    raw["flow"]["kind"] = flow
    case = Case.from_dict(raw)
    dt = 0.2 * 0.06 ** 2          # below dx^2 / (2 max h'): kl and non-saturating have h' up to 1
    run = lambda k: solve_case_dual(case, spec=dataclasses.replace(case.discriminator, rate=k), dt_fixed=dt)  # noqa: E731
    ref = run(np.inf)
    errs = []
    for k in (1e3, 1e4):
        res = run(k)
        assert res.meta["mass_error"] <= 200 * EPS and res.rho.min() >= 0.0
        errs.append(np.sum(np.abs(res.rho[-1] - ref.rho[-1])))
    assert np.log10(errs[1] / errs[0]) == pytest.approx(-1.0, abs=0.15)
