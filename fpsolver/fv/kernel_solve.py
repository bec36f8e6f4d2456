"""Case -> Result for the kernel (nonlocal) flows: the MMD flow of MATH.md section 9 on the grid.

    d_t rho = div(rho grad f),   f = k * (rho - rho_d)   (or -f* with the Sobolev critic),

by the explicit upwind transport scheme of :mod:`fpsolver.fv.transport` (MUSCL + SSP-RK2, or
first-order upwind + forward Euler), f by zero-padded FFT convolution (:mod:`fpsolver.flows.kernel`).
Mass is exact and rho >= 0 under the CFL step the scheme chooses (at most the case's dt). With
``[flow.noise] level = beta, until = T`` the flow uses the smoothed kernel g_beta * k for t < T
and k after (the run is split at T). meta holds, per step, the time, the mass and the energy
F = 1/2 MMD^2 for the kernel k (non-increasing without noise), the steps taken, and, per save
time, the wall mass: the mass in the cells that touch a wall, where the no-flux walls collect
whatever the flow pushes out of the box (MATH.md section 9; report it, not the peak, which grows
like 1 / dx).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .. import __version__
from ..flows import NONLOCAL_FLOWS
from ..flows.kernel import KernelConvolution, mmd_squared
from ..grid import Grid
from ..result import Result
from .transport import transport_run

ORDERS = {"muscl": 2, "upwind": 1}


def wall_mass(rho: np.ndarray, grid: Grid) -> float:
    """Mass in the cells that touch a wall (the layer a no-flux wall collects)."""
    inner = np.ones(grid.shape, dtype=bool)
    inner[(0, -1), ...] = False
    if grid.dim == 2:
        inner[:, (0, -1)] = False
    return float(np.sum(rho[~inner]) * grid.cell_volume)


def _segments(phases, save_times):
    """[(flow, t_start, times to stop at in (t_start, t_end])] from [(flow, until)]: the save
    times, each phase's switch-off time added where the run goes on past it."""
    out, t0 = [], 0.0
    for flow, until in phases:
        t1 = min(until, save_times[-1])
        stops = [t for t in save_times if t0 < t <= t1]
        if not stops or stops[-1] < t1:
            stops.append(t1)
        out.append((flow, t0, stops))
        if t1 >= save_times[-1]:
            break
        t0 = t1
    return out


def solve_case_transport(case, *, progress: Optional[Callable] = None) -> Result:
    """Solve a kernel-flow case (``[flow] kind = "mmd"``) on its grid; return a density Result."""
    grid = case.grid
    target, initial = case.discretised()
    rho_d = np.exp(target.log_cells).reshape(grid.shape)
    rho = np.exp(initial.log_cells).reshape(grid.shape)
    phases = NONLOCAL_FLOWS[case.flow].phases_from_spec(case.raw["flow"])
    base = KernelConvolution(grid, phases[0][0].kernel)   # 1/2 MMD^2 is reported for k itself
    times, mass, energy, dts, saved = [], [], [], [], [rho.copy()]
    wall_time = 0.0
    for flow, t0, stops in _segments(phases, case.save_times):
        conv = flow.convolution(grid)

        def observe(t, r, t0=t0):
            if t == 0.0 and times:
                return                                     # the segment's start is the last step's end
            times.append(t0 + t)
            mass.append(float(np.sum(r) * grid.cell_volume))
            energy.append(0.5 * mmd_squared(r, rho_d, base))
            if progress is not None and t > 0.0:
                progress(int(round((t0 + t) / case.dt)), f"t={t0 + t:.4g}")

        out, steps, wt = transport_run(rho, lambda r: flow.potential(r, rho_d, conv), grid,
                                       [t - t0 for t in stops], order=ORDERS[case.scheme], dt_max=case.dt,
                                       observe=observe)
        wall_time += wt
        dts.extend(float(d) for d in steps)
        rho = out[-1]
        saved.extend(r for t, r in zip(stops, out) if t in case.save_times)
    m = np.array(mass)
    meta = {
        "kind": "density", "backend": "fv-transport", "version": __version__, "case": case.raw,
        "source": case.source, "flow": case.flow, "scheme": case.scheme, "dt": case.dt,
        "grid": grid.to_dict(), "steps": len(dts), "step_times": times, "mass": mass, "energy": energy,
        "dt_taken": {"min": min(dts), "median": float(np.median(dts)), "max": max(dts)},
        "noise_until": phases[0][1] if len(phases) > 1 else None,
        "wall_mass": [wall_mass(r, grid) for r in saved], "mass_error": float(np.max(np.abs(m - m[0])) / m[0]),
        "min_rho": float(min(np.min(r) for r in saved)), "wall_time": wall_time, "rejected_steps": 0,
    }
    return Result(t=np.array((0.0,) + tuple(case.save_times)), meta=meta, axes=grid.centres,
                  rho=np.stack(saved), rho_d=rho_d)
