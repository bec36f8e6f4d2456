"""The 2D Newton linear solve: our geometric multigrid against pyamg's smoothed aggregation.

The 2D linear solver was to be a multigrid, "an algebraic one from a well-kept library such as
pyamg, or a geometric one on our structured grid". We chose the geometric one
(fpsolver.fv.multigrid: 2x2 agglomeration, CG preconditioned by one V-cycle, Numba kernels, no new
dependency). This benchmark measures the algebraic alternative side by side, in one process, on
the actual Newton systems, so that the choice can be checked rather than taken on trust.

The systems: examples/two_mode_2d.toml (js flow), dt = 0.02, at the start of the first
backward-Euler step from t = 0 (the first Newton iteration of fpsolver.fv.newton's
backward_euler_step: residual r and the symmetric form (sx, sy, D) of fpsolver.fv.multigrid's
scaling), on 128^2 ... 1024^2 cells. The right-hand side is -r; the matrix is the symmetric
positive definite A = I - Chat (unit diagonal, -sx on x-faces, -sy on y-faces), and the system
solved is A z = b, b = D (-r), the Newton correction y = z / D. Both solvers stop on the same
rule, the relative residual of that symmetric system in the 2-norm, ||b - A z||_2 <= 1e-10 ||b||_2,
from z = 0:

  ours:  fpsolver.fv.multigrid.mg_cg, CG preconditioned by one geometric V-cycle. mg_cg's own
         test is on the residual of the unsymmetric system, ||D^-1 (b - A z)||_2 <= rtol ||D^-1 b||_2;
         called with unit D on b it is the test above, with the same kernels and work per iteration
         as the call Newton makes.
  pyamg: A assembled as a scipy CSR matrix (cell (i, j) -> i * ny + j), the hierarchy built by
         pyamg.smoothed_aggregation_solver(A) with pyamg's defaults, then ml.solve(b, tol=1e-10,
         accel="cg"), pyamg's documented CG with the hierarchy's V-cycle as preconditioner.
         The entries of A (the row scalings) change with every Newton iterate, so the assembly
         and the setup are paid at every Newton iteration, as our coarsening is (mg_cg re-aggregates
         the couplings on every call, which its timing includes). pyamg's cost per Newton
         iteration is therefore assembly + setup + solve.

Reported per grid: median wall time of 3 repeats (2 at 1024^2) after a warm-up, per cell, of each
phase; iterations; pyamg total / ours; the share of pyamg's setup in its total; the relative
residual each answer reaches (recomputed with the CSR matrix, which also checks the assembly
against our matrix-free operator); and ||y_pyamg - y_ours||_2 / ||y_ours||_2, which the 1e-10
tolerance bounds well below 1e-7 (exit 1 above that, or if a solver does not converge). The
machine's cores may be shared, so medians, and the load average is printed before and after.

pyamg is not a dependency of fpsolver; without it this prints one line and exits 0.

    pip install pyamg
    python benchmarks/bench_pyamg.py            # 128^2 ... 1024^2, about 25 s
    python benchmarks/bench_pyamg.py --quick    # 128^2 and 256^2 (about 3 s)
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from fpsolver.flows import get_flow  # noqa: E402
from fpsolver.fv.multigrid import mg_cg, scaling  # noqa: E402
from fpsolver.fv.newton import Rhs, _System  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_particles import timings  # noqa: E402  (the median-of-repeats timer, this folder)
from bench_scaling import _load, _setup  # noqa: E402

try:
    import pyamg
except ImportError:
    pyamg = None

DT = 0.02
RTOL = 1e-10        # relative 2-norm residual of the symmetric system, both solvers
MAXITER = 200
AGREE = 1e-7        # two answers within RTOL of the same system differ by about cond(A) RTOL


def newton_system(n: int):
    """(sx, sy, D, f) of the first Newton iteration of the first backward-Euler step on n^2 cells:
    the symmetric form and the right-hand side f = -r, as backward_euler_step builds them."""
    op, w0 = _setup("two_mode_2d.toml", [n, n], DT)
    system = _System(op, get_flow("js"), Rhs.from_log(op.log_rho_d + w0), DT, plain=False)
    w = np.array(w0, dtype=float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):   # as the step does
        sb, lb = system.terms(w)
        lp, lj, lc, ls = system.scale(w, lb)
        r = system.residual(w, ls, sb, lb)[0]
    sym = scaling(op, lp, lj, lc, DT)
    if sym is None:
        raise SystemExit(f"{n}^2: the symmetric scaling does not fit in double precision")
    return (*sym, np.ascontiguousarray(-r))


def assemble(sx: np.ndarray, sy: np.ndarray) -> sp.csr_matrix:
    """A = I - Chat as CSR, cell (i, j) -> i * ny + j: x-neighbours ny apart, y-neighbours 1 apart."""
    nx, ny = sx.shape[0] + 1, sx.shape[1]
    # the y-coupling of (i, ny - 1) to (i + 1, 0) does not exist: a zero there, then dropped
    up = np.concatenate([sy, np.zeros((nx, 1))], axis=1).ravel()[:-1]
    east = sx.ravel()
    a = sp.diags([np.ones(nx * ny), -up, -up, -east, -east], [0, 1, -1, ny, -ny], format="csr")
    a.eliminate_zeros()
    return a


def solve_ours(sx, sy, d, f):
    """(y, iterations): mg_cg on A z = D f with unit D, so that its test is the symmetric one."""
    z = np.zeros_like(f)
    k = mg_cg(sx, sy, np.ones_like(d), d * f, z, RTOL, MAXITER)
    if k < 0:
        raise SystemExit(f"{f.shape}: multigrid CG did not converge in {MAXITER} iterations")
    return z / d, k


def solve_pyamg(ml, d, f):
    """(y, iterations): pyamg's CG preconditioned by the hierarchy's V-cycle on A z = D f."""
    res = []
    z, info = ml.solve((d * f).ravel(), tol=RTOL, accel="cg", maxiter=MAXITER, residuals=res,
                       return_info=True)
    if info != 0:
        raise SystemExit(f"{f.shape}: pyamg CG did not converge (info {info})")
    return z.reshape(f.shape) / d, len(res) - 1


def _rel_residual(a, d, f, y) -> float:
    b = (d * f).ravel()
    return float(np.linalg.norm(b - a @ (d * y).ravel()) / np.linalg.norm(b))


def compare(n: int, repeats: int) -> dict:
    """Medians of each phase, iterations, residuals and the difference of the two answers on n^2."""
    sx, sy, d, f = newton_system(n)
    t_ours = timings(lambda: solve_ours(sx, sy, d, f), repeats)[0]
    t_asm = timings(lambda: assemble(sx, sy), repeats)[0]
    a = assemble(sx, sy)
    t_setup = timings(lambda: pyamg.smoothed_aggregation_solver(a), repeats)[0]
    ml = pyamg.smoothed_aggregation_solver(a)
    t_solve = timings(lambda: solve_pyamg(ml, d, f), repeats)[0]
    y_ours, k_ours = solve_ours(sx, sy, d, f)
    y_amg, k_amg = solve_pyamg(ml, d, f)
    return {"ours": t_ours, "asm": t_asm, "setup": t_setup, "solve": t_solve,
            "k_ours": k_ours, "k_amg": k_amg, "levels": len(ml.levels),
            "res_ours": _rel_residual(a, d, f, y_ours), "res_amg": _rel_residual(a, d, f, y_amg),
            "diff": float(np.linalg.norm(y_amg - y_ours) / np.linalg.norm(y_ours))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="128^2 and 256^2 only")
    args = p.parse_args(argv)
    if pyamg is None:
        print("pyamg is not installed: pip install pyamg")
        return 0
    sizes = (128, 256) if args.quick else (128, 256, 512, 1024)
    print(f"2D Newton system, two_mode_2d, js, dt = 0.02, first Newton iteration of the first step; "
          f"stop at ||b - A z||_2 <= {RTOL:g} ||b||_2 (symmetric system, from z = 0), both solvers")
    print(f"pyamg {pyamg.__version__} (smoothed_aggregation_solver, defaults; ml.solve accel='cg'); "
          f"{os.cpu_count()} cores, NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}, "
          f"load average {_load()}")
    print(f"{'cells':>9} | {'ours us/cell':>12} {'it':>3} | {'assembly':>8} {'setup':>8} {'solve':>8} "
          f"{'total':>8} {'it':>3} {'lev':>3} | {'total/ours':>10} {'solve/ours':>10} {'setup share':>11} | "
          f"{'res ours':>8} {'res pyamg':>9} {'y diff':>8}")
    ok = True
    for n in sizes:
        c = compare(n, 2 if n >= 1024 else 3)
        total = c["asm"] + c["setup"] + c["solve"]
        us = 1e6 / n ** 2
        print(f"{n:>5}^2   | {c['ours'] * us:12.3f} {c['k_ours']:3d} | {c['asm'] * us:8.3f} "
              f"{c['setup'] * us:8.3f} {c['solve'] * us:8.3f} {total * us:8.3f} {c['k_amg']:3d} "
              f"{c['levels']:3d} | {total / c['ours']:9.1f}x {c['solve'] / c['ours']:9.1f}x "
              f"{c['setup'] / total:10.0%} | {c['res_ours']:8.1e} {c['res_amg']:9.1e} {c['diff']:8.1e}",
              flush=True)
        ok &= c["diff"] <= AGREE
    print("us/cell: median wall time per cell of one Newton iteration's linear solve (3 repeats, 2 at "
          "1024^2); pyamg columns: assembly of the CSR matrix, smoothed_aggregation_solver setup, CG "
          "solve, and their total, all paid anew at every Newton iteration since A changes with the "
          "iterate; it: CG iterations; lev: pyamg levels; res: ||b - A z||_2 / ||b||_2 reached; "
          f"y diff: ||y_pyamg - y_ours||_2 / ||y_ours||_2 (must be <= {AGREE:g})")
    print(f"load average after: {_load()}")
    if not ok:
        print(f"FAIL: the two answers differ by more than {AGREE:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
