"""Studies 5 and 6: particles against the PDE (MATH.md sections 4 and 5).

Both use the demo case (1D bimodal target, js flow) and measure, at time T, the exact
1-Wasserstein distance W1 = int |F_N - F_rho| dx between the N particles and the finite-volume
solution rho(T), and the histogram L1 distance on the PDE's cells (:mod:`fpsolver.compare`).
The Monte-Carlo floor at N is the 95th percentile over seeds of W1 between N exact samples of
rho(T) and rho(T): what a perfect particle method would still show.

5. Superposition: particles moved by the PDE's own velocity field; their law is rho_t, so the
   distances are pure Monte-Carlo noise: W1 and histogram L1 ~ N^{-1/2}, and W1 reaches the
   floor (within the contract of 3 times the floor at every N).
6. Interacting: the velocity from a KDE of the particles themselves. With the default bandwidth
   b ~ N^{-1/5}, W1 is the Monte-Carlo noise N^{-1/2} plus the KDE bias O(b^2) = O(N^{-2/5}):
   the fitted rate lies between 2/5 and 1/2; the contract is W1 within 2 times the floor at
   every N. At fixed N the bandwidth sweep shows bias and variance: for large b the error grows
   like b^2 (the KDE bias), for small b it levels off at the noise. The W1 of the law adds the
   Monte-Carlo noise of the empirical measure, so the b^2 law is fitted for b >= 0.06 at
   N = 10^5, where the bias dominates.
"""
from __future__ import annotations

import copy
import time

import numpy as np

from ..case import Case
from ..compare import compare
from ..demo import DEMO_CASE
from ..fv import solve_case
from ..metrics import histogram_l1, mc_floor_w1, sample_cell_density, w1_samples_density_1d
from ..particles import solve_particles
from ..particles.interacting import default_bandwidth
from . import _common as C

SLOPE_TOL = 0.1
FLOOR_SEEDS = 20


def demo_case(T: float, dt: float = 0.01, every_step: bool = False) -> Case:
    """The demo case run to T (save times every step when the PDE drives superposition particles)."""
    d = copy.deepcopy(DEMO_CASE)
    n = int(round(T / dt))
    d["time"] = {"dt": dt, "save_times": [round(dt * k, 12) for k in range(1, n + 1)] if every_step else [T]}
    return Case.from_dict(d, source="demo case")


def _distances(case: Case, reference, **kw) -> tuple[float, float]:
    """(W1, histogram L1) at the final time of a particle run against the PDE result ``reference``."""
    res = solve_particles(case, **kw)
    row = compare(reference, res)[-1]
    return row["w1"], row["l1"]


def _exact_sample_levels(grid, rho, n: int, seeds: int) -> tuple[float, float]:
    """Mean W1 and histogram L1 of n exact samples of rho (the Monte-Carlo level)."""
    w, l1 = [], []
    for s in range(seeds):
        x = sample_cell_density(grid, rho, n, np.random.default_rng(10_000 + s))
        w.append(w1_samples_density_1d(x, grid, rho))
        l1.append(histogram_l1(x, grid, rho))
    return float(np.mean(w)), float(np.mean(l1))


# ------------------------------------------------------------------ study 5

