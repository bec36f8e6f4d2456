"""The same PDE written with FiPy terms: an independent second grid solver.

FiPy (NIST's finite-volume package) solves, for the unknown rho itself (not log u), the
convection-diffusion form of MATH.md section 2,

    d_t rho = div( beta'(u) grad rho ) - div( rho beta'(u) grad log rho_d ),   u = rho / rho_d,

as ``TransientTerm(var=rho) == DiffusionTerm(D, var=rho) - ExponentialConvectionTerm(C, var=rho)``
on a ``Grid1D`` / ``Grid2D`` with FiPy's default no-flux walls (C is zero on exterior faces).
The coefficients are lagged: each Picard sweep evaluates D and C at the current iterate and
solves the resulting linear system; sweeps repeat until the residual of the iterate is small.

Choices, and why:

* Convection scheme: exponential (Scharfetter-Gummel). With C_f = D_f g_f and g_f the face
  normal gradient of log rho_d, the face Peclet number is P_f = g_f h = l_j - l_i
  (l = log rho_d in the cells), whatever beta' is, and the exponential flux is exactly

      J_ij = -(D_f / h) H_ij (u_j - u_i),   H_ij = rho_d,i rho_d,j (l_j - l_i) / (rho_d,j - rho_d,i),

  H_ij = h / int_i^j dx / rho_d for log-linear rho_d (a harmonic mean). With
  D_f = beta'(u_f) rho_d,f / H_ij this is our two-point flux
  J_ij = -rho_d,f (beta(u_j) - beta(u_i)) / h with beta(u_j) - beta(u_i) replaced by
  beta'(u_f)(u_j - u_i), u_f = (u_i + u_j)/2 (FiPy's arithmetic face value; midpoint rule,
  error O(|u_j - u_i|^3)): consistent with ours to O(h^2), and identical for kl (beta' = 1).
  The lagged matrix is an M-matrix (positivity preserving) and rho = rho_d is an exact
  discrete steady state. Central differencing is second order too but loses the M-matrix
  property once |P_f| > 2; upwind and power-law add numerical diffusion. Because P_f does not
  depend on the iterate, the weights FiPy caches at the first assembly stay correct.
* g_f is the difference of our discretised log cell values divided by h (FiPy's ``faceGrad``
  of the cell variable log rho_d), not the analytic gradient at the face: only then does the
  exponential scheme collapse to a two-point flux in u, and rho_d (cells) is an exact steady
  state, as it is for our scheme.
* rho_d at faces: rho_d,f are the face values of :meth:`fpsolver.case.Case.discretised`
  (``target.log_faces``), the ones our solver uses: both discretise the same rho_d.
* Linear solver: FiPy's scipy ``LinearLUSolver`` (sparse LU with iterative refinement), with
  its tolerance set explicitly (``LINEAR_TOL``, 'RHS' criterion): FiPy 4's default (1e-5)
  stalls the sweeps near a 1e-4 residual. A direct solve also keeps the M-matrix positivity:
  no negative iterate appears (an inexact Krylov solve can give one in the first sweeps).
* Residual: the mass residual of the lagged system at the iterate entering a sweep,
  sum_i |R_i|,  R_i = |K_i|(rho_i - b_i) - h sum_j |sigma_ij| (-J_ij) (FiPy's L x - b times h),
  relative to the mass of b; sweeps stop when it is <= ``sweep_tol`` (default 1e-10), the same
  criterion as the Newton ``rtol`` of :mod:`fpsolver.fv`, and that iterate is returned.
  Failing to get there in ``max_sweeps`` sweeps, a non-finite iterate, or a non-positive one
  raises :class:`~fpsolver.errors.SolverError` (no NaN is ever written).
* Schemes: backward Euler; BDF2 as (3 rho^{n+1} - 4 rho^n + rho^{n-1}) / (2 dt) with
  ``TransientTerm(coeff=3/2)`` and the explicit history as a source, first step backward Euler.
* The first sweep of a step starts from the geometric extrapolation rho^n (rho^n / rho^{n-1})
  (positive), which saves a sweep or two.

Limitation: the unknown is rho, so rho_0 and rho_d must be representable (no cell may
underflow to 0); extreme tails need the log-space :mod:`fpsolver.fv` solver.

>>> from fpsolver.case import Case
>>> case = Case.from_dict({"domain": {"lower": [-3.0], "upper": [3.0], "cells": [60]},
...     "target": {"kind": "gaussian", "mean": [0.0], "std": [1.0]},
...     "initial": {"kind": "gaussian", "mean": [0.5], "std": [0.7]},
...     "flow": {"kind": "js"}, "time": {"dt": 0.1, "save_times": [0.5]}})
>>> res = solve_case_fipy(case)
>>> res.rho.shape, res.meta["backend"], res.meta["mass_error"] < 1e-12
((2, 60), 'fipy', True)
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from . import __version__
from .errors import InputError, SolverError
from .flows import Flow, get_flow
from .result import Result

SWEEP_TOL = 1e-10    # relative mass residual of the accepted iterate (as fpsolver.fv's rtol)
MAX_SWEEPS = 60
LINEAR_TOL = 1e-14   # LU refinement target, 'RHS' criterion: far below SWEEP_TOL
MAX_EXTRAPOLATION = 2.0  # cap on |log(rho^n / rho^{n-1})| in the starting guess


def _fipy():
    try:
        with warnings.catch_warnings():  # FiPy 4 imports numpy.core, deprecated in numpy 2
            warnings.simplefilter("ignore", DeprecationWarning)
            import fipy
    except ImportError:
        raise InputError("the fipy backend needs the 'fipy' package (pip install fipy)") from None
    return fipy


@dataclass
class _Faces:
    """Interior faces of a FiPy mesh in our terms: the two cells and rho_d,f / H_f."""

    interior: np.ndarray   # FiPy face ids of interior faces
    c1: np.ndarray         # FiPy cell ids on either side
    c2: np.ndarray
    weight: np.ndarray     # rho_d,f / H_f, H_f = rho_d,i rho_d,j (l_j - l_i) / (rho_d,j - rho_d,i)


@dataclass
class _Model:
    """The FiPy mesh, variables and equations of one case."""

    fp: object
    mesh: object
    shape: tuple           # our [ix, iy] shape (FiPy numbers cells x fastest)
    rho: object            # CellVariable, hasOld
    diff: object           # FaceVariable D_f
    conv: object           # FaceVariable (vector) C_f
    history: object        # CellVariable: BDF2 explicit part 0.5 (rho^n - rho^{n-1}) / dt
    eq_be: object
    eq_bdf2: object
    faces: _Faces
    grad_log_rho_d: np.ndarray  # (dim, faces) FiPy faceGrad of log rho_d, zero on walls
    rho_d: np.ndarray      # FiPy cell order
    volumes: np.ndarray
    solver: object


def _to_fipy(arr: np.ndarray) -> np.ndarray:
    """[ix, iy] array -> FiPy cell vector (FiPy numbers cells x fastest)."""
    return np.asarray(arr, dtype=float).ravel(order="F")


def _from_fipy(vec: np.ndarray, shape: tuple) -> np.ndarray:
    return np.asarray(vec, dtype=float).reshape(shape, order="F")


def _mesh(fp, grid):
    if grid.dim == 1:
        return fp.Grid1D(nx=grid.cells[0], dx=grid.spacing[0]) + ((grid.lower[0],),)
    return fp.Grid2D(nx=grid.cells[0], ny=grid.cells[1], dx=grid.spacing[0],
                     dy=grid.spacing[1]) + ((grid.lower[0],), (grid.lower[1],))


def _faces(mesh, grid, target) -> _Faces:
    """Match FiPy's interior faces to our face arrays through the cells they separate."""
    ids = np.asarray(mesh.faceCellIDs.filled(-1))
    interior = np.flatnonzero((ids[0] >= 0) & (ids[1] >= 0))
    c1, c2 = ids[0, interior], ids[1, interior]
    nx = grid.cells[0]
    lo = np.minimum(c1, c2)
    ix, iy = lo % nx, lo // nx
    along_x = (c1 // nx) == (c2 // nx)
    log_face = np.empty(interior.size)
    if grid.dim == 1:
        log_face[:] = target.log_faces[0][ix]
    else:
        log_face[along_x] = target.log_faces[0][ix[along_x], iy[along_x]]
        log_face[~along_x] = target.log_faces[1][ix[~along_x], iy[~along_x]]
    lc = _to_fipy(target.log_cells)
    a = np.abs(0.5 * (lc[c2] - lc[c1]))
    # H_f = exp(l_mid) a / sinh(a), a = |l_j - l_i| / 2; log(sinh(a) / a) without overflow
    log_shc = np.where(a < 1e-6, a * a / 6.0,
                       a + np.log(-np.expm1(-2.0 * np.maximum(a, 1e-6))) - np.log(2.0 * np.maximum(a, 1e-6)))
    weight = np.exp(log_face - 0.5 * (lc[c1] + lc[c2]) + log_shc)
    return _Faces(interior, c1, c2, weight)


def _build(case, target, initial) -> _Model:
    fp = _fipy()
    grid = case.grid
    rho_d = np.exp(_to_fipy(target.log_cells))
    rho0 = np.exp(_to_fipy(initial.log_cells))
    for name, arr in (("target", rho_d), ("initial", rho0)):
        if np.any(arr <= 0):
            raise InputError(f"fipy backend: the {name} density underflows to 0 in {int(np.sum(arr <= 0))} "
                             "cells (the FiPy unknown is rho itself); use the fv backend or a smaller domain")
    mesh = _mesh(fp, grid)
    faces = _faces(mesh, grid, target)
    log_rho_d = fp.CellVariable(mesh=mesh, value=_to_fipy(target.log_cells))
    grad = np.array(log_rho_d.faceGrad.numericValue) * np.asarray(mesh.interiorFaces, dtype=float)
    rho = fp.CellVariable(mesh=mesh, name="rho", value=rho0, hasOld=True)
    diff = fp.FaceVariable(mesh=mesh, value=1.0)
    conv = fp.FaceVariable(mesh=mesh, rank=1, value=np.zeros((grid.dim, mesh.numberOfFaces)))
    history = fp.CellVariable(mesh=mesh, value=0.0)
    rhs = fp.DiffusionTerm(coeff=diff, var=rho) - fp.ExponentialConvectionTerm(coeff=conv, var=rho)
    eq_be = fp.TransientTerm(coeff=1.0, var=rho) == rhs
    rhs2 = fp.DiffusionTerm(coeff=diff, var=rho) - fp.ExponentialConvectionTerm(coeff=conv, var=rho)
    eq_bdf2 = fp.TransientTerm(coeff=1.5, var=rho) - history == rhs2
    solver = fp.LinearLUSolver(tolerance=LINEAR_TOL, criterion="RHS", iterations=10)
    return _Model(fp, mesh, grid.shape, rho, diff, conv, history, eq_be, eq_bdf2, faces,
                  grad, rho_d, np.asarray(mesh.cellVolumes, dtype=float), solver)


def _update_coefficients(m: _Model, flow: Flow, rho: np.ndarray) -> None:
    """Lagged D_f = beta'(u_f) rho_d,f / H_f and C_f = D_f grad log rho_d (interior faces)."""
    u = rho / m.rho_d
    f = m.faces
    d = np.empty(m.mesh.numberOfFaces)
    d[:] = 1.0  # wall faces carry no flux; any positive value keeps FiPy's Peclet number finite
    d[f.interior] = flow.dbeta(0.5 * (u[f.c1] + u[f.c2])) * f.weight
    m.diff.setValue(d)
    m.conv.setValue(d[None, :] * m.grad_log_rho_d)


@dataclass
class _StepStats:
    sweeps: list = field(default_factory=list)
    residuals: list = field(default_factory=list)


def _resolvent(m: _Model, flow: Flow, guess: np.ndarray, dt: float, bdf2: bool,
               sweep_tol: float, max_sweeps: int, t_new: float, stats: _StepStats) -> np.ndarray:
    """Picard sweeps for one step (rho.old holds rho^n); returns the accepted iterate."""
    eq, tc = (m.eq_bdf2, 1.5) if bdf2 else (m.eq_be, 1.0)
    old = np.asarray(m.rho.old.value, dtype=float)
    b = old + (m.history.value * dt / tc if bdf2 else 0.0)
    mass_b = float(np.sum(m.volumes * np.abs(b)))
    x = guess
    res = np.inf
    for k in range(max_sweeps + 1):
        m.rho.setValue(x)
        _update_coefficients(m, flow, x)
        eq.sweep(var=m.rho, dt=dt, solver=m.solver, cacheResidual=True)
        res = dt / tc * float(np.sum(np.abs(eq.residualVector))) / mass_b
        if not np.isfinite(res):
            raise SolverError(f"fipy backend: non-finite residual at t = {t_new:.6g}; try a smaller dt")
        if res <= sweep_tol:
            m.rho.setValue(x)  # accept the iterate whose residual was measured
            stats.sweeps.append(k)
            stats.residuals.append(res)
            return x
        x = np.array(m.rho.value, dtype=float)
        if not np.all(np.isfinite(x)) or np.min(x) <= 0:
            raise SolverError(f"fipy backend: sweep {k + 1} at t = {t_new:.6g} produced a "
                              f"{'non-finite' if not np.all(np.isfinite(x)) else 'non-positive'} "
                              "density; try a smaller dt")
    raise SolverError(f"fipy backend: Picard sweeps did not converge at t = {t_new:.6g} "
                      f"(residual {res:.3g} > {sweep_tol:g} after {max_sweeps} sweeps); "
                      "try a smaller dt or a larger sweep_tol")


def _guess(rho: np.ndarray, rho_prev: Optional[np.ndarray]) -> np.ndarray:
    if rho_prev is None:
        return rho
    return rho * np.exp(np.clip(np.log(rho / rho_prev), -MAX_EXTRAPOLATION, MAX_EXTRAPOLATION))


def solve_case_fipy(case, *, scheme: Optional[str] = None, progress: Optional[Callable] = None,
                    sweep_tol: float = SWEEP_TOL, max_sweeps: int = MAX_SWEEPS) -> Result:
    """Solve a :class:`~fpsolver.case.Case` with FiPy (module docstring); return a Result.

    The Result has the layout of :func:`fpsolver.fv.solve_case` (t from 0, x[, y], rho
    (nt, nx[, ny]), rho_d) with ``meta["backend"] == "fipy"``; ``meta["sweeps"]`` holds the
    Picard sweeps of each step (linear solves that led to the accepted iterate; FiPy's
    ``sweep`` also solves once more in the sweep that measures the accepted residual),
    ``final_residuals`` the accepted residuals, ``mass``/``energy`` one value per step (t = 0
    included).
    """
    scheme = scheme or case.scheme
    if scheme not in ("backward-euler", "bdf2"):
        raise InputError(f"fipy backend: unknown scheme {scheme!r} (backward-euler or bdf2)")
    if not (0 < sweep_tol < 1) or int(max_sweeps) < 1:
        raise InputError("fipy backend: need 0 < sweep_tol < 1 and max_sweeps >= 1")
    flow = get_flow(case.flow)
    target, initial = case.discretised()
    m = _build(case, target, initial)
    vol = m.volumes
    save_steps, total, dt = set(case.save_steps), case.save_steps[-1], case.dt
    stats = _StepStats()
    rho = np.array(m.rho.value, dtype=float)
    rho_prev = None
    saved_t, saved = [0.0], [rho]
    mass, energy = [float(np.sum(vol * rho))], []
    _record_energy(energy, flow, rho, m.rho_d, case.grid.cell_volume)
    start = time.perf_counter()
    for n in range(1, total + 1):
        bdf2 = scheme == "bdf2" and rho_prev is not None
        m.rho.updateOld()
        if bdf2:
            m.history.setValue(0.5 * (rho - rho_prev) / dt)
        new = _resolvent(m, flow, _guess(rho, rho_prev), dt, bdf2, sweep_tol, int(max_sweeps), n * dt, stats)
        rho_prev, rho = rho, new
        mass.append(float(np.sum(vol * rho)))
        _record_energy(energy, flow, rho, m.rho_d, case.grid.cell_volume)
        if n in save_steps:
            saved_t.append(n * dt)
            saved.append(rho)
        if progress is not None:
            progress(n, f"t={n * dt:.4g} sweeps={stats.sweeps[-1]}")
    wall = time.perf_counter() - start
    marr = np.array(mass)
    meta = {
        "kind": "density", "backend": "fipy", "version": __version__,
        "fipy_version": m.fp.__version__, "case": case.raw, "source": case.source,
        "flow": case.flow, "scheme": scheme, "dt": dt, "grid": case.grid.to_dict(),
        "convection_scheme": "exponential", "sweep_tol": sweep_tol, "max_sweeps": int(max_sweeps),
        "sweeps": stats.sweeps, "final_residuals": stats.residuals,
        "linear_solver": f"scipy {type(m.solver).__name__}", "linear_tolerance": LINEAR_TOL,
        "linear_criterion": "RHS", "steps": total, "mass": mass, "energy": energy,
        "mass_error": float(np.max(np.abs(marr - marr[0])) / marr[0]),
        "min_rho": float(min(np.min(r) for r in saved)), "wall_time": wall,
    }
    return Result(t=np.array(saved_t), meta=meta, axes=case.grid.centres,
                  rho=np.stack([_from_fipy(r, m.shape) for r in saved]),
                  rho_d=np.exp(target.log_cells).reshape(case.grid.shape))


def _record_energy(energy: list, flow: Flow, rho: np.ndarray, rho_d: np.ndarray, cell_volume: float) -> None:
    if flow.energy_density is not None:
        energy.append(flow.energy(rho, rho_d, cell_volume))
