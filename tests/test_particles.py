"""Particle solvers: kernels against numpy, accuracy against the PDE, determinism, resume, CLI."""
from __future__ import annotations

import copy
import os

import numba
import numpy as np
import pytest

from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.errors import InputError
from fpsolver.flows import PRESETS
from fpsolver.fv import solve_case
from fpsolver.grid import Grid
from fpsolver.kde import gaussian_smooth_reflect, linear_binning, linear_binning_numba
from fpsolver.metrics import (histogram_l1, mc_floor_w1, sample_cell_density, w1_samples_1d,
                              w1_samples_density_1d)
from fpsolver.particles import kernels, solve_particles
from fpsolver.particles.estimate import smooth_with_gradient, smooth_with_gradient_numpy
from fpsolver.particles.interacting import InteractingVelocity, default_bandwidth, default_kde_grid
from fpsolver.particles.superposition import PDEVelocity
from fpsolver.particles.target import TargetField
from fpsolver.result import Result
from fpsolver.studies.particle_studies import kde_bias_bound, kde_mean_field

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
N = 100_000
GRID1 = Grid((-4.0,), (4.0,), (50,))
GRID2 = Grid((-4.0, -3.0), (4.0, 3.0), (24, 18))
# Kernels compute s = (x - lo) * (1/h), the references (x - lo) / h: s (at most 50 here) may
# differ by a few ulps, which moves an interpolated value by that much times its cell jump
_ULPS_OF_S = 8 * 50 * np.finfo(float).eps * 2