def study_superposition(quick: bool, out_dir: str) -> dict:
    """Superposition particles vs the PDE: W1 and histogram L1 vs N (theory: slope -1/2)."""
    started = time.perf_counter()
    T = 1.0
    ns = np.array([1000, 3000, 10_000, 30_000, 100_000] + ([] if quick else [300_000, 1_000_000]))
    seeds = 4
    pde = solve_case(demo_case(T, every_step=True))
    case = demo_case(T)
    grid, rho = pde.grid, pde.rho[-1]
    checks, rows = [], []
    w1, l1, floor, mc_w1, mc_l1 = [], [], [], [], []
    for n in ns:
        d = [_distances(case, pde, n=int(n), seed=s, mode="superposition", pde=pde, integrator="heun")
             for s in range(seeds)]
        w1.append(np.mean([a for a, _ in d]))
        l1.append(np.mean([b for _, b in d]))
        floor.append(mc_floor_w1(grid, rho, int(n), seeds=FLOOR_SEEDS))
        a, b = _exact_sample_levels(grid, rho, int(n), seeds)
        mc_w1.append(a)
        mc_l1.append(b)
        checks.append(C.check(f"W1 / Monte-Carlo floor, N = {n:,}", w1[-1] / floor[-1], 3.0, rule="le"))
        rows.append([f"{n:,}", C.fmt(w1[-1]), C.fmt(mc_w1[-1]), C.fmt(floor[-1]), C.fmt(w1[-1] / floor[-1]),
                     C.fmt(l1[-1]), C.fmt(mc_l1[-1])])
    p_w1, p_l1 = C.fit_slope(ns, w1), C.fit_slope(ns, l1)
    checks.insert(0, C.check("slope of W1 vs N", p_w1, -0.5, SLOPE_TOL))
    checks.insert(1, C.check("slope of histogram L1 vs N", p_l1, -0.5, SLOPE_TOL))
    rows.append(["fitted slope", C.fmt(p_w1), C.fmt(C.fit_slope(ns, mc_w1)), C.fmt(C.fit_slope(ns, floor)), "",
                 C.fmt(p_l1), C.fmt(C.fit_slope(ns, mc_l1))])
    fig, axes = C.new_figure(2, 1, width=3.5)
    col = C.METHOD_COLOURS["superposition"]
    axes[0, 0].plot(ns, w1, "o-", color=col, label=f"superposition particles (slope {p_w1:.2f})")
    axes[0, 0].plot(ns, mc_w1, "--", color=C.METHOD_COLOURS["exact"], label="exact samples of $\\rho(T)$ (mean)")
    axes[0, 0].plot(ns, floor, ":", color=C.METHOD_COLOURS["exact"], label="Monte-Carlo floor (95%)")
    C.reference_slope(axes[0, 0], ns, w1, -0.5, label=r"$\propto N^{-1/2}$", factor=0.4)
    C.style_axes(axes[0, 0], r"particles $N$", r"$W_1(\mu_N(T), \rho(T))$", "Wasserstein distance", loglog=True)
    axes[0, 1].plot(ns, l1, "o-", color=col, label=f"superposition particles (slope {p_l1:.2f})")
    axes[0, 1].plot(ns, mc_l1, "--", color=C.METHOD_COLOURS["exact"], label="exact samples of $\\rho(T)$ (mean)")
    C.reference_slope(axes[0, 1], ns, l1, -0.5, label=r"$\propto N^{-1/2}$", factor=0.4)
    C.style_axes(axes[0, 1], r"particles $N$", r"$\|\hat\rho_N(T) - \rho(T)\|_{L^1}$ (histogram)",
                 "histogram L1 on the PDE cells", loglog=True)
    for ax in axes[0]:
        ax.legend(fontsize=6.5)
    figure = C.save(fig, out_dir, "superposition")
    return C.study_result(
        "superposition", "Superposition link: particles driven by the PDE velocity vs the PDE", checks, figure,
        ["N", "W1 (mean of 4 seeds)", "W1 of exact samples", "MC floor (95%)", "W1 / floor",
         "histogram L1", "histogram L1 of exact samples"], rows,
        f"Demo case (bimodal target, js, 400 cells, dt = 0.01) at T = {T:g}; Heun, {seeds} seeds per N; floor "
        f"from {FLOOR_SEEDS} seeds. The histogram L1 of exact samples is the same Monte-Carlo level for that "
        "distance.", started)


# ------------------------------------------------------------------ study 6

