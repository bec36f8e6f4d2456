"""Shared pieces of the verification studies: checks, fits, finite-volume set-up, figures.

Every study returns the same plain dict (see :func:`study_result`): its checks (a measured
number, the value theory predicts, the tolerance theory allows, pass/fail), a data table whose
rows are the measurements themselves, and the names of its figure files.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Iterable, Optional, Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from ..densities import Density, GaussianMixture, discretise
from ..fv import FVOperator
from ..grid import Grid
from ..plots import COLOURS, save_figure

# one colour per flow preset, used by every figure that compares presets
FLOW_COLOURS = {"js": "C0", "reverse-kl": "C3", "kl": "C2", "chi2": "C4", "non-saturating": "C1"}
SCHEME_COLOURS = {"backward-euler": "C0", "bdf2": "C1"}
METHOD_COLOURS = COLOURS

STYLE = {"font.size": 9, "axes.labelsize": 9, "axes.titlesize": 9, "legend.fontsize": 7.5,
         "xtick.labelsize": 8, "ytick.labelsize": 8, "lines.linewidth": 1.4, "lines.markersize": 4.5,
         "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5, "savefig.dpi": 150}


# ------------------------------------------------------------------ checks and results

def check(quantity: str, measured: float, expected: float, tolerance: Optional[float] = None,
          rule: str = "abs") -> dict:
    """One pass/fail comparison of a measured number with theory.

    ``rule``: "abs" |measured - expected| <= tolerance; "rel" |measured/expected - 1| <= tolerance;
    "ge" measured >= expected; "le" measured <= expected; "gt" measured > expected.
    """
    m, e = float(measured), float(expected)
    if rule == "abs":
        ok, text = abs(m - e) <= tolerance, f"|measured - {e:g}| <= {tolerance:g}"
    elif rule == "rel":
        ok, text = abs(m / e - 1.0) <= tolerance, f"|measured / {e:.4g} - 1| <= {tolerance:g}"
    elif rule == "ge":
        ok, text = m >= e, f"measured >= {e:g}"
    elif rule == "le":
        ok, text = m <= e, f"measured <= {e:g}"
    elif rule == "gt":
        ok, text = m > e, f"measured > {e:g}"
    else:
        raise ValueError(f"unknown rule {rule!r}")
    return {"quantity": quantity, "measured": m, "expected": e, "tolerance": tolerance,
            "rule": rule, "criterion": text, "passed": bool(ok and np.isfinite(m))}


def _badness(c: dict) -> float:
    m, e, tol = c["measured"], c["expected"], c["tolerance"]
    if not np.isfinite(m):
        return np.inf
    if c["rule"] == "abs":
        return abs(m - e) / tol
    if c["rule"] == "rel":
        return abs(m / e - 1.0) / tol
    if c["rule"] in ("ge", "gt"):
        return e / m if m > 0 else (0.0 if m > e else np.inf)
    return m / e if e > 0 else (np.inf if m > e else 0.0)


def study_result(name: str, title: str, checks: Sequence[dict], figure: str, columns: Sequence[str],
                 rows: Iterable[Sequence], notes: str = "", started: Optional[float] = None) -> dict:
    """The study's summary: the worst check is the headline (measured, expected, tolerance)."""
    checks = list(checks)
    worst = max(checks, key=_badness)
    return {"name": name, "title": title, "quantity": worst["quantity"], "measured": worst["measured"],
            "expected": worst["expected"], "tolerance": worst["tolerance"], "criterion": worst["criterion"],
            "passed": all(c["passed"] for c in checks), "checks": checks, "figure": figure,
            "table": {"columns": list(columns), "rows": [list(r) for r in rows]}, "notes": notes,
            "wall_time": None if started is None else time.perf_counter() - started}


def fit_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope p of log y = p log x + c."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(lx, ly, 1)[0])


