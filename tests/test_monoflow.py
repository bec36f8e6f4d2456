"""Flows given by h' alone (fpsolver.monoflow, MATH.md section 7): log space by construction."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, log_expit

from fpsolver.flows import PRESETS
from fpsolver.fv import FVOperator, crandall_liggett
from fpsolver.monoflow import flow_from_hprime

EPS = np.finfo(float).eps
# MATH.md section 2: h'(t), t = log r = -log u, and log h'
HPRIME = {
    "js": (lambda t: 0.5 * expit(t), lambda t: np.log(0.5) + log_expit(t)),
    "kl": (lambda t: np.ones_like(t), lambda t: np.zeros_like(t)),
    "reverse-kl": (lambda t: np.exp(t), lambda t: np.asarray(t, float) * 1.0),
    "chi2": (lambda t: 2 * np.exp(np.minimum(-t, 700.0)), lambda t: np.log(2.0) - t),
    "non-saturating": (lambda t: expit(-t), lambda t: log_expit(-t)),
}
W = np.concatenate([np.linspace(-1800.0, 1800.0, 145), np.linspace(-3.0, 3.0, 25), [1e-9, -1e-9]])


@pytest.mark.parametrize("name,with_log", [(n, True) for n in sorted(HPRIME)]
                         + [(n, False) for n in ("js", "kl", "chi2", "non-saturating")])
def test_quadrature_reproduces_the_preset_in_log_space(name, with_log):
    """beta from the tabulated quadrature against the preset's closed form (same additive
    constant: from -inf where the integral converges, from u = 1 for reverse-kl), log p exact,
    and the inverse; with log h' given over |w| <= 1800, with h' alone where h' is representable."""
    h, lh = HPRIME[name]
    fl = flow_from_hprime(h, log_hprime=lh if with_log else None, name=name)
    w = W if with_log else W[np.abs(W) < 600]
    sign, lb = fl.beta_log(w)
    s0, lb0 = PRESETS[name].beta_log(w)
    assert fl.beta_positive == PRESETS[name].beta_positive
    np.testing.assert_array_equal(sign, s0)
    # quadrature to round-off: relative error of beta ~ 64 eps; of log|beta|, that over |log|beta||
    fin = np.isfinite(lb0)                   # beta(1) = 0 for reverse-kl: log|beta| = -inf at w = 0
    np.testing.assert_array_equal(lb[~fin], lb0[~fin])
    assert np.all(np.abs(lb[fin] - lb0[fin]) <= 64 * EPS * np.maximum(1.0, np.abs(lb0[fin])))
    # log p = log h'(-w) + w: the sum carries eps |w| absolutely
    assert np.all(np.abs(fl.log_p(w) - PRESETS[name].log_p(w)) <= 4 * EPS * (1.0 + 2 * np.abs(w)))
    np.testing.assert_allclose(fl.w_of_beta(sign, lb), w, rtol=64 * EPS, atol=64 * EPS)


def test_beta_prime_is_h_prime_by_differences():
    """A flow with no closed-form beta (arcsinh, MATH.md section 7): d beta / du = h'(-log u)."""
    fl = flow_from_hprime(lambda t: 1.0 / np.sqrt(1.0 + t * t), name="arcsinh")
    u = np.geomspace(1e-3, 1e3, 25)
    d = 1e-6 * u
    np.testing.assert_allclose((fl.beta(u + d) - fl.beta(u - d)) / (2 * d), fl.dbeta(u), rtol=1e-8)
    np.testing.assert_allclose(fl.dbeta(u), 1.0 / np.sqrt(1.0 + np.log(u) ** 2), rtol=4 * EPS)


def test_h_that_overflows_needs_its_logarithm():
    """reverse-kl's h' = e^t overflows inside the table's range |t| <= 2500: the error says what to do."""
    with pytest.raises(ValueError, match="overflows.*give log_hprime"):
        flow_from_hprime(lambda t: np.exp(t))


def test_ratios_beyond_the_table_are_refused_not_clipped():
    """|log u| > 2500 (e.g. a target N(0, 0.08^2) on [-6, 6]): NaN from the forms, and the solvers'
    start-up check refuses the initial density with one line."""
    from fpsolver.errors import InputError
    h, lh = HPRIME["js"]
    fl = flow_from_hprime(h, log_hprime=lh)
    sign, lb = fl.beta_log(np.array([-2600.0, 0.3, 2600.0]))
    assert np.isnan(lb[[0, 2]]).all() and np.isfinite(lb[1])
    with pytest.raises(InputError, match="tabulated for"):
        fl.check_representable(np.array([0.0, -2800.0]), np.zeros(2), 1.0)


def test_decreasing_h_is_refused():
    with pytest.raises(ValueError, match="backward diffusion"):
        flow_from_hprime(lambda t: -np.ones_like(t))
    with pytest.raises(ValueError, match="positive"):
        flow_from_hprime(lambda t: np.where(t > 0, 1.0, 0.0))


def _gan_case(target_std, initial_std, steps):
    from fpsolver.case import Case
    case = Case.from_dict({
        "domain": {"lower": [-6.0], "upper": [6.0], "cells": [400]},
        "target": {"kind": "gaussian", "mean": [0.0], "std": [target_std]},
        "initial": {"kind": "gaussian", "mean": [0.0], "std": [initial_std]},
        "flow": {"kind": "js"}, "time": {"dt": 0.01, "save_times": [0.01 * steps]}})
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    return op, (initial.log_cells - target.log_cells).reshape(op.shape)


@pytest.mark.parametrize("name,target_std,initial_std", [("js", 0.1, 1.0), ("reverse-kl", 1.0, 0.1)])
def test_solver_with_an_h_flow_matches_the_preset_in_the_gan_regime(name, target_std, initial_std):
    """|log(rho_0 / rho_d)| ~ 1780: the h'-defined flow takes the preset's path to round-off
    (both Newton solves stop at their round-off floors: L1 distance <= 1e-12)."""
    op, w0 = _gan_case(target_std, initial_std, 25)
    h, lh = HPRIME[name]
    a = crandall_liggett(op, flow_from_hprime(h, log_hprime=lh, name=name), w0, 0.01, [25])
    b = crandall_liggett(op, name, w0, 0.01, [25])
    assert a.rejected_steps == 0 and abs(a.mass[-1] - a.mass[0]) <= 1e-11
    assert np.sum(np.abs(a.saved_rho[-1] - b.saved_rho[-1])) * op.volume <= 1e-12
