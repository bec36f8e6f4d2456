"""The flow presets of MATH.md section 2, defined once for every solver, in log space.

Every flow is the conservative PDE

    d_t rho = div( rho_d grad beta(u) ),   u = rho / rho_d = e^w,   beta'(u) > 0,

with particle velocity v = -(rho_d / rho) grad beta(u) = beta'(u) (grad log rho_d - grad log rho)
and energy F(rho) = int rho_d f(u) dx, f'' = beta'/u. Each energy density is normalised so
that f(1) = f'(1) = 0 (adding a multiple of u - 1 changes nothing at fixed mass), hence
F >= 0 with equality only at rho = rho_d.

Any density ratio. Where the data are narrower than the generator (the ordinary GAN start)
w = log(rho / rho_d) reaches +-1800 inside the box, so u, beta(u) and rho_d u cannot be formed.
Every preset therefore also gives, as functions of w alone and without forming e^w where it
is not representable:

- ``beta_log(w) -> (sign, log|beta(e^w)|)``,
- ``log_p(w) = log(u beta'(u)) = log d beta / dw`` (the Newton matrix and the particle
  velocity need beta'(u) = e^{log_p(w) - w}),
- ``w_of_beta(sign, log|s|)``: the inverse, w with beta(e^w) = s (Newton updates in s = beta(u)),
- ``energy_log(L, l) = rho_d f(rho / rho_d)`` from L = log rho and l = log rho_d (0 * inf-free,
  so an underflowing rho_d gives the limit of the integrand, never NaN).

e.g. js: beta = softplus(w)/2, log_p = log(1/2) - softplus(-w). The u-space ``beta``, ``dbeta``
and ``d2beta`` remain for manufactured solutions and tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..errors import InputError

Array = np.ndarray
_LOG2 = float(np.log(2.0))
_LOGHALF = -_LOG2


def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}), exact for every finite x (and x = +-inf).

    The formula of ``np.logaddexp(0, x)``, from numpy's vectorised exp and log1p instead of its
    per-element library calls: 2-3x faster, within a few ulp of it (the flows evaluate it a dozen
    times per Newton iteration, and eight times per cell in the energy's quadrature)."""
    x = np.asarray(x, dtype=float)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def logaddexp(a, b):
    """log(e^a + e^b) = max(a, b) + log1p(e^{-|a - b|}), as :func:`softplus` (``np.logaddexp``'s
    formula from vectorised exp and log1p); -inf where both are -inf, +inf where either is +inf."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    top = np.maximum(a, b)
    with np.errstate(invalid="ignore"):
        d = np.abs(a - b)
    return np.where(np.isinf(top), top, top + np.log1p(np.exp(-d)))


def _log_softplus(x):
    """log(log(1 + e^x)); below x = -30 (where e^x may underflow) x - e^x / 2, whose next term
    e^{2x}/24 is below round-off."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(x < -30.0, x - 0.5 * np.exp(np.minimum(x, -30.0)), np.log(softplus(np.maximum(x, -30.0))))


def _xmul(a, b):
    """a * b with 0 * inf = 0 (an underflowed density times a diverging logarithm)."""
    with np.errstate(invalid="ignore"):
        return np.where(a == 0.0, 0.0, a * b)


_NS_SERIES = np.array([(-1.0) ** k / k for k in range(17, 1, -1)])  # u - log(1+u) = sum_{k>=2} (-1)^k u^k / k


def _ns_series(u):
    """(u - log(1 + u)) / u^2 by its series (Horner), for |u| < 0.1."""
    s = np.zeros_like(u)
    for c in _NS_SERIES:
        s = s * u + c
    return s


def _u_minus_log1p(u):
    """u - log(1 + u) without cancellation: a series below u = 0.1, direct above."""
    u = np.asarray(u, dtype=float)
    small = np.abs(u) < 0.1
    us = np.where(small, u, 0.0)
    return np.where(small, _ns_series(us) * us * us, u - np.log1p(np.where(small, 0.0, u)))


