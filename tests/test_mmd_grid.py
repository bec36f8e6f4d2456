"""The MMD flow on the grid (MATH.md section 9): case files, the transport solve, its guarantees.

d_t rho = div(rho grad f), f = k * (rho - rho_d), by the upwind transport scheme of
fpsolver.fv.transport with the FFT potential of fpsolver.flows.kernel (fpsolver.fv.kernel_solve).
"""
from __future__ import annotations

import numpy as np
import pytest

from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.errors import CaseError
from fpsolver.fv import solve_case

EPS = np.finfo(float).eps


def _raw(n=200, dim=1, scheme="muscl", T=0.5, dt=None, sigma=1.0, **flow):
    return {"domain": {"lower": [-6.0] * dim, "upper": [6.0] * dim, "cells": [n] * dim},
            "target": {"kind": "gaussian", "mean": [0.0] * dim, "std": [1.0] * dim},
            "initial": {"kind": "gaussian", "mean": [1.0] + [0.5] * (dim - 1), "std": [0.7] * dim},
            "flow": {"kind": "mmd", "kernel": {"kind": "gaussian", "sigma": sigma}, **flow},
            "time": {"dt": 0.5 / n if dt is None else dt, "save_times": [T / 2, T], "scheme": scheme}}


def _agg(rho, f):
    return rho.reshape(-1, f).mean(axis=1)


@pytest.mark.parametrize("change,key", [
    (lambda f: f.pop("kernel"), "flow.kernel"),
    (lambda f: f["kernel"].update(sigma=0.0), "flow.kernel.sigma"),
    (lambda f: f["kernel"].update(kind="laplace"), "flow.kernel.kind"),
    (lambda f: f.update(noise={"level": -1.0, "until": 1.0}), "flow.noise.level"),
    (lambda f: f.update(noise={"level": 0.5}), "flow.noise.until"),
    (lambda f: f.update(critic={"kind": "sobolev", "lambda": 0.0}), "flow.critic.lambda"),
    (lambda f: f.update(kind="js"), "flow.kernel"),
])
def test_case_file_errors_name_the_key(change, key):
    raw = _raw()
    change(raw["flow"])
    with pytest.raises(CaseError, match=key.replace(".", r"\.")):
        Case.from_dict(raw)


def test_kernel_flows_take_the_transport_schemes():
    assert Case.from_dict(_raw()).scheme == "muscl"
    raw = _raw()
    raw["time"]["scheme"] = "bdf2"
    with pytest.raises(CaseError, match="time.scheme"):
        Case.from_dict(raw)


@pytest.mark.parametrize("scheme,order", [("upwind", 1.0), ("muscl", 2.0)])
def test_observed_order_in_space_and_time(scheme, order):
    """Self-convergence (dt = h / 2, so the CFL-free dt shrinks with h): the L1 distance between
    the solutions on n and 2n cells (the fine one averaged onto the coarse cells) falls at the
    scheme's order, 1 +- 0.15 for upwind + Euler, 2 +- 0.15 for MUSCL + SSP-RK2 (smooth solution),
    between 200 / 400 / 800 / 1600 cells."""
    ns = (200, 400, 800, 1600)
    rhos = [solve_case(Case.from_dict(_raw(n, scheme=scheme))).rho[-1] for n in ns]
    d = np.array([np.sum(np.abs(a - _agg(b, 2))) * 12.0 / n for a, b, n in zip(rhos[:-1], rhos[1:], ns)])
    assert np.all(np.abs(np.log2(d[:-1] / d[1:]) - order) <= 0.15), d


