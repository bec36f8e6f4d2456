"""The discriminator's own flow (MATH.md §10): its drive, implicit L2 update, kernel update,
the GAN value, and the time-step limits of the coupled system. Plain arrays in and out, so the
grid solver (:mod:`.grid`) and a particle solver (f on a grid) share them.

With the logit f (D = sigma(f)) and the rate kappa,

    d_t f = kappa G(rho, f)            (L2 metric),   G = rho_d (1 - sigma(f)) - rho sigma(f),
    d_t f = kappa K[G(rho, f)]         (kernel metric), (K g)(x) = int k(x, y) g(y) dy,

the ascent of the GAN value L(rho, f) = int rho_d log sigma(f) + int rho log(1 - sigma(f)),
whose maximum over f is 2 JS(rho, rho_d) - log 4 at f = log(rho_d / rho). The generator moves
with v = h'(f) grad f, h'(t) = exp(flow.log_dbeta(-t)) for the flow's preset (js: sigma(t)/2).
Every term is formed without 1 - sigma (sigma(-f) instead) and without floors, so rho ~ 1e-43
and f ~ 60 near a wall are evaluated to full relative precision.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numba
import numpy as np
from scipy.special import expit

from ..flows import Flow

Array = np.ndarray


def log_hprime(flow: Flow, f: Array) -> Array:
    """log h'(f) = log beta'(e^{-f}) (MATH.md §2: beta'(u) = h'(-log u)); finite for finite f."""
    return flow.log_dbeta(-np.asarray(f, dtype=float))


def discriminator_drive(f: Array, rho: Array, rho_d: Array) -> Array:
    """G = rho_d sigma(-f) - rho sigma(f) = dL/df pointwise (per unit volume)."""
    return rho_d * expit(-f) - rho * expit(f)


def gan_value(f: Array, rho: Array, rho_d: Array, cell_volume: float) -> float:
    """L = sum_i |K| (rho_d,i log sigma(f_i) + rho_i log sigma(-f_i)) = -sum |K| (rho_d softplus(-f)
    + rho softplus(f)); at f = log(rho_d / rho) it is 2 JS(rho, rho_d) - log 4."""
    return -float(np.sum(rho_d * np.logaddexp(0.0, -f) + rho * np.logaddexp(0.0, f)) * cell_volume)


def optimal_logit(log_rho: Array, log_rho_d: Array) -> Array:
    """f* = log(rho_d / rho), the maximiser of L for fixed rho (kappa -> inf)."""
    return np.asarray(log_rho_d, dtype=float) - np.asarray(log_rho, dtype=float)


# ------------------------------------------------------------------ implicit L2 update (per cell)

@numba.njit(cache=True)
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@numba.njit(cache=True)
def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@numba.njit(cache=True)
def _psi(y, f0, xs, lha):
    """psi(y) = log(x - f0) - log(h a sigma(-x) (1 - e^{x - x*})), x = f0 + e^y, and dpsi/dy."""
    d = math.exp(y)
    x = f0 + d
    r = xs - x
    if r <= 0.0:
        return math.inf, 1.0
    finite = r < math.inf
    last = math.log(-math.expm1(-r)) if finite else 0.0
    dlast = 1.0 / math.expm1(r) if finite else 0.0
    return y - lha + _softplus(x) - last, 1.0 + d * (_sigmoid(x) + dlast)


@numba.njit(cache=True)
def _solve_cell(f0, b, a, h):
    """The root x of x - f0 = h (a sigma(-x) - b sigma(x)) (a = rho_d, b = rho, h = dt kappa).

    By the symmetry x -> -x, (a, b) -> (b, a) take G(f0) > 0: the root lies in (f0, x*],
    x* = log(a/b), within h a of f0. In y = log(x - f0) the equation reads psi(y) = 0 with

        psi(y) = y - log(h a) + softplus(x) - log(1 - e^{x - x*}),   x = f0 + e^y,

    a convex increasing function of y (softplus and -log(1 - e^z) are convex increasing, and so is
    x(y)): Newton started right of the root converges monotonically and quadratically. The start:
    d = h a where h a < x* - f0 (there psi >= 0), else x* - r with r a fraction of the distance
    Newton from x* predicts, quartered until psi >= 0. Every term is a log-sum form: rho ~ 1e-43,
    f ~ 60 keep full relative precision.
    """
    g0 = a * _sigmoid(-f0) - b * _sigmoid(f0)
    if g0 == 0.0 or h == 0.0:
        return f0
    sgn = 1.0
    if g0 < 0.0:
        sgn, f0, a, b, g0 = -1.0, -f0, b, a, -g0
    xs = math.log(a) - math.log(b) if b > 0.0 else math.inf
    dmax = min(h * a, xs - f0)
    if dmax <= 1e-14 * max(1.0, abs(f0)):       # the change is below round-off of f0
        return sgn * (f0 + h * g0 / (1.0 + h * (a + b) * _sigmoid(f0) * _sigmoid(-f0)))
    lha = math.log(h) + math.log(a)
    if h * a < xs - f0:
        y = math.log(h * a)
    else:
        r = 0.5 * (xs - f0) / (1.0 + h * a * b / (a + b))
        y = math.log(0.5 * (xs - f0))
        for _ in range(60):
            y = math.log(xs - f0 - r) if r < xs - f0 else math.log(0.5 * (xs - f0))
            if _psi(y, f0, xs, lha)[0] >= 0.0 or r <= 1e-16 * max(1.0, abs(xs)):
                break
            r *= 0.25
    for _ in range(100):
        psi, dpsi = _psi(y, f0, xs, lha)
        if not psi < math.inf:
            break
        step = psi / dpsi
        y -= step
        if abs(step) <= 1e-13 or math.exp(y) * abs(step) <= 2e-16 * max(1.0, abs(f0)):
            break
    return sgn * (f0 + math.exp(y))


@numba.njit(cache=True)
def _l2_update_kernel(f, rho, rho_d, h, out):
    for i in range(f.size):
        out[i] = _solve_cell(f[i], rho[i], rho_d[i], h)


def l2_implicit_update(f: Array, rho: Array, rho_d: Array, dt: float, rate: float) -> Array:
    """Backward Euler for the L2 discriminator flow with rho frozen, cell by cell:
    f^{n+1} = f^n + dt kappa G(rho, f^{n+1}); the root of a monotone scalar equation, between f^n
    and log(rho_d / rho) (unconditionally stable, exact equilibrium as dt kappa -> inf)."""
    f = np.ascontiguousarray(f, dtype=float)
    out = np.empty_like(f)
    _l2_update_kernel(f.ravel(), np.ascontiguousarray(rho, dtype=float).ravel(),
                      np.ascontiguousarray(rho_d, dtype=float).ravel(), float(dt * rate), out.ravel())
    return out


def l2_implicit_update_numpy(f: Array, rho: Array, rho_d: Array, dt: float, rate: float) -> Array:
    """Reference of :func:`l2_implicit_update` by vectorised bisection (200 halvings of the same
    bracket reach round-off); for tests and the plain benchmark."""
    f, h = np.asarray(f, dtype=float), dt * rate
    a, b = np.asarray(rho_d, dtype=float), np.asarray(rho, dtype=float)
    g0 = discriminator_drive(f, b, a)
    with np.errstate(divide="ignore"):
        eq = np.log(a) - np.log(b)
    lo = np.where(g0 > 0, f, np.maximum(f - h * b, np.where(a > 0, eq, -np.inf)))
    hi = np.where(g0 > 0, np.minimum(f + h * a, np.where(b > 0, eq, np.inf)), f)
    for _ in range(200):
        x = 0.5 * (lo + hi)
        pos = x - f - h * discriminator_drive(x, b, a) > 0
        lo, hi = np.where(pos, lo, x), np.where(pos, x, hi)
    return np.where(g0 == 0, f, 0.5 * (lo + hi))


def kernel_explicit_update(f: Array, rho: Array, rho_d: Array, dt: float, rate: float, conv) -> Array:
    """Forward Euler for the kernel-metric flow: f^{n+1} = f^n + dt kappa K[G(rho, f^n)], K by the
    zero-padded FFT convolution ``conv`` (fpsolver.flows.kernel.KernelConvolution). Stable under
    :func:`step_limit` (dt kappa max(a) |K| <= 1)."""
    return f + dt * rate * conv(discriminator_drive(f, rho, rho_d))


# ------------------------------------------------------------------ generator velocity

def face_velocities(f: Array, flow: Flow, spacing: Sequence[float]) -> list[Array]:
    """v = h'(f) grad f on the interior faces of each axis: (h'(f_i) + h'(f_j))/2 (f_j - f_i)/dx_a,
    the face h' the mean of its two positive cell values (so positive)."""
    hp = np.exp(log_hprime(flow, f))
    out = []
    for a, dx in enumerate(spacing):
        lo = [slice(None)] * f.ndim
        hi = [slice(None)] * f.ndim
        lo[a], hi[a] = slice(None, -1), slice(1, None)
        out.append(np.ascontiguousarray(0.5 * (hp[tuple(lo)] + hp[tuple(hi)])
                                        * (f[tuple(hi)] - f[tuple(lo)]) / dx))
    return out