def _points(grid, n, seed=0):
    """Points inside the box, some exactly on the walls and between a wall and the first centre."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array(grid.lower), np.array(grid.upper)
    x = rng.uniform(lo, hi, size=(n, grid.dim))
    x[:3] = lo
    x[3:6] = hi
    x[6:9] = lo + 0.2 * np.array(grid.spacing)
    return x


@pytest.fixture(scope="module")
def bimodal():
    return Case.from_toml(os.path.join(EXAMPLES, "bimodal_1d.toml"))


@pytest.fixture(scope="module")
def bimodal_pde(bimodal):
    return solve_case(bimodal)


# ------------------------------------------------------------------ kernels == numpy references

@pytest.mark.parametrize("grid", [GRID1, GRID2], ids=["1d", "2d"])
def test_binning_numba_matches_numpy_for_any_thread_count(grid):
    x = _points(grid, 70_001)
    ref = linear_binning(x, grid)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = linear_binning_numba(x, grid)
        numba.set_num_threads(threads)
        many = linear_binning_numba(x, grid)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_allclose(many, ref, rtol=1e-12, atol=1e-9)
    assert np.array_equal(one, many)          # deterministic whatever the thread count
    assert abs(many.sum() - len(x)) < 1e-8    # every particle's unit weight is kept


@pytest.mark.parametrize("grid", [GRID1, GRID2], ids=["1d", "2d"])
def test_dct_smoothing_and_gradient_match_fft_of_even_extension(grid):
    counts = linear_binning(_points(grid, 5000, seed=1), grid)
    rho, grad = smooth_with_gradient(counts, grid, 0.4)
    rho_ref, grad_ref = smooth_with_gradient_numpy(counts, grid, 0.4)
    scale = np.abs(rho_ref).max()
    assert np.abs(rho - rho_ref).max() < 1e-12 * scale
    assert np.abs(grad - grad_ref).max() < 1e-12 * np.abs(grad_ref).max()
    assert np.abs(rho - gaussian_smooth_reflect(counts, grid, 0.4)).max() < 1e-12 * scale
    assert abs(rho.sum() - counts.sum()) < 1e-9 * counts.sum()


def test_gradient_of_smoothed_delta_is_the_gaussian_derivative():
    grid = Grid((-8.0,), (8.0,), (400,))
    counts = np.zeros(400)
    counts[200] = 1.0  # one unit mass at x_200, far from the walls
    b = 0.5
    rho, grad = smooth_with_gradient(counts, grid, b)
    x = grid.centres[0] - grid.centres[0][200]
    phi = np.exp(-0.5 * (x / b) ** 2) / (np.sqrt(2 * np.pi) * b) * grid.spacing[0]
    assert np.abs(rho - phi).max() < 1e-12
    assert np.abs(grad[0] - (-x / b**2) * phi).max() < 1e-11


@pytest.mark.parametrize("grid", [GRID1, GRID2], ids=["1d", "2d"])
def test_interpolation_numba_matches_numpy(grid):
    x = _points(grid, 10_000, seed=2)
    field = np.random.default_rng(3).normal(size=(grid.dim,) + grid.shape)
    ref = kernels.interp_field_numpy(x, field, grid.lower, grid.spacing)
    got = np.empty_like(x)
    if grid.dim == 1:
        kernels.interp_field_1d(x, field, grid.lower[0], grid.spacing[0], got)
    else:
        kernels.interp_field_2d(x, field, grid.lower[0], grid.spacing[0], grid.lower[1], grid.spacing[1], got)
    np.testing.assert_allclose(got, ref, rtol=0, atol=_ULPS_OF_S * np.abs(field).max())
    at_centres = kernels.interp_cells_numpy(grid.points(), field[0], grid.lower, grid.spacing)
    np.testing.assert_allclose(at_centres, field[0].ravel(), atol=1e-13)  # exact at the centres


def test_reflection_numba_matches_numpy_and_stays_in_the_box():
    lo, hi = np.array([-1.0, 0.0]), np.array([2.0, 0.5])
    rng = np.random.default_rng(4)
    x = rng.uniform(lo, hi, size=(20_000, 2))
    v = rng.normal(scale=30.0, size=x.shape)  # most moves leave the box, many by several widths
    out = np.empty_like(x)
    kernels.move_reflect(x, v, 0.1, lo, hi, out)
    ref = kernels.reflect_numpy(x + 0.1 * v, lo, hi)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)
    assert np.all((out >= lo) & (out <= hi))
    np.testing.assert_array_equal(kernels.reflect_numpy(x, lo, hi), x)  # inside: untouched
    np.testing.assert_allclose(kernels.reflect_numpy(np.array([[-1.25, 0.75]]), lo, hi), [[-0.75, 0.25]])


def _case_dict(dim, flow, target_kind):
    if dim == 1:
        d = {"domain": {"lower": [-4.0], "upper": [4.0], "cells": [60]},
             "target": {"kind": "gaussian_mixture", "components": [
                 {"weight": 0.5, "mean": [-1.5], "std": [0.5]}, {"weight": 0.5, "mean": [1.5], "std": [0.5]}]},
             "initial": {"kind": "gaussian", "mean": [1.0], "std": [0.7]}}
    else:
        d = {"domain": {"lower": [-3.0, -3.0], "upper": [3.0, 3.0], "cells": [20, 24]},
             "target": {"kind": "gaussian_mixture", "components": [
                 {"weight": 0.5, "mean": [-1.0, 0.0], "std": [0.6, 0.6]},
                 {"weight": 0.5, "mean": [1.0, 0.5], "cov": [[0.3, 0.1], [0.1, 0.4]]}]},
             "initial": {"kind": "gaussian", "mean": [0.0, -0.5], "std": [0.8, 0.8]}}
    if target_kind == "uniform":
        d["target"] = {"kind": "uniform"}
    d.update(flow={"kind": flow}, time={"dt": 0.01, "save_times": [0.02]})
    return d


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("flow", sorted(PRESETS))
@pytest.mark.parametrize("target_kind", ["mixture", "uniform", "table"])
def test_velocity_kernel_matches_flow_velocity(dim, flow, target_kind, tmp_path):
    d = _case_dict(dim, flow, target_kind)
    if target_kind == "table":  # the target given as grid values: tabulated, not analytic
        cells = Case.from_dict(d).discretised()[0].cells
        np.save(tmp_path / "rho_d.npy", cells)
        d["target"] = {"kind": "grid", "path": str(tmp_path / "rho_d.npy")}
    case = Case.from_dict(d)
    vel = InteractingVelocity(case, 0.3, case.grid)
    x = case.initial.sample(3000, np.random.default_rng(6), case.grid)
    out = np.empty_like(x)
    vel(x, out, 0.0, 0.0)
    ref = vel.velocity_numpy(x)
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


def test_target_field_is_normalised_like_the_grid_solver(bimodal):
    tf = TargetField(bimodal)
    np.testing.assert_allclose(tf.rho_d, bimodal.discretised()[0].cells, rtol=1e-12)
    pts = bimodal.grid.points()
    np.testing.assert_allclose(tf.grad_log[0], bimodal.target.grad_log_pdf(pts)[:, 0], rtol=1e-12)


def test_tabulated_target_gradient_is_second_order(tmp_path):
    """grad log rho_d of a target given on the grid (centred differences) -> the analytic one."""
    errors = []
    for cells in (100, 200):
        d = _case_dict(1, "js", "mixture")
        d["domain"]["cells"] = [cells]
        analytic = Case.from_dict(d)
        np.save(tmp_path / "rho_d.npy", analytic.discretised()[0].cells)
        d["target"] = {"kind": "grid", "path": str(tmp_path / "rho_d.npy")}
        tabulated = TargetField(Case.from_dict(d))
        exact = TargetField(analytic)
        bulk = exact.rho_d > 1e-3 * exact.rho_d.max()
        np.testing.assert_allclose(tabulated.rho_d, exact.rho_d, rtol=1e-12)
        errors.append(np.abs(tabulated.grad_log - exact.grad_log)[0][bulk].max())
    assert 2 - 0.15 <= np.log2(errors[0] / errors[1]) <= 2 + 0.15


@pytest.mark.parametrize("grid", [GRID1, GRID2], ids=["1d", "2d"])
def test_face_interpolation_numba_matches_numpy(grid):
    x = _points(grid, 10_000, seed=7)
    rng = np.random.default_rng(8)
    faces = []
    for a in range(grid.dim):
        shape = list(grid.shape)
        shape[a] += 1
        f = rng.normal(size=shape)
        np.moveaxis(f, a, 0)[[0, -1]] = 0.0  # walls carry no flux
        faces.append(f)
    ref = kernels.interp_faces_numpy(x, faces, grid.lower, grid.spacing)
    out = np.empty_like(x)
    if grid.dim == 1:
        kernels.interp_faces_1d(x, faces[0], grid.lower[0], grid.spacing[0], out)
    else:
        kernels.interp_faces_2d(x, faces[0], faces[1], grid.lower[0], grid.spacing[0],
                                grid.lower[1], grid.spacing[1], out)
    np.testing.assert_allclose(out, ref, rtol=0, atol=_ULPS_OF_S * max(np.abs(f).max() for f in faces))
    on_wall = x[:, 0] == grid.lower[0]
    assert np.all(out[on_wall, 0] == 0.0)  # the normal velocity vanishes on the walls


def test_pde_velocity_converges_to_the_js_velocity_at_second_order():
    """Superposition velocity on the faces against MATH.md section 1's v = (1/2) d/dx log(1 + rho_d/rho),
    differentiated by hand for rho_d = (N(-1.5, 0.5^2) + N(1.5, 0.5^2))/2 and rho = N(1, 0.7^2): the
    two-point flux over the mean face density is a second-order approximation of it."""
    from types import SimpleNamespace

    def log_rho_d(x):
        return np.logaddexp(-0.5 * ((x + 1.5) / 0.5) ** 2, -0.5 * ((x - 1.5) / 0.5) ** 2) - np.log(2 * np.sqrt(2 * np.pi) * 0.5)

    def dlog_rho_d(x):
        w = 1.0 / (1.0 + np.exp(0.5 * ((x - 1.5) / 0.5) ** 2 - 0.5 * ((x + 1.5) / 0.5) ** 2))  # weight of the right mode
        return (1 - w) * (-(x + 1.5) / 0.25) + w * (-(x - 1.5) / 0.25)

    def log_rho(x):
        return -0.5 * ((x - 1.0) / 0.7) ** 2 - np.log(np.sqrt(2 * np.pi) * 0.7)

    errors = []
    for cells in (100, 200):
        d = _case_dict(1, "js", "mixture")
        d["domain"]["cells"] = [cells]
        d["initial"] = {"kind": "gaussian", "mean": [1.0], "std": [0.7]}
        case = Case.from_dict(d)
        target, initial = case.discretised()
        # the discrete densities are renormalised to the box: carry that into the exact ratio
        shift = target.log_norm - initial.log_norm
        rho = np.exp(initial.log_cells)
        vel = PDEVelocity(case, SimpleNamespace(t=np.array([0.0, 0.01]), rho=np.stack([rho, rho])), "backward-euler")
        v = vel.face_velocity(0.01, 0.0)[0][1:-1]            # interior faces
        xf = case.grid.edges[0][1:-1]
        r = np.exp(log_rho_d(xf) - log_rho(xf) - shift)      # rho_d / rho at the faces
        exact = 0.5 * r * (dlog_rho_d(xf) + (xf - 1.0) / 0.49) / (1 + r)
        bulk = np.abs(xf) < 3.0
        errors.append(np.abs(v - exact)[bulk].max())
    assert 2 - 0.15 <= np.log2(errors[0] / errors[1]) <= 2 + 0.15, errors


# ------------------------------------------------------------------ accuracy against the PDE

def test_superposition_law_matches_the_pde(bimodal, bimodal_pde):
    res = solve_particles(bimodal, n=N, seed=1, mode="superposition", pde=bimodal_pde)
    grid = bimodal.grid
    assert res.meta["pde_resolved"] is True  # the example saves 3 times, so it was re-solved
    for k, t in enumerate(res.t):
        rho = bimodal_pde.rho[k]
        assert bimodal_pde.t[k] == t
        floor = np.mean([w1_samples_1d(sample_cell_density(grid, rho, N, np.random.default_rng(100 + 2 * s)),
                                       sample_cell_density(grid, rho, N, np.random.default_rng(101 + 2 * s)))
                         for s in range(4)])
        w1 = w1_samples_density_1d(res.positions[k], grid, rho)
        assert w1 <= 3 * floor, (t, w1, floor)


def _bridge_w1_quantiles(grid, rho, n, qs, paths=4000):
    """Quantiles of the large-N law of W1 between N exact samples of rho and rho:
    sqrt(N) (F_N - F) -> B(F), B a Brownian bridge, so W1 ~ N^(-1/2) int |B(F(x))| dx.
    Simulated here from Brownian paths (B = W - F W(1)), independently of the sampling code."""
    h = grid.spacing[0]
    F = np.concatenate([[0.0], np.cumsum(rho) * h])
    F = F / F[-1]
    rng = np.random.default_rng(2024)
    dW = rng.normal(size=(paths, F.size - 1)) * np.sqrt(np.diff(F))
    W = np.concatenate([np.zeros((paths, 1)), np.cumsum(dW, axis=1)], axis=1)
    B = np.abs(W - F * W[:, -1:])
    integral = 0.5 * (B[:, 1:] + B[:, :-1]).sum(axis=1) * h
    return np.quantile(integral, qs) / np.sqrt(n)


def test_interacting_bimodal_within_the_floor_plus_the_kde_bias(bimodal):
    """Default (velocity-optimal) bandwidth, b ~ N^(-1/7): W1(particles, PDE) <= W1(particles, rho^b) +
    W1(rho^b, PDE), rho^b the law of the particles as N -> infinity at this b. The first term is
    Monte-Carlo noise (at most the floor); the second is the KDE bias O(b^2), which no longer stays below
    the noise (at b = 0.094 it grows to 3.8 times the floor by t = 8). It is computed independently of the
    particle code, by solving the mean-field equation on a grid (:func:`kde_bias_bound`)."""
    case = bimodal.with_overrides(save_times=[0.5, 1.0, 2.0, 4.0, 8.0])
    fine = solve_case(case.with_overrides(cells=[800], scheme="bdf2"))
    res = solve_particles(case, n=N, seed=0)
    b = default_bandwidth(case, N)
    assert res.meta["bandwidth"] == b
    bias = [0.0] + kde_bias_bound(case, b, fine)
    grid = fine.grid
    for k, t in enumerate(res.t):
        floor = mc_floor_w1(grid, fine.rho[k], N, seeds=20, quantile=0.95)
        w1 = w1_samples_density_1d(res.positions[k], grid, fine.rho[k])
        # the 95th percentile of 20 draws lies between the median and the 99.99th percentile of the
        # limit law unless 19 of 20 draws fall below the median (p = 2e-5) or one above q_9999 (p = 2e-3)
        low, high = _bridge_w1_quantiles(grid, fine.rho[k], N, [0.5, 0.9999])
        assert low <= floor <= high, (t, low, floor, high)
        assert w1 <= floor + bias[k], (t, w1, floor, bias[k])
    assert bias[-1] > 2 * floor  # the bias term matters: 2 x the floor alone would not hold


def test_mean_field_kde_bias_is_second_order_in_the_bandwidth(bimodal):
    """The bias estimate used above: the mean-field solution at bandwidth b keeps its mass, and its W1 to
    the PDE falls like b^2 (MATH.md section 5) when b is halved, 0.05 -> 0.025."""
    case = bimodal.with_overrides(save_times=[1.0])
    fine = solve_case(case.with_overrides(cells=[800], scheme="bdf2"))
    h = fine.grid.spacing[0]
    bias = []
    for b in (0.05, 0.025):
        (rho,) = kde_mean_field(case, b, [800], [1.0])
        assert abs(rho.sum() * h - 1.0) < 1e-12 and rho.min() >= 0.0
        bias.append(np.sum(np.abs(np.cumsum(rho - fine.rho[-1]))) * h * h)
    assert 2 - 0.25 <= np.log2(bias[0] / bias[1]) <= 2 + 0.25, bias


# ------------------------------------------------------------------ determinism, box, resume

def _short(case):
    return case.with_overrides(save_times=[0.05, 0.1])


def test_same_seed_same_output_and_every_particle_stays_in_the_box(bimodal):
    case = _short(bimodal)
    M = 40_000  # more than one binning chunk, so the thread count could matter
    a = solve_particles(case, n=M, seed=3, integrator="euler")
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)  # the same output whatever the number of threads
        b = solve_particles(case, n=M, seed=3, integrator="euler")
    finally:
        numba.set_num_threads(threads)
    c = solve_particles(case, n=M, seed=4, integrator="euler")
    np.testing.assert_array_equal(a.positions, b.positions)
    assert a.meta["steps"] == b.meta["steps"] and a.meta["min_step"] == b.meta["min_step"]
    assert not np.array_equal(a.positions, c.positions)
    lo, hi = case.grid.lower[0], case.grid.upper[0]
    assert a.positions.shape == (3, M, 1)
    assert np.all((a.positions >= lo) & (a.positions <= hi))
    assert a.meta["particles_inside"] == [M, M, M]
    np.testing.assert_array_equal(a.t, [0.0, 0.05, 0.1])  # lands exactly on the save times


def test_two_dimensional_runs_keep_every_particle():
    case = Case.from_toml(os.path.join(EXAMPLES, "two_mode_2d.toml")).with_overrides(save_times=[0.04])
    res = solve_particles(case, n=3000, seed=0, kde_cells=(64, 64))
    assert res.positions.shape == (2, 3000, 2)
    lo, hi = np.array(case.grid.lower), np.array(case.grid.upper)
    assert np.all((res.positions >= lo) & (res.positions <= hi))
    assert int(res.extra["counts"][-1].sum()) == 3000


@pytest.mark.parametrize("mode", ["interacting", "superposition"])
def test_interrupted_run_resumes_to_the_identical_result(bimodal, bimodal_pde, mode, tmp_path):
    case = bimodal.with_overrides(save_times=[0.05, 0.1])
    kw = dict(n=4000, seed=5, mode=mode, pde=bimodal_pde if mode == "superposition" else None,
              save_positions=1000)
    full = solve_particles(case, **kw)
    ck = str(tmp_path / "run.ckpt.npz")

    class Stop(Exception):
        pass

    def stop_after(done, info=""):
        if "steps=7" in info:
            raise Stop

    with pytest.raises(Stop):
        solve_particles(case, progress=stop_after, checkpoint_path=ck, checkpoint_every=0.0, **kw)
    resumed = solve_particles(case, resume=ck, **kw)
    np.testing.assert_array_equal(resumed.positions, full.positions)
    np.testing.assert_array_equal(resumed.extra["counts"], full.extra["counts"])
    assert resumed.meta["steps"] == full.meta["steps"] and resumed.positions.shape == (3, 1000, 1)
    other = case.with_overrides(save_times=[0.05, 0.2])
    with pytest.raises(InputError, match="different run"):
        solve_particles(other, resume=ck, **kw)


def test_default_bandwidth_rule(bimodal):
    """The default is optimal for grad rho_hat: b^7 = 3 R(phi') / (N int |rho'''|^2), R(phi') = 1/(4 sqrt(pi)),
    the smaller over rho_0 and rho_d. rho_0 = N(1, 0.5^2): the normal-reference (4/5)^(1/7) 0.5 N^(-1/7).
    rho_d, the two-Gaussian mixture: int |rho_d'''|^2 by quadrature of the analytic third derivative
    gives a larger b, so rho_0 sets it."""
    x = np.linspace(-10.0, 10.0, 200_001)

    def third(m, s):  # d^3/dx^3 of the N(m, s^2) density
        z = (x - m) / s
        return -(z**3 - 3 * z) * np.exp(-0.5 * z**2) / (np.sqrt(2 * np.pi) * s**4)

    r3_target = np.sum((0.5 * third(-1.5, 0.5) + 0.5 * third(1.5, 0.5)) ** 2) * (x[1] - x[0])
    for n in (10, N, 10**9):
        expect = 0.8 ** (1 / 7) * 0.5 * n ** (-1 / 7)
        assert (3 / (4 * np.sqrt(np.pi)) / (n * r3_target)) ** (1 / 7) > 1.05 * expect
        assert default_bandwidth(bimodal, n) == pytest.approx(expect, rel=1e-3)
    floor = 3 * 8.0 / 2**16  # three cells of the finest KDE grid allowed
    assert 0.8 ** (1 / 7) * 0.5 * 1e25 ** (-1 / 7) < floor
    assert default_bandwidth(bimodal, 10**25) == pytest.approx(floor, rel=1e-12)
    assert default_kde_grid(bimodal.grid, 0.045).shape == (534,)  # ceil(3 * 8 / 0.045)
    assert default_kde_grid(bimodal.grid, 0.5).shape == (400,)    # never coarser than the case


def test_velocity_bandwidth_for_a_gaussian_is_the_normal_reference_rule():
    """N(0, s^2): int |rho'''|^2 = 15 / (16 sqrt(pi) s^7), so b^7 = 3 R(phi') / (N R3) with R(phi') = 1/(4 sqrt(pi))
    gives b = (4/5)^(1/7) s N^(-1/7); in 2D, N(0, I): b = (4/6)^(1/8) N^(-1/8) (the same AMISE rule)."""
    from fpsolver.particles.estimate import gradient_roughness, velocity_bandwidth

    grid = Grid((-8.0,), (8.0,), (800,))
    s = 0.5
    x = grid.centres[0]
    rho = np.exp(-0.5 * (x / s) ** 2) / (np.sqrt(2 * np.pi) * s)
    assert gradient_roughness(rho, grid) == pytest.approx(15 / (16 * np.sqrt(np.pi) * s**7), rel=1e-6)
    for n in (10**3, 10**6):
        assert velocity_bandwidth(grid, [rho], n) == pytest.approx(0.8 ** (1 / 7) * s * n ** (-1 / 7), rel=1e-6)
    # the sharper density sets the bandwidth
    wide = np.exp(-0.5 * (x / 1.5) ** 2)
    assert velocity_bandwidth(grid, [wide, rho], 10**5) == velocity_bandwidth(grid, [rho], 10**5)
    g2 = Grid((-6.0, -6.0), (6.0, 6.0), (128, 128))
    r2 = np.exp(-0.5 * np.sum(g2.points() ** 2, axis=1)).reshape(g2.shape)
    assert velocity_bandwidth(g2, [r2], 10**5) == pytest.approx((4 / 6) ** (1 / 8) * 10 ** (-5 / 8), rel=1e-4)
    with pytest.raises(ValueError, match="n = 0"):
        velocity_bandwidth(grid, [rho], 0)


def test_no_grid_scale_clustering_when_the_bandwidth_is_near_the_cell_size():
    """kl example: b = 0.045 is 1.1 case cells; on the case grid the histogram turned odd-even
    (L1 0.6 at t = 1), so the KDE grid is refined to 3 cells per bandwidth. (0.045 is the density-optimal
    bandwidth for N = 10^5 here; the velocity-optimal default is twice as wide, so it is passed explicitly.)"""
    case = Case.from_toml(os.path.join(EXAMPLES, "kl_gaussian.toml")).with_overrides(save_times=[0.25, 1.0])
    pde = solve_case(case)
    res = solve_particles(case, n=N, seed=0, bandwidth=0.045)
    assert res.meta["bandwidth"] < 1.2 * case.grid.spacing[0] and res.meta["kde_cells"] == [1067]
    grid = case.grid
    for k, t in enumerate(res.t):
        samples = [sample_cell_density(grid, pde.rho[k], N, np.random.default_rng(s)) for s in range(10)]
        l1_floor = np.quantile([histogram_l1(y, grid, pde.rho[k]) for y in samples], 0.95)
        assert histogram_l1(res.positions[k], grid, pde.rho[k]) <= 2 * l1_floor, t


# ------------------------------------------------------------------ command line

def test_cli_runs_and_writes_a_standalone_particle_result(tmp_path, capsys):
    out = tmp_path / "p.npz"
    case = os.path.join(EXAMPLES, "kl_gaussian.toml")
    rc = main(["particles", case, "--out", str(out), "--n", "3000", "--save-positions", "500",
               "--integrator", "euler", "--quiet"])
    assert rc == 0
    res = Result.load(out, expect="particles")
    assert res.positions.shape == (4, 500, 1) and res.meta["n"] == 3000
    assert res.extra["counts"].shape == (4, 400) and res.extra["counts"].sum() == 4 * 3000
    assert res.rho_d.shape == (400,) and len(res.axes) == 1
    assert res.meta["backend"] == "particles" and res.meta["integrator"] == "euler"


def _err(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("fpsolver: error:") and "\n" not in err, err
    return err


def test_cli_rejects_bad_options_with_one_line(tmp_path, capsys, bimodal_pde):
    ex = os.path.join(EXAMPLES, "bimodal_1d.toml")
    out = str(tmp_path / "p.npz")
    pde = str(tmp_path / "pde.npz")
    bimodal_pde.save(pde)
    assert "--n" in _err(capsys, ["particles", ex, "--out", out, "--n", "0"])
    assert "--pde" in _err(capsys, ["particles", ex, "--out", out, "--mode", "superposition"])
    assert "--pde applies" in _err(capsys, ["particles", ex, "--out", out, "--pde", pde])
    assert "--save-positions" in _err(capsys, ["particles", ex, "--out", out, "--n", "10",
                                               "--save-positions", "11"])
    assert "no such" in _err(capsys, ["particles", ex, "--out", out, "--resume", str(tmp_path / "x")])
    raw = copy.deepcopy(bimodal_pde.meta["case"])
    for change, word in [(("domain", "cells", [200]), "grid"), (("flow", "kind", "kl"), "flow"),
                         (("initial", "mean", [0.0]), "initial")]:
        d = copy.deepcopy(raw)
        d[change[0]][change[1]] = change[2]
        other = solve_case(Case.from_dict(d).with_overrides(save_times=[0.01]))
        path = str(tmp_path / f"{word}.npz")
        other.save(path)
        msg = _err(capsys, ["particles", ex, "--out", out, "--mode", "superposition", "--pde", path])
        assert word in msg
    d = copy.deepcopy(raw)
    d["target"]["components"][0]["std"] = [0.6]
    other = solve_case(Case.from_dict(d).with_overrides(save_times=[0.01]))
    other.save(str(tmp_path / "target.npz"))
    assert "target" in _err(capsys, ["particles", ex, "--out", out, "--mode", "superposition",
                                     "--pde", str(tmp_path / "target.npz")])
    assert not os.path.exists(out)


def test_far_from_a_narrow_target_nothing_overflows():
    """rho_d underflows to 0 forty standard deviations out: js particles there stay finite."""
    d = {"domain": {"lower": [-8.0], "upper": [8.0], "cells": [200]},
         "target": {"kind": "gaussian", "mean": [-6.0], "std": [0.1]},
         "initial": {"kind": "gaussian", "mean": [6.0], "std": [0.3]},
         "flow": {"kind": "js"}, "time": {"dt": 0.01, "save_times": [0.1]}}
    case = Case.from_dict(d)
    assert np.exp(case.discretised()[0].log_cells).min() == 0.0  # the premise: underflow
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        res = solve_particles(case, n=20_000, seed=0)
    assert np.all(np.isfinite(res.positions)) and res.meta["particles_inside"] == [20_000, 20_000]
