"""The explicit upwind / MUSCL transport scheme of fpsolver.fv.transport (MATH.md section 9).

Accuracy is measured on d rho/dt = div(rho grad phi) with the fixed phi = |x|^2/2: the velocity is
v = -x, characteristics X(t) = X(0) e^{-t}, and the exact solution is rho(t, x) = e^{d t} rho0(x e^t)
(componentwise in 2D). For rho0 = b((x - c)/r), b(s) = (1 - s^2)^4 on |s| < 1 (C^3, compact support
well inside the box, so the walls never see mass), the exact cell averages at time t are
(P(x_{i+1/2} e^t) - P(x_{i-1/2} e^t)) / dx with P the polynomial antiderivative of rho0: errors are
L1 distances of cell averages with no quadrature error. 2D uses the product of two such bumps.

Why this problem and these grids: minmod clips the slope to 0 at the maximum and takes the smaller
one-sided difference elsewhere; both errors are O(dx^2) in L1 but with a large constant while the
bump spans few cells, so fitted orders approach 2 from below (pair orders 1.73, 1.82, 1.89, 1.93 on 100..1600
cells for a bump of radius 0.8 on [-2, 2] at t = 0.5). A wide bump (radius 1.3 on [-1.5, 1.5]) at
t = 0.25, before the contraction e^{-t} narrows it much, is in the asymptotic range from 200 cells
(1D) and 80^2 cells (2D). The windows are those of theory: 1 +- 0.15 (upwind + Euler) and
2 +- 0.15 (MUSCL + SSP-RK2), for the least-squares fit and for every successive pair; dt follows the
CFL step, so dt ~ dx and the order is that of space and time together.
"""
from __future__ import annotations

import numpy as np
import pytest

from fpsolver.fv.transport import (CFL_LIMIT, CFLViolation, cfl_rate, cfl_step, face_velocities,
                                   transport_rhs, transport_rhs_numpy, transport_run, transport_step)
from fpsolver.grid import Grid

EPS = np.finfo(float).eps


# ---------------------------------------------------------------- helpers

def _bump_antiderivative(y, c, r):
    """P(y) = int_{-inf}^y (1 - s^2)^4 dx, s = (x - c)/r, clipped to the support."""
    s = np.clip((y - c) / r, -1.0, 1.0)
    return r * (s - 4 * s**3 / 3 + 6 * s**5 / 5 - 4 * s**7 / 7 + s**9 / 9)


def _exact_averages_1d(edges, t, c, r):
    """Cell averages of e^t rho0(x e^t): (P(b e^t) - P(a e^t)) / dx (max(0, .) drops -1e-17 roundings
    of equal values near the support's edge)."""
    e = edges * np.exp(t)
    return np.maximum(0.0, _bump_antiderivative(e[1:], c, r) - _bump_antiderivative(e[:-1], c, r)) \
        / np.diff(edges)


BUMPS = ((0.1, 1.3), (-0.1, 1.3))   # (centre, radius) per axis


def _exact_averages(grid: Grid, t: float) -> np.ndarray:
    factors = [_exact_averages_1d(grid.edges[a], t, *BUMPS[a]) for a in range(grid.dim)]
    return factors[0] if grid.dim == 1 else np.outer(*factors)


def _quadratic(grid: Grid) -> np.ndarray:
    mesh = np.meshgrid(*grid.centres, indexing="ij")
    return sum(m**2 for m in mesh) / 2


def _grid(dim: int, n: int, half: float = 1.5) -> Grid:
    return Grid((-half,) * dim, (half,) * dim, (n,) * dim)


def _fitted_orders(cells, errors):
    lc, le = np.log(np.asarray(cells, float)), np.log(np.asarray(errors, float))
    return -np.polyfit(lc, le, 1)[0], -np.diff(le) / np.diff(lc)


def _rough_start(grid: Grid, rng) -> np.ndarray:
    """A discontinuous, non-negative start: an off-centre block with random heights, zero elsewhere."""
    mesh = np.meshgrid(*grid.centres, indexing="ij")
    block = np.all([(m > -1.0) & (m < 0.2) for m in mesh], axis=0)
    return np.where(block, rng.uniform(0.2, 2.0, grid.shape), 0.0)


def _mmd_like_potential(grid: Grid):
    """phi = k * (rho - rho_d) by a dense Gaussian kernel sum (sigma = 0.5): nonlocal, with maxima from
    which the velocity diverges."""
    pts = grid.points()
    kmat = np.exp(-np.sum((pts[:, None] - pts[None]) ** 2, axis=2) / (2 * 0.5**2)) * grid.cell_volume
    target = np.exp(-np.sum((pts - 0.3) ** 2, axis=1) / (2 * 0.4**2))
    target /= target.sum() * grid.cell_volume
    return lambda rho: (kmat @ (rho.ravel() - target)).reshape(grid.shape)


POTENTIALS = {
    "quadratic": lambda g: (lambda rho, phi=_quadratic(g): phi),
    "wall": lambda g: (lambda rho, phi=-np.meshgrid(*g.centres, indexing="ij")[0]: phi),
    "mmd-like": _mmd_like_potential,
}


