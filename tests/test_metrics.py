"""Metrics: exact values on known cases, and cross-checks against independent computations."""
import numpy as np
import pytest
from scipy import stats
from scipy.special import comb

from fpsolver import metrics as M
from fpsolver.errors import InputError
from fpsolver.flows import get_flow
from fpsolver.grid import Grid

UNIT = Grid((0.0,), (1.0,), (10,))


def _quantile_w1(samples, grid, rho):
    """W1 = int_0^1 |Q_N(u) - Q_rho(u)| du, integrated exactly in u (independent of the CDF
    code): on each piece between the jumps i/N of Q_N and the knots F_k of Q_rho, Q_N is a
    constant and Q_rho linear."""
    F = np.concatenate([[0.0], np.cumsum(rho)]) / np.sum(rho)
    s = np.sort(samples)
    u = np.unique(np.concatenate([F, np.arange(s.size + 1) / s.size]))
    c = s[np.minimum((0.5 * (u[:-1] + u[1:]) * s.size).astype(int), s.size - 1)]
    g0 = np.interp(u[:-1], F, grid.edges[0]) - c
    g1 = np.interp(u[1:], F, grid.edges[0]) - c
    same = g0 * g1 >= 0
    piece = np.where(same, np.abs(g0 + g1) / 2,
                     (g0**2 + g1**2) / (2 * np.maximum(np.abs(g0) + np.abs(g1), 1e-300)))
    return np.sum(piece * np.diff(u))


def _trapezoid_cdf(x, a, b):
    """CDF at x of U(-a/2, a/2) + U(-b/2, b/2), a >= b > 0 (closed form)."""
    y = np.clip(x + 0.5 * (a + b), 0.0, a + b)
    return np.where(y < b, y**2 / (2 * a * b),
                    np.where(y < a, (y - 0.5 * b) / a, 1.0 - (a + b - y) ** 2 / (2 * a * b)))


# ------------------------------------------------------------------ 1D, exact values

def test_point_mass_against_uniform():
    # int_0^1 |H(x - x0) - x| dx = x0^2/2 + (1 - x0)^2/2; sup = max(x0, 1 - x0)
    rho = np.ones(10)
    for x0 in (0.5, 0.13, 0.9):
        assert M.w1_samples_density_1d(np.array([x0]), UNIT, rho) == pytest.approx(
            x0**2 / 2 + (1 - x0) ** 2 / 2, abs=1e-15)
        assert M.ks_1d(np.array([x0]), UNIT, rho) == pytest.approx(max(x0, 1 - x0), abs=1e-15)


def test_cell_centres_against_uniform():
    # each cell contributes 2 * (1/2)(h/2)(1/(2n)): W1 = h/4 = 1/(4n); KS = 1/(2n)
    g = Grid((0.0,), (1.0,), (50,))
    assert M.w1_samples_density_1d(g.centres[0], g, np.ones(50)) == pytest.approx(1 / 200, rel=1e-12)
    assert M.ks_1d(g.centres[0], g, np.ones(50)) == pytest.approx(1 / 100, rel=1e-12)


def test_shifted_quantile_points_give_the_shift():
    # midpoints of [c, 1 + c] vs U(0, 1): Q_N(u) - u >= c - 1/(2n) > 0, so W1 = c exactly
    g = Grid((0.0,), (2.0,), (40,))
    rho = np.where(g.centres[0] < 1.0, 1.0, 0.0)
    n, c = 1000, 0.37
    pts = c + (np.arange(n) + 0.5) / n
    assert M.w1_samples_density_1d(pts, g, rho) == pytest.approx(c, rel=1e-12)
    assert M.w1_samples_1d(pts, pts + 0.25) == pytest.approx(0.25, rel=1e-12)


def test_w1_density_matches_quantile_integral():
    rng = np.random.default_rng(3)
    g = Grid((-2.0,), (3.0,), (37,))
    rho = rng.uniform(0.1, 2.0, 37)
    x = np.concatenate([rng.normal(size=400), g.edges[0][:7], [0.1, 0.1, 0.1], [-2.5, 3.5]])
    assert M.w1_samples_density_1d(x, g, rho) == pytest.approx(_quantile_w1(x, g, rho), rel=1e-12)


