"""The MMD family of MATH.md section 9 (fpsolver/flows/kernel.py) against direct sums, quadrature and dense solves."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss

from fpsolver.errors import SolverError
from fpsolver.flows.kernel import (GaussianKernel, KernelConvolution, MMDFlow, SobolevCritic,
                                   mmd_squared, weighted_divergence)
from fpsolver.fv.transport import face_velocities
from fpsolver.grid import Grid

GRIDS = [Grid((-3.0,), (4.0,), (173,)), Grid((-2.0, -1.0), (3.0, 2.5), (23, 31)), Grid((0.0, 0.0), (1.0, 1.0), (16, 16))]


def _gauss(grid, mean, sd):
    x = grid.points()
    v = np.exp(-np.sum((x - np.asarray(mean)) ** 2, axis=1) / (2 * sd ** 2)).reshape(grid.shape)
    return v / grid.integrate(v)


def _pair(grid):
    """A generator density rho and a target rho_d on the grid, unit mass each."""
    lo, hi = np.array(grid.lower), np.array(grid.upper)
    span = hi - lo
    rho = _gauss(grid, lo + 0.35 * span, 0.15 * span.min()) + 0.05 / np.prod(span)
    rho_d = 0.6 * _gauss(grid, lo + 0.6 * span, 0.12 * span.min()) + 0.4 * _gauss(grid, lo + 0.45 * span, 0.2 * span.min())
    return rho / grid.integrate(rho), rho_d / grid.integrate(rho_d)


def _dense_kernel(grid, kernel):
    """The O(n^2) matrix M_ij = k(x_i, x_j) |K| (reference only)."""
    x = grid.points()
    return kernel(x[:, None, :], x[None, :, :]) * grid.cell_volume


@pytest.mark.parametrize("grid", GRIDS, ids=["1d", "2d-nonsquare", "2d-square"])
@pytest.mark.parametrize("sigma", [0.07, 0.5, 3.0])
def test_fft_convolution_equals_the_direct_sum(grid, sigma):
    kernel = GaussianKernel(sigma)
    conv = KernelConvolution(grid, kernel)
    M = _dense_kernel(grid, kernel)
    rng = np.random.default_rng(1)
    for g in (rng.uniform(size=grid.shape), rng.standard_normal(grid.shape)):
        direct = (M @ g.ravel()).reshape(grid.shape)
        scale = (np.abs(M) @ np.abs(g).ravel()).max()      # size of the summed terms
        assert np.abs(conv(g) - direct).max() <= 1e-13 * scale
    # no wrap-around: a unit mass in the first cell is seen by the last one as k(L - h), not k(h)
    e = np.zeros(grid.shape)
    e[(0,) * grid.dim] = 1.0
    far = np.array(grid.upper) - np.array(grid.lower) - np.array(grid.spacing)
    far_value = conv(e)[(-1,) * grid.dim]
    assert abs(far_value - kernel(far, 0 * far) * grid.cell_volume) <= 1e-14 * grid.cell_volume


@pytest.mark.parametrize("grid", GRIDS[:2], ids=["1d", "2d"])
def test_energy_is_half_mmd_squared_of_the_cell_masses(grid):
    rho, rho_d = _pair(grid)
    kernel = GaussianKernel(0.4)
    flow = MMDFlow(kernel)
    conv = flow.convolution(grid)
    x = grid.points()
    w = np.concatenate([rho.ravel(), -rho_d.ravel()]) * grid.cell_volume
    pts = np.concatenate([x, x])
    double_sum = 0.5 * w @ kernel(pts[:, None, :], pts[None, :, :]) @ w
    assert flow.energy(rho, rho_d, conv) == pytest.approx(double_sum, rel=1e-12)
    assert flow.energy(rho, rho_d, conv) > 0.0
    assert mmd_squared(rho_d, rho_d, conv) == 0.0
    assert flow.potential(rho, rho_d, conv) == pytest.approx(conv(rho - rho_d), rel=0, abs=0)


@pytest.mark.parametrize("dim", [1, 2])
def test_velocity_at_points_is_minus_the_exact_gradient_sum(dim):
    grid = Grid((-2.0,) * dim, (2.5,) * dim, (40,) + (30,) * (dim - 1))
    rho, rho_d = _pair(grid)
    kernel = GaussianKernel(0.6)
    flow = MMDFlow(kernel)
    conv = flow.convolution(grid)
    pts = np.random.default_rng(2).uniform(-2.5, 3.0, size=(57, dim))
    e = (rho - rho_d).ravel() * grid.cell_volume
    ref = np.zeros((57, dim))
    for n, x in enumerate(pts):               # plain loop: -sum_j (x_j - x)/sigma^2 k(x, x_j) e_j
        d = x - grid.points()
        ref[n] = np.sum(d / 0.36 * np.exp(-np.sum(d * d, 1) / 0.72)[:, None] * e[:, None], axis=0)
    v = flow.velocity_at(pts, rho, rho_d, conv, chunk=1000)     # several blocks
    assert np.abs(v - ref).max() <= 1e-13 * np.abs(ref).max()
    # along -grad f the energy decreases: dF/dt = -int rho |grad f|^2 (centres)
    vc = flow.velocity_at(grid.points(), rho, rho_d, conv)
    assert -np.sum(rho.ravel() * np.sum(vc ** 2, 1)) * grid.cell_volume < 0.0


def test_face_velocity_is_a_second_order_gradient():
    """-(f_j - f_i)/dx is the centred difference of f_h(x) = sum_j k(x - x_j) e_j |K| at the face; its error
    against the exact -f_h'(x_face) is h^2 f_h'''/24: observed order 2 +- 0.15."""
    flow = MMDFlow(GaussianKernel(0.5))
    errors = []
    for n in (50, 100, 200):
        grid = Grid((-3.0,), (3.0,), (n,))
        rho, rho_d = _gauss(grid, [-0.5], 0.5), _gauss(grid, [0.7], 0.8)
        conv = flow.convolution(grid)
        vf = face_velocities(flow.potential(rho, rho_d, conv), grid)[0]
        exact = flow.velocity_at(grid.face_points(0), rho, rho_d, conv)[:, 0]
        errors.append(np.abs(vf - exact).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2.0) <= 0.15), orders
    g2 = Grid((0.0, 0.0), (1.0, 2.0), (5, 7))
    shapes = [v.shape for v in face_velocities(np.zeros(g2.shape), g2)]
    assert shapes == [g2.face_shape(0), g2.face_shape(1)]


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("sigma,beta", [(1.0, 0.5), (0.3, 2.0)])
def test_smoothed_kernel_is_the_gaussian_average_of_the_kernel(dim, sigma, beta):
    """(g_beta * k)(x) against Gauss-Hermite quadrature of int phi_beta(z) k(x + z) dz (and its gradient)."""
    kernel = GaussianKernel(sigma)
    smooth = kernel.smoothed(beta)
    assert smooth.sigma == pytest.approx(np.sqrt(sigma ** 2 + beta ** 2), rel=1e-15)
    assert smooth.amplitude(dim) == pytest.approx((sigma ** 2 / (sigma ** 2 + beta ** 2)) ** (dim / 2), rel=1e-15)
    z, w = hermegauss(80)                      # nodes for the weight exp(-t^2/2)
    nodes = np.stack(np.meshgrid(*([z] * dim), indexing="ij"), -1).reshape(-1, dim)
    weights = np.prod(np.stack(np.meshgrid(*([w] * dim), indexing="ij"), -1).reshape(-1, dim), axis=1)
    y = np.zeros(dim)
    for x in np.random.default_rng(3).uniform(-2, 2, size=(6, dim)):
        if beta <= sigma:      # the noise density is the narrower Gaussian: it is the weight, z = beta t
            w_n = weights / (2 * np.pi) ** (dim / 2)
            quad = w_n @ kernel(x + beta * nodes, y)
            quad_grad = w_n @ kernel.gradient_x(x + beta * nodes, y)
        else:                  # the kernel is: x + z = y + sigma t, phi_beta(y + sigma t - x) smooth in t
            u = y + sigma * nodes - x
            phi = np.exp(-np.sum(u * u, 1) / (2 * beta ** 2)) / (2 * np.pi * beta ** 2) ** (dim / 2)
            quad = sigma ** dim * weights @ phi
            quad_grad = sigma ** dim * weights @ (u / beta ** 2 * phi[:, None])
        assert smooth(x, y) == pytest.approx(quad, rel=1e-12, abs=1e-300)
        assert np.abs(smooth.gradient_x(x, y) - quad_grad).max() <= 1e-12 * np.abs(quad_grad).max()
    assert kernel.smoothed(0.0) is kernel
    # smoothing twice by b1 and b2 is smoothing once by sqrt(b1^2 + b2^2)
    twice = kernel.smoothed(0.3).smoothed(0.4)
    assert twice.sigma == pytest.approx(np.sqrt(sigma ** 2 + 0.25), rel=1e-15)
    assert twice.amplitude(dim) == pytest.approx(kernel.smoothed(0.5).amplitude(dim), rel=1e-14)


def test_noisy_flow_uses_the_smoothed_kernel():
    grid = Grid((-2.0,), (2.0,), (60,))
    rho, rho_d = _pair(grid)
    flow = MMDFlow(GaussianKernel(0.4), noise=0.3)
    conv = flow.convolution(grid)
    assert conv.kernel == GaussianKernel(0.4).smoothed(0.3)
    M = _dense_kernel(grid, GaussianKernel(0.5, 0.4))
    assert np.abs(flow.potential(rho, rho_d, conv) - M @ (rho - rho_d)).max() <= 1e-13 * np.abs(M).sum(1).max()
    with pytest.raises(ValueError, match="flow.convolution"):
        flow.potential(rho, rho_d, KernelConvolution(grid, GaussianKernel(0.4)))


def _dense_critic(grid, rho, rho_d, kernel, lam):
    """g and f* = M g from a dense solve of lam g - div_h(rho grad_h (M g)) = rho_d - rho."""
    M = _dense_kernel(grid, kernel)
    D = np.zeros((grid.size, grid.size))            # div_h(rho grad_h .), assembled face by face
    index = np.arange(grid.size).reshape(grid.shape)
    for a, h in enumerate(grid.spacing):
        lo = [slice(None)] * grid.dim
        hi = [slice(None)] * grid.dim
        lo[a], hi[a] = slice(0, -1), slice(1, None)
        for i, j in zip(index[tuple(lo)].ravel(), index[tuple(hi)].ravel()):
            w = 0.5 * (rho.flat[i] + rho.flat[j]) / h ** 2     # arithmetic-mean face density
            D[i, i] -= w
            D[i, j] += w
            D[j, j] -= w
            D[j, i] += w
    g = np.linalg.solve(lam * np.eye(grid.size) - D @ M, (rho_d - rho).ravel())
    return g.reshape(grid.shape), (M @ g).reshape(grid.shape)


@pytest.mark.parametrize("grid", [Grid((-3.0,), (3.0,), (60,)), Grid((-2.0, -1.5), (2.0, 2.0), (14, 11))], ids=["1d", "2d"])
@pytest.mark.parametrize("lam", [1e-2, 1.0])
def test_critic_matches_a_dense_solve(grid, lam):
    rho, rho_d = _pair(grid)
    kernel = GaussianKernel(0.5)
    conv = KernelConvolution(grid, kernel)
    sol = SobolevCritic(lam, tol=1e-13).solve(rho, rho_d, conv)
    _, f_ref = _dense_critic(grid, rho, rho_d, kernel, lam)
    assert np.abs(sol.critic - f_ref).max() <= 1e-10 * np.abs(f_ref).max()
    assert sol.residual <= 1e-13
    # the flux divergence is a no-flux conservative operator: it creates no mass
    assert abs(weighted_divergence(sol.critic, rho, grid).sum()) <= 1e-12 * np.abs(weighted_divergence(sol.critic, rho, grid)).sum()


def test_critic_error_obeys_the_kernel_norm_bound():
    """A loose tolerance leaves an error that must satisfy max|df*| <= sqrt(k(x,x)) ||s||_M / lam."""
    grid = Grid((-3.0,), (3.0,), (80,))
    rho, rho_d = _pair(grid)
    kernel, lam = GaussianKernel(0.4), 1e-2
    conv = KernelConvolution(grid, kernel)
    _, f_ref = _dense_critic(grid, rho, rho_d, kernel, lam)
    critic = SobolevCritic(lam, tol=1e-3)
    sol = critic.solve(rho, rho_d, conv)
    s = (rho_d - rho) - critic.operator(sol.coefficients, rho, conv)
    bound = np.sqrt(kernel.amplitude(1) * np.sum(s * conv(s)) * grid.cell_volume) / lam
    err = np.abs(sol.critic - f_ref).max()
    assert 0.0 < err <= bound
    assert err > 1e-12 * np.abs(f_ref).max()       # the check is not vacuous: the loose solve is visibly off


def test_critic_tends_to_the_scaled_mmd_witness_as_lambda_grows():
    """lam f* = -k*e - k*B*k*g with lam g -> -e: lam f* -> k*(rho_d - rho) with gap lam^-1 (k*B*k*e)."""
    grid = Grid((-3.0,), (3.0,), (100,))
    rho, rho_d = _pair(grid)
    flow = MMDFlow(GaussianKernel(0.5), critic=1e6)
    conv = flow.convolution(grid)
    witness = conv(rho_d - rho)
    f_star = -flow.potential(rho, rho_d, conv)
    assert np.abs(1e6 * f_star - witness).max() <= 1e-5 * np.abs(witness).max()
    first = -conv(weighted_divergence(conv(rho - rho_d), rho, grid))      # k * B * k * e, B = -div(rho grad)
    gap = 1e6 * (1e6 * f_star - witness)
    assert np.abs(gap - first).max() <= 1e-5 * np.abs(first).max()


def test_critic_direction_dissipates_the_mmd_energy():
    """Particles along +grad f* give d_t rho = -div_h(rho grad_h f*) and dF/dt = sum_i f_i (d_t rho)_i |K|,
    f = k * (rho - rho_d); MATH.md section 9 / SobolevCritic: -MMD^2 <= dF/dt < 0."""
    grid = Grid((-2.0, -2.0), (2.0, 2.0), (20, 18))
    rho, rho_d = _pair(grid)
    for lam in (1e-2, 1.0, 100.0):
        flow = MMDFlow(GaussianKernel(0.6), critic=SobolevCritic(lam))
        conv = flow.convolution(grid)
        f_star = -flow.potential(rho, rho_d, conv)
        drho = -weighted_divergence(f_star, rho, grid)
        dF = np.sum(conv(rho - rho_d) * drho) * grid.cell_volume
        mmd2 = mmd_squared(rho, rho_d, conv)
        assert -mmd2 * (1 + 1e-10) <= dF < 0.0
        # the exact point velocity is +grad f* too: it matches the face differences up to the centred-difference
        # error h^2 f'''/24, about (h / sigma)^2 / 8 = 1.4 % of the velocity for this Gaussian-smooth f*
        vf = face_velocities(flow.potential(rho, rho_d, conv), grid)
        vx = flow.velocity_at(grid.face_points(0), rho, rho_d, conv)[:, 0].reshape(grid.face_shape(0))
        assert np.abs(vx - vf[0]).max() <= 0.03 * np.abs(vf[0]).max()


def test_critic_cg_converges_on_200_cells_for_lambda_1e_3_to_10(capsys):
    grid = Grid((-5.0,), (5.0,), (200,))
    rho, rho_d = _gauss(grid, [1.5], 0.6), _gauss(grid, [0.0], 1.0)
    conv = KernelConvolution(grid, GaussianKernel(1.0))
    counts = {}
    for lam in (1e-3, 1e-2, 1e-1, 1.0, 10.0):
        sol = SobolevCritic(lam, tol=1e-12, maxiter=400).solve(rho, rho_d, conv)
        assert sol.residual <= 1e-12 and sol.euclidean_residual <= 1e-8
        counts[lam] = sol.iterations
    with capsys.disabled():
        print(f"\ncritic CG iterations (200 cells, sigma 1, tol 1e-12): {counts}")
    assert counts[10.0] <= counts[1e-3]


def test_bad_input_raises_value_error():
    grid = Grid((0.0,), (1.0,), (10,))
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="sigma"):
            GaussianKernel(bad)
    with pytest.raises(ValueError, match="noise"):
        GaussianKernel(1.0).smoothed(-0.1)
    with pytest.raises(ValueError, match="noise"):
        MMDFlow(GaussianKernel(1.0), noise=-1.0)
    for lam in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="lambda"):
            SobolevCritic(lam)
    with pytest.raises(ValueError, match="lambda"):
        MMDFlow(GaussianKernel(1.0), critic=0.0)
    flow = MMDFlow(GaussianKernel(0.2))
    conv = flow.convolution(grid)
    ok = np.ones(10)
    with pytest.raises(ValueError, match="shape"):
        conv(np.ones(11))
    with pytest.raises(ValueError, match="shape"):
        flow.energy(ok, np.ones((10, 1)), conv)
    with pytest.raises(ValueError, match="negative"):
        flow.potential(ok - 1.5, ok, conv)
    with pytest.raises(ValueError, match="negative"):
        SobolevCritic(1.0).solve(ok, -ok, conv)
    with pytest.raises(SolverError, match="maxiter"):
        SobolevCritic(1e-3, maxiter=1).solve(ok, ok + np.linspace(0, 1, 10), conv)
    with pytest.raises(ValueError, match="points"):
        flow.velocity_at(np.zeros((3, 2)), ok, ok, conv)
