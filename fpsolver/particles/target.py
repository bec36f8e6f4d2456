"""The target density rho_d seen by the particles, normalised like the grid solver's.

Analytic targets (Gaussian mixtures, uniform) are evaluated exactly at the particles,

    log rho_d(x) = log pdf(x) - log_norm,

with ``log_norm`` the grid normalisation of :func:`fpsolver.densities.discretise`, so that
rho_d at a cell centre is the value the finite-volume solver uses. Targets known only on the
grid (``grid`` values, or the kernel density estimate of ``samples``) are tabulated: log rho_d
on the cell centres and grad log rho_d = grad rho_d / rho_d by centred differences with
reflecting walls, both interpolated linearly.
"""
from __future__ import annotations

import numpy as np

from ..densities import GaussianMixture, Uniform
from . import kernels

MIXTURE, TABLE = 0, 1


class TargetField:
    """log rho_d and grad log rho_d anywhere in the box, as kernel arguments and in numpy."""

    def __init__(self, case):
        target, _ = case.discretised()
        grid, d = case.grid, case.grid.dim
        self.kind = TABLE
        self.logw = np.zeros(1)
        self.means = np.zeros((1, d))
        self.prec = np.zeros((1, d, d))
        self.t_lo = np.array(grid.lower, float)
        self.t_h = np.array(grid.spacing, float)
        if isinstance(case.target, GaussianMixture):
            t = case.target
            self.kind = MIXTURE
            self.prec = np.linalg.inv(t.covs)
            logdet = np.linalg.slogdet(t.covs)[1]
            self.logw = np.log(t.weights) - 0.5 * (d * np.log(2 * np.pi) + logdet) - target.log_norm
            self.means = np.array(t.means, float)
        elif isinstance(case.target, Uniform):
            self.kind = MIXTURE  # one flat "component": log rho_d = -log_norm, zero gradient
            self.logw = np.array([-target.log_norm])
        log_cells = target.log_cells.reshape(grid.shape if d == 2 else (grid.shape[0], 1))
        self.t_logrho = np.ascontiguousarray(log_cells)
        self.t_grad = np.ascontiguousarray(_grad_log_cells(np.exp(target.log_cells), grid)
                                           .reshape((d,) + self.t_logrho.shape))
        self.grid = grid

    def kernel_args(self):
        return (self.kind, self.logw, self.means, self.prec, self.t_logrho, self.t_grad,
                self.t_lo, self.t_h)

    def log_grad_numpy(self, x: np.ndarray):
        """(log rho_d, grad log rho_d) at points x (M, d), plain numpy."""
        if self.kind == MIXTURE:
            return kernels.mixture_log_grad_numpy(x, self.logw, self.means, self.prec)
        shape = self.grid.shape
        lo, h = self.grid.lower, self.grid.spacing
        lr = kernels.interp_cells_numpy(x, self.t_logrho.reshape(shape), lo, h)
        g = np.stack([kernels.interp_cells_numpy(x, self.t_grad[a].reshape(shape), lo, h)
                      for a in range(self.grid.dim)], axis=1)
        return lr, g


def _grad_log_cells(rho: np.ndarray, grid) -> np.ndarray:
    """grad rho / rho at the cell centres: centred differences, mirror cells beyond the walls."""
    out = []
    for a in range(grid.dim):
        n = rho.shape[a]
        up = np.take(rho, np.minimum(np.arange(1, n + 1), n - 1), axis=a)
        down = np.take(rho, np.maximum(np.arange(-1, n - 1), 0), axis=a)
        out.append((up - down) / (2 * grid.spacing[a]) / rho)
    return np.stack(out)