def _xlogx(u):
    u = np.asarray(u, dtype=float)
    return np.where(u > 0, u * np.log(np.where(u > 0, u, 1.0)), 0.0)


def _positive(logabs):
    return np.ones_like(logabs), logabs


def _ns_beta_log(w):
    """log(u - log(1 + u)), u = e^w: series below u = 0.1, direct up to w = 30, asymptotic above."""
    w = np.asarray(w, dtype=float)
    small = w < np.log(0.1)
    big = w > 30.0
    mid = ~(small | big)
    us = np.exp(np.where(small, w, -5.0))
    wm = np.where(mid, w, 0.0)
    wb = np.where(big, w, 31.0)
    out = np.where(small, 2 * np.where(small, w, 0.0) + np.log(_ns_series(us)),
                   np.where(mid, np.log(_u_minus_log1p(np.exp(wm))),
                            wb + np.log1p(-softplus(wb) * np.exp(-wb))))
    return _positive(out)


def _log_expm1_of_log(lx):
    """log(e^x - 1) from lx = log x > -inf (inverts softplus: softplus(log(e^x - 1)) = x)."""
    lx = np.asarray(lx, dtype=float)
    x = np.exp(np.minimum(lx, 700.0))
    with np.errstate(divide="ignore"):
        mid = np.log(np.expm1(np.clip(x, 1e-300, 30.0)))
        big = x + np.log1p(-np.exp(-np.maximum(x, 30.0)))
    # log(e^x - 1) = log x + x/2 + x^2/24 + ...: below lx = -30 the first correction suffices
    return np.where(lx < -30.0, lx + 0.5 * x, np.where(x > 30.0, big, mid))


def _ns_w_of_beta(sign, lb):
    """Invert u - log(1 + u) = e^{lb} for w = log u: Newton on log beta(e^w) = lb (monotone, concave
    in w for large w, convex for small), from the small-u (u^2/2) or large-u (u) asymptote."""
    lb = np.asarray(lb, dtype=float)
    w = np.where(lb < 0.0, 0.5 * (lb + _LOG2), lb + np.log1p(np.exp(-np.abs(lb))))
    for _ in range(60):
        _, g = _ns_beta_log(w)
        lp = 2.0 * w - softplus(w)
        step = (g - lb) * np.exp(g - lp)       # d log beta / dw = p / beta
        w = w - np.clip(step, -2.0, 2.0)
        if np.all(np.abs(step) <= 4e-16 * np.maximum(1.0, np.abs(w))):
            break
    return w


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)
NEAR_ONE = 0.5


def _gl8_sum(terms):
    """sum_k terms[k] over the 8 nodes (first axis), in the pairwise order of numpy's sum over a
    contiguous axis of length 8, so that the node-first layout gives the same bits as the
    node-last one it replaced (and adds whole arrays instead of reducing rows of eight)."""
    t = terms
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))


def _gl8_nodes(w):
    """The Gauss-Legendre nodes of [0, w], node-first: r[k] = (w / 2) (x_k + 1)."""
    return (0.5 * w)[None] * (_GL_NODES + 1.0).reshape((8,) + (1,) * w.ndim)


def _gl8_weights(ndim):
    """The Gauss-Legendre weights, node-first, broadcastable against nodes of ndim-dimensional w."""
    return _GL_WEIGHTS.reshape((8,) + (1,) * ndim)


def _f_near_one(log_p, w):
    """f(e^w) = int_0^w expm1(w - r) p(r) dr  (f(u) = int_1^u (u - z) beta'(z)/z dz, z = e^r),
    by 8-point Gauss-Legendre: to round-off for |w| <= NEAR_ONE, where the closed forms cancel."""
    w = np.asarray(w, dtype=float)
    r = _gl8_nodes(w)
    return 0.5 * w * _gl8_sum(_gl8_weights(w.ndim) * np.expm1(w[None] - r) * np.exp(log_p(r)))


