"""Study 4: energy dissipation, mass conservation and positivity, for every flow preset.

Backward Euler on the finite-volume scheme (MATH.md section 3) has, for every preset and every
step size, exactly conserved mass (flux form; what is left is the Newton residual), rho > 0
(the unknown is log u) and a non-increasing discrete energy F^n = sum_i |K_i| rho_d,i f(u_i^n).
Checks per preset: the largest relative energy change per step, max_n (F^{n+1} - F^n) / F^n,
must not exceed (N + 64) eps (N cells: the worst-case rounding of the recursive sum that computes
F; 64 eps: twice the tested accuracy of each cell's f); the mass after n steps must differ from
the initial mass by at most the Newton residuals sum_k sum_i |R_i^k| of those steps (the flux
form conserves mass exactly, so that is all a step can change) plus the rounding 2 N eps M of the
two mass sums; min rho > 0.

1D: the demo case (rho_0 = N(1, 0.5^2) against the bimodal target: u ~ e^-37 at the left wall,
where the degenerate presets chi2 and non-saturating, beta'(0) = 0, barely move). 2D: rho_0 with
tails comparable to rho_d's (log u within about +-20).
"""
from __future__ import annotations

import time

import numpy as np

from ..case import Case
from ..flows import PRESETS
from ..fv import solve_case
from . import _common as C

EPS = np.finfo(float).eps


def _cases(quick: bool):
    one = {"domain": {"lower": [-4.0], "upper": [4.0], "cells": [400]},
           "target": {"kind": "gaussian_mixture", "components": [
               {"weight": 0.5, "mean": [-1.5], "std": [0.5]}, {"weight": 0.5, "mean": [1.5], "std": [0.5]}]},
           "initial": {"kind": "gaussian", "mean": [1.0], "std": [0.5]}}
    T1, dt1 = (2.0, 0.01) if quick else (4.0, 0.01)
    yield "1D", one, dt1, T1
    if not quick:
        two = {"domain": {"lower": [-4.0, -4.0], "upper": [4.0, 4.0], "cells": [48, 48]},
               "target": {"kind": "gaussian_mixture", "components": [
                   {"weight": 0.5, "mean": [-1.5, 0.0], "std": [0.5, 0.5]},
                   {"weight": 0.5, "mean": [1.5, 0.5], "cov": [[0.3, 0.1], [0.1, 0.4]]}]},
               "initial": {"kind": "gaussian", "mean": [0.0, -0.5], "std": [0.7, 0.7]}}
        yield "2D", two, 0.02, 2.0


def run_preset(spec: dict, flow: str, dt: float, T: float):
    """Solve with every step saved; return (t, energy, relative mass error, min rho) per step."""
    n = int(round(T / dt))
    case = Case.from_dict({**spec, "flow": {"kind": flow},
                           "time": {"dt": dt, "save_times": [dt * k for k in range(1, n + 1)]}},
                          source=f"energy study ({flow})")
    res = solve_case(case)
    mass = np.array(res.meta["mass"])
    min_rho = res.rho.reshape(len(res.t), -1).min(axis=1)
    # what theory allows the mass to move by: the Newton residuals so far, plus the sums' rounding
    allowed = (np.concatenate([[0.0], np.cumsum(res.meta["newton_mass_residual"])])
               + 2 * case.grid.size * EPS * mass[0]) / mass[0]
    return case, res.t, np.array(res.meta["energy"]), np.abs(mass - mass[0]) / mass[0], min_rho, allowed


def study_energy(quick: bool, out_dir: str) -> dict:
    """Energy F(rho_t) (monotone), mass error and min rho over time, every preset."""
    started = time.perf_counter()
    fig, axes = C.new_figure(3, 1, width=3.0, height=2.8)
    checks, rows = [], []
    for dim, spec, dt, T in _cases(quick):
        for flow in PRESETS:
            case, t, energy, mass_err, min_rho, allowed = run_preset(spec, flow, dt, T)
            rel_change = np.max(np.diff(energy) / energy[:-1])
            bound = (case.grid.size + 64) * EPS
            checks.append(C.check(f"max relative energy change per step, {dim} {flow}", rel_change, bound, rule="le"))
            checks.append(C.check(f"mass error over what the Newton residuals and rounding allow, {dim} {flow}",
                                  float(np.max(mass_err / allowed)), 1.0, rule="le"))
            checks.append(C.check(f"min rho over all steps, {dim} {flow}", min_rho.min(), 0.0, rule="gt"))
            rows.append([dim, flow, C.fmt(dt), len(t) - 1, C.fmt(energy[0]), C.fmt(energy[-1]),
                         C.fmt(rel_change), C.fmt(mass_err.max()), C.fmt(min_rho.min())])
            style = {"color": C.FLOW_COLOURS[flow], "linestyle": "-" if dim == "1D" else "--"}
            axes[0, 0].plot(t, energy, label=f"{dim} {flow}", **style)
            # exact zeros (mass unchanged to the last bit) are drawn at 1e-17
            axes[0, 1].plot(t, np.maximum(mass_err, 1e-17), **style)
            axes[0, 2].plot(t, min_rho, **style)
    C.style_axes(axes[0, 0], r"time $t$", r"energy $F(\rho_t)$", "energy (non-increasing)")
    axes[0, 0].set_yscale("log")
    axes[0, 0].legend(fontsize=6, ncol=1)
    C.style_axes(axes[0, 1], r"time $t$", r"$|M(t) - M(0)| / M(0)$", "mass error")
    axes[0, 1].set_yscale("log")
    axes[0, 1].plot(t, allowed, "k:", lw=1.0, label=r"Newton residuals + $2N\varepsilon$ (last run)")
    axes[0, 1].legend(fontsize=6)
    C.style_axes(axes[0, 2], r"time $t$", r"$\min_x \rho(t, x)$", "positivity")
    axes[0, 2].set_yscale("log")
    figure = C.save(fig, out_dir, "energy")
    return C.study_result(
        "energy", "Energy dissipation, mass conservation and positivity (every preset)", checks, figure,
        ["dim", "flow", "dt", "steps", "F(rho_0)", "F(rho_T)", "max dF/F per step", "mass error", "min rho"],
        rows, "Backward Euler; 1D: the demo case (bimodal target, rho_0 = N(1, 0.5^2), 400 cells)"
        + ("" if quick else "; 2D: two-mode target, rho_0 = N((0, -0.5), 0.7^2 I), 48x48 cells")
        + ". The energy bound is N eps, the worst-case rounding error of summing N cells; the mass bound after n "
        "steps is n N eps.", started)
