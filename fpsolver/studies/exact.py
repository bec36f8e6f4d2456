"""Study 8: the kl preset against the exact Ornstein-Uhlenbeck Gaussians (MATH.md section 6).

With rho_d = N(m, diag(sigma^2)) and rho_0 = N(mu_0, diag(s_0^2)) on a box wide enough that the
walls do not matter, the kl flow d_t rho = lap rho - div(rho grad log rho_d) keeps rho_t Gaussian,
componentwise

    mu_t = m + (mu_0 - m) e^{-t / sigma^2},   s_t^2 = sigma^2 + (s_0^2 - sigma^2) e^{-2t / sigma^2}.

The case is solved from a case dict (the user's path): in 1D with BDF2 and dt ~ h, in 2D with
backward Euler and dt ~ h^2, so in both the error O(h^2) + O(dt^p) is O(h^2) and the fitted order
in h at each save time is expected to be 2. (BDF2 is not positivity preserving: where the tails
of rho shrink by more than a factor 4 in one step its right-hand side (4 rho^n - rho^{n-1})/3 is
negative, Newton fails and the step falls back to backward Euler, which costs the order. The
2D case meets this on coarse grids, hence backward Euler there; every run must have no
rejected step.)
"""
from __future__ import annotations

import time

import numpy as np
from matplotlib.gridspec import GridSpec

from ..case import Case
from ..exact_solutions import ou_density  # lives in fpsolver.exact_solutions; still importable here
from ..fv import solve_case
from . import _common as C

ORDER_TOL = 0.15


def _setups(quick: bool):
    """1D: BDF2 with dt = 2.5 / n (dt ~ h); 2D: backward Euler with dt = 51.2 / n^2 (dt ~ h^2)."""
    one = dict(box=([-6.0], [6.0]), m=[0.0], sigma=[1.0], mu0=[1.5], s0=[0.8], scheme="bdf2",
               cells=[50, 100, 200, 400] + ([] if quick else [800]), dt=lambda n: 2.5 / n, save=[0.25, 1.0])
    two = dict(box=([-6.0, -6.0], [6.0, 6.0]), m=[0.0, 0.0], sigma=[1.0, 0.7], mu0=[1.0, -0.5], s0=[0.8, 0.55],
               scheme="backward-euler", cells=[32, 64, 128] + ([] if quick else [256]),
               dt=lambda n: 51.2 / n**2, save=[0.25, 0.5])
    return [("1D", one), ("2D", two)]


def solve_ou(s: dict, n: int):
    """The kl case of setup ``s`` on n cells per axis; returns (grid, Result)."""
    d = len(s["m"])
    case = Case.from_dict({
        "domain": {"lower": s["box"][0], "upper": s["box"][1], "cells": [n] * d},
        "target": {"kind": "gaussian", "mean": s["m"], "std": s["sigma"]},
        "initial": {"kind": "gaussian", "mean": s["mu0"], "std": s["s0"]},
        "flow": {"kind": "kl"},
        "time": {"dt": s["dt"](n), "save_times": s["save"], "scheme": s["scheme"]}}, source="OU study")
    return case.grid, solve_case(case)


