"""The multigrid-preconditioned 2D Newton solve against direct solves and the Jacobi path; step
wall times in the run record."""
from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from fpsolver.case import Case
from fpsolver.densities import GaussianMixture, discretise
from fpsolver.flows import PRESETS, get_flow
from fpsolver.fv import FVOperator, backward_euler_step, crandall_liggett, solve_case
from fpsolver.fv import multigrid as mg
from fpsolver.fv.newton import Rhs, _System
from fpsolver.fv.operators import coupling, newton_matrix_scipy
from fpsolver.grid import Grid

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _newton_system(shape, flow="js", h=0.02, seed=0, spread=0.5):
    grid = Grid((-4.0, -4.0), (4.0, 4.0), shape)
    target = GaussianMixture([0.5, 0.5], [[-1.5, 0.0], [1.5, 0.5]],
                             [[[0.25, 0.0], [0.0, 0.25]], [[0.3, 0.1], [0.1, 0.4]]])
    op = FVOperator.build(grid, discretise(target, grid))
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, spread, op.shape)
    sys_ = _System(op, get_flow(flow), Rhs.from_log(op.log_rho_d + w), h, False)
    sb, lb = sys_.terms(w)
    lp, lj, lc, ls = sys_.scale(w, lb)
    return op, coupling(op, lp, lj, ls, h), mg.scaling(op, lp, lj, lc, h)


@pytest.mark.parametrize("flow", sorted(PRESETS))
@pytest.mark.parametrize("shape", [(37, 23), (64, 64)])
def test_symmetric_form_is_similar_to_the_newton_matrix(shape, flow):
    """I - C = D^{-1} (I - Chat) D (multigrid module docstring): the entries agree to round-off
    of the exponentials that form them (a few ulp, so 1e-13 relative)."""
    op, cs, (sx, sy, d) = _newton_system(shape, flow)
    cw, ce, css, cn = cs
    np.testing.assert_allclose(ce[:-1], sx * d[1:] / d[:-1], rtol=1e-13)
    np.testing.assert_allclose(cw[1:], sx * d[:-1] / d[1:], rtol=1e-13)
    np.testing.assert_allclose(cn[:, :-1], sy * d[:, 1:] / d[:, :-1], rtol=1e-13)
    np.testing.assert_allclose(css[:, 1:], sy * d[:, :-1] / d[:, 1:], rtol=1e-13)


@pytest.mark.parametrize("shape", [(37, 23), (5, 70), (96, 96)])
def test_multigrid_cg_reaches_its_tolerance_against_spsolve(shape):
    """The returned y satisfies ||f - (I - C) y|| <= rtol ||f|| (the contract of the Jacobi path), so
    it agrees with the direct solution to rtol times the condition number (here < 1e3)."""
    op, cs, sym = _newton_system(shape, "chi2", h=0.05, spread=1.0)
    a = newton_matrix_scipy(*cs)
    f = np.random.default_rng(1).normal(size=op.shape)
    y = np.zeros(op.shape)
    k = mg.mg_cg(*sym, f, y, 1e-10, 200)
    assert k > 0
    res = np.linalg.norm(f.ravel() - a @ y.ravel()) / np.linalg.norm(f)
    assert res <= 1e-10
    ref = spla.spsolve(a.tocsc(), f.ravel()).reshape(op.shape)
    assert np.max(np.abs(y - ref)) <= 1e-7 * np.max(np.abs(ref))


