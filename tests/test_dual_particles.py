"""The dual flows with particles (MATH.md §10; fpsolver.dynamics.particles) against the grid solver.

References: the exact kernel sum against a numpy double sum (round-off); f and v at the particles
against the numpy interpolations the grid and superposition particles use (round-off); the grid
solver (fpsolver.dynamics.grid, fine cells, its error ~1e-3 in W1, below the Monte-Carlo error
here) for the laws; the interacting-particle solver for kappa -> inf.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

from fpsolver import metrics
from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.dynamics import dual
from fpsolver.dynamics.grid import solve_case_dual
from fpsolver.dynamics.particles import (kernel_sum_at_centres, kernel_sum_numpy, logit_at,
                                         solve_dual_particles, velocity_at)
from fpsolver.errors import InputError
from fpsolver.flows import get_flow
from fpsolver.fv.transport import cfl_rate, flux_divergence
from fpsolver.grid import Grid
from fpsolver.kde import gaussian_smooth_reflect
from fpsolver.particles import kernels, solve_particles
from fpsolver.result import Result

SAVE = (0.5, 1.0)


def _raw(dim=1, cells=200, metric="kernel", kappa=10.0, dt=0.005, initial="zero"):
    """rho_d = N(0, I), rho_0 = N((1.5, 0.5), 0.6^2 I) on [-5, 5]^d, js generator, f(0) = 0."""
    raw = {"domain": {"lower": [-5.0] * dim, "upper": [5.0] * dim, "cells": [cells] * dim},
           "target": {"kind": "gaussian", "mean": [0.0] * dim, "std": [1.0] * dim},
           "initial": {"kind": "gaussian", "mean": [1.5] + [0.5] * (dim - 1), "std": [0.6] * dim},
           "flow": {"kind": "js"},
           "discriminator": {"rate": kappa, "metric": metric, "initial": initial},
           "time": {"dt": dt, "save_times": list(SAVE), "scheme": "upwind"}}
    if metric == "kernel":
        raw["discriminator"]["kernel"] = {"kind": "gaussian", "sigma": 1.0}
    return raw


def _case(**kw) -> Case:
    return Case.from_dict(_raw(**kw), source="test")


# ------------------------------------------------------------------ the pieces, to round-off

@pytest.mark.parametrize("dim", [1, 2])
def test_kernel_sum_is_the_double_sum(dim):
    """(1/N) sum_i k(x_j - X_i) w_i: a 1-ulp exponential and N ordered additions of positive terms,
    so the relative error is below N eps of the sum (N = 700: 1.6e-13; we allow 1e-12)."""
    grid = Grid([-3.0] * dim, [2.0] * dim, (37,) * dim)
    rng = np.random.default_rng(1)
    x = rng.uniform(-3.0, 2.0, size=(700, dim))
    w = rng.uniform(0.0, 1.0, size=700)
    got, ref = kernel_sum_at_centres(x, w, grid, 0.7), kernel_sum_numpy(x, w, grid, 0.7)
    assert got.shape == grid.shape
    assert np.max(np.abs(got - ref) / ref) <= 1e-12


@pytest.mark.parametrize("dim", [1, 2])
def test_logit_and_velocity_at_particles(dim):
    """f at the particles is the clamped linear interpolation of the cell values, v the grid
    solver's face velocities read by staggered interpolation: both equal the numpy references to the
    rounding of the cell coordinate ((x - lo) / h there, (x - lo) (1 / h) here: ~n eps in s, times
    a cell-to-cell jump of f <= 8: below 1e-13)."""
    grid = Grid([-2.0] * dim, [3.0] * dim, (23, 17)[:dim])
    rng = np.random.default_rng(2)
    x = np.ascontiguousarray(rng.uniform(-2.0, 3.0, size=(500, dim)))
    f = rng.normal(size=grid.shape)
    np.testing.assert_allclose(logit_at(x, f, grid), kernels.interp_cells_numpy(x, f, grid.lower, grid.spacing),
                               rtol=0, atol=1e-13)
    flow = get_flow("js")
    faces = [np.pad(v, [(1, 1) if a == b else (0, 0) for b in range(dim)])
             for a, v in enumerate(dual.face_velocities(f, flow, grid.spacing))]
    got = velocity_at(x, f, flow, grid, np.empty_like(x))
    np.testing.assert_allclose(got, kernels.interp_faces_numpy(x, faces, grid.lower, grid.spacing), rtol=0, atol=1e-13)


# ------------------------------------------------------------------ kernel metric: grid vs particles

@pytest.fixture(scope="module")
def kernel_reference():
    """The grid solution on 2000 cells: W1 to 4000 cells and to dt / 4 is ~1e-3 (measured), a tenth
    of the Monte-Carlo floor at N = 10^4."""
    return solve_case_dual(_case(cells=2000))


def test_kernel_metric_particles_at_the_monte_carlo_floor(kernel_reference):
    """Mean W1 over 6 seeds between the particles and the grid density at each save time is at most
    the i.i.d. floor (95th percentile of W1 for N exact samples), and falls like N^{-1/2}.

    Why the floor itself (multiple 1): were the particles moved by the exact mean-field flow map,
    X_i(T) would be N i.i.d. samples of rho_T and W1 would be distributed as in the floor, its mean
    about 0.75 of the 95th percentile. The remaining parts are the interaction (f from the empirical
    measure: a kernel-smoothed N^{-1/2} fluctuation, which like MMD particles' evens the cloud out;
    measured 0.46-0.72 of the floor) and discretisation (dt = 0.005, central differences on 200 cells:
    ~5e-4 in W1, 4 % of the floor at N = 10^4). A wrong velocity or logit is an O(1) error and
    breaks it. The slope: W1 is a Monte-Carlo error, -1/2; its standard error over 6 seeds is
    ~0.07, so the tolerance 0.2 is three of them.
    """
    ref = kernel_reference
    case = _case(cells=200)
    ns, means = (1000, 3000, 10000), []
    for n in ns:
        w = np.array([[metrics.w1_samples_density_1d(r.positions[k], ref.grid, ref.rho[k]) for k in (1, 2)]
                      for r in (solve_dual_particles(case, n=n, seed=s) for s in range(6))])
        floor = [metrics.mc_floor_w1(ref.grid, ref.rho[k], n, seeds=20) for k in (1, 2)]
        assert np.all(w.mean(axis=0) <= floor), (n, w.mean(axis=0), floor)
        means.append(w.mean(axis=0)[-1])
    slope = np.polyfit(np.log(ns), np.log(means), 1)[0]
    assert abs(slope + 0.5) <= 0.2, (slope, means)


# ------------------------------------------------------------------ L2 metric: KDE

def _smoothed_grid_flow(case: Case, bandwidth: float) -> np.ndarray:
    """The mean-field limit of the KDE particles: the grid scheme with rho replaced by phi_b * rho
    (reflected) in the discriminator's equation, on the reference's grid and its steps' rules."""
    grid, flow, spec = case.grid, get_flow(case.flow), case.discriminator
    target, initial = case.discretised()
    rho_d, rho = np.exp(target.log_cells), np.exp(initial.log_cells)
    f, t, out = np.zeros(grid.shape), 0.0, [rho.copy()]
    for ts in case.save_times:
        while t < ts:
            smooth = np.maximum(gaussian_smooth_reflect(rho, grid, bandwidth), 0.0)
            lim = dual.step_limit(f, smooth, rho_d, flow, spec.rate, grid.spacing)
            rate = cfl_rate(dual.face_velocities(f, flow, grid.spacing), grid, 1)
            dt = min(case.dt, ts - t, 0.9 * lim, 0.9 / rate if rate > 0 else np.inf)
            f = dual.l2_implicit_update(f, smooth, rho_d, dt, spec.rate)
            rho = rho + dt * flux_divergence(rho, dual.face_velocities(f, flow, grid.spacing), grid, 1)
            t = ts if dt >= (ts - t) * (1 - 1e-12) else t + dt
        out.append(rho.copy())
    return np.stack(out)


