"""Study 7: long-time convergence to rho_d at the rate set by the discrete spectral gap.

Linearising u = 1 + phi (MATH.md section 6), the discrete scheme gives
V rho_d,i d phi_i/dt = -beta'(1) (K phi)_i with K the face Laplacian weighted by rho_d at the
faces (K phi)_i = sum_f rho_d,f |sigma_f| / |x_j - x_i| (phi_i - phi_j). The decay rate is set by
lambda_1, the smallest non-zero eigenvalue of the generalised problem

    K phi = lambda diag(rho_d V) phi.

With D = diag(rho_d) and Khat = D^{-1/2} K D^{-1/2} (the scaled matrix the solver stores:
diagonal ``op.ksum``, off-diagonals ``-op.sx``, ``-op.sy``), psi = D^{1/2} phi turns it into the
ordinary symmetric problem Khat psi = lambda V psi, whose null vector is psi = sqrt(rho_d).
lambda_1 is computed from the generalised form, assembled here from rho_d on the faces
(:func:`generalised_gap`), and checked against the solver's scaled matrix (:func:`spectral_gap`).
One backward-Euler step multiplies the slowest mode by 1 / (1 + h beta'(1) lambda_1), so
||rho_t - rho_d||_L1 decays at the rate

    r_pred = ln(1 + h beta'(1) lambda_1) / h.

The prediction needs u ~ 1 everywhere, so the measured rate is the least-squares slope of
-ln ||rho_t - rho_d|| over the longest window where the local rate varies by at most
FLAT_TOL (relative), with the distance above DIST_FLOOR (far above the Newton residual).
"""
from __future__ import annotations

import time

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..densities import Discretised
from ..flows import get_flow
from ..fv import FVOperator, crandall_liggett
from ..grid import Grid
from . import _common as C

RATE_TOL = 0.05
FLAT_TOL = 0.01
DIST_FLOOR = 1e-10
MIN_WINDOW = 20
GAP_TOL = 1e-8   # two assemblies of one symmetric matrix: they agree to eigensolver round-off
ENERGY_FLOOR = 1e-14


def scaled_operator(op: FVOperator) -> sp.csr_matrix:
    """Khat = D^{-1/2} K D^{-1/2} as a sparse symmetric matrix (cells in C order)."""
    nx, ny = op.a.shape
    idx = np.arange(nx * ny).reshape(nx, ny)
    rows, cols, vals = [idx.ravel()], [idx.ravel()], [op.ksum.ravel()]
    for s, i0, i1 in ((op.sx, idx[:-1], idx[1:]), (op.sy, idx[:, :-1], idx[:, 1:])):
        if s.size:
            rows += [i0.ravel(), i1.ravel()]
            cols += [i1.ravel(), i0.ravel()]
            vals += [-s.ravel(), -s.ravel()]
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(nx * ny, nx * ny))


def spectral_gap(op: FVOperator) -> tuple[float, float]:
    """(lambda_0, lambda_1): the two smallest eigenvalues of Khat / V (lambda_0 = 0 up to round-off)."""
    khat = scaled_operator(op) / op.volume
    if khat.shape[0] <= 2000:
        lam = sla.eigh(khat.toarray(), eigvals_only=True, subset_by_index=[0, 1])
    else:
        # shift-invert just below 0: Khat/V - sigma I is positive definite
        lam = np.sort(spla.eigsh(khat.tocsc(), k=2, sigma=-1e-3, which="LM", return_eigenvectors=False))
    return float(lam[0]), float(lam[1])


def generalised_gap(grid: Grid, target: Discretised) -> float:
    """lambda_1 of K phi = lambda diag(rho_d V) phi, K assembled directly from rho_d on the faces.

    (K phi)_i = sum_f rho_d,f |sigma_f| / |x_j - x_i| (phi_i - phi_j), interior faces only; dense in
    small problems, sparse shift-invert otherwise. Independent of the solver's stored arrays.
    """
    idx = np.arange(grid.size).reshape(grid.shape)
    rows, cols, vals = [], [], []
    for a in range(grid.dim):
        h = grid.spacing[a]
        w = (np.exp(target.log_faces[a]) * grid.cell_volume / h**2).ravel()   # |sigma| / h = V / h^2
        i0 = np.take(idx, np.arange(grid.shape[a] - 1), axis=a).ravel()
        i1 = np.take(idx, np.arange(1, grid.shape[a]), axis=a).ravel()
        rows += [i0, i1, i0, i1]
        cols += [i0, i1, i1, i0]
        vals += [w, w, -w, -w]
    k = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(grid.size, grid.size))
    m = np.exp(target.log_cells).ravel() * grid.cell_volume
    if grid.size <= 2000:
        lam = sla.eigh(k.toarray(), np.diag(m), eigvals_only=True, subset_by_index=[0, 1])
    else:
        lam = np.sort(spla.eigsh(k.tocsc(), k=2, M=sp.diags(m).tocsc(), sigma=-1e-3, which="LM",
                                 return_eigenvectors=False))
    return float(lam[1])


