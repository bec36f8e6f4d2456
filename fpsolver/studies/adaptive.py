"""Adaptive time steps (fpsolver.fv.adaptive): work against accuracy, and tolerance proportionality.

Local error control per unit step accepts a step when ||le||_1 <= rtol M h (M the mass). The
local errors add up to the global one, each carried by the flow, which backward Euler keeps an
L1 contraction (MATH.md section 3), so for backward Euler the global error at time T is at most
about rtol M T, and, since the estimate is asymptotically exact and the controller keeps
||le|| / h near a fixed fraction of rtol M, proportional to rtol: the global error against rtol
has slope 1 (tolerance proportionality). The same holds for BDF2 with error per unit step (its
steps scale like rtol^{1/2}, its local errors like h^3). Checked on the 1D bimodal example (js),
on a case with a fast initial transient (kl from a start 4 times narrower than the target: a transient 10 times faster than the later relaxation), and
in full mode on the 2D two-mode example: fitted slope 1 +- 0.15 (the tolerance of the order
studies: the fit is over two decades and the constant drifts with the O(h) error of the estimate
and with the steps cut to land on the save times), and for backward Euler global error <=
rtol M T. The work-precision diagram sets the global error (the largest L1 distance over the save
times to a fine fixed-step BDF2 reference on the same grid) against the work (resolvents solved,
rejected ones included) for fixed and adaptive steps of both schemes.
"""
from __future__ import annotations

import time

import numpy as np

from ..case import Case
from ..fv import solve_case
from . import _common as C

SLOPE_TOL = 0.15
MASS_TOL = 1e-12


# examples/bimodal_1d.toml and examples/two_mode_2d.toml (the package does not ship the examples)
_BIMODAL = {"domain": {"lower": [-4.0], "upper": [4.0], "cells": [200]},
            "target": {"kind": "gaussian_mixture", "components": [
                {"weight": 0.5, "mean": [-1.5], "std": [0.5]}, {"weight": 0.5, "mean": [1.5], "std": [0.5]}]},
            "initial": {"kind": "gaussian", "mean": [1.0], "std": [0.5]},
            "flow": {"kind": "js"}, "time": {"dt": 0.1, "save_times": [0.5]}}
_TWO_MODE = {"domain": {"lower": [-4.0, -4.0], "upper": [4.0, 4.0], "cells": [32, 32]},
             "target": {"kind": "gaussian_mixture", "components": [
                 {"weight": 0.5, "mean": [-1.5, 0.0], "std": [0.5, 0.5]},
                 {"weight": 0.5, "mean": [1.5, 0.5], "cov": [[0.3, 0.1], [0.1, 0.4]]}]},
             "initial": {"kind": "gaussian", "mean": [0.0, -1.0], "std": [0.8, 0.8]},
             "flow": {"kind": "js"}, "time": {"dt": 0.1, "save_times": [0.5]}}


def _cases(quick: bool) -> list:
    """The runs of each case. The case's dt (the first and largest adaptive step) is as large as the
    save times allow, so that the controller, not the cap, sets the steps: tolerance
    proportionality is a property of controlled steps (where dt caps them the error falls below it)."""
    bimodal = {"name": "bimodal 1D (js)", "dict": _BIMODAL,
               "save": [0.5] if quick else [0.5, 2.0], "dt": 0.5, "dt_ref": 0.5 / 640,
               "fixed": [0.1, 0.05, 0.025, 0.0125] + ([] if quick else [0.00625]),
               "rtol": {"backward-euler": [1e-2, 3e-3, 1e-3] + ([] if quick else [3e-4]),
                        "bdf2": [1e-3, 1e-4, 1e-5]}}
    transient = {"name": "fast transient 1D (kl)", "dict": {
        "domain": {"lower": [-6.0], "upper": [6.0], "cells": [200]},
        "target": {"kind": "gaussian", "mean": [0.0], "std": [1.0]},
        "initial": {"kind": "gaussian", "mean": [0.5], "std": [0.25]},
        "flow": {"kind": "kl"}, "time": {"dt": 0.05, "save_times": [0.05]}},
        "save": [0.05, 0.1] if quick else [0.1, 0.5], "dt": 0.05 if quick else 0.1,
        "dt_ref": 0.05 / 1280 if quick else 0.1 / 10240,
        "fixed": [0.05, 0.025, 0.0125, 0.00625] + ([] if quick else [0.003125]),
        "rtol": {"backward-euler": [1e-1, 3e-2, 1e-2] + ([] if quick else [3e-3]),
                 "bdf2": [1e-2, 1e-3, 1e-4] + ([] if quick else [1e-5])}}
    two = {"name": "two-mode 2D (js), 32^2", "dict": _TWO_MODE, "save": [0.25, 0.5], "dt": 0.25,
           "dt_ref": 0.5 / 1280, "fixed": [0.125, 0.0625, 0.03125, 0.015625],
           "rtol": {"backward-euler": [1e-2, 3e-3, 1e-3], "bdf2": [1e-3, 1e-4, 1e-5]}}
    return [bimodal, transient] if quick else [bimodal, transient, two]


def _case(spec: dict, dt: float, scheme: str, rtol=None) -> Case:
    raw = {**spec["dict"], "time": {"dt": dt, "save_times": spec["save"], "scheme": scheme}}
    if rtol is not None:
        raw["time"]["rtol"] = rtol
    return Case.from_dict(raw, source=spec["name"])


