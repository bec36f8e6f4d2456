"""Superposition particles: move particles with the velocity field of a PDE solution.

MATH.md section 4: given the grid solution rho^n at t_n = n dt, the finite-volume flux across
the face between cells i and j is J_ij = -rho_d,ij (beta(u_j) - beta(u_i)) / |x_j - x_i|
(zero on the walls). On (t_n, t_n+1] the particles move with

    v(t, x) = J_hat / rho_f(t)  on the faces,   rho_f(t) linear in t between rho_f^n and rho_f^n+1,

rho_f the mean of the two neighbouring cells, J_hat = J(rho^n+1) for backward Euler (the flux
the scheme itself used for that step, so the face-wise continuity equation holds exactly
between the saved states) and (J(rho^n) + J(rho^n+1)) / 2 for BDF2 (second order in time).
In space v is interpolated linearly from the faces (staggered: each component along its own
axis, walls included, where it is zero, so particles never cross a wall).

The PDE must therefore be known at every one of its time steps. A ``--pde`` result saved at
every step is used as it is; otherwise the case is solved again with the finite-volume solver
at the result's dt and scheme, saving every step, and the re-solve is checked to reproduce the
result's saved snapshots (to 1e-8 relative) before its velocity is used.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..result import Result
from . import kernels
from .interacting import C_MOVE

_SAME = 1e-9      # relative tolerance for "same grid / same target / same initial density"
_RESOLVE = 1e-8   # relative tolerance for a re-solve reproducing the given snapshots


def _face_shapes(grid) -> list:
    """Shapes of the interior-face arrays per axis: n - 1 along the axis."""
    return [tuple(n - (k == a) for k, n in enumerate(grid.shape)) for a in range(grid.dim)]


class PDEVelocity:
    """v(t, x) from a density Result saved at every step of its time grid."""

    def __init__(self, case, dense: Result, scheme: str):
        target, _ = case.discretised()
        self.grid, self.flow = case.grid, case.local_flow()
        self.log_rho_d = target.log_cells.reshape(case.grid.shape)
        self.log_rho_d_faces = [f.reshape(s) for f, s in zip(target.log_faces, _face_shapes(case.grid))]
        self.times, self.rho, self.scheme = np.asarray(dense.t), dense.rho, scheme
        self.breakpoints = tuple(self.times[1:])
        self._interval, self._cache = -1, None

    def flux(self, rho: np.ndarray) -> list:
        """J per axis on the interior faces: -rho_d,f (beta(u_j) - beta(u_i)) / h, in log space
        (u = rho / rho_d may not be representable). A Result stores rho, not log rho, so where rho
        underflowed to 0 its log is floored at log(1e-300): the flux there is that of a cell holding
        1e-300, and the face velocity is set to 0 where the face density is below 1e-290 (no mass
        to move)."""
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # cleared below
            sign, lb = self.flow.beta_log(np.log(np.maximum(rho, 1e-300)) - self.log_rho_d)
            out = []
            for a, lf in enumerate(self.log_rho_d_faces):
                n = rho.shape[a]
                hi, lo = [np.take(x, np.arange(1, n), axis=a) for x in (sign, lb)], \
                    [np.take(x, np.arange(n - 1), axis=a) for x in (sign, lb)]
                out.append(-(hi[0] * np.exp(lf + hi[1]) - lo[0] * np.exp(lf + lo[1])) / self.grid.spacing[a])
            return out

    def _face_rho(self, rho):
        return [0.5 * (np.take(rho, np.arange(n - 1), axis=a) + np.take(rho, np.arange(1, n), axis=a))
                for a, n in enumerate(self.grid.shape)]

    def _prepare(self, n: int):
        if n != self._interval:
            j1 = self.flux(self.rho[n + 1])
            if self.scheme == "bdf2":
                j1 = [0.5 * (a + b) for a, b in zip(self.flux(self.rho[n]), j1)]
            self._cache = (j1, self._face_rho(self.rho[n]), self._face_rho(self.rho[n + 1]))
            self._interval = n
        return self._cache

    def face_velocity(self, t: float, t_start: float) -> list:
        """Face values (walls included, zero there) of v at time t of the step starting at t_start."""
        n = int(np.clip(np.searchsorted(self.times, t_start, side="right") - 1, 0, len(self.times) - 2))
        theta = (t - self.times[n]) / (self.times[n + 1] - self.times[n])
        flux, rf0, rf1 = self._prepare(n)
        out = []
        for a in range(self.grid.dim):
            rf = (1 - theta) * rf0[a] + theta * rf1[a]
            with np.errstate(over="ignore", invalid="ignore"):
                v = np.where(rf > 1e-290, flux[a] / np.maximum(rf, 1e-290), 0.0)
            v = np.where(np.isfinite(v), v, 0.0)  # no mass there: nothing to move
            pad = [(0, 0)] * self.grid.dim
            pad[a] = (1, 1)  # no flux through the walls
            out.append(np.ascontiguousarray(np.pad(v, pad)))
        return out

    def __call__(self, x: np.ndarray, out: np.ndarray, t: float, t_start: float) -> float:
        faces = self.face_velocity(t, t_start)
        g = self.grid
        if g.dim == 1:
            vmax = kernels.interp_faces_1d(x, faces[0], g.lower[0], g.spacing[0], out)
        else:
            vmax = kernels.interp_faces_2d(x, faces[0], faces[1], g.lower[0], g.spacing[0],
                                           g.lower[1], g.spacing[1], out)
        return float(C_MOVE * min(g.spacing) / vmax) if vmax > 0 else np.inf


# ------------------------------------------------------------------ the PDE result

def check_pde_matches(case, pde: Result, path: str) -> None:
    """One clear error if the density result was not computed for this case's problem."""
    grid = case.grid
    if pde.dim != grid.dim:
        raise InputError(f"--pde {path}: a {pde.dim}D result for a {grid.dim}D case")
    if tuple(len(a) for a in pde.axes) != grid.shape or not all(
            np.allclose(a, c, rtol=0, atol=_SAME * max(grid.spacing)) for a, c in zip(pde.axes, grid.centres)):
        raise InputError(f"--pde {path}: its grid ({'x'.join(str(len(a)) for a in pde.axes)} cells) "
                         f"is not the case's grid ({'x'.join(map(str, grid.shape))} cells on the same box)")
    if pde.meta.get("flow") != case.flow:
        raise InputError(f"--pde {path}: solved with flow {pde.meta.get('flow')!r}, the case has {case.flow!r}")
    target, initial = case.discretised()
    if pde.rho_d is None or not _close(pde.rho_d, np.exp(target.log_cells)):
        raise InputError(f"--pde {path}: its target density rho_d differs from the case's")
    if not _close(pde.rho[0], np.exp(initial.log_cells)):
        raise InputError(f"--pde {path}: its initial density differs from the case's")
    if pde.t[-1] < case.final_time * (1 - 1e-12):
        raise InputError(f"--pde {path}: ends at t = {pde.t[-1]:g}, before the case's last save "
                         f"time {case.final_time:g}")