# ---------------------------------------------------------------- mass and positivity

@pytest.mark.parametrize("name", sorted(POTENTIALS))
@pytest.mark.parametrize("order,scheme", [(1, "euler"), (2, "ssp-rk2"), (2, "euler")])
@pytest.mark.parametrize("dim,n", [(1, 120), (2, 24)])
def test_mass_exact_and_density_nonnegative_at_every_step(dim, n, order, scheme, name):
    grid = _grid(dim, n)
    potential = POTENTIALS[name](grid)
    rho = _rough_start(grid, np.random.default_rng(7))
    mass0 = rho.sum()
    for _ in range(150):
        dt = cfl_step(face_velocities(potential(rho), grid), grid, order)
        rho = transport_step(rho, potential, grid, dt, order, scheme)
        assert rho.min() >= 0.0
        assert abs(rho.sum() - mass0) <= 1e-13 * mass0


@pytest.mark.parametrize("order", [1, 2])
def test_wall_collects_the_mass_pushed_against_it(order):
    """phi = -x: v = +1 carries everything to the right wall, whose zero flux keeps it there."""
    grid = _grid(1, 100)
    rho0 = _rough_start(grid, np.random.default_rng(3))
    saved, dts, _ = transport_run(rho0, lambda rho: -grid.centres[0], grid, [6.0], order=order)
    rho = saved[0]
    assert rho.min() >= 0.0
    assert abs(rho.sum() - rho0.sum()) <= 1e-13 * rho0.sum()
    assert rho[-1] > 0.999 * rho.sum()


# ---------------------------------------------------------------- observed orders

@pytest.mark.parametrize("dim,cells", [(1, (200, 400, 800, 1600)), (2, (80, 160, 320))])
@pytest.mark.parametrize("order,expected", [(1, 1.0), (2, 2.0)])
def test_observed_order_against_the_exact_contraction(dim, cells, order, expected):
    t_end, errors = 0.25, []
    for n in cells:
        grid = _grid(dim, n)
        phi = _quadratic(grid)
        saved, dts, _ = transport_run(_exact_averages(grid, 0.0), lambda rho: phi, grid, [t_end],
                                      order=order)
        errors.append(np.abs(saved[0] - _exact_averages(grid, t_end)).sum() * grid.cell_volume)
    fit, pairs = _fitted_orders(cells, errors)
    assert abs(fit - expected) <= 0.15, (fit, pairs, errors)
    assert np.all(np.abs(pairs - expected) <= 0.15), (fit, pairs, errors)


# ---------------------------------------------------------------- numba against numpy

@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("shape", [(37,), (23, 17)])
def test_numba_kernels_agree_with_the_numpy_reference(shape, order):
    rng = np.random.default_rng(11)
    grid = Grid((-1.0,) * len(shape), (2.0,) * len(shape), shape)
    rho = rng.uniform(0.0, 3.0, shape) * (rng.uniform(size=shape) > 0.3)
    phi = rng.normal(size=shape)
    fast, ref = transport_rhs(rho, phi, grid, order), transport_rhs_numpy(rho, phi, grid, order)
    scale = np.abs(rho).max() * max(np.abs(v).max() / h
                                    for v, h in zip(face_velocities(phi, grid), grid.spacing))
    np.testing.assert_allclose(fast, ref, rtol=0, atol=8 * EPS * scale)
    assert abs(ref.sum()) <= 64 * EPS * scale * ref.size   # the divergence telescopes


# ---------------------------------------------------------------- the CFL step

@pytest.mark.parametrize("order", [1, 2])
def test_cfl_step_for_converging_flow_is_the_dimension_summed_formula(order):
    """v = -x converges everywhere: dt = C / sum_a (max|v_a| / dx_a) in 1D and 2D (dx != dy)."""
    for grid in (Grid((-1.5,), (2.0,), (70,)), Grid((-1.5, -1.0), (2.0, 0.5), (70, 40))):
        vel = face_velocities(_quadratic(grid), grid)
        cfl = 0.7 * CFL_LIMIT[order]
        expected = cfl / sum(np.abs(v).max() / h for v, h in zip(vel, grid.spacing))
        assert cfl_step(vel, grid, order, cfl) == pytest.approx(expected, rel=1e-14)


def test_diverging_flow_needs_the_per_cell_outflow_rate():
    """phi = -|x| with the origin at a cell centre: the centre cell loses mass through both faces at
    speed 1, so the order-1 rate is 2/dx; dt = dx/max|v| (MATH.md's bound) drives it negative."""
    grid = Grid((-1.0,), (1.0,), (41,))
    phi = -np.abs(grid.centres[0])
    vel = face_velocities(phi, grid)
    dx = grid.spacing[0]
    assert cfl_rate(vel, grid, 1) == pytest.approx(2 / dx, rel=1e-14)
    assert cfl_rate(vel, grid, 2) == pytest.approx(1 / dx, rel=1e-14)
    rho = np.zeros(grid.shape)
    rho[20] = 1.0
    assert (rho + dx * transport_rhs(rho, phi, grid, 1)).min() < -0.5
    assert (rho + cfl_step(vel, grid, 1, 1.0) * transport_rhs(rho, phi, grid, 1)).min() >= 0.0
    with pytest.raises(CFLViolation, match="positivity limit"):
        transport_step(rho, lambda r: phi, grid, dx, order=1, scheme="euler")


