"""Study: an MLP GAN (Algorithm 1, mlp D x mlp G) in 2D against the 2D PDE solution (MATH.md sections 1, 8).

With the optimal discriminator and an exact fit, Algorithm 1 is the explicit Euler step of size eps
of the js particle ODE, whose law solves the js Fokker-Planck equation; with a trained MLP
discriminator and K Adam steps of the MLP generator, W1(law G_k, rho(k eps)) = O(eps) + the
discriminator's error + the fit's error (section 8). Here: the two-mode target of
examples/two_mode_2d.toml, rho_0 = N((0, -1), 0.8^2 I) (G_0 = the exact affine map), T = 4, the
PDE solved by the finite-volume solver; the GAN runs for several seeds at once
(fpsolver.gan.neural_run: the whole loop compiled, vmapped over seeds); sliced W1 (32 directions)
between N = 2000 generator samples and the PDE density.

Checks.
* Tracking: the flow carries rho_0 a sliced-W1 distance S = SW1(rho_0, rho(T)) away; the GAN's
  mean (over seeds) distance to rho(T) must be at most S / 3, i.e. the GAN covers at least two
  thirds of the way the PDE goes (its errors are O(eps) and the D / fit errors, which do not
  grow with the distance covered). Every seed must be within S / 2.
* Towards the target: the js flow decreases JS(rho, rho_d) and moves the law towards rho_d; the
  GAN's sliced W1 to rho_d at T must be below its value at t = 0 for every seed.
Reported: the seed spread (sd, max), the i.i.d. Monte-Carlo floor of N samples of rho(T)
(95 % quantile over 20 draws), the ratio to it, and in the full run eps = 0.04, 0.02, 0.01 (at these
sizes the trained players' errors, not O(eps), dominate below eps = 0.02: Adam moves G by about
lr per step whatever eps is, so halving eps does not halve the error).
"""
from __future__ import annotations

import time

import numpy as np

from ..case import Case
from ..fv import solve_case
from ..metrics import mc_floor_w1, sliced_w1_2d
from . import _common as C

T_END = 4.0
SAVES = 4
N_EVAL = 2000
N_DIRS = 32
TRACK_FACTOR = 1.0 / 3.0
SEED_FACTOR = 0.5
INITIAL = ([0.0, -1.0], 0.8)
BOX = ([-4.0, -4.0], [4.0, 4.0])


def _case(cells: int) -> Case:
    return Case.from_dict({
        "domain": {"lower": BOX[0], "upper": BOX[1], "cells": [cells, cells]},
        "target": {"kind": "gaussian_mixture", "components": [
            {"weight": 0.5, "mean": [-1.5, 0.0], "std": [0.5, 0.5]},
            {"weight": 0.5, "mean": [1.5, 0.5], "cov": [[0.3, 0.1], [0.1, 0.4]]}]},
        "initial": {"kind": "gaussian", "mean": INITIAL[0], "std": [INITIAL[1]] * 2},
        "flow": {"kind": "js"},
        "time": {"dt": 0.02, "save_times": list(np.linspace(T_END / SAVES, T_END, SAVES))}},
        source="gan_mlp study")


def gan_samples(eps: float, seeds: int) -> np.ndarray:
    """(seeds, SAVES + 1, N_EVAL, 2) MLP GAN samples at t = 0, T/SAVES, ..., T (fixed latents)."""
    from ..gan.neural_run import gan_run_seeds
    tgt = C.two_mode_2d()
    z = np.random.default_rng(12345).standard_normal((N_EVAL, 2))
    every = int(round(T_END / SAVES / eps))
    snaps, _ = gan_run_seeds(range(seeds), INITIAL[0], INITIAL[1] * np.eye(2), tgt.weights, tgt.means,
                             tgt.covs, z, eps, SAVES, every)
    return snaps


def _distances(snaps, grid, rho) -> np.ndarray:
    """(seeds, SAVES + 1) sliced W1 of each seed's samples at each save to the density rho[k]."""
    return np.array([[sliced_w1_2d(s[k], grid, rho[k], n_dirs=N_DIRS) for k in range(len(rho))]
                     for s in snaps])


