"""Study 10: two independent grid solvers agree (ours and the FiPy formulation).

Both are second-order consistent finite-volume discretisations of the same PDE (FiPy: the
exponential-flux formulation of :mod:`fpsolver.fipy_backend`; ours: two-point fluxes of
beta(u)), with the same time stepping (backward Euler, same dt), so their difference at time T
is O(h^2): expected fitted order 2. And the difference must not exceed the larger of the two
spatial discretisation errors, each measured against our solution on a 4 times finer grid with
the same dt (cubic interpolation to the coarse centres), at every grid: the two answers agree to
within what the discretisations resolve.
"""
from __future__ import annotations

import time

import numpy as np

from ..case import Case
from ..fv import solve_case
from . import _common as C
from .orders import _interpolate

ORDER_TOL = 0.15

_TARGET_1D = {"kind": "gaussian_mixture", "components": [
    {"weight": 0.5, "mean": [-1.5], "std": [0.5]}, {"weight": 0.5, "mean": [1.5], "std": [0.5]}]}
_TARGET_2D = {"kind": "gaussian_mixture", "components": [
    {"weight": 0.5, "mean": [-1.5, 0.0], "std": [0.5, 0.5]},
    {"weight": 0.5, "mean": [1.5, 0.5], "cov": [[0.3, 0.1], [0.1, 0.4]]}]}


def _case(dim: int, n: int, flow: str, T: float = 0.5, dt: float = 0.05) -> Case:
    if dim == 1:
        dom, target, initial = ([-4.0], [4.0]), _TARGET_1D, {"kind": "gaussian", "mean": [0.5], "std": [0.8]}
    else:
        dom, target, initial = (([-4.0, -4.0], [4.0, 4.0]), _TARGET_2D,
                                {"kind": "gaussian", "mean": [0.0, -0.5], "std": [1.0, 1.0]})
    return Case.from_dict({"domain": {"lower": dom[0], "upper": dom[1], "cells": [n] * dim},
                           "target": target, "initial": initial, "flow": {"kind": flow},
                           "time": {"dt": dt, "save_times": [T]}}, source="fipy cross-check")


def _series(quick: bool):
    flows = ("js",) if quick else ("js", "reverse-kl")
    for flow in flows:
        yield 1, flow, [50, 100, 200] if quick else [50, 100, 200, 400]
    for flow in flows:
        yield 2, flow, [32, 64] if quick else [32, 64, 128]


def study_fipy(quick: bool, out_dir: str) -> dict:
    """L1 difference fv - FiPy vs h (order 2) and against our own discretisation error."""
    from ..fipy_backend import solve_case_fipy

    started = time.perf_counter()
    fig, axes = C.new_figure(2, 1, width=3.6)
    checks, rows = [], []
    for dim, flow, cells in _series(quick):
        fine_case = _case(dim, 4 * cells[-1], flow)
        fine = solve_case(fine_case).rho[-1]
        diff, err, err_fp, fipy_time, fv_time = [], [], [], [], []
        for n in cells:
            case = _case(dim, n, flow)
            ours, theirs = solve_case(case), solve_case_fipy(case)
            fv_time.append(ours.meta["wall_time"])
            fipy_time.append(theirs.meta.get("wall_time", float("nan")))
            diff.append(C.l1(ours.rho[-1], theirs.rho[-1], case.grid))
            ref = _interpolate(fine_case.grid, fine, case.grid)
            err.append(C.l1(ours.rho[-1], ref, case.grid))
            err_fp.append(C.l1(theirs.rho[-1], ref, case.grid))
        h = np.array([8.0 / n for n in cells])
        p = C.fit_slope(h, diff)
        label = f"{dim}D {flow}"
        checks.append(C.check(f"order in h of the fv - FiPy difference, {label}", p, 2.0, ORDER_TOL))
        ratio = np.array(diff) / np.maximum(err, err_fp)
        checks.append(C.check(f"max over grids of difference / larger discretisation error, {label}",
                              ratio.max(), 1.0, rule="le"))
        for n, d, e, ef, r, loc, tf, tq in zip(cells, diff, err, err_fp, ratio, C.local_slopes(h, diff),
                                               fv_time, fipy_time):
            rows.append([label, n if dim == 1 else f"{n}x{n}", C.fmt(8.0 / n), C.fmt(d), C.fmt(loc), C.fmt(e),
                         C.fmt(ef), C.fmt(r), C.fmt(tf), C.fmt(tq)])
        rows.append([label, "fit", "", "", C.fmt(p), "", "", "", "", ""])
        style = {"color": C.FLOW_COLOURS[flow], "marker": "o" if dim == 1 else "s",
                 "linestyle": "-" if dim == 1 else "--"}
        axes[0, 0].plot(h, diff, label=f"{label}: fv - FiPy (p = {p:.2f})", **style)
        axes[0, 0].plot(h, np.maximum(err, err_fp), alpha=0.45, **{**style, "linestyle": ":"},
                        label=f"{label}: larger solver error")
        axes[0, 1].plot(h, ratio, label=label, **style)
    xs = np.concatenate([ln.get_xdata() for ln in axes[0, 0].get_lines()])
    ys = np.concatenate([ln.get_ydata() for ln in axes[0, 0].get_lines()])
    C.reference_slope(axes[0, 0], xs, ys, 2.0, label=r"$\propto h^2$", factor=0.2)
    C.style_axes(axes[0, 0], r"cell size $h$", r"$L^1$ at $T = 0.5$", "difference of the two solvers", loglog=True)
    axes[0, 0].legend(fontsize=5.8)
    axes[0, 1].axhline(1.0, color="k", ls=":", lw=1.0, label="criterion")
    axes[0, 1].set_xscale("log")
    C.style_axes(axes[0, 1], r"cell size $h$", r"$\|\rho_{fv} - \rho_{FiPy}\| \,/\, \max_s \|\rho_s - \rho_{fine}\|$",
                 "difference vs discretisation error")
    axes[0, 1].set_ylim(bottom=0)
    axes[0, 1].legend(fontsize=6.5)
    figure = C.save(fig, out_dir, "fipy")
    return C.study_result(
        "fipy", "Two grid solvers agree: ours vs FiPy", checks, figure,
        ["case", "cells", "h", "L1(fv - FiPy)", "order", "fv error", "FiPy error", "diff / larger error",
         "fv time (s)", "FiPy time (s)"], rows,
        "Backward Euler, dt = 0.05, T = 0.5. 1D: demo target, rho_0 = N(0.5, 0.8^2); 2D: two-mode target, "
        "rho_0 = N((0, -0.5), I). Errors of both solvers are measured against our solution on a 4x finer grid "
        "with the same dt (spatial error).", started)
