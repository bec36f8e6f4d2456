"""Cost per cell of a 2D backward-Euler step as the grid refines: multigrid against the Jacobi path.

examples/two_mode_2d.toml (js flow), dt = 0.02, the first backward-Euler steps from t = 0 at the
default Newton tolerance (round-off), on 64^2 ... 1024^2 cells. Both linear solvers of the 2D
Newton system run side by side in this one process:

  old: linear="krylov"     BiCGStab preconditioned by the unit diagonal (Jacobi)
  new: linear="multigrid"  CG preconditioned by one geometric V-cycle (fpsolver.fv.multigrid)

Each step's wall time is read from the run's own record (RunState.step_wall_times, also
meta["step_wall_times"] of a Result), so it is the whole step: Newton, the linear solves, the
mass and energy record. Reported per grid: the median step (first 5 steps; 3 at 1024^2, where
the old path takes about 10 s a step), the median per cell, the mean per cell of the linear
solves alone (RunState.linear_seconds), Newton and linear iterations, and
the processor time per step (the cost on an idle core), and the L1 distance between the two answers after the same steps (they agree to the Newton
tolerance, not bitwise). After the table: the targets of the multigrid path, per cell at 1024^2
<= 2x per cell at 128^2 and a 1024^2 step <= 1 s; and the 1D step (1000 cells, bimodal_1d,
dt = 0.01, tridiagonal, the whole run to t = 8), the solve alone and with its record, beside the
linear Newton start it replaced and the plain reference (scipy spsolve, numpy residuals), against
the 0.3 ms target.

The machine's cores may be shared, so medians; the load average is printed before and after.

    python benchmarks/bench_scaling.py            # about 3 minutes
    python benchmarks/bench_scaling.py --quick    # 64^2 ... 256^2 only (about 20 s)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from fpsolver.case import Case
from fpsolver.flows import get_flow
from fpsolver.fv import FVOperator, crandall_liggett
from fpsolver.fv import stepper as stepper_mod
from fpsolver.fv.stepper import CrandallLiggett, RunState

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
PATHS = ("krylov", "multigrid")
STEP_1D_TARGET = 0.3e-3
STEPS_1D = 800


def _setup(example, cells, dt):
    case = Case.from_toml(os.path.join(EXAMPLES, example)).with_overrides(cells=cells, dt=dt)
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    return op, (initial.log_cells - target.log_cells).reshape(op.shape)


def _run(op, w0, steps, linear):
    crandall_liggett(op, "js", w0, 0.02, [1], linear=linear)          # compile, build the hierarchy
    cpu = time.thread_time()
    st = crandall_liggett(op, "js", w0, 0.02, [steps], linear=linear)
    cpu = (time.thread_time() - cpu) / steps
    if st.rejected_steps:
        raise SystemExit(f"{linear}: {st.rejected_steps} rejected steps; timings would mix step sizes")
    newton = sum(st.newton_iterations)
    return {"t": statistics.median(st.step_wall_times), "newton": newton / steps,
            "lin": st.linear_iterations / max(newton, 1), "rho": st.saved_rho[-1],
            "lin_s": st.linear_seconds / steps, "cpu": cpu}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _table_2d(sizes) -> dict:
    print(f"{'cells':>9} {'path':>9} {'step s':>9} {'us/cell':>8} {'CPU s':>8} {'linear us/cell':>14} {'Newton':>7} "
          f"{'lin/Newton':>10} {'speed-up':>8} {'L1 diff':>9}")
    per_cell = {}
    for n in sizes:
        op, w0 = _setup("two_mode_2d.toml", [n, n], 0.02)
        steps = 3 if n >= 1024 else 5
        runs = {lin: _run(op, w0, steps, lin) for lin in PATHS}
        l1 = float(np.sum(np.abs(runs["krylov"]["rho"] - runs["multigrid"]["rho"])) * op.volume)
        for lin in PATHS:
            r = runs[lin]
            per_cell[(n, lin)] = r["t"] / n ** 2
            per_cell[(n, lin, "linear")] = r["lin_s"] / n ** 2
            per_cell[(n, lin, "cpu")] = r["cpu"]
            extra = (f"{runs['krylov']['t'] / r['t']:7.1f}x {l1:9.1e}" if lin == "multigrid" else "")
            print(f"{n:>5}^2   {lin:>9} {r['t']:9.4f} {r['t'] / n**2 * 1e6:8.3f} {r['cpu']:8.4f} {r['lin_s'] / n**2 * 1e6:14.3f} "
                  f"{r['newton']:7.1f} {r['lin']:10.1f} {extra}", flush=True)
    return per_cell


def _run_1d(op, w0, linear: str, start: str, repeats: int) -> dict:
    """One whole bimodal_1d run (t = 0 .. 8, 800 steps) per repeat, the solve and the record of
    every step timed apart; medians over all steps of the repeats after the first (which loads
    the compiled kernels). ``start``: "cubic" (the default Newton start) or "linear" (the one it
    replaced, by extrapolating through two steps only)."""
    depth = stepper_mod.PREDICTOR_DEPTH
    stepper_mod.PREDICTOR_DEPTH = depth if start == "cubic" else 0
    try:
        stepper = CrandallLiggett(op, get_flow("js"), 0.01, linear=linear)
        solve, whole, iters, cpu = [], [], [], 0.0
        for k in range(repeats):
            if k == 1:
                cpu = time.thread_time()
            state = RunState(n=0, w=w0.copy(), w_prev=None)
            for _ in range(STEPS_1D):
                t0 = time.perf_counter()
                stepper.step(state)
                t1 = time.perf_counter()
                stepper.record(state)
                t2 = time.perf_counter()
                if k:
                    solve.append(t1 - t0)
                    whole.append(t2 - t0)
            iters = state.newton_iterations
        cpu = (time.thread_time() - cpu) / (STEPS_1D * (repeats - 1))
    finally:
        stepper_mod.PREDICTOR_DEPTH = depth
    return {"solve": statistics.median(solve), "whole": statistics.median(whole), "cpu": cpu,
            "iters": np.bincount(iters), "w": state.w}


def _table_1d(repeats: int) -> float:
    """The 1D step beside the linear Newton start and the plain reference; returns ours (whole step)."""
    op, w0 = _setup("bimodal_1d.toml", [1000], 0.01)
    rows = {"ours (cubic start)": _run_1d(op, w0, "auto", "cubic", repeats),
            "linear start": _run_1d(op, w0, "auto", "linear", repeats),
            "plain (spsolve, numpy residuals)": _run_1d(op, w0, "spsolve", "cubic", max(2, repeats // 3))}
    ours = rows["ours (cubic start)"]
    print(f"1D backward-Euler step, bimodal_1d, js, 1000 cells, dt = 0.01, t = 0 .. 8 ({STEPS_1D} steps), "
          f"medians over every step")
    print(f"{'':>34} {'solve ms':>9} {'+ record ms':>11} {'CPU ms':>7}  Newton iterations per step (count of 0, 1, 2, ...)")
    for name, r in rows.items():
        diff = float(np.max(np.abs(r["w"] - ours["w"])))
        print(f"{name:>34} {r['solve'] * 1e3:9.3f} {r['whole'] * 1e3:11.3f} {r['cpu'] * 1e3:7.3f}  "
              f"{r['iters'].tolist()}  max |w - w_ours| at t = 8: {diff:.1e}")
    return ours["whole"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="64^2 ... 256^2 only")
    args = p.parse_args(argv)
    sizes = (64, 128, 256) if args.quick else (64, 128, 256, 512, 1024)
    print(f"2D backward-Euler step, two_mode_2d, js, dt = 0.02, default tolerance; {os.cpu_count()} cores, "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}, load average {_load()}")
    per_cell = _table_2d(sizes)
    print("speed-up = old step / new step; L1 diff = sum |K| |rho_old - rho_new| after the same steps; CPU s = "
          "processor time of the solving thread per step (mean), what a step costs on a core of its own")
    ok = True
    top = sizes[-1]
    growth = per_cell[(top, "multigrid")] / per_cell[(128, "multigrid")]
    old_growth = per_cell[(top, "krylov")] / per_cell[(128, "krylov")]
    verdict = "meets" if growth <= 2.0 else "MISSES"
    print(f"per cell {top}^2 / 128^2: multigrid {growth:.2f} ({verdict} target <= 2), Jacobi {old_growth:.2f}")
    ok &= growth <= 2.0
    lin_growth = per_cell[(top, "multigrid", "linear")] / per_cell[(128, "multigrid", "linear")]
    print(f"linear solves alone, per cell {top}^2 / 128^2: multigrid {lin_growth:.2f}, Jacobi "
          f"{per_cell[(top, 'krylov', 'linear')] / per_cell[(128, 'krylov', 'linear')]:.2f}")
    if top == 1024:
        t = per_cell[(1024, "multigrid")] * 1024 ** 2
        print(f"1024^2 step: multigrid {t:.2f} s wall, {per_cell[(1024, 'multigrid', 'cpu')]:.2f} s CPU "
              f"({'meets' if t <= 1.0 else 'MISSES'} target <= 1 s, on the wall clock)")
        ok &= t <= 1.0
    whole = _table_1d(2 if args.quick else 4)
    print(f"1D step with its record: {whole * 1e3:.3f} ms ({'meets' if whole <= STEP_1D_TARGET else 'MISSES'} "
          f"target <= {STEP_1D_TARGET * 1e3:g} ms, on the wall clock)")
    ok &= whole <= STEP_1D_TARGET
    print(f"load average after: {_load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
