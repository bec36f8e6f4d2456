"""Generators of Algorithm 1 (MATH.md section 8): particles (an infinitely expressive G) and the 1D
monotone tanh-knot map, both with numpy/scipy only.

Monotone map, J knots kappa_j (centres of J equal cells of [-Z, Z], Z = 3) and spacing s = 2Z/J:

    G(z) = a + c_0 z + sum_j c_j s tanh((z - kappa_j) / s),   c_0, ..., c_J >= 0,

linear in theta = (a, c_0, ..., c_J): G(z) = A(z) theta. Its law is known exactly,

    rho_G(G(z)) = phi(z) / G'(z),     (log rho_G)'(G(z)) = (-z - G''(z)/G'(z)) / G'(z),

so the exact discriminator D* = rho_d / (rho_d + rho_G) needs no density estimate. The MSE fit to
frozen targets is a bounded linear least-squares problem (``scipy.optimize.lsq_linear``, exact by
BVLS), or K projected gradient steps of size 1/L, L = (2/m) ||A||_2^2 (the Lipschitz constant of
the MSE gradient). The minimax fit takes the same steps on loss_weight * mean log(1 - D(G_theta(z))):
its first step is the first MSE step (MATH.md section 1), the later ones keep following grad D.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.optimize import lsq_linear
from scipy.special import expit

from ..particles.kernels import reflect_numpy
from .base import Discriminator, logit_and_grad

LATENT_RANGE = 3.0
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_TABLE = np.linspace(-10.0, 10.0, 8001)   # latent table for inverting G (Newton finishes)


class MonotoneGenerator:
    """The 1D increasing tanh-knot map (module docstring)."""

    dim = 1

    def __init__(self, knots: int, theta: Optional[np.ndarray] = None):
        if int(knots) < 1:
            raise ValueError("the monotone generator needs at least one knot")
        self.J = int(knots)
        self.s = 2 * LATENT_RANGE / self.J
        self.kappa = -LATENT_RANGE + self.s * (np.arange(self.J) + 0.5)
        self.theta = np.zeros(self.J + 2) if theta is None else np.asarray(theta, dtype=float).copy()
        self.lower_bounds = np.concatenate([[-np.inf], np.zeros(self.J + 1)])

    # ---- the map and its derivatives
    def features(self, z: np.ndarray) -> np.ndarray:
        """A(z), shape (m, J + 2): columns 1, z, s tanh((z - kappa_j)/s)."""
        z = np.asarray(z, dtype=float).reshape(-1)
        A = np.empty((z.size, self.J + 2))
        A[:, 0], A[:, 1] = 1.0, z
        np.tanh((z[:, None] - self.kappa) / self.s, out=A[:, 2:])
        A[:, 2:] *= self.s
        return A

    def sample(self, z: np.ndarray) -> np.ndarray:
        x = (self.features(z) @ self.theta)[:, None]
        self._last = (x, np.asarray(z, dtype=float).reshape(-1))   # inverse() of these points is z
        return x

    def slope(self, z: np.ndarray) -> np.ndarray:
        """G'(z) = c_0 + sum_j c_j sech^2((z - kappa_j)/s)."""
        t = np.tanh((np.asarray(z, dtype=float).reshape(-1)[:, None] - self.kappa) / self.s)
        return self.theta[1] + (1.0 - t * t) @ self.theta[2:]

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """z with G(z) = x (x (n, 1)), clipped to [-10, 10]: table interpolation, then Newton."""
        last = getattr(self, "_last", None)
        if last is not None and last[0] is x:
            return last[1]
        x = np.asarray(x, dtype=float).reshape(-1)
        if getattr(self, "_table_features", None) is None:
            self._table_features = self.features(_TABLE)
        z = np.interp(x, self._table_features @ self.theta, _TABLE)
        a, c0, c = self.theta[0], self.theta[1], self.theta[2:]
        for _ in range(3):
            t = np.tanh((z[:, None] - self.kappa) / self.s)      # one tanh for G and G'
            g = c0 + (1.0 - t * t) @ c
            step = np.where(g > 0, (a + c0 * z + self.s * (t @ c) - x) / np.where(g > 0, g, 1.0), 0.0)
            z = np.clip(z - step, _TABLE[0], _TABLE[-1])
        return z

    def log_density_latent(self, z: np.ndarray):
        """(log rho_G, (log rho_G)') at G(z): log phi(z) - log G'(z) and (-z - G''/G') / G'."""
        z = np.asarray(z, dtype=float).reshape(-1)
        t = np.tanh((z[:, None] - self.kappa) / self.s)
        sech2 = 1.0 - t * t
        g = self.theta[1] + sech2 @ self.theta[2:]
        curvature = (-2.0 / self.s) * (sech2 * t) @ self.theta[2:]
        with np.errstate(divide="ignore", invalid="ignore"):
            return -0.5 * z * z - _LOG_SQRT_2PI - np.log(g), (-z - curvature / g) / g

    def log_density(self, x: np.ndarray):
        """(log rho_G(x), grad log rho_G(x)) at points x (n, 1): shapes (n,), (n, 1); beyond
        G([-10, 10]) (outside the support when the map is bounded) rho_G = 0: log -inf, gradient 0."""
        z = self.inverse(x)
        lr, glr = self.log_density_latent(z)
        xs = np.asarray(x, dtype=float).reshape(-1)
        if getattr(self, "_table_features", None) is not None:
            ends = self._table_features[[0, -1]] @ self.theta
            outside = (xs < ends[0]) | (xs > ends[1])
            lr, glr = np.where(outside, -np.inf, lr), np.where(outside, 0.0, glr)
        return lr, glr[:, None]

    # ---- fitting
    def fit_mse(self, z, targets, steps: Optional[int], rng) -> float:
        """(1/m) sum |A theta - y|^2 over c >= 0: BVLS (exact) or ``steps`` projected gradient steps."""
        A, y = self._features_cached(z), np.asarray(targets, dtype=float).reshape(-1)
        if steps is None:
            # |A theta - y|^2 = |R theta - Q^T y|^2 + const (A = QR): BVLS on J + 2 rows, same minimiser
            Q, R = self._qr
            theta = lsq_linear(R, Q.T @ y, bounds=(self.lower_bounds, np.inf), method="bvls").x
            self._set(self._project(theta))      # BVLS may return -1e-18 for a bound at 0
        else:
            lr, m = self._step(A), len(y)
            for _ in range(int(steps)):
                self._set(self._project(self.theta - lr * (2.0 / m) * (A.T @ (A @ self.theta - y))))
        return float(np.mean((A @ self.theta - y) ** 2))

    def fit_minimax(self, z, disc: Discriminator, steps: int, rng, loss_weight: float) -> float:
        """``steps`` projected gradient steps (size 1/L of the MSE) on w mean log(1 - sigmoid(d(G(z))))."""
        A = self._features_cached(z)
        lr, m = self._step(A), A.shape[0]
        for _ in range(int(steps)):
            x = (A @ self.theta)[:, None]
            d, grad = logit_and_grad(disc, x)
            gx = -expit(d) * grad[:, 0]          # d/dx log(1 - sigmoid(d)) = -sigmoid(d) grad d
            self._set(self._project(self.theta - lr * loss_weight * (A.T @ gx) / m))
        x = (A @ self.theta)[:, None]
        return float(loss_weight * np.mean(-np.logaddexp(0.0, disc.logit(x))))

    def _features_cached(self, z: np.ndarray) -> np.ndarray:
        """A(z) and its QR, recomputed only when the latents change (quantile latents never do)."""
        z = np.asarray(z, dtype=float).reshape(-1)
        cached = getattr(self, "_cache", None)
        if cached is None or cached[0].shape != z.shape or not np.array_equal(cached[0], z):
            A = self.features(z)
            self._cache = (z.copy(), A, np.linalg.qr(A))
        self._qr = self._cache[2]
        return self._cache[1]

    def _set(self, theta: np.ndarray) -> None:
        self.theta, self._last = theta, None      # points sampled before no longer invert to their z

    def _step(self, A: np.ndarray) -> float:
        """1/L, L = (2/m) ||A||_2^2: the MSE's gradient is L-Lipschitz, so steps of 1/L descend."""
        return A.shape[0] / (2.0 * np.linalg.norm(A, 2) ** 2)

    def _project(self, theta: np.ndarray) -> np.ndarray:
        return np.maximum(theta, self.lower_bounds)

    def is_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.theta)))

    def fit_initial(self, z: np.ndarray, x: np.ndarray) -> None:
        """G_0 from a monotone coupling (sorted latents, sorted points of rho_0): exact BVLS fit."""
        self.fit_mse(np.sort(np.asarray(z).reshape(-1)), np.sort(np.asarray(x).reshape(-1)), None, None)


