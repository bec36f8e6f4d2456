"""Studies: MonoFlow's generator losses at the density level, and the floor of a trained (kernel) discriminator.

* gan_losses (MATH.md section 7): from a start far from the data (rho_0 = N(5, 0.5^2), rho_d = N(0, 1) on
  [-10, 14]) the PDE of each loss is solved (backward Euler) and JS(rho_t, rho_d) recorded. Losses that
  saturate where rho >> rho_d (beta'(u) ~ e^C / u: js, minimax with C = 0) stall: mass far from the data
  hardly moves; the logit shift C = 5 multiplies that diffusion by e^5; the non-saturating, kl and
  arcsinh losses (beta' bounded below by 1/2, 1, 1/sqrt(1 + log^2 u) there) converge.
* gan_kernel_floor (section 8): Algorithm 1 with the kernel discriminator (logistic regression on random
  Fourier features, L2 penalty lambda, L-BFGS to convergence) and the exact-fit monotone generator:
  W1(law G, rho(T)) against the PDE sits above the exact-D value by a floor that grows with lambda
  (shrinkage of the logit slows the flow) and shrinks with the sample size n per iteration.
"""
from __future__ import annotations

import time

import numpy as np

from ..case import Case
from ..compare import compare
from ..flows import PRESETS
from ..fv import solve_case
from ..gan import run_gan
from . import _common as C
from .gan_loop import _case as _gan_case

LOSSES = [("js", None), ("minimax", 0.0), ("minimax", 5.0), ("non-saturating", None), ("kl", None),
          ("arcsinh", None)]
CHECK_TIME = 20.0
STALL_RATIO = 0.75      # saturating losses keep >= 3/4 of JS(rho_0, rho_d) at t = 20
CONVERGED = 1e-3


def _losses_case(kind, shift, save, cells) -> Case:
    flow = {"kind": kind} if shift is None else {"kind": kind, "shift": shift}
    return Case.from_dict({"domain": {"lower": [-10.0], "upper": [14.0], "cells": [cells]},
                           "target": {"kind": "gaussian", "mean": [0.0], "std": [1.0]},
                           "initial": {"kind": "gaussian", "mean": [5.0], "std": [0.5]},
                           "flow": flow, "time": {"dt": 0.5, "save_times": list(save)}}, source="gan_losses study")


def _label(kind, shift) -> str:
    return kind if shift is None else f"{kind} C = {shift:g}"


def study_gan_losses(quick: bool, out_dir: str) -> dict:
    """JS(rho_t, rho_d) per loss: the saturating ones stall, the others converge."""
    started = time.perf_counter()
    save = [1.0, 2.0, 5.0, 10.0, 20.0] + ([] if quick else [50.0, 100.0])
    cells = 160 if quick else 240
    js = PRESETS["js"]
    curves = {}
    for kind, shift in LOSSES:
        res = solve_case(_losses_case(kind, shift, save, cells))
        curves[(kind, shift)] = [js.energy(r, res.rho_d, res.grid.cell_volume) for r in res.rho]
    k20 = 1 + save.index(CHECK_TIME)
    at = {key: c[k20] for key, c in curves.items()}
    checks = [C.check(f"{_label(*key)}: JS(t = 20) / JS(0) (saturating: stalls)", at[key] / curves[key][0],
                      STALL_RATIO, rule="ge") for key in (("js", None), ("minimax", 0.0))]
    checks += [C.check(f"{_label(*key)}: JS(t = 20) (converges)", at[key], CONVERGED, rule="le")
               for key in (("non-saturating", None), ("kl", None), ("arcsinh", None))]
    checks.append(C.check("minimax: JS(t = 20) with C = 5 / with C = 0", at[("minimax", 5.0)] / at[("minimax", 0.0)],
                          0.5, rule="le"))
    rows = [[_label(*key)] + [C.fmt(v) for v in c] for key, c in curves.items()]
    fig, axes = C.new_figure(1, 1, width=3.8, height=3.0)
    ax = axes[0, 0]
    t = np.array([0.0] + save)
    for i, (key, c) in enumerate(curves.items()):
        ax.plot(t[1:], np.maximum(c[1:], 1e-16), "o-", color=f"C{i}", label=_label(*key))
    C.style_axes(ax, "t", "JS(rho_t, rho_d)", "MonoFlow losses from N(5, 0.5^2) to N(0, 1)", loglog=True)
    ax.legend(fontsize=6)
    figure = C.save(fig, out_dir, "gan_losses")
    return C.study_result(
        "gan_losses", "MonoFlow losses at the density level: saturating losses stall, the others converge",
        checks, figure, ["loss"] + [f"JS t = {v:g}" for v in [0.0] + save], rows,
        f"PDE of each loss, backward Euler dt = 0.5 on {cells} cells of [-10, 14]; JS of the cell densities.",
        started)


