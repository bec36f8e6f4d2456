"""Pieces of the MMD studies (fpsolver/studies/mmd.py) and of benchmarks/bench_mmd_grid.py."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from fpsolver.flows.kernel import GaussianKernel, MMDFlow
from fpsolver.fv.transport import cfl_step, face_velocities, transport_step
from fpsolver.studies.mmd import Q_COLLAPSE, _coarsen, w1_nested_1d

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_w1_of_a_shifted_box_is_the_shift():
    """W1 between the indicator of [0, 1] and of [s, 1 + s] is s (exact for cell-aligned boxes)."""
    n = 64
    coarse = np.zeros(n)
    coarse[16:32] = 1.0                        # [0, 1] on [-1, 3], dx = 1/16
    fine = np.zeros(2 * n)
    fine[36:68] = 1.0                          # shifted by 4 fine cells = 1/8
    assert w1_nested_1d(coarse, fine, -1.0, 3.0) == pytest.approx(0.125, rel=1e-12)
    assert w1_nested_1d(coarse, np.repeat(coarse, 2), -1.0, 3.0) == pytest.approx(0.0, abs=1e-15)


def test_coarsen_keeps_cell_averages():
    rng = np.random.default_rng(1)
    a = rng.random((8, 8))
    c = _coarsen(a, 2)
    assert c.shape == (4, 4) and c[1, 2] == pytest.approx(a[2:4, 4:6].mean(), rel=1e-15)
    assert _coarsen(np.arange(6.0), 1).tolist() == [0.5, 2.5, 4.5]


def test_collapse_bound_is_sigma_cubed_over_sigma_squared_plus_one():
    """q < sigma^3 / (sigma^2 + 1)^(3/2) at sigma = 2: 8 / 5^(3/2) (MATH.md section 9)."""
    assert Q_COLLAPSE == pytest.approx(8.0 / 5.0 ** 1.5, rel=1e-15)


@pytest.mark.parametrize("order,scheme", [(1, "euler"), (2, "ssp-rk2")])
def test_benchmark_plain_step_equals_ours(order, scheme):
    """The benchmark's numpy step (separable matrix products) and transport_step with the FFT
    witness agree to round-off (the two convolutions differ by ~1e-16 of the summed terms)."""
    path = os.path.join(ROOT, "benchmarks", "bench_mmd_grid.py")
    spec = importlib.util.spec_from_file_location("bench_mmd_grid", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    grid, rho, rho_d = bench._problem(32)
    flow = MMDFlow(GaussianKernel(1.0))
    conv = flow.convolution(grid)
    pot = lambda r: flow.potential(r, rho_d, conv)  # noqa: E731
    dt = 0.5 * cfl_step(face_velocities(pot(rho), grid), grid, order)
    kmats = [np.exp(-(c[:, None] - c[None, :]) ** 2 / 2.0) for c in grid.centres]
    ours = transport_step(rho, pot, grid, dt, order, scheme)
    plain = bench.plain_step(rho, rho_d, kmats, grid, dt, order)
    assert np.max(np.abs(ours - plain)) <= 1e-13 * np.max(rho)
