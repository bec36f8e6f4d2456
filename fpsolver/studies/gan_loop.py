"""Studies of Algorithm 1 in the loop (MATH.md sections 1 and 8): order in eps, persistence, stability.

All three use the exact discriminator D* and the 1D monotone tanh-knot generator with mid-quantile
latents z_i = Phi^-1((i - 1/2)/N), so the empirical law of G_k(z_i) is a deterministic quadrature of
rho_G (W1 error O(1/N)) and no Monte-Carlo noise hides the effects.

* gan_order: W1(law G_k, rho(k eps)) against a fine PDE solution (BDF2) falls like eps^1: Algorithm 1
  with D* and an exact fit is the explicit Euler step of the flow's particle ODE. js (rho_d = N(0, 1),
  rho_0 = N(2, 0.5^2)), and kl on the same pair (Ornstein-Uhlenbeck: Gaussians stay Gaussian, the
  Euler step is affine, inside the generator class, so only the Euler error is left).
* gan_persistence: K gradient steps per fit. MSE to frozen targets: K = 1 lags, K -> inf reaches the
  exact-fit curve. The minimax loss log(1 - D(G_theta)) with D frozen: its first step is the MSE's
  first step (identical runs at K = 1), later steps keep sliding along grad D: W1 grows with K.
* gan_stability: near equilibrium (rho_d = N(0, 1), G_0 = identity + a small positive perturbation of
  the knot weights), a displacement mode of wavenumber k is amplified by 1 - eps beta'(1) k^2 per
  iteration; with k_max ~ pi / s the loop is stable only for eps < eps_c = 8 s^2 / pi^2 (js).
"""
from __future__ import annotations

import time

import numpy as np

from ..case import Case
from ..compare import compare
from ..fv import solve_case
from ..gan import run_gan
from ..gan.generators import MonotoneGenerator
from . import _common as C

GROWTH_ITERATIONS = 40
PERTURBATION = 1e-3


def _case(flow: str, save, dt: float, cells: int, scheme: str = "bdf2", initial=(2.0, 0.5)) -> Case:
    return Case.from_dict({"domain": {"lower": [-6.0], "upper": [6.0], "cells": [cells]},
                           "target": {"kind": "gaussian", "mean": [0.0], "std": [1.0]},
                           "initial": {"kind": "gaussian", "mean": [initial[0]], "std": [initial[1]]},
                           "flow": {"kind": flow},
                           "time": {"dt": dt, "save_times": list(save), "scheme": scheme}},
                          source="gan study")


def _w1_final(pde, res) -> float:
    return compare(pde, res)[-1]["w1"]


# ------------------------------------------------------------------ order in eps

def study_gan_order(quick: bool, out_dir: str) -> dict:
    """W1(law G_k, rho(k eps)) ~ eps over eps = 0.4 ... 0.05 (full run: also 0.025), js and kl."""
    started = time.perf_counter()
    epss = [0.4, 0.2, 0.1, 0.05] + ([] if quick else [0.025])
    n = 4000 if quick else 16000
    save = (0.8, 2.0)
    w1 = {}
    for flow in ("js", "kl"):
        pde = solve_case(_case(flow, save, 0.01 if quick else 0.0025, 600 if quick else 1600))
        gan_case = _case(flow, save, 0.05, 600 if quick else 1600)
        w1[flow] = [_w1_final(pde, run_gan(gan_case, epsilon=e, knots=16, n=n)) for e in epss]
    checks = [C.check(f"{flow}: slope of log W1(T = 2) vs log eps over eps = 0.4 ... 0.05",
                      C.fit_slope(epss[:4], w1[flow][:4]), 1.0, 0.1) for flow in ("js", "kl")]
    rows = [[C.fmt(e), C.fmt(a), C.fmt(sa), C.fmt(b), C.fmt(sb)] for e, a, sa, b, sb in
            zip(epss, w1["js"], C.local_slopes(epss, w1["js"]), w1["kl"], C.local_slopes(epss, w1["kl"]))]
    fig, axes = C.new_figure(1, 1, width=3.6)
    ax = axes[0, 0]
    for flow, mark in (("js", "o-"), ("kl", "s-")):
        ax.plot(epss, w1[flow], mark, color=C.FLOW_COLOURS[flow], label=flow)
    C.reference_slope(ax, epss, w1["js"], 1.0)
    C.style_axes(ax, "eps", "W1(law G, rho(T)), T = 2", "Algorithm 1 = explicit Euler", loglog=True)
    ax.legend()
    figure = C.save(fig, out_dir, "gan_order")
    return C.study_result(
        "gan_order", "GAN loop: order 1 in eps (exact D, monotone G, exact fit)", checks, figure,
        ["eps", "W1 js", "local slope", "W1 kl", "local slope"], rows,
        f"rho_d = N(0, 1), rho_0 = N(2, 0.5^2) on [-6, 6]; exact D*, monotone G with 16 knots, BVLS fit, "
        f"N = {n} mid-quantile latents; PDE: BDF2 on {600 if quick else 1600} cells, dt = "
        f"{0.01 if quick else 0.0025}. js leaves a projection (16-knot class) and quadrature floor "
        "that bends the local slope below 1 at the smallest eps; kl stays in the class.", started)


