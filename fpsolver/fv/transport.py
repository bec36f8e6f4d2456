"""Explicit upwind finite volumes for Wasserstein gradient flows with any potential (MATH.md section 9).

The equation, on a box with no-flux walls (1D or 2D, uniform cell-centred grid),

    d rho/dt = div(rho grad phi[rho]),      velocity v = -grad phi,  mass flux J = rho v,

where ``potential(rho) -> phi`` returns phi[rho] on the cell centres (any functional of rho: the
MMD witness k * (rho - rho_d) of section 9, or a fixed field). The scheme (Carrillo, Chertock &
Huang): on the interior face f between cells i and j = i + e_a (axis a, spacing dx_a)

    v_f = -(phi_j - phi_i) / dx_a,        F_f = v_f^+ rho_f^L - v_f^- rho_f^R,

with v^+ = max(v, 0), v^- = max(-v, 0); walls carry F = 0. Order 1 takes rho^L = rho_i,
rho^R = rho_j. Order 2 (MUSCL) takes the face values of the minmod-limited linear reconstruction,
rho^L = rho_i + s_i/2, rho^R = rho_j - s_j/2, s_i = minmod(rho_{i+1} - rho_i, rho_i - rho_{i-1})
along axis a (s = 0 in the cells next to a wall). Since |s_i| <= both one-sided differences, every
face value lies between rho_i and the midpoint of rho_i and its neighbour: it is >= 0 when rho is.
The semi-discrete equation is  d rho_i/dt = L(rho)_i = -sum_a (F_{i+e_a/2} - F_{i-e_a/2}) / dx_a,
and every interior flux leaves one cell and enters the other: the mass sum_i |K| rho_i is exact
up to round-off for any dt. Time: forward Euler, or SSP-RK2 (Shu-Osher)
rho^(1) = rho + dt L(rho), rho^{n+1} = (rho + rho^(1) + dt L(rho^(1))) / 2, with phi
re-evaluated at rho^(1): a convex combination of Euler steps, so it is positive whenever each
Euler stage is.

CFL condition (positivity). With the outflow speeds of cell i through its upper and lower face on
axis a, o_a^+ = v^+_{i+e_a/2}, o_a^- = v^-_{i-e_a/2} (0 at walls), one Euler step keeps rho >= 0 if

    order 1:  dt * max_i sum_a (o_a^+ + o_a^-) / dx_a       <= 1,
    order 2:  dt * max_i sum_a max(o_a^+, o_a^-) / dx_a      <= 1/2.

Proof. Order 1: rho_i^new = rho_i (1 - dt sum_a (o_a^+ + o_a^-)/dx_a) + (inflow terms >= 0); the
condition is also necessary (take rho the indicator of the cell attaining the max). Order 2: write
rho_i = sum_a theta_a (rho_i^{a+} + rho_i^{a-})/2 with theta_a >= 0, sum theta_a = 1 (the two face
values on axis a average to rho_i); then rho_i^new >= sum_a [rho^{a+}(theta_a/2 - dt o_a^+/dx_a)
+ rho^{a-}(theta_a/2 - dt o_a^-/dx_a)], and theta_a proportional to max(o_a^+, o_a^-)/dx_a makes
every bracket >= 0 exactly under the stated condition. Both are implied by the dimension-summed
dt sum_a max|v_a|/dx_a <= C with C = 1/2; where no cell has outflow through both of its faces on
one axis (converging flows such as v = -x) the order-1 rate is sum_a max|v_a|/dx_a attained at a
corner, i.e. the C = 1 of MATH.md section 9. Where the velocity diverges from a cell (a maximum of
phi) the order-1 rate is up to twice that, and dt max|v|/dx = 1 gives negative densities; hence
the per-cell form above. SSP-RK2 has SSP coefficient 1: the same limit applies to each stage
(checked for the stage-2 velocity too, whose phi is that of rho^(1)).
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numba
import numpy as np

from ..grid import Grid

CFL_LIMIT = {1: 1.0, 2: 0.5}      # C of the CFL condition (module docstring), per spatial order
DEFAULT_CFL_FRACTION = 0.9        # default C = 0.9 * limit: strictly positive update coefficients
SCHEMES = ("euler", "ssp-rk2")
Potential = Callable[[np.ndarray], np.ndarray]


class CFLViolation(ValueError):
    """dt exceeds the positivity limit CFL_LIMIT[order] / rate at some stage of a step."""

    def __init__(self, message: str, rate: float):
        super().__init__(message)
        self.rate = rate


# ------------------------------------------------------------------ input checks

def _check_order(order: int) -> None:
    if order not in CFL_LIMIT:
        raise ValueError(f"order must be 1 (upwind) or 2 (MUSCL), got {order!r}")


def _check_cells(array, grid: Grid, name: str) -> np.ndarray:
    a = np.asarray(array, dtype=float)
    if a.shape != grid.shape:
        raise ValueError(f"{name} has shape {a.shape}, the grid's cell arrays have shape {grid.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has non-finite values")
    return np.ascontiguousarray(a)


def _check_velocities(velocities, grid: Grid) -> list[np.ndarray]:
    if len(velocities) != grid.dim:
        raise ValueError(f"need one face-velocity array per axis ({grid.dim}), got {len(velocities)}")
    out = []
    for a, v in enumerate(velocities):
        v = np.asarray(v, dtype=float)
        if v.shape != grid.face_shape(a):
            raise ValueError(f"face velocities on axis {a} have shape {v.shape}, "
                             f"the grid's interior faces have shape {grid.face_shape(a)}")
        out.append(np.ascontiguousarray(v))
    return out


def evaluate_potential(potential: Potential, rho: np.ndarray, grid: Grid) -> np.ndarray:
    """phi = potential(rho) on the cell centres, checked for shape and finiteness."""
    return _check_cells(potential(rho), grid, "potential(rho)")


# ------------------------------------------------------------------ velocities and CFL

def face_velocities(phi: np.ndarray, grid: Grid) -> list[np.ndarray]:
    """v_f = -(phi_j - phi_i) / dx_a on the interior faces of each axis a (shape grid.face_shape(a))."""
    phi = _check_cells(phi, grid, "phi")
    return [np.ascontiguousarray(-np.diff(phi, axis=a) / grid.spacing[a]) for a in range(grid.dim)]


def cfl_rate(velocities: Sequence[np.ndarray], grid: Grid, order: int) -> float:
    """max_i of sum_a (o_a^+ + o_a^-)/dx_a (order 1) or sum_a max(o_a^+, o_a^-)/dx_a (order 2), 1/time:
    a step is positive iff (order 1; if, order 2) dt * rate <= CFL_LIMIT[order] (module docstring)."""
    _check_order(order)
    rate = np.zeros(grid.shape)
    for a, v in enumerate(_check_velocities(velocities, grid)):
        pad = [(0, 0)] * grid.dim
        pad[a] = (0, 1)
        out_hi = np.pad(np.maximum(v, 0.0), pad)      # through the upper face (none at the wall)
        pad[a] = (1, 0)
        out_lo = np.pad(np.maximum(-v, 0.0), pad)     # through the lower face
        both = out_hi + out_lo if order == 1 else np.maximum(out_hi, out_lo)
        rate += both / grid.spacing[a]
    return float(rate.max())


def cfl_step(velocities: Sequence[np.ndarray], grid: Grid, order: int,
             cfl: Optional[float] = None) -> float:
    """Largest dt with dt * cfl_rate <= cfl (default 0.9 * CFL_LIMIT[order]); inf if nothing moves."""
    _check_order(order)
    limit = CFL_LIMIT[order]
    cfl = DEFAULT_CFL_FRACTION * limit if cfl is None else float(cfl)
    if not 0.0 < cfl <= limit:
        raise ValueError(f"cfl must lie in (0, {limit}] for order {order} (positivity limit), got {cfl}")
    rate = cfl_rate(velocities, grid, order)
    return cfl / rate if rate > 0.0 else np.inf


# ------------------------------------------------------------------ flux divergence: numpy reference

def _minmod_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where((a > 0) & (b > 0), np.minimum(a, b),
                    np.where((a < 0) & (b < 0), np.maximum(a, b), 0.0))


def _axis_fluxes_numpy(rho: np.ndarray, v: np.ndarray, axis: int, order: int) -> np.ndarray:
    """F on all faces normal to ``axis`` (n_axis + 1 of them, walls 0)."""
    r, vv = np.moveaxis(rho, axis, 0), np.moveaxis(v, axis, 0)
    left, right = r[:-1], r[1:]
    if order == 2:
        s = np.zeros_like(r)
        s[1:-1] = _minmod_numpy(r[2:] - r[1:-1], r[1:-1] - r[:-2])
        left, right = left + 0.5 * s[:-1], right - 0.5 * s[1:]
    f = np.maximum(vv, 0.0) * left - np.maximum(-vv, 0.0) * right
    wall = np.zeros((1,) + f.shape[1:])
    return np.moveaxis(np.concatenate([wall, f, wall]), 0, axis)


def transport_rhs_numpy(rho: np.ndarray, phi: np.ndarray, grid: Grid, order: int = 2) -> np.ndarray:
    """Reference L(rho) = -sum_a (F_{i+e_a/2} - F_{i-e_a/2}) / dx_a in plain numpy (module docstring)."""
    _check_order(order)
    rho = _check_cells(rho, grid, "rho")
    out = np.zeros(grid.shape)
    for a, v in enumerate(face_velocities(phi, grid)):
        out = out - np.diff(_axis_fluxes_numpy(rho, v, a, order), axis=a) / grid.spacing[a]
    return out


# ------------------------------------------------------------------ flux divergence: numba kernels

@numba.njit(cache=True)
def _minmod(a, b):
    if a > 0.0 and b > 0.0:
        return min(a, b)
    if a < 0.0 and b < 0.0:
        return max(a, b)
    return 0.0


@numba.njit(cache=True)
def _slope(r, k):
    if k == 0 or k == r.shape[0] - 1:
        return 0.0
    return _minmod(r[k + 1] - r[k], r[k] - r[k - 1])


@numba.njit(cache=True)
def _line_fluxes(r, v, order, flux):
    """Fluxes on the n + 1 faces of one grid line (cells r, interior-face velocities v)."""
    n = r.shape[0]
    flux[0] = 0.0
    flux[n] = 0.0
    for k in range(n - 1):
        left, right = r[k], r[k + 1]
        if order == 2:
            left = left + 0.5 * _slope(r, k)
            right = right - 0.5 * _slope(r, k + 1)
        flux[k + 1] = max(v[k], 0.0) * left - max(-v[k], 0.0) * right


@numba.njit(cache=True)
def _rhs_1d_kernel(rho, v, dx, order, out):
    n = rho.shape[0]
    flux = np.empty(n + 1)
    _line_fluxes(rho, v, order, flux)
    for i in range(n):
        out[i] = 0.0 - (flux[i + 1] - flux[i]) / dx


@numba.njit(cache=True)
def _rhs_2d_kernel(rho, vx, vy, dx, dy, order, out):
    nx, ny = rho.shape
    fx = np.empty((nx + 1, ny))
    fy = np.empty((nx, ny + 1))
    for j in range(ny):
        _line_fluxes(rho[:, j], vx[:, j], order, fx[:, j])
    for i in range(nx):
        _line_fluxes(rho[i], vy[i], order, fy[i])
    for i in range(nx):
        for j in range(ny):
            out[i, j] = (0.0 - (fx[i + 1, j] - fx[i, j]) / dx) - (fy[i, j + 1] - fy[i, j]) / dy


def _rhs(rho: np.ndarray, velocities: list[np.ndarray], grid: Grid, order: int) -> np.ndarray:
    out = np.empty(grid.shape)
    if grid.dim == 1:
        _rhs_1d_kernel(rho, velocities[0], grid.spacing[0], order, out)
    else:
        _rhs_2d_kernel(rho, velocities[0], velocities[1], grid.spacing[0], grid.spacing[1], order, out)
    return out


def flux_divergence(rho: np.ndarray, velocities: Sequence[np.ndarray], grid: Grid, order: int = 1) -> np.ndarray:
    """L(rho) for face velocities given directly (one array per axis, shape grid.face_shape(a)):
    the same fluxes and kernels as :func:`transport_rhs`, for velocities that are not -grad phi
    (e.g. h'(f) grad f of the dual flows, MATH.md section 10)."""
    _check_order(order)
    return _rhs(_check_cells(rho, grid, "rho"), _check_velocities(velocities, grid), grid, order)


def transport_rhs(rho: np.ndarray, phi: np.ndarray, grid: Grid, order: int = 2) -> np.ndarray:
    """L(rho) = -sum_a (F_{i+e_a/2} - F_{i-e_a/2}) / dx_a (density per time), by the numba kernels."""
    _check_order(order)
    return _rhs(_check_cells(rho, grid, "rho"), face_velocities(phi, grid), grid, order)


# ------------------------------------------------------------------ time steps

def _euler_stage(rho, phi, grid: Grid, dt: float, order: int, stage: str) -> np.ndarray:
    """rho + dt L(rho) for the velocities of phi; CFLViolation if dt breaks the positivity limit."""
    velocities = face_velocities(phi, grid)
    rate = cfl_rate(velocities, grid, order)
    if dt * rate > CFL_LIMIT[order] * (1.0 + 1e-12):
        raise CFLViolation(f"dt = {dt:.6g} breaks the positivity limit dt <= {CFL_LIMIT[order]}/rate = "
                           f"{CFL_LIMIT[order] / rate:.6g} at the {stage} (order {order}); "
                           f"take dt from cfl_step", rate)
    return rho + dt * _rhs(rho, velocities, grid, order)


def transport_step(rho: np.ndarray, potential: Potential, grid: Grid, dt: float, order: int = 2,
                   scheme: str = "ssp-rk2", *, phi: Optional[np.ndarray] = None) -> np.ndarray:
    """One explicit step of d rho/dt = div(rho grad phi[rho]): forward Euler or SSP-RK2 (module
    docstring). ``phi`` may pass potential(rho) if already computed. Raises CFLViolation (a
    ValueError) if dt breaks the positivity limit at either stage, so a returned rho is >= 0 (up to
    round-off of order eps * rho when dt sits exactly at the limit)."""
    _check_order(order)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive and finite, got {dt}")
    rho = _check_cells(rho, grid, "rho")
    phi = evaluate_potential(potential, rho, grid) if phi is None else _check_cells(phi, grid, "phi")
    stage1 = _euler_stage(rho, phi, grid, dt, order, "first stage")
    if scheme == "euler":
        return stage1
    phi1 = evaluate_potential(potential, stage1, grid)
    return 0.5 * rho + 0.5 * _euler_stage(stage1, phi1, grid, dt, order, "second stage")


def _check_times(save_times) -> np.ndarray:
    times = np.atleast_1d(np.asarray(save_times, dtype=float))
    if times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times)):
        raise ValueError("save_times must be a non-empty 1-D sequence of finite times")
    if times[0] < 0 or np.any(np.diff(times) <= 0):
        raise ValueError("save_times must be >= 0 and strictly increasing")
    return times