def _close(a, b, rtol=_SAME) -> bool:
    return a.shape == b.shape and float(np.max(np.abs(a - b))) <= rtol * float(np.max(np.abs(b)))


def dense_pde(case, pde: Result, path: str, progress=None):
    """(result saved at every step up to the case's final time, dt, scheme, re-solved?)."""
    check_pde_matches(case, pde, path)
    dt, scheme = pde.meta.get("dt"), pde.meta.get("scheme", "backward-euler")
    if not isinstance(dt, (int, float)) or not dt > 0:
        raise InputError(f"--pde {path}: its meta has no time step 'dt'")
    if scheme not in ("backward-euler", "bdf2"):
        raise InputError(f"--pde {path}: unknown scheme {scheme!r} in its meta")
    for ts in case.save_times:
        if abs(ts / dt - round(ts / dt)) > 1e-9 * max(1.0, ts / dt):
            raise InputError(f"--pde {path}: the case's save time {ts:g} is not a multiple of the "
                             f"result's dt = {dt:g}")
    k_final = int(round(case.final_time / dt))
    grid_t = np.arange(k_final + 1) * dt
    if pde.t.size > k_final and np.allclose(pde.t[:k_final + 1], grid_t, rtol=0, atol=1e-9 * dt):
        return pde, float(dt), scheme, False
    from ..fv import solve_case
    dense_case = case.with_overrides(dt=dt, scheme=scheme, save_times=list(grid_t[1:]))
    dense = solve_case(dense_case, progress=progress)
    for t, rho in zip(pde.t, pde.rho):
        k = int(round(t / dt))
        if k > k_final:
            break
        if abs(t - k * dt) > 1e-9 * dt or not _close(dense.rho[k], rho, _RESOLVE):
            raise InputError(f"--pde {path}: the finite-volume solver at dt = {dt:g} ({scheme}) does "
                             f"not reproduce its snapshot at t = {t:g}; save the PDE at every step")
    return dense, float(dt), scheme, True
