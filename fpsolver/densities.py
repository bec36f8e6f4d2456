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
    """Data points (n, d); on the grid it is their reflected Gaussian KDE.

    ``use`` says how particles start from them: "resample" (draws with replacement) or
    "as-is" (the points themselves, in their order; N is their number).
    """

    points: np.ndarray
    bandwidth: Optional[float] = None
    use: str = "resample"

    def grid_values(self, grid: Grid) -> np.ndarray:
        b = self.bandwidth if self.bandwidth is not None else kde_bandwidth(self.points, grid)
        return kde_on_grid(self.points, grid, b)

    def sample(self, n, rng, grid):
        """Resampling of the data (with replacement), or the points themselves (``use="as-is"``)."""
        if self.use == "as-is":
            if n != len(self.points):
                raise InputError(f'initial.use = "as-is": the particles are the {len(self.points):,} given '
                                 f"points, so N must be {len(self.points):,} (got {n:,}); leave N unset")
            return np.array(self.points, dtype=float, copy=True)
        return self.points[rng.integers(0, len(self.points), size=n)].copy()


class FunctionDensity(Density):
    """A density given by a Python callable log_pdf(points (M, d)) -> (M,) (unnormalised on the box).

    The grid solvers evaluate it at cell and face centres like the Gaussians. Particles read
    grad log pdf from ``grad_log_pdf`` if given, else by central differences with step h = 1e-5
    of the points' spread per axis (truncation ~ h^2 times the third derivative of log p,
    round-off ~ 1e-16 |log p| / h: about 1e-10 for smooth log-densities of moderate size), and
    start from the density's cell values on the grid (a cell by its mass, then a uniform point
    in it, as for ``grid`` densities).
    """

    analytic = True

    def __init__(self, log_pdf, grad_log_pdf=None, name: str = ""):
        self._log_pdf, self._grad = log_pdf, grad_log_pdf
        self.name = name or getattr(log_pdf, "__qualname__", "log_pdf")

    def __repr__(self) -> str:
        return f"FunctionDensity({self.name})"

    def log_pdf(self, points):
        pts = np.atleast_2d(np.asarray(points, dtype=float))
        try:
            out = np.asarray(self._log_pdf(pts), dtype=float)
        except Exception as exc:
            raise InputError(f"log-density {self.name}: raised {type(exc).__name__}: {exc}") from None
        if out.shape != (pts.shape[0],):
            raise InputError(f"log-density {self.name}: must map points of shape (M, d) to (M,), "
                             f"returned shape {out.shape} for M = {pts.shape[0]}")
        if np.any(np.isnan(out)) or np.any(out == np.inf):
            raise InputError(f"log-density {self.name}: returned NaN or +inf")
        return out

    def grad_log_pdf(self, points):
        pts = np.atleast_2d(np.asarray(points, dtype=float))
        if self._grad is not None:
            g = np.asarray(self._grad(pts), dtype=float)
            if g.shape != pts.shape or not np.all(np.isfinite(g)):
                raise InputError(f"grad log-density {self.name}: must return finite values of shape {pts.shape}")
            return g
        span = np.ptp(pts, axis=0)
        h = 1e-5 * np.where(span > 0, span, 1.0)
        g = np.empty_like(pts)
        for a in range(pts.shape[1]):
            step = np.zeros(pts.shape[1])
            step[a] = h[a]
            g[:, a] = (self.log_pdf(pts + step) - self.log_pdf(pts - step)) / (2 * h[a])
        return g

    def sample(self, n, rng, grid):
        lc = self.log_pdf(grid.points()).reshape(grid.shape)
        return grid.sample_cells(np.exp(lc - lc.max()), n, rng)


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