def test_stage_two_velocity_is_held_to_the_cfl_limit_too():
    """A potential whose speed jumps with the wall mass: the step chosen from the stage-1 velocity
    breaks the limit at stage 2, transport_step refuses it, and transport_run shrinks dt instead."""
    grid = _grid(1, 60)
    x = grid.centres[0]
    calls = []

    def potential(rho):
        calls.append(1)
        return -x * (1.0 + 30.0 * rho[-1])   # v = 1 + 30 rho_wall, uniform

    rho0 = np.where((x > 0.5) & (x < 1.45), 1.0, 0.0)   # next to the right wall, wall cell empty
    vel = face_velocities(potential(rho0), grid)
    with pytest.raises(CFLViolation, match="second stage"):
        transport_step(rho0, potential, grid, cfl_step(vel, grid, 2), 2, "ssp-rk2")
    calls.clear()
    saved, dts, _ = transport_run(rho0, potential, grid, [0.02, 0.05], order=2)
    assert dts[0] < cfl_step(vel, grid, 2)   # the first step was shortened
    assert len(calls) > 2 * len(dts)         # retries (2 evaluations per accepted step otherwise)
    for rho in saved:
        assert rho.min() >= 0.0
        assert abs(rho.sum() - rho0.sum()) <= 1e-13 * rho0.sum()


# ---------------------------------------------------------------- the driver

def test_driver_lands_on_the_save_times_and_matches_manual_steps():
    grid = _grid(2, 20)
    phi = _quadratic(grid)
    rho0 = _exact_averages(grid, 0.0)
    times = [0.0, 0.05, 0.13]
    seen = []
    saved, dts, wall = transport_run(rho0, lambda r: phi, grid, times, order=2, dt_max=0.004,
                                     progress=lambda k, info: seen.append(k))
    assert len(saved) == 3 and np.array_equal(saved[0], rho0) and wall >= 0
    assert dts.max() <= 0.004 and len(seen) == len(dts)
    assert np.sum(dts) == pytest.approx(0.13, rel=1e-14)
    rho = rho0
    for dt in dts:
        rho = transport_step(rho, lambda r: phi, grid, dt, 2, "ssp-rk2")
    np.testing.assert_array_equal(rho, saved[-1])
    ends = np.cumsum(dts)
    assert np.min(np.abs(ends - 0.05)) <= 1e-15   # a step ends exactly at the middle save time


# ---------------------------------------------------------------- bad input

def test_bad_input_is_refused_with_a_clear_message():
    grid = _grid(2, 10)
    rho = np.ones(grid.shape)
    phi = _quadratic(grid)
    pot = lambda r: phi  # noqa: E731
    vel = face_velocities(phi, grid)
    cases = [
        (lambda: transport_step(np.ones((10, 9)), pot, grid, 0.01), "rho has shape"),
        (lambda: transport_step(rho, lambda r: phi[:-1], grid, 0.01), r"potential\(rho\) has shape"),
        (lambda: transport_step(rho, lambda r: phi * np.nan, grid, 0.01), "non-finite"),
        (lambda: transport_step(rho, pot, grid, 0.0), "dt must be positive"),
        (lambda: transport_step(rho, pot, grid, -1.0), "dt must be positive"),
        (lambda: transport_step(rho, pot, grid, 1.0), "positivity limit"),
        (lambda: transport_step(rho, pot, grid, 0.01, order=3), "order must be 1"),
        (lambda: transport_step(rho, pot, grid, 0.01, scheme="rk4"), "scheme must be"),
        (lambda: cfl_step(vel, grid, 2, 0.6), r"cfl must lie in \(0, 0.5\]"),
        (lambda: cfl_step(vel, grid, 1, 1.01), r"cfl must lie in \(0, 1.0\]"),
        (lambda: cfl_step(vel, grid, 1, 0.0), "cfl must lie"),
        (lambda: cfl_step(vel[:1], grid, 1), "one face-velocity array per axis"),
        (lambda: cfl_step([vel[1], vel[0]], grid, 1), "face velocities on axis 0"),
        (lambda: transport_run(rho, pot, grid, [0.2, 0.1]), "strictly increasing"),
        (lambda: transport_run(rho, pot, grid, [-0.1]), ">= 0"),
        (lambda: transport_run(-rho, pot, grid, [0.1]), "negative values"),
        (lambda: transport_run(rho, pot, grid, [0.1], cfl=0.8), "cfl must lie"),
        (lambda: transport_run(rho, pot, grid, [0.1], dt_max=0.0), "dt_max must be positive"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
