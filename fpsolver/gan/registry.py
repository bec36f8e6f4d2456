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
    minibatch; ``options`` the tier tables of the case's ``[gan]`` table ({"kernel": {...},
    "mlp": {...}}); ``init_samples`` n points of rho_0 (its mid-quantiles with quantile latents),
    which a generator is fitted to or starts from.
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
    case: Any = None                       # the Case (grid, initial density, ...)
    target: Any = None                     # its GanTarget (log rho_d, grad, samples)
    rng: Optional[np.random.Generator] = None   # the run's generator (initial draws)


def _needs_extra(what: str) -> Callable[[BuildContext], Any]:
    def build(ctx: BuildContext):
        raise InputError(f"--{what} mlp needs JAX: {GAN_EXTRA}")
    return build


def _mlp(what: str) -> Callable[[BuildContext], Any]:
    """The JAX tier's builder (fpsolver.gan.neural), JAX imported only now; without it, one line."""
    def build_mlp(ctx: BuildContext):
        from . import neural
        try:
            neural._load_jax()
        except InputError:
            return _needs_extra(what)(ctx)
        return getattr(neural, f"build_{what}")(ctx)
    return build_mlp


def _exact(ctx: BuildContext):
    from ..particles.interacting import default_bandwidth, default_kde_grid
    from .discriminators import ExactDiscriminator
    b = default_bandwidth(ctx.case, ctx.n)
    return ExactDiscriminator(ctx.target, default_kde_grid(ctx.case.grid, b), b)


def _kernel(ctx: BuildContext):
    from .discriminators import KernelDiscriminator
    return KernelDiscriminator(ctx.dim, ctx.rng, **ctx.options.get("kernel", {}))


def _monotone(ctx: BuildContext):
    """G_0: exactly mu + sigma z for a 1D Gaussian rho_0 whose mass outside the box is below 1e-8
    (its W1 distance to the truncated law the PDE starts from is then below 1e-8 times the box
    width, far below the loop's O(eps) and 1/N errors), else the BVLS fit of the quantile map of
    rho_0 truncated to the box."""
    from scipy.special import ndtr
    from ..densities import GaussianMixture
    from .generators import MonotoneGenerator
    gen = MonotoneGenerator(ctx.knots)
    ini = ctx.case.initial
    gaussian = isinstance(ini, GaussianMixture) and len(ini.weights) == 1
    if gaussian:
        mu, sd = ini.means[0, 0], np.sqrt(ini.covs[0, 0, 0])
        lo, hi = ctx.case.grid.lower[0], ctx.case.grid.upper[0]
        gaussian = ndtr((lo - mu) / sd) + ndtr((mu - hi) / sd) <= 1e-8
    if gaussian:
        gen.theta[:2] = mu, sd
    else:
        from scipy.special import ndtri
        from .target import cell_quantiles
        p = (np.arange(ctx.batch) + 0.5) / ctx.batch
        _, initial = ctx.case.discretised()
        gen.fit_initial(ndtri(p), cell_quantiles(initial.cells, ctx.case.grid, p))
    return gen


def _particles(ctx: BuildContext):
    from .generators import ParticleGenerator
    g = ctx.case.grid
    return ParticleGenerator(ctx.init_samples, g.lower, g.upper)


DISCRIMINATORS: dict[str, Callable[[BuildContext], Any]] = {
    "exact": _exact,
    "kernel": _kernel,
    "mlp": _mlp("discriminator"),
}
GENERATORS: dict[str, Callable[[BuildContext], Any]] = {
    "particles": _particles,
    "monotone": _monotone,
    "mlp": _mlp("generator"),
}
