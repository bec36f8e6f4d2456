"""MMD particles (MATH.md section 9): exact velocity, binned velocity, agreement with the grid solver.

References: the velocity by a plain numpy double sum written here from MATH.md section 9
(round-off tolerance); the binned velocity against the direct one (second order in the binning
spacing, observed order 2 +- 0.3); the grid solver ``fpsolver solve`` against the i.i.d.
Monte-Carlo floor (section 9 (iii): interacting MMD particles sit below it); noise injection
against the smoothed kernel g_beta * k (Monte-Carlo error, 3 standard errors).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from fpsolver import metrics
from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.errors import InputError
from fpsolver.flows.kernel import GaussianKernel, MMDFlow
from fpsolver.fv.kernel_solve import solve_case_transport
from fpsolver.kde import linear_binning
from fpsolver.particles import solve_particles
from fpsolver.particles.mmd import MMDVelocity, direct_velocity, direct_velocity_numpy

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
EPS = np.finfo(float).eps


def _case(tmp_path, dim=1, extra=(), save="[0.5, 1.0]", cells=None, name="c.toml"):
    if dim == 1:
        lines = ["[domain]", "lower = [-6.0]", "upper = [6.0]", f"cells = [{cells or 240}]",
                 "[target]", 'kind = "gaussian"', "mean = [-1.0]", "std = [0.6]",
                 "[initial]", 'kind = "gaussian"', "mean = [1.0]", "std = [0.5]"]
    else:
        lines = ["[domain]", "lower = [-4.0, -4.0]", "upper = [4.0, 4.0]", f"cells = [{cells or 48}, {cells or 48}]",
                 "[target]", 'kind = "gaussian"', "mean = [-1.0, 0.5]", "std = [0.6, 0.6]",
                 "[initial]", 'kind = "gaussian"', "mean = [0.5, -0.5]", "std = [0.5, 0.5]"]
    lines += ["[flow]", 'kind = "mmd"', "[flow.kernel]", 'kind = "gaussian"', "sigma = 1.0", *extra,
              "[time]", "dt = 0.05", f"save_times = {save}", 'scheme = "muscl"']
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return Case.from_toml(str(path))


def _sample(case, n, seed=0):
    return np.ascontiguousarray(case.initial.sample(n, np.random.default_rng(seed), case.grid))


def _reference(x, case, kernel):
    """-grad f(x_i) = -(1/N) sum_j grad k(x_i, x_j) + sum_cells rho_d |K| grad k(x_i, y), one pair at a time."""
    rho_d = np.exp(case.discretised()[0].log_cells).ravel() * case.grid.cell_volume
    ys = case.grid.points()
    out = np.zeros_like(x)
    for i in range(len(x)):
        out[i] = -kernel.gradient_x(x[i], x).sum(axis=0) / len(x) + rho_d @ kernel.gradient_x(x[i], ys)
    return out


@pytest.mark.parametrize("dim", [1, 2])
def test_direct_velocity_is_the_double_sum(tmp_path, dim):
    case = _case(tmp_path, dim, cells=24 if dim == 2 else 120)
    x = _sample(case, 300)
    vel = MMDVelocity(case, len(x), 0, "direct")
    out = np.empty_like(x)
    vel(x, out, 0.0, 0.0)
    ref = _reference(x, case, vel.kernel)
    terms = len(x) + case.grid.size          # each term |w (x - y) k / sigma^2| <= e^{-1/2} / sigma
    assert np.max(np.abs(out - ref)) <= 4 * terms * EPS
    assert np.max(np.abs(out - vel.velocity_numpy(x))) <= 4 * terms * EPS   # Numba kernel vs numpy


def test_samples_target_sums_over_the_samples(tmp_path):
    """Target kind "samples": the target term is -(1/M) sum_m grad k(x, y_m) over the M samples."""
    y = np.random.default_rng(5).normal(-1.0, 0.6, size=(150, 1))
    np.save(tmp_path / "y.npy", y)
    case = _case(tmp_path, extra=[])
    raw = dict(case.raw, target={"kind": "samples", "path": str(tmp_path / "y.npy"), "bandwidth": 1.0})
    case = Case.from_dict(raw)
    x = _sample(case, 200)
    vel = MMDVelocity(case, len(x), 0, "direct")
    out = np.empty_like(x)
    vel(x, out, 0.0, 0.0)
    k = vel.kernel
    ref = np.array([-k.gradient_x(xi, x).sum(axis=0) / len(x) + k.gradient_x(xi, y).sum(axis=0) / len(y)
                    for xi in x])
    assert np.max(np.abs(out - ref)) <= 4 * (len(x) + len(y)) * EPS


@pytest.mark.parametrize("dim", [1, 2])
def test_binned_velocity_is_second_order(tmp_path, dim):
    case = _case(tmp_path, dim)
    x = _sample(case, 2000)
    exact = np.empty_like(x)
    MMDVelocity(case, len(x), 0, "direct")(x, exact, 0.0, 0.0)
    errs = []
    for cps in (8, 16, 32):
        vel = MMDVelocity(case, len(x), 0, "binned", cells_per_sigma=cps)
        out = np.empty_like(x)
        vel(x, out, 0.0, 0.0)
        assert np.max(np.abs(out - vel.velocity_numpy(x))) <= 1e-13   # Numba deposit/read vs numpy
        errs.append(np.max(np.abs(out - exact)))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(orders - 2.0) <= 0.3), orders


def test_auto_choice_and_bad_options(tmp_path):
    case = _case(tmp_path)
    assert MMDVelocity(case, 20, 0, "auto").method == "direct"
    assert MMDVelocity(case, 100_000, 0, "auto").method == "binned"
    with pytest.raises(InputError, match="mmd-velocity"):
        MMDVelocity(case, 10, 0, "fast")
    with pytest.raises(InputError, match="interacting"):
        solve_particles(case, n=10, bandwidth=0.1)
    with pytest.raises(InputError, match="kernel flows"):
        solve_particles(Case.from_toml(os.path.join(EXAMPLES, "kl_gaussian.toml")), n=10, mmd_velocity="direct")


@pytest.mark.parametrize("example, n_dirs", [("mmd_1d.toml", 0), ("mmd_2d.toml", 50)])
def test_particles_beat_the_iid_floor_against_the_grid_solver(example, n_dirs):
    """MATH.md section 9 (iii): W1(particles, grid solution) <= the 95% i.i.d. floor at N = 10^4."""
    case = Case.from_toml(os.path.join(EXAMPLES, example))
    pde = solve_case_transport(case)
    res = solve_particles(case, n=10_000, seed=3)
    for k in range(1, len(res.t)):
        rho = pde.rho[k]
        w1 = metrics.w1_to_density(res.positions[k], pde.grid, rho, n_dirs=max(n_dirs, 1))
        floor = metrics.mc_floor_w1(pde.grid, rho, 10_000, seeds=10, n_dirs=max(n_dirs, 1))
        print(f"{example} t = {res.t[k]:g}: W1 {w1:.4g}, floor {floor:.4g}, ratio {w1 / floor:.2f}")
        assert w1 <= floor


def test_fixed_seed_is_deterministic(tmp_path):
    case = _case(tmp_path, extra=["[flow.noise]", "level = 0.3", "until = 0.5"])
    a = solve_particles(case, n=500, seed=7, mmd_velocity="binned")
    b = solve_particles(case, n=500, seed=7, mmd_velocity="binned")
    c = solve_particles(case, n=500, seed=8, mmd_velocity="binned")
    assert np.array_equal(a.positions, b.positions)
    assert not np.array_equal(a.positions[-1], c.positions[-1])
    assert a.meta["mmd_velocity"] == "binned" and list(a.t) == [0.0, 0.5, 1.0]


def test_noise_mean_is_the_smoothed_kernel_flow(tmp_path):
    """E_U v(X + beta U) = -grad (g_beta * f)(X): the flow of GaussianKernel.smoothed(beta)."""
    beta = 0.4
    case = _case(tmp_path, extra=["[flow.noise]", f"level = {beta}", "until = 10.0"], cells=120)
    x = _sample(case, 200)
    vel = MMDVelocity(case, len(x), 11, "direct")
    draws = 2000
    v = np.empty((draws,) + x.shape)
    for k in range(draws):
        vel(x, v[k], 0.0, 1e-3 * k)
    src, w, _ = vel.sources(x)
    smooth = direct_velocity_numpy(x, src, w, vel.kernel.smoothed(beta))
    z = (v.mean(axis=0) - smooth) / (v.std(axis=0, ddof=1) / np.sqrt(draws))
    assert np.all(np.abs(z[:3]) <= 3.0), z[:3]
    chi2 = np.mean(z ** 2)                  # ~ chi^2_n / n: mean 1, standard error sqrt(2 / n)
    assert abs(chi2 - 1.0) <= 3 * np.sqrt(2.0 / z.size), chi2
    se = v.std(axis=0, ddof=1) / np.sqrt(draws)   # the test can tell the two kernels apart:
    assert np.max(np.abs(v.mean(axis=0) - direct_velocity(x, src, w, vel.kernel)) / se) > 10.0


def test_critic_velocity_is_grad_f_star(tmp_path):
    """With [flow.critic], v = +grad f*, f* from SobolevCritic on the particles' CIC density."""
    case = _case(tmp_path, extra=["[flow.critic]", 'kind = "sobolev"', "lambda = 0.5"], cells=120)
    x = _sample(case, 400)
    vel = MMDVelocity(case, len(x), 0, "direct")
    out = np.empty_like(x)
    vel(x, out, 0.0, 0.0)
    grid = case.grid
    rho = linear_binning(x, grid) / (len(x) * grid.cell_volume)
    flow = MMDFlow(GaussianKernel(1.0), critic=0.5)
    ref = flow.velocity_at(x, rho, vel.rho_d, flow.convolution(grid))
    assert np.max(np.abs(out - ref)) <= 1e-10 * np.max(np.abs(ref))   # CG tolerance 1e-12


def test_cli_particles_then_compare(tmp_path, capsys):
    ex = os.path.join(EXAMPLES, "mmd_1d.toml")
    p, r = str(tmp_path / "p.npz"), str(tmp_path / "r.npz")
    assert main(["particles", ex, "--out", p, "--n", "400", "--quiet", "--mmd-velocity", "direct"]) == 0
    assert main(["solve", ex, "--out", r, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["compare", r, p, "--floor", "10"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [float(row[0]) for row in rows] == [0.0, 1.0, 5.0, 20.0]
    assert all(float(row[2]) <= float(row[4]) for row in rows)   # W1 <= the 95% i.i.d. floor
