"""Discriminators of Algorithm 1 (MATH.md section 8) with numpy/scipy: the exact D* and a kernel
logistic regression. Both give the logit d (D = sigmoid(d)) and its gradient at any point.

- Exact: d*(x) = log rho_d(x) - log rho_G(x), so D* = rho_d / (rho_d + rho_G). rho_G is the
  generator's exact law where it has one (``generator.log_density``: the monotone map), else the
  reflected Gaussian KDE of its samples on a grid (the particle solver's estimator, bandwidth and
  grid rules: :mod:`fpsolver.particles.estimate`), read at x by linear interpolation.
- Kernel: d(x) = w . phi(x) + b on M random Fourier features phi_k(x) = sqrt(2/M) cos(omega_k . x + u_k),
  omega_k ~ N(0, l^-2 I), u_k ~ U[0, 2 pi) (drawn once from the seed), fitted to convergence at
  every iteration by L-BFGS on the convex, class-balanced logistic loss with an L2 penalty,
      mean softplus(-d(data)) + mean softplus(d(fake)) + lambda |w|^2,
  warm-started from the previous iteration. Its error (finite n, shrinkage by lambda) adds a floor
  to W1(law G_k, rho(k eps)).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from ..grid import Grid
from ..particles.estimate import DensityEstimator
from ..particles.kernels import interp_cells_numpy, interp_field_numpy
from .base import logistic_loss
from .target import GanTarget

_RHO_FLOOR = 1e-300


class ExactDiscriminator:
    """D* = rho_d / (rho_d + rho_G) (module docstring); ``fit`` only records the generator's law."""

    def __init__(self, target: GanTarget, kde_grid: Optional[Grid] = None, bandwidth: Optional[float] = None):
        self.target, self.kde_grid, self.bandwidth = target, kde_grid, bandwidth
        self._generator, self._kde = None, None

    def fit(self, data, fake, rng, generator=None) -> float:
        if generator is not None and hasattr(generator, "log_density"):
            self._generator, self._kde = generator, None
        else:
            if self.kde_grid is None:
                raise ValueError("exact discriminator: a generator without an exact density needs a KDE grid")
            rho, grad, _ = DensityEstimator(self.kde_grid, self.bandwidth)(np.ascontiguousarray(fake))
            self._generator = None
            self._kde = (np.log(np.maximum(rho, _RHO_FLOOR)), grad / np.maximum(rho, _RHO_FLOOR)[None])
        return logistic_loss(self.logit(data), self.logit(fake))

    def _log_rho_g(self, x):
        if self._generator is not None:
            return self._generator.log_density(x)
        g = self.kde_grid
        lo, h = np.asarray(g.lower), np.asarray(g.spacing)
        return interp_cells_numpy(x, self._kde[0], lo, h), interp_field_numpy(x, self._kde[1], lo, h)

    def logit(self, x: np.ndarray) -> np.ndarray:
        return self.target.log_pdf(x) - self._log_rho_g(x)[0]

    def grad_logit(self, x: np.ndarray) -> np.ndarray:
        return self.target.grad_log_pdf(x) - self._log_rho_g(x)[1]

    def logit_and_grad(self, x: np.ndarray):
        """(d, grad d) at x with one evaluation of rho_G."""
        lr, glr = self._log_rho_g(x)
        return self.target.log_pdf(x) - lr, self.target.grad_log_pdf(x) - glr


class KernelDiscriminator:
    """Logistic regression on random Fourier features with an L2 penalty (module docstring)."""

    def __init__(self, dim: int, rng: np.random.Generator, features: int = 200,
                 lengthscale: Optional[float] = None, penalty: float = 1e-3, gtol: float = 1e-10):
        self.M, self.penalty, self.gtol = int(features), float(penalty), float(gtol)
        self.lengthscale = lengthscale
        self._omega_unit = rng.standard_normal((self.M, dim))
        self.phase = rng.uniform(0.0, 2 * np.pi, self.M)
        self.omega = None
        self.params = np.zeros(self.M + 1)     # (w, b)
        self.iterations: list[int] = []

    def _features(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(2.0 / self.M) * np.cos(x @ self.omega.T + self.phase)

    def fit(self, data, fake, rng, generator=None) -> float:
        if self.omega is None:   # lengthscale: half the data's mean standard deviation unless given
            ell = self.lengthscale if self.lengthscale is not None else 0.5 * float(np.mean(np.std(data, axis=0)))
            self.lengthscale = ell
            self.omega = self._omega_unit / ell
        Pd, Pf = self._features(data), self._features(fake)
        nd, nf, lam = len(data), len(fake), self.penalty

        def loss_grad(p):
            w, b = p[:-1], p[-1]
            dd, df = Pd @ w + b, Pf @ w + b
            loss = np.mean(np.logaddexp(0.0, -dd)) + np.mean(np.logaddexp(0.0, df)) + lam * (w @ w)
            rd, rf = -expit(-dd) / nd, expit(df) / nf     # d loss / d logit per sample
            g = np.concatenate([Pd.T @ rd + Pf.T @ rf + 2 * lam * w, [rd.sum() + rf.sum()]])
            return loss, g

        res = minimize(loss_grad, self.params, jac=True, method="L-BFGS-B",
                       options={"gtol": self.gtol, "ftol": 0.0, "maxiter": 5000})
        self.params = res.x
        self.iterations.append(int(res.nit))
        return logistic_loss(self.logit(data), self.logit(fake))

    def logit(self, x: np.ndarray) -> np.ndarray:
        return self._features(x) @ self.params[:-1] + self.params[-1]

    def grad_logit(self, x: np.ndarray) -> np.ndarray:
        """grad d = -sqrt(2/M) sum_k w_k sin(omega_k . x + u_k) omega_k."""
        s = -np.sqrt(2.0 / self.M) * np.sin(x @ self.omega.T + self.phase) * self.params[:-1]
        return s @ self.omega

    def logit_and_grad(self, x: np.ndarray):
        return self.logit(x), self.grad_logit(x)
