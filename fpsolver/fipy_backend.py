"""The same PDE written as a FiPy user would write it: an independent second grid solver.

FiPy (NIST's finite-volume package) solves MATH.md section 2,

    d_t rho = div( rho_d grad beta(u) ),   u = rho / rho_d,

for the unknown u, in the form d_t (rho_d u) = div( rho_d beta'(u) grad u ):

    TransientTerm(coeff=rho_d, var=u) == DiffusionTerm(coeff=rho_d.faceValue * beta'(u.faceValue), var=u)

on a ``Grid1D`` / ``Grid2D`` with FiPy's default no-flux walls. Everything discrete is FiPy's
own: rho_d is a CellVariable of cell values, its face values and those of u are FiPy's
arithmetic face interpolation (``.faceValue``), the face gradient of u is the one
DiffusionTerm builds from the two cell values, and beta' is written out here from the preset
table of MATH.md section 2 (:data:`DBETA`), evaluated pointwise on FiPy's face values of u.
Nothing of :mod:`fpsolver.fv` or :mod:`fpsolver.flows` is used; from the rest of fpsolver it
takes only the case (grid, rho_d and rho_0 as cell values from ``case.discretised()``).

Why this form, and why it is consistent and second order:

* It is the PDE itself, not a rearrangement: rho_d grad beta(u) = rho_d beta'(u) grad u, so the
  flux through a face is D_f (u_j - u_i) / h with D_f = rho_d,f beta'(u_f). Arithmetic face
  values are O(h^2) accurate on a uniform grid, and the two-point difference quotient is a
  central difference at the face, O(h^2): the flux, hence the scheme, is second order in space.
  (Ours differs in two O(h^2) places: rho_d at the face is the analytic value, and
  beta(u_j) - beta(u_i) stands where FiPy has beta'(u_f)(u_j - u_i).)
* TransientTerm with the constant coefficient rho_d makes the discrete mass sum_i |K_i| rho_d,i u_i
  change only by the residual of the nonlinear solve: DiffusionTerm is conservative.
* rho = rho_d (u = 1) is an exact discrete steady state, whatever the face interpolation.
* The lagged system (coefficient at the current iterate) is a symmetric M-matrix: backward Euler
  keeps u > 0.

Nonlinear solve, as FiPy users do it: Picard sweeps. Each sweep evaluates beta'(u_f) at the
current iterate and calls ``eq.sweep``; FiPy returns the residual L(x) x - b(x) of the
iterate x it was given (the coefficients were evaluated at x, so this is the nonlinear residual
R(x)). Sweeps stop when the mass residual sum_i |R_i| (times dt, relative to the mass of the
right-hand side) is <= ``sweep_tol`` (default 1e-10: the same mass-residual criterion as the
Newton ``rtol`` of :mod:`fpsolver.fv`, whose own default is round-off, 1e-15; the cross-checks
compare the two at 1e-10), and that iterate is returned. Failing to get there in ``max_sweeps`` sweeps,
a non-finite iterate, or a non-positive one raises :class:`~fpsolver.errors.SolverError` (no NaN
is ever written).

* Linear solver: FiPy's scipy ``LinearLUSolver`` with its tolerance set explicitly
  (``LINEAR_TOL``, 'RHS' criterion); FiPy 4's default (1e-5) stalls the sweeps near a 1e-4 residual.
* Schemes: backward Euler; BDF2 as (3 rho^{n+1} - 4 rho^n + rho^{n-1}) / (2 dt) with
  ``TransientTerm(coeff=1.5 rho_d)`` and the explicit history as a source, first step backward Euler.
* The first sweep of a step starts from the geometric extrapolation u^n (u^n / u^{n-1}) (positive).

Limitation: rho_d must be representable on every cell (no cell may underflow to 0, u = rho / rho_d
must be finite); extreme tails need the log-space :mod:`fpsolver.fv` solver.

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
from .result import Result

SWEEP_TOL = 1e-10    # relative mass residual of the accepted iterate (fpsolver.fv's rtol at 1e-10)
MAX_SWEEPS = 60
LINEAR_TOL = 1e-14   # LU refinement target, 'RHS' criterion: far below SWEEP_TOL
MAX_EXTRAPOLATION = 2.0  # cap on |log(u^n / u^{n-1})| in the starting guess

# beta'(u) of the presets, MATH.md section 2 (beta: log(1+u)/2, log u, u, u^2, u - log(1+u))
DBETA: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "js": lambda u: 0.5 / (1.0 + u),
    "reverse-kl": lambda u: 1.0 / u,
    "kl": lambda u: np.ones_like(u),
    "chi2": lambda u: 2.0 * u,
    "non-saturating": lambda u: u / (1.0 + u),
}
# MonoFlow's losses of MATH.md section 7: minimax with logit shift C, beta' = 1 / (1 + u e^-C); arcsinh
MONOFLOW_DBETA: dict[str, Callable[..., np.ndarray]] = {
    "minimax": lambda u, shift=0.0: 1.0 / (1.0 + u * np.exp(-shift)),
    "arcsinh": lambda u: 1.0 / np.sqrt(1.0 + np.log(u) ** 2),
}


def _dbeta(case) -> Callable[[np.ndarray], np.ndarray]:
    """beta'(u) of the case's flow, its parameters (the minimax shift) bound; a user's flow gives
    its own beta' (the definition the user wrote, so nothing of fpsolver's is borrowed)."""
    if getattr(case, "custom", None) is not None:
        return case.custom.dbeta
    if case.flow == "minimax":
        shift = float(case.raw["flow"].get("shift", 0.0))
        return lambda u: MONOFLOW_DBETA["minimax"](u, shift)
    if case.flow in MONOFLOW_DBETA:
        return MONOFLOW_DBETA[case.flow]
    if case.flow not in DBETA:
        raise InputError(f"fipy backend: no beta' for flow {case.flow!r} "
                         f"(one of {', '.join(tuple(DBETA) + tuple(MONOFLOW_DBETA))})")
    return DBETA[case.flow]


def _fipy():
    try:
        with warnings.catch_warnings():  # FiPy 4 imports numpy.core, deprecated in numpy 2
            warnings.simplefilter("ignore", DeprecationWarning)
            import fipy
    except ImportError:
        raise InputError("the fipy backend needs the 'fipy' package (pip install fipy)") from None
    return fipy


@dataclass
class _Model:
    """The FiPy mesh, variables and equations of one case."""

    fp: object
    mesh: object
    u: object              # CellVariable u = rho / rho_d, hasOld
    rho_d: object          # CellVariable of the target's cell values
    dbeta_face: object     # FaceVariable beta'(u_f), set from u.faceValue before each sweep
    history: object        # CellVariable: BDF2 explicit part rho_d (u^n - u^{n-1}) / (2 dt)
    eq_be: object
    eq_bdf2: object
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


def _build(grid, rho_d_cells: np.ndarray, rho0_cells: np.ndarray) -> _Model:
    fp = _fipy()
    rho_d_vec, rho0 = _to_fipy(rho_d_cells), _to_fipy(rho0_cells)
    for name, arr in (("target", rho_d_vec), ("initial", rho0)):
        if np.any(arr <= 0):
            raise InputError(f"fipy backend: the {name} density underflows to 0 in {int(np.sum(arr <= 0))} "
                             "cells (FiPy's unknown is u = rho / rho_d); use the fv backend or a smaller domain")
    mesh = _mesh(fp, grid)
    rho_d = fp.CellVariable(mesh=mesh, name="rho_d", value=rho_d_vec)
    u = fp.CellVariable(mesh=mesh, name="u", value=rho0 / rho_d_vec, hasOld=True)
    dbeta_face = fp.FaceVariable(mesh=mesh, value=1.0)
    history = fp.CellVariable(mesh=mesh, value=0.0)
    flux_coeff = rho_d.faceValue * dbeta_face
    eq_be = fp.TransientTerm(coeff=rho_d, var=u) == fp.DiffusionTerm(coeff=flux_coeff, var=u)
    eq_bdf2 = fp.TransientTerm(coeff=1.5 * rho_d, var=u) - history == fp.DiffusionTerm(coeff=flux_coeff, var=u)
    solver = fp.LinearLUSolver(tolerance=LINEAR_TOL, criterion="RHS", iterations=10)
    return _Model(fp, mesh, u, rho_d, dbeta_face, history, eq_be, eq_bdf2,
                  np.asarray(mesh.cellVolumes, dtype=float), solver)


@dataclass
class _StepStats:
    sweeps: list = field(default_factory=list)
    residuals: list = field(default_factory=list)


def _resolvent(m: _Model, dbeta: Callable, guess: np.ndarray, dt: float, bdf2: bool,
               sweep_tol: float, max_sweeps: int, t_new: float, stats: _StepStats) -> np.ndarray:
    """Picard sweeps for one step (u.old holds u^n); returns the accepted iterate u^{n+1}."""
    eq, tc = (m.eq_bdf2, 1.5) if bdf2 else (m.eq_be, 1.0)
    rho_d = np.asarray(m.rho_d.value)
    b = rho_d * np.asarray(m.u.old.value) + (np.asarray(m.history.value) * dt / tc if bdf2 else 0.0)
    mass_b = float(np.sum(m.volumes * np.abs(b)))
    uf = m.u.faceValue
    x = guess
    res = np.inf
    for k in range(max_sweeps + 1):
        m.u.setValue(x)
        m.dbeta_face.setValue(dbeta(np.asarray(uf)))
        eq.sweep(var=m.u, dt=dt, solver=m.solver, cacheResidual=True)
        res = dt / tc * float(np.sum(np.abs(eq.residualVector))) / mass_b
        if not np.isfinite(res):
            raise SolverError(f"fipy backend: non-finite residual at t = {t_new:.6g}; try a smaller dt")
        if res <= sweep_tol:
            m.u.setValue(x)  # accept the iterate whose residual was measured
            stats.sweeps.append(k)
            stats.residuals.append(res)
            return x
        x = np.array(m.u.value, dtype=float)
        if not np.all(np.isfinite(x)) or np.min(x) <= 0:
            raise SolverError(f"fipy backend: sweep {k + 1} at t = {t_new:.6g} produced a "
                              f"{'non-finite' if not np.all(np.isfinite(x)) else 'non-positive'} "
                              "density; try a smaller dt")
    raise SolverError(f"fipy backend: Picard sweeps did not converge at t = {t_new:.6g} "
                      f"(residual {res:.3g} > {sweep_tol:g} after {max_sweeps} sweeps); "
                      "try a smaller dt or a larger sweep_tol")


def _guess(u: np.ndarray, u_prev: Optional[np.ndarray]) -> np.ndarray:
    if u_prev is None:
        return u
    return u * np.exp(np.clip(np.log(u / u_prev), -MAX_EXTRAPOLATION, MAX_EXTRAPOLATION))


def solve_case_fipy(case, *, scheme: Optional[str] = None, progress: Optional[Callable] = None,
                    sweep_tol: float = SWEEP_TOL, max_sweeps: int = MAX_SWEEPS) -> Result:
    """Solve a :class:`~fpsolver.case.Case` with FiPy (module docstring); return a Result.

    The Result has the layout of :func:`fpsolver.fv.solve_case` (t from 0, x[, y], rho
    (nt, nx[, ny]), rho_d) with ``meta["backend"] == "fipy"``; ``meta["sweeps"]`` holds the
    Picard sweeps of each step (linear solves that led to the accepted iterate; FiPy's
    ``sweep`` also solves once more in the sweep that measures the accepted residual),
    ``final_residuals`` the accepted residuals, ``mass`` one value per step (t = 0 included).
    """
    if getattr(case, "discriminator", None) is not None:
        raise InputError("fipy backend: no dual flow ([discriminator]); use the fv backend")
    if getattr(case, "rtol", None) is not None:
        raise InputError("--rtol / time.rtol: adaptive steps are available for the fv backend only")
    scheme = scheme or case.scheme
    if scheme not in ("backward-euler", "bdf2"):
        raise InputError(f"fipy backend: unknown scheme {scheme!r} (backward-euler or bdf2)")
    if not (0 < sweep_tol < 1) or int(max_sweeps) < 1:
        raise InputError("fipy backend: need 0 < sweep_tol < 1 and max_sweeps >= 1")
    dbeta = _dbeta(case)
    target, initial = case.discretised()
    m = _build(case.grid, target.cells, initial.cells)
    rho_d = np.asarray(m.rho_d.value, dtype=float)
    save_steps, total, dt = set(case.save_steps), case.save_steps[-1], case.dt
    stats = _StepStats()
    u = np.array(m.u.value, dtype=float)
    u_prev = None
    saved_t, saved = [0.0], [rho_d * u]
    mass = [float(np.sum(m.volumes * saved[0]))]
    start = time.perf_counter()
    for n in range(1, total + 1):
        bdf2 = scheme == "bdf2" and u_prev is not None
        m.u.updateOld()
        if bdf2:
            m.history.setValue(0.5 * rho_d * (u - u_prev) / dt)
        new = _resolvent(m, dbeta, _guess(u, u_prev), dt, bdf2, sweep_tol, int(max_sweeps), n * dt, stats)
        u_prev, u = u, new
        mass.append(float(np.sum(m.volumes * rho_d * u)))
        if n in save_steps:
            saved_t.append(n * dt)
            saved.append(rho_d * u)
        if progress is not None:
            progress(n, f"t={n * dt:.4g} sweeps={stats.sweeps[-1]}")
    wall = time.perf_counter() - start
    marr = np.array(mass)
    meta = {
        "kind": "density", "backend": "fipy", "version": __version__,
        "fipy_version": m.fp.__version__, "case": case.raw, "source": case.source,
        "flow": case.flow, "scheme": scheme, "dt": dt, "grid": case.grid.to_dict(),
        "formulation": "TransientTerm(rho_d, u) == DiffusionTerm(rho_d.faceValue beta'(u.faceValue), u)",
        "sweep_tol": sweep_tol, "max_sweeps": int(max_sweeps),
        "sweeps": stats.sweeps, "final_residuals": stats.residuals,
        "linear_solver": f"scipy {type(m.solver).__name__}", "linear_tolerance": LINEAR_TOL,
        "linear_criterion": "RHS", "steps": total, "mass": mass,
        "mass_error": float(np.max(np.abs(marr - marr[0])) / marr[0]),
        "min_rho": float(min(np.min(r) for r in saved)), "wall_time": wall,
    }
    shape = case.grid.shape
    return Result(t=np.array(saved_t), meta=meta, axes=case.grid.centres,
                  rho=np.stack([_from_fipy(r, shape) for r in saved]),
                  rho_d=np.asarray(target.cells).reshape(shape))