class ParticleGenerator:
    """Every sample is a free parameter: G(i) = x_i. Latents are the particles' indices (n, 1); the
    MSE fit moves each x_i onto its target (one gradient step of size m/2 already does), reflecting
    at the walls of the box like the particle solver."""

    def __init__(self, x: np.ndarray, lower, upper):
        self.x = np.ascontiguousarray(np.asarray(x, dtype=float))
        self.dim = self.x.shape[1]
        self.lower, self.upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)

    def latents(self) -> np.ndarray:
        return np.arange(self.x.shape[0], dtype=float)[:, None]

    def sample(self, z: np.ndarray) -> np.ndarray:
        return self.x[np.asarray(z, dtype=float)[:, 0].astype(np.int64)].copy()

    def fit_mse(self, z, targets, steps: Optional[int], rng) -> float:
        idx = np.asarray(z, dtype=float)[:, 0].astype(np.int64)
        y = np.asarray(targets, dtype=float)
        self.x[idx] = reflect_numpy(y, self.lower, self.upper)
        return float(np.mean(np.sum((self.x[idx] - y) ** 2, axis=1)))   # > 0 only where a wall reflected

    def fit_minimax(self, z, disc: Discriminator, steps: int, rng, loss_weight: float) -> float:
        """Steps of size m/2 (the exact MSE step) on w mean log(1 - D): x += (w/2) sigmoid(d) grad d."""
        idx = np.asarray(z, dtype=float)[:, 0].astype(np.int64)
        for _ in range(int(steps)):
            x = self.x[idx]
            d, grad = logit_and_grad(disc, x)
            move = 0.5 * loss_weight * expit(d)[:, None] * grad
            self.x[idx] = reflect_numpy(x + move, self.lower, self.upper)
        return float(loss_weight * np.mean(-np.logaddexp(0.0, disc.logit(self.x[idx]))))

    def is_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.x)))