def _advance(rho, potential, grid, remaining, order, scheme, cfl, dt_max):
    """One step of at most ``remaining``; a stage-2 CFL violation shrinks dt to cfl / rate_2."""
    phi = evaluate_potential(potential, rho, grid)
    dt = min(cfl_step(face_velocities(phi, grid), grid, order, cfl), dt_max, remaining)
    if remaining <= dt * (1.0 + 1e-9):    # no sliver step from rounded sums of dt before a save time
        dt = remaining
    for _ in range(40):
        try:
            return transport_step(rho, potential, grid, dt, order, scheme, phi=phi), dt
        except CFLViolation as err:
            dt = (DEFAULT_CFL_FRACTION * CFL_LIMIT[order] if cfl is None else cfl) / err.rate
    raise RuntimeError("transport_run: the stage-2 CFL limit kept shrinking dt (40 retries)")


def transport_run(rho0: np.ndarray, potential: Potential, grid: Grid, save_times: Sequence[float], *,
                  order: int = 2, scheme: Optional[str] = None, cfl: Optional[float] = None,
                  dt_max: Optional[float] = None, progress: Optional[Callable] = None,
                  observe: Optional[Callable] = None) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Integrate d rho/dt = div(rho grad phi[rho]) from t = 0 and return (rho at each save time,
    the dts taken, wall time in s).

    Each dt is the CFL step of the current velocities (``cfl_step``; default C = 0.9 * limit),
    capped by ``dt_max`` and shortened to land exactly on the next save time. ``scheme`` defaults
    to forward Euler for order 1 and SSP-RK2 for order 2. ``progress(saved_so_far, info)`` is
    called after every step, ``observe(t, rho)`` at t = 0 and after every step (energies, masses).
    """
    _check_order(order)
    scheme = scheme or ("euler" if order == 1 else "ssp-rk2")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if cfl is not None and not 0.0 < cfl <= CFL_LIMIT[order]:
        raise ValueError(f"cfl must lie in (0, {CFL_LIMIT[order]}] for order {order}, got {cfl}")
    if dt_max is not None and not (np.isfinite(dt_max) and dt_max > 0):
        raise ValueError(f"dt_max must be positive and finite, got {dt_max}")
    rho = _check_cells(rho0, grid, "rho0").copy()
    if np.any(rho < 0):
        raise ValueError("rho0 has negative values: the scheme transports a non-negative density")
    times = _check_times(save_times)
    start, t, saved, dts = time.perf_counter(), 0.0, [], []
    if observe is not None:
        observe(0.0, rho)
    for t_save in times:
        while t < t_save:
            rho, dt = _advance(rho, potential, grid, t_save - t, order, scheme, cfl,
                               np.inf if dt_max is None else dt_max)
            if dt != t_save - t and t + dt == t:
                raise RuntimeError(f"transport_run: dt = {dt:.3g} no longer advances t = {t:.6g}")
            t = t_save if dt == t_save - t else t + dt
            dts.append(dt)
            if observe is not None:
                observe(t, rho)
            if progress is not None:
                progress(len(saved), f"t={t:.4g} dt={dt:.3g}")
        saved.append(rho.copy())
    return saved, np.asarray(dts), time.perf_counter() - start
