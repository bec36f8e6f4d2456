"""GAN in the loop (MATH.md section 8): Algorithm 1 with a discriminator and a generator of a chosen tier.

:mod:`.base` holds the protocols, :mod:`.loop` the loop (``run_gan(case, **options) -> Result``); the
registries ``DISCRIMINATORS`` and ``GENERATORS`` (name ->
builder) live in :mod:`.registry`.
"""
from .base import Discriminator, Generator, logistic_loss  # noqa: F401
from .loop import run_gan  # noqa: E402,F401
from .options import GanOptions  # noqa: E402,F401
