"""The flow presets of MATH.md section 2: beta, beta', beta'', f, the velocity, and their log-space forms."""
from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest

from fpsolver.densities import GaussianMixture
from fpsolver.flows import PRESETS, custom_flow, get_flow

EPS = np.finfo(float).eps
FLOWS = sorted(PRESETS)
U_WIDE = np.concatenate([np.geomspace(1e-30, 1e30, 121), 1.0 + np.linspace(-0.5, 0.5, 21)])
U_BULK = np.geomspace(0.05, 20.0, 37)

# beta(u) from its definition (the MATH.md table), in decimal arithmetic with 100 digits: enough
# for 1 + u to be exact and for u - log(1 + u) ~ u^2/2 to keep 17 digits down to u = 1e-30
_EXACT_BETA = {
    "js": lambda u: (1 + u).ln() / 2,
    "reverse-kl": lambda u: u.ln(),
    "kl": lambda u: u,
    "chi2": lambda u: u * u,
    "non-saturating": lambda u: u - (1 + u).ln(),
}
# magnitude of the terms each preset's beta adds (what its evaluation round-off is relative to)
_BETA_TERMS = {
    "js": lambda u: np.abs(0.5 * np.log1p(u)),
    "reverse-kl": lambda u: np.abs(np.log(u)),
    "kl": lambda u: u,
    "chi2": lambda u: u * u,
    "non-saturating": lambda u: u + np.log1p(u),
}


W_WIDE = np.concatenate([np.linspace(-1800.0, 1800.0, 361), np.log(U_WIDE)])


@pytest.mark.parametrize("flow", FLOWS)
def test_log_space_forms_match_the_definitions_and_are_finite_everywhere(flow):
    """beta_log, log_p and w_of_beta against beta, beta' (where u is representable, to the
    condition of log) and finite for |w| up to 1800 (narrow targets: u = e^{+-1800})."""
    fl = PRESETS[flow]
    sign, lb = fl.beta_log(W_WIDE)
    lp = fl.log_p(W_WIDE)
    assert np.all(np.isfinite(lp)) and np.all(np.isfinite(lb) | (sign == 0))
    ok = np.abs(W_WIDE) < 300        # where the u-space references (u^2 for chi2) are representable
    u = np.exp(W_WIDE[ok])
    b = fl.beta(u)
    np.testing.assert_allclose(sign[ok] * np.exp(lb[ok]), b, rtol=64 * EPS * (1 + np.max(np.abs(W_WIDE[ok]))), atol=0)
    assert np.all(np.abs(lp[ok] - np.log(fl.dbeta(u) * u)) <= 8 * EPS * (1 + np.abs(W_WIDE[ok])))
    back = fl.w_of_beta(sign, lb)
    np.testing.assert_allclose(back, W_WIDE, rtol=16 * EPS, atol=16 * EPS)


@pytest.mark.parametrize("flow", FLOWS)
def test_beta_is_accurate_to_its_condition_number_over_sixty_decades(flow):
    """|beta - exact| <= 64 eps (1 + kappa) |exact|, kappa = |u beta'(u) / beta(u)| the condition
    number of beta (what any backward-stable evaluation achieves), for u from 1e-30 to 1e30,
    against 100-digit decimal arithmetic.

    Far tails have u ~ e^-40; a beta that cancels there (u - log1p(u) for u << 1: relative
    error ~ 4 eps / u, kappa ~ 2) turns the fluxes between tail cells into noise.
    """
    fl = PRESETS[flow]
    with localcontext() as ctx:
        ctx.prec = 100
        exact = np.array([float(_EXACT_BETA[flow](Decimal(float(u)))) for u in U_WIDE])
    got = fl.beta(U_WIDE)
    with np.errstate(divide="ignore"):
        kappa = np.where(exact != 0, np.abs(U_WIDE * fl.dbeta(U_WIDE) / np.where(exact != 0, exact, 1.0)), 0.0)
    bad = np.abs(got - exact) > 64 * EPS * (1 + kappa) * np.abs(exact)
    assert not bad.any(), f"{flow}: beta inaccurate at u = {U_WIDE[bad][:4]} (got {got[bad][:4]}, exact {exact[bad][:4]})"


