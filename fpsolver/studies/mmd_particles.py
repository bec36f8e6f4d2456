"""Study: MMD particles against the MMD grid solution, with no density estimate (MATH.md section 9).

The MMD flow's particle velocity -grad f(X_i), f = k * (mu_N - rho_d), needs no density estimate
(fpsolver.particles.mmd): the particle system is the flow of its own empirical measure, and the
grid solver (fpsolver.fv.kernel_solve, MUSCL on fine cells, its error far below the Monte-Carlo
error here) gives the mean-field limit. So W1 (1D; sliced W1 in 2D) between the particles and the
grid density at time T is the Monte-Carlo error alone, with nothing to tune.

Checks.
* The rate: the particles start as N i.i.d. samples of rho_0 and the flow is Lipschitz on the
  empirical measures (k smooth), so the initial sampling error is carried along: mean W1 over
  seeds ~ N^{-1/2}. Observed slope -1/2 +- 0.15.
* The floor: interacting MMD particles spread more evenly than i.i.d. samples of the same
  density (the flow lowers MMD^2 between them and the target, which repels clusters), so their
  W1 sits at or below the i.i.d. Monte-Carlo floor (the 95th percentile of W1 between N exact
  samples of the grid density and the density; fpsolver.metrics.mc_floor_w1): mean W1 / floor
  <= 1 at every N, 1D and 2D. The ratio is reported (MATH.md section 9 (iii): 0.3 - 0.75 seen by
  an independent solver).
"""
from __future__ import annotations

import time

import numpy as np

from ..case import Case
from ..compare import compare
from ..fv import solve_case
from ..particles.solver import solve_particles
from . import _common as C

RATE_TOL = 0.15


def _case(dim: int, cells: int) -> Case:
    return Case.from_dict({
        "domain": {"lower": [-6.0] * dim, "upper": [6.0] * dim, "cells": [cells] * dim},
        "target": {"kind": "gaussian", "mean": [0.0] * dim, "std": [1.0] * dim},
        "initial": {"kind": "gaussian", "mean": [1.0] + [0.5] * (dim - 1), "std": [0.7] * dim},
        "flow": {"kind": "mmd", "kernel": {"kind": "gaussian", "sigma": 1.0}},
        "time": {"dt": 0.01, "save_times": [0.5, 1.0], "scheme": "muscl"}}, source="mmd particles study")


def measure(dim: int, cells: int, ns, seeds: int, floor_seeds: int) -> list[dict]:
    """Per N: mean over seeds of W1 (sliced in 2D) at T to the grid density, and the i.i.d. floor."""
    case = _case(dim, cells)
    grid_result = solve_case(case)
    out = []
    for n in ns:
        w1, floor = [], None
        for s in range(seeds):
            rows = compare(grid_result, solve_particles(case, n=int(n), seed=s),
                           floor_seeds=floor_seeds if s == 0 else 0, n_dirs=32)
            w1.append(rows[-1]["w1"])
            floor = rows[-1]["w1_floor"] if s == 0 else floor
        out.append({"n": int(n), "w1": float(np.mean(w1)), "w1_sd": float(np.std(w1)), "floor": float(floor)})
    return out


def study_mmd_particles(quick: bool, out_dir: str) -> dict:
    """MMD particles vs the MMD grid solution: W1 rate N^{-1/2}, below the i.i.d. floor."""
    started = time.perf_counter()
    ns1 = (10_000, 30_000, 100_000) if quick else (10_000, 30_000, 100_000, 300_000, 1_000_000)
    one = measure(1, 1200, ns1, 8 if quick else 12, 20)
    two = measure(2, 96, (10_000,) if quick else (10_000, 100_000), 1, 20)
    checks, rows = C.floor_checks(ns1, ((1, one), (2, two)), RATE_TOL)
    fig, axes = C.new_figure(1, 1, width=3.4, height=2.8)
    ax = axes[0, 0]
    C.floor_panel(ax, ns1, one, "MMD particles vs grid (1D)")
    figure = C.save(fig, out_dir, "mmd_particles")
    return C.study_result(
        "mmd_particles", "MMD particles vs the MMD grid solution (no density estimate)", checks, figure,
        ["dim", "N", "W1 (mean)", "W1 (sd over seeds)", "i.i.d. floor", "W1 / floor"], rows,
        "rho_d = N(0, I), rho_0 = N((1, 0.5), 0.7^2 I), sigma = 1, [-6, 6]^d, T = 1; grid: MUSCL on "
        "1200 cells (1D), 96^2 (2D); W1 sliced over 32 directions in 2D", started)
