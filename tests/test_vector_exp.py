"""The vectorisable 2^u of fpsolver.particles.vector_exp against numpy's exp2.

Bound: the degree-11 interpolant is 4.2e-18 from 2^r on |r| <= 1/2 (far below an ulp), the
reduction u = k + r is exact, and the 12 Horner steps round in the last place near the end
(|p r| <= 0.35, so earlier roundings shrink): at most ~1 ulp of our own plus numpy's < 1 ulp,
hence 2 ulp. Below U_MIN the function returns 0 where 2^u < 4.5e-308.
"""
import numpy as np

from fpsolver.particles.vector_exp import LOG2E, U_MIN, exp2_nonpositive_array

ULP = np.finfo(float).eps


def test_exp2_to_two_ulp_over_the_normal_range():
    rng = np.random.default_rng(0)
    u = np.concatenate([-rng.uniform(0.0, 1021.0, 10**6), -rng.uniform(0.0, 1.0, 10**5), [0.0, -0.5, -1.0, U_MIN]])
    got = exp2_nonpositive_array(u, np.empty_like(u))
    rel = np.abs(got - np.exp2(u)) / np.exp2(u)
    assert np.max(rel) <= 2 * ULP
    assert got[u == 0.0][0] == 1.0 and got[u == -1.0][0] == 0.5     # exact powers of two stay exact


def test_exp_through_log2e_and_the_underflow_cut():
    t = -np.linspace(0.0, 700.0, 100001)
    got = exp2_nonpositive_array(t * LOG2E, np.empty_like(t))
    # the argument's own rounding adds |t| ulp of relative error (as exp(t) of a rounded t would)
    assert np.all(np.abs(got - np.exp(t)) <= (2 + np.abs(t)) * ULP * np.exp(t))
    below = np.array([U_MIN - 1e-9, -1100.0, -np.inf])
    assert np.all(exp2_nonpositive_array(below, np.empty_like(below)) == 0.0)