def study_gan_kernel_floor(quick: bool, out_dir: str) -> dict:
    """W1(T) of the GAN loop with the kernel discriminator against n and lambda (exact D for reference)."""
    started = time.perf_counter()
    ns = [250, 1000] if quick else [250, 1000, 4000]
    lams = [1e-1, 1e-3] if quick else [1e-1, 1e-2, 1e-3, 1e-4]
    seeds = [0] if quick else [0, 1, 2]
    save, eps = ((0.5,) if quick else (1.0,)), 0.1
    features = 50 if quick else 100
    pde = solve_case(_gan_case("js", save, 0.01, 600))
    case = _gan_case("js", save, eps, 600)
    exact = compare(pde, run_gan(case, epsilon=eps, n=4000))[-1]["w1"]
    w1 = {}
    for lam in lams:
        for n in ns:
            w1[(lam, n)] = float(np.mean([compare(pde, run_gan(
                case, epsilon=eps, n=4000, batch=n, discriminator="kernel", seed=s,
                kernel={"penalty": lam, "features": features, "lengthscale": 0.5}))[-1]["w1"] for s in seeds]))
    big, small = ns[-1], lams[-1]
    checks = [C.check(f"n = {big}: W1(T) grows with lambda (min successive ratio)",
                      min(w1[(lams[i], big)] / w1[(lams[i + 1], big)] for i in range(len(lams) - 1)), 1.0, rule="ge"),
              C.check(f"lambda = {small:g}: W1(T) at n = {big} / at n = {ns[0]} (the floor shrinks with n)",
                      w1[(small, big)] / w1[(small, ns[0])], 1.0, rule="le"),
              C.check("every kernel W1(T) / exact-D W1(T) (a floor on top)", min(w1.values()) / exact, 1.0, rule="ge")]
    rows = [[C.fmt(lam)] + [C.fmt(w1[(lam, n)]) for n in ns] for lam in lams] + [["exact D"] + [C.fmt(exact)] * len(ns)]
    fig, axes = C.new_figure(1, 1, width=3.6)
    ax = axes[0, 0]
    for i, lam in enumerate(lams):
        ax.plot(ns, [w1[(lam, n)] for n in ns], "o-", color=f"C{i}", label=f"lambda = {lam:g}")
    ax.axhline(exact, color="k", ls="--", label="exact D*")
    C.style_axes(ax, "samples n per iteration", f"W1(law G, rho(T = {save[-1]:g}))", "kernel discriminator floor",
                 loglog=True)
    ax.legend(fontsize=6)
    figure = C.save(fig, out_dir, "gan_kernel_floor")
    return C.study_result(
        "gan_kernel_floor", "GAN loop with a kernel discriminator: the W1 floor against n and lambda", checks, figure,
        ["lambda"] + [f"W1 n = {n}" for n in ns], rows,
        f"js, rho_d = N(0, 1), rho_0 = N(2, 0.5^2), eps = {eps}, T = {save[-1]:g}; {features} random Fourier features, lengthscale "
        f"0.5, L-BFGS to gtol 1e-10; monotone G (16 knots, exact fit), 4000 output mid-quantile samples; "
        f"mean over seeds {seeds}.", started)
