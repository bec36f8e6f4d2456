"""The target density rho_d seen by the particles, normalised like the grid solver's.

rho_d and grad log rho_d are tabulated at the cell centres of the KDE grid and read at the
particles by linear interpolation, exactly as rho_hat and grad rho_hat are:

- analytic targets (Gaussian mixtures, uniform): the density's own ``log_pdf`` and
  ``grad_log_pdf`` at the centres, with log rho_d = log pdf - log_norm, ``log_norm`` the grid
  normalisation of :func:`fpsolver.densities.discretise` (so on the case grid the table is
  the rho_d the finite-volume solver uses);
- targets known only on the case grid (``grid`` values, or the KDE of ``samples``): log rho_d
  of the cells, and grad log rho_d = grad rho_d / rho_d by centred differences with mirror
  cells beyond the walls; on another KDE grid both are interpolated linearly from the case grid.

Tabulating costs one evaluation of the target per grid cell instead of one per particle and
step; the interpolation error O(h^2) is below the KDE's own O(b^2) bias, since b >= h.
"""
from __future__ import annotations

import numpy as np

from ..grid import Grid
from .kernels import interp_cells_numpy


class TargetField:
    """log rho_d (``log_rho_d``), rho_d (``rho_d``, may underflow for a narrow target) and
    grad log rho_d (``grad_log``, shape (d, *shape)) on a grid."""

    def __init__(self, case, grid: Grid | None = None):
        grid = case.grid if grid is None else grid
        target, _ = case.discretised()
        if case.target.analytic:
            pts = grid.points()
            log_rd = case.target.log_pdf(pts) - target.log_norm
            grad = case.target.grad_log_pdf(pts).T
        else:
            cg = case.grid
            cell_grad = _grad_log_cells(np.exp(target.log_cells), cg)
            pts = grid.points()
            log_rd = interp_cells_numpy(pts, target.log_cells, cg.lower, cg.spacing)
            grad = np.stack([interp_cells_numpy(pts, cell_grad[a], cg.lower, cg.spacing)
                             for a in range(cg.dim)])
        self.grid = grid
        self.log_rho_d = np.ascontiguousarray(log_rd.reshape(grid.shape))
        self.rho_d = np.exp(self.log_rho_d)
        self.grad_log = np.ascontiguousarray(grad.reshape((grid.dim,) + grid.shape))


def _grad_log_cells(rho: np.ndarray, grid: Grid) -> np.ndarray:
    """grad rho / rho at the cell centres: centred differences, mirror cells beyond the walls."""
    out = []
    for a in range(grid.dim):
        n = rho.shape[a]
        up = np.take(rho, np.minimum(np.arange(1, n + 1), n - 1), axis=a)
        down = np.take(rho, np.maximum(np.arange(-1, n - 1), 0), axis=a)
        out.append((up - down) / (2 * grid.spacing[a]) / rho)
    return np.stack(out)
