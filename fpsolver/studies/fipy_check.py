"""Study 10: two independent grid solvers against exact solutions (ours and FiPy).

FiPy (:mod:`fpsolver.fipy_backend`) solves d_t (rho_d u) = div(rho_d beta'(u) grad u) with FiPy's
own face interpolation and terms; ours (:mod:`fpsolver.fv`) uses two-point fluxes of beta(u)
with the analytic rho_d on the faces. Each is measured against the exact solutions of
:mod:`fpsolver.exact_solutions`, on its own:

* kl, rho_d ~ e^{g x} on [0, 1] (the solution feels both walls), and the Ornstein-Uhlenbeck
  Gaussian of kl: smooth, so each solver's L1 error at the final time must fall at order
  2 +- ORDER_TOL in h. BDF2 with dt ~ h keeps the time error O(h^2) too.
* chi2 with a uniform target: the Barenblatt profile of the porous-medium equation (off
  centre). rho is Lipschitz, not C^1, at the front: the two-point flux is O(h) wrong on the
  faces next to it, an O(1) truncation error on an O(h)-wide band, so for the exact
  backward-Euler resolvent L1 contraction guarantees an O(h + dt) error (the argument of the
  ``external_exact`` study). Here both solvers run BDF2 (ours to round-off, FiPy by Picard
  sweeps to 1e-10), which is not contractive, so order >= BARENBLATT_MIN_ORDER = 1 is checked as
  the expectation that bound sets, not as a theorem; the measured orders are reported.
  For chi2 with a uniform rho_d the two discretisations coincide algebraically
  (beta(u_j) - beta(u_i) = 2 u_f (u_j - u_i) with u_f the arithmetic face value), so the two
  errors agree to the solvers' tolerances: a property of the schemes, reported as measured.

Each fit e = C h^p is reported as (p, C) per solver. Finally the two solvers' difference on a
smooth case where they differ (js, demo target, same dt, backward Euler for both) is O(h^2):
fitted order 2 +- ORDER_TOL.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..case import Case
from ..densities import GridDensity, Uniform
from ..exact_solutions import (ExponentialTarget, barenblatt, barenblatt_time_of_radius,
                               kl_exponential_target, ou_density)
from ..fv import solve_case
from ..grid import Grid
from . import _common as C

ORDER_TOL = 0.15
BARENBLATT_MIN_ORDER = 1.0
BARENBLATT_FLOOR = 1e-10   # added to the initial profile: both unknowns need rho > 0 everywhere

KL_G, KL_T0, KL_T = 3.0, 0.02, 0.1           # kl wall problem: start at t0 (rho(1, 0) = 0), run to t0 + T
OU = dict(m=[0.0], sigma=[1.0], mu0=[1.5], s0=[0.8], T=0.5)
BB_R0, BB_R1, BB_HALF_WIDTH = 0.3, 0.6, 1.0  # Barenblatt support radius at start and end; box [-1, 1]^d
BB_CENTRE = (0.1, -0.05)


def exact_case(grid: Grid, target, initial, flow: str, dt: float, T: float, scheme: str, source: str) -> Case:
    """A Case from Density objects (the exact problems' targets are not case-file kinds)."""
    raw = {"domain": grid.to_dict(), "flow": {"kind": flow},
           "time": {"dt": dt, "save_times": [T], "scheme": scheme}}
    return Case(grid, target, initial, flow, dt, (T,), scheme, raw, source)


@dataclass(frozen=True)
class Problem:
    """An exact problem: the case on n cells per axis and the exact cell values at its final time."""

    key: str
    label: str
    flow: str
    dim: int
    quick_cells: tuple
    full_cells: tuple
    build: Callable[[int], tuple]   # n -> (case, exact rho at the final time)
    smooth: bool                    # order 2 expected (else >= BARENBLATT_MIN_ORDER)

    def cells(self, quick: bool) -> tuple:
        return self.quick_cells if quick else self.full_cells


def kl_wall(n: int):
    """kl with rho_d ~ e^{g x} on [0, 1], BDF2 with dt = 0.4 / n, from t0 to t0 + T (n a multiple of 4)."""
    grid = Grid((0.0,), (1.0,), (n,))
    case = exact_case(grid, ExponentialTarget(KL_G), GridDensity(kl_exponential_target(grid, KL_T0, KL_G)),
                      "kl", 0.4 / n, KL_T, "bdf2", "fipy study: kl wall solution")
    return case, kl_exponential_target(grid, KL_T0 + KL_T, KL_G)


def kl_ou(n: int):
    """kl with rho_d = N(0, 1) on [-6, 6], rho_0 = N(1.5, 0.8^2); BDF2 with dt = 2.5 / n."""
    grid = Grid((-6.0,), (6.0,), (n,))
    case = Case.from_dict({
        "domain": grid.to_dict(),
        "target": {"kind": "gaussian", "mean": OU["m"], "std": OU["sigma"]},
        "initial": {"kind": "gaussian", "mean": OU["mu0"], "std": OU["s0"]},
        "flow": {"kind": "kl"}, "time": {"dt": 2.5 / n, "save_times": [OU["T"]], "scheme": "bdf2"}},
        source="fipy study: Ornstein-Uhlenbeck")
    return case, ou_density(grid, OU["T"], OU["m"], OU["sigma"], OU["mu0"], OU["s0"])


def chi2_barenblatt(dim: int):
    """chi2, uniform target on [-1, 1]^d: the Barenblatt profile centred at BB_CENTRE from support
    radius R0 to R1 (inside the box); BDF2 with n/2 (1D) or n/4 (2D) steps."""
    c = 1.0 / (2.0 * BB_HALF_WIDTH) ** dim          # the uniform unit-mass target
    t_shift = barenblatt_time_of_radius(BB_R0, c=c, dim=dim)
    T = barenblatt_time_of_radius(BB_R1, c=c, dim=dim) - t_shift

    def build(n: int):
        grid = Grid((-BB_HALF_WIDTH,) * dim, (BB_HALF_WIDTH,) * dim, (n,) * dim)
        rho0 = barenblatt(grid, 0.0, c=c, t_shift=t_shift, centre=BB_CENTRE[:dim]) + BARENBLATT_FLOOR
        case = exact_case(grid, Uniform(dim), GridDensity(rho0), "chi2", T / (n // (2 * dim)), T, "bdf2",
                          f"fipy study: Barenblatt {dim}D")
        return case, barenblatt(grid, case.final_time, c=c, t_shift=t_shift, centre=BB_CENTRE[:dim])
    return build


PROBLEMS = [
    Problem("kl-wall", "kl, rho_d ~ exp(gx), walls (1D)", "kl", 1, (40, 80, 160), (40, 80, 160, 320),
            kl_wall, True),
    Problem("kl-ou", "kl, Ornstein-Uhlenbeck (1D)", "kl", 1, (50, 100, 200), (50, 100, 200, 400), kl_ou, True),
    Problem("barenblatt-1d", "chi2, Barenblatt (1D)", "chi2", 1, (25, 50, 100), (25, 50, 100, 200, 400),
            chi2_barenblatt(1), False),
    Problem("barenblatt-2d", "chi2, Barenblatt (2D)", "chi2", 2, (), (16, 32, 64), chi2_barenblatt(2), False),
]


def difference_case(dim: int, n: int, flow: str = "js") -> Case:
    """The demo target (1D) or the two-mode 2D target; backward Euler, dt = 0.05 to T = 0.5."""
    if dim == 1:
        dom, initial = ([-4.0], [4.0]), {"kind": "gaussian", "mean": [0.5], "std": [0.8]}
        target = {"kind": "gaussian_mixture", "components": [
            {"weight": 0.5, "mean": [-1.5], "std": [0.5]}, {"weight": 0.5, "mean": [1.5], "std": [0.5]}]}
    else:
        dom, initial = ([-4.0, -4.0], [4.0, 4.0]), {"kind": "gaussian", "mean": [0.0, -0.5], "std": [1.0, 1.0]}
        target = {"kind": "gaussian_mixture", "components": [
            {"weight": 0.5, "mean": [-1.5, 0.0], "std": [0.5, 0.5]},
            {"weight": 0.5, "mean": [1.5, 0.5], "cov": [[0.3, 0.1], [0.1, 0.4]]}]}
    return Case.from_dict({"domain": {"lower": dom[0], "upper": dom[1], "cells": [n] * dim},
                           "target": target, "initial": initial, "flow": {"kind": flow},
                           "time": {"dt": 0.05, "save_times": [0.5]}}, source="fipy study: difference")


def _difference_series(quick: bool):
    yield 1, "js", (50, 100, 200) if quick else (50, 100, 200, 400)
    if not quick:
        yield 1, "reverse-kl", (50, 100, 200, 400)
        yield 2, "js", (32, 64, 128)


def fit_power(h, e) -> tuple[float, float]:
    """(p, C) of the least-squares fit log e = p log h + log C."""
    p, logc = np.polyfit(np.log(np.asarray(h, float)), np.log(np.asarray(e, float)), 1)
    return float(p), float(np.exp(logc))


def errors_against_exact(problem: Problem, cells, solvers: dict) -> dict:
    """Per solver name: L1 errors at the final time on each grid; plus h, wall times and rejected
    steps (ours; FiPy has no step rejection, a failed step raises)."""
    out = {"h": [], "rejected": []} | {name: [] for name in solvers} | {f"{name} time": [] for name in solvers}
    for n in cells:
        case, exact = problem.build(n)
        out["h"].append(case.grid.spacing[0])
        for name, solve in solvers.items():
            res = solve(case)
            out[name].append(C.l1(res.rho[-1], exact, case.grid))
            out[f"{name} time"].append(res.meta["wall_time"])
            out["rejected"].append(res.meta.get("rejected_steps", 0))
    return out


def _order_check(problem: Problem, solver: str, p: float) -> dict:
    what = f"order in h of the {solver} error, {problem.label}"
    if problem.smooth:
        return C.check(what, p, 2.0, ORDER_TOL)
    return C.check(what, p, BARENBLATT_MIN_ORDER, rule="ge")


def _exact_part(quick: bool, solvers: dict, ax, checks: list, rows: list) -> None:
    """Each solver against each exact problem: errors, fitted (p, C), order checks."""
    for k, problem in enumerate(p for p in PROBLEMS if p.cells(quick)):
        cells = problem.cells(quick)
        e = errors_against_exact(problem, cells, solvers)
        checks.append(C.check(f"rejected steps of ours, {problem.label}", sum(e["rejected"]), 0, rule="le"))
        fits = {name: fit_power(e["h"], e[name]) for name in solvers}
        for name, (p, c) in fits.items():
            checks.append(_order_check(problem, name, p))
            ax.plot(e["h"], e[name], "o-" if name == "fv" else "s--", color=f"C{k}",
                    mfc="none" if name == "FiPy" else None, label=f"{problem.label}, {name} (p = {p:.2f})")
        for i, n in enumerate(cells):
            rows.append([problem.label, n if problem.dim == 1 else f"{n}x{n}", C.fmt(e["h"][i]),
                         C.fmt(e["fv"][i]), C.fmt(e["FiPy"][i]), "", C.fmt(e["fv time"][i]),
                         C.fmt(e["FiPy time"][i])])
        rows.append([problem.label, "fit e = C h^p", ""]
                    + [f"p = {fits[name][0]:.3g}, C = {fits[name][1]:.3g}" for name in ("fv", "FiPy")]
                    + ["", "", ""])


def _difference_part(quick: bool, solvers: dict, ax, checks: list, rows: list) -> None:
    """The two solvers on the same smooth case: L1 difference vs h, order check."""
    for dim, flow, cells in _difference_series(quick):
        label = f"{dim}D {flow}, {'demo' if dim == 1 else 'two-mode'} target"
        h, diff = [], []
        for n in cells:
            case = difference_case(dim, n, flow)
            ours, theirs = solvers["fv"](case), solvers["FiPy"](case)
            h.append(case.grid.spacing[0])
            diff.append(C.l1(ours.rho[-1], theirs.rho[-1], case.grid))
            rows.append([label, n if dim == 1 else f"{n}x{n}", C.fmt(h[-1]), "", "", C.fmt(diff[-1]),
                         C.fmt(ours.meta["wall_time"]), C.fmt(theirs.meta["wall_time"])])
        p, c = fit_power(h, diff)
        checks.append(C.check(f"order in h of the fv - FiPy difference, {label}", p, 2.0, ORDER_TOL))
        rows.append([label, "fit d = C h^p", "", "", "", f"p = {p:.3g}, C = {c:.3g}", "", ""])
        ax.plot(h, diff, "o-" if dim == 1 else "s--", color=C.FLOW_COLOURS[flow], label=f"{label} (p = {p:.2f})")


def study_fipy(quick: bool, out_dir: str) -> dict:
    """Both solvers against exact solutions (orders and constants), and their difference at order 2."""
    from ..fipy_backend import solve_case_fipy

    started = time.perf_counter()
    solvers = {"fv": solve_case, "FiPy": solve_case_fipy}
    fig, axes = C.new_figure(2, 1, width=3.8)
    checks, rows = [], []
    _exact_part(quick, solvers, axes[0, 0], checks, rows)
    _difference_part(quick, solvers, axes[0, 1], checks, rows)
    for ax, title, ylabel in ((axes[0, 0], "each solver against the exact solution", r"$L^1$ error at $T$"),
                              (axes[0, 1], "difference of the two solvers", r"$\|\rho_{fv} - \rho_{FiPy}\|_{L^1}$")):
        xs = np.concatenate([ln.get_xdata() for ln in ax.get_lines()])
        ys = np.concatenate([ln.get_ydata() for ln in ax.get_lines()])
        C.reference_slope(ax, xs, ys, 2.0, label=r"$\propto h^2$", factor=0.3)
        C.style_axes(ax, r"cell size $h$", ylabel, title, loglog=True)
        ax.legend(fontsize=5.5, loc="upper left")
    figure = C.save(fig, out_dir, "fipy")
    return C.study_result(
        "fipy", "Two grid solvers against exact solutions: ours and FiPy", checks, figure,
        ["problem", "cells", "h", "fv: L1 error", "FiPy: L1 error", "L1(fv - FiPy)", "fv time (s)",
         "FiPy time (s)"], rows,
        f"Exact problems (fpsolver.exact_solutions): kl with rho_d ~ e^{{{KL_G:g}x}} on [0, 1] from t0 = {KL_T0:g} "
        f"to t0 + {KL_T:g}, BDF2, dt = 0.4/n; kl Ornstein-Uhlenbeck, N(0, 1) target on [-6, 6], rho_0 = "
        f"N(1.5, 0.8^2), T = {OU['T']:g}, BDF2, dt = 2.5/n; chi2 Barenblatt on [-1, 1]^d (uniform target), "
        f"centre {BB_CENTRE[0]:g} (1D) or {BB_CENTRE} (2D), support radius {BB_R0:g} -> {BB_R1:g}, floor {BARENBLATT_FLOOR:g}, BDF2 with n/2 (1D) or n/4 (2D) steps. "
        "Fits e = C h^p over all grids. Difference: backward Euler, dt = 0.05, T = 0.5, same case for both; "
        "the demo target (1D) or the two-mode target (2D).", started)