def test_l2_metric_within_kde_bias_and_floor():
    """W1(particles, grid) <= W1(particles, rho^b) + W1(rho^b, grid) (triangle inequality), rho^b the
    mean-field limit of the KDE particles (the scheme with phi_b * rho in the discriminator). The
    first term is Monte-Carlo, at most the i.i.d. floor (as for the kernel metric); the second is the
    KDE bias, O(b^2): the equilibrium of the smoothed flow is rho_d deconvolved by phi_b, for N(0, 1)
    N(0, 1 - b^2), W1 sqrt(2/pi)(1 - sqrt(1 - b^2)) ~ 0.4 b^2 = 0.0097 at b = 0.156, an upper size for
    T <= 1 (measured 0.0021, 0.0051 at t = 0.5, 1). And the particles against rho^b, their own mean-field
    limit, are Monte-Carlo error alone: below the floor (measured 0.0064, 0.0054 vs 0.013, 0.014)."""
    fine = _case(cells=2000, metric="L2")
    ref = solve_case_dual(fine)
    case = _case(cells=200, metric="L2")
    n = 10_000
    runs = [solve_dual_particles(case, n=n, seed=s) for s in range(2)]
    b = runs[0].meta["bandwidth"]
    smoothed = _smoothed_grid_flow(fine, b)
    for k in (1, 2):
        bias = _w1_densities(ref.grid, smoothed[k], ref.rho[k])
        assert bias <= np.sqrt(2 / np.pi) * (1 - np.sqrt(1 - b * b)), bias
        floor = metrics.mc_floor_w1(ref.grid, smoothed[k], n, seeds=20)
        w = np.mean([metrics.w1_samples_density_1d(r.positions[k], ref.grid, ref.rho[k]) for r in runs])
        assert w <= floor + bias, (k, w, floor, bias)
        w_b = np.mean([metrics.w1_samples_density_1d(r.positions[k], ref.grid, smoothed[k]) for r in runs])
        assert w_b <= floor, (k, w_b, floor)


