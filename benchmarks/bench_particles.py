"""Particle solver timings, side by side: Numba step vs a plain numpy step, and a whole run.

    python benchmarks/bench_particles.py            # full sizes (N = 10^6 steps, N = 10^5 run)
    python benchmarks/bench_particles.py --quick    # N / 10, for a smoke test

One interacting step = KDE (binning + DCT smoothing and gradient) + velocity at every particle
+ move with reflection. An Euler step does this once, a Heun step twice. The numpy step is the
same computation with the numpy reference functions (np.add.at binning, FFT of the even
extension, numpy interpolation, Flow.velocity). Times are medians (and minima)
of repeats; the load average is printed because the machine may be shared.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numba
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fpsolver.case import Case  # noqa: E402
from fpsolver.grid import Grid  # noqa: E402
from fpsolver.particles import kernels, solve_particles  # noqa: E402
from fpsolver.particles.interacting import (InteractingVelocity, default_bandwidth,  # noqa: E402
                                            default_kde_grid)

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def timings(fn, repeats: int):
    """(median, min) wall time of ``fn`` over ``repeats`` calls after one warm-up call."""
    fn()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times))


def _ms(t) -> str:
    return f"{1e3 * t[0]:8.2f} ms (min {1e3 * t[1]:7.2f})"


class Stepper:
    """One Euler or Heun step of the interacting particles, Numba kernels."""

    def __init__(self, case, n, kde_grid, seed=0):
        self.case = case
        self.bandwidth = default_bandwidth(case, n)
        self.vel = InteractingVelocity(case, self.bandwidth, kde_grid)
        self.x = np.ascontiguousarray(case.initial.sample(n, np.random.default_rng(seed), case.grid))
        self.v1, self.v2 = np.empty_like(self.x), np.empty_like(self.x)
        self.x1, self.x2 = np.empty_like(self.x), np.empty_like(self.x)
        self.lo, self.hi = np.array(case.grid.lower), np.array(case.grid.upper)
        self.h = 1e-3

    def euler(self):
        self.vel(self.x, self.v1, 0.0, 0.0)
        kernels.move_reflect(self.x, self.v1, self.h, self.lo, self.hi, self.x1)

    def heun(self):
        self.euler()
        self.vel(self.x1, self.v2, self.h, 0.0)
        kernels.heun_move_reflect(self.x, self.v1, self.v2, self.h, self.lo, self.hi, self.x2)

    def density_only(self):
        self.vel.estimate(self.x)

    def numpy_euler(self):
        v = self.vel.velocity_numpy(self.x)  # np.add.at binning, FFT, numpy interpolation
        return kernels.reflect_numpy(self.x + self.h * v, self.lo, self.hi)


def bench_step(label, case, n, kde_grid, repeats, np_repeats, limit_ms):
    st = Stepper(case, n, kde_grid)
    t_euler = timings(st.euler, repeats)
    t_heun = timings(st.heun, repeats)
    t_kde = timings(st.density_only, repeats)
    t_np = timings(st.numpy_euler, np_repeats)
    st.euler()  # the two implementations compute the same step
    diff = np.abs(st.x1 - st.numpy_euler()).max()
    met = "met" if 1e3 * t_euler[0] <= limit_ms else "NOT met"
    print(f"\n{label}: N = {n:,}, KDE grid {'x'.join(map(str, kde_grid.shape))}, b = {st.bandwidth:.4g}")
    print(f"  Euler step (KDE + velocity + move)  {_ms(t_euler)}   (target <= {limit_ms} ms: {met})")
    print(f"  Heun step (two of each)             {_ms(t_heun)}")
    print(f"  KDE alone (binning + DCT, rho, grad){_ms(t_kde)}")
    print(f"  plain numpy Euler step              {_ms(t_np)}   "
          f"ratio numpy / Numba = {t_np[0] / t_euler[0]:5.1f}x (target >= 10x)")
    print(f"  max |x_numba - x_numpy| after one step: {diff:.1e}")
    try:
        from KDEpy import FFTKDE  # optional; not a dependency
    except ImportError:
        print("  KDEpy FFTKDE: skipped (KDEpy is not installed)")
    else:
        pts = st.x[:, 0] if case.grid.dim == 1 else st.x
        t_kdepy = timings(lambda: FFTKDE(bw=st.bandwidth).fit(pts).evaluate(
            kde_grid.shape[0] if case.grid.dim == 1 else kde_grid.shape), repeats)
        print(f"  KDEpy FFTKDE density alone          {_ms(t_kdepy)}   "
              f"ratio KDEpy / our Euler step = {t_kdepy[0] / t_euler[0]:5.2f}")


def bench_run(n, limit_s):
    case = Case.from_toml(os.path.join(EXAMPLES, "bimodal_1d.toml"))
    solve_particles(case.with_overrides(save_times=[0.02]), n=1000)  # compile outside the timing
    t0 = time.perf_counter()
    res = solve_particles(case, n=n, seed=0)
    wall = time.perf_counter() - t0
    print(f"\nwhole 1D bimodal run (interacting, Heun, N = {n:,}, t = 0 -> {case.final_time:g}): "
          f"{wall:.2f} s, {res.meta['steps']} steps, b = {res.meta['bandwidth']:.4g} "
          f"(target <= {limit_s} s: {'met' if wall <= limit_s else 'NOT met'})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N / 10 and fewer repeats")
    p.add_argument("--repeats", type=int, default=21)
    args = p.parse_args(argv)
    scale = 10 if args.quick else 1
    repeats = max(3, args.repeats // (3 if args.quick else 1))
    print(f"threads {numba.get_num_threads()} ({os.cpu_count()} cores), threading layer after "
          f"first run; load average at start {os.getloadavg()[0]:.2f} (shared machine: medians)")
    c1 = Case.from_toml(os.path.join(EXAMPLES, "bimodal_1d.toml"))
    n1 = 10**6 // scale
    kde1 = default_kde_grid(c1.grid, default_bandwidth(c1, n1))  # what the solver would use
    bench_step("1D bimodal (js)", c1, n1, kde1, repeats, 3, 20)
    c2 = Case.from_toml(os.path.join(EXAMPLES, "two_mode_2d.toml"))
    bench_step("2D two modes (js)", c2, 10**6 // scale, Grid(c2.grid.lower, c2.grid.upper, (256, 256)),
               repeats, 3, 120)
    bench_run(10**5 // scale, 20)
    print(f"\nthreading layer {numba.threading_layer()}; load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