def study_gan_mlp(quick: bool, out_dir: str) -> dict:
    """MLP GAN vs the js PDE in 2D: tracking within a third of the distance covered, seed spread."""
    started = time.perf_counter()
    case = _case(48 if quick else 96)
    pde = solve_case(case)
    grid, rho = case.grid, pde.rho
    seeds = 4 if quick else 8
    epss = (0.02,) if quick else (0.04, 0.02, 0.01)
    runs = {eps: gan_samples(eps, seeds) for eps in epss}
    snaps = runs[0.02]
    dist = _distances(snaps, grid, rho)                                      # GAN -> rho(t_k)
    moved = np.array([sliced_w1_2d(snaps[0, 0], grid, r, n_dirs=N_DIRS) for r in rho])  # rho_0 -> rho(t_k)
    to_target = _distances(snaps[:, [0, -1]], grid, [pde.rho_d] * 2)        # GAN -> rho_d at 0, T
    floor = mc_floor_w1(grid, rho[-1], N_EVAL, seeds=20, n_dirs=N_DIRS)
    final = dist[:, -1]
    checks = [
        C.check("mean SW1(GAN, rho(T)) / SW1(rho_0, rho(T))", final.mean() / moved[-1], TRACK_FACTOR, rule="le"),
        C.check("max over seeds SW1(GAN, rho(T)) / SW1(rho_0, rho(T))", final.max() / moved[-1], SEED_FACTOR,
                rule="le"),
        C.check("max over seeds SW1(GAN(T), rho_d) / SW1(GAN(0), rho_d)",
                np.max(to_target[:, 1] / to_target[:, 0]), 1.0, rule="le"),
    ]
    rows = [[C.fmt(float(t)), C.fmt(moved[k]), C.fmt(dist[:, k].mean()), C.fmt(dist[:, k].std(ddof=1)),
             C.fmt(dist[:, k].max())] for k, t in enumerate(pde.t)]
    rows.append(["T, MC floor (N = 2000)", "", C.fmt(floor), "", C.fmt(final.mean() / floor) + " x floor"])
    for eps in epss:
        if eps != 0.02:
            d = _distances(runs[eps][:, [-1]], grid, rho[[-1]])[:, 0]
            rows.append([f"T, eps = {eps:g}", C.fmt(moved[-1]), C.fmt(d.mean()), C.fmt(d.std(ddof=1)), C.fmt(d.max())])
    figure = _figure(out_dir, pde, dist, moved, floor, snaps[0, -1])
    return C.study_result(
        "gan_mlp", "MLP GAN (mlp D x mlp G) in 2D vs the js PDE", checks, figure,
        ["t", "SW1(rho_0, rho(t))", "SW1(GAN, rho(t)) mean", "sd over seeds", "max over seeds"], rows,
        f"eps = 0.02 (200 outer iterations), {seeds} seeds vmapped; per iteration 512 fresh target and "
        f"generator samples, 10 Adam steps of D (minibatch 256, lr 2e-3; 200 before the first "
        f"iteration), 10 of G (lr 3e-3); "
        f"MLPs 2 x 32 tanh (the defaults of [gan.mlp]); PDE grid {grid.shape[0]}^2, backward Euler dt = 0.02; "
        f"SW1 over {N_DIRS} directions, N = {N_EVAL} samples", started)


def _figure(out_dir, pde, dist, moved, floor, last):
    fig, axes = C.new_figure(2, 1, width=3.4, height=2.9)
    ax = axes[0, 0]
    t = pde.t
    ax.plot(t, moved, "k--", label=r"SW1($\rho_0$, $\rho(t)$)")
    ax.plot(t, dist.mean(axis=0), "o-", color="C0", label="SW1(GAN, $\\rho(t)$), mean")
    ax.fill_between(t, dist.min(axis=0), dist.max(axis=0), color="C0", alpha=0.25, label="seed range")
    ax.axhline(floor, color="C3", ls=":", label="MC floor at T, N = 2000")
    C.style_axes(ax, "t", "sliced W1", "MLP GAN vs PDE")
    ax.legend(fontsize=6)
    ax = axes[0, 1]
    g = pde.grid
    ax.contour(g.centres[0], g.centres[1], pde.rho[-1].T, levels=8, cmap="viridis", linewidths=0.8)
    ax.scatter(last[:800, 0], last[:800, 1], s=1.5, color="C3", alpha=0.6)
    C.style_axes(ax, "x", "y", f"t = {t[-1]:g}: PDE (contours), GAN seed 0")
    ax.set_aspect("equal")
    return C.save(fig, out_dir, "gan_mlp")
