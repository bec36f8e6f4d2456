"""Dual-flow grid solver (MATH.md section 10): whole runs against the targets, and one step side by
side with a plain numpy version of the same step.

One step: the logit f by backward Euler cell by cell (ours: safeguarded Newton in numba; plain: a
vectorised 200-halving bisection of the same bracket) or, for the kernel metric, an explicit step
with K by FFT (ours) / separable kernel-matrix products (plain); then the upwind transport of rho
with the face velocity h'(f) grad f (ours: fpsolver.fv.transport.flux_divergence, numba; plain:
numpy fluxes). Whole runs go through fpsolver.fv.solve_case, as `fpsolver solve` does (the
per-step record of mass, GAN value and JS included); the plain 1D run repeats the same loop with
the plain step. Targets:

  1D 500 cells to t = 8 at kappa = 100 (examples/dual_js_1d.toml)           <= 2 s
  2D 128^2 to t = 2 at kappa = 10, kernel metric (examples/dual_kernel_2d.toml) and L2  <= 30 s

    python benchmarks/bench_dual.py            # 5 repeats of the runs, 30 of the steps
    python benchmarks/bench_dual.py --quick    # 1 and 5
"""
from __future__ import annotations

import argparse
import copy
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fpsolver.case import Case  # noqa: E402
from fpsolver.dynamics import dual  # noqa: E402
from fpsolver.dynamics.grid import DEFAULT_FRACTION, dual_step, kernel_convolution  # noqa: E402
from fpsolver.flows import get_flow  # noqa: E402
from fpsolver.fv import solve_case  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_particles import timings  # noqa: E402  (the same median-of-repeats timer, this folder)

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
TARGETS = {"1D": 2.0, "2D": 30.0}


def _median(fn, repeats):
    """Median wall time over ``repeats`` calls after a warm-up (bench_particles' timer)."""
    return timings(fn, repeats)[0]


def _plain_divergence(rho, vel, spacing):
    """-sum_a (F_{i+1/2} - F_{i-1/2}) / dx_a, F = v+ rho_i - v- rho_j, walls 0 (numpy only)."""
    out = np.zeros_like(rho)
    for a, (v, dx) in enumerate(zip(vel, spacing)):
        r = np.moveaxis(rho, a, 0)
        vv = np.moveaxis(v, a, 0)
        flux = np.maximum(vv, 0.0) * r[:-1] - np.maximum(-vv, 0.0) * r[1:]
        wall = np.zeros((1,) + flux.shape[1:])
        out -= np.moveaxis(np.diff(np.concatenate([wall, flux, wall]), axis=0), 0, a) / dx
    return out


def _plain_kernel(grid, sigma):
    mats = [np.exp(-(c[:, None] - c[None, :]) ** 2 / (2 * sigma ** 2)) for c in grid.centres]

    def conv(g):
        out = mats[0] @ g if grid.dim == 1 else mats[0] @ g @ mats[1].T
        return out * grid.cell_volume
    return conv


def plain_step(rho, f, rho_d, grid, flow, spec, dt, kconv=None):
    """The same step in numpy only (module docstring)."""
    if spec.metric == "kernel":
        f_new = f + dt * spec.rate * kconv(dual.discriminator_drive(f, rho, rho_d))
    else:
        f_new = dual.l2_implicit_update_numpy(f, rho, rho_d, dt, spec.rate)
    vel = dual.face_velocities(f_new, flow, grid.spacing)
    return rho + dt * _plain_divergence(rho, vel, grid.spacing), f_new


def _state(case):
    target, initial = case.discretised()
    shape = case.grid.shape
    lrd, lr0 = target.log_cells.reshape(shape), initial.log_cells.reshape(shape)
    return np.exp(lr0), dual.initial_logit(case.discriminator.initial, lr0, lrd), np.exp(lrd)


def plain_run(case):
    """The whole run with the plain step and the same step-size rule (1D)."""
    rho, f, rho_d = _state(case)
    flow, spec, grid = get_flow(case.flow), case.discriminator, case.grid
    t, T = 0.0, case.final_time
    while t < T:
        lim = dual.step_limit(f, rho, rho_d, flow, spec.rate, grid.spacing)
        vel = dual.face_velocities(f, flow, grid.spacing)
        out = np.max(np.abs(vel[0])) / grid.spacing[0] * 2.0
        dt = min(DEFAULT_FRACTION * lim, DEFAULT_FRACTION / out, case.dt, T - t)
        rho, f = plain_step(rho, f, rho_d, grid, flow, spec, dt)
        t += dt
    return rho


def _variant(path, metric=None):
    case = Case.from_toml(path)
    if metric == "L2":
        raw = copy.deepcopy(case.raw)
        raw["discriminator"] = {"rate": case.discriminator.rate, "metric": "L2", "initial": case.discriminator.initial}
        case = Case.from_dict(raw)
    return case


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    runs, steps = (1, 5) if args.quick else (5, 30)
    print(f"dual flows on the grid, medians; load average {os.getloadavg()[0]:.2f}")
    ok = True
    runs_spec = [("1D", "500 cells, t = 8, kappa = 100, L2", _variant(os.path.join(EXAMPLES, "dual_js_1d.toml"))),
                 ("2D", "128^2, t = 2, kappa = 10, kernel", _variant(os.path.join(EXAMPLES, "dual_kernel_2d.toml"))),
                 ("2D", "128^2, t = 2, kappa = 10, L2", _variant(os.path.join(EXAMPLES, "dual_kernel_2d.toml"), "L2"))]
    for dim, label, case in runs_spec:
        holder = {}
        t_run = _median(lambda: holder.setdefault("r", solve_case(case)), runs)
        res = solve_case(case)
        line = f"  whole run {dim} {label:34s} ours {t_run:7.3f} s ({res.meta['steps']} steps)"
        if dim == "1D":
            t_plain = _median(lambda: plain_run(case), runs)
            line += f"   plain numpy {t_plain:7.3f} s   ratio {t_plain / t_run:5.1f}"
        ok = ok and t_run <= TARGETS[dim]
        print(line + f"   target <= {TARGETS[dim]:g} s: {'met' if t_run <= TARGETS[dim] else 'NOT met'}")
    for dim, label, case in runs_spec:
        rho, f, rho_d = _state(case)
        flow, spec, grid = get_flow(case.flow), case.discriminator, case.grid
        conv = kernel_convolution(grid, spec)
        kplain = _plain_kernel(grid, spec.sigma) if spec.metric == "kernel" else None
        dt = 0.5 * dual.step_limit(f, rho, rho_d, flow, spec.rate, grid.spacing, spec.metric, conv)
        speed = max(np.max(np.abs(v)) / h for v, h in zip(dual.face_velocities(f, flow, grid.spacing), grid.spacing))
        dt = min(dt, 0.5 / (speed * grid.dim)) if speed > 0 else dt
        ours = lambda: dual_step(rho, f, rho_d, grid, flow, spec, dt, conv=conv)  # noqa: E731
        plain = lambda: plain_step(rho, f, rho_d, grid, flow, spec, dt, kplain)  # noqa: E731
        diff = float(np.max(np.abs(ours()[0] - plain()[0])) / np.max(rho))
        t_o, t_p = _median(ours, steps), _median(plain, steps)
        print(f"  one step  {dim} {label:34s} ours {1e3 * t_o:7.3f} ms   plain numpy {1e3 * t_p:7.3f} ms   "
              f"ratio {t_p / t_o:5.1f}   max |diff| / max rho {diff:.1e}")
        ok = ok and diff < 1e-10
    print(f"targets: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
