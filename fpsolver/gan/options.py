"""Options of ``fpsolver gan``: defaults, the case file's optional ``[gan]`` table, and validation.

Every option can be set in ``[gan]`` (sub-tables ``[gan.kernel]`` for the kernel discriminator and
``[gan.mlp]`` for the neural tier); the command line wins. Problems are one line naming the key
(:class:`~fpsolver.errors.CaseError`, exit status 2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Optional

from ..errors import CaseError

DISCRIMINATOR_KINDS = ("exact", "kernel", "mlp")
GENERATOR_KINDS = ("particles", "monotone", "mlp")
GENERATOR_LOSSES = ("mse", "minimax")
LATENTS = ("normal", "quantiles")
KERNEL_KEYS = {"features": int, "lengthscale": float, "penalty": float}
PATIENCE = 10      # a monitored divergence rising this many iterations in a row stops the run


@dataclass(frozen=True)
class GanOptions:
    """The loop's settings (MATH.md section 8); None means "the default for this case"."""

    epsilon: Optional[float] = None          # outer step; default: the case's dt
    discriminator: str = "exact"
    generator: Optional[str] = None          # default: monotone in 1D, particles in 2D
    knots: int = 16
    fit_steps: Optional[int] = None          # K; None: the exact fit where one exists
    generator_loss: str = "mse"
    latent: Optional[str] = None             # default: quantiles in 1D, normal in 2D
    n: int = 4000
    batch: Optional[int] = None              # default: n
    seed: int = 0
    kernel: dict = field(default_factory=dict)
    mlp: dict = field(default_factory=dict)

    def resolved(self, case) -> "GanOptions":
        """Defaults filled in for ``case``, and checked against it."""
        dim = case.grid.dim
        out = replace(self, epsilon=float(case.dt if self.epsilon is None else self.epsilon),
                      generator=self.generator or ("monotone" if dim == 1 else "particles"),
                      latent=self.latent or ("quantiles" if dim == 1 else "normal"),
                      batch=int(self.n if self.batch is None else self.batch))
        _check(out, case)
        return out


def _check(o: GanOptions, case) -> None:
    _choice(o.discriminator, "discriminator", DISCRIMINATOR_KINDS)
    _choice(o.generator, "generator", GENERATOR_KINDS)
    _choice(o.generator_loss, "generator_loss", GENERATOR_LOSSES)
    _choice(o.latent, "latent", LATENTS)
    if not (o.epsilon > 0 and math.isfinite(o.epsilon)):
        raise CaseError("gan.epsilon", f"must be > 0 (got {o.epsilon!r})")
    for i, t in enumerate(case.save_times):
        k = t / o.epsilon
        if abs(k - round(k)) > 1e-9 * max(1.0, k) or round(k) < 1:
            raise CaseError("gan.epsilon", f"save time {t:g} is not a multiple of epsilon = {o.epsilon:g}")
    for key in ("n", "batch", "knots"):
        if getattr(o, key) < 1:
            raise CaseError(f"gan.{key}", f"must be >= 1 (got {getattr(o, key)})")
    if o.fit_steps is not None and o.fit_steps < 1:
        raise CaseError("gan.fit_steps", f"must be >= 1 (got {o.fit_steps})")
    if o.generator_loss == "minimax" and o.fit_steps is None:
        raise CaseError("gan.fit_steps", "the minimax generator loss needs a number of gradient steps K")
    if o.generator == "monotone" and case.grid.dim != 1:
        raise CaseError("gan.generator", "the monotone map is 1D; use particles or mlp in 2D")
    if o.latent == "quantiles" and case.grid.dim != 1:
        raise CaseError("gan.latent", "quantile latents are 1D; use normal in 2D")
    for key in o.kernel:
        if key not in KERNEL_KEYS:
            raise CaseError(f"gan.kernel.{key}", f"unknown key (allowed: {', '.join(KERNEL_KEYS)})")
    if o.kernel.get("features", 1) < 1:
        raise CaseError("gan.kernel.features", "must be >= 1")
    for key in ("lengthscale",):
        if key in o.kernel and not o.kernel[key] > 0:
            raise CaseError(f"gan.kernel.{key}", "must be > 0")
    if "penalty" in o.kernel and not o.kernel["penalty"] >= 0:
        raise CaseError("gan.kernel.penalty", "must be >= 0")


def _choice(value, key, allowed):
    if value not in allowed:
        raise CaseError(f"gan.{key}", f"must be one of {', '.join(allowed)} (got {value!r})")


def from_table(table) -> GanOptions:
    """GanOptions from a case file's ``[gan]`` table (keys as the option names, dashes or underscores)."""
    if table is None:
        return GanOptions()
    if not isinstance(table, dict):
        raise CaseError("gan", f"must be a table, got {type(table).__name__}")
    known = {f.name: f for f in fields(GanOptions)}
    values = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        if key not in known:
            raise CaseError(f"gan.{raw_key}", f"unknown key (allowed: {', '.join(sorted(known))})")
        values[key] = _typed(key, value)
    return GanOptions(**values)


def _typed(key, value):
    """The value of one ``[gan]`` key, type-checked."""
    if key in ("discriminator", "generator", "generator_loss", "latent"):
        if not isinstance(value, str):
            raise CaseError(f"gan.{key}", f"must be a string, got {value!r}")
        return value
    if key in ("knots", "fit_steps", "n", "batch", "seed"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise CaseError(f"gan.{key}", f"must be an integer, got {value!r}")
        return value
    if key == "epsilon":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CaseError("gan.epsilon", f"must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, dict):
        raise CaseError(f"gan.{key}", f"must be a table, got {type(value).__name__}")
    if key == "kernel":
        out = {}
        for k, v in value.items():
            if k in KERNEL_KEYS and (isinstance(v, bool) or not isinstance(v, (int, float))
                                     or (KERNEL_KEYS[k] is int and not isinstance(v, int))):
                raise CaseError(f"gan.kernel.{k}", f"must be a{'n integer' if KERNEL_KEYS[k] is int else ' number'}, got {v!r}")
            out[k] = v
        return out
    return dict(value)


def merged(table_options: GanOptions, **cli) -> GanOptions:
    """The case file's options with the command line's or the caller's (those not None) on top,
    each checked like a ``[gan]`` key (one-line CaseError for an unknown name or a wrong type)."""
    known = {f.name for f in fields(GanOptions)}
    given = {k: v for k, v in cli.items() if v is not None}
    unknown = sorted(set(given) - known)
    if unknown:
        raise CaseError(f"gan.{unknown[0]}", f"unknown option (allowed: {', '.join(sorted(known))})")
    return replace(table_options, **{k: _typed(k, v) for k, v in given.items()})