@pytest.mark.parametrize("flow", FLOWS)
def test_derivatives_are_consistent(flow):
    """beta' and beta'' against central differences (step 1e-5 u: truncation ~1e-10 relative)."""
    fl = PRESETS[flow]
    u, d = U_BULK, 1e-5 * U_BULK
    np.testing.assert_allclose(fl.dbeta(u), (fl.beta(u + d) - fl.beta(u - d)) / (2 * d), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(fl.d2beta(u) * np.ones_like(u), (fl.dbeta(u + d) - fl.dbeta(u - d)) / (2 * d),
                               rtol=1e-8, atol=1e-9)
    assert np.all(fl.dbeta(U_WIDE[U_WIDE < 1e15]) > 0)


@pytest.mark.parametrize("flow", FLOWS)
def test_energy_density_has_f_second_derivative_beta_prime_over_u(flow):
    """f'' = beta'/u (MATH.md section 2), by the 5-point fourth-order stencil with step 1e-3 u:
    truncation ~ (1e-3)^4 relative, round-off ~ 16 eps |f| / (12 (1e-3 u)^2) < 1e-8 here."""
    fl = PRESETS[flow]
    f, u, d = fl.energy_density, U_BULK, 1e-3 * U_BULK
    num = (-f(u + 2 * d) + 16 * f(u + d) - 30 * f(u) + 16 * f(u - d) - f(u - 2 * d)) / (12 * d * d)
    np.testing.assert_allclose(num, fl.dbeta(u) / u, rtol=1e-6)


@pytest.mark.parametrize("flow", FLOWS)
def test_energy_density_is_zero_with_zero_slope_at_one_and_nonnegative(flow):
    f = PRESETS[flow].energy_density
    assert abs(float(f(np.array([1.0]))[0])) <= 2 * EPS
    d = 1e-4  # central difference: truncation d^2 |f'''| / 6 < 1e-8, round-off eps / d ~ 2e-12
    assert abs(float((f(np.array([1 + d])) - f(np.array([1 - d])))[0]) / (2 * d)) <= 1e-8
    assert np.all(f(U_WIDE[U_WIDE < 1e100]) >= -2 * EPS)


@pytest.mark.parametrize("flow,value", [("js", 0.25), ("reverse-kl", 1.0), ("kl", 1.0), ("chi2", 2.0),
                                        ("non-saturating", 0.5)])
def test_beta_prime_at_one_matches_the_table(flow, value):
    assert get_flow(flow).dbeta_at_one == value


# ---------------------------------------------------------------- velocity

def _fields(dim):
    rng = np.random.default_rng(7)
    pts = rng.uniform(-2.0, 2.0, size=(50, dim))
    if dim == 1:
        rho = GaussianMixture([0.7, 0.3], [[0.3], [-1.0]], [[[0.8]], [[0.3]]])
        rho_d = GaussianMixture([0.5, 0.5], [[-1.5], [1.5]], [[[0.25]], [[0.36]]])
    else:
        rho = GaussianMixture([1.0], [[0.0, -1.0]], [[[0.64, 0.1], [0.1, 0.5]]])
        rho_d = GaussianMixture([0.5, 0.5], [[-1.5, 0.0], [1.5, 0.5]],
                                [[[0.25, 0.0], [0.0, 0.25]], [[0.3, 0.1], [0.1, 0.4]]])
    return pts, rho, rho_d


def _grad_fd(fun, pts, step=1e-4):
    """Fourth-order central differences: truncation ~step^4, round-off ~ eps |fun| / step."""
    g = np.empty_like(pts)
    for ax in range(pts.shape[1]):
        e = np.zeros(pts.shape[1])
        e[ax] = step
        g[:, ax] = (-fun(pts + 2 * e) + 8 * fun(pts + e) - 8 * fun(pts - e) + fun(pts - 2 * e)) / (12 * step)
    return g


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("dim", [1, 2])
def test_flux_identity_rho_v_equals_minus_rho_d_grad_beta(flow, dim):
    """rho v = -rho_d grad beta(rho/rho_d): the velocity's formula against a finite-difference
    gradient of beta(u(x)) on smooth analytic fields."""
    fl = PRESETS[flow]
    pts, rho, rho_d = _fields(dim)
    r, rd = np.exp(rho.log_pdf(pts)), np.exp(rho_d.log_pdf(pts))
    v = fl.velocity(rho.log_pdf(pts), rho.grad_log_pdf(pts), rho_d.log_pdf(pts), rho_d.grad_log_pdf(pts))
    grad_beta = _grad_fd(lambda x: fl.beta(np.exp(rho.log_pdf(x) - rho_d.log_pdf(x))), pts)
    lhs, rhs = r[:, None] * v, -rd[:, None] * grad_beta
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-7 * np.max(np.abs(rhs)))