def test_multigrid_iterations_do_not_grow_with_the_grid():
    """Multigrid: the iteration count is bounded independently of the grid. On coarse grids the
    hierarchy is shallow and its exactly solved 8x8 level does part of the work (measured 11 at
    32^2), so grid independence is asserted where every refinement adds one level of the same
    kind: 128^2 -> 256^2 at most one more iteration. Meanwhile Jacobi-preconditioned BiCGStab
    iterations grow like the grid width (x8 over 32 -> 256 by theory: sqrt of the condition
    number ~ n; asserted >= x2.5 to allow for BiCGStab's irregular convergence)."""
    from fpsolver.fv.operators import bicgstab_kernel
    counts, jacobi = [], []
    for n in (32, 64, 128, 256):
        op, cs, sym = _newton_system((n, n), h=0.1, spread=0.0)
        f = np.random.default_rng(2).normal(size=op.shape)
        counts.append(mg.mg_cg(*sym, f, np.zeros(op.shape), 1e-10, 200))
        jacobi.append(bicgstab_kernel(*cs, f, np.zeros(op.shape), 1e-10, 10000))
    assert min(counts) > 0 and counts[-1] <= counts[-2] + 1, counts
    assert jacobi[-1] >= 2.5 * jacobi[0], jacobi


def test_unrepresentable_scaling_is_refused_and_the_answers_agree():
    """Where D spans more than e^1300 the symmetric form is refused (None); elsewhere multigrid and
    Jacobi answers agree to the Newton tolerance."""
    op, _, _ = _newton_system((16, 16))
    n = op.shape[0] * op.shape[1]
    lp = np.zeros(op.shape)
    lc = np.linspace(-800.0, 800.0, n).reshape(op.shape)
    assert mg.scaling(op, lp, np.zeros(op.shape), lc, 0.1) is None
    case = Case.from_toml(os.path.join(EXAMPLES, "two_mode_2d.toml")).with_overrides(cells=[48, 48], save_times=[0.1])
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    w0 = (initial.log_cells - target.log_cells).reshape(op.shape)
    a = crandall_liggett(op, "js", w0, case.dt, case.save_steps, linear="multigrid")
    b = crandall_liggett(op, "js", w0, case.dt, case.save_steps, linear="krylov")
    # both stop at the round-off floor of the mass residual: 1e-14 of the unit mass
    assert np.sum(np.abs(a.saved_rho[-1] - b.saved_rho[-1])) * op.volume <= 1e-14


def test_a_refused_scaling_takes_the_jacobi_path(monkeypatch):
    """The Newton solve with linear="multigrid" falls back to the Jacobi BiCGStab wherever the
    symmetric scaling is refused: with every scaling refused it is the krylov solve, bit for bit."""
    import fpsolver.fv.newton as newton
    op, _, _ = _newton_system((24, 24))
    w0 = np.zeros(op.shape)
    b = np.exp(op.log_rho_d) * 1.2
    wk, _ = backward_euler_step(op, get_flow("js"), w0, b, 0.05, linear="krylov")
    monkeypatch.setattr(newton, "scaling", lambda *a: None)
    wm, _ = backward_euler_step(op, get_flow("js"), w0, b, 0.05, linear="multigrid")
    np.testing.assert_array_equal(wm, wk)


def test_the_2d_default_is_multigrid_and_krylov_stays_available():
    op, _, _ = _newton_system((24, 24))
    w0 = np.zeros(op.shape)
    b = np.exp(op.log_rho_d) * 1.2
    wa, sa = backward_euler_step(op, get_flow("js"), w0, b, 0.05)
    wm, sm = backward_euler_step(op, get_flow("js"), w0, b, 0.05, linear="multigrid")
    wk, sk = backward_euler_step(op, get_flow("js"), w0, b, 0.05, linear="krylov")
    np.testing.assert_array_equal(wa, wm)
    assert np.sum(np.abs(op.rho(wm) - op.rho(wk))) * op.volume <= 1e-14


def test_meta_records_the_wall_time_of_every_step():
    case = Case.from_toml(os.path.join(EXAMPLES, "bimodal_1d.toml")).with_overrides(save_times=[0.05, 0.1])
    res = solve_case(case)
    times = res.meta["step_wall_times"]
    assert len(times) == res.meta["steps"] == 10
    assert all(t > 0 for t in times) and sum(times) <= res.meta["wall_time"]