def study_interacting(quick: bool, out_dir: str) -> dict:
    """Interacting particles vs the PDE: W1 vs N (default bandwidth) and vs bandwidth at fixed N."""
    started = time.perf_counter()
    T = 1.0
    case = demo_case(T)
    pde = solve_case(case)
    grid, rho = pde.grid, pde.rho[-1]
    ns = np.array([1000, 10_000, 100_000] + ([] if quick else [1_000_000]))
    seeds = 3
    checks, rows = [], []
    w1, floor, bws = [], [], []
    for n in ns:
        ws = [_distances(case, pde, n=int(n), seed=s, integrator="heun")[0] for s in range(seeds)]
        w1.append(np.mean(ws))
        bws.append(default_bandwidth(case, int(n)))
        floor.append(mc_floor_w1(grid, rho, int(n), seeds=FLOOR_SEEDS))
        checks.append(C.check(f"max W1 over seeds / Monte-Carlo floor, N = {n:,}", max(ws) / floor[-1], 2.0, rule="le"))
        rows.append(["default", f"{n:,}", C.fmt(bws[-1]), C.fmt(w1[-1]), C.fmt(max(ws)), C.fmt(floor[-1])])
    rate = -C.fit_slope(ns, w1)
    checks.insert(0, C.check("rate of W1 vs N (between 2/5 and 1/2)", rate, 0.45, 0.05 + SLOPE_TOL))
    rows.append(["default", "fitted rate", "", C.fmt(rate), "", ""])
    # bandwidth sweep at fixed N (the solver picks its KDE grid for each b)
    n_fix = 100_000
    b_sweep = np.array([0.03, 0.06, 0.12, 0.24] if quick else [0.02, 0.03, 0.045, 0.07, 0.1, 0.15, 0.22])
    sweep_seeds = 2 if quick else seeds
    fl = mc_floor_w1(grid, rho, n_fix, seeds=FLOOR_SEEDS)
    wb = np.array([np.mean([_distances(case, pde, n=n_fix, seed=s, bandwidth=float(b), integrator="heun")[0]
                            for s in range(sweep_seeds)]) for b in b_sweep])
    for b, w in zip(b_sweep, wb):
        rows.append([f"sweep ({sweep_seeds} seeds)", f"{n_fix:,}", C.fmt(b), C.fmt(w), "", C.fmt(fl)])
    big = b_sweep >= 0.06
    p_bias = C.fit_slope(b_sweep[big], wb[big])
    checks.append(C.check("slope of W1 vs b for b >= 0.06 (KDE bias b^2)", p_bias, 2.0, 0.3))
    rows.append(["sweep", "slope b >= 0.06", "", C.fmt(p_bias), "", ""])
    fig, axes = C.new_figure(2, 1, width=3.5)
    col = C.METHOD_COLOURS["particles"]
    axes[0, 0].plot(ns, w1, "o-", color=col, label=f"interacting, default $b$ (rate {rate:.2f})")
    axes[0, 0].plot(ns, floor, ":", color=C.METHOD_COLOURS["exact"], label="Monte-Carlo floor (95%)")
    C.reference_slope(axes[0, 0], ns, w1, -0.5, label=r"$\propto N^{-1/2}$", factor=0.5)
    C.reference_slope(axes[0, 0], ns, w1, -0.4, label=r"$\propto N^{-2/5}$", factor=2.0, linestyle="--")
    C.style_axes(axes[0, 0], r"particles $N$", r"$W_1(\mu_N(T), \rho(T))$", "W1 vs N", loglog=True)
    axes[0, 1].plot(b_sweep, wb, "o-", color=col, label=f"N = {n_fix:,}")
    axes[0, 1].axhline(fl, color=C.METHOD_COLOURS["exact"], ls=":", label="Monte-Carlo floor (95%)")
    axes[0, 1].axvline(default_bandwidth(case, n_fix), color="0.5", ls="--", lw=1.0, label="default $b$")
    C.reference_slope(axes[0, 1], b_sweep[big], wb[big], 2.0, label=r"$\propto b^2$ (bias)", factor=0.5)
    C.style_axes(axes[0, 1], r"bandwidth $b$", r"$W_1(\mu_N(T), \rho(T))$", "bias and variance", loglog=True)
    for ax in axes[0]:
        ax.legend(fontsize=6.5)
    figure = C.save(fig, out_dir, "interacting")
    return C.study_result(
        "interacting", "Interacting particles vs the PDE (KDE bandwidth: rate and bias-variance)", checks, figure,
        ["bandwidth", "N", "b", "W1 (mean over seeds)", "max W1", "MC floor (95%)"], rows,
        f"Demo case at T = {T:g}; Heun with the solver's adaptive step and default KDE grid. "
        "The rate check allows the band from the KDE-bias rate 2/5 to the Monte-Carlo rate 1/2, plus 0.1.",
        started)
