"""GAN in the loop (MATH.md section 8): Algorithm 1 with a discriminator and a generator of a chosen tier.

:mod:`.base` holds the protocols; the registries ``DISCRIMINATORS`` and ``GENERATORS`` (name ->
builder) live in :mod:`.registry`.
"""
from .base import Discriminator, Generator, logistic_loss  # noqa: F401