def _run(spec, dt, scheme, ref, rtol=None) -> dict:
    res = solve_case(_case(spec, dt, scheme, rtol))
    grid = _case(spec, dt, scheme).grid
    err = max(C.l1(a, b, grid) for a, b in zip(res.rho[1:], ref.rho[1:]))
    m = res.meta
    work = m["resolvents"] if rtol is not None else m["steps"] + 2 * m["rejected_steps"]
    return {"err": err, "work": work, "wall": m["wall_time"], "steps": m["steps"], "res": res,
            "rejected": m.get("rejected_by_error", 0) + m["rejected_steps"]}


def _one_case(spec: dict, checks: list, rows: list, ax_wp, ax_tp) -> None:
    dt_ref = spec["dt_ref"]
    ref = solve_case(_case(spec, dt_ref, "bdf2"))
    half = solve_case(_case(spec, 2 * dt_ref, "bdf2"))
    grid = _case(spec, dt_ref, "bdf2").grid
    ref_err = max(C.l1(a, b, grid) for a, b in zip(ref.rho[1:], half.rho[1:])) / 3   # BDF2: Richardson
    T, name = spec["save"][-1], spec["name"]
    smallest = np.inf
    for scheme, colour in C.SCHEME_COLOURS.items():
        fixed = [_run(spec, dt, scheme, ref) for dt in spec["fixed"]]
        adapt = [_run(spec, spec["dt"], scheme, ref, tol) for tol in spec["rtol"][scheme]]
        smallest = min([smallest] + [r["err"] for r in fixed + adapt])
        for dt, r in zip(spec["fixed"], fixed):
            rows.append([name, scheme, f"dt = {dt:g}", r["steps"], r["work"], r["rejected"], C.fmt(r["wall"]), C.fmt(r["err"]), ""])
        tols = spec["rtol"][scheme]
        errs = [r["err"] for r in adapt]
        slope = C.fit_slope(tols, errs)
        for tol, r in zip(tols, adapt):
            rows.append([name, scheme, f"rtol = {tol:g}", r["steps"], r["work"], r["rejected"], C.fmt(r["wall"]),
                         C.fmt(r["err"]), C.fmt(r["err"] / (tol * T))])
        rows.append([name, scheme, "fit: error ~ rtol^p", "", "", "", "", "", C.fmt(slope)])
        checks.append(C.check(f"tolerance proportionality, {name}, {scheme}: slope of error vs rtol",
                              slope, 1.0, SLOPE_TOL))
        landed = all(list(r["res"].t) == [0.0] + [float(s) for s in spec["save"]] for r in adapt)
        checks.append(C.check(f"adaptive steps land on the save times, {name}, {scheme}", float(landed), 1.0, rule="ge"))
        if scheme == "backward-euler":
            ratio = max(e / (tol * T) for e, tol in zip(errs, tols))
            checks.append(C.check(f"global error / (rtol M T), {name}, backward Euler (L1 contraction bound)",
                                  ratio, 1.0, rule="le"))
            mass = max(r["res"].meta["mass_error"] for r in adapt)
            checks.append(C.check(f"mass error of adaptive backward Euler, {name}", mass, MASS_TOL, rule="le"))
        ax_wp.plot([r["work"] for r in fixed], [r["err"] for r in fixed], "s--", color=colour, mfc="none",
                   label=f"{scheme}, fixed dt")
        ax_wp.plot([r["work"] for r in adapt], errs, "o-", color=colour, label=f"{scheme}, rtol")
        ax_tp.plot(tols, errs, "o-", color=colour, label=f"{scheme} (p = {slope:.2f})")
    checks.append(C.check(f"reference error / smallest measured error, {name}", ref_err / smallest, 0.1, rule="le"))
    rows.append([name, "bdf2 reference", f"dt = {dt_ref:.3g}", ref.meta["steps"], "", "", "", C.fmt(ref_err), ""])
    C.style_axes(ax_wp, "resolvents solved (work)", "global L1 error", name, loglog=True)
    ax_wp.legend(fontsize=6)
    xs = np.concatenate([ln.get_xdata() for ln in ax_tp.get_lines()])
    ys = np.concatenate([ln.get_ydata() for ln in ax_tp.get_lines()])
    C.reference_slope(ax_tp, xs, ys, 1.0, label=r"$\propto$ rtol", factor=0.3)
    C.style_axes(ax_tp, "rtol", "global L1 error", "tolerance proportionality", loglog=True)
    ax_tp.legend(fontsize=6)


def study_adaptive(quick: bool, out_dir: str) -> dict:
    """Work-precision diagram and tolerance proportionality of the adaptive steps (module docstring)."""
    started = time.perf_counter()
    cases = _cases(quick)
    fig, axes = C.plt.subplots(2, len(cases), figsize=(3.4 * len(cases), 6.2), layout="constrained", squeeze=False)
    checks, rows = [], []
    for k, spec in enumerate(cases):
        _one_case(spec, checks, rows, axes[0, k], axes[1, k])
    figure = C.save(fig, out_dir, "adaptive")
    return C.study_result(
        "adaptive", "Adaptive time steps: work-precision and tolerance proportionality", checks, figure,
        ["case", "scheme", "steps by", "steps", "resolvents", "rejected", "wall s", "global L1 error",
         "error / (rtol T), or slope"], rows,
        "Global error: the largest L1 distance over the save times to fixed-step BDF2 at dt_ref "
        "on the same grid (its own error estimated by Richardson against twice that "
        "step). Adaptive runs start from the case's dt (also the largest step). Expected: slope 1 +- 0.15 "
        "of error vs rtol; backward Euler error <= rtol M T.", started)
