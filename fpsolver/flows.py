"""The flow presets of MATH.md section 2, defined once for every solver.

Every flow is the conservative PDE

    d_t rho = div( rho_d grad beta(u) ),   u = rho / rho_d,   beta'(u) > 0,

with particle velocity v = -(rho_d / rho) grad beta(u) = beta'(u) (grad log rho_d - grad log rho)
and energy F(rho) = int rho_d f(u) dx, f'' = beta'/u. Each energy density is normalised so
that f(1) = f'(1) = 0 (adding a multiple of u - 1 changes nothing at fixed mass), hence
F >= 0 with equality only at rho = rho_d.

The finite-volume, FiPy and particle solvers all take a :class:`Flow`. Presets also carry an
integer ``code`` used by the Numba kernels (:func:`beta_scalar`, :func:`dbeta_scalar`), which
implement the same formulas; tests check the two agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numba
import numpy as np

Array = np.ndarray
CUSTOM = -1


@dataclass(frozen=True)
class Flow:
    """A member of the PDE family, given by beta and beta' (and optionally f, beta'')."""

    name: str
    beta: Callable[[Array], Array]
    dbeta: Callable[[Array], Array]
    energy_density: Optional[Callable[[Array], Array]] = None
    d2beta: Optional[Callable[[Array], Array]] = None
    code: int = CUSTOM
    description: str = field(default="", compare=False)

    @property
    def dbeta_at_one(self) -> float:
        """beta'(1): the linearised diffusion coefficient near equilibrium (MATH.md section 6)."""
        return float(self.dbeta(np.array([1.0]))[0])

    def velocity(self, rho: Array, grad_rho: Array, rho_d: Array, grad_rho_d: Array) -> Array:
        """Particle velocity v = beta'(u) (grad rho_d / rho_d - grad rho / rho), u = rho / rho_d.

        ``grad_*`` have a trailing axis of length d. For js this is
        v = (1/2) grad log(1 + rho_d / rho), the GAN generator update (MATH.md section 1).
        """
        u = rho / rho_d
        b = self.dbeta(u)
        return b[..., None] * (grad_rho_d / rho_d[..., None] - grad_rho / rho[..., None])

    def energy(self, rho: Array, rho_d: Array, cell_volume: float) -> float:
        """Discrete energy F = sum_i |K_i| rho_d,i f(u_i); NaN-free, raises if f is unknown."""
        if self.energy_density is None:
            raise ValueError(f"flow {self.name!r} has no energy density")
        u = rho / rho_d
        return float(np.sum(rho_d * self.energy_density(u)) * cell_volume)


_NS_SERIES = np.array([(-1.0) ** k / k for k in range(17, 1, -1)])  # u - log(1+u) = sum_{k>=2} (-1)^k u^k / k


def _u_minus_log1p(u):
    """u - log(1 + u) without cancellation: a series (Horner) below u = 0.1, direct above."""
    u = np.asarray(u, dtype=float)
    small = np.abs(u) < 0.1
    us = np.where(small, u, 0.0)
    series = np.zeros_like(us)
    for c in _NS_SERIES:
        series = series * us + c
    return np.where(small, series * us * us, u - np.log1p(np.where(small, 0.0, u)))


def _xlogx(u):
    u = np.asarray(u, dtype=float)
    return np.where(u > 0, u * np.log(np.where(u > 0, u, 1.0)), 0.0)


_LOG2 = np.log(2.0)

