"""Case files, happy paths: every density kind, far tails in log space, unit discrete mass."""
from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from fpsolver.case import Case
from fpsolver.densities import GaussianMixture, GridDensity, SampleDensity, Uniform, discretise
from fpsolver.fv import solve_case
from fpsolver.grid import Grid
from fpsolver.kde import kde_bandwidth, kde_on_grid

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
EPS = np.finfo(float).eps

CASE_1D = """
[domain]
lower = [-4.0]
upper = [4.0]
cells = [80]

[target]
kind = "gaussian_mixture"
[[target.components]]
weight = 2.0
mean = [-1.5]
std = [0.5]
[[target.components]]
weight = 6.0
mean = [1.5]
std = [0.7]

[initial]
{initial}

[flow]
kind = "reverse-kl"

[time]
dt = 0.05
save_times = [0.1, 0.25]
"""

CASE_2D = """
[domain]
lower = [-3.0, -2.0]
upper = [3.0, 2.0]
cells = [30, 20]

[target]
{target}

[initial]
kind = "gaussian"
mean = [0.5, 0.0]
cov = [[0.5, 0.2], [0.2, 0.4]]

[flow]
kind = "kl"

[time]
dt = 0.1
save_times = [0.2]
scheme = "bdf2"
"""


def _write(tmp_path, text, name="case.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _unit_mass(disc, grid):
    return float(np.sum(np.exp(disc.log_cells)) * grid.cell_volume)


def test_examples_parse():
    expect = {"bimodal_1d.toml": ("js", 1, "backward-euler", (0.5, 2.0, 8.0)),
              "two_mode_2d.toml": ("js", 2, "backward-euler", (0.5, 2.0, 6.0)),
              "uniform_reverse_kl.toml": ("reverse-kl", 1, "backward-euler", (0.002, 0.01, 0.05)),
              "kl_gaussian.toml": ("kl", 1, "bdf2", (0.25, 1.0, 3.0))}
    for name, (flow, dim, scheme, times) in expect.items():
        case = Case.from_toml(os.path.join(EXAMPLES, name))
        assert (case.flow, case.grid.dim, case.scheme, case.save_times) == (flow, dim, scheme, times)
        assert case.save_steps == tuple(int(round(t / case.dt)) for t in times)
        assert case.raw["time"]["scheme"] == scheme
        for disc in case.discretised():
            assert abs(_unit_mass(disc, case.grid) - 1.0) <= 1e-14


def test_gaussian_mixture_is_normalised_and_matches_scipy(tmp_path):
    case = Case.from_toml(_write(tmp_path, CASE_1D.format(initial='kind = "uniform"')))
    mix = case.target
    np.testing.assert_allclose(mix.weights, [0.25, 0.75], rtol=0, atol=1e-15)
    x = case.grid.points()
    ref = np.log(0.25 * multivariate_normal(-1.5, 0.25).pdf(x[:, 0]) + 0.75 * multivariate_normal(1.5, 0.49).pdf(x[:, 0]))
    np.testing.assert_allclose(mix.log_pdf(x), ref, rtol=1e-13)
    target, initial = case.discretised()
    assert abs(_unit_mass(target, case.grid) - 1.0) <= 1e-14
    # log_norm is the log of the midpoint-rule box mass: 1 - (mass outside [-4, 4], from the CDFs)
    # up to the midpoint error dx^2/24 int |rho''| < 1e-3 (dx = 0.1)
    assert target.log_norm == pytest.approx(np.log(np.sum(np.exp(ref)) * 0.1), rel=1e-13)
    outside = 0.25 * (2 * multivariate_normal(-1.5, 0.25).cdf(-4.0)) + 0.75 * (
        multivariate_normal(1.5, 0.49).cdf(-4.0) + 1 - multivariate_normal(1.5, 0.49).cdf(4.0))
    assert abs(np.exp(target.log_norm) - (1 - outside)) < 1e-3 and outside > 1e-4
    np.testing.assert_allclose(target.log_cells, ref - target.log_norm, rtol=1e-13)
    faces = case.grid.face_points(0)
    np.testing.assert_allclose(target.log_faces[0], mix.log_pdf(faces) - target.log_norm, rtol=1e-13)
    np.testing.assert_allclose(np.exp(initial.log_cells), 1.0 / 8.0, rtol=1e-14)   # uniform


def test_std_and_diagonal_cov_are_the_same_gaussian(tmp_path):
    a = Case.from_toml(_write(tmp_path, CASE_1D.format(initial='kind = "gaussian"\nmean = [0.3]\nstd = [0.6]'), "a.toml"))
    b = Case.from_toml(_write(tmp_path, CASE_1D.format(initial='kind = "gaussian"\nmean = [0.3]\ncov = [[0.36]]'), "b.toml"))
    np.testing.assert_allclose(a.discretised()[1].log_cells, b.discretised()[1].log_cells, rtol=1e-14)


def test_full_covariance_2d_matches_scipy(tmp_path):
    case = Case.from_toml(_write(tmp_path, CASE_2D.format(target='kind = "uniform"')))
    x = case.grid.points()
    ref = multivariate_normal([0.5, 0.0], [[0.5, 0.2], [0.2, 0.4]]).logpdf(x)
    np.testing.assert_allclose(case.initial.log_pdf(x), ref, rtol=1e-13)
    target, initial = case.discretised()
    assert case.scheme == "bdf2" and case.grid.shape == (30, 20)
    assert initial.log_cells.shape == (30, 20) and [f.shape for f in initial.log_faces] == [(29, 20), (30, 19)]
    for disc in (target, initial):
        assert abs(_unit_mass(disc, case.grid) - 1.0) <= 1e-14
    np.testing.assert_allclose(np.exp(target.log_cells), 1.0 / 24.0, rtol=1e-14)


def test_grid_density_from_npy(tmp_path):
    grid = Grid((-3.0, -2.0), (3.0, 2.0), (30, 20))
    x, y = np.meshgrid(*grid.centres, indexing="ij")
    values = 2.0 + np.sin(x) * np.cos(y)       # positive, not normalised
    np.save(tmp_path / "vals.npy", values)
    case = Case.from_toml(_write(tmp_path, CASE_2D.format(target='kind = "grid"\npath = "vals.npy"')))
    assert isinstance(case.target, GridDensity)
    assert case.raw["target"]["path"] == str(tmp_path / "vals.npy")   # made absolute for the result meta
    target, _ = case.discretised()
    np.testing.assert_allclose(np.exp(target.log_cells), values / (values.sum() * grid.cell_volume), rtol=1e-14)
    # face values: arithmetic mean of the two cells (no analytic density to evaluate there)
    np.testing.assert_allclose(np.exp(target.log_faces[0]), 0.5 * (np.exp(target.log_cells[1:]) + np.exp(target.log_cells[:-1])),
                               rtol=1e-14)
    np.testing.assert_allclose(np.exp(target.log_faces[1]),
                               0.5 * (np.exp(target.log_cells[:, 1:]) + np.exp(target.log_cells[:, :-1])), rtol=1e-14)


@pytest.mark.parametrize("flat", [False, True])
def test_samples_from_npy_become_the_reflected_kde(tmp_path, flat):
    rng = np.random.default_rng(11)
    pts = np.concatenate([rng.normal(-1.0, 0.5, 3000), rng.normal(1.5, 0.7, 2000), [9.0, -7.0]])  # 2 outside
    np.save(tmp_path / "data.npy", pts if flat else pts[:, None])
    case = Case.from_toml(_write(tmp_path, CASE_1D.format(initial='kind = "samples"\npath = "data.npy"')))
    assert isinstance(case.initial, SampleDensity) and case.initial.points.shape == (5000, 1)
    _, initial = case.discretised()
    inside = pts[np.abs(pts) <= 4.0][:, None]
    kde = kde_on_grid(inside, case.grid, kde_bandwidth(inside, case.grid))
    np.testing.assert_allclose(np.exp(initial.log_cells), kde / (kde.sum() * case.grid.cell_volume), rtol=1e-12)
    assert abs(_unit_mass(initial, case.grid) - 1.0) <= 1e-14


def test_samples_bandwidth_is_used(tmp_path):
    rng = np.random.default_rng(12)
    np.save(tmp_path / "data.npy", rng.normal(0.0, 1.0, (2000, 1)))
    spec = 'kind = "samples"\npath = "data.npy"\nbandwidth = {}'
    wide = Case.from_toml(_write(tmp_path, CASE_1D.format(initial=spec.format(0.8)), "w.toml"))
    narrow = Case.from_toml(_write(tmp_path, CASE_1D.format(initial=spec.format(0.2)), "n.toml"))
    assert wide.initial.bandwidth == 0.8
    # smoothing more lowers the peak of a unimodal sample's density
    assert np.max(wide.discretised()[1].log_cells) < np.max(narrow.discretised()[1].log_cells)


def test_forty_sigma_tails_stay_finite_in_log_space():
    """N(0, 0.1^2) on [-4, 4]: the walls are 40 sigma out, where the density (~e^-800) underflows
    to zero, but log rho is finite and exact, and the solver runs on it."""
    grid = Grid((-4.0,), (4.0,), (400,))
    g = GaussianMixture([1.0], [[0.0]], [[[0.01]]])
    disc = discretise(g, grid)
    x = grid.centres[0]
    exact = -0.5 * (x / 0.1) ** 2 - np.log(np.sqrt(2 * np.pi) * 0.1)
    assert np.all(np.isfinite(disc.log_cells)) and all(np.all(np.isfinite(f)) for f in disc.log_faces)
    assert np.exp(disc.log_cells[0]) == 0.0            # the density itself underflows
    np.testing.assert_allclose(disc.log_cells, exact - disc.log_norm, rtol=1e-13)
    assert abs(_unit_mass(disc, grid) - 1.0) <= 1e-14
    mix2 = GaussianMixture([0.5, 0.5], [[-2.0, 0.0], [2.0, 0.0]], [np.eye(2) * 0.01] * 2)
    disc2 = discretise(mix2, Grid((-6.0, -4.0), (6.0, 4.0), (24, 16)))
    assert np.all(np.isfinite(disc2.log_cells)) and disc2.log_cells.min() < -1000


@pytest.mark.parametrize("flow", ["js", "kl"])
def test_solver_runs_with_forty_sigma_tails(tmp_path, flow):
    """rho_0 = N(0, 0.1^2) against a target 7 sigma wide at the walls: w = log(rho_0/rho_d) reaches
    -770 there, below the exponent range of doubles (u = e^w underflows). js (beta'(0) = 1/2)
    and kl (linear) are non-degenerate at u = 0, so the run must succeed and conserve mass."""
    text = CASE_1D.replace("std = [0.5]", "std = [0.1]").format(initial='kind = "gaussian"\nmean = [0.0]\nstd = [0.1]')
    case = Case.from_toml(_write(tmp_path, text)).with_overrides(flow=flow)
    target, initial = case.discretised()
    assert np.min(initial.log_cells - target.log_cells) < -745
    res = solve_case(case)
    assert res.meta["mass_error"] <= 1e-11 and np.all(np.isfinite(res.rho)) and np.all(res.rho >= 0)


def test_with_overrides_and_from_dict_round_trip():
    case = Case.from_toml(os.path.join(EXAMPLES, "bimodal_1d.toml"))
    again = Case.from_dict(case.raw)
    assert again.grid == case.grid and again.save_times == case.save_times and again.flow == case.flow
    new = case.with_overrides(dt=0.02, cells=[100], scheme="bdf2", flow="kl", save_times=[0.1, 0.4])
    assert (new.dt, new.grid.cells, new.scheme, new.flow, new.save_steps) == (0.02, (100,), "bdf2", "kl", (5, 20))
    assert case.dt == 0.01 and case.grid.cells == (400,)     # the original is unchanged
    assert isinstance(Case.from_dict({**case.raw, "target": {"kind": "uniform"}}).target, Uniform)
