"""Adding the kernel flows left the local flows' path untouched: on every local example,
``solve_case`` (which dispatches on the flow's kind) returns bit for bit what the Crandall-Liggett
stepper returns when called directly on the operator."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from fpsolver.case import Case
from fpsolver.fv import FVOperator, crandall_liggett, solve_case

EXAMPLES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "examples", "*.toml")))


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_local_examples_are_bitwise_the_crandall_liggett_path(path):
    case = Case.from_toml(path)
    if case.discriminator is not None:      # dual flows (MATH.md section 10): their own solver
        assert solve_case(case.with_overrides(save_times=[case.save_times[0]])).meta["backend"] == "fv-dual"
        return
    if case.flow == "mmd":
        assert solve_case(case.with_overrides(save_times=[case.save_times[0]])).meta["backend"] == "fv-transport"
        return
    target, initial = case.discretised()
    op = FVOperator.build(case.grid, target)
    w0 = (initial.log_cells - target.log_cells).reshape(op.shape)
    direct = crandall_liggett(op, case.flow, w0, case.dt, case.save_steps, scheme=case.scheme)
    res = solve_case(case)
    np.testing.assert_array_equal(res.rho, np.stack([r.reshape(case.grid.shape) for r in direct.saved_rho]))
    assert res.meta["backend"] == "fv"