PRESETS: dict[str, Flow] = {
    "js": Flow(
        "js",
        beta=lambda u: 0.5 * np.log1p(u),
        dbeta=lambda u: 0.5 / (1.0 + u),
        d2beta=lambda u: -0.5 / (1.0 + u) ** 2,
        # JS(rho, rho_d) = int rho_d * 1/2 [u log u - (1+u) log(1+u) + (1+u) log 2]
        energy_density=lambda u: 0.5 * (_xlogx(u) - (1.0 + u) * np.log1p(u) + (1.0 + u) * _LOG2),
        code=0,
        description="Jensen-Shannon (GAN Algorithm 1): beta = log(1+u)/2",
    ),
    "reverse-kl": Flow(
        "reverse-kl",
        beta=lambda u: np.log(u),
        dbeta=lambda u: 1.0 / u,
        d2beta=lambda u: -1.0 / u**2,
        energy_density=lambda u: u - 1.0 - np.log(u),
        code=1,
        description="KL(rho_d || rho): beta = log u (logarithmic diffusion for uniform rho_d)",
    ),
    "kl": Flow(
        "kl",
        beta=lambda u: np.asarray(u, dtype=float) * 1.0,
        dbeta=lambda u: np.ones_like(np.asarray(u, dtype=float)),
        d2beta=lambda u: np.zeros_like(np.asarray(u, dtype=float)),
        energy_density=lambda u: _xlogx(u) - u + 1.0,
        code=2,
        description="KL(rho || rho_d): beta = u (linear Langevin Fokker-Planck)",
    ),
    "chi2": Flow(
        "chi2",
        beta=lambda u: np.asarray(u, dtype=float) ** 2,
        dbeta=lambda u: 2.0 * np.asarray(u, dtype=float),
        d2beta=lambda u: 2.0 * np.ones_like(np.asarray(u, dtype=float)),
        energy_density=lambda u: (np.asarray(u, dtype=float) - 1.0) ** 2,
        code=3,
        description="Pearson chi^2: beta = u^2 (porous-medium-like)",
    ),
    "non-saturating": Flow(
        "non-saturating",
        beta=_u_minus_log1p,
        dbeta=lambda u: u / (1.0 + u),
        d2beta=lambda u: 1.0 / (1.0 + u) ** 2,
        # 2 KL(M || rho_d), M = (rho + rho_d)/2
        energy_density=lambda u: (1.0 + u) * np.log((1.0 + u) / 2.0) - (u - 1.0),
        code=4,
        description="non-saturating GAN loss: beta = u - log(1+u)",
    ),
}

DEFAULT_FLOW = "js"


def get_flow(name_or_flow) -> Flow:
    """Return a preset by name, or pass a :class:`Flow` through."""
    if isinstance(name_or_flow, Flow):
        return name_or_flow
    try:
        return PRESETS[name_or_flow]
    except KeyError:
        raise ValueError(f"unknown flow {name_or_flow!r}; choose one of {', '.join(PRESETS)}") from None


def custom_flow(beta: Callable, dbeta: Callable, *, name: str = "custom",
                energy_density: Optional[Callable] = None) -> Flow:
    """A user flow d_t rho = div(rho_d grad beta(u)); ``dbeta`` must be positive.

    ``energy_density`` f (with f'' = beta'/u) is optional; without it no energy is reported.

    >>> fl = custom_flow(lambda u: u, lambda u: np.ones_like(u), name="linear")
    >>> float(fl.dbeta_at_one)
    1.0
    """
    u = np.geomspace(1e-6, 1e6, 25)
    d = np.asarray(dbeta(u), dtype=float)
    if d.shape != u.shape or not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ValueError("custom flow: dbeta(u) must return positive finite values of u's shape")
    return Flow(name, beta, dbeta, energy_density=energy_density)


# --- Numba versions of beta and beta' for the presets (kept next to the numpy ones) ---

@numba.njit(cache=True, inline="always")
def beta_scalar(code, u):
    if code == 0:
        return 0.5 * np.log1p(u)
    elif code == 1:
        return np.log(u)
    elif code == 2:
        return u
    elif code == 3:
        return u * u
    else:
        if u < 0.1:  # series, as in _u_minus_log1p: u - log(1+u) cancels for small u
            s = 0.0
            for k in range(17, 1, -1):
                s = s * u + (-1.0) ** k / k
            return s * u * u
        return u - np.log1p(u)


@numba.njit(cache=True, inline="always")
def dbeta_scalar(code, u):
    if code == 0:
        return 0.5 / (1.0 + u)
    elif code == 1:
        return 1.0 / u
    elif code == 2:
        return 1.0
    elif code == 3:
        return 2.0 * u
    else:
        return u / (1.0 + u)
