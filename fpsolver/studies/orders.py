"""Studies 1 and 2: order of accuracy of the finite-volume solver in space and in time.

Spatial order, two ways, for js and reverse-kl in 1D and 2D:

* Manufactured solution rho*(t, x) = rho_d(x) (1 + a(t) c(x)), a(t) = a0 (1 + t),
  c = sum_k cos(pi xi_k) + cos(2 pi xi_1)/2 (xi the coordinates scaled to [0, 1], so the flux
  rho_d grad beta(u*) vanishes on the walls), driven by the source
  S = d_t rho* - div(rho_d grad beta(u*)) = rho_d (a' c - grad log rho_d . grad beta(u*) - lap beta(u*)),
  grad beta(u) = beta'(u) a grad c,  lap beta(u) = beta''(u) a^2 |grad c|^2 + beta'(u) a lap c.
  rho* is linear in t, so backward Euler has no truncation error in time on it: the L1 error
  sum_K |rho_K(T) - rho*(T, x_K)| |K| measures the spatial error alone (expected O(h^2)).
* Fine-grid reference: the error against a run on a much finer grid with the same dt (the time
  error is the same on every grid and cancels), the fine solution interpolated to the coarse
  cell centres by cubic splines (interpolation error O(h_fine^4)).

Temporal order: backward Euler (expected 1) and BDF2 (expected 2) against a BDF2 run with a
16 times smaller step on the same grid, so the spatial error cancels.
"""
from __future__ import annotations

import time

import numpy as np
from scipy.interpolate import CubicSpline, RectBivariateSpline

from ..flows import get_flow
from ..fv import crandall_liggett
from ..grid import Grid
from . import _common as C

ORDER_TOL_SPACE = 0.15
ORDER_TOL_TIME = 0.1


# ------------------------------------------------------------------ manufactured solution

def _profile(grid: Grid):
    """c, grad c, lap c at the cell centres (module docstring)."""
    pts = grid.points()
    lo, hi = np.array(grid.lower), np.array(grid.upper)
    xi = (pts - lo) / (hi - lo)
    k = np.pi / (hi - lo)
    c = np.cos(np.pi * xi).sum(axis=1) + 0.5 * np.cos(2 * np.pi * xi[:, 0])
    grad = -k * np.sin(np.pi * xi)
    grad[:, 0] -= k[0] * np.sin(2 * np.pi * xi[:, 0])
    lap = -(k**2 * np.cos(np.pi * xi)).sum(axis=1) - 2 * k[0] ** 2 * np.cos(2 * np.pi * xi[:, 0])
    return c, grad, lap


def manufactured_error(flow_name: str, grid: Grid, target, T: float = 1.0, dt: float = 0.1) -> float:
    """L1 error at time T of backward Euler on the manufactured solution of the module docstring."""
    flow = get_flow(flow_name)
    op, _, rho_d = C.fv_setup(grid, target, target)
    c, grad_c, lap_c = _profile(grid)
    a0 = 0.25 / np.max(np.abs(c))            # keeps u* in [0.5, 1.5] up to t = 1
    rho_d = rho_d.ravel()
    glog = target.grad_log_pdf(grid.points())

    def source(t):
        a = a0 * (1.0 + t)
        u = 1.0 + a * c
        gb = flow.dbeta(u)[:, None] * a * grad_c
        lap_b = flow.d2beta(u) * a * a * np.sum(grad_c**2, axis=1) + flow.dbeta(u) * a * lap_c
        return (rho_d * (a0 * c - np.sum(glog * gb, axis=1) - lap_b)).reshape(op.shape)

    w0 = np.log1p(a0 * c).reshape(op.shape)
    n = int(round(T / dt))
    st = crandall_liggett(op, flow, w0, dt, [n], source=source)
    exact = rho_d * (1.0 + a0 * (1.0 + n * dt) * c)
    return C.l1(st.saved_rho[-1], exact, grid)


# ------------------------------------------------------------------ fine-grid reference

def _run(grid, target, initial, flow, T, dt, scheme="backward-euler"):
    op, w0, _ = C.fv_setup(grid, target, initial)
    n = int(round(T / dt))
    return crandall_liggett(op, flow, w0, dt, [n], scheme=scheme).saved_rho[-1].reshape(grid.shape)


