"""Adaptive against fixed time steps on the 1D bimodal example: global error and wall time.

examples/bimodal_1d.toml (js, 400 cells, save times 0.5, 2 and 8). Global error: the largest L1
distance over the save times to fixed-step BDF2 at dt = 0.002 on the same grid (its own error,
estimated by Richardson against dt = 0.004, is printed and is far below the errors compared).
Fixed steps (the user picks dt) against error-controlled steps (time.rtol, dt = 0.5 the first and
largest step), both schemes, run side by side; wall time: the median of the run's wall time over
repeats (the machine may be shared; the load average is printed).

Target: L1 <= 1e-4 in <= 0.3 s (fixed BDF2 needs dt = 0.01 for it).

    python benchmarks/bench_adaptive.py            # about 1 minute
    python benchmarks/bench_adaptive.py --quick    # one repeat
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

from fpsolver.case import Case
from fpsolver.fv import solve_case

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "bimodal_1d.toml")
TARGET_L1, TARGET_S = 1e-4, 0.3


def _error(res, ref, vol) -> float:
    return max(float(np.sum(np.abs(a - b)) * vol) for a, b in zip(res.rho[1:], ref.rho[1:]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one repeat")
    args = p.parse_args(argv)
    repeats = 1 if args.quick else 3
    case = Case.from_toml(EXAMPLE)
    vol = case.grid.cell_volume
    load = os.getloadavg()
    print(f"bimodal_1d (js, {case.grid.shape[0]} cells, t = {', '.join(f'{t:g}' for t in case.save_times)}); "
          f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    ref = solve_case(case.with_overrides(dt=0.002, scheme="bdf2"))
    half = solve_case(case.with_overrides(dt=0.004, scheme="bdf2"))
    print(f"reference: BDF2 dt = 0.002, its error ~ {_error(ref, half, vol) / 3:.1e} (Richardson)")
    runs = [("backward-euler", dict(dt=0.01)), ("backward-euler", dict(dt=0.5, rtol=1e-3)),
            ("bdf2", dict(dt=0.05)), ("bdf2", dict(dt=0.02)), ("bdf2", dict(dt=0.01)),
            ("bdf2", dict(dt=0.5, rtol=1e-3)), ("bdf2", dict(dt=0.5, rtol=3e-4)), ("bdf2", dict(dt=0.5, rtol=1e-4))]
    solve_case(case.with_overrides(dt=0.5, rtol=1e-2))          # warm-up: load the compiled kernels
    print(f"{'scheme':<15} {'steps by':<12} {'steps':>6} {'rejected':>8} {'wall s':>8} {'L1 error':>9}")
    best = np.inf
    for scheme, kw in runs:
        c = case.with_overrides(scheme=scheme, **kw)
        walls, res = [], None
        for _ in range(repeats):
            res = solve_case(c)
            walls.append(res.meta["wall_time"])
        wall, err = statistics.median(walls), _error(res, ref, vol)
        label = f"rtol {kw['rtol']:g}" if "rtol" in kw else f"dt {kw['dt']:g}"
        rej = res.meta.get("rejected_by_error", 0) + res.meta["rejected_steps"]
        print(f"{scheme:<15} {label:<12} {res.meta['steps']:>6} {rej:>8} {wall:8.3f} {err:9.2e}")
        if "rtol" in kw and err <= TARGET_L1:
            best = min(best, wall)
    ok = best <= TARGET_S
    print(f"fastest adaptive run with L1 <= {TARGET_L1:g}: {best:.3f} s "
          f"({'meets' if ok else 'MISSES'} target <= {TARGET_S:g} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