def _w1_densities(grid: Grid, a: np.ndarray, b: np.ndarray) -> float:
    """W1 of two cell densities in 1D: int |F_a - F_b| (piecewise linear CDFs, exact per cell)."""
    h = grid.spacing[0]
    return float(np.sum(np.abs(np.cumsum(a - b))) * h * h)


# ------------------------------------------------------------------ kappa -> inf

def test_large_kappa_tends_to_the_interacting_particles():
    """For kappa -> inf the L2 logit is log(rho_d / rho_hat) and the particles follow the js flow of
    the KDE: the interacting-particle solver with the same bandwidth and seed. The two clouds start
    identical, so W1 between them is not statistical: the relaxation error of f plus the difference
    of the two discretisations. MATH.md §10: O(1/kappa) where log(rho_d / rho) stays bounded, slower
    where the tails make the limit non-uniform (there f relaxes at the rate kappa sigma(1 - sigma)
    (rho_d + rho_hat), small where both densities are; kappa^-0.5...-0.86 measured on a hard case).
    Measured here over kappa = 1e2, 1e3, 1e4: slopes -0.80 (t = 0.5) and -0.70 (t = 1); required
    <= -0.5 (no convergence, e.g. a logit that does not tend to log(rho_d / rho_hat), gives ~0). At
    kappa = 1e5 the clouds differ by the discretisations alone: below 0.1 of the Monte-Carlo floor
    (measured 5e-4, 0.04 of it)."""
    w, kappas = [], (1e2, 1e3, 1e4, 1e5)
    for kappa in kappas:
        case = _case(cells=200, metric="L2", kappa=kappa)
        dual_run = solve_dual_particles(case, n=10_000, seed=0)
        raw = copy.deepcopy(case.raw)
        raw.pop("discriminator")
        raw["time"]["scheme"] = "backward-euler"
        plain = solve_particles(Case.from_dict(raw, source="test"), n=10_000, seed=0,
                                bandwidth=dual_run.meta["bandwidth"])
        np.testing.assert_array_equal(dual_run.positions[0], plain.positions[0])
        w.append([metrics.w1_samples_1d(dual_run.positions[k], plain.positions[k]) for k in (1, 2)])
    w = np.array(w)
    for k in (0, 1):
        slope = np.polyfit(np.log(kappas[:3]), np.log(w[:3, k]), 1)[0]
        assert slope <= -0.5, (k, slope, w)
    coarse = Grid(case.grid.lower, case.grid.upper, (40,))   # the floor's density: a histogram suffices
    rho_t = np.histogram(plain.positions[-1][:, 0], bins=40, range=(-5.0, 5.0), density=True)[0]
    assert w[-1, 1] <= 0.1 * metrics.mc_floor_w1(coarse, rho_t, 10_000, seeds=20), w


