"""Study 3: the Crandall-Liggett exponential formula, observed and bounded.

At a fixed time t,

    rho_n = (I + (t/n) A_h)^{-n} rho_0,   (A_h rho)_i = (1/|K_i|) sum_j |sigma_ij| J_ij,
    J_ij = -rho_d(x_ij) (beta(u_j) - beta(u_i)) / |x_j - x_i|,   u = rho / rho_d,

is n backward-Euler steps of size t/n of the finite-volume scheme (MATH.md section 3). A_h is
m-accretive in the discrete L1 norm ||r|| = sum_i |K_i| |r_i| (the scheme is an L1 contraction),
so the Crandall-Liggett estimate holds on every grid and for every datum:

    ||rho_n - rho(t)||_1 <= 2 t ||A_h rho_0||_1 / sqrt(n).

That is the check. rho(t) is not known, so it is replaced by rho_M with M = REF_FACTOR n_max
factors, and the triangle inequality charges the reference its own bound: the checked quantity is
||rho_n - rho_M||_1 / (2 t ||A_h rho_0||_1 (n^-1/2 + M^-1/2)) <= 1. ||A_h rho_0||_1 is assembled
here from the definition above (beta of the js flow written out, rho_d on the faces from
:func:`fpsolver.densities.discretise`), not taken from the solver.

Observed rates. For smooth rho_0 the error is O(1/n) (slope -1 +- SLOPE_TOL, a check: the
distance to the Richardson limit 2 rho_M - rho_{M/2}). For the box indicator of [0.25, 1.75]
(floored at ROUGH_FLOOR of its height: the solver's unknown is log(rho / rho_d)) the datum gets
rougher as the grid is refined, ||A_h rho_0||_1 ~ 1/dx, and the guaranteed rate is only 1/2; the
table reports where the observed rate sits on each grid: for js, uniformly parabolic for bounded u,
parabolic smoothing gives rate 1 whatever the datum (the a-priori bound cannot see that); chi2,
degenerate at u = 0 (beta'(0) = 0, porous-medium-like fronts), is also run on the box and sits
between 1/2 and 1. Runs in which a step was rejected (redone as two half steps) are not n-factor
products: they are listed, but neither checked nor fitted.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ..case import Case
from ..fv import FVOperator, crandall_liggett
from ..grid import Grid
from . import _common as C

ROUGH_FLOOR = 1e-8
T_FIXED = 1.0
SLOPE_TOL = 0.1
REF_FACTOR = 16
MIN_FIT = 3          # fewer clean runs than this: no rate is reported


# beta(u) of MATH.md section 2, written out here independently of flows.py
BETA = {"js": lambda u: 0.5 * np.log1p(u), "chi2": lambda u: u * u}


def generator_l1(grid: Grid, log_rho: np.ndarray, log_rho_d: np.ndarray, log_rho_d_faces, beta) -> float:
    """||A_h rho||_1 = sum_i |K_i| |(A_h rho)_i| with the two-point flux (module docstring).

    ``log_rho``, ``log_rho_d``: log cell values (grid.shape); ``log_rho_d_faces``: per axis the log
    of rho_d on the interior faces. Walls carry no flux.
    """
    bu = beta(np.exp(np.asarray(log_rho, float) - np.asarray(log_rho_d, float)))
    div = np.zeros(grid.shape)
    for a in range(grid.dim):
        h = grid.spacing[a]
        flux = -np.exp(log_rho_d_faces[a]) * np.diff(bu, axis=a) / h      # J from cell i to cell i+1
        pad = [(0, 0)] * grid.dim
        pad[a] = (1, 1)
        div += np.diff(np.pad(flux, pad), axis=a) / h                     # (J_out - J_in) / h
    return float(np.sum(np.abs(div)) * grid.cell_volume)


def _case(initial: dict, cells: int, flow: str = "js") -> Case:
    return Case.from_dict({
        "domain": {"lower": [-4.0], "upper": [4.0], "cells": [cells]},
        "target": {"kind": "gaussian_mixture", "components": [
            {"weight": 0.5, "mean": [-1.5], "std": [0.5]}, {"weight": 0.5, "mean": [1.5], "std": [0.5]}]},
        "initial": initial, "flow": {"kind": flow},
        "time": {"dt": T_FIXED, "save_times": [T_FIXED]}}, source="crandall-liggett study")


def rough_initial(out_dir: str, cells: int) -> dict:
    """Write the box indicator of [0.25, 1.75] (floored) as a grid density; return its case table."""
    x = np.linspace(-4.0, 4.0, cells + 1)
    x = 0.5 * (x[1:] + x[:-1])
    values = np.where(np.abs(x - 1.0) < 0.75, 1.0, ROUGH_FLOOR)
    path = os.path.join(os.path.abspath(out_dir), f"crandall_liggett_box_{cells}.npy")
    np.save(path, values)
    return {"kind": "grid", "path": path}


def exponential_formula(case: Case, ns) -> tuple[list[np.ndarray], list[int]]:
    """rho_n = (I + (t/n) A_h)^{-n} rho_0 for each n in ns (t the case's final time), and the
    number of rejected steps of each run (a rejected step is redone as two half steps, so that
    run is not the n-factor product)."""
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    w0 = (initial.log_cells - target.log_cells).reshape(op.log_rho_d.shape)
    runs = [crandall_liggett(op, case.flow, w0, case.final_time / n, [n]) for n in ns]
    return [r.saved_rho[-1].ravel() for r in runs], [int(r.rejected_steps) for r in runs]


def measure(case: Case, ns: np.ndarray, fit_from: int) -> dict:
    """Distances of rho_n to rho_M (bound check) and to the Richardson limit (observed rate).

    Only runs without a rejected step are n-factor products: the bound is checked and the rate
    fitted (n >= fit_from) on those; the references must have none."""
    m = REF_FACTOR * int(ns[-1])
    rho, rejected = exponential_formula(case, list(ns) + [m // 2, m])
    if rejected[-2:] != [0, 0]:
        raise RuntimeError(f"the reference runs (n = {m // 2}, {m}) rejected steps: {rejected[-2:]}")
    target, initial = case.discretised()
    a_norm = generator_l1(case.grid, initial.log_cells, target.log_cells, target.log_faces, BETA[case.flow])
    to_ref = np.array([C.l1(r, rho[-1], case.grid) for r in rho[:-2]])
    limit = 2 * rho[-1] - rho[-2]
    to_limit = np.array([C.l1(r, limit, case.grid) for r in rho[:-2]])
    bound = 2 * T_FIXED * a_norm * (ns ** -0.5 + m ** -0.5)
    clean = np.array(rejected[:-2]) == 0
    fit = clean & (ns >= fit_from)
    return {"m": m, "a_norm": a_norm, "to_ref": to_ref, "to_limit": to_limit, "bound": bound,
            "rejected": rejected[:-2],
            "ratio": float(np.max((to_ref / bound)[clean])) if clean.any() else float("nan"),  # nan fails
            "slope": C.fit_slope(ns[fit], to_limit[fit]) if fit.sum() >= MIN_FIT else float("nan"),
            "fit": fit, "limit": limit}


def _rows(label: str, cells: int, ns, r: dict) -> list:
    out = [[label, cells, int(n), C.fmt(d), C.fmt(b), C.fmt(d / b), rej, C.fmt(dl), C.fmt(loc)]
           for n, d, b, rej, dl, loc in zip(ns, r["to_ref"], r["bound"], r["rejected"], r["to_limit"],
                                            C.local_slopes(ns, r["to_limit"]))]
    fitted = ns[r["fit"]]
    span = f"fit n = {fitted[0]}..{fitted[-1]}" if np.isfinite(r["slope"]) else "too few clean runs to fit"
    out.append([label, cells, span, f"||A_h rho_0|| = {r['a_norm']:.3g}", "",
                C.fmt(r["ratio"]), "", "", C.fmt(r["slope"])])
    return out


def _runs(quick: bool, out_dir: str):
    """(label, flow, cells, initial table, first n of the rate fit)."""
    yield "smooth", "js", 200, {"kind": "gaussian", "mean": [1.0], "std": [0.5]}, 4
    for cells in (100, 200, 400) if quick else (100, 200, 400, 800):
        yield "box indicator", "js", cells, rough_initial(out_dir, cells), 4
    for cells in (100, 400) if quick else (100, 200, 400):   # at 800 cells most chi2 runs reject steps
        yield "box indicator", "chi2", cells, rough_initial(out_dir, cells), 8


def study_crandall_liggett(quick: bool, out_dir: str) -> dict:
    """The a-priori bound 2t||A_h rho_0||/sqrt(n) on every grid and datum; slope -1 for smooth data."""
    started = time.perf_counter()
    ns = 2 ** np.arange(0, 8 if quick else 10)
    fig, axes = C.new_figure(3, 1, width=3.4)
    checks, rows, rates = [], [], []
    for k, (label, flow, cells, initial, fit_from) in enumerate(_runs(quick, out_dir)):
        case = _case(initial, cells, flow)
        r = measure(case, ns, fit_from)
        name = f"{flow}, {label}, {cells} cells"
        checks.append(C.check(f"max_n ||rho_n - rho_M|| / a-priori bound, {name}", r["ratio"], 1.0, rule="le"))
        if label == "smooth":
            checks.append(C.check("slope of L1 distance vs n, js, smooth rho_0", r["slope"], -1.0, SLOPE_TOL))
        elif np.isfinite(r["slope"]):
            rates.append((flow, cells, -r["slope"]))
        rows += _rows(f"{flow}, {label}", cells, ns, r)
        colour, style = f"C{k % 10}", "-" if flow == "js" else "--"
        if cells == 400 or label == "smooth":
            _, ini = case.discretised()
            if flow == "js":
                axes[0, 0].plot(case.grid.centres[0], np.exp(ini.log_cells), ":", color=colour, lw=1.0,
                                label=rf"$\rho_0$, {label}")
            axes[0, 0].plot(case.grid.centres[0], r["limit"], style, color=colour, label=rf"$\rho(t)$, {name}")
        axes[0, 1].plot(ns, r["to_ref"], "o" + style, color=colour, ms=3, label=name)
        axes[0, 1].plot(ns, r["bound"], ":", color=colour, lw=1.0)
        axes[0, 2].plot(ns, r["to_limit"], "o" + style, color=colour, ms=3, label=f"{name} ({r['slope']:.2f})")
    C.style_axes(axes[0, 0], r"$x$", r"density", f"initial data and limit, t = {T_FIXED:g}")
    axes[0, 0].legend(fontsize=5.5)
    C.style_axes(axes[0, 1], r"number of factors $n$", r"$\|\rho_n - \rho_M\|_{L^1}$ (dotted: bound)",
                 r"a-priori bound $2t\|A_h\rho_0\|(n^{-1/2} + M^{-1/2})$", loglog=True)
    axes[0, 1].legend(fontsize=5.5)
    ys = np.concatenate([ln.get_ydata() for ln in axes[0, 2].get_lines()])
    C.reference_slope(axes[0, 2], ns, ys, -1.0, label=r"$\propto n^{-1}$", factor=0.4)
    C.reference_slope(axes[0, 2], ns, ys, -0.5, label=r"$\propto n^{-1/2}$", factor=2.5, linestyle="--")
    C.style_axes(axes[0, 2], r"number of factors $n$",
                 r"$\|(I + \frac{t}{n}A_h)^{-n}\rho_0 - \rho(t)\|_{L^1}$", "observed rate", loglog=True)
    axes[0, 2].legend(fontsize=5.5)
    figure = C.save(fig, out_dir, "crandall_liggett")
    observed = "; ".join(f"{f} {c} cells: {p:.2f}" for f, c, p in rates)
    return C.study_result(
        "crandall_liggett", "Crandall-Liggett exponential formula", checks, figure,
        ["initial data", "cells", "n", "||rho_n - rho_M||", "bound", "ratio", "rejected steps",
         "to Richardson limit", "local slope"], rows,
        f"Bimodal target on [-4, 4], t = {T_FIXED:g}. Checked on every grid and datum: "
        "||rho_n - rho_M||_1 <= 2t||A_h rho_0||_1 (n^-1/2 + M^-1/2), M = "
        f"{REF_FACTOR} n_max, with ||A_h rho_0||_1 assembled from the two-point flux; runs with a rejected "
        "step (redone as half steps, so not n factors) are shown but neither checked nor fitted. Observed "
        f"rates use the Richardson limit 2 rho_M - rho_(M/2). Box indicator of [0.25, 1.75] (floor {ROUGH_FLOOR:g} "
        "of its height): the finer the grid, the rougher the datum (||A_h rho_0|| ~ 1/dx). Observed rates "
        f"({observed}): js is uniformly parabolic and smooths the jump, so its rate is that of smooth data, 1; "
        "chi2 is degenerate at u = 0 (beta'(0) = 0) and keeps fronts, and its rates lie below 1, between the "
        "guaranteed 1/2 and 1.", started)