@pytest.mark.parametrize("dim", [1, 2])
def test_mass_positivity_and_energy(dim):
    """Mass to round-off, rho >= 0, and the energy 1/2 MMD^2 non-increasing at every step (no
    noise) and equal to the direct double sum 1/2 sum_ij (rho - rho_d)_i k_ij (rho - rho_d)_j |K|^2."""
    n = 200 if dim == 1 else 40
    case = Case.from_dict(_raw(n, dim=dim, T=2.0, dt=0.05))
    res = solve_case(case)
    m = res.meta
    assert m["mass_error"] <= 1e-13 and np.all(res.rho >= 0) and m["backend"] == "fv-transport"
    e = np.array(m["energy"])
    assert np.all(np.diff(e) <= 8 * EPS * e[0]) and e[-1] < 0.5 * e[0]
    pts = case.grid.points()
    k = np.exp(-np.sum((pts[:, None, :] - pts[None, :, :]) ** 2, axis=-1) / 2.0)
    c = (res.rho[-1] - res.rho_d).ravel() * case.grid.cell_volume
    assert e[-1] == pytest.approx(0.5 * c @ k @ c, rel=1e-12)
    assert m["step_times"][-1] == pytest.approx(2.0, abs=1e-14) and len(m["step_times"]) == m["steps"] + 1


def test_noise_switches_off_at_its_time():
    """[flow.noise] level = 0.5 until 0.3: the run splits there, every save time is kept, mass
    stays exact, and from the switch-off on the energy of k is non-increasing again."""
    case = Case.from_dict(_raw(200, T=1.0, dt=0.01, noise={"level": 0.5, "until": 0.3}))
    res = solve_case(case)
    m = res.meta
    assert res.t.tolist() == [0.0, 0.5, 1.0] and m["noise_until"] == 0.3 and m["mass_error"] <= 1e-13
    t, e = np.array(m["step_times"]), np.array(m["energy"])
    after = t >= 0.3 - 1e-12
    assert np.all(np.diff(e[after]) <= 8 * EPS * e[0])


def test_sobolev_critic_tends_to_the_mmd_flow_with_time_scaled_by_lambda():
    """lambda f* -> k * (rho_d - rho) as lambda -> inf (MATH.md section 9): the critic flow to
    time lambda T with steps lambda dt is the MMD flow to T up to O(1 / lambda), so the distance
    falls tenfold from lambda = 100 to 1000 (log10 ratio 1 +- 0.15)."""
    plain = solve_case(Case.from_dict(_raw(200, T=0.4, dt=0.01))).rho[-1]
    dist = []
    for lam in (100.0, 1000.0):
        raw = _raw(200, T=0.4 * lam, dt=0.01 * lam, critic={"kind": "sobolev", "lambda": lam})
        dist.append(np.sum(np.abs(solve_case(Case.from_dict(raw)).rho[-1] - plain)) * 12.0 / 200)
    assert abs(np.log10(dist[0] / dist[1]) - 1.0) <= 0.15, dist


def test_commands_without_kernel_flows_say_so_in_one_line(tmp_path, capsys):
    """Particles run kernel flows; the FiPy backend refuses them in one line."""
    path = tmp_path / "mmd.toml"
    lines = ["[domain]", "lower = [-6.0]", "upper = [6.0]", "cells = [100]",
             "[target]", 'kind = "gaussian"', "mean = [0.0]", "std = [1.0]",
             "[initial]", 'kind = "gaussian"', "mean = [1.0]", "std = [0.7]",
             "[flow]", 'kind = "mmd"', "[flow.kernel]", 'kind = "gaussian"', "sigma = 1.0",
             "[time]", "dt = 0.005", "save_times = [0.25, 0.5]", 'scheme = "muscl"']
    path.write_text("\n".join(lines) + "\n")
    assert main(["particles", str(path), "--out", str(tmp_path / "p.npz"), "--quiet", "--n", "200"]) == 0
    capsys.readouterr()
    assert main(["solve", str(path), "--out", str(tmp_path / "f.npz"), "--quiet", "--backend", "fipy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fipy backend" in err[0]
    assert main(["solve", str(path), "--out", str(tmp_path / "r.npz"), "--quiet"]) == 0
