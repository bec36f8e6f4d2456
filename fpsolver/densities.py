"""Densities on the box: analytic (Gaussian mixtures, uniform), sampled data, grid values.

Everything is evaluated in log space (log-sum-exp for mixtures), so a cell 40 standard
deviations out has a finite log-density even where the density itself underflows. A density
is truncated to the box and renormalised to unit discrete mass on the grid:
sum_i |K| rho_i = 1 (midpoint rule, so the steady state rho_d of the scheme has unit mass
exactly).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.special import logsumexp

from .errors import InputError
from .grid import Grid
from .kde import kde_on_grid, kde_bandwidth


class Density:
    """Interface: log density (unnormalised on the box), its gradient, and sampling."""

    analytic = False

    def log_pdf(self, points: np.ndarray) -> np.ndarray:  # (M, d) -> (M,)
        raise NotImplementedError

    def grad_log_pdf(self, points: np.ndarray) -> np.ndarray:  # (M, d) -> (M, d)
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator, grid: Grid) -> np.ndarray:
        raise NotImplementedError


@dataclass
class GaussianMixture(Density):
    """sum_k w_k N(mean_k, cov_k), weights normalised; a single Gaussian is k = 1."""

    weights: np.ndarray  # (k,)
    means: np.ndarray    # (k, d)
    covs: np.ndarray     # (k, d, d), symmetric positive definite
    analytic = True

    def __post_init__(self):
        self.weights = np.asarray(self.weights, float) / np.sum(self.weights)
        self.means = np.atleast_2d(np.asarray(self.means, float))
        self.covs = np.asarray(self.covs, float).reshape(len(self.weights), self.means.shape[1], -1)
        self._chol = np.linalg.cholesky(self.covs)
        self._prec = np.linalg.inv(self.covs)
        d = self.means.shape[1]
        logdet = 2 * np.sum(np.log(np.diagonal(self._chol, axis1=1, axis2=2)), axis=1)
        self._lognorm = np.log(self.weights) - 0.5 * (d * np.log(2 * np.pi) + logdet)

    def _component_logs(self, points):
        diff = points[:, None, :] - self.means[None, :, :]           # (M, k, d)
        maha = np.einsum("mki,kij,mkj->mk", diff, self._prec, diff)
        return self._lognorm[None, :] - 0.5 * maha, diff

    def log_pdf(self, points):
        logs, _ = self._component_logs(np.atleast_2d(points))
        return logsumexp(logs, axis=1)

    def grad_log_pdf(self, points):
        logs, diff = self._component_logs(np.atleast_2d(points))
        resp = np.exp(logs - logsumexp(logs, axis=1, keepdims=True))  # responsibilities
        g = -np.einsum("kij,mkj->mki", self._prec, diff)
        return np.einsum("mk,mki->mi", resp, g)

    def sample(self, n, rng, grid):
        """Exact samples of the mixture truncated to the box (rejection)."""
        lo, hi = np.array(grid.lower), np.array(grid.upper)
        out = np.empty((0, grid.dim))
        tries = 0
        while out.shape[0] < n:
            m = max(2 * (n - out.shape[0]), 1000)
            comp = rng.choice(len(self.weights), size=m, p=self.weights)
            z = rng.standard_normal((m, grid.dim))
            pts = self.means[comp] + np.einsum("mij,mj->mi", self._chol[comp], z)
            pts = pts[np.all((pts >= lo) & (pts <= hi), axis=1)]
            out = np.concatenate([out, pts])
            tries += 1
            if tries > 1000:
                raise InputError("cannot sample the Gaussian (mixture): the box holds almost none of its mass")
        return out[:n]


@dataclass
class Uniform(Density):
    """The uniform density on the whole box."""

    dim: int
    analytic = True

    def log_pdf(self, points):
        return np.zeros(np.atleast_2d(points).shape[0])

    def grad_log_pdf(self, points):
        return np.zeros_like(np.atleast_2d(points), dtype=float)

    def sample(self, n, rng, grid):
        return rng.uniform(grid.lower, grid.upper, size=(n, grid.dim))


@dataclass
class GridDensity(Density):
    """Positive cell values on a given grid (the ``grid`` kind, and KDEs of samples)."""

    values: np.ndarray

    def log_cells(self) -> np.ndarray:
        return np.log(self.values)

    def sample(self, n, rng, grid):
        """Cells drawn by their mass, then a uniform position inside the cell."""
        return grid.sample_cells(self.values, n, rng)


@dataclass
class SampleDensity(Density):
    """Data points (n, d); on the grid it is their reflected Gaussian KDE."""

    points: np.ndarray
    bandwidth: Optional[float] = None

    def grid_values(self, grid: Grid) -> np.ndarray:
        b = self.bandwidth if self.bandwidth is not None else kde_bandwidth(self.points, grid)
        return kde_on_grid(self.points, grid, b)

    def sample(self, n, rng, grid):
        """Resampling of the data (with replacement)."""
        return self.points[rng.integers(0, len(self.points), size=n)].copy()


@dataclass
class Discretised:
    """A density on a grid: normalised log cell values and log values on interior faces."""

    log_cells: np.ndarray                  # shape grid.shape
    log_faces: tuple[np.ndarray, ...]      # per axis, shape grid.face_shape(axis)
    log_norm: float                        # log of the box mass removed by normalisation

    @property
    def cells(self) -> np.ndarray:
        return np.exp(self.log_cells)


def discretise(density: Density, grid: Grid) -> Discretised:
    """Cell and face log-values of ``density`` on ``grid``, renormalised to unit mass.

    Analytic densities are evaluated at the face centres (rho_d at the face, MATH.md section 3);
    grid densities use the arithmetic mean of the two neighbouring cells.
    """
    if isinstance(density, SampleDensity):
        density = GridDensity(density.grid_values(grid))
    if isinstance(density, GridDensity):
        lc = density.log_cells()
        faces = []
        for ax in range(grid.dim):
            a = np.take(lc, np.arange(grid.shape[ax] - 1), axis=ax)
            b = np.take(lc, np.arange(1, grid.shape[ax]), axis=ax)
            faces.append(np.logaddexp(a, b) - np.log(2.0))
    else:
        lc = density.log_pdf(grid.points()).reshape(grid.shape)
        faces = [density.log_pdf(grid.face_points(ax)).reshape(grid.face_shape(ax))
                 for ax in range(grid.dim)]
    log_norm = float(logsumexp(lc) + np.log(grid.cell_volume))
    return Discretised(lc - log_norm, tuple(f - log_norm for f in faces), log_norm)
