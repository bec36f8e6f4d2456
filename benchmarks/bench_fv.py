"""One backward-Euler step of the finite-volume solver, side by side with the plain reference.

Ours: the damped Newton of fpsolver.fv with the Numba residual and the structured linear solve
(tridiagonal in 1D, multigrid-preconditioned CG in 2D, all in log space; the Jacobi BiCGStab it
replaced is compared per grid size in benchmarks/bench_scaling.py). Plain reference: the same Newton with
linear="spsolve", i.e. scipy's sparse LU of the assembled Jacobian at every iteration and
numpy residuals. Both use the same convergence test; by default that is round-off (rtol 1e-15
on the mass residual, or the residual's round-off floor), which is tighter than the 1e-10
relative residual the targets ask for. js flow, steps timed along real runs:

  1D: examples/bimodal_1d.toml on 1000 cells, dt = 0.01, t = 0 .. 1    target <= 0.5 ms / step
  2D: examples/two_mode_2d.toml on 256x256 cells, dt = 0.02, 15 steps  target <= 0.15 s / step

Reported: the median time of one step over all steps of all repeats (the machine's cores may
be shared with other work, so medians; the load average is printed), the ratio, the median
Newton iterations per step, and the L1 distance between the two final densities; each case at
rtol 1e-15 (round-off, the solver's default) and at rtol 1e-10.

    python benchmarks/bench_fv.py            # about 1.5 minutes
    python benchmarks/bench_fv.py --quick    # fewer steps and repeats (about 20 s)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

from fpsolver.progress import StepClock
from fpsolver.case import Case
from fpsolver.fv import FVOperator, crandall_liggett

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
TARGETS = {1: 0.5e-3, 2: 0.15}   # seconds per backward-Euler step


def _setup(example: str, cells, dt: float):
    case = Case.from_toml(os.path.join(EXAMPLES, example)).with_overrides(cells=cells, dt=dt)
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    return case, op, (initial.log_cells - target.log_cells).reshape(op.shape)


def _timed(op, w0, dt, steps, linear, repeats, rtol):
    """Median seconds per step over all steps of all repeats, median Newton iterations, final rho."""
    times, iters, rho = [], [], None
    for _ in range(repeats):
        clock = StepClock()
        state = crandall_liggett(op, "js", w0, dt, [steps], linear=linear, progress=clock, rtol=rtol)
        times += clock.times
        iters += state.newton_iterations
        rho = state.saved_rho[-1]
        if state.rejected_steps:
            raise SystemExit(f"benchmark run rejected {state.rejected_steps} steps; timings would mix step sizes")
    return statistics.median(times), statistics.median(iters), rho


def _row(label, dim, op, w0, dt, steps, repeats, ref_repeats, rtol):
    crandall_liggett(op, "js", w0, dt, [2])                        # warm-up: load/compile Numba
    t_ours, it_ours, rho_ours = _timed(op, w0, dt, steps, "auto", repeats, rtol)
    t_ref, it_ref, rho_ref = _timed(op, w0, dt, steps, "spsolve", ref_repeats, rtol)
    l1 = float(np.sum(np.abs(rho_ours - rho_ref)) * op.volume)
    target = TARGETS[dim]
    verdict = "meets" if t_ours <= target else "MISSES"
    print(f"{label:<30} {t_ours * 1e3:10.3f} {t_ref * 1e3:10.3f} {t_ref / t_ours:7.1f}x "
          f"{it_ours:5.0f} {it_ref:5.0f} {l1:10.1e}   {verdict} target {target * 1e3:g} ms")
    return t_ours <= target


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    args = p.parse_args(argv)
    steps_1d, steps_2d = (30, 4) if args.quick else (100, 15)
    reps_1d, reps_2d, ref_2d = (3, 1, 1) if args.quick else (7, 2, 1)

    load = os.getloadavg()
    print(f"fv backward-Euler step, js flow; {os.cpu_count()} cores, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared machine: medians over all steps)")
    print("Newton stops when the mass residual sum|R| <= rtol * mass, or at its round-off floor;")
    print("rtol 1e-15 (the default) means round-off, 1e-10 is the tolerance of the performance targets")
    print(f"{'case':<30} {'ours ms':>10} {'plain ms':>10} {'ratio':>8} {'it':>5} {'it':>5} {'L1 diff':>10}")
    ok = True
    case, op, w0 = _setup("bimodal_1d.toml", [1000], 0.01)
    for rtol in (1e-15,) if args.quick else (1e-15, 1e-10):
        ok &= _row(f"1D 1000, {steps_1d} steps, rtol {rtol:g}", 1, op, w0, case.dt, steps_1d, reps_1d, reps_1d, rtol)
    case, op, w0 = _setup("two_mode_2d.toml", [256, 256], 0.02)
    for rtol in (1e-15,) if args.quick else (1e-15, 1e-10):
        ok &= _row(f"2D 256^2, {steps_2d} steps, rtol {rtol:g}", 2, op, w0, case.dt, steps_2d, reps_2d, ref_2d, rtol)
    print("ratio = plain / ours; it = median Newton iterations per step (ours, plain); "
          "L1 diff = sum |K| |rho_ours - rho_plain| at the last step")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