def study_exact_ou(quick: bool, out_dir: str) -> dict:
    """L1 error against the exact Gaussian vs h (dt ~ h, BDF2); fitted order (theory: 2)."""
    started = time.perf_counter()
    fig = C.plt.figure(figsize=(9.6, 6.0), layout="constrained")
    gs = GridSpec(2, 6, figure=fig)
    ax_snap, ax_err = fig.add_subplot(gs[0, :3]), fig.add_subplot(gs[0, 3:])
    ax_maps = [fig.add_subplot(gs[1, 2 * k:2 * k + 2]) for k in range(3)]
    checks, rows = [], []
    for dim, s in _setups(quick):
        errs = {t: [] for t in s["save"]}
        rejected = []
        for n in s["cells"]:
            grid, res = solve_ou(s, n)
            rejected.append(res.meta["rejected_steps"])
            for t, rho in zip(res.t[1:], res.rho[1:]):
                exact = ou_density(grid, t, s["m"], s["sigma"], s["mu0"], s["s0"])
                errs[t].append(C.l1(rho, exact, grid))
            if dim == "1D" and n == 100:
                _snapshots(ax_snap, grid, res, s)
        checks.append(C.check(f"rejected steps, {dim} (all grids)", sum(rejected), 0, rule="le"))
        h = np.array([(s["box"][1][0] - s["box"][0][0]) / n for n in s["cells"]])
        for k, (t, e) in enumerate(errs.items()):
            p = C.fit_slope(h, e)
            checks.append(C.check(f"order in h, {dim} {s['scheme']}, t = {t:g}", p, 2.0, ORDER_TOL))
            for n, hh, ee, loc, rej in zip(s["cells"], h, e, C.local_slopes(h, e), rejected):
                rows.append([dim, s["scheme"], t, n if dim == "1D" else f"{n}x{n}", C.fmt(hh), C.fmt(s["dt"](n)),
                             rej, C.fmt(ee), C.fmt(loc)])
            rows.append([dim, s["scheme"], t, "fit", "", "", "", "", C.fmt(p)])
            ax_err.plot(h, e, "o-" if dim == "1D" else "s--", color=C.METHOD_COLOURS["fv"], alpha=1.0 - 0.4 * k,
                        label=f"{dim}, t = {t:g} (p = {p:.2f})")
    # 2D maps on the finest grid at the last save time, shared colour scale
    _maps(ax_maps, fig, grid, res.rho[-1], ou_density(grid, res.t[-1], s["m"], s["sigma"], s["mu0"], s["s0"]),
          res.t[-1])
    xs = np.concatenate([ln.get_xdata() for ln in ax_err.get_lines()])
    ys = np.concatenate([ln.get_ydata() for ln in ax_err.get_lines()])
    C.reference_slope(ax_err, xs, ys, 2.0, label=r"$\propto h^2$", factor=0.3)
    C.style_axes(ax_err, r"cell size $h$", r"$\|\rho_h(t) - \rho_{exact}(t)\|_{L^1}$",
                 "error against the exact solution", loglog=True)
    ax_err.legend(fontsize=6.5)
    figure = C.save(fig, out_dir, "exact_ou")
    return C.study_result(
        "exact_ou", "Exact solutions: kl preset vs the Ornstein-Uhlenbeck Gaussian", checks, figure,
        ["dim", "scheme", "t", "cells", "h", "dt", "rejected steps", "L1 error", "order"], rows,
        "1D: rho_d = N(0, 1), rho_0 = N(1.5, 0.8^2) on [-6, 6], BDF2 with dt = 2.5/n; 2D: rho_d = "
        "N(0, diag(1, 0.7^2)), rho_0 = N((1, -0.5), diag(0.8^2, 0.55^2)) on [-6, 6]^2, backward Euler with "
        "dt = 51.2/n^2; solved through case dicts and solve_case. Expected order 2 in h.", started)


def _snapshots(ax, grid, res, s) -> None:
    x = grid.centres[0]
    for k, (t, rho) in enumerate(zip(res.t, res.rho)):
        colour = C.plt.get_cmap("viridis")(k / max(len(res.t) - 1, 1))
        exact = ou_density(grid, t, s["m"], s["sigma"], s["mu0"], s["s0"])
        ax.plot(x, exact, "-", color=colour, lw=1.0, label=f"exact, t = {t:g}")
        ax.plot(x[::3], rho[::3], "o", color=colour, ms=2.5, mfc="none", label=f"fv, t = {t:g}")
    C.style_axes(ax, r"$x$", r"$\rho(t, x)$", f"1D, {grid.shape[0]} cells: lines exact, circles fv")
    ax.set_xlim(-4, 4)
    ax.legend(fontsize=6, ncol=2)


def _maps(axes, fig, grid, rho, exact, t) -> None:
    x, y = grid.centres
    extent = [grid.lower[0], grid.upper[0], grid.lower[1], grid.upper[1]]
    vmax = max(rho.max(), exact.max())
    for ax, data, title in ((axes[0], rho, f"fv, t = {t:g}"), (axes[1], exact, f"exact, t = {t:g}")):
        im = ax.imshow(data.T, origin="lower", extent=extent, vmin=0, vmax=vmax, cmap="viridis", aspect="equal")
        ax.set_title(title + f" ({grid.shape[0]}$^2$)")
        ax.set_xlabel(r"$x$")
        ax.set_ylabel(r"$y$")
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4, 4)
        ax.grid(False)
    fig.colorbar(im, ax=axes[:2], shrink=0.8, label=r"$\rho$")
    diff = rho - exact
    lim = np.abs(diff).max()
    im = axes[2].imshow(diff.T, origin="lower", extent=extent, vmin=-lim, vmax=lim, cmap="RdBu_r", aspect="equal")
    axes[2].set_title("fv - exact")
    axes[2].set_xlabel(r"$x$")
    axes[2].set_xlim(-4, 4)
    axes[2].set_ylim(-4, 4)
    axes[2].grid(False)
    fig.colorbar(im, ax=axes[2], shrink=0.8, format="%.0e")