def local_slopes(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Slopes between consecutive points, d log y / d log x (NaN-padded in front)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return np.concatenate([[np.nan], np.diff(ly) / np.diff(lx)])


def fmt(v, digits: int = 3) -> str:
    """Numbers for tables: 3 significant digits, blank for NaN."""
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{v:.{digits}g}"


# ------------------------------------------------------------------ finite-volume set-up

def gaussian(mean: Sequence[float], std: Sequence[float]) -> GaussianMixture:
    return GaussianMixture([1.0], [list(mean)], [np.diag(np.square(std))])


def bimodal_1d() -> GaussianMixture:
    """The demo target: (N(-1.5, 0.5^2) + N(1.5, 0.5^2)) / 2."""
    return GaussianMixture([0.5, 0.5], [[-1.5], [1.5]], [[[0.25]], [[0.25]]])


def two_mode_2d() -> GaussianMixture:
    """The 2D example target (examples/two_mode_2d.toml)."""
    return GaussianMixture([0.5, 0.5], [[-1.5, 0.0], [1.5, 0.5]],
                           [np.diag([0.25, 0.25]), [[0.3, 0.1], [0.1, 0.4]]])


def fv_setup(grid: Grid, target: Density, initial: Density):
    """(op, w0, rho_d): the operator for rho_d, w0 = log(rho_0 / rho_d) and rho_d on the cells."""
    t, i = discretise(target, grid), discretise(initial, grid)
    op = FVOperator.build(grid, t)
    return op, (i.log_cells - t.log_cells).reshape(op.shape), np.exp(t.log_cells)


def l1(a: np.ndarray, b: np.ndarray, grid: Grid) -> float:
    """sum_K |a_K - b_K| |K|."""
    return float(np.sum(np.abs(np.ravel(a) - np.ravel(b))) * grid.cell_volume)


# ------------------------------------------------------------------ figures

def new_figure(ncols: int = 1, nrows: int = 1, width: float = 3.3, height: float = 2.8, **kw):
    """A figure with an (nrows, ncols) array of axes; run studies inside ``plt.rc_context(STYLE)``."""
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)


def style_axes(ax, xlabel: str, ylabel: str, title: str = "", loglog: bool = False) -> None:
    if loglog:
        ax.set_xscale("log")
        ax.set_yscale("log")
        # label decades only: minor-tick labels collide on short ranges
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25, linewidth=0.5)


def reference_slope(ax, x: Sequence[float], y: Sequence[float], slope: float, label: Optional[str] = None,
                    factor: float = 0.5, **kw) -> None:
    """Draw C x^slope over the range of x, through the geometric centre of (x, y) times factor."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    xc = np.exp(np.mean(np.log(x)))
    yc = np.exp(np.mean(np.log(y))) * factor
    xs = np.array([x.min(), x.max()])
    style = {"color": "0.35", "linestyle": ":", "linewidth": 1.2}
    style.update(kw)
    ax.plot(xs, yc * (xs / xc) ** slope, label=label or f"slope {slope:g}", **style)


def save(fig, out_dir: str, name: str) -> str:
    """Save ``name``.png and ``name``.pdf into out_dir; return the PNG file name."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    save_figure(fig, os.path.join(out_dir, name + ".png"), pdf=True)
    return name + ".png"


def floor_panel(ax, ns1: Sequence[int], one, title: str) -> None:
    """The 1D panel of a particles-vs-grid study: mean W1 and the i.i.d. floor against N, with the
    N^{-1/2} line through the first point (``one``: the 1D rows of :func:`floor_checks`)."""
    ax.loglog(ns1, [r["w1"] for r in one], "o-", label="particles, W1 (mean)")
    ax.loglog(ns1, [r["floor"] for r in one], "s--", label="i.i.d. floor (95 %)")
    ax.loglog(ns1, one[0]["w1"] * (np.array(ns1) / ns1[0]) ** -0.5, "k:", label=r"$N^{-1/2}$")
    style_axes(ax, "N", "W1 at T = 1", title)
    ax.legend(fontsize=6)


def floor_checks(ns1: Sequence[int], by_dim, rate_tol: float, extra: Optional[Callable] = None):
    """Checks and table rows of a particles-vs-grid study with no density estimate: the slope of
    the mean W1 against N in 1D (theory -1/2 +- ``rate_tol``) and W1 at most the i.i.d. Monte-Carlo
    floor at every N. ``by_dim``: ((dim, [{n, w1, w1_sd, floor, ...}]), ...); ``extra(r)``: more
    row cells. Rows: dim, N, W1, its sd, floor, W1 / floor (+ extra)."""
    one = dict(by_dim)[1]
    checks = [check("slope of mean W1 vs N, 1D (theory -1/2)", fit_slope(ns1, [r["w1"] for r in one]),
                    -0.5, rate_tol)]
    rows = []
    for dim, res in by_dim:
        for r in res:
            ratio = r["w1"] / r["floor"]
            checks.append(check(f"W1 / i.i.d. floor, {dim}D, N = {r['n']:,}", ratio, 1.0, rule="le"))
            rows.append([f"{dim}D", f"{r['n']:,}", fmt(r["w1"]), fmt(r["w1_sd"]), fmt(r["floor"]), fmt(ratio),
                         *(extra(r) if extra is not None else [])])
    return checks, rows
