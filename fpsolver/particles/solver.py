"""Case -> particle Result: sampling, the chosen velocity, time stepping, checkpoints."""
from __future__ import annotations

import hashlib
import math
import os
import time
from typing import Callable, Optional

import numpy as np

from .. import __version__
from ..densities import SampleDensity
from ..errors import InputError
from ..grid import Grid
from ..result import Result, json_plain
from .mmd import MMDVelocity
from .interacting import InteractingVelocity, default_bandwidth, default_kde_grid
from .run import CheckpointWriter, ParticleState, integrate, load_checkpoint, record
from .superposition import PDEVelocity, dense_pde

MODES = ("interacting", "superposition")
INTEGRATORS = ("euler", "heun")


DEFAULT_N = 100_000


def solve_particles(case, *, n: Optional[int] = None, seed: int = 0, bandwidth: Optional[float] = None,
                    integrator: str = "heun", mode: str = "interacting", pde: Optional[Result] = None,
                    save_positions: Optional[int] = None, progress: Optional[Callable] = None,
                    checkpoint_path: Optional[str] = None, checkpoint_every: float = 60.0,
                    resume: Optional[str] = None, kde_cells=None, pde_path: str = "<pde>",
                    mmd_velocity: str = "auto") -> Result:
    """Simulate dY/dt = v(t, Y) for N particles from rho_0 and return their positions.

    ``mode="interacting"``: v from a KDE of the particles themselves (MATH.md section 5);
    ``mode="superposition"``: v from the density Result ``pde`` (section 4). Positions are saved
    at t = 0 and at every case save time (the first ``save_positions`` particles); the counts
    of all particles per case cell are kept as ``counts``. ``kde_cells`` sets the auxiliary
    KDE grid (default: :func:`~.interacting.default_kde_grid`, the case grid refined to at
    least 3 cells per bandwidth). A kernel flow (``[flow] kind = "mmd"``) runs in the
    interacting mode with the exact velocity of :mod:`.mmd` (no KDE; ``mmd_velocity`` picks
    direct sums, binning + FFT, or ``auto``). ``n`` defaults to DEFAULT_N, or to the number of
    points when the case starts from ``initial.kind = "samples"`` with ``use = "as-is"``. A case
    with a ``[discriminator]`` table runs the dual flow of MATH.md section 10
    (:mod:`fpsolver.dynamics.particles`: f on the case grid, positions and f at the save times; no
    superposition, checkpoints or ``kde_cells``).
    """
    if n is None:
        as_is = isinstance(case.initial, SampleDensity) and case.initial.use == "as-is"
        n = len(case.initial.points) if as_is else DEFAULT_N
    if getattr(case, "discriminator", None) is not None:
        return _solve_dual(case, n, seed, bandwidth, integrator, mode, pde, save_positions, progress,
                           checkpoint_path, resume, kde_cells, mmd_velocity)
    mmd = case.flow == "mmd"
    if mmd and (mode != "interacting" or bandwidth is not None):
        raise InputError("flow 'mmd': particles run in --mode interacting with the exact kernel "
                         "velocity (no --bandwidth, no --pde)")
    if not mmd and mmd_velocity != "auto":
        raise InputError("--mmd-velocity applies to kernel flows ([flow] kind = \"mmd\") only")
    _check_options(case, n, seed, bandwidth, integrator, mode, pde, save_positions)
    target, initial = case.discretised()
    if not mmd:
        case.local_flow().check_representable(initial.log_cells, target.log_cells, case.grid.cell_volume)
    n_saved = n if save_positions is None else int(save_positions)
    grid = case.grid
    meta = {"kind": "particles", "backend": "particles", "version": __version__, "mode": mode,
            "case": case.raw, "source": case.source, "flow": case.flow, "n": int(n),
            "n_saved": n_saved, "seed": int(seed), "integrator": integrator,
            "grid": grid.to_dict(), "dt_max": case.dt}
    if mmd:
        velocity = MMDVelocity(case, n, seed, mmd_velocity)
        meta.update(bandwidth=None, mmd_velocity=velocity.method, mmd_velocity_asked=mmd_velocity,
                    binning_cells=list(velocity.bin_grid.shape) if velocity.method == "binned" else None)
    elif mode == "interacting":
        rule = "given" if bandwidth is not None else "default rule: min of AMISE and Silverman for rho_0, rho_d"
        bandwidth = float(bandwidth) if bandwidth is not None else default_bandwidth(case, n)
        kde_grid = (default_kde_grid(grid, bandwidth) if kde_cells is None
                    else Grid(grid.lower, grid.upper, tuple(kde_cells)))
        velocity = InteractingVelocity(case, bandwidth, kde_grid)
        meta.update(bandwidth=bandwidth, bandwidth_rule=rule, kde_cells=list(kde_grid.shape))
    else:
        t0 = time.perf_counter()
        dense, dt, scheme, resolved = dense_pde(case, pde, pde_path)
        velocity = PDEVelocity(case, dense, scheme)
        meta.update(bandwidth=None, pde=pde_path, pde_dt=dt, pde_scheme=scheme, pde_resolved=resolved,
                    pde_resolve_time=time.perf_counter() - t0,
                    pde_sha256=hashlib.sha256(np.ascontiguousarray(dense.rho).tobytes()).hexdigest())
    keys = ("mode", "case", "n", "n_saved", "seed", "integrator", "bandwidth", "dt_max",
            "kde_cells", "pde_sha256", "mmd_velocity")  # None where they do not apply
    header = json_plain({k: meta.get(k) for k in keys})  # what a resume must match
    if resume:
        state = load_checkpoint(resume, header, n, grid.dim)
    else:
        rng = np.random.default_rng(seed)
        x = np.ascontiguousarray(case.initial.sample(n, rng, grid), dtype=float)
        state = ParticleState(steps=0, t=0.0, x=x, rng_state=rng.bit_generator.state)
        record(state, grid, n_saved)
    writer = CheckpointWriter(checkpoint_path, checkpoint_every, header) if checkpoint_path else None
    state = integrate(velocity, state, case.save_times, h_max=case.dt, integrator=integrator,
                      grid=grid, n_saved=n_saved, progress=progress, checkpoint=writer)
    meta.update(steps=state.steps, steps_at_save=state.steps_per_save, min_step=state.h_min,
                max_step=state.h_max, wall_time=state.wall_time, particles_inside=state.inside,
                mean=state.mean, std=state.std)
    return Result(t=np.array(state.saved_t), meta=meta, axes=grid.centres,
                  rho_d=np.exp(target.log_cells), positions=np.stack(state.saved_x),
                  extra={"counts": np.stack(state.counts)})