def test_w1_samples_matches_scipy():
    rng = np.random.default_rng(4)
    a = np.round(rng.normal(size=300), 2)          # ties inside and across the samples
    b = np.round(rng.uniform(size=777), 2)
    assert M.w1_samples_1d(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)


def test_ks_matches_scipy():
    rng = np.random.default_rng(5)
    g = Grid((-3.0,), (3.0,), (60,))
    rho = np.exp(-g.centres[0] ** 2) + 0.05
    F = np.concatenate([[0.0], np.cumsum(rho)]) / rho.sum()
    x = rng.normal(scale=0.8, size=2000)
    expect = stats.kstest(x, lambda z: np.interp(z, g.edges[0], F)).statistic
    assert M.ks_1d(x, g, rho) == pytest.approx(expect, abs=1e-14)


def test_expected_w1_of_uniform_samples():
    # E W1 = int_0^1 E|Bin(n, x)/n - x| dx, integrated exactly (Gauss-Legendre per piece)
    n = 10
    nodes, weights = np.polynomial.legendre.leggauss(20)
    expect = 0.0
    for j in range(n):
        x = (j + 0.5 + 0.5 * nodes) / n
        k = np.arange(n + 1)[:, None]
        pmf = comb(n, k) * x**k * (1 - x) ** (n - k)
        expect += np.sum(weights / (2 * n) * np.sum(pmf * np.abs(k / n - x), axis=0))
    rho = np.ones(10)
    w = np.array([M.w1_samples_density_1d(np.random.default_rng(s).uniform(size=n), UNIT, rho)
                  for s in range(4000)])
    assert abs(w.mean() - expect) < 4 * w.std() / np.sqrt(w.size)
    assert expect == pytest.approx(np.sqrt(np.pi / 32) / np.sqrt(n), rel=0.15)  # large-n limit


# ------------------------------------------------------------------ histogram, L1, energy

def test_histogram_l1():
    g = Grid((0.0,), (1.0,), (8,))
    counts = np.array([1, 0, 3, 2, 2, 0, 1, 1])
    pts = np.repeat(g.centres[0], counts)
    rho = counts / (counts.sum() * g.cell_volume)
    assert M.histogram_l1(pts, g, rho) == 0.0
    # everything in the first cell vs uniform: (1/h - 1) h + (1 - h) = 2 - 2h
    assert M.histogram_l1(np.full(5, 0.01), g, np.ones(8)) == pytest.approx(2 - 2 / 8, rel=1e-14)
    # walls belong to the edge cells
    assert M.histogram_l1(np.array([0.0, 1.0]), g, np.array([4.0, 0, 0, 0, 0, 0, 0, 4.0])) == 0.0


def test_histogram_l1_2d_and_l1_density():
    g = Grid((0.0, 0.0), (2.0, 1.0), (4, 2))
    counts = np.array([[1, 0], [2, 3], [0, 0], [1, 1]])
    pts = np.repeat(g.points(), counts.ravel(), axis=0)
    assert M.histogram_l1(pts, g, counts / (counts.sum() * g.cell_volume)) == 0.0
    a, b = np.ones((4, 2)), np.zeros((4, 2))
    assert M.l1_density(a, b, g) == pytest.approx(2.0, rel=1e-15)


def test_energy_delegates_to_flow():
    g = Grid((0.0,), (1.0,), (20,))
    rho_d = 1.0 + 0.5 * np.sin(2 * np.pi * g.centres[0])
    rho = 1.0 + 0.3 * np.cos(2 * np.pi * g.centres[0])
    kl = np.sum(rho * np.log(rho / rho_d)) * g.cell_volume   # KL(rho || rho_d), both unit mass
    assert M.energy(rho, rho_d, "kl", g) == pytest.approx(kl, rel=1e-12)
    assert M.energy(rho_d, rho_d, get_flow("js"), g) == pytest.approx(0.0, abs=1e-15)