# ------------------------------------------------------------------ time-step limits

def kernel_norm(conv) -> float:
    """Row-sum bound of K on the grid: sum_j k(x_i - x_j) |K| <= the whole kernel table's sum."""
    kern, grid = conv.kernel, conv.grid
    total = 1.0
    for n, h in zip(grid.shape, grid.spacing):
        o = np.arange(-(n - 1), n) * h
        total *= float(np.sum(np.exp(-o * o / (2.0 * kern.sigma ** 2))) * h)
    return kern.amplitude(grid.dim) * total


def step_limit(f: Array, rho: Array, rho_d: Array, flow: Flow, rate: float, spacing: Sequence[float],
               metric: str = "L2", conv=None) -> float:
    """Largest dt for which the linearised coupled step (f first, then rho with the new f) is stable.

    With a = sigma(f) sigma(-f) (rho_d + rho) (the relaxation rate of f per unit kappa), s = sigma(f)
    rho h'(f) and Lambda = sum_a 4/dx_a^2 (the largest symbol of the discrete -div grad), the L2
    step (f backward Euler) is stable for one Fourier mode iff dt^2 kappa s Lambda <= 4 + 2 kappa dt a:

        dt <= (a + sqrt(a^2 + 4 s Lambda / kappa)) / (s Lambda)  ->  2 a / (s Lambda)  (kappa = inf),

    i.e. dt <= dx / c with c = sqrt(kappa s) the damped-wave speed where a is small, and the
    parabolic dt <= dx^2 / (2 h') of the kappa -> inf flow where it dominates; the minimum over
    cells is returned. Kernel metric (f forward Euler): dt kappa max(a) |K| <= 1 (damping) and
    dt^2 kappa s max(Lambda |K|, ...) <= 2 (the wave, its symbol Lambda cut by the kernel's,
    K^2 k_hat(K) <= |K| 2/(e sigma^2)).
    """
    sp, sm = expit(f), expit(-f)
    a = sp * sm * (rho_d + rho)
    s = sp * rho * np.exp(log_hprime(flow, f))
    lam = sum(4.0 / dx ** 2 for dx in spacing)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "kernel":
            knorm = kernel_norm(conv)
            lam_k = knorm * min(lam, 2.0 / (math.e * conv.kernel.sigma ** 2))
            damp = 1.0 / (rate * knorm * float(np.max(a))) if np.max(a) > 0 else np.inf
            wave = math.sqrt(2.0 / (rate * lam_k * float(np.max(s)))) if np.max(s) > 0 else np.inf
            return min(damp, wave)
        if np.isinf(rate):
            bound = np.where(s > 0, 2.0 * a / (s * lam), np.inf)
        else:
            bound = np.where(s > 0, (a + np.sqrt(a * a + 4.0 * s * lam / rate)) / (s * lam), np.inf)
    return float(np.min(bound))


def initial_logit(kind: str, log_rho0: Array, log_rho_d: Array) -> Array:
    """f(0): 0 everywhere (D = 1/2) or the optimal log(rho_d / rho_0), in log space (no floors)."""
    if kind == "zero":
        return np.zeros(np.shape(log_rho0))
    return optimal_logit(log_rho0, log_rho_d)


def update_logit(f: Array, rho: Array, rho_d: Array, dt: float, rate: float, metric: str,
                 conv=None, log_rho: Optional[Array] = None, log_rho_d: Optional[Array] = None) -> Array:
    """One discriminator step of length dt with rho frozen: implicit L2, explicit kernel, or (rate
    inf) the optimal logit log(rho_d / rho) itself, from the logs when given."""
    if np.isinf(rate):
        with np.errstate(divide="ignore"):
            lr = np.log(rho) if log_rho is None else log_rho
            ld = np.log(rho_d) if log_rho_d is None else log_rho_d
        return optimal_logit(lr, ld)
    if metric == "kernel":
        return kernel_explicit_update(f, rho, rho_d, dt, rate, conv)
    return l2_implicit_update(f, rho, rho_d, dt, rate)
