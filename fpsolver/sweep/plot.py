"""``fpsolver sweep DIR --plot``: the error against each varied resolution, with fitted slopes.

For each varied key with a numeric resolution (``domain.cells`` -> the cell size h,
``time.dt`` -> dt, any other varied number -> its value) one log-log panel: a curve per
combination of the other varied values (and seed), the error column of ``index.csv``
(L1 or W1 against the sweep's reference) against the resolution, and in the legend the
least-squares slope p of log error = p log x + c, the observed order of convergence.
Zero errors (the reference run itself) and failed runs are left out.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from ..errors import InputError
from . import index as ix

METRICS = ("l1", "w1")
_AXES = {"domain.cells": ("h", "cell size $h$"), "time.dt": ("dt", r"time step $\Delta t$")}


def fitted_slope(x, y) -> float:
    """Least-squares slope p of log y = p log x + c."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def convergence_series(out_dir: str, metric: str = "l1") -> list[dict]:
    """Curves {parameter, label, x, err, slope} from ``sweep.json`` and ``index.csv``."""
    if metric not in METRICS:
        raise InputError(f"--metric: one of {', '.join(METRICS)}, got {metric!r}")
    plan = ix.read_plan(out_dir)
    if plan.get("reference") is None:
        raise InputError(f"{out_dir}: the sweep names no reference, so it has no errors to plot "
                         "(add reference = \"finest\" or a result path to [sweep])")
    errors = {r["key"]: _number(r.get(metric, "")) for r in ix.read_index(out_dir) if r["status"] == "ok"}
    series = []
    for param in plan["vary"]:
        for curve in _curves(plan, param, errors):
            series.append(curve)
    if not series:
        raise InputError(f"{out_dir}: no varied resolution with two or more finished runs of positive {metric} error")
    return series


def _curves(plan: dict, param: str, errors: dict) -> list[dict]:
    groups: dict[str, list] = {}
    for run in plan["runs"]:
        v = run["values"][param]
        if param in _AXES:
            x = run[_AXES[param][0]]
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            x = float(v)
        else:
            return []  # not a numeric parameter
        rest = {k: val for k, val in run["values"].items() if k != param}
        label = ", ".join(f"{k}={val if isinstance(val, str) else json.dumps(val)}" for k, val in rest.items())
        if run["seed"] is not None and len({r["seed"] for r in plan["runs"]}) > 1:
            label += f"{', ' if label else ''}seed={run['seed']}"
        e = errors.get(run["key"], math.nan)
        if math.isfinite(e) and e > 0 and x > 0:
            groups.setdefault(label, []).append((x, e))
    out = []
    for label, pts in groups.items():
        pts = sorted(set(pts))
        if len({p[0] for p in pts}) >= 2:
            x, err = np.array(pts).T
            out.append({"parameter": param, "label": label, "x": x, "err": err, "slope": fitted_slope(x, err)})
    return out


def plot_sweep(out_dir: str, path: str | None = None, metric: str = "l1") -> tuple[str, list[dict]]:
    """Draw the convergence figure (PNG and PDF); return its path and the fitted curves. The
    backend is the caller's (the command line chooses Agg; a notebook keeps its own)."""
    import matplotlib.pyplot as plt

    from ..plots import save_figure

    series = convergence_series(out_dir, metric)
    params = list(dict.fromkeys(s["parameter"] for s in series))
    fig, axes = plt.subplots(1, len(params), figsize=(4.4 * len(params), 3.6), squeeze=False)
    for ax, param in zip(axes[0], params):
        for k, s in enumerate(c for c in series if c["parameter"] == param):
            ax.loglog(s["x"], s["err"], "o-", color=f"C{k % 10}",
                      label=f"{s['label'] or 'all runs'} (p = {s['slope']:.2f})")
        ax.set_xlabel(_AXES.get(param, (None, param))[1])
        ax.set_ylabel(f"{metric.upper()} error against the reference")
        ax.grid(True, which="both", alpha=0.25, linewidth=0.5)
        ax.legend(fontsize=7)
    plan = ix.read_plan(out_dir)
    ref = plan["reference"] if plan["reference"] == "finest" else os.path.basename(plan["reference"])
    fig.suptitle(f"{os.path.basename(plan['sweep'])}: error vs resolution (reference: {ref})", fontsize=9)
    fig.tight_layout()
    path = path or os.path.join(out_dir, "convergence.png")
    save_figure(fig, path, pdf=True)
    plt.close(fig)
    return path, series


def slopes_table(series: list[dict]) -> str:
    """One line per curve: parameter, other values, points, fitted slope."""
    lines = ["parameter      points  slope   curve"]
    lines += [f"{s['parameter']:<14} {len(s['x']):>6}  {s['slope']:6.3f}  {s['label'] or 'all runs'}" for s in series]
    return "\n".join(lines)