def _preset_energy(far, log_p):
    """rho_d f(u) from (L, l) = (log rho, log rho_d): the closed form ``far``, the quadrature of
    :func:`_f_near_one` where |log u| <= NEAR_ONE, and 0 in a cell where rho and rho_d both vanish."""
    def energy_log(L, l):
        L, l = np.asarray(L, dtype=float), np.asarray(l, dtype=float)
        if L.shape != l.shape:
            L, l = np.broadcast_arrays(L, l)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            w = L - l
            near = np.abs(w) <= NEAR_ONE
            if not np.any(near):
                out = far(L, l)
            else:   # each form on its own cells only (both are elementwise)
                out = np.empty(w.shape)
                out[near] = np.exp(l[near]) * _f_near_one(log_p, w[near])
                rest = ~near
                if np.any(rest):
                    out[rest] = far(L[rest], l[rest])
        return np.where((L == -np.inf) & (l == -np.inf), 0.0, out)
    return energy_log


def _rkl_energy(L, l):
    """rho_d (u - 1 - log u) = rho - rho_d (1 + w); expm1 form near u = 1 against cancellation."""
    w = L - l
    with np.errstate(invalid="ignore", over="ignore"):
        near = np.exp(l) * (np.expm1(np.clip(w, -1.0, 1.0)) - np.clip(w, -1.0, 1.0))
        far = np.exp(L) - _xmul(np.exp(l), 1.0 + w)
    return np.where(np.abs(w) < 1.0, near, far)


def _chi2_energy(L, l):
    """rho_d (u - 1)^2 = exp(l + 2 log|expm1(w)|): inf (not NaN) where it is not representable."""
    w = L - l
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        lg = np.log(np.abs(np.expm1(np.minimum(w, 30.0))))
        # far above rho_d: (u - 1)^2 = u^2 to round-off, rho^2 / rho_d (inf, not NaN, if rho_d = 0)
        return np.where(w > 30.0, np.exp(2 * L - l), np.exp(l + 2 * lg))


