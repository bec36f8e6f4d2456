"""``fpsolver demo``: the built-in 1D bimodal case, end to end.

PDE (finite volumes) -> interacting particles (the GAN's distribution-dependent ODE) ->
comparison (histogram L1, exact W1, KS per save time, with the Monte-Carlo floor) -> figures.
Writes demo_pde.npz, demo_particles.npz, demo_pde.png and demo_comparison.png into ``--out``.
"""
from __future__ import annotations

import os
import time

DEMO_CASE = {
    "domain": {"lower": [-4.0], "upper": [4.0], "cells": [400]},
    "target": {"kind": "gaussian_mixture", "components": [
        {"weight": 0.5, "mean": [-1.5], "std": [0.5]},
        {"weight": 0.5, "mean": [1.5], "std": [0.5]}]},
    "initial": {"kind": "gaussian", "mean": [1.0], "std": [0.5]},
    "flow": {"kind": "js"},
    "time": {"dt": 0.01, "save_times": [0.5, 2.0, 8.0], "scheme": "backward-euler"},
}
DEMO_PARTICLES = 100_000
DEMO_SEED = 0
FLOOR_SEEDS = 20


def run_demo(args) -> int:
    """Solve DEMO_CASE with both solvers, compare them, plot; print where the files are."""
    from .case import Case
    from .cli import summary_density
    from .compare import compare, format_table
    from .errors import InputError
    from .fv import solve_case
    from .particles import solve_particles
    from .plots import plot_comparison, plot_density
    from .progress import ProgressBar

    out_dir = os.path.abspath(args.out)
    if not os.path.isdir(out_dir):
        raise InputError(f"--out {args.out}: folder does not exist")
    t0 = time.perf_counter()
    case = Case.from_dict(DEMO_CASE, source="built-in demo")

    bar = ProgressBar("demo: PDE", case.save_steps[-1])
    pde = solve_case(case, progress=bar)
    bar.close()
    pde_path = os.path.join(out_dir, "demo_pde.npz")
    pde.save(pde_path)
    print(summary_density(pde, pde_path))

    bar = ProgressBar(f"demo: {DEMO_PARTICLES:,} particles", 1000)
    particles = solve_particles(case, n=DEMO_PARTICLES, seed=DEMO_SEED, progress=bar)
    bar.close()
    part_path = os.path.join(out_dir, "demo_particles.npz")
    particles.save(part_path)
    print(f"wrote {part_path}  ({DEMO_PARTICLES:,} interacting particles, bandwidth "
          f"{particles.meta['bandwidth']:.3g}, {particles.meta['steps']} steps, "
          f"{particles.meta['wall_time']:.1f} s)")

    rows = compare(pde, particles, pde_name=pde_path, particles_name=part_path, floor_seeds=FLOOR_SEEDS)
    print()
    print(format_table(rows, pde, particles, pde_path, part_path))
    print()
    figures = [os.path.join(out_dir, "demo_pde.png"), os.path.join(out_dir, "demo_comparison.png")]
    plot_density(pde, figures[0])
    plot_comparison(pde, particles, rows, figures[1])
    for f in figures:
        print(f"wrote {f}")
    print(f"demo finished in {time.perf_counter() - t0:.1f} s; files are in {out_dir}")
    return 0