# ------------------------------------------------------------------ 2D, projections and slices

def test_projected_point_against_uniform_square():
    # W1(delta_centre, P_theta U(square)) = E|U a + V b| = a/4 + b^2/(12 a), a = max(|c|,|s|)
    g = Grid((0.0, 0.0), (1.0, 1.0), (2, 2))
    pt = np.array([[0.5, 0.5]])
    for theta in (0.3, np.pi / 4, 1.2, 2.5):
        a, b = sorted((abs(np.cos(theta)), abs(np.sin(theta))), reverse=True)
        assert M.w1_projected(pt, g, np.ones((2, 2)), theta) == pytest.approx(
            a / 4 + b**2 / (12 * a), rel=1e-12)
    # axis directions: the floored width moves W1 by O(1e-8) relative
    for theta in (0.0, np.pi / 2):
        assert M.w1_projected(pt, g, np.ones((2, 2)), theta) == pytest.approx(0.25, rel=1e-8)


def test_projected_cdf_against_trapezoids():
    rng = np.random.default_rng(6)
    g = Grid((-1.0, 0.0), (2.0, 1.0), (3, 2))
    rho = rng.uniform(0.2, 1.0, (3, 2))
    pts = rng.uniform(-1.2, 2.2, size=(7, 2))
    theta = 0.7
    c, s = np.cos(theta), np.sin(theta)
    a, b = sorted((g.spacing[0] * abs(c), g.spacing[1] * abs(s)), reverse=True)
    centres = g.points() @ np.array([c, s])
    m = (rho / rho.sum()).ravel()
    z = np.linspace(-3.0, 3.0, 1_000_001)
    F = sum(mk * _trapezoid_cdf(z - pk, a, b) for mk, pk in zip(m, centres))
    emp = np.searchsorted(np.sort(pts @ np.array([c, s])), z, side="right") / len(pts)
    brute = np.sum(np.abs(emp - F)[:-1] * np.diff(z))
    assert M.w1_projected(pts, g, rho, theta) == pytest.approx(brute, rel=1e-5)


def test_axis_projection_is_the_marginal():
    rng = np.random.default_rng(7)
    g = Grid((-3.0, -2.0), (3.0, 2.0), (64, 48))
    rho = rng.uniform(0.1, 1.0, g.shape)
    pts = M.sample_cell_density(g, rho, 20_000, rng)
    gx, gy = Grid((-3.0,), (3.0,), (64,)), Grid((-2.0,), (2.0,), (48,))
    assert abs(M.w1_projected(pts, g, rho, 0.0)
               - M.w1_samples_density_1d(pts[:, 0], gx, rho.sum(axis=1))) < 1e-9
    assert abs(M.w1_projected(pts, g, rho, np.pi / 2)
               - M.w1_samples_density_1d(pts[:, 1], gy, rho.sum(axis=0))) < 1e-9


def test_sliced_translation():
    # W1(theta) = |shift . theta|, so the slice mean is |shift| mean_k |cos(theta_k - phi)|
    pts = np.random.default_rng(8).normal(size=(3000, 2))
    shift = np.array([0.3, -0.4])
    phi = np.arctan2(shift[1], shift[0])
    for n_dirs, seed in ((100, None), (37, 11)):
        exact = 0.5 * np.mean(np.abs(np.cos(M.slice_angles(n_dirs, seed) - phi)))
        assert M.sliced_w1_samples(pts, pts + shift, n_dirs, seed) == pytest.approx(exact, rel=1e-12)
    # and the midpoint rule on the half circle is O(n^-2) from 2|shift|/pi
    assert M.sliced_w1_samples(pts, pts + shift, 100) == pytest.approx(2 * 0.5 / np.pi, rel=1e-3)