@dataclass(frozen=True)
class Flow:
    """A member of the PDE family: beta and beta' in u, and their log-space forms in w = log u."""

    name: str
    beta: Callable[[Array], Array]
    dbeta: Callable[[Array], Array]
    beta_log: Callable[[Array], tuple]
    log_p: Callable[[Array], Array]
    w_of_beta: Callable[[Array, Array], Array]
    energy_log: Optional[Callable[[Array, Array], Array]] = None
    beta_positive: bool = True      # beta maps u > 0 onto (0, inf) (beta(0+) = 0); else onto R
    w_limit: float = np.inf          # |log u| up to which the log-space forms hold (tabulated flows)
    d2beta: Optional[Callable[[Array], Array]] = None
    description: str = field(default="", compare=False)

    def __deepcopy__(self, memo) -> "Flow":
        return self             # immutable: a copied case keeps the very flow it was given

    @property
    def dbeta_at_one(self) -> float:
        """beta'(1): the linearised diffusion coefficient near equilibrium (MATH.md section 6)."""
        return float(np.exp(self.log_p(np.zeros(1)))[0])

    @property
    def has_energy(self) -> bool:
        return self.energy_log is not None

    def log_dbeta(self, w: Array) -> Array:
        """log beta'(e^w) = log_p(w) - w, finite for every finite w."""
        return self.log_p(w) - w

    def energy_density(self, u: Array) -> Array:
        """f(u) (rho_d = 1)."""
        with np.errstate(divide="ignore"):
            return self.energy_log(np.log(np.asarray(u, dtype=float)), np.zeros(np.shape(u)))

    def velocity(self, log_rho: Array, grad_log_rho: Array, log_rho_d: Array, grad_log_rho_d: Array) -> Array:
        """Particle velocity v = beta'(u) (grad log rho_d - grad log rho), u = rho / rho_d, in log space.

        ``grad_*`` have a trailing axis of length d. For js this is
        v = (1/2) grad log(1 + rho_d / rho), the GAN generator update (MATH.md section 1).
        """
        b = np.exp(self.log_dbeta(log_rho - log_rho_d))
        return b[..., None] * (grad_log_rho_d - grad_log_rho)

    def energy(self, rho: Array, rho_d: Array, cell_volume: float, *, log_rho_d: Optional[Array] = None) -> float:
        """Discrete energy F = sum_i |K_i| rho_d,i f(u_i); never NaN, raises if f is unknown.

        Pass ``log_rho_d`` where rho_d underflows (a narrow target); near u = 1 the integrand of the
        presets is a quadrature of f'' = beta'/u, so it keeps its relative accuracy there too.
        """
        with np.errstate(divide="ignore"):
            L = np.log(np.asarray(rho, dtype=float))
            l = np.log(np.asarray(rho_d, dtype=float)) if log_rho_d is None else np.asarray(log_rho_d, float)
        return self.energy_from_logs(L, l, cell_volume)

    def energy_from_logs(self, log_rho: Array, log_rho_d: Array, cell_volume: float) -> float:
        """F = sum_i |K_i| rho_d,i f(u_i) from log rho and log rho_d (inf where it overflows, never NaN)."""
        if self.energy_log is None:
            raise ValueError(f"flow {self.name!r} has no energy density")
        with np.errstate(all="ignore"):
            return float(np.sum(self.energy_log(log_rho, log_rho_d)) * cell_volume)


    def check_representable(self, log_rho0: Array, log_rho_d: Array, cell_volume: float) -> None:
        """Raise InputError (one line) where the energy of rho_0 overflows double precision.

        (chi2 from a broad start onto a narrow target: int rho_0^2 / rho_d ~ e^{hundreds}; the
        flow, its velocity -2 grad(rho / rho_d) and its energy are then not defined in floating point.)
        """
        w_max = float(np.max(np.abs(np.asarray(log_rho0) - np.asarray(log_rho_d))))
        if w_max > self.w_limit:    # u obeys a maximum principle: the initial range is the run's range
            raise InputError(f"flow {self.name!r} is tabulated for |log(rho / rho_d)| <= {self.w_limit:g}, "
                             f"and the initial density reaches {w_max:.0f}")
        if self.energy_log is None:
            return
        if not np.isfinite(self.energy_from_logs(log_rho0, log_rho_d, cell_volume)):
            w_max = float(np.max(np.asarray(log_rho0) - np.asarray(log_rho_d)))
            raise InputError(f"the {self.name} energy of the initial density overflows double precision "
                             f"(log(rho_0 / rho_d) reaches {w_max:.0f} inside the box): the flow is not "
                             "defined for this pair; choose a target that covers the initial density "
                             "or another flow")


