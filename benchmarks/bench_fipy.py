"""Our finite-volume solver against the FiPy formulation: same case, grid, dt and tolerance.

FiPy solves d_t (rho_d u) = div(rho_d beta'(u) grad u) with its own face values, terms and
Picard sweeps (fpsolver/fipy_backend.py); ours is the two-point scheme in w = log u with
Newton (fpsolver.fv). Both run to the same final residual: the mass residual sum_i |R_i| of each
step relative to the mass of its right-hand side, <= TOL (Newton rtol for ours, Picard
sweep_tol for FiPy). Reported per case: the median wall time of one step (over all steps of
all repeats; the machine's cores are shared, so medians), the speed ratio, iterations per
step, the L1 difference of the two answers, and each answer's L1 error against a reference:

* the js examples (backward Euler, a fixed number of steps): our run with 4x the cells per
  axis and dt/4, averaged onto the coarse cells (16x smaller error than either answer);
* kl, Ornstein-Uhlenbeck (BDF2, dt = 2.5/n, to T = 0.5; the "fipy" study's problem): the exact
  Gaussian, so neither solver is the reference.

    python benchmarks/bench_fipy.py            # 1D 400 cells, 2D 128x128 (about 20 s)
    python benchmarks/bench_fipy.py --quick    # fewer steps and repeats (about 10 s)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

from fpsolver.case import Case
from fpsolver.fipy_backend import solve_case_fipy
from fpsolver.fv import solve_case
from fpsolver.progress import StepClock
from fpsolver.studies.fipy_check import kl_ou

TOL = 1e-10
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
TARGETS = {1: 40.0, 2: 30.0}   # ours must be at least this many times faster
OU_CELLS = 400


def _timed(solver, case, repeats: int):
    """(median seconds per step over all steps of all repeats, last Result)."""
    steps, res = [], None
    for _ in range(repeats):
        clock = StepClock()
        res = solver(case, clock)
        steps.extend(clock.times)
    return statistics.median(steps), res


def _ours(case, progress):
    return solve_case(case, rtol=TOL, progress=progress)


def _fipy(case, progress):
    return solve_case_fipy(case, sweep_tol=TOL, progress=progress)


def _restrict(fine: np.ndarray, shape: tuple) -> np.ndarray:
    if len(shape) == 1:
        return fine.reshape(shape[0], 4).mean(axis=1)
    return fine.reshape(shape[0], 4, shape[1], 4).mean(axis=(1, 3))


def _example(name: str, steps: int):
    """(case, label, reference): a js example for ``steps`` steps, referenced by our 4x-refined run."""
    case = Case.from_toml(os.path.join(EXAMPLES, name))
    case = case.with_overrides(save_times=[steps * case.dt])
    fine = case.with_overrides(cells=[4 * n for n in case.grid.cells], dt=case.dt / 4)
    return case, f"{name}, {steps} steps", lambda: _restrict(solve_case(fine, rtol=TOL).rho[-1], case.grid.shape)


def _exact_ou():
    case, exact = kl_ou(OU_CELLS)
    return case, f"kl Ornstein-Uhlenbeck, {case.save_steps[-1]} BDF2 steps", lambda: exact


def bench(case, reference, repeats: int) -> dict:
    """Time both solvers on the case; return the measurements."""
    warm = case.with_overrides(save_times=[case.dt])
    _ours(warm, None), _fipy(warm, None)   # compile / import / first-build costs out of the timing
    t_ours, ours = _timed(_ours, case, max(repeats, 5))
    t_fipy, fp = _timed(_fipy, case, repeats)
    ref = reference()
    vol = case.grid.cell_volume
    l1 = lambda a, b: float(np.sum(np.abs(a - b)) * vol)  # noqa: E731
    return {"case": case, "t_ours": t_ours, "t_fipy": t_fipy, "ratio": t_fipy / t_ours,
            "diff": l1(fp.rho[-1], ours.rho[-1]), "err_ours": l1(ours.rho[-1], ref),
            "err_fipy": l1(fp.rho[-1], ref), "sweeps": statistics.median(fp.meta["sweeps"]),
            "newton": statistics.median(ours.meta["newton_iterations"]),
            "fipy_version": fp.meta["fipy_version"]}


def _grid_name(case) -> str:
    return "x".join(str(n) for n in case.grid.cells)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and one FiPy repeat")
    args = ap.parse_args(argv)
    runs = [_example("bimodal_1d.toml", 5 if args.quick else 20),
            _example("two_mode_2d.toml", 3 if args.quick else 8), _exact_ou()]
    repeats = 1 if args.quick else 3
    results, ok = [], True
    print(f"residual tolerance {TOL:g} for both; median over steps x repeats (shared cores: timings are noisy)")
    for case, label, reference in runs:
        r = bench(case, reference, repeats)
        target = TARGETS[case.grid.dim]
        ok &= r["ratio"] >= target
        print(f"{label}: {case.flow}, grid {_grid_name(case)}, dt {case.dt:g} | "
              f"ours {1e3 * r['t_ours']:.3g} ms/step ({r['newton']:g} Newton its) | "
              f"FiPy {1e3 * r['t_fipy']:.4g} ms/step ({r['sweeps']:g} sweeps) | "
              f"ours {r['ratio']:.0f}x faster (target >= {target:.0f}x: "
              f"{'met' if r['ratio'] >= target else 'NOT met'}) | L1(FiPy - ours) = {r['diff']:.2e}")
        results.append((label, r))
    print("\n| case | backend | grid | dt | time per step (median) | L1 vs reference | L1 vs the other answer |")
    print("|---|---|---|---|---|---|---|")
    for label, r in results:
        g, dt, name = _grid_name(r["case"]), r["case"].dt, label.split(",")[0].replace(".toml", "")
        print(f"| {name} | fpsolver fv | {g} | {dt:g} | {1e3 * r['t_ours']:.3g} ms | {r['err_ours']:.2e} | "
              f"{r['diff']:.2e} |")
        print(f"| {name} | FiPy {r['fipy_version']} | {g} | {dt:g} | {1e3 * r['t_fipy']:.4g} ms | "
              f"{r['err_fipy']:.2e} | {r['diff']:.2e} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