def test_sliced_point_against_uniform_square():
    g = Grid((0.0, 0.0), (1.0, 1.0), (2, 2))
    ang = M.slice_angles(64)
    a = np.maximum(np.abs(np.cos(ang)), np.abs(np.sin(ang)))
    b = np.minimum(np.abs(np.cos(ang)), np.abs(np.sin(ang)))
    expect = np.mean(a / 4 + b**2 / (12 * a))
    got = M.sliced_w1_2d(np.array([[0.5, 0.5]]), g, np.ones((2, 2)), n_dirs=64)
    assert got == pytest.approx(expect, rel=1e-12)


# ------------------------------------------------------------------ sampling and floors

def test_sample_cell_density_is_exact():
    # exact samples pass KS at level 1e-3: D < sqrt(-ln(5e-4)/2)/sqrt(N) = 1.95/sqrt(N)
    rng = np.random.default_rng(9)
    g = Grid((-4.0,), (4.0,), (80,))
    rho = np.exp(-(g.centres[0] - 1) ** 2) + 0.1 * (g.centres[0] < -3)
    x = M.sample_cell_density(g, rho, 100_000, rng)
    assert x.shape == (100_000, 1) and np.all((x >= -4) & (x <= 4))
    assert M.ks_1d(x, g, rho) < 1.95 / np.sqrt(1e5)
    g2 = Grid((-1.0, 0.0), (1.0, 3.0), (10, 12))
    rho2 = np.outer(np.arange(1, 11), np.ones(12))
    rho2[3] = 0.0
    y = M.sample_cell_density(g2, rho2, 100_000, rng)
    assert not np.any(M.cell_histogram(y, g2)[3])
    gx = Grid((-1.0,), (1.0,), (10,))
    assert M.ks_1d(y[:, 0], gx, rho2.sum(axis=1)) < 1.95 / np.sqrt(1e5)


def test_mc_floor_scales_like_inverse_sqrt_n():
    g = Grid((-4.0,), (4.0,), (200,))
    rho = np.exp(-0.5 * (g.centres[0] + 1.5) ** 2 / 0.25) + np.exp(-0.5 * (g.centres[0] - 1.5) ** 2 / 0.25)
    # W1 ~ n^(-1/2) (CLT), so the ratio of medians tends to (8000/2000)^(-1/2) = 1/2. A median of 200 draws
    # has relative standard error 1.25 CV / sqrt(200) ~ 4.3 % (CV of W1 here 0.49), so the ratio's is ~ 6 %:
    # +-0.1 is more than three standard errors
    small = M.mc_floor_w1(g, rho, 2_000, seeds=200, quantile=0.5)
    large = M.mc_floor_w1(g, rho, 8_000, seeds=range(1000, 1200), quantile=0.5)
    assert 0.4 < large / small < 0.6
    assert M.mc_floor_w1(g, rho, 2_000, seeds=200, quantile=0.5) == small   # deterministic
    assert M.mc_floor_w1(g, rho, 2_000, seeds=200, quantile=0.95) > small


def test_mc_floor_2d_is_sliced():
    g = Grid((-2.0, -2.0), (2.0, 2.0), (16, 16))
    rho = np.exp(-np.sum(g.points() ** 2, axis=1)).reshape(16, 16)
    floor = M.mc_floor_w1(g, rho, 4_000, seeds=[3], quantile=1.0, n_dirs=20)
    x = M.sample_cell_density(g, rho, 4_000, np.random.default_rng(3))
    assert floor == M.sliced_w1_2d(x, g, rho, n_dirs=20)


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="shape"):
        M.l1_density(np.ones(3), np.ones(10), UNIT)
    with pytest.raises(InputError, match="finite"):
        M.w1_samples_density_1d(np.array([np.nan]), UNIT, np.ones(10))
    with pytest.raises(InputError, match="non-empty"):
        M.ks_1d(np.zeros(0), UNIT, np.ones(10))
    with pytest.raises(InputError, match="zero mass"):
        M.w1_samples_density_1d(np.array([0.5]), UNIT, np.zeros(10))
    with pytest.raises(InputError, match="2D"):
        M.sliced_w1_2d(np.zeros((3, 2)), UNIT, np.ones(10))