PRESETS: dict[str, Flow] = {
    "js": Flow(
        "js",
        beta=lambda u: 0.5 * np.log1p(u),
        dbeta=lambda u: 0.5 / (1.0 + u),
        d2beta=lambda u: -0.5 / (1.0 + u) ** 2,
        beta_log=lambda w: _positive(_LOGHALF + _log_softplus(w)),
        log_p=lambda w: _LOGHALF - softplus(-np.asarray(w, dtype=float)),
        w_of_beta=lambda sign, lb: _log_expm1_of_log(lb + _LOG2),
        # JS(rho, rho_d) = int 1/2 [rho log(2 rho / (rho + rho_d)) + rho_d log(2 rho_d / (rho + rho_d))]
        energy_log=_preset_energy(lambda L, l: 0.5 * (_xmul(np.exp(L), _LOG2 - softplus(l - L))
                                                      + _xmul(np.exp(l), _LOG2 - softplus(L - l))),
                                  lambda w: _LOGHALF - softplus(-w)),
        description="Jensen-Shannon (GAN Algorithm 1): beta = log(1+u)/2",
    ),
    "reverse-kl": Flow(
        "reverse-kl",
        beta=lambda u: np.log(u),
        dbeta=lambda u: 1.0 / u,
        d2beta=lambda u: -1.0 / u**2,
        beta_log=lambda w: (np.sign(w), np.log(np.abs(np.where(w == 0, 1.0, w))) - np.where(w == 0, np.inf, 0.0)),
        log_p=lambda w: np.zeros_like(np.asarray(w, dtype=float)),
        w_of_beta=lambda sign, lb: sign * np.exp(lb),
        beta_positive=False,
        energy_log=_preset_energy(_rkl_energy, np.zeros_like),
        description="KL(rho_d || rho): beta = log u (logarithmic diffusion for uniform rho_d)",
    ),
    "kl": Flow(
        "kl",
        beta=lambda u: np.asarray(u, dtype=float) * 1.0,
        dbeta=lambda u: np.ones_like(np.asarray(u, dtype=float)),
        d2beta=lambda u: np.zeros_like(np.asarray(u, dtype=float)),
        beta_log=lambda w: _positive(np.asarray(w, dtype=float) * 1.0),
        log_p=lambda w: np.asarray(w, dtype=float) * 1.0,
        w_of_beta=lambda sign, lb: np.asarray(lb, dtype=float) * 1.0,
        # rho log(rho / rho_d) - rho + rho_d
        energy_log=_preset_energy(lambda L, l: _xmul(np.exp(L), L - l - 1.0) + np.exp(l), lambda w: w),
        description="KL(rho || rho_d): beta = u (linear Langevin Fokker-Planck)",
    ),
    "chi2": Flow(
        "chi2",
        beta=lambda u: np.asarray(u, dtype=float) ** 2,
        dbeta=lambda u: 2.0 * np.asarray(u, dtype=float),
        d2beta=lambda u: 2.0 * np.ones_like(np.asarray(u, dtype=float)),
        beta_log=lambda w: _positive(2.0 * np.asarray(w, dtype=float)),
        log_p=lambda w: _LOG2 + 2.0 * np.asarray(w, dtype=float),
        w_of_beta=lambda sign, lb: 0.5 * np.asarray(lb, dtype=float),
        energy_log=_preset_energy(_chi2_energy, lambda w: _LOG2 + 2.0 * w),
        description="Pearson chi^2: beta = u^2 (porous-medium-like)",
    ),
    "non-saturating": Flow(
        "non-saturating",
        beta=_u_minus_log1p,
        dbeta=lambda u: u / (1.0 + u),
        d2beta=lambda u: 1.0 / (1.0 + u) ** 2,
        beta_log=_ns_beta_log,
        log_p=lambda w: 2.0 * np.asarray(w, dtype=float) - softplus(w),
        w_of_beta=_ns_w_of_beta,
        # 2 KL(M || rho_d), M = (rho + rho_d)/2: (rho_d + rho) (log((rho_d + rho) / rho_d) - log 2) - rho + rho_d
        energy_log=_preset_energy(lambda L, l: (_xmul(np.exp(logaddexp(L, l)), softplus(L - l) - _LOG2)
                                                - np.exp(L) + np.exp(l)),
                                  lambda w: 2.0 * w - softplus(w)),
        description="non-saturating GAN loss: beta = u - log(1+u)",
    ),
}

DEFAULT_FLOW = "js"


