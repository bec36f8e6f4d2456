"""The data density rho_d as the GAN loop sees it: log rho_d, grad log rho_d at any point, and samples.

rho_d is the case's target truncated to the box and renormalised (MATH.md notation), exactly the
rho_d of the grid solver: analytic targets give log rho_d = log pdf - log_norm (``log_norm`` from
:func:`fpsolver.densities.discretise`); targets known on the grid only (``grid`` values, the KDE of
``samples``) are read from the case cells by linear interpolation (:class:`~fpsolver.particles.target.TargetField`).
Only the exact discriminator uses the density; trained discriminators see ``sample`` alone.
"""
from __future__ import annotations

import numpy as np

from ..particles.kernels import interp_cells_numpy, interp_field_numpy
from ..particles.target import TargetField


class GanTarget:
    """log rho_d(x), grad log rho_d(x) for points x (n, d), and n exact samples of rho_d."""

    def __init__(self, case):
        self.case, self.grid = case, case.grid
        target, _ = case.discretised()
        self.log_norm = float(target.log_norm)
        self.analytic = bool(case.target.analytic)
        if not self.analytic:
            self._field = TargetField(case)

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log rho_d at x (n, d), shape (n,)."""
        if self.analytic:
            return self.case.target.log_pdf(x) - self.log_norm
        g = self.grid
        return interp_cells_numpy(x, self._field.log_rho_d, np.asarray(g.lower), np.asarray(g.spacing))

    def grad_log_pdf(self, x: np.ndarray) -> np.ndarray:
        """grad log rho_d at x (n, d), shape (n, d)."""
        if self.analytic:
            return self.case.target.grad_log_pdf(x)
        g = self.grid
        return interp_field_numpy(x, self._field.grad_log, np.asarray(g.lower), np.asarray(g.spacing))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n samples of rho_d on the box, shape (n, d)."""
        return np.asarray(self.case.target.sample(n, rng, self.grid), dtype=float).reshape(n, self.grid.dim)


def cell_quantiles(cells: np.ndarray, grid, p: np.ndarray) -> np.ndarray:
    """F^{-1}(p) of a 1D cell density (piecewise constant: its CDF is linear inside each cell)."""
    h = grid.spacing[0]
    cdf = np.concatenate([[0.0], np.cumsum(np.asarray(cells, dtype=float).reshape(-1) * h)])
    cdf /= cdf[-1]
    edges = grid.lower[0] + h * np.arange(len(cdf))
    return np.interp(p, cdf, edges)
