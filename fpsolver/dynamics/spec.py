"""The ``[discriminator]`` table of a case file: a discriminator with a flow of its own (MATH.md §10).

    [discriminator]
    rate = 100.0            # kappa > 0: discriminator speed relative to the generator
    metric = "L2"           # "L2" (default) or "kernel"
    initial = "zero"        # "zero" (f(0) = 0, D = 1/2; default) or "optimal" (f(0) = log(rho_d / rho_0))
    [discriminator.kernel]  # only with metric = "kernel"
    kind = "gaussian"
    sigma = 1.0

Without the table a case is the optimal-discriminator flow of §2 / §7, unchanged. The table is
allowed only with a flow that has a GAN form (a generator loss on the discriminator logit, whose
velocity h'(f) grad f is defined for any f). This module only validates and holds the table; the
grid and particle solvers share it (and :mod:`.dual`, the discriminator's numerics).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..errors import CaseError
from ..flows import GAN_FORM_FLOWS

# flows with a GAN form (MATH.md §2, §7); minimax and arcsinh count once they are presets
GAN_FORM_NAMES = GAN_FORM_FLOWS     # js, non-saturating, minimax (with shift), kl, arcsinh
METRICS = ("L2", "kernel")
INITIAL_LOGITS = ("zero", "optimal")
KERNEL_KINDS = ("gaussian",)
DUAL_SCHEMES = ("upwind",)   # the coupled system is hyperbolic: first-order upwind (fronts)


def gan_form_flows() -> tuple[str, ...]:
    """The flow presets of this installation that have a GAN form."""
    return tuple(GAN_FORM_NAMES)


@dataclass(frozen=True)
class DiscriminatorSpec:
    """A validated ``[discriminator]`` table. ``rate`` may be inf in the API (the optimal
    discriminator, f = log(rho_d / rho) at every instant), never in a case file."""

    rate: float
    metric: str = "L2"
    initial: str = "zero"
    sigma: Optional[float] = None     # kernel bandwidth (metric "kernel")

    def __post_init__(self):
        if not (self.rate > 0):
            raise ValueError(f"discriminator rate must be > 0, got {self.rate!r}")
        if self.metric not in METRICS or self.initial not in INITIAL_LOGITS:
            raise ValueError(f"unknown discriminator metric {self.metric!r} or initial {self.initial!r}")
        if (self.metric == "kernel") != (self.sigma is not None):
            raise ValueError("the kernel metric needs sigma, the L2 metric none")

    def to_dict(self) -> dict:
        out = {"rate": self.rate, "metric": self.metric, "initial": self.initial}
        if self.sigma is not None:
            out["kernel"] = {"kind": "gaussian", "sigma": self.sigma}
        return out


def _positive_number(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CaseError(key, f"must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise CaseError(key, f"must be finite and > 0 (got {value!r})")
    return float(value)


def _choice(value, key: str, options) -> str:
    if not isinstance(value, str) or value not in options:
        raise CaseError(key, f"unknown value {value!r} (one of {', '.join(options)})")
    return value


def parse_discriminator(table, flow: str) -> DiscriminatorSpec:
    """Validate a ``[discriminator]`` table for the case's flow; CaseError (one line) if invalid."""
    if not isinstance(table, dict):
        raise CaseError("discriminator", f"must be a table, got {type(table).__name__}")
    allowed = {"rate", "metric", "initial", "kernel"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise CaseError(f"discriminator.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
    forms = gan_form_flows()
    if flow not in forms:
        raise CaseError("discriminator", f"flow {flow!r} has no GAN form; a discriminator flow needs one "
                        f"of {', '.join(forms)}")
    if "rate" not in table:
        raise CaseError("discriminator.rate", "missing (kappa > 0, the discriminator's speed)")
    rate = _positive_number(table["rate"], "discriminator.rate")
    metric = _choice(table.get("metric", "L2"), "discriminator.metric", METRICS)
    initial = _choice(table.get("initial", "zero"), "discriminator.initial", INITIAL_LOGITS)
    sigma = None
    if metric == "kernel":
        kern = table.get("kernel")
        if kern is None:
            raise CaseError("discriminator.kernel", "missing: the kernel metric needs "
                            "[discriminator.kernel] kind = \"gaussian\", sigma = ...")
        if not isinstance(kern, dict):
            raise CaseError("discriminator.kernel", f"must be a table, got {type(kern).__name__}")
        extra = sorted(set(kern) - {"kind", "sigma"})
        if extra:
            raise CaseError(f"discriminator.kernel.{extra[0]}", "unknown key (allowed: kind, sigma)")
        _choice(kern.get("kind", "gaussian"), "discriminator.kernel.kind", KERNEL_KINDS)
        if "sigma" not in kern:
            raise CaseError("discriminator.kernel.sigma", "missing (the kernel bandwidth)")
        sigma = _positive_number(kern["sigma"], "discriminator.kernel.sigma")
    elif "kernel" in table:
        raise CaseError("discriminator.kernel", "only with metric = \"kernel\"")
    return DiscriminatorSpec(rate, metric, initial, sigma)
