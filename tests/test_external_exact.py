"""External exact solutions: the formulas themselves, then the solver against them.

Formulas (fpsolver.exact_solutions) are checked independently of the solver: the PDE residual
by central differences in x and t, the no-flux condition at the walls by one-sided
differences, mass, the support, and the closed-form cell averages against adaptive quadrature.
Solver tolerances come from theory: order 2 +- 0.15 for the kl wall solution in space and BDF2
in time, 1 +- 0.15 for backward Euler; for Barenblatt (Lipschitz front) the L1-contraction bound
order >= 1 (fpsolver/studies/external.py), errors decreasing, mass error <= 1e-11.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from fpsolver.exact_solutions import (barenblatt, barenblatt_support_radius, barenblatt_time_of_radius,
                                      kl_exponential_target, kl_exponential_target_rate)
from fpsolver.grid import Grid
from fpsolver.studies import _common as C
from fpsolver.studies import external as X

C_1D, SHIFT, T = 0.5, 0.003, 0.01     # Barenblatt parameters of the formula tests


# ------------------------------------------------------------------ the formulas

def _bb(grid, t, **kw):
    return barenblatt(grid, t, c=C_1D, t_shift=SHIFT, average=False, **kw)


@pytest.mark.parametrize("dim, n", [(1, 4001), (2, 801)])
def test_barenblatt_solves_the_porous_medium_equation(dim, n):
    """rho_t = c^{-1} lap rho^2 inside the support, by central differences (dt = 1e-7)."""
    grid = Grid((-1.0,) * dim, (1.0,) * dim, (n,) * dim)
    h, dt, centre = grid.spacing[0], 1e-7, [0.1, -0.05][:dim]
    rho_t = (_bb(grid, T + dt, centre=centre) - _bb(grid, T - dt, centre=centre)) / (2 * dt)
    sq = np.pad(_bb(grid, T, centre=centre) ** 2, 1, mode="edge")
    inner = tuple(slice(1, -1) for _ in range(dim))
    lap = sum((np.roll(sq, 1, a) - 2 * sq + np.roll(sq, -1, a))[inner] for a in range(dim)) / h**2
    r = np.sqrt(sum(m * m for m in np.meshgrid(*[x - x0 for x, x0 in zip(grid.centres, centre)], indexing="ij")))
    R = barenblatt_support_radius(T, c=C_1D, t_shift=SHIFT, dim=dim)
    inside = r < R - 3 * h
    # rho^2 is a quartic in x inside: the 3-point Laplacian is off by h^2/12 d^4 rho^2, ~1e-6 relative
    assert np.max(np.abs(rho_t - lap / C_1D)[inside]) < 1e-4 * np.max(np.abs(rho_t))
    # exactly zero outside the support, positive inside
    rho = _bb(grid, T, centre=centre)
    assert np.all(rho[r > R] == 0) and np.all(rho[r < R] > 0)


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("mass", [1.0, 2.5])
def test_barenblatt_cell_averages_carry_the_mass(dim, mass):
    grid = Grid((-1.0,) * dim, (1.0,) * dim, (37,) * dim)
    t = barenblatt_time_of_radius(0.8, c=C_1D, mass=mass, dim=dim)      # support inside the box
    v = barenblatt(grid, t, c=C_1D, mass=mass, centre=[0.1, -0.05][:dim])
    assert grid.integrate(v) == pytest.approx(mass, rel=1e-13, abs=0)
    assert v.min() >= 0


def test_barenblatt_2d_cell_averages_match_quadrature():
    """The closed form (corner inclusion-exclusion) against adaptive quadrature on every cell."""
    grid = Grid((-1.0, -1.0), (1.0, 1.0), (6, 6))
    centre = (0.1, -0.05)
    v = barenblatt(grid, T, c=C_1D, t_shift=SHIFT, centre=centre)
    tau, k = (T + SHIFT) / C_1D, 1.0 / 16.0          # 2D, m = 2: alpha = 1/2, beta = 1/4, k = 1/16
    C0 = np.sqrt(2 * k / np.pi)                       # unit mass: M = pi C^2 / (2k)
    R2 = C0 * np.sqrt(tau) / k                        # support radius squared

    def rho(x, y):
        return tau ** -0.5 * max(C0 - k * ((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / np.sqrt(tau), 0.0)

    def inside(lo, hi, cuts):
        return [p for p in cuts if lo < p < hi] or None

    def row(y, a, b):   # int_a^b rho dx, split where the front crosses this row
        half = np.sqrt(max(R2 - (y - centre[1]) ** 2, 0.0))
        return integrate.quad(rho, a, b, args=(y,), points=inside(a, b, [centre[0] - half, centre[0] + half]),
                              epsabs=1e-14, epsrel=1e-12)[0]

    ex, ey = grid.edges
    for i in range(6):
        for j in range(6):
            cuts = [centre[1] + sgn * np.sqrt(max(R2 - (e - centre[0]) ** 2, 0.0))
                    for e in (ex[i], ex[i + 1], centre[0]) for sgn in (-1, 1)]
            ref = integrate.quad(row, ey[j], ey[j + 1], args=(ex[i], ex[i + 1]),
                                 points=inside(ey[j], ey[j + 1], cuts), epsabs=1e-14, epsrel=1e-12)[0]
            assert v[i, j] == pytest.approx(ref / grid.cell_volume, rel=1e-10, abs=1e-12)


def test_barenblatt_radius_and_time_are_inverse():
    for dim in (1, 2):
        t = barenblatt_time_of_radius(0.6, c=0.25, mass=1.5, dim=dim)
        assert barenblatt_support_radius(t, c=0.25, mass=1.5, dim=dim) == pytest.approx(0.6, rel=1e-13)


def test_barenblatt_rejects_bad_input():
    grid = Grid((-1.0,), (1.0,), (10,))
    with pytest.raises(ValueError, match="t \\+ t_shift"):
        barenblatt(grid, 0.0)
    with pytest.raises(ValueError, match="centre"):
        barenblatt(grid, 1.0, centre=[0.0, 0.0])
    with pytest.raises(ValueError, match="mass"):
        barenblatt(grid, 1.0, mass=0.0)


@pytest.mark.parametrize("g", [2.0, -3.0, 0.0])
def test_kl_wall_solution_solves_the_pde_with_no_flux(g):
    """u_t = u_xx - g u_x (central differences) and u_x - g u = 0 at both walls (one-sided)."""
    grid = Grid((0.0,), (1.0,), (4000,))
    h, dt, t = grid.spacing[0], 1e-7, 0.05
    u = kl_exponential_target(grid, t, g, average=False)
    u_t = (kl_exponential_target(grid, t + dt, g, average=False)
           - kl_exponential_target(grid, t - dt, g, average=False)) / (2 * dt)
    u_x = (u[2:] - u[:-2]) / (2 * h)
    u_xx = (u[2:] - 2 * u[1:-1] + u[:-2]) / h**2
    assert np.max(np.abs(u_t[1:-1] - u_xx + g * u_x)) < 1e-5 * np.max(np.abs(u_t))
    x = grid.centres[0]
    for idx, wall in ((slice(0, 4), 0.0), (slice(-4, None), 1.0)):
        p = np.polyfit(x[idx] - wall, u[idx], 3)          # cubic through 4 centres: u_x to O(h^3)
        flux = np.polyval(np.polyder(p), 0.0) - g * np.polyval(p, 0.0)
        assert abs(flux) < 1e-6 * np.max(np.abs(np.diff(u) / h))


@pytest.mark.parametrize("g", [2.0, -3.0, 1e-9, 0.0])
def test_kl_wall_solution_unit_mass_positive_and_tends_to_rho_d(g):
    grid = Grid((0.0,), (1.0,), (50,))
    for t in (1e-3, 0.05, 1.0):
        v = kl_exponential_target(grid, t, g)
        assert grid.integrate(v) == pytest.approx(1.0, abs=1e-14)
        assert v.min() > 0
    # cell averages of the limit rho_d = g e^{g x} / (e^g - 1) (g -> 0: uniform)
    e = grid.edges[0]
    h = grid.spacing[0]
    rho_d = np.exp(g * e[:-1]) * np.expm1(g * h) / np.expm1(g) / h if g else np.ones(50)
    assert kl_exponential_target_rate(g) * 5.0 > 45      # the transient is below e^{-45} by t = 5
    assert np.allclose(kl_exponential_target(grid, 5.0, g), rho_d, rtol=1e-12, atol=0)
    # averages against fine midpoint sums of the point values (independent of the antiderivative)
    fine = Grid((0.0,), (1.0,), (50 * 400,))
    pts = kl_exponential_target(fine, 0.05, g, average=False).reshape(50, 400).mean(axis=1)
    assert np.allclose(kl_exponential_target(grid, 0.05, g), pts, rtol=1e-8)


def test_kl_wall_solution_rejects_other_boxes():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        kl_exponential_target(Grid((0.0,), (2.0,), (10,)), 0.1, 1.0)


# ------------------------------------------------------------------ the solver against them

def test_kl_wall_solution_second_order_in_space():
    cells = X.kl_space_cells(quick=True)
    runs = [X.kl_run(n, X.kl_space_dt(n), "bdf2") for n in cells]
    h = 1.0 / np.array(cells)
    for k in range(len(X.KL_SAVE)):
        assert C.fit_slope(h, [r["errors"][k] for r in runs]) == pytest.approx(2.0, abs=0.15)
    assert all(r["rejected"] == 0 and r["mass_error"] <= 1e-11 for r in runs)


@pytest.mark.parametrize("scheme, order", [("backward-euler", 1.0), ("bdf2", 2.0)])
def test_kl_wall_solution_order_in_time(scheme, order):
    n, dts = X.kl_time_steps(quick=True)
    runs = [X.kl_run(n, dt, scheme) for dt in dts]
    for k in range(len(X.KL_SAVE)):
        assert C.fit_slope(dts, [r["errors"][k] for r in runs]) == pytest.approx(order, abs=0.15)
    assert all(r["rejected"] == 0 for r in runs)


@pytest.mark.parametrize("dim", [1, 2])
def test_barenblatt_converges_with_the_guaranteed_order(dim):
    """Backward Euler with dt ~ h^2: the exact L1-contractive resolvent, so order >= 1 is a theorem
    (fpsolver.studies.external); 1D on 50..400 cells, 2D on 16^2..64^2."""
    s = X.barenblatt_setups(quick=True)[dim - 1]
    runs = [X.barenblatt_run(s, n, scheme="backward-euler") for n in s.cells[:4 if dim == 1 else 3]]
    h = np.array([r["grid"].spacing[0] for r in runs])
    errs = np.array([r["errors"] for r in runs])
    assert np.all(errs[1:] < errs[:-1])
    for k in range(errs.shape[1]):
        assert C.fit_slope(h, errs[:, k]) >= X.BARENBLATT_ORDER_BOUND
    assert max(abs(x0) for x0 in s.centre) + s.radius(s.save_times[-1]) < s.half_width
    for r in runs:
        assert r["mass_error"] <= 1e-11 and r["rejected"] == 0 and r["min_rho"] > 0
    # the floor's L1 effect (contraction bound 2 eps |Omega|) is far below the discretisation error
    assert 2 * X.FLOOR * (2 * s.half_width) ** dim < 1e-3 * errs.min()
