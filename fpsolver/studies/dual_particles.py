"""Study: the dual flow with particles against the grid solver, kernel metric (MATH.md §10).

With the kernel metric the particle system needs no density estimate: f lives on the grid and
K[rho sigma(f)] is an exact sum over the particles (fpsolver.dynamics.particles). So, as for MMD
particles (§9), the particles differ from the grid solution (fpsolver.dynamics.grid on finer cells,
its W1 error ~1e-3 in 1D, measured against 4000 cells and dt / 4; in 2D 384^2 cells in the full run,
since 96^2 is ~3e-3 off in sliced W1, above the floor at N = 3e4) by the Monte-Carlo error alone
while the solution is smooth.

Case: rho_d = N(0, I), rho_0 = N((1.5, 0.5), 0.6^2 I) on [-5, 5]^d, js generator, kappa = 10,
Gaussian kernel sigma = 1, f(0) = 0 (D = 1/2), dt <= 0.005 (1D) / 0.02 (quick) or 0.01 (2D), T = 1.

Checks.
* W1 at T (sliced over 32 directions in 2D), mean over seeds, at most the i.i.d. floor (the 95th
  percentile of W1 for N exact samples of the grid density): particles moved by the exact
  mean-field flow map would be i.i.d. samples of rho_T, mean W1 ~0.75 of that percentile; the
  interaction through the kernel-smoothed logit evens the cloud out (as MMD particles do), and the
  discretisation adds ~5e-4.
* 1D: mean W1 falls like N^{-1/2} (Monte-Carlo), slope -1/2 +- 0.2 (the standard error of the
  fitted slope with 6 seeds is ~0.07).
"""
from __future__ import annotations

import time

import numpy as np

from .. import metrics
from ..case import Case
from ..dynamics.grid import solve_case_dual
from ..dynamics.particles import solve_dual_particles
from . import _common as C

RATE_TOL = 0.2
N_DIRS = 32


def dual_case(dim: int, cells: int, dt: float) -> Case:
    """The study's case (module docstring) on ``cells`` per axis."""
    return Case.from_dict({
        "domain": {"lower": [-5.0] * dim, "upper": [5.0] * dim, "cells": [cells] * dim},
        "target": {"kind": "gaussian", "mean": [0.0] * dim, "std": [1.0] * dim},
        "initial": {"kind": "gaussian", "mean": [1.5] + [0.5] * (dim - 1), "std": [0.6] * dim},
        "flow": {"kind": "js"},
        "discriminator": {"rate": 10.0, "metric": "kernel", "initial": "zero",
                          "kernel": {"kind": "gaussian", "sigma": 1.0}},
        "time": {"dt": dt, "save_times": [0.5, 1.0], "scheme": "upwind"}}, source="dual particles study")


def measure(dim: int, cells: int, ref_cells: int, dt: float, ns, seeds: int, floor_seeds: int):
    """(rows per N: mean and sd over seeds of W1 at T and the floor; the reference; a particle run)."""
    ref = solve_case_dual(dual_case(dim, ref_cells, dt))
    case = dual_case(dim, cells, dt)
    rows, last = [], None
    for n in ns:
        w = []
        for s in range(seeds):
            last = solve_dual_particles(case, n=int(n), seed=s)
            if not all(c == n for c in last.meta["particles_inside"]):
                raise RuntimeError("a particle left the box")
            w.append(metrics.w1_to_density(last.positions[-1], ref.grid, ref.rho[-1], n_dirs=N_DIRS))
        floor = metrics.mc_floor_w1(ref.grid, ref.rho[-1], int(n), seeds=floor_seeds, n_dirs=N_DIRS)
        rows.append({"n": int(n), "w1": float(np.mean(w)), "w1_sd": float(np.std(w)), "floor": floor,
                     "gan": last.meta["gan_value"][-1], "steps": last.meta["steps"]})
    return rows, ref, last


def _figure(one, ns1, ref, run, out_dir):
    fig, axes = C.new_figure(2, 1, width=3.4, height=2.8)
    ax = axes[0, 0]
    C.floor_panel(ax, ns1, one, "kernel-metric dual flow, 1D")
    ax = axes[0, 1]
    x = ref.axes[0]
    grid = run.grid
    hist = np.histogram(run.positions[-1][:, 0], bins=grid.shape[0], range=(grid.lower[0], grid.upper[0]),
                        density=True)[0]
    ax.plot(x, ref.rho[-1], "C0", label=r"$\rho$ grid")
    ax.step(grid.centres[0], hist, "C1", where="mid", lw=0.8, label=f"particles (N = {run.meta['n']:,})")
    ax.plot(x, ref.rho_d, "k--", lw=0.8, label=r"$\rho_d$")
    twin = ax.twinx()
    twin.plot(x, ref.f[-1], "C2", lw=1.0, label="f grid")
    twin.plot(grid.centres[0], run.f[-1], "C3:", lw=1.2, label="f particles")
    twin.set_ylabel("logit f", fontsize=8)
    C.style_axes(ax, "x", "density at T = 1", "grid vs particles")
    ax.legend(fontsize=6, loc="upper left")
    twin.legend(fontsize=6, loc="upper right")
    return C.save(fig, out_dir, "dual_particles")


def study_dual_particles(quick: bool, out_dir: str) -> dict:
    """Kernel-metric dual flow: particles vs grid, W1 at the i.i.d. floor, rate N^{-1/2}."""
    started = time.perf_counter()
    ns1 = (1_000, 3_000, 10_000) if quick else (1_000, 3_000, 10_000, 30_000, 100_000)
    one, ref1, run1 = measure(1, 200, 2000, 0.005, ns1, 6 if quick else 10, 20)
    ns2 = (3_000,) if quick else (3_000, 10_000, 30_000)
    ref2, dt2 = (96, 0.02) if quick else (384, 0.01)   # upwind is O(dx): 96^2 is ~3e-3 off (sliced W1)
    two, _, _ = measure(2, 32, ref2, dt2, ns2, 1 if quick else 3, 10)
    checks, rows = C.floor_checks(ns1, ((1, one), (2, two)), RATE_TOL,
                                  extra=lambda r: [C.fmt(r["gan"]), str(r["steps"])])
    figure = _figure(one, ns1, ref1, run1, out_dir)
    return C.study_result(
        "dual_particles", "Dual flow, kernel metric: particles (exact sums) vs the grid solver", checks, figure,
        ["dim", "N", "W1 (mean)", "W1 (sd over seeds)", "i.i.d. floor", "W1 / floor", "GAN value at T", "steps"],
        rows,
        "rho_d = N(0, I), rho_0 = N((1.5, 0.5), 0.6^2 I), [-5, 5]^d, js, kappa = 10, kernel sigma = 1, f(0) = 0, "
        f"T = 1; particles: f on 200 cells (1D) / 32^2 (2D); grid reference: 2000 cells, dt 0.005 (1D), "
        f"{ref2}^2, dt {dt2:g} (2D, particles with the same dt); W1 sliced over 32 directions in 2D", started)