def _interpolate(fine_grid: Grid, fine: np.ndarray, grid: Grid) -> np.ndarray:
    if grid.dim == 1:
        return CubicSpline(fine_grid.centres[0], fine)(grid.centres[0])
    spline = RectBivariateSpline(*fine_grid.centres, fine, kx=3, ky=3, s=0)
    return spline(*grid.centres)


def reference_errors(flow, box, cells, ref_cells, target, initial, T=0.5, dt=0.05):
    """L1 distance of the solution on each grid to the interpolated fine-grid solution."""
    d = len(box[0])
    fine_grid = Grid(box[0], box[1], (ref_cells,) * d)
    fine = _run(fine_grid, target, initial, flow, T, dt)
    errs = []
    for n in cells:
        g = Grid(box[0], box[1], (n,) * d)
        errs.append(C.l1(_run(g, target, initial, flow, T, dt), _interpolate(fine_grid, fine, g), g))
    return np.array(errs)


# ------------------------------------------------------------------ study 1

def _spatial_series(quick: bool):
    """(reference kind, dim, flow, box, cells, compute errors); the 2D fine grid in full runs only."""
    b1 = ((-4.0,), (4.0,))
    b2 = ((-4.0, -4.0), (4.0, 4.0))
    man1 = [25, 50, 100, 200] if quick else [25, 50, 100, 200, 400, 800]
    man2 = [16, 32, 64] if quick else [16, 32, 64, 128]
    ref1 = [50, 100, 200, 400] if quick else [50, 100, 200, 400, 800]
    fine1, ref2, fine2 = 8 * ref1[-1], [32, 64, 128], 640
    init1, init2 = C.gaussian([0.5], [0.8]), C.gaussian([0.0, -0.5], [1.0, 1.0])
    for flow in ("js", "reverse-kl"):
        yield ("manufactured", "1D", flow, b1, man1,
               lambda f=flow: np.array([manufactured_error(f, Grid(*b1, (n,)), C.bimodal_1d()) for n in man1]))
        yield ("manufactured", "2D", flow, b2, man2,
               lambda f=flow: np.array([manufactured_error(f, Grid(*b2, (n, n)), C.two_mode_2d()) for n in man2]))
        yield (f"fine grid ({fine1})", "1D", flow, b1, ref1,
               lambda f=flow: reference_errors(f, b1, ref1, fine1, C.bimodal_1d(), init1))
        if not quick:
            yield (f"fine grid ({fine2}^2)", "2D", flow, b2, ref2,
                   lambda f=flow: reference_errors(f, b2, ref2, fine2, C.two_mode_2d(), init2))


def study_spatial_order(quick: bool, out_dir: str) -> dict:
    """L1 error vs cell size h; fitted order p in error ~ h^p (theory: 2)."""
    started = time.perf_counter()
    fig, axes = C.new_figure(2, 1, width=3.6)
    checks, rows = [], []
    for kind, dim, flow, box, cells, compute in _spatial_series(quick):
        errs = compute()
        h = np.array([(box[1][0] - box[0][0]) / n for n in cells])
        p = C.fit_slope(h, errs)
        label = f"{kind}, {dim}, {flow}"
        checks.append(C.check(f"order in h, {label}", p, 2.0, ORDER_TOL_SPACE))
        for n, hh, e, loc in zip(cells, h, errs, C.local_slopes(h, errs)):
            rows.append([kind, dim, flow, n if dim == "1D" else f"{n}x{n}", C.fmt(hh), C.fmt(e), C.fmt(loc)])
        rows.append([kind, dim, flow, "fit", "", "", C.fmt(p)])
        ax = axes[0, 0 if kind == "manufactured" else 1]
        ax.plot(h, errs, "o-" if dim == "1D" else "s--", color=C.FLOW_COLOURS[flow],
                label=f"{dim} {flow} (p = {p:.2f})")
    for ax, title in zip(axes[0], ("manufactured solution", "fine-grid reference")):
        line = ax.get_lines()
        xs = np.concatenate([ln.get_xdata() for ln in line])
        ys = np.concatenate([ln.get_ydata() for ln in line])
        C.reference_slope(ax, xs, ys, 2.0, label=r"$\propto h^2$", factor=0.3)
        C.style_axes(ax, r"cell size $h$", r"$\|\rho_h(T) - \rho(T)\|_{L^1}$", title, loglog=True)
        ax.legend()
    figure = C.save(fig, out_dir, "spatial_order")
    return C.study_result(
        "spatial_order", "Spatial order (manufactured solution and fine-grid reference)", checks, figure,
        ["reference", "dim", "flow", "cells", "h", "L1 error", "order"], rows,
        "Backward Euler, T = 1 (manufactured, dt = 0.1) and T = 0.5 (fine grid, dt = 0.05). The "
        "manufactured solution is linear in t, so the time step adds no error; against the fine grid "
        "the time error is common to all grids and cancels. Expected order 2 (two-point fluxes on a "
        "uniform grid, rho_d at the faces).", started)