# ------------------------------------------------------------------ persistence

def study_gan_persistence(quick: bool, out_dir: str) -> dict:
    """W1(t) for K = 1, 10, 100 (, 1000) steps of the MSE and of the minimax loss, against the exact fit."""
    started = time.perf_counter()
    ks = [1, 10, 100] + ([] if quick else [1000])
    save = (0.2, 0.4, 0.6) if quick else (0.2, 0.4, 0.6, 0.8, 1.0)
    n, eps = 1000, 0.1
    pde = solve_case(_case("js", save, 0.01, 600))
    case = _case("js", save, eps, 600)
    curves = {("exact", None): [r["w1"] for r in compare(pde, run_gan(case, epsilon=eps, n=n))]}
    for loss in ("mse", "minimax"):
        for k in ks:
            res = run_gan(case, epsilon=eps, n=n, fit_steps=k, generator_loss=loss)
            curves[(loss, k)] = [r["w1"] for r in compare(pde, res)]
    exact = curves[("exact", None)][-1]
    gap = [abs(curves[("mse", k)][-1] - exact) for k in ks]
    mm = [curves[("minimax", k)][-1] for k in ks]
    checks = [
        C.check("MSE: gap to the exact-fit W1(T) at the largest K / at K = 1", gap[-1] / gap[0], 0.25, rule="le"),
        C.check("MSE: gap to the exact fit shrinks with K (largest ratio of successive gaps)",
                max(gap[i + 1] / gap[i] for i in range(len(ks) - 1)), 1.0, rule="le"),
        C.check("K = 1: minimax run = MSE run (max |W1 difference| over t)",
                max(abs(a - b) for a, b in zip(curves[("minimax", 1)], curves[("mse", 1)])), 0.0, 1e-12),
        C.check("minimax: W1(T) grows with K (min successive ratio)",
                min(mm[i + 1] / mm[i] for i in range(len(ks) - 1)), 1.0, rule="ge"),
        C.check("minimax at the largest K: W1(T) / exact-fit W1(T)", mm[-1] / exact, 10.0, rule="ge"),
    ]
    rows = [["exact fit", ""] + [C.fmt(v) for v in curves[("exact", None)][1:]]]
    rows += [[loss, str(k)] + [C.fmt(v) for v in curves[(loss, k)][1:]] for loss in ("mse", "minimax") for k in ks]
    fig, axes = C.new_figure(2, 1, width=3.4)
    t = np.array((0.0,) + save)
    for ax, loss in zip(axes[0], ("mse", "minimax")):
        ax.plot(t, curves[("exact", None)], "k-", lw=2.2, alpha=0.5, label="exact fit")
        for i, k in enumerate(ks):
            ax.plot(t, np.maximum(curves[(loss, k)], 1e-6), "o-", color=f"C{i}", label=f"K = {k}")
        C.style_axes(ax, "t", "W1(law G, rho(t))", f"{loss} generator loss")
        ax.set_yscale("log")
        ax.legend(fontsize=6)
    figure = C.save(fig, out_dir, "gan_persistence")
    return C.study_result(
        "gan_persistence", "GAN loop: persistence, MSE converges to the exact fit, minimax diverges with K",
        checks, figure, ["loss", "K"] + [f"W1 t = {s:g}" for s in save], rows,
        f"js, rho_d = N(0, 1), rho_0 = N(2, 0.5^2); eps = {eps}, exact D*, 16-knot monotone G, N = {n} "
        "mid-quantile latents (no randomness: every run sees the same latents); K projected gradient steps "
        "of size 1/L (L = (2/m) ||A||^2) on the MSE, the same steps on eps mean log(1 - D) with D frozen.",
        started)


