"""Flows given by MonoFlow's h' alone (MATH.md section 7), in log space by construction.

MonoFlow writes a divergence-GAN particle flow as v = h'(log r) grad log r, r = rho_d / rho,
with h' > 0. Substituting t = log r = -w (w = log u) gives the PDE family of section 2 with

    beta'(u) = h'(-log u),      u beta'(u) = h'(-w) e^w   (so log p(w) = log h'(-w) + w exactly),
    beta(e^w) = int^w h'(-s) e^s ds.

The integral is taken from -inf where it converges there (then beta > 0, and tail cells do
not cancel: beta(e^w) is tiny, not a difference of two O(1) numbers), from 0 otherwise (then
beta(1) = 0 and beta < 0 below u = 1, as for reverse-kl). Convergence at -inf is decided from
the table's end: the integrand at s = -S below e^-60 (it decays like e^s h'(-s); the part
beyond -S is then below round-off of every tabulated value). It is tabulated once by 8-point
Gauss-Legendre panels of width 1/4 on [-S, S] (S = 2500 by default), accumulated in log space
(log-sum-exp), and evaluated at any w by the table entry of its panel plus the same rule on
the rest of the panel: to round-off for a smooth h'. Beyond |w| = S the forms are NaN, and the
solvers refuse, with one line, an initial density whose |log(rho_0 / rho_d)| exceeds S
(``Flow.w_limit``; u obeys a maximum principle, so the run stays within the initial range). The inverse (Newton updates in s = beta(u)) brackets w by the table and finishes
by Newton on log|beta|. The energy density f (f'' = beta'/u, f(1) = f'(1) = 0) is a second
table of the same panels: f'(e^w) = g(w) = int_0^w h'(-s) ds, and

    f(u) = u f'(u) - (beta(u) - beta(1))      (d/du of the right side is f'(u); both vanish at u = 1),

taken in log space as rho_d f = rho g(w) - rho_d (beta(u) - beta(1)); for |w| <= 1/2, where the two
terms cancel, the Gauss-Legendre rule f(e^w) = int_0^w expm1(w - r) p(r) dr of the presets.

>>> import numpy as np
>>> fl = flow_from_hprime(lambda t: 0.5 / (1 + np.exp(-t)), name="js-by-h")   # h' of js
>>> bool(np.allclose(fl.beta(np.array([0.5, 1.0, 4.0])), 0.5 * np.log1p([0.5, 1.0, 4.0]), rtol=1e-14))
True
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from scipy.special import logsumexp

from .flows import Flow
from .flows.local import _preset_energy

S_MAX = 2500.0
PANEL = 0.25
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(8)


def _log_integrand(log_h, s):
    """log(h'(-s) e^s) = log h'(-s) + s; raises if log h' is NaN or +inf (h' not positive and finite)."""
    s = np.asarray(s, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        lh = np.asarray(log_h(-s), dtype=float)
    if lh.shape != s.shape or np.any(np.isnan(lh)):
        raise ValueError("flow_from_hprime: h'(t) must return finite values >= 0 of t's shape "
                         "(a decreasing h gives backward diffusion)")
    if np.any(lh == np.inf):
        t = float(-s[lh == np.inf].ravel()[0])
        raise ValueError(f"flow_from_hprime: h'({t:g}) overflows; beta is tabulated for |t| <= {S_MAX:g}, "
                         "so give log_hprime (log h' in closed form)")
    return lh + s


def _log_panel_integrals(log_h, a, b):
    """log int_a^b h'(-s) e^s ds for arrays a < b, by the 8-point Gauss-Legendre rule."""
    mid, half = 0.5 * (a + b), 0.5 * (b - a)
    s = mid[..., None] + half[..., None] * _NODES
    return logsumexp(_log_integrand(log_h, s) + np.log(_WEIGHTS), axis=-1) + np.log(half)


class _Table:
    """Cumulative log-integrals over the panels from a base point outwards (one direction)."""

    def __init__(self, log_h, start: float, stop: float):
        edges = np.arange(start, stop + np.sign(stop - start) * 0.5 * PANEL, np.sign(stop - start) * PANEL)
        lo, hi = np.minimum(edges[:-1], edges[1:]), np.maximum(edges[:-1], edges[1:])
        panels = _log_panel_integrals(log_h, lo, hi)
        self.edges = edges
        self.cum = np.concatenate([[-np.inf], np.logaddexp.accumulate(panels)])  # log int from start to edge k

    def log_integral(self, log_h, w):
        """log |int_start^w| for w on this table's side of start."""
        k = np.clip(np.floor(np.abs(w - self.edges[0]) / PANEL).astype(int), 0, len(self.edges) - 2)
        e = self.edges[k]
        lo, hi = np.minimum(e, w), np.maximum(e, w)
        with np.errstate(divide="ignore"):
            rest = np.where(hi > lo, _log_panel_integrals(log_h, lo, np.where(hi > lo, hi, lo + 1.0)), -np.inf)
        return np.logaddexp(self.cum[k], rest), k