def flat_window(t: np.ndarray, dist: np.ndarray) -> tuple[int, int, float]:
    """(i0, i1, rate): the longest run [i0, i1] whose local rates -d ln(dist)/dt vary by at most
    FLAT_TOL relative, dist above DIST_FLOOR; rate = least-squares slope of -ln dist there."""
    ok = dist > DIST_FLOOR
    local = -np.diff(np.log(np.where(ok, dist, 1.0))) / np.diff(t)
    valid = ok[:-1] & ok[1:]
    best = (0, -1)
    for i in range(len(local)):
        if not valid[i]:
            continue
        lo = hi = local[i]
        j = i
        while j + 1 < len(local) and valid[j + 1]:
            lo, hi = min(lo, local[j + 1]), max(hi, local[j + 1])
            if hi - lo > FLAT_TOL * abs(0.5 * (hi + lo)):
                break
            j += 1
        if j - i > best[1] - best[0]:
            best = (i, j)
        if j == len(local) - 1:
            break
    i0, i1 = best[0], best[1] + 1          # rates i..j span the points i..j+1
    if i1 - i0 < MIN_WINDOW:
        return i0, i1, float("nan")
    rate = -np.polyfit(t[i0:i1 + 1], np.log(dist[i0:i1 + 1]), 1)[0]
    return i0, i1, float(rate)


def _cases(quick: bool):
    gauss = (((-8.0,), (8.0,), (400,)), C.gaussian([0.0], [1.0]), C.gaussian([0.7], [1.1]))
    bimodal = (((-4.0,), (4.0,), (400,)), C.bimodal_1d(), C.gaussian([1.0], [0.5]))
    gauss2 = (((-6.0, -6.0), (6.0, 6.0), (64, 64)), C.gaussian([0.0, 0.0], [1.0, 0.7]),
              C.gaussian([0.5, 0.3], [1.1, 0.8]))
    yield "Gaussian 1D", gauss, "js", 0.1, 50.0 if quick else 60.0
    yield "Gaussian 1D", gauss, "kl", 0.02, 20.0 if quick else 25.0
    yield "bimodal 1D", bimodal, "js", 0.1, 60.0 if quick else 150.0
    if not quick:
        yield "Gaussian 1D", gauss, "chi2", 0.1, 20.0
        yield "Gaussian 1D", gauss, "non-saturating", 0.1, 60.0
        yield "bimodal 1D", bimodal, "kl", 0.05, 60.0
        yield "Gaussian 2D", gauss2, "js", 0.1, 40.0


def decay(grid: Grid, target, initial, flow: str, h: float, T: float):
    """(t, ||rho_t - rho_d||_L1, F(rho_t), op, target Discretised) for backward Euler with step h."""
    op, w0, rho_d = C.fv_setup(grid, target, initial)
    n = int(round(T / h))
    st = crandall_liggett(op, flow, w0, h, range(1, n + 1))
    dist = np.array([C.l1(r, rho_d, grid) for r in st.saved_rho])
    from ..densities import discretise
    return np.array(st.saved_t), dist, np.array(st.energy), op, discretise(target, grid)