def _solve_dual(case, n, seed, bandwidth, integrator, mode, pde, save_positions, progress,
                checkpoint_path, resume, kde_cells, mmd_velocity) -> Result:
    """A case with a [discriminator] table: the dual flow of MATH.md section 10 with f on the grid."""
    from ..dynamics.particles import check_dual_options, solve_dual_particles
    if mmd_velocity != "auto":
        raise InputError("--mmd-velocity applies to kernel flows ([flow] kind = \"mmd\") only")
    check_dual_options(case, mode=mode, pde=pde, bandwidth=bandwidth, checkpoint_path=checkpoint_path,
                       resume=resume, kde_cells=kde_cells)
    _check_options(case, n, seed, bandwidth, integrator, mode, pde, save_positions)
    return solve_dual_particles(case, n=n, seed=seed, bandwidth=bandwidth, integrator=integrator,
                                save_positions=save_positions, progress=progress)


def _check_options(case, n, seed, bandwidth, integrator, mode, pde, save_positions) -> None:
    """One clear error per unusable option."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"--n: the number of particles must be an integer >= 1 (got {n!r})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"--seed: must be an integer >= 0 (got {seed!r})")
    if mode not in MODES:
        raise InputError(f"--mode: unknown mode {mode!r} (one of {', '.join(MODES)})")
    if integrator not in INTEGRATORS:
        raise InputError(f"--integrator: unknown integrator {integrator!r} (one of {', '.join(INTEGRATORS)})")
    if bandwidth is not None and not (isinstance(bandwidth, (int, float)) and math.isfinite(bandwidth)
                                      and bandwidth > 0):
        raise InputError(f"--bandwidth: must be a positive number (got {bandwidth!r})")
    if mode == "superposition":
        if pde is None:
            raise InputError("--mode superposition needs --pde RESULT.npz (a density result of this case)")
        if bandwidth is not None:
            raise InputError("--bandwidth applies to --mode interacting only (superposition uses no KDE)")
    elif pde is not None:
        raise InputError("--pde applies to --mode superposition only")
    if save_positions is not None and not (isinstance(save_positions, (int, np.integer))
                                           and 1 <= save_positions <= n):
        raise InputError(f"--save-positions: must be between 1 and N = {n} (got {save_positions!r})")
    need = 8.0 * n * case.grid.dim * (5 + len(case.save_times))
    avail = _physical_memory()
    if need > 0.8 * avail:
        raise InputError(f"--n {n:,}: about {need / 2**30:.1f} GiB of particle arrays, more than this "
                         f"machine's {avail / 2**30:.1f} GiB allows; use fewer particles")


def _physical_memory() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8.0 * 2**30
