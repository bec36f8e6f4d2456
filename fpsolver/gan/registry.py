"""Name -> builder registries of the discriminator and generator tiers (``--discriminator``, ``--generator``).

A builder takes a :class:`BuildContext` (the case's dimension, box and target, and the run's
options) and returns an object implementing :class:`fpsolver.gan.base.Discriminator` or
:class:`fpsolver.gan.base.Generator`. A new tier is one builder and one entry here. The "mlp"
entries stand for the JAX tier (:mod:`fpsolver.gan.neural`), which replaces them with its builders;
until it is installed they raise one line naming the extra.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ..errors import InputError

GAN_EXTRA = 'pip install "fpsolver[gan]"'


@dataclass
class BuildContext:
    """What a builder may use: the case (box, target) and the run's options.

    ``log_target(x)`` and ``grad_log_target(x)`` give log rho_d and its gradient at points x (n, d)
    (known only to the exact discriminator; trained ones see samples). ``latent`` is "normal" or
    "quantiles"; ``fit_steps`` is K (None: exact fit where one exists); ``batch`` the training
    minibatch; ``options`` the remaining keys of the case's ``[gan]`` table (tier settings).
    """

    dim: int
    lower: np.ndarray
    upper: np.ndarray
    log_target: Callable[[np.ndarray], np.ndarray]
    grad_log_target: Callable[[np.ndarray], np.ndarray]
    epsilon: float
    fit_steps: Optional[int]
    batch: int
    n: int
    seed: int
    latent: str = "normal"
    knots: int = 16
    init_samples: Optional[np.ndarray] = None
    options: dict = field(default_factory=dict)


def _needs_extra(what: str) -> Callable[[BuildContext], Any]:
    def build(ctx: BuildContext):
        raise InputError(f"--{what} mlp needs JAX: {GAN_EXTRA}")
    return build


DISCRIMINATORS: dict[str, Callable[[BuildContext], Any]] = {
    "mlp": _needs_extra("discriminator"),
}
GENERATORS: dict[str, Callable[[BuildContext], Any]] = {
    "mlp": _needs_extra("generator"),
}
