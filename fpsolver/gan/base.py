"""The two players of Algorithm 1 (MATH.md sections 1 and 8), as protocols every tier implements.

A discriminator D = sigmoid(d) is known by its logit d (for the optimal D*, d = log(rho_d / rho_G)).
A generator maps latents z to points G(z) and is fitted either to frozen targets by the MSE
(1/m) sum_i |G(z_i) - y_i|^2 (Algorithm 1) or by gradient steps on the minimax loss
(1/m) sum_i log(1 - D(G(z_i))) with D frozen (the naive persistence the paper warns about).

The loop (:mod:`fpsolver.gan.loop`) builds the targets y_i = x_i + eps h'(d(x_i)) grad d(x_i),
x_i = G_k(z_i), with h' the flow's h' (js: h' = sigmoid/2, i.e. grad D / (2 (1 - D))).
Tiers: exact and kernel discriminators, particle and monotone generators (numpy/scipy, in
:mod:`.discriminators` and :mod:`.generators`); MLPs (JAX, optional) in :mod:`.neural`.
"""
from __future__ import annotations

from typing import Optional, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Discriminator(Protocol):
    """D = sigmoid(d): d(x) is the logit, approx log(rho_d / rho_G) for the optimal D."""

    def fit(self, data: np.ndarray, fake: np.ndarray, rng: np.random.Generator,
            generator: Optional["Generator"] = None) -> float:
        """Train on target samples ``data`` (m, d) and generator samples ``fake`` (n, d); return the
        final discriminator loss (mean logistic loss, -mean log D(data) - mean log(1 - D(fake)))."""
        ...

    def logit(self, x: np.ndarray) -> np.ndarray:
        """d(x), shape (n,)."""
        ...

    def grad_logit(self, x: np.ndarray) -> np.ndarray:
        """grad d(x), shape (n, d)."""
        ...


@runtime_checkable
class Generator(Protocol):
    """G_theta: latents (n, d_z) -> points (n, d)."""

    dim: int

    def sample(self, z: np.ndarray) -> np.ndarray:
        """G(z), shape (n, dim)."""
        ...

    def fit_mse(self, z: np.ndarray, targets: np.ndarray, steps: Optional[int],
                rng: np.random.Generator) -> float:
        """Fit to frozen targets: (1/m) sum_i |G(z_i) - y_i|^2; ``steps=None`` means the exact fit
        where one exists; returns the final residual."""
        ...

    def fit_minimax(self, z: np.ndarray, disc: Discriminator, steps: int, rng: np.random.Generator,
                    loss_weight: float) -> float:
        """``steps`` gradient steps on loss_weight * (1/m) sum_i log(1 - D(G(z_i))) with D frozen;
        returns the final loss."""
        ...

    def is_finite(self) -> bool:
        """All parameters finite."""
        ...


def logistic_loss(d_data: np.ndarray, d_fake: np.ndarray) -> float:
    """Mean logistic loss -mean log D(data) - mean log(1 - D(fake)), D = sigmoid(d), in log space:
    -log sigmoid(d) = softplus(-d), -log(1 - sigmoid(d)) = softplus(d)."""
    return float(np.mean(np.logaddexp(0.0, -d_data)) + np.mean(np.logaddexp(0.0, d_fake)))


def logit_and_grad(disc: Discriminator, x: np.ndarray):
    """(d(x), grad d(x)) in one evaluation where the discriminator offers ``logit_and_grad``."""
    if hasattr(disc, "logit_and_grad"):
        return disc.logit_and_grad(x)
    return disc.logit(x), disc.grad_logit(x)