# ------------------------------------------------------------------ runs, errors, 2D

def test_deterministic_for_a_seed():
    case = _case(cells=80, dt=0.02)
    a, b = (solve_dual_particles(case, n=2000, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.f, b.f)
    assert a.meta["gan_value"] == b.meta["gan_value"]
    c = solve_dual_particles(case, n=2000, seed=6)
    assert not np.array_equal(a.positions[-1], c.positions[-1])


@pytest.mark.parametrize("kw, message", [
    ({"mode": "superposition"}, "--mode interacting"),
    ({"bandwidth": 0.3}, "--bandwidth"),
    ({"checkpoint_path": "x.npz"}, "--checkpoint"),
    ({"mmd_velocity": "direct"}, "--mmd-velocity"),
    ({"n": 0}, "--n"),
    ({"integrator": "rk4"}, "--integrator"),
])
def test_bad_options_are_one_line_errors(kw, message):
    args = {"n": 100, **kw}
    with pytest.raises(InputError) as err:
        solve_particles(_case(cells=40), **args)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_infinite_rate_is_a_one_line_error():
    """kappa = inf (API only) would set f = log(rho_d / rho_hat), infinite where the KDE underflows;
    that limit is the interacting solver of the case without [discriminator]."""
    from fpsolver.dynamics.spec import DiscriminatorSpec
    for spec in (DiscriminatorSpec(np.inf, "kernel", sigma=1.0), DiscriminatorSpec(np.inf, "L2")):
        with pytest.raises(InputError, match="finite rate"):
            solve_dual_particles(_case(cells=40), n=100, seed=0, spec=spec)


def test_2d_kernel_run_and_cli(tmp_path):
    """2D, kernel metric: the CLI writes a particle result with f (readable, comparable with the grid
    result), every particle stays in the box, and sliced W1 to the grid solution is below the i.i.d.
    floor (as in 1D; the grid on 96^2 cells, since upwind on the particles' 32^2 is O(dx) off)."""
    raw = _raw(dim=2, cells=32, dt=0.02)
    path = tmp_path / "d2.toml"
    path.write_text(_toml(raw))
    out_p, out_g = tmp_path / "p.npz", tmp_path / "g.npz"
    assert main(["particles", str(path), "--n", "3000", "--seed", "1", "--out", str(out_p), "--quiet"]) == 0
    assert main(["solve", str(path), "--out", str(out_g), "--quiet"]) == 0
    res = Result.load(str(out_p), expect="particles")
    assert Result.load(str(out_g), expect="density").f.shape == res.f.shape
    assert res.f.shape == (3, 32, 32) and np.all(np.isfinite(res.f))
    assert res.meta["particles_inside"] == [3000] * 3 and set(res.meta["mass"]) == {1.0}
    assert main(["compare", str(out_g), str(out_p)]) == 0
    fine = solve_case_dual(Case.from_dict(_raw(dim=2, cells=96, dt=0.02), source="test"))  # upwind: O(dx)
    for k in (1, 2):
        w = metrics.w1_to_density(res.positions[k], fine.grid, fine.rho[k], n_dirs=32)
        assert w <= metrics.mc_floor_w1(fine.grid, fine.rho[k], 3000, seeds=10, n_dirs=32), (k, w)
    assert main(["particles", str(path), "--n", "100", "--bandwidth", "0.2", "--out", str(out_p), "--quiet"]) == 2


def _toml(raw: dict) -> str:
    def val(v):
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(float(v)) if isinstance(v, float) else str(v)
    lines = []
    for table, body in raw.items():
        lines.append(f"[{table}]")
        sub = {k: v for k, v in body.items() if isinstance(v, dict)}
        lines += [f"{k} = {val(v)}" for k, v in body.items() if not isinstance(v, dict)]
        for name, inner in sub.items():
            lines.append(f"[{table}.{name}]")
            lines += [f"{k} = {val(v)}" for k, v in inner.items()]
    return "\n".join(lines) + "\n"