# ------------------------------------------------------------------ study 2

def study_temporal_order(quick: bool, out_dir: str) -> dict:
    """L1 error at T = 1 vs dt for backward Euler (expected order 1) and BDF2 (expected 2)."""
    started = time.perf_counter()
    dts = np.array([0.04, 0.02, 0.01, 0.005] + ([] if quick else [0.0025]))
    cases = [("1D", "js", Grid((-4.0,), (4.0,), (200,)), C.bimodal_1d(), C.gaussian([1.0], [0.5])),
             ("1D", "kl", Grid((-4.0,), (4.0,), (200,)), C.bimodal_1d(), C.gaussian([1.0], [0.5]))]
    if not quick:
        cases.append(("2D", "js", Grid((-4.0, -4.0), (4.0, 4.0), (48, 48)), C.two_mode_2d(),
                      C.gaussian([0.0, -1.0], [0.8, 0.8])))
    T = 1.0
    fig, axes = C.new_figure(1, 1, width=4.2, height=3.2)
    ax = axes[0, 0]
    checks, rows = [], []
    markers = {"js": "o", "kl": "^"}
    for dim, flow, grid, target, initial in cases:
        ref = _run(grid, target, initial, flow, T, dts[-1] / 16, "bdf2")
        for scheme, expected in (("backward-euler", 1.0), ("bdf2", 2.0)):
            errs = np.array([C.l1(_run(grid, target, initial, flow, T, dt, scheme), ref, grid) for dt in dts])
            p = C.fit_slope(dts, errs)
            checks.append(C.check(f"order in dt, {scheme}, {dim} {flow}", p, expected, ORDER_TOL_TIME))
            for dt, e, loc in zip(dts, errs, C.local_slopes(dts, errs)):
                rows.append([scheme, dim, flow, C.fmt(dt), C.fmt(e), C.fmt(loc)])
            rows.append([scheme, dim, flow, "fit", "", C.fmt(p)])
            ax.plot(dts, errs, marker=markers[flow], linestyle="-" if dim == "1D" else "--",
                    color=C.SCHEME_COLOURS[scheme], label=f"{scheme}, {dim} {flow} (p = {p:.2f})")
    for slope in (1.0, 2.0):
        lines = [ln for ln in ax.get_lines() if ("bdf2" in ln.get_label()) == (slope == 2.0)]
        C.reference_slope(ax, dts, np.concatenate([ln.get_ydata() for ln in lines]), slope,
                          label=rf"$\propto \Delta t^{slope:g}$", factor=0.4)
    C.style_axes(ax, r"time step $\Delta t$", r"$\|\rho_{\Delta t}(T) - \rho(T)\|_{L^1}$",
                 "temporal order, T = 1", loglog=True)
    ax.legend(fontsize=6.5)
    figure = C.save(fig, out_dir, "temporal_order")
    return C.study_result(
        "temporal_order", "Temporal order (backward Euler and BDF2)", checks, figure,
        ["scheme", "dim", "flow", "dt", "L1 error", "order"], rows,
        f"Reference: BDF2 with dt = {dts[-1] / 16:g} on the same grid (200 cells in 1D, 48x48 in 2D), so "
        "the spatial error cancels. BDF2 starts with one backward-Euler step (local error O(dt^2), "
        "so the global order stays 2).", started)
