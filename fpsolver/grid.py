"""Uniform cell-centred grids on a box in 1D or 2D.

Cells are indexed ``[ix]`` or ``[ix, iy]`` (x first); every density on a grid is an array
of cell-centre values of that shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Grid:
    """Box ``[lower, upper]`` split into ``cells`` equal cells per axis."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    cells: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "lower", tuple(float(v) for v in self.lower))
        object.__setattr__(self, "upper", tuple(float(v) for v in self.upper))
        object.__setattr__(self, "cells", tuple(int(v) for v in self.cells))
        if not (len(self.lower) == len(self.upper) == len(self.cells)) or self.dim not in (1, 2):
            raise ValueError("Grid needs lower, upper and cells of equal length 1 or 2")
        if any(n < 2 for n in self.cells) or any(b <= a for a, b in zip(self.lower, self.upper)):
            raise ValueError("Grid needs at least 2 cells per axis and lower < upper")

    @property
    def dim(self) -> int:
        return len(self.cells)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.cells

    @property
    def size(self) -> int:
        return int(np.prod(self.cells))

    @cached_property
    def spacing(self) -> tuple[float, ...]:
        return tuple((b - a) / n for a, b, n in zip(self.lower, self.upper, self.cells))

    @property
    def cell_volume(self) -> float:
        return float(np.prod(self.spacing))

    @cached_property
    def centres(self) -> tuple[np.ndarray, ...]:
        """Cell-centre coordinates per axis."""
        return tuple(a + (np.arange(n) + 0.5) * d
                     for a, n, d in zip(self.lower, self.cells, self.spacing))

    @cached_property
    def edges(self) -> tuple[np.ndarray, ...]:
        """Cell-edge coordinates per axis (n + 1 values)."""
        return tuple(np.linspace(a, b, n + 1) for a, b, n in zip(self.lower, self.upper, self.cells))

    def points(self) -> np.ndarray:
        """All cell centres as an (N, d) array in C order of the ``[ix, iy]`` index."""
        mesh = np.meshgrid(*self.centres, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def face_points(self, axis: int) -> np.ndarray:
        """Centres of the interior faces normal to ``axis``, as (M, d) points.

        Their C-order layout is that of an array of shape ``cells`` with ``cells[axis]``
        reduced by one: face ``k`` along ``axis`` lies between cells ``k`` and ``k + 1``.
        """
        axes = list(self.centres)
        axes[axis] = self.edges[axis][1:-1]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def face_shape(self, axis: int) -> tuple[int, ...]:
        shape = list(self.cells)
        shape[axis] -= 1
        return tuple(shape)

    def sample_cells(self, masses: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """n points (n, d): a cell drawn with probability proportional to ``masses`` (cell
        array, non-negative), then a uniform position inside it: exact samples of a
        piecewise-constant density."""
        cdf = np.cumsum(np.asarray(masses, dtype=float).ravel())
        flat = np.minimum(np.searchsorted(cdf, rng.uniform(0.0, cdf[-1], size=n), side="right"),
                          self.size - 1)
        idx = np.unravel_index(flat, self.shape)
        return np.stack([self.edges[a][idx[a]] + rng.uniform(size=n) * self.spacing[a]
                         for a in range(self.dim)], axis=1)

    def integrate(self, values: np.ndarray) -> float:
        """Midpoint-rule integral of cell values: sum(values) * |K|."""
        return float(np.sum(values) * self.cell_volume)

    def to_dict(self) -> dict:
        return {"lower": list(self.lower), "upper": list(self.upper), "cells": list(self.cells)}

    @classmethod
    def from_axes(cls, *axes: np.ndarray) -> "Grid":
        """Rebuild a grid from its cell centres (as stored in a Result)."""
        lower, upper, cells = [], [], []
        for c in axes:
            c = np.asarray(c, dtype=float)
            d = (c[-1] - c[0]) / (len(c) - 1)
            lower.append(c[0] - d / 2)
            upper.append(c[-1] + d / 2)
            cells.append(len(c))
        return cls(tuple(lower), tuple(upper), tuple(cells))
