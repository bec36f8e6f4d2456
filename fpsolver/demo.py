"""``fpsolver demo``: the built-in 1D bimodal case, end to end."""
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


def run_demo(args) -> int:
    from .case import Case
    from .cli import summary_density
    from .fv import solve_case
    from .plots import plot_density
    from .progress import ProgressBar

    out_dir = os.path.abspath(args.out)
    if not os.path.isdir(out_dir):
        from .errors import InputError
        raise InputError(f"--out {args.out}: folder does not exist")
    t0 = time.perf_counter()
    case = Case.from_dict(DEMO_CASE, source="built-in demo")
    bar = ProgressBar("demo: PDE", case.save_steps[-1])
    res = solve_case(case, progress=bar)
    bar.close()
    pde_path = os.path.join(out_dir, "demo_pde.npz")
    res.save(pde_path)
    print(summary_density(res, pde_path))
    fig = os.path.join(out_dir, "demo_pde.png")
    plot_density(res, fig)
    print(f"wrote {fig}\ndemo finished in {time.perf_counter() - t0:.1f} s; files are in {out_dir}")
    return 0