@pytest.mark.parametrize("dim", [1, 2])
def test_js_velocity_is_the_gan_generator_update(dim):
    """js: v = (1/2) grad log(1 + rho_d / rho) (MATH.md section 1, optimal discriminator)."""
    pts, rho, rho_d = _fields(dim)
    v = PRESETS["js"].velocity(rho.log_pdf(pts), rho.grad_log_pdf(pts), rho_d.log_pdf(pts), rho_d.grad_log_pdf(pts))
    ref = _grad_fd(lambda x: 0.5 * np.log1p(np.exp(rho_d.log_pdf(x) - rho.log_pdf(x))), pts)
    np.testing.assert_allclose(v, ref, rtol=0, atol=1e-7 * np.max(np.abs(ref)))


# ---------------------------------------------------------------- API

def test_get_flow_and_custom_flow():
    assert get_flow("js") is PRESETS["js"]
    fl = custom_flow(lambda u: np.log(u), lambda u: 1.0 / u, name="mine")
    assert get_flow(fl) is fl and fl.dbeta_at_one == 1.0 and not fl.has_energy
    with pytest.raises(ValueError, match="unknown flow 'jss'; choose one of js, reverse-kl"):
        get_flow("jss")
    with pytest.raises(ValueError, match="must return positive finite values"):
        custom_flow(lambda u: -u, lambda u: -np.ones_like(u))
    with pytest.raises(ValueError, match="must return positive finite values"):
        custom_flow(lambda u: u, lambda u: 1.0)
    with pytest.raises(ValueError, match="must return positive finite values"):
        custom_flow(lambda u: np.log(u), lambda u: np.where(u > 1e5, np.inf, 1.0 / u))


def test_discrete_energy_helper():
    fl = PRESETS["kl"]
    rho = np.array([0.2, 0.5, 0.3])
    rho_d = np.array([0.3, 0.4, 0.3])
    expected = float(np.sum(rho * np.log(rho / rho_d) - rho + rho_d) * 0.5)
    assert fl.energy(rho, rho_d, 0.5) == pytest.approx(expected, rel=1e-14)
    with pytest.raises(ValueError, match="has no energy density"):
        custom_flow(np.log, lambda u: 1 / u, name="x").energy(rho, rho_d, 0.5)


_EXACT_F = {
    "js": lambda u: (u * u.ln() - (1 + u) * (1 + u).ln() + (1 + u) * Decimal(2).ln()) / 2,
    "reverse-kl": lambda u: u - 1 - u.ln(),
    "kl": lambda u: u * u.ln() - u + 1,
    "chi2": lambda u: (u - 1) ** 2,
    "non-saturating": lambda u: (1 + u) * ((1 + u) / 2).ln() - (u - 1),
}


@pytest.mark.parametrize("flow", FLOWS)
def test_energy_density_keeps_its_relative_accuracy_near_one(flow):
    """f(u) against 80-digit decimal arithmetic, from u = 1 +- 1e-9 (where the closed forms cancel
    to zero) to u = 100 and 1e-4: relative error <= 32 eps."""
    u = np.concatenate([1 + np.array([1e-9, -1e-9, 1e-6, -1e-6, 1e-3, 0.3, -0.3, 0.6, -0.5]), [1e-4, 1e2]])
    with localcontext() as ctx:
        ctx.prec = 80
        exact = np.array([float(_EXACT_F[flow](Decimal(float(x)))) for x in u])
    np.testing.assert_allclose(PRESETS[flow].energy_density(u), exact, rtol=32 * EPS, atol=0)


@pytest.mark.parametrize("flow", FLOWS)
def test_energy_is_never_nan_where_rho_d_underflows(flow):
    """rho_d = 0 (underflowed) in a cell holding mass: the integrand's limit (finite for js,
    reverse-kl, +inf for kl, chi2 and non-saturating: 2 KL(M || rho_d) with M > 0 = rho_d), never
    NaN; with log rho_d given, the exact value."""
    fl = PRESETS[flow]
    rho, rho_d = np.array([0.5, 0.5, 1e-300]), np.array([0.5, 0.0, 0.5])
    e = fl.energy(rho, rho_d, 1.0)
    assert not np.isnan(e)
    assert fl.energy(np.array([0.5, 0.0]), np.array([0.5, 0.0]), 1.0) == 0.0   # an empty cell of both
    assert np.isfinite(e) == (flow in ("js", "reverse-kl"))
    e_log = fl.energy(rho, rho_d, 1.0, log_rho_d=np.log([0.5, 1e-300, 0.5]) - np.array([0.0, 1000.0, 0.0]))
    assert np.isfinite(e_log) or flow == "chi2"