def minimax_flow(shift: float = 0.0) -> Flow:
    """MonoFlow's minimax loss log(1 - D) with logit shift C (MATH.md section 7): h'(t) = sigmoid(t + C),

        beta(u) = e^C log(1 + u e^{-C}) = e^C softplus(w - C),   beta'(u) = 1 / (1 + u e^{-C}),
        u beta'(u) = e^{w - softplus(w - C)} = e^{C - softplus(C - w)},

    energy f(u) = u f'(u) - beta(u) + beta(1) with f'(u) = softplus(C) - softplus(C - w) (f'' = beta'/u,
    f(1) = f'(1) = 0). C = 0 is exactly twice js.
    """
    c = float(shift)
    if not np.isfinite(c):
        raise ValueError(f"minimax: shift must be finite (got {shift!r})")
    ec, em = float(np.exp(c)), float(np.exp(-c))
    sp_c, sp_mc = float(softplus(c)), float(softplus(-c))

    def energy_far(L, l):
        w = L - l
        # rho f'(u) + rho_d e^C (softplus(-C) - softplus(w - C))
        return _xmul(np.exp(L), sp_c - softplus(c - w)) + _xmul(np.exp(l + c), sp_mc - softplus(w - c))

    def log_p(w):
        return c - softplus(c - np.asarray(w, dtype=float))

    name = "minimax" if c == 0.0 else f"minimax(shift={c:g})"
    return Flow(
        name,
        beta=lambda u: ec * np.log1p(np.asarray(u, dtype=float) * em),
        dbeta=lambda u: 1.0 / (1.0 + np.asarray(u, dtype=float) * em),
        d2beta=lambda u: -em / (1.0 + np.asarray(u, dtype=float) * em) ** 2,
        beta_log=lambda w: _positive(c + _log_softplus(np.asarray(w, dtype=float) - c)),
        log_p=log_p,
        w_of_beta=lambda sign, lb: c + _log_expm1_of_log(np.asarray(lb, dtype=float) - c),
        energy_log=_preset_energy(energy_far, log_p),
        description=f"minimax GAN loss log(1 - D), logit shift C = {c:g}: beta = e^C log(1 + u e^-C)",
    )


def _arcsinh_log_hprime(t):
    """log h'(t) = -log(1 + t^2) / 2 of the arcsinh loss, h'(t) = 1 / sqrt(1 + t^2)."""
    return -0.5 * np.log1p(np.square(np.asarray(t, dtype=float)))


_SECTION7: dict[str, Flow] = {}


def arcsinh_flow() -> Flow:
    """MonoFlow's arcsinh loss (MATH.md section 7): h'(t) = 1 / sqrt(1 + t^2), beta'(u) = 1 / sqrt(1 + log^2 u);
    beta and f by quadrature in log u (:func:`fpsolver.monoflow.flow_from_hprime`), built once."""
    if "arcsinh" not in _SECTION7:
        from ..monoflow import flow_from_hprime   # monoflow builds on this module: import when first asked
        tab = flow_from_hprime(lambda t: np.exp(_arcsinh_log_hprime(t)), log_hprime=_arcsinh_log_hprime,
                               name="arcsinh", description="arcsinh loss: beta'(u) = 1 / sqrt(1 + log^2 u)")
        _SECTION7["arcsinh"] = _smooth_near_one(tab)
    return _SECTION7["arcsinh"]


def _smooth_near_one(tab: Flow) -> Flow:
    """The tabulated flow with beta(e^w) = beta(1) + int_0^w p(r) dr by 8-point Gauss-Legendre where
    |w| <= NEAR_ONE: u = 1 is a panel edge of the table, where the two sides round differently (a
    1e-16 beta(1) step), and at equilibrium every cell straddles it; the rule here is smooth through
    w = 0 (so Newton reaches its 1e-15 mass residual), and the inverse refines the table's by Newton."""
    _, lb1 = (float(v[0]) for v in tab.beta_log(np.zeros(1)))
    b1 = np.exp(lb1)

    def near(w):
        r = _gl8_nodes(w)
        return np.log(b1 + 0.5 * w * _gl8_sum(_gl8_weights(w.ndim) * np.exp(tab.log_p(r))))

    def beta_log(w):
        w = np.asarray(w, dtype=float)
        sign, lb = tab.beta_log(w)
        inside = np.abs(w) <= NEAR_ONE
        if np.any(inside):
            lb = np.where(inside, near(np.where(inside, w, 0.0)), lb)
        return sign, lb

    def w_of_beta(sign, lb):
        w = tab.w_of_beta(sign, lb)
        lb = np.asarray(lb, dtype=float)
        for _ in range(3):       # Newton on log beta near u = 1: d log beta / dw = p / beta
            inside = np.abs(w) <= NEAR_ONE
            if not np.any(inside):
                break
            wi = np.where(inside, w, 0.0)
            step = (near(wi) - lb) * np.exp(near(wi) - tab.log_p(wi))
            w = np.where(inside, w - step, w)
        return w

    return Flow(tab.name, tab.beta, tab.dbeta, beta_log=beta_log, log_p=tab.log_p, w_of_beta=w_of_beta,
                energy_log=tab.energy_log, beta_positive=tab.beta_positive, w_limit=tab.w_limit,
                description=tab.description)