# ------------------------------------------------------------------ stability map

def growth(knots: int, eps: float, n: int = 2000, iterations: int = GROWTH_ITERATIONS) -> float:
    """max |G_I - id| / max |G_0 - id| on [-3, 3] after I iterations from G_0 = id + a small positive
    perturbation of the knot weights (rho_d = rho_0 = N(0, 1), js); inf where the run diverged."""
    gen = MonotoneGenerator(knots)
    gen.theta[1] = 1.0
    gen.theta[2:] = PERTURBATION * np.random.default_rng(knots).random(knots)
    z = np.linspace(-3.0, 3.0, 601)
    dev0 = np.max(np.abs(gen.sample(z)[:, 0] - z))
    t_end = eps * iterations
    case = _case("js", (t_end,), t_end / iterations, 200, "backward-euler", initial=(0.0, 1.0))
    res = run_gan(case, epsilon=eps, knots=knots, n=n, initial_generator=gen)
    if res.meta["diverged"] is not None:
        return np.inf
    return float(np.max(np.abs(gen.sample(z)[:, 0] - z)) / dev0)


def study_gan_stability(quick: bool, out_dir: str) -> dict:
    """Stability map over (J, eps) against eps_c = 8 s^2 / pi^2, s = 6 / J."""
    started = time.perf_counter()
    knots = [8, 16, 32] if quick else [6, 8, 12, 16, 24, 32]
    factors = [0.5, 2.0] if quick else [0.25, 0.5, 1.0, 1.4, 2.0, 4.0]
    grid = {}
    for J in knots:
        ec = eps_critical(J)
        for f in factors:
            grid[(J, f)] = growth(J, f * ec, n=1000 if quick else 2000)
    checks = [C.check(f"J = {J}: growth at eps_c / 2 (stable: < 1)", grid[(J, 0.5)], 1.0, rule="le") for J in knots]
    checks += [C.check(f"J = {J}: growth at 2 eps_c (unstable: > 1)", min(grid[(J, 2.0)], 1e300), 1.0, rule="gt")
               for J in knots]
    rows = [[str(J), C.fmt(6.0 / J), C.fmt(eps_critical(J))] + [_growth_text(grid[(J, f)]) for f in factors]
            for J in knots]
    fig, axes = C.new_figure(1, 1, width=3.8, height=3.0)
    ax = axes[0, 0]
    for (J, f), g in grid.items():
        stable = g < 1
        ax.plot(6.0 / J, f * eps_critical(J), "o" if stable else "x", color="C2" if stable else "C3", ms=5)
    s = np.geomspace(6.0 / max(knots), 6.0 / min(knots), 50)
    ax.plot(s, 8 * s * s / np.pi**2, "k-", label=r"$\epsilon_c = 8 s^2/\pi^2$")
    ax.plot([], [], "o", color="C2", label="stable (perturbation decays)")
    ax.plot([], [], "x", color="C3", label="unstable (grows / diverges)")
    C.style_axes(ax, "knot spacing s = 6 / J", "eps", "stability of the exact-fit loop", loglog=True)
    ax.legend(fontsize=6)
    figure = C.save(fig, out_dir, "gan_stability")
    return C.study_result(
        "gan_stability", "GAN loop: stability map (J, eps) against eps_c = 8 s^2 / pi^2", checks, figure,
        ["J", "s", "eps_c"] + [f"growth at {f:g} eps_c" for f in factors], rows,
        f"js near equilibrium (rho_d = N(0, 1), G_0 = id + {PERTURBATION:g} x uniform knot weights), exact D*, "
        f"BVLS fit, {GROWTH_ITERATIONS} iterations; growth = max|G - id| after / before on [-3, 3] "
        "('diverged': the loop stopped on G' <= 0 or a rising JS).", started)


def eps_critical(knots: int) -> float:
    """eps_c = 2 / (beta'(1) k_max^2), k_max = pi / s, beta'(1) = 1/4 (js): 8 s^2 / pi^2."""
    s = 6.0 / knots
    return 8.0 * s * s / np.pi**2


def _growth_text(g: float) -> str:
    return "diverged" if not np.isfinite(g) else C.fmt(g)