def study_long_time(quick: bool, out_dir: str) -> dict:
    """Fitted exponential rate of ||rho_t - rho_d||_L1 vs ln(1 + h beta'(1) lambda_1)/h."""
    started = time.perf_counter()
    fig, axes = C.new_figure(3, 1, width=3.1, height=2.9)
    checks, rows = [], []
    for k, (label, (box, target, initial), flow, h, T) in enumerate(_cases(quick)):
        grid = Grid(*box)
        t, dist, energy, op, tdisc = decay(grid, target, initial, flow, h, T)
        lam0, lam1_solver = spectral_gap(op)
        lam1 = generalised_gap(grid, tdisc)
        b1 = get_flow(flow).dbeta_at_one
        pred = np.log1p(h * b1 * lam1) / h
        i0, i1, rate = flat_window(t, dist)
        name = f"{label} {flow}, h = {h:g}"
        checks.append(C.check(f"decay rate, {name}", rate, pred, RATE_TOL, rule="rel"))
        checks.append(C.check(f"lambda_1 of the solver's operator / generalised gap from rho_d, {name}",
                              lam1_solver, lam1, GAP_TOL, rule="rel"))
        rows.append([label, flow, C.fmt(h), C.fmt(lam1, 6), C.fmt(lam1_solver, 6), C.fmt(abs(lam0), 2),
                     C.fmt(b1), C.fmt(pred, 4), C.fmt(rate, 4), f"{t[i0]:g}-{t[i1]:g}",
                     C.fmt(rate / pred - 1.0, 2)])
        colour = f"C{k}"
        axes[0, 0].semilogy(t, dist, color=colour, lw=1.0, label=f"{label} {flow}")
        axes[0, 0].semilogy(t[i0:i1 + 1], dist[i0:i1 + 1], color=colour, lw=3.0, alpha=0.35)
        tt = np.array([t[i0], t[i1]])
        axes[0, 0].semilogy(tt, dist[i0] * np.exp(-pred * (tt - t[i0])) * 2.0, ":", color=colour, lw=1.0)
        # F ~ (u - 1)^2 is computed from O(1) terms: below ENERGY_FLOOR it is round-off
        shown = energy > ENERGY_FLOOR
        axes[0, 1].semilogy(t[shown], energy[shown], color=colour, lw=1.0, label=f"{label} {flow}")
        local = -np.diff(np.log(np.maximum(dist, 1e-300))) / np.diff(t)
        above = (dist[1:] > DIST_FLOOR) & (dist[:-1] > DIST_FLOOR)   # below: round-off, not decay
        axes[0, 2].plot(t[1:][above], local[above] / pred, color=colour, lw=1.0, label=f"{label} {flow}")
    C.style_axes(axes[0, 0], r"time $t$", r"$\|\rho_t - \rho_d\|_{L^1}$", r"distance to $\rho_d$")
    axes[0, 0].legend(fontsize=6)
    C.style_axes(axes[0, 1], r"time $t$", r"energy $F(\rho_t)$", f"energy (above {ENERGY_FLOOR:g})")
    C.style_axes(axes[0, 2], r"time $t$", r"local rate $/ r_{pred}$",
                 r"local rate $-\frac{d}{dt}\ln\|\rho_t-\rho_d\|$ (distance > 1e-10)")
    axes[0, 2].axhspan(1 - RATE_TOL, 1 + RATE_TOL, color="0.85", label=r"$\pm 5\%$")
    axes[0, 2].set_ylim(0.5, 1.5)
    axes[0, 2].legend(fontsize=6)
    figure = C.save(fig, out_dir, "long_time")
    return C.study_result(
        "long_time", "Long-time convergence to rho_d (spectral gap of the discrete operator)", checks, figure,
        ["target", "flow", "h", "lambda_1 (K, diag(rho_d V))", "lambda_1 (solver's Khat/V)", "|lambda_0|", "beta'(1)",
         "predicted rate", "fitted rate", "fit window t", "rel. difference"], rows,
        "Backward Euler. Gaussian: rho_d = N(0, 1) on [-8, 8], rho_0 = N(0.7, 1.1^2) (MATH.md section 6); "
        "bimodal: the demo target on [-4, 4], rho_0 = N(1, 0.5^2)"
        + ("" if quick else "; 2D: rho_d = N(0, diag(1, 0.49)) on [-6, 6]^2, 64^2 cells")
        + ". Left: thick segments mark the fit windows, dotted lines the predicted slopes. Predicted rate "
        "ln(1 + h beta'(1) lambda_1)/h, lambda_1 the spectral gap of the discrete operator, assembled from "
        "rho_d on the faces (generalised problem) and checked against the solver's own scaled matrix; fitted over the window where the local rate is "
        f"flat to {FLAT_TOL:.0%}.", started)