MONOFLOW_LOSSES = ("minimax", "arcsinh")
"""MATH.md section 7: flows by name beside the section-2 PRESETS (minimax takes ``shift``)."""
FLOW_KINDS = tuple(PRESETS) + MONOFLOW_LOSSES
GAN_FORM_FLOWS = ("js", "non-saturating", "minimax", "kl", "arcsinh")
"""Flows whose generator loss has a GAN form (MATH.md sections 2 and 7), usable in the GAN loop."""
_MINIMAX0 = minimax_flow(0.0)


def get_flow(name_or_flow, *, shift: Optional[float] = None) -> Flow:
    """Return a flow by name (a section-2 preset, "minimax" with ``shift`` C, "arcsinh"), or pass a
    :class:`Flow` through."""
    if isinstance(name_or_flow, Flow):
        return name_or_flow
    if shift is not None and name_or_flow != "minimax":
        raise ValueError(f"flow {name_or_flow!r} takes no shift (only minimax does)")
    if name_or_flow == "minimax":
        return _MINIMAX0 if shift is None or float(shift) == 0.0 else minimax_flow(shift)
    if name_or_flow == "arcsinh":
        return arcsinh_flow()
    try:
        return PRESETS[name_or_flow]
    except KeyError:
        raise ValueError(f"unknown flow {name_or_flow!r}; choose one of {', '.join(FLOW_KINDS)}") from None


def custom_flow(beta: Callable, dbeta: Callable, *, name: str = "custom",
                energy_density: Optional[Callable] = None) -> Flow:
    """A user flow d_t rho = div(rho_d grad beta(u)); ``dbeta`` must be positive.

    The log-space forms are taken from beta and beta' evaluated at u = e^w, so a user flow is
    limited to ratios u that double precision represents (|log u| < ~700); the presets are not.
    ``energy_density`` f (with f'' = beta'/u) is optional; without it no energy is reported.

    >>> fl = custom_flow(lambda u: u, lambda u: np.ones_like(u), name="linear")
    >>> float(fl.dbeta_at_one)
    1.0
    """
    u = np.geomspace(1e-6, 1e6, 25)
    d = np.asarray(dbeta(u), dtype=float)
    if d.shape != u.shape or not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ValueError("custom flow: dbeta(u) must return positive finite values of u's shape")

    def beta_log(w):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            b = np.asarray(beta(np.exp(w)), dtype=float)
            return np.sign(b), np.log(np.abs(b))

    def log_p(w):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return np.log(np.asarray(dbeta(np.exp(w)), dtype=float)) + w

    def w_of_beta(sign, lb):
        """Bisection in w (beta is increasing): 200 halvings of [-800, 800] reach round-off."""
        target = sign * np.exp(lb)
        lo, hi = np.full(np.shape(lb), -800.0), np.full(np.shape(lb), 800.0)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            sm, lm = beta_log(mid)
            below = sm * np.exp(lm) < target
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    energy_log = None
    if energy_density is not None:
        def energy_log(L, l):
            with np.errstate(over="ignore", invalid="ignore"):
                return _xmul(np.exp(l), energy_density(np.exp(L - l)))
    with np.errstate(all="ignore"):
        positive = bool(np.asarray(beta(np.array([1e-300])), dtype=float)[0] >= 0)
    return Flow(name, beta, dbeta, beta_log=beta_log, log_p=log_p, w_of_beta=w_of_beta,
                energy_log=energy_log, beta_positive=positive)
