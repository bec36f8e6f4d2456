"""MMD particle step timings, side by side: Numba step vs a plain numpy step of the same computation.

    python benchmarks/bench_mmd_particles.py            # N = 10^5 binned, N = 10^4 direct (1D)
    python benchmarks/bench_mmd_particles.py --quick    # N / 10, for a smoke test

One step = the velocity at every particle + an explicit move with reflection at the walls
(an Euler step; Heun does the velocity twice). Binned: cloud-in-cell deposit on the binning
grid, zero-padded FFT convolution, central differences, linear interpolation (O(N + G log G)).
Direct: the exact sums over the N particles and the M target cells (O(N (N + M))). The numpy
step uses the numpy references of :mod:`fpsolver.particles.mmd` (np.add.at deposit, numpy
interpolation, blocked numpy double sum) and :func:`kernels.reflect_numpy`. Targets (issue):
binned N = 10^5 <= 10 ms, direct N = 10^4 <= 50 ms. Medians (and minima) of repeats; the
thread count and load average are printed because the machine may be shared.
"""
from __future__ import annotations

import argparse
import os
import sys

import numba
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fpsolver.case import Case  # noqa: E402
from fpsolver.particles import kernels  # noqa: E402
from fpsolver.particles.mmd import MMDVelocity  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
TARGET_MS = {"binned": 10.0, "direct": 50.0}

from bench_particles import timings  # noqa: E402  (the same median-of-repeats timer, this folder)


def steppers(case, n: int, method: str, h: float = 1e-3):
    """(Numba step, numpy step) closures over the same particles and velocity."""
    vel = MMDVelocity(case, n, 0, method)
    x = np.ascontiguousarray(case.initial.sample(n, np.random.default_rng(0), case.grid))
    v, out = np.empty_like(x), np.empty_like(x)
    lo, hi = np.array(case.grid.lower), np.array(case.grid.upper)

    def fast():
        vel(x, v, 0.0, 0.0)
        kernels.move_reflect(x, v, h, lo, hi, out)

    def plain():
        return kernels.reflect_numpy(x + h * vel.velocity_numpy(x), lo, hi)

    fast()
    gap = float(np.max(np.abs(out - plain())))
    return fast, plain, vel, gap


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N / 10")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    scale = 10 if args.quick else 1
    case = Case.from_toml(os.path.join(EXAMPLES, "mmd_1d.toml"))
    print(f"threads {numba.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
    ok = True
    for method, n in (("binned", 100_000 // scale), ("direct", 10_000 // scale)):
        fast, plain, vel, gap = steppers(case, n, method)
        tf = timings(fast, args.repeats)
        tp = timings(plain, max(1, args.repeats // 2 if method == "direct" else args.repeats))
        cells = "x".join(map(str, vel.bin_grid.shape)) if method == "binned" else f"M = {len(vel.target_points)}"
        within = 1e3 * tf[0] <= TARGET_MS[method]
        ok &= within or args.quick
        print(f"1D {method:6s} N = {n:>7,} ({cells}): numba {1e3 * tf[0]:8.2f} ms (min {1e3 * tf[1]:7.2f}), "
              f"numpy {1e3 * tp[0]:9.2f} ms, speed-up {tp[0] / tf[0]:6.1f}x, max |numba - numpy| {gap:.1e}, "
              f"target <= {TARGET_MS[method]:g} ms: {'met' if within else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
