"""Particles against the PDE, per save time: histogram L1, 1-Wasserstein, Kolmogorov-Smirnov.

For each save time t of the particle result, with rho the PDE cell values at t and Y_p the
N particle positions:

    L1 = sum_K |#{Y_p in K}/(N |K|) - rho_K| |K|       (histogram on the PDE's cells)
    W1 = int |F_N - F_rho| dx                            (1D: exact, from the CDFs)
       = (1/pi) int_0^pi W1(P_theta mu_N, P_theta rho)   (2D: sliced, exact per direction)
    KS = sup_x |F_N(x) - F_rho(x)|                       (1D only)

rho is read as piecewise constant on the cells (see :mod:`fpsolver.metrics`). Optionally the
Monte-Carlo floor: the 95th percentile over seeds of W1 between N exact samples of rho and rho,
the distance a perfect particle method would still show at that N.
"""
from __future__ import annotations

import json
import os
import numpy as np

from . import metrics
from .errors import InputError
from .result import Result

TIME_RTOL = 1e-9     # save times match when |t_pde - t_particles| <= 1e-9 max(1, |t|)
RHO_D_RTOL = 1e-6    # the two files must carry the same target density (same case, same grid)
N_DIRS = 100         # directions of the sliced W1 in 2D


def _describe_grid(axes) -> str:
    """'400 cells on [-4, 4]' or '128 x 128 cells on [-4, 4] x [-4, 4]'."""
    cells, boxes = [], []
    for c in axes:
        h = (c[-1] - c[0]) / (len(c) - 1)
        cells.append(str(len(c)))
        boxes.append(f"[{c[0] - h / 2:g}, {c[-1] + h / 2:g}]")
    return f"{' x '.join(cells)} cells on {' x '.join(boxes)}"


def _check_pair(pde: Result, particles: Result, pde_name: str, particles_name: str) -> None:
    """Raise InputError unless the two results describe the same grid, dimension and target."""
    if pde.kind != "density":
        raise InputError(f"{pde_name}: expected a density result, got a {pde.kind} result")
    if particles.kind != "particles":
        raise InputError(f"{particles_name}: expected a particle result, got a {particles.kind} result")
    d = particles.positions.shape[2]
    if d != pde.dim:
        raise InputError(f"{particles_name}: {d}D particles, but {pde_name} is a {pde.dim}D result")
    if particles.axes:
        same = (len(particles.axes) == len(pde.axes)
                and all(a.shape == b.shape and np.allclose(a, b, rtol=1e-9, atol=1e-12 * np.ptp(b))
                        for a, b in zip(particles.axes, pde.axes)))
        if not same:
            raise InputError(f"{particles_name}: its grid ({_describe_grid(particles.axes)}) differs "
                             f"from the grid of {pde_name} ({_describe_grid(pde.axes)})")
    if particles.rho_d is not None and pde.rho_d is not None and particles.rho_d.shape == pde.rho_d.shape:
        a = particles.rho_d / np.sum(particles.rho_d)
        b = pde.rho_d / np.sum(pde.rho_d)
        diff = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
        if not diff <= RHO_D_RTOL:
            raise InputError(f"{particles_name}: its target rho_d differs from that of {pde_name} "
                             f"(max relative difference {diff:.2e}); were both made from the same case?")


def _matching_times(pde: Result, particles: Result, pde_name: str) -> list[int]:
    idx = []
    for t in particles.t:
        j = int(np.argmin(np.abs(pde.t - t)))
        if abs(pde.t[j] - t) > TIME_RTOL * max(1.0, abs(t)):
            have = ", ".join(f"{v:g}" for v in pde.t)
            raise InputError(f"{pde_name}: no save time t = {t:g} (it has t = {have}); "
                             "save both results at the same times")
        idx.append(j)
    return idx


