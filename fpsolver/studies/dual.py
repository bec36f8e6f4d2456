"""Studies of the dual flows (MATH.md section 10): the kappa -> inf limit and the discrete GAN.

    d_t rho = -div(rho h'(f) grad f),   d_t f = kappa (rho_d sigma(-f) - rho sigma(f))   (js: h' = sigma/2),

on the grid by fpsolver.dynamics.grid (upwind transport, f backward Euler per cell).

* ``study_dual_kappa``: kappa -> inf. (i) Equal-variance Gaussians on a box where both densities
  stay >= 0.02 (log(rho_d / rho_0) linear and bounded, kappa a >> 1 everywhere from kappa ~ 100):
  the L1 distance at T to the optimal-discriminator solution of the same scheme and dt (kappa = inf,
  the scheme is asymptotic preserving) falls like 1/kappa, slope -1 +- 0.15 over kappa = 100 ... 1e4.
  (ii) Two-mode target, offset start, f(0) = log(rho_d / rho_0) ~ 56 at a wall: the slope is far
  above -1 for kappa <= 1e3, because f relaxes at the local rate kappa sigma(1 - sigma)(rho_d + rho),
  which vanishes in the far tails; the mass the generator streams there along a stale grad f is the
  evidence (percent of the mass, against ~1e-8 for kappa = inf). (iii) f(0) = 0 on case (i): the
  initial layer, the time for the discriminator's suboptimality max_f L - L(rho, f) to fall by e,
  shrinks like 1/kappa (slope -1 +- 0.15).
* ``study_dual_gan``: alternating discriminator / generator steps (eta_D = kappa eta, eta_G = eta,
  fpsolver.dynamics.discrete_gan) converge to the dual flow at first order in eta (1 +- 0.1), for
  the L2 and the kernel metric.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..case import Case
from ..dynamics import dual
from ..dynamics.discrete_gan import run_discrete_gan
from ..dynamics.grid import dual_run, solve_case_dual
from ..flows import get_flow
from . import _common as C

EPS = np.finfo(float).eps
KAPPAS = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
KAPPA_FIT = 100.0                 # case (i): fit from here (kappa a >> 1 on the whole box)
TAIL = 1e-6                       # far tails: rho_d below 1e-6 of its maximum


def equal_variance_case(n: int = 100, T: float = 1.0, initial: str = "optimal", rate: float = 100.0) -> dict:
    """rho_d = N(0, 2^2), rho_0 = N(1, 2^2) on [-3, 3]: log(rho_d / rho_0) = (1 - 2x)/8, bounded."""
    return {"domain": {"lower": [-3.0], "upper": [3.0], "cells": [n]},
            "target": {"kind": "gaussian", "mean": [0.0], "std": [2.0]},
            "initial": {"kind": "gaussian", "mean": [1.0], "std": [2.0]},
            "flow": {"kind": "js"}, "discriminator": {"rate": rate, "initial": initial},
            "time": {"dt": T / 4, "save_times": [T], "scheme": "upwind"}}


def two_mode_case(n: int = 200, T: float = 2.0, initial: str = "optimal", rate: float = 10.0,
                  metric: str = "L2", sigma: float = 0.5, saves: int = 1) -> dict:
    """rho_d = (N(-1.5, 0.5^2) + N(1.5, 0.5^2))/2, rho_0 = N(1, 0.5^2) on [-6, 6]: at the left wall
    rho_0 ~ 1e-43 and log(rho_d / rho_0) ~ 56 (the offset start of MATH.md section 10)."""
    disc = {"rate": rate, "initial": initial, "metric": metric}
    if metric == "kernel":
        disc["kernel"] = {"kind": "gaussian", "sigma": sigma}
    return {"domain": {"lower": [-6.0], "upper": [6.0], "cells": [n]},
            "target": {"kind": "gaussian_mixture", "components": [
                {"weight": 0.5, "mean": [-1.5], "std": [0.5]}, {"weight": 0.5, "mean": [1.5], "std": [0.5]}]},
            "initial": {"kind": "gaussian", "mean": [1.0], "std": [0.5]},
            "flow": {"kind": "js"}, "discriminator": disc,
            "time": {"dt": T / (4 * saves), "save_times": [T * (k + 1) / saves for k in range(saves)],
                     "scheme": "upwind"}}


def with_rate(case: Case, rate: float):
    return dataclasses.replace(case.discriminator, rate=rate)


def run_traced(case: Case, rate: float, measure, *, dt_fixed=None, dt_max=np.inf):
    """dual_run of ``case`` at ``rate`` with observe(t, rho, f) -> measure(...) per step;
    returns (final rho, final f, array of [t, *measure] rows)."""
    target, initial = case.discretised()
    shape = case.grid.shape
    lrd, lr0 = target.log_cells.reshape(shape), initial.log_cells.reshape(shape)
    spec = with_rate(case, rate)
    rows = []
    rhos, fs, _, _ = dual_run(np.exp(lr0), dual.initial_logit(spec.initial, lr0, lrd), np.exp(lrd), case.grid,
                              get_flow(case.flow), spec, case.save_times, dt_fixed=dt_fixed, dt_max=dt_max,
                              log_rho_d=lrd, observe=lambda t, r, f: rows.append([t, *measure(r, f)]))
    return rhos[-1], fs[-1], np.array(rows)


def _l1(a, b, dx):
    return float(np.sum(np.abs(a - b)) * dx)


# ------------------------------------------------------------------ kappa -> inf

def _limit_sweep(case: Case, kappas, dt: float, tail_mask):
    """L1 to kappa = inf at T, and the far-tail mass over time, per kappa (inf included)."""
    dx = case.grid.spacing[0]
    tail = lambda r, f: (float(np.sum(r[tail_mask]) * dx),)  # noqa: E731
    ref, _, ref_trace = run_traced(case, np.inf, tail, dt_fixed=dt)
    out = {np.inf: (0.0, ref_trace)}
    for k in kappas:
        rho, _, trace = run_traced(case, k, tail, dt_fixed=dt)
        out[k] = (_l1(rho, ref, dx), trace)
    return out


def _layer_widths(kappas, n: int):
    """Time for the suboptimality max_f L - L(rho, f) to fall by e from f(0) = 0, per kappa."""
    widths, curves = [], {}
    for k in kappas:
        case = Case.from_dict(equal_variance_case(n, T=40.0 / k, initial="zero", rate=k))
        rho_d = np.exp(case.discretised()[0].log_cells)
        vol = case.grid.cell_volume

        def gap(r, f):
            with np.errstate(divide="ignore"):
                best = dual.gan_value(np.log(rho_d) - np.log(r), r, rho_d, vol)
            return (best - dual.gan_value(f, r, rho_d, vol),)
        _, _, tr = run_traced(case, k, gap, dt_max=0.01 / k)
        g = tr[:, 1] / tr[0, 1]
        j = int(np.argmax(g <= np.exp(-1.0)))
        # log-linear interpolation between the two steps around the crossing
        w = tr[j - 1, 0] + (tr[j, 0] - tr[j - 1, 0]) * np.log(g[j - 1] * np.e) / np.log(g[j - 1] / g[j])
        widths.append(float(w))
        curves[k] = (tr[:, 0], g)
    return widths, curves


def study_dual_kappa(quick: bool, out_dir: str) -> dict:
    """kappa -> inf: O(1/kappa) where log(rho_d / rho) is bounded, not uniform on an offset start."""
    started = time.perf_counter()
    case_i = Case.from_dict(equal_variance_case(100))
    n_ii = 100 if quick else 200
    case_ii = Case.from_dict(two_mode_case(n_ii, T=2.0, saves=1))
    rho_d = np.exp(case_ii.discretised()[0].log_cells)
    tail_mask = rho_d < TAIL * rho_d.max()
    dt_i, dt_ii = 0.4 * 0.06 ** 2, 0.4 * (12.0 / n_ii) ** 2       # below the kappa = inf limit dx^2
    sweep_i = _limit_sweep(case_i, KAPPAS, dt_i, np.zeros(case_i.grid.shape, bool))
    sweep_ii = _limit_sweep(case_ii, KAPPAS, dt_ii, tail_mask)
    layer_k = (30.0, 100.0, 300.0, 1000.0) if quick else (30.0, 100.0, 300.0, 1000.0, 3000.0)
    widths, curves = _layer_widths(layer_k, 100)
    fit = [k for k in KAPPAS if k >= KAPPA_FIT]
    slope_i = C.fit_slope(fit, [sweep_i[k][0] for k in fit])
    low = [k for k in KAPPAS if k <= 1000.0]
    slope_ii = C.fit_slope(low, [sweep_ii[k][0] for k in low])
    tails = {k: sweep_ii[k][1][-1, 1] for k in sweep_ii}
    f0_max = float(np.max(dual.initial_logit("optimal", case_ii.discretised()[1].log_cells,
                                             case_ii.discretised()[0].log_cells)))
    if f0_max < 50.0:   # the setup, not a result: the case must be the offset start of MATH.md section 10
        raise ValueError(f"dual_kappa (ii): f(0) reaches only {f0_max:.1f} at the wall; the case is not the offset start")
    checks = [
        C.check("(i) slope of L1(kappa) vs kappa, kappa = 100 ... 1e4", slope_i, -1.0, 0.15),
        C.check("(ii) slope for kappa = 10 ... 1e3 on the offset start: above -0.85 (not uniform)",
                slope_ii, -0.85, rule="ge"),
        C.check("(ii) far-tail mass at T, kappa = 1e3 over kappa = inf (stale grad f streams mass there)",
                tails[1000.0] / tails[np.inf], 100.0, rule="ge"),
        C.check("(iii) initial layer (f(0) = 0): slope of its width vs kappa", C.fit_slope(layer_k, widths), -1.0, 0.15),
    ]
    rows = [["(i) equal variance", C.fmt(k), C.fmt(sweep_i[k][0]), "", ""] for k in KAPPAS]
    rows += [["(ii) two modes, offset", "inf" if np.isinf(k) else C.fmt(k), C.fmt(sweep_ii[k][0]), C.fmt(tails[k]), ""]
             for k in KAPPAS + (np.inf,)]
    rows += [["(iii) layer, f(0) = 0", C.fmt(k), "", "", C.fmt(w)] for k, w in zip(layer_k, widths)]
    figure = _kappa_figure(out_dir, sweep_i, sweep_ii, curves, fit)
    return C.study_result(
        "dual_kappa", "Dual flow, kappa -> inf: O(1/kappa) where the log-ratio is bounded, not uniform otherwise",
        checks, figure, ["case", "kappa", "L1 to kappa = inf at T", "far-tail mass at T", "layer width"], rows,
        f"js generator, L2 discriminator, upwind + backward Euler for f, fixed dt (0.4 dx^2, below the kappa = inf "
        f"stability limit) shared by every kappa and by the kappa = inf reference (the same scheme with f = "
        f"log(rho_d / rho)), so only the modelling error O(1/kappa) is measured. (i) rho_d = N(0, 4), rho_0 = "
        f"N(1, 4) on [-3, 3], 100 cells, T = 1. (ii) rho_d = (N(-1.5, 0.25) + N(1.5, 0.25))/2, rho_0 = N(1, 0.25) "
        f"on [-6, 6], {n_ii} cells, T = 2; far tails: rho_d < {TAIL:g} max rho_d (|x| > 4.1). (iii) case (i) from "
        "f = 0: width = time for max_f L - L(rho, f) to fall by e (dt <= 0.01/kappa).", started)


def _kappa_figure(out_dir, sweep_i, sweep_ii, curves, fit):
    fig, axes = C.new_figure(3, 1, width=3.3)
    ax = axes[0, 0]
    ks = list(KAPPAS)
    ax.plot(ks, [sweep_i[k][0] for k in ks], "o-", label="(i) equal variance")
    ax.plot(ks, [sweep_ii[k][0] for k in ks], "s-", label="(ii) two modes, offset")
    C.reference_slope(ax, fit, [sweep_i[k][0] for k in fit], -1.0)
    C.style_axes(ax, r"$\kappa$", r"$\|\rho_\kappa - \rho_\infty\|_{L^1}$ at $T$", r"$\kappa \to \infty$", loglog=True)
    ax.legend(fontsize=6)
    ax = axes[0, 1]
    for j, k in enumerate((10.0, 100.0, 1000.0, 10000.0, np.inf)):
        tr = sweep_ii[k][1]
        ax.plot(tr[:, 0], np.maximum(tr[:, 1], 1e-12), color=f"C{j}", label=rf"$\kappa$ = {k:g}")
    ax.set_yscale("log")
    C.style_axes(ax, "t", r"mass where $\rho_d < 10^{-6}\max\rho_d$", "(ii) far-tail mass")
    ax.legend(fontsize=6)
    ax = axes[0, 2]
    for j, (k, (t, g)) in enumerate(curves.items()):
        ax.plot(k * t, g, color=f"C{j}", label=rf"$\kappa$ = {k:g}")
    ax.set_yscale("log")
    ax.set_xlim(0, 40)
    C.style_axes(ax, r"$\kappa t$", r"$(\max_f L - L)/(\cdot)_{t=0}$", "(iii) initial layer, f(0) = 0")
    ax.legend(fontsize=6)
    return C.save(fig, out_dir, "dual_kappa")


# ------------------------------------------------------------------ the discrete GAN

def study_dual_gan(quick: bool, out_dir: str) -> dict:
    """Alternating GAN steps -> the dual flow at first order in eta (L2 and kernel metric)."""
    started = time.perf_counter()
    etas = (0.02, 0.01, 0.005, 0.0025) if quick else (0.02, 0.01, 0.005, 0.0025, 0.00125)
    fig, axes = C.new_figure(1, 1, width=3.6)
    checks, rows = [], []
    for j, metric in enumerate(("L2", "kernel")):
        case = Case.from_dict(two_mode_case(200, T=1.0, initial="zero", rate=10.0, metric=metric))
        dx = case.grid.spacing[0]
        sols = [run_discrete_gan(case, eta)[0] for eta in etas]
        ref = solve_case_dual(case, dt_fixed=etas[-1] / 16).rho[-1]
        d = [_l1(a, b, dx) for a, b in zip(sols[:-1], sols[1:])]
        orders = np.log2(np.array(d[:-1]) / d[1:])
        checks.append(C.check(f"order in eta (self-convergence, finest pair), {metric}", orders[-1], 1.0, 0.1))
        checks.append(C.check(f"mass error of the discrete GAN, finest eta, {metric}",
                              abs(np.sum(sols[-1]) * dx - 1.0), 1e-13, rule="le"))
        for k, eta in enumerate(etas):
            rows.append([metric, C.fmt(eta), C.fmt(d[k]) if k < len(d) else "",
                         C.fmt(orders[k - 1]) if 0 < k < len(d) else "", C.fmt(_l1(sols[k], ref, dx))])
        axes[0, 0].plot(etas[:-1], d, "o-", color=f"C{j}", label=f"{metric}: to eta/2")
        axes[0, 0].plot(etas, [_l1(s, ref, dx) for s in sols], "s--", color=f"C{j}", label=f"{metric}: to the dual flow")
    C.reference_slope(axes[0, 0], etas, [_l1(s, ref, dx) for s in sols], 1.0)
    C.style_axes(axes[0, 0], r"$\eta = \eta_G = \eta_D / \kappa$", r"$L^1$ distance at $T = 1$",
                 r"discrete GAN $\to$ dual flow", loglog=True)
    axes[0, 0].legend(fontsize=6)
    figure = C.save(fig, out_dir, "dual_gan")
    return C.study_result(
        "dual_gan", "Discrete GAN (alternating steps) -> dual flow, order 1 in the step", checks, figure,
        ["metric", "eta", "L1 to eta/2", "observed order", "L1 to the dual flow (dt = eta_min/16)"], rows,
        "Two-mode target, rho_0 = N(1, 0.25), f(0) = 0 (D = 1/2), kappa = eta_D / eta_G = 10, js generator, "
        "200 cells on [-6, 6], T = 1; kernel metric: Gaussian, sigma = 0.5. One GAN iteration: f += eta_D "
        "(K)[G(rho, f)], then rho += eta L_upwind(rho; h'(f) grad f) (a Lie splitting of the dual flow, first "
        "order). The dual-flow reference is the grid solver (backward Euler for f) at dt = eta_min/16.", started)
