"""GAN loop timing (MATH.md section 8), side by side with a plain numpy version of the same loop.

    python benchmarks/bench_gan.py            # the target: exact D, monotone G (J = 16), N = 4000
    python benchmarks/bench_gan.py --quick    # fewer repeats

Target (one whole run): exact discriminator D*, monotone tanh-knot generator with 16 knots fitted
exactly, N = 4000 mid-quantile latents, eps = 0.05 to t = 2 (40 iterations): <= 1 s.

``run_gan`` caches what does not change between iterations (the latents' feature matrix and its QR,
so the bounded least squares runs on J + 2 rows; the latent table that inverts G; the latents of its
own samples, so D* at G(z_i) needs no inversion). The plain version is the loop written directly:
features, BVLS on the full N x (J + 2) matrix, and G inverted by a fresh table + Newton at every
evaluation. Both produce the same samples (checked below). Times are medians (and minima) of
repeats; the load average is printed because the machine may be shared.
"""
from __future__ import annotations

import argparse
import os
import sys

# one BLAS thread (unless set by the caller): the loop's matrices are small (4000 x 18), so BLAS threads
# only add start-up cost, and on a shared machine they fight the other processes for the cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy.optimize import lsq_linear  # noqa: E402
from scipy.special import expit, ndtr, ndtri  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fpsolver.case import Case  # noqa: E402
from fpsolver.gan import run_gan  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from bench_particles import timings  # noqa: E402

LIMIT_S = 1.0


def _case() -> Case:
    return Case.from_dict({"domain": {"lower": [-6.0], "upper": [6.0], "cells": [600]},
                           "target": {"kind": "gaussian", "mean": [0.0], "std": [1.0]},
                           "initial": {"kind": "gaussian", "mean": [2.0], "std": [0.5]},
                           "flow": {"kind": "js"}, "time": {"dt": 0.05, "save_times": [0.5, 1.0, 2.0]}})


def plain_loop(eps: float, knots: int, n: int, t_end: float, mean0=2.0, std0=0.5) -> np.ndarray:
    """The same Algorithm 1 in plain numpy/scipy: rho_d = N(0, 1) on [-6, 6], js, D* from the exact
    law of G, targets x + eps sigmoid(d) grad d / 2, BVLS on the full matrix. Returns G(z) at t_end."""
    s = 6.0 / knots
    kappa = -3.0 + s * (np.arange(knots) + 0.5)
    z = ndtri((np.arange(n) + 0.5) / n)
    table = np.linspace(-10.0, 10.0, 8001)
    log_norm = np.log(ndtr(6.0) - ndtr(-6.0))      # rho_d truncated to the box and renormalised
    theta = np.zeros(knots + 2)
    theta[:2] = mean0, std0
    lower = np.concatenate([[-np.inf], np.zeros(knots + 1)])

    def feats(zz):
        return np.column_stack([np.ones_like(zz), zz, s * np.tanh((zz[:, None] - kappa) / s)])

    def slope_curv(zz):
        t = np.tanh((zz[:, None] - kappa) / s)
        return theta[1] + (1 - t * t) @ theta[2:], (-2 / s) * ((1 - t * t) * t) @ theta[2:]

    def invert(x):
        zz = np.interp(x, feats(table) @ theta, table)
        for _ in range(3):
            g, _ = slope_curv(zz)
            zz = np.clip(zz - np.where(g > 0, (feats(zz) @ theta - x) / np.where(g > 0, g, 1.0), 0.0), -10, 10)
        return zz

    for _ in range(int(round(t_end / eps))):
        x = feats(z) @ theta
        zz = invert(x)
        g, c = slope_curv(zz)
        log_rho_g = -0.5 * zz**2 - 0.5 * np.log(2 * np.pi) - np.log(g)
        d = (-0.5 * x**2 - 0.5 * np.log(2 * np.pi) - log_norm) - log_rho_g
        grad = -x - (-zz - c / g) / g
        y = x + eps * 0.5 * expit(d) * grad
        theta = lsq_linear(feats(z), y, bounds=(lower, np.inf), method="bvls").x
    return feats(z) @ theta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    repeats = 3 if args.quick else 7
    case = _case()
    print(f"load average {os.getloadavg()[0]:.2f}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; "
          "exact D, monotone G (J = 16), N = 4000 quantile latents, eps = 0.05 to t = 2 (40 iterations)")
    ours = timings(lambda: run_gan(case, epsilon=0.05, knots=16, n=4000), repeats)
    plain = timings(lambda: plain_loop(0.05, 16, 4000, 2.0), repeats)
    res = run_gan(case, epsilon=0.05, knots=16, n=4000)
    diff = float(np.max(np.abs(np.sort(res.positions[-1][:, 0]) - np.sort(plain_loop(0.05, 16, 4000, 2.0)))))
    print(f"  run_gan (whole run)   {ours[0]:7.3f} s (min {ours[1]:.3f})   target <= {LIMIT_S:g} s: "
          f"{'met' if ours[0] <= LIMIT_S else 'NOT met'}")
    print(f"  plain numpy loop      {plain[0]:7.3f} s (min {plain[1]:.3f})")
    print(f"  ratio plain / ours    {plain[0] / ours[0]:7.2f}")
    print(f"  same samples: max |difference| at t = 2 = {diff:.2e}")
    print(f"  run_gan per iteration {1e3 * np.median(res.meta['iteration_wall']):.2f} ms (median)")
    return 0 if ours[0] <= LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
