"""Exact solutions nobody here chose, on a :class:`~fpsolver.grid.Grid`, for verification.

Every function returns an array of the grid's shape. Where it matters for a second-order
comparison the values are **exact cell averages** (``average=True``, the default): they carry
exactly the mass of the solution in the box, so the solver's renormalisation of an initial
density to unit discrete mass (midpoint rule, :func:`fpsolver.densities.discretise`) leaves
them unchanged, and a finite-volume cell value is an O(h^2) approximation of them.
``average=False`` gives cell-centre point values (also O(h^2) apart from the averages, the
Barenblatt front included: the cells the front cuts are O(h) wide and the two differ by O(h)
there).

* :func:`barenblatt`: the porous-medium (Barenblatt-Pattle) solution of the chi2 flow with a
  uniform target rho_d = c, d_t rho = c^{-1} lap(rho^2), in 1D and 2D.
* :func:`kl_exponential_target`: the kl flow with rho_d proportional to e^{g x} on [0, 1], a
  solution that feels both walls.
* :func:`ou_density`: the Ornstein-Uhlenbeck Gaussians of the kl flow with a Gaussian target
  (box wide enough that the walls do not matter).
* :class:`ExponentialTarget`: the density e^{g x} (an analytic :class:`~fpsolver.densities.Density`,
  so its face values are exact when discretised) for building the kl case.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .densities import Density
from .grid import Grid

__all__ = ["barenblatt", "barenblatt_support_radius", "barenblatt_time_of_radius",
           "kl_exponential_target", "kl_exponential_target_rate", "ExponentialTarget", "ou_density"]


# ------------------------------------------------------------------ Barenblatt (chi2, uniform target)

def _barenblatt_constants(dim: int, mass: float):
    """(alpha, beta, k, C) of the m = 2 Barenblatt profile with the given mass in d = dim."""
    if dim not in (1, 2):
        raise ValueError("Barenblatt: dim must be 1 or 2")
    if not mass > 0:
        raise ValueError("Barenblatt: mass must be > 0")
    alpha = dim / (dim + 2.0)
    beta = 1.0 / (dim + 2.0)
    k = 1.0 / (4.0 * (dim + 2.0))
    if dim == 1:   # M = (4/3) C^{3/2} / sqrt(k)
        C = (0.75 * mass * np.sqrt(k)) ** (2.0 / 3.0)
    else:          # M = pi C^2 / (2k)
        C = np.sqrt(2.0 * k * mass / np.pi)
    return alpha, beta, k, C


def _tau(t, c, t_shift):
    tau = (np.asarray(t, dtype=float) + t_shift) / c
    if np.any(tau <= 0):
        raise ValueError("Barenblatt: t + t_shift must be > 0 (the profile is a Dirac mass at 0)")
    return tau


def barenblatt_support_radius(t, *, c: float = 1.0, t_shift: float = 0.0, mass: float = 1.0,
                              dim: int = 1):
    """Radius of the support of :func:`barenblatt` at time t: R = sqrt(C/k) tau^beta, tau = (t + t_shift)/c.

    Check ``centre +- R`` lies inside the box: the profile solves the problem with no-flux walls
    only while its support does not reach them.
    """
    alpha, beta, k, C = _barenblatt_constants(dim, mass)
    return np.sqrt(C / k) * _tau(t, c, t_shift) ** beta


def barenblatt_time_of_radius(radius: float, *, c: float = 1.0, mass: float = 1.0, dim: int = 1) -> float:
    """The time t (with t_shift = 0) at which the support radius equals ``radius``.

    Use it to choose ``t_shift``: a run started at solver time 0 from the profile of radius R0
    uses ``t_shift = barenblatt_time_of_radius(R0, ...)``.
    """
    alpha, beta, k, C = _barenblatt_constants(dim, mass)
    return float(c * (radius / np.sqrt(C / k)) ** (1.0 / beta))


def barenblatt(grid: Grid, t: float, *, c: float = 1.0, t_shift: float = 0.0, mass: float = 1.0,
               centre: Optional[Sequence[float]] = None, average: bool = True) -> np.ndarray:
    """The Barenblatt-Pattle solution of d_t rho = c^{-1} lap(rho^2) on the grid's cells.

    This is the chi2 flow (beta(u) = u^2) with a uniform target rho_d = c:
    d_t rho = div(rho_d grad (rho / rho_d)^2) = c^{-1} lap rho^2; on a box of volume |Omega|
    with the unit-mass uniform target, c = 1 / |Omega|. With tau = (t + t_shift) / c (so that
    rho(x, t) = U(x - centre, tau) with U the solution of U_tau = lap U^m, m = 2), Vazquez,
    *The Porous Medium Equation* (Oxford 2007), section 4.4, gives for m = 2 in d dimensions

        U(x, tau) = tau^{-alpha} (C - k |x|^2 tau^{-2 beta})_+,
        alpha = d / (d + 2),  beta = 1 / (d + 2),  k = alpha (m - 1) / (2 m d) = 1 / (4 (d + 2)),

    with C fixed by the mass M = int U dx (constant in tau):

        d = 1:  M = (4/3) C^{3/2} k^{-1/2},   C = (3 M sqrt(k) / 4)^{2/3}   (k = 1/12),
        d = 2:  M = pi C^2 / (2 k),           C = sqrt(2 k M / pi)           (k = 1/16).

    The support is the ball of radius R(tau) = sqrt(C / k) tau^beta
    (:func:`barenblatt_support_radius`). rho is Lipschitz, not C^1, at the front |x| = R:
    rho ~ (2 C / R) tau^{-alpha} (R - |x|) there (for m = 2 the pressure, 2 rho, is rho up to a factor).

    The profile solves the problem on a box with no-flux walls only while the ball stays inside
    the box; the caller checks that. ``t + t_shift`` must be > 0 (at tau = 0 it is a Dirac mass).

    ``average=True``: exact cell averages in closed form (1D: antiderivative of the clipped
    parabola; 2D: inclusion-exclusion over the cell's corners of the integral over
    [0, X] x [0, Y], :func:`_disc_quadrant_integral`; round-off in a cell average is
    ~ 1e-16 max|rho| (R / h)^2);
    with the support inside the box, sum(values) |K| = mass to round-off.
    ``average=False``: values at the cell centres.
    """
    d = grid.dim
    alpha, beta, k, C = _barenblatt_constants(d, mass)
    tau = float(_tau(t, c, t_shift))
    x0 = np.zeros(d) if centre is None else np.asarray(centre, dtype=float)
    if x0.shape != (d,):
        raise ValueError(f"Barenblatt: centre needs {d} entries")
    amp = tau ** -alpha
    K = k * tau ** (-2.0 * beta)     # U = amp (C - K |x|^2)_+
    R2 = C / K
    if not average:
        mesh = np.meshgrid(*[c_ - x0[a] for a, c_ in enumerate(grid.centres)], indexing="ij")
        r2 = sum(m * m for m in mesh)
        return amp * np.maximum(C - K * r2, 0.0)
    ex = grid.edges[0] - x0[0]
    if d == 1:
        return amp * _clipped_parabola_integral(ex[:-1], ex[1:], C, K) / grid.spacing[0]
    ey = grid.edges[1] - x0[1]
    X, Y = np.meshgrid(ex, ey, indexing="ij")
    G = np.sign(X) * np.sign(Y) * _disc_quadrant_integral(np.abs(X), np.abs(Y), R2)
    cells = G[1:, 1:] - G[:-1, 1:] - G[1:, :-1] + G[:-1, :-1]
    # cells the disc misses are exactly 0 (the corner sums leave round-off there)
    near = [np.clip(0.0, e[:-1], e[1:]) for e in (ex, ey)]   # coordinate of the point nearest the centre
    outside = np.add.outer(near[0] ** 2, near[1] ** 2) >= R2
    return np.where(outside, 0.0, amp * K * np.maximum(cells, 0.0) / grid.cell_volume)


def _disc_quadrant_integral(X, Y, R2):
    """int_0^X int_0^Y (R^2 - x^2 - y^2)_+ dy dx for X, Y >= 0 (elementwise), in closed form.

    With X, Y clipped to R and x_Y = sqrt(R^2 - Y^2): for x < x_Y the y integral runs to Y,
    (R^2 - x^2) Y - Y^3 / 3; for x > x_Y it runs to sqrt(R^2 - x^2), (2/3) (R^2 - x^2)^{3/2},
    whose antiderivative is P(x) = (x/8)(5 R^2 - 2 x^2) sqrt(R^2 - x^2) + (3 R^4 / 8) asin(x / R).
    """
    R = np.sqrt(R2)
    X = np.minimum(X, R)
    Y = np.minimum(Y, R)
    xY = np.sqrt((R - Y) * (R + Y))   # R - Y is exact near Y = R: no sqrt(eps) loss
    X1 = np.minimum(X, xY)
    part1 = Y * (R2 * X1 - X1 ** 3 / 3.0) - Y ** 3 * X1 / 3.0

    def P(x):
        # asin(x / R) and sqrt(R^2 - x^2) both lose sqrt(eps) near x = R (P itself does not,
        # P' = (R^2 - x^2)^{3/2}): use s = sqrt((R - x)(R + x)) and the angle atan2(x, s)
        sq = np.sqrt((R - x) * (R + x))
        return x * sq * (5.0 * R2 - 2.0 * x * x) / 8.0 + 3.0 * R2 * R2 / 8.0 * np.arctan2(x, sq)

    part2 = np.where(X > xY, (2.0 / 3.0) * (P(X) - P(X1)), 0.0)
    return part1 + part2


def _clipped_parabola_integral(a, b, C, K):
    """int_a^b (C - K x^2)_+ dx, elementwise (broadcasting), for K > 0."""
    C = np.asarray(C, dtype=float)
    r = np.sqrt(np.maximum(C, 0.0) / K)
    lo = np.clip(a, -r, r)
    hi = np.clip(b, -r, r)
    return np.where(C > 0, C * (hi - lo) - K * (hi ** 3 - lo ** 3) / 3.0, 0.0)


# ------------------------------------------------------------------ kl, exponential target, walls

@dataclass
class ExponentialTarget(Density):
    """rho_d proportional to e^{g x} (x the first coordinate; constant along y in 2D).

    Analytic, so :func:`fpsolver.densities.discretise` evaluates it at the cell and face centres
    (exact face values) and normalises it to unit discrete mass.
    """

    g: float
    analytic = True

    def log_pdf(self, points):
        return self.g * np.atleast_2d(points)[:, 0].astype(float)

    def grad_log_pdf(self, points):
        p = np.atleast_2d(points)
        out = np.zeros(p.shape, dtype=float)
        out[:, 0] = self.g
        return out

    def sample(self, n, rng, grid):
        """Exact samples on the box: inverse CDF of e^{g x} on [lower, upper], uniform in y."""
        lo, hi = grid.lower[0], grid.upper[0]
        v = rng.uniform(size=n)
        if abs(self.g) * (hi - lo) < 1e-12:
            x = lo + v * (hi - lo)
        else:
            x = lo + np.log1p(v * np.expm1(self.g * (hi - lo))) / self.g
        cols = [np.clip(x, lo, hi)] + [rng.uniform(grid.lower[a], grid.upper[a], size=n)
                                       for a in range(1, grid.dim)]
        return np.stack(cols, axis=1)


def kl_exponential_target_rate(g: float) -> float:
    """a = pi^2 + g^2 / 4: the decay rate of the transient of :func:`kl_exponential_target`."""
    return float(np.pi ** 2 + 0.25 * g * g)


def _sinhc(z):
    """sinh(z) / z, 1 at z = 0."""
    z = float(z)
    return 1.0 + z * z / 6.0 if abs(z) < 1e-6 else np.sinh(z) / z


def kl_exponential_target(grid: Grid, t: float, g: float, *, average: bool = True) -> np.ndarray:
    """Exact unit-mass solution of the kl flow with rho_d proportional to e^{g x} on [0, 1].

    For kl (beta(u) = u) the flow is d_t rho = rho_xx - (rho (log rho_d)')_x = rho_xx - g rho_x,
    with no flux, rho_x - g rho = 0, at x = 0 and x = 1. The function

        u(x, t) = e^{-a t + g x / 2} (pi cos(pi x) + (g/2) sin(pi x)) + pi e^{g (x - 1/2)},
        a = pi^2 + g^2 / 4,

    is rho itself (not rho / rho_d): with phi = pi cos(pi x) + (g/2) sin(pi x), phi'' = -pi^2 phi,
    v = e^{-a t + g x/2} phi has v_xx - g v_x = e^{-a t + g x/2} (phi'' - g^2 phi / 4) = -a v = v_t,
    and the steady part e^{g (x - 1/2)} has u_xx - g u_x = 0. The flux:
    v_x - g v = e^{-a t + g x/2} (phi' - g phi / 2) = -a e^{-a t + g x/2} sin(pi x), zero at
    x = 0 and 1; and (e^{g(x-1/2)})' - g e^{g(x-1/2)} = 0. The transient carries no mass
    (its antiderivative in x is e^{g x/2} sin(pi x), zero at both walls), so the mass is
    M = pi int_0^1 e^{g (x - 1/2)} dx = 2 pi sinh(g/2) / g, and this function returns u / M,
    whose limit as t -> oo is rho_d = g e^{g x} / (e^g - 1). At t = 0, u(1, 0) = 0, and
    u > 0 for every t > 0 (maximum principle for u / rho_d), so runs start at some t0 > 0.

    ``average=True``: exact cell averages (antiderivatives e^{g x/2} sin(pi x) and
    pi e^{g (x - 1/2)} / g); ``average=False``: cell-centre values. The grid must be [0, 1] (1D).
    """
    if grid.dim != 1 or abs(grid.lower[0]) > 1e-12 or abs(grid.upper[0] - 1.0) > 1e-12:
        raise ValueError("kl_exponential_target: needs a 1D grid on [0, 1]")
    g = float(g)
    a = kl_exponential_target_rate(g)
    mass = np.pi * _sinhc(0.5 * g)       # 2 pi sinh(g/2) / g
    decay = np.exp(-a * float(t))
    if not average:
        x = grid.centres[0]
        u = decay * np.exp(0.5 * g * x) * (np.pi * np.cos(np.pi * x) + 0.5 * g * np.sin(np.pi * x)) \
            + np.pi * np.exp(g * (x - 0.5))
        return u / mass
    e = grid.edges[0]
    h = grid.spacing[0]
    prim = np.exp(0.5 * g * e) * np.sin(np.pi * e)
    transient = decay * np.diff(prim) / h
    # average of e^{g (x - 1/2)} over [e_i, e_i + h] = e^{g (e_i - 1/2)} expm1(g h) / (g h)
    growth = 1.0 if abs(g * h) < 1e-300 else np.expm1(g * h) / (g * h)
    steady = np.pi * np.exp(g * (e[:-1] - 0.5)) * growth
    return (transient + steady) / mass


# ------------------------------------------------------------------ Ornstein-Uhlenbeck (kl, Gaussian target)

def ou_density(grid: Grid, t: float, m, sigma, mu0, s0) -> np.ndarray:
    """The exact kl solution at time t on the cell centres (product of 1D Gaussians).

    With rho_d = N(m, diag(sigma^2)) and rho_0 = N(mu0, diag(s0^2)) on a box wide enough that
    the walls do not matter, rho_t stays Gaussian, componentwise
    mu_t = m + (mu0 - m) e^{-t / sigma^2}, s_t^2 = sigma^2 + (s0^2 - sigma^2) e^{-2 t / sigma^2}.
    Cell-centre point values (the exact solution is smooth: O(h^2) from the averages).
    """
    out = np.ones(grid.shape)
    for k, x in enumerate(np.meshgrid(*grid.centres, indexing="ij")):
        mu = m[k] + (mu0[k] - m[k]) * np.exp(-t / sigma[k] ** 2)
        var = sigma[k] ** 2 + (s0[k] ** 2 - sigma[k] ** 2) * np.exp(-2 * t / sigma[k] ** 2)
        out *= np.exp(-0.5 * (x - mu) ** 2 / var) / np.sqrt(2 * np.pi * var)
    return out