def compare(pde: Result, particles: Result, *, pde_name: str = "PDE result",
            particles_name: str = "particle result", floor_seeds: int = 0,
            n_dirs: int = N_DIRS) -> list[dict]:
    """Rows {t, n, l1, w1[, ks][, w1_floor]} per save time of the particle result (see module doc).

    ``floor_seeds`` > 0 adds w1_floor, the 95th percentile over that many seeds of W1 between
    n exact samples of the PDE density and the density (:func:`metrics.mc_floor_w1`).
    """
    _check_pair(pde, particles, pde_name, particles_name)
    grid = pde.grid
    rows = []
    for t, j, pos in zip(particles.t, _matching_times(pde, particles, pde_name), particles.positions):
        rho = pde.rho[j]
        row = {"t": float(t), "n": int(pos.shape[0]),
               "l1": metrics.histogram_l1(pos, grid, rho),
               "w1": metrics.w1_to_density(pos, grid, rho, n_dirs=n_dirs)}
        if grid.dim == 1:
            row["ks"] = metrics.ks_1d(pos, grid, rho)
        if floor_seeds > 0:
            row["w1_floor"] = metrics.mc_floor_w1(grid, rho, pos.shape[0], seeds=floor_seeds,
                                                  quantile=0.95, n_dirs=n_dirs)
        rows.append(row)
    return rows


def format_table(rows: list[dict], pde: Result, particles: Result, pde_name: str,
                 particles_name: str) -> str:
    """Human-readable report: what was compared, then one line per save time."""
    m = particles.meta
    n_all = m.get("N", m.get("n"))
    n_saved = particles.positions.shape[1]
    head = [f"particles  {particles_name}: {m.get('mode', 'particles')}, N = {n_all or n_saved}"
            + (f" ({n_saved} positions stored and compared)" if n_all and n_all != n_saved else ""),
            f"PDE        {pde_name}: {pde.meta.get('backend', '?')} solver, {pde.meta.get('flow', '?')} "
            f"flow, {_describe_grid(pde.axes)}"]
    if pde.dim == 1:
        head.append("L1: histogram on the PDE cells; W1: exact from the CDFs; KS: sup |F_N - F|")
    else:
        head.append(f"L1: histogram on the PDE cells; W1: sliced, {N_DIRS} directions, exact per direction")
    cols = ["t", "L1", "W1"] + (["KS"] if pde.dim == 1 else []) + \
        (["W1 floor95"] if rows and "w1_floor" in rows[0] else [])
    keys = ["l1", "w1"] + (["ks"] if pde.dim == 1 else []) + (["w1_floor"] if "W1 floor95" in cols else [])
    lines = head + ["", "".join(f"{c:>12}" for c in cols)]
    for r in rows:
        lines.append(f"{r['t']:>12.4g}" + "".join(f"{r[k]:>12.3e}" for k in keys))
    return "\n".join(lines)


def compare_cli(args) -> int:
    """``fpsolver compare PDE.npz PARTICLES.npz [--plot FIG.png] [--json] [--floor K]``."""
    if args.plot:
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            raise InputError(f"--plot {args.plot}: folder {folder} does not exist")
    floor = int(getattr(args, "floor", 0) or 0)
    if floor < 0:
        raise InputError(f"--floor {floor}: give a number of seeds >= 0")
    pde = Result.load(args.pde, expect="density")
    particles = Result.load(args.particles, expect="particles")
    rows = compare(pde, particles, pde_name=args.pde, particles_name=args.particles, floor_seeds=floor)
    if args.plot:
        from .plots import plot_comparison
        plot_comparison(pde, particles, rows, args.plot)
    if args.json:
        out = {"pde": args.pde, "particles": args.particles, "dim": pde.dim,
               "w1": "exact" if pde.dim == 1 else f"sliced, {N_DIRS} directions",
               "mode": particles.meta.get("mode"), "rows": rows}
        if args.plot:
            out["plot"] = args.plot
        print(json.dumps(out, indent=2))
    else:
        print(format_table(rows, pde, particles, args.pde, args.particles))
        if args.plot:
            print(f"wrote {args.plot}")
    return 0
