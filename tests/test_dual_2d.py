"""Dual flows in 2D and with the kernel metric (MATH.md section 10): d_t f = kappa K[G(rho, f)],
(K g)(x) = int k(x, y) g(y) dy by the zero-padded FFT of fpsolver.flows.kernel."""
from __future__ import annotations

import numpy as np
import pytest

from fpsolver.case import Case
from fpsolver.dynamics import dual
from fpsolver.dynamics.grid import kernel_convolution, solve_case_dual
from fpsolver.dynamics.spec import DiscriminatorSpec
from fpsolver.flows import get_flow
from fpsolver.grid import Grid

EPS = np.finfo(float).eps


def _raw2(cells=(20, 24), metric="L2", rate=10.0, T=0.5, swap=False):
    lower, upper = [-5.0, -4.0], [5.0, 4.0]
    tm, ts, im, is_ = [0.0, 0.5], [1.0, 0.8], [0.8, -0.4], [1.0, 0.7]
    if swap:
        cells, lower, upper = cells[::-1], lower[::-1], upper[::-1]
        tm, ts, im, is_ = tm[::-1], ts[::-1], im[::-1], is_[::-1]
    disc = {"rate": rate, "metric": metric, "initial": "optimal" if metric == "L2" else "zero"}
    if metric == "kernel":
        disc["kernel"] = {"kind": "gaussian", "sigma": 0.7}
    return {"domain": {"lower": lower, "upper": upper, "cells": list(cells)},
            "target": {"kind": "gaussian", "mean": tm, "std": ts},
            "initial": {"kind": "gaussian", "mean": im, "std": is_},
            "flow": {"kind": "js"}, "discriminator": disc,
            "time": {"dt": T / 4, "save_times": [T / 2, T], "scheme": "upwind"}}


@pytest.mark.parametrize("metric", ["L2", "kernel"])
def test_swapping_the_axes_transposes_the_solution(metric):
    """The 2D scheme treats x and y alike: the case with the axes swapped gives the transposed
    densities and logits, to round-off (the two flux sums are added in the other order), with the
    same steps; non-square grids catch an axis mix-up."""
    a = solve_case_dual(Case.from_dict(_raw2(metric=metric)))
    b = solve_case_dual(Case.from_dict(_raw2(metric=metric, swap=True)))
    assert a.meta["steps"] == b.meta["steps"]
    assert np.max(np.abs(a.rho - np.swapaxes(b.rho, 1, 2))) <= 1e-12 * a.rho.max()
    assert np.max(np.abs(a.f - np.swapaxes(b.f, 1, 2))) <= 1e-12 * max(1.0, np.abs(a.f).max())


@pytest.mark.parametrize("metric", ["L2", "kernel"])
def test_mass_positivity_and_logit_in_2d(metric):
    """Mass exact to round-off (N eps), rho >= 0, f finite at every save time."""
    res = solve_case_dual(Case.from_dict(_raw2(cells=(32, 32), metric=metric, T=1.0)))
    assert res.meta["mass_error"] <= res.rho[0].size * EPS
    assert res.rho.min() >= 0.0 and np.all(np.isfinite(res.f))
    assert res.f.shape == res.rho.shape


def test_kernel_update_is_the_direct_sum():
    """f + dt kappa sum_j k(x_i - x_j) G_j |K| by the FFT equals the double sum in numpy (the FFT
    convolution's error is ~1e-15 of the summed terms)."""
    grid = Grid((-2.0, -1.0), (2.0, 1.5), (9, 7))
    rng = np.random.default_rng(0)
    f, rho, rho_d = rng.normal(size=grid.shape), rng.random(grid.shape), rng.random(grid.shape)
    spec = DiscriminatorSpec(3.0, "kernel", "zero", 0.6)
    conv = kernel_convolution(grid, spec)
    ours = dual.kernel_explicit_update(f, rho, rho_d, 0.1, 3.0, conv)
    pts = grid.points()
    kmat = np.exp(-np.sum((pts[:, None] - pts[None]) ** 2, axis=-1) / (2 * 0.6 ** 2))
    g = (rho_d * dual.expit(-f) - rho * dual.expit(f)).ravel()
    plain = f.ravel() + 0.1 * 3.0 * (kmat @ g) * grid.cell_volume
    assert np.max(np.abs(ours.ravel() - plain)) <= 1e-13 * np.sum(np.abs(kmat @ np.abs(g))) * grid.cell_volume


def test_kernel_step_limit_is_the_damping_limit():
    """With rho frozen, f^{k+1} = f^k + dt kappa K[G(f^k)] near its equilibrium is the linear map
    I - dt kappa K diag(a), eigenvalues 1 - dt kappa lambda, lambda <= |K| max(a) (Gershgorin on
    the row sums |K| of the positive kernel): under the step limit (dt kappa |K| max a <= 1) every
    eigenvalue lies in [0, 1), so the distance to the equilibrium never grows; at 2.5x the
    limit the top eigenvalue is below -1 and it does."""
    grid = Grid((-3.0,), (3.0,), (60,))
    x = grid.centres[0]
    rho_d, rho = np.exp(-x ** 2 / 2), np.exp(-(x - 0.5) ** 2 / 2)
    spec = DiscriminatorSpec(50.0, "kernel", "zero", 0.05)     # narrow kernel: K close to a multiple of I
    conv = kernel_convolution(grid, spec)
    flow = get_flow("js")
    star = np.log(rho_d / rho)
    limit = dual.step_limit(star, rho, rho_d, flow, spec.rate, grid.spacing, "kernel", conv)
    damp = 1.0 / (spec.rate * dual.kernel_norm(conv) * np.max(dual.expit(star) * dual.expit(-star) * (rho + rho_d)))
    assert limit <= damp * (1 + 1e-12)
    for factor, grows in ((1.0, False), (2.5, True)):
        f = star + 1e-6 * np.cos(7 * x)
        dist = [np.max(np.abs(f - star))]
        for _ in range(60):
            f = dual.kernel_explicit_update(f, rho, rho_d, factor * damp, spec.rate, conv)
            dist.append(np.max(np.abs(f - star)))
        assert (dist[-1] > 10 * dist[0]) == grows
        if not grows:
            assert np.all(np.diff(dist) <= 1e-12)