def _energy_far(log_h, beta_log):
    """(L, l) -> rho_d f(u) = rho g(w) - rho_d (beta(u) - beta(1)), w = L - l, g(w) = int_0^w h'(-s) ds
    (tabulated like beta: the integrand h'(-s) is _log_integrand of log h'(t) + t)."""
    def log_g_h(t):
        return log_h(t) + np.asarray(t, dtype=float)
    up, down = _Table(log_g_h, 0.0, S_MAX), _Table(log_g_h, 0.0, -S_MAX)
    s1, lb1 = (float(v[0]) for v in beta_log(np.zeros(1)))

    def far(L, l):
        w = L - l
        inside = np.abs(w) <= S_MAX
        w = np.where(inside, w, 0.0)
        lg = np.where(w >= 0, up.log_integral(log_g_h, np.maximum(w, 0.0))[0],
                      down.log_integral(log_g_h, np.minimum(w, 0.0))[0])
        sb, lb = beta_log(w)
        rho_g = np.sign(w) * np.exp(L + lg)
        beta_part = sb * np.exp(l + lb) - (s1 * np.exp(l + lb1) if np.isfinite(lb1) else 0.0)
        return np.where(inside, rho_g - beta_part, np.nan)
    return far


def flow_from_hprime(hprime: Callable, *, log_hprime: Optional[Callable] = None, name: str = "monoflow",
                     description: str = "") -> Flow:
    """The flow with beta'(u) = h'(-log u) (module docstring); ``hprime`` is vectorised, positive.

    ``log_hprime`` (optional) gives log h' directly: beta then stays exact where h' itself would
    over- or underflow (|t| of several hundred); without it, log(h'(t)) is used.

    >>> js = flow_from_hprime(lambda t: 0.5 / (1.0 + np.exp(-t)), name="js-by-hprime")
    >>> round(float(js.dbeta_at_one), 12)         # beta'(1) = h'(0) = 1/4, as for the js preset
    0.25
    >>> bool(abs(js.beta(np.array([3.0]))[0] - 0.5 * np.log(4.0)) < 1e-13)   # beta(u) = log(1 + u)/2
    True
    """
    def log_h(t):
        if log_hprime is not None:
            return log_hprime(t)
        return np.log(np.asarray(hprime(t), dtype=float))

    t = np.linspace(-50.0, 50.0, 201)
    if not np.all(np.exp(_log_integrand(log_h, -t) + t) > 0):
        raise ValueError("flow_from_hprime: h' must be positive on the real line")
    from_minus_inf = bool(_log_integrand(log_h, np.array([-S_MAX]))[0] < -60.0)
    if from_minus_inf:
        up = _Table(log_h, -S_MAX, S_MAX)
        down = None
    else:
        up, down = _Table(log_h, 0.0, S_MAX), _Table(log_h, 0.0, -S_MAX)

    def beta_log(w):
        w = np.asarray(w, dtype=float)
        inside = np.abs(w) <= S_MAX                   # beyond the table: not defined (NaN)
        w = np.where(inside, w, 0.0)
        if down is None:
            sign, lb = np.ones_like(w), up.log_integral(log_h, w)[0]
        else:
            lu, _ = up.log_integral(log_h, np.maximum(w, 0.0))
            ld, _ = down.log_integral(log_h, np.minimum(w, 0.0))
            sign, lb = np.sign(w), np.where(w >= 0, lu, ld)
        return np.where(inside, sign, np.nan), np.where(inside, lb, np.nan)

    def log_p(w):
        return _log_integrand(log_h, w)

    def w_of_beta(sign, lb):
        sign, lb = np.asarray(sign, dtype=float), np.asarray(lb, dtype=float)
        if down is None:
            table, side = up, np.ones_like(lb)
            valid = sign > 0
        else:
            table, side = None, np.where(sign < 0, -1.0, 1.0)
            valid = np.ones(lb.shape, dtype=bool)
        w = np.zeros_like(lb)
        for direction in ((1.0,) if down is None else (1.0, -1.0)):
            tb = table if table is not None else (up if direction > 0 else down)
            mask = valid & (side == direction)
            k = np.clip(np.searchsorted(tb.cum, lb[mask]) - 1, 0, len(tb.edges) - 2)
            w[mask] = tb.edges[k] + direction * 0.5 * PANEL
        for _ in range(60):                       # Newton on log|beta(e^w)| = lb
            _, g = beta_log(w)
            with np.errstate(invalid="ignore", over="ignore"):
                # d log|beta| / dw = p / beta: negative on the branch below u = 1
                step = np.where(valid, side * (g - lb) * np.exp(g - log_p(w)), 0.0)
            valid &= np.isfinite(step)            # beyond what h' represents: no inverse
            step = np.where(valid, step, 0.0)
            w_new = w - np.clip(step, -PANEL, PANEL)
            if down is not None:       # stay on the branch of the sign: halve towards u = 1 instead
                w_new = np.where(side * w_new <= 0, 0.5 * w, w_new)
            w = w_new
            if np.all(np.abs(step) <= 4e-16 * np.maximum(1.0, np.abs(w))):
                break
        w = np.where(valid, w, -np.inf)
        return np.where((sign == 0) & (down is not None), 0.0, w)

    energy_log = _preset_energy(_energy_far(log_h, beta_log), log_p)

    def beta(u):
        s, lb = beta_log(np.log(np.asarray(u, dtype=float)))
        return s * np.exp(lb)

    def dbeta(u):
        return np.asarray(hprime(-np.log(np.asarray(u, dtype=float))), dtype=float)

    return Flow(name, beta, dbeta, beta_log=beta_log, log_p=log_p, w_of_beta=w_of_beta,
                energy_log=energy_log, beta_positive=from_minus_inf, w_limit=S_MAX,
                description=description or f"{name}: beta'(u) = h'(-log u)")
