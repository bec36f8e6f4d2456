"""Manufactured solutions for verifying the finite-volume solver (MATH.md sections 3 and 6).

With a chosen smooth ratio u* = 1 + A(t) phi(x), where

    phi(x) = prod_k cos(pi (x_k - L_k) / (U_k - L_k))      (zero normal derivative at walls),

rho* = rho_d u* satisfies the no-flux condition, and the divergence of its flux is analytic:

    div(rho_d grad beta(u*)) = rho_d [ A beta'(u*) (grad log rho_d . grad phi + lap phi)
                                       + A^2 beta''(u*) |grad phi|^2 ].

:func:`manufactured_resolvent_problem` builds the resolvent problem (I + hA) rho* = f, so one
backward-Euler step from ``rhs = f`` must return rho* up to the spatial
discretisation error alone (no time error). :func:`manufactured_source` gives the source
S = d_t rho* - div(rho_d grad beta(rho*/rho_d)) for a time-dependent rho*. rho_d is the target
normalised like the solver's (unit discrete mass), so everything matches the discrete operator.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .densities import Density, discretise
from .flows import Flow, get_flow
from .fv.operators import FVOperator
from .grid import Grid


@dataclass
class ManufacturedResolvent:
    """(I + hA) rho* = f on a grid: the operator, the scaled right-hand side, the answer."""

    op: FVOperator
    flow: Flow
    h: float
    rhs: np.ndarray         # f, shape op.shape
    rho_exact: np.ndarray   # rho* at cell centres, shape op.shape

    def l1_error(self, w: np.ndarray) -> float:
        """sum_i |K_i| |rho_d,i e^{w_i} - rho*_i|."""
        return float(np.sum(np.abs(self.op.rho(w) - self.rho_exact)) * self.op.volume)


def cosine_mode(grid: Grid, points: np.ndarray):
    """phi, grad phi (M, d) and lap phi of prod_k cos(pi (x_k - L_k)/(U_k - L_k)) at points."""
    k = np.pi / (np.array(grid.upper) - np.array(grid.lower))
    arg = k * (points - np.array(grid.lower))
    c, s = np.cos(arg), np.sin(arg)
    phi = np.prod(c, axis=1)
    grad = np.empty_like(points)
    for ax in range(grid.dim):
        others = np.prod(np.delete(c, ax, axis=1), axis=1)
        grad[:, ax] = -k[ax] * s[:, ax] * others
    return phi, grad, -np.sum(k**2) * phi


def _d2beta(flow: Flow, u: np.ndarray) -> np.ndarray:
    if flow.d2beta is not None:
        return np.asarray(flow.d2beta(u), dtype=float) * np.ones_like(u)
    d = 1e-3 * np.maximum(np.abs(u), 1e-3)  # 4th-order central difference: error ~ d^4
    return (-flow.dbeta(u + 2 * d) + 8 * flow.dbeta(u + d) - 8 * flow.dbeta(u - d)
            + flow.dbeta(u - 2 * d)) / (12 * d)


def _div_flux_over_rho_d(flow, grid, points, grad_log_rho_d, amplitude):
    """(1/rho_d) div(rho_d grad beta(1 + A phi)) and u* = 1 + A phi at points."""
    phi, gphi, lap = cosine_mode(grid, points)
    u = 1.0 + amplitude * phi
    db = np.asarray(flow.dbeta(u), dtype=float) * np.ones_like(u)
    div = (amplitude * db * (np.sum(grad_log_rho_d * gphi, axis=1) + lap)
           + amplitude**2 * _d2beta(flow, u) * np.sum(gphi**2, axis=1))
    return div, u


def manufactured_resolvent_problem(target: Density, grid: Grid, flow, h: float,
                                   amplitude: float = 0.5) -> ManufacturedResolvent:
    """The resolvent problem rho* - h div(rho_d grad beta(rho*/rho_d)) = f, rho* = rho_d(1 + A phi).

    ``target`` must be analytic (log_pdf and grad_log_pdf); |amplitude| < 1 keeps u* > 0.
    """
    if not abs(amplitude) < 1:
        raise ValueError("amplitude must satisfy |A| < 1 so that u* = 1 + A phi > 0")
    flow = get_flow(flow)
    disc = discretise(target, grid)
    op = FVOperator.build(grid, disc)
    pts = grid.points()
    div, u = _div_flux_over_rho_d(flow, grid, pts, target.grad_log_pdf(pts), amplitude)
    shape = op.shape
    rho_d = np.exp(op.log_rho_d)
    rhs = rho_d * (u - h * div).reshape(shape)      # f = rho_d (u* - h div / rho_d)
    return ManufacturedResolvent(op, flow, float(h), rhs, rho_d * u.reshape(shape))


def manufactured_source(target: Density, grid: Grid, flow, amplitude: Callable[[float], float],
                        d_amplitude: Callable[[float], float]):
    """Source and exact solution for rho*(x, t) = rho_d (1 + A(t) phi(x)).

    Returns ``(source, rho_exact)``: callables of t giving cell arrays (grid shape) of
    S = rho_d (A'(t) phi - (1/rho_d) div(rho_d grad beta(u*))) and of rho*.
    """
    flow = get_flow(flow)
    disc = discretise(target, grid)
    pts = grid.points()
    glog = target.grad_log_pdf(pts)
    rho_d = np.exp(disc.log_cells).ravel()
    phi = cosine_mode(grid, pts)[0]

    def source(t: float) -> np.ndarray:
        div, _ = _div_flux_over_rho_d(flow, grid, pts, glog, amplitude(t))
        return (rho_d * (d_amplitude(t) * phi - div)).reshape(grid.shape)

    def rho_exact(t: float) -> np.ndarray:
        return (rho_d * (1.0 + amplitude(t) * phi)).reshape(grid.shape)

    return source, rho_exact
