"""Time stepping for particles: explicit Euler or Heun, adaptive steps landing on save times.

Each step asks the velocity for v(x) and its step-size limit h_lim at the current state, takes
h = (t_next - t) / k with k = ceil((t_next - t) / min(h_max, h_lim)) (equal steps up to the
next stop, so the last one lands exactly on it), and moves

    Euler:  x <- R(x + h v(x)),
    Heun:   x* = R(x + h v(x)),  x <- R(x + h (v(x) + v(x*)) / 2),

R the reflection at the walls. Stops are the save times plus the velocity's own breakpoints
(the saved times of a PDE solution, where its velocity is not smooth in time). The step
depends only on (t, x), so a run continued from a checkpoint repeats the same steps exactly.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .. import __version__
from ..errors import InputError, SolverError
from ..result import atomic_savez
from . import kernels

MIN_STEP_FRACTION = 1e-10   # a step below this fraction of the final time means the run is stuck


@dataclass
class ParticleState:
    """Everything needed to continue a run bit for bit (what a checkpoint holds)."""

    steps: int
    t: float
    x: np.ndarray                       # (N, d) all particles
    rng_state: dict                     # bit_generator.state after sampling, JSON-able
    saved_t: list = field(default_factory=list)
    saved_x: list = field(default_factory=list)    # (M, d) each: the first M particles
    counts: list = field(default_factory=list)     # histogram of all N on the case grid
    inside: list = field(default_factory=list)     # particles inside the closed box
    mean: list = field(default_factory=list)       # of all N, per axis
    std: list = field(default_factory=list)
    steps_per_save: list = field(default_factory=list)
    h_min: float = math.inf
    h_max: float = 0.0
    wall_time: float = 0.0


def record(state: ParticleState, grid, n_saved: int) -> None:
    """Save the positions (first ``n_saved``) at state.t, and statistics of all particles."""
    x = state.x
    state.saved_t.append(state.t)
    state.saved_x.append(x[:n_saved].copy())
    state.counts.append(cell_counts(x, grid))
    state.inside.append(int(np.sum(np.all((x >= grid.lower) & (x <= grid.upper), axis=1))))
    state.mean.append([float(v) for v in x.mean(axis=0)])
    state.std.append([float(v) for v in x.std(axis=0)])
    state.steps_per_save.append(state.steps)


def cell_counts(x: np.ndarray, grid) -> np.ndarray:
    """Number of particles in each cell of ``grid`` (particles on a wall count in the edge cell)."""
    idx = [np.clip(np.floor((x[:, a] - grid.lower[a]) / grid.spacing[a]).astype(np.int64),
                   0, grid.shape[a] - 1) for a in range(grid.dim)]
    flat = np.ravel_multi_index(idx, grid.shape)
    return np.bincount(flat, minlength=grid.size).reshape(grid.shape)


def integrate(velocity, state: ParticleState, save_times, *, h_max: float, integrator: str,
              grid, n_saved: int, progress: Optional[Callable] = None,
              checkpoint: Optional[Callable[[ParticleState], None]] = None) -> ParticleState:
    """Advance ``state`` through every save time; ``velocity(x, out, t, t_start) -> h_lim``."""
    lower, upper = np.array(grid.lower), np.array(grid.upper)
    x = state.x
    v1, v2, x1 = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    t_final = float(save_times[-1])
    stops = sorted(set(float(s) for s in save_times) | set(float(b) for b in velocity.breakpoints
                                                             if 0 < b < t_final))
    saves = set(float(s) for s in save_times)
    t_start = time.perf_counter() - state.wall_time
    for stop in stops:
        while state.t < stop:
            t = state.t
            h_lim = velocity(x, v1, t, t)
            h = min(h_max, h_lim)
            if not h > MIN_STEP_FRACTION * t_final:
                raise SolverError(f"particle step size collapsed to {h:.3g} at t = {t:.6g} "
                                  "(velocity too large or not finite)")
            k = math.ceil((stop - t) / h * (1 - 1e-12))
            h = (stop - t) / k
            kernels.move_reflect(x, v1, h, lower, upper, x1)
            if integrator == "heun":
                velocity(x1, v2, t + h, t)
                kernels.heun_move_reflect(x, v1, v2, h, lower, upper, x1)
            x, x1 = x1, x  # the new positions become the state (no copy)
            state.x = x
            state.t = stop if k == 1 else t + h
            state.steps += 1
            state.h_min, state.h_max = min(state.h_min, h), max(state.h_max, h)
            if state.t == stop and stop in saves:
                record(state, grid, n_saved)
            state.wall_time = time.perf_counter() - t_start
            if checkpoint is not None:
                checkpoint(state)
            if progress is not None:
                progress(int(1000 * state.t / t_final), f"t={state.t:.4g} steps={state.steps}")
    return state


# ------------------------------------------------------------------ checkpoints

class CheckpointWriter:
    """Called after every step; writes the state when ``every`` seconds have passed."""

    def __init__(self, path: str, every: float, header: dict):
        self.path, self.every, self.header = path, float(every), header
        self.last = time.perf_counter()

    def __call__(self, state: ParticleState) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every:
            save_checkpoint(self.path, state, self.header)
            self.last = now


def save_checkpoint(path: str, state: ParticleState, header: dict) -> None:
    """Write the state atomically: arrays plus a JSON header (no pickles)."""
    head = dict(header, kind="particles-checkpoint", version=__version__, steps=state.steps,
                t=state.t, rng_state=state.rng_state, saved_t=state.saved_t, inside=state.inside,
                mean=state.mean, std=state.std, steps_per_save=state.steps_per_save,
                h_min=state.h_min, h_max=state.h_max,
                wall_time=state.wall_time)
    atomic_savez(path, meta=np.array(json.dumps(head)), x=state.x,
                 saved_x=np.stack(state.saved_x), counts=np.stack(state.counts))


def load_checkpoint(path: str, header: dict, n: int, dim: int) -> ParticleState:
    """Read a checkpoint written by :func:`save_checkpoint` for the same run settings."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as z:
            head = json.loads(str(z["meta"]))
            x, saved_x, counts = z["x"], z["saved_x"], z["counts"]
    except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(head, dict) or head.get("kind") != "particles-checkpoint":
        raise InputError(f"{path}: not a particle checkpoint")
    for key, val in header.items():
        if head.get(key) != val:
            raise InputError(f"{path}: checkpoint was written for a different run ({key} differs)")
    if x.shape != (n, dim) or not np.all(np.isfinite(x)):
        raise InputError(f"{path}: checkpoint positions do not match {n} particles in {dim}D")
    return ParticleState(steps=int(head["steps"]), t=float(head["t"]), x=np.ascontiguousarray(x),
                         rng_state=head["rng_state"], saved_t=list(head["saved_t"]),
                         saved_x=list(saved_x), counts=list(counts), inside=list(head["inside"]),
                         mean=list(head["mean"]), std=list(head["std"]),
                         steps_per_save=list(head["steps_per_save"]), h_min=float(head["h_min"]),
                         h_max=float(head["h_max"]), wall_time=float(head["wall_time"]))
