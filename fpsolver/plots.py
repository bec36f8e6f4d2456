"""Figures from Results only (matplotlib, Agg). Every figure is also saved as PDF on request."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .result import Result  # noqa: E402

COLOURS = {"fv": "C0", "fipy": "C1", "particles": "C2", "superposition": "C3", "exact": "k"}


def save_figure(fig, path: str, pdf: bool = False) -> None:
    """Save atomically (temporary name in the same folder, then rename); PDF beside it if asked."""
    folder = os.path.dirname(os.path.abspath(path))
    base, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(folder, f".{base}.part{ext or '.png'}")
    fig.savefig(tmp, dpi=150, bbox_inches="tight")
    os.replace(tmp, path)
    if pdf:
        tmp = os.path.join(folder, f".{base}.part.pdf")
        fig.savefig(tmp, bbox_inches="tight")
        os.replace(tmp, os.path.join(folder, base + ".pdf"))
    plt.close(fig)


def plot_density(res: Result, path: str, pdf: bool = False) -> None:
    """Density snapshots: 1D lines with rho_d dashed; 2D heat maps on a shared colour scale."""
    if res.kind != "density":
        raise ValueError("plot_density needs a density result")
    flow = res.meta.get("flow", "?")
    if res.f is not None:
        return _plot_density_and_logit(res, path, pdf)
    if res.dim == 1:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        x = res.axes[0]
        cmap = plt.get_cmap("viridis")
        for k, (t, rho) in enumerate(zip(res.t, res.rho)):
            ax.plot(x, rho, color=cmap(k / max(len(res.t) - 1, 1)), label=f"t = {t:g}")
        if res.rho_d is not None:
            ax.plot(x, res.rho_d, "k--", lw=1.2, label=r"$\rho_d$")
        ax.set_xlabel("x")
        ax.set_ylabel(r"density $\rho(t, x)$")
        ax.set_title(f"{flow} flow, {res.meta.get('backend', 'fv')} solver")
        ax.legend(fontsize=8)
    else:
        panels = list(zip(res.t, res.rho))
        if res.rho_d is not None:
            panels.append(("target", res.rho_d))
        vmax = max(float(np.max(p[1])) for p in panels)
        ncol = min(len(panels), 5)
        nrow = -(-len(panels) // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(2.8 * ncol + 1.0, 2.8 * nrow), squeeze=False,
                                 layout="constrained", sharex=True, sharey=True)
        x, y = res.axes
        extent = [2 * x[0] - x[1], 2 * x[-1] - x[-2], 2 * y[0] - y[1], 2 * y[-1] - y[-2]]
        for ax in axes.ravel()[len(panels):]:
            ax.axis("off")
        for k, (ax, (t, rho)) in enumerate(zip(axes.ravel(), panels)):
            im = ax.imshow(rho.T, origin="lower", extent=extent, vmin=0, vmax=vmax, cmap="viridis")
            ax.set_title(r"target $\rho_d$" if t == "target" else f"t = {t:g}")
            if k % ncol == 0:
                ax.set_ylabel("y")
            if k >= len(panels) - ncol:
                ax.set_xlabel("x")
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=r"density $\rho$")
        fig.suptitle(f"{flow} flow, {res.meta.get('backend', 'fv')} solver")
    save_figure(fig, path, pdf)


def _plot_density_and_logit(res: Result, path: str, pdf: bool) -> None:
    """Dual-flow results: the density (as plot_density) beside the discriminator logit f; 2D: a row
    of rho heat maps above a row of f heat maps (diverging colours around f = 0, D = 1/2)."""
    flow, kappa = res.meta.get("flow", "?"), res.meta.get("discriminator", {}).get("rate", "?")
    title = f"{flow} generator, discriminator flow (kappa = {kappa:g})" if isinstance(kappa, (int, float)) \
        else f"{flow} generator, discriminator flow"
    cmap = plt.get_cmap("viridis")
    if res.dim == 1:
        fig, (ax, axf) = plt.subplots(1, 2, figsize=(11.0, 4.0), layout="constrained")
        x = res.axes[0]
        for k, (t, rho, f) in enumerate(zip(res.t, res.rho, res.f)):
            colour = cmap(k / max(len(res.t) - 1, 1))
            ax.plot(x, rho, color=colour, label=f"t = {t:g}")
            axf.plot(x, f, color=colour, label=f"t = {t:g}")
        if res.rho_d is not None:
            ax.plot(x, res.rho_d, "k--", lw=1.2, label=r"$\rho_d$")
        ax.set(xlabel="x", ylabel=r"density $\rho(t, x)$")
        axf.set(xlabel="x", ylabel=r"logit $f(t, x)$, $D = \sigma(f)$")
        ax.legend(fontsize=8)
        axf.legend(fontsize=8)
        fig.suptitle(title)
        save_figure(fig, path, pdf)
        return
    n = len(res.t)
    fig, axes = plt.subplots(2, n, figsize=(2.8 * n + 1.5, 5.8), squeeze=False, layout="constrained",
                             sharex=True, sharey=True)
    extent = _extent(res.axes)
    vmax = float(np.max(res.rho))
    fmax = float(np.max(np.abs(res.f))) or 1.0
    for k, t in enumerate(res.t):
        im = axes[0, k].imshow(res.rho[k].T, origin="lower", extent=extent, vmin=0, vmax=vmax, cmap="viridis")
        imf = axes[1, k].imshow(res.f[k].T, origin="lower", extent=extent, vmin=-fmax, vmax=fmax, cmap="RdBu_r")
        axes[0, k].set_title(f"t = {t:g}")
        axes[1, k].set_xlabel("x")
    axes[0, 0].set_ylabel("y")
    axes[1, 0].set_ylabel("y")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label=r"density $\rho$")
    fig.colorbar(imf, ax=axes[1].tolist(), shrink=0.8, label=r"logit $f$")
    fig.suptitle(title)
    save_figure(fig, path, pdf)


# ------------------------------------------------------------------ particles

def _method_colour(res: Result) -> str:
    if res.kind == "density":
        return COLOURS.get(res.meta.get("backend", "fv"), COLOURS["fv"])
    return COLOURS["superposition" if res.meta.get("mode") == "superposition" else "particles"]


def _particle_label(res: Result) -> str:
    n = res.meta.get("N", res.positions.shape[1])
    return f"{res.meta.get('mode', 'particles')} particles, N = {n:,}"


def _coarsening(shape, n: int) -> int:
    """Block size k (a power of 2 dividing every axis, >= 16 blocks per axis) for 2D histograms,
    the smallest giving >= 20 particles per displayed block on average, so the noise is visible
    but does not swamp the picture."""
    k = 1
    while (n * k * k < 20 * np.prod(shape) and all(c % (2 * k) == 0 and c // (2 * k) >= 16
                                                   for c in shape)):
        k *= 2
    return k


def _coarsen(values: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks of cells (for a density: the density of the coarse cells)."""
    nx, ny = values.shape
    return values.reshape(nx // k, k, ny // k, k).mean(axis=(1, 3))


def _extent(axes):
    x, y = axes
    return [2 * x[0] - x[1], 2 * x[-1] - x[-2], 2 * y[0] - y[1], 2 * y[-1] - y[-2]]


def _histograms(res: Result):
    """(grid, [cell histogram per save time]) on the result's grid, or on 100 bins per axis
    spanning the particles when the file carries no grid."""
    from .grid import Grid
    from .metrics import cell_histogram
    if res.axes:
        grid = res.grid
    else:
        lo, hi = res.positions.min(axis=(0, 1)), res.positions.max(axis=(0, 1))
        pad = 1e-9 * np.maximum(hi - lo, 1.0)
        grid = Grid(tuple(lo - pad), tuple(hi + pad), (100,) * res.dim)
    return grid, [cell_histogram(pos, grid) for pos in res.positions]


def plot_particles(res: Result, path: str, pdf: bool = False) -> None:
    """Histogram snapshots of a particle result: 1D steps with rho_d dashed; 2D heat maps on a
    shared colour scale (histogram cells merged in blocks when there are few particles per cell)."""
    if res.kind != "particles":
        raise ValueError("plot_particles needs a particle result")
    grid, hists = _histograms(res)
    title = f"{res.meta.get('flow', '?')} flow, {_particle_label(res)}"
    if res.dim == 1:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        cmap = plt.get_cmap("viridis")
        for k, (t, h) in enumerate(zip(res.t, hists)):
            ax.stairs(h, grid.edges[0], color=cmap(k / max(len(res.t) - 1, 1)), label=f"t = {t:g}")
        if res.rho_d is not None and res.axes:
            ax.plot(res.axes[0], res.rho_d, "k--", lw=1.2, label=r"target $\rho_d$")
        ax.set_xlabel("x")
        ax.set_ylabel("particle histogram (density)")
        ax.set_title(title)
        ax.legend(fontsize=8)
        save_figure(fig, path, pdf)
        return
    k = _coarsening(grid.shape, res.positions.shape[1])
    panels = [(f"t = {t:g}", _coarsen(h, k)) for t, h in zip(res.t, hists)]
    if res.rho_d is not None and res.axes:
        panels.append((r"target $\rho_d$", _coarsen(res.rho_d, k)))
    vmax = max(float(np.max(p[1])) for p in panels)
    ncol = min(len(panels), 5)
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.8 * ncol + 1.0, 2.8 * nrow), squeeze=False,
                             layout="constrained", sharex=True, sharey=True)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for i, (ax, (label, img)) in enumerate(zip(axes.ravel(), panels)):
        im = ax.imshow(img.T, origin="lower", extent=_extent(grid.centres), vmin=0, vmax=vmax,
                       cmap="viridis")
        ax.set_title(label)
        if i % ncol == 0:
            ax.set_ylabel("y")
        if i >= len(panels) - ncol:
            ax.set_xlabel("x")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="particle histogram (density)")
    fig.suptitle(title + (f"; histogram on {k}x{k}-cell blocks" if k > 1 else ""))
    save_figure(fig, path, pdf)


def plot_comparison(pde: Result, particles: Result, rows: list, path: str, pdf: bool = False) -> None:
    """Particles vs PDE per save time (``rows`` from :func:`fpsolver.compare.compare`).

    1D: one panel per time, particle histogram on the PDE cells (steps) over the PDE density
    (line), rho_d dashed, L1 and W1 in the title. 2D: one row per time, histogram | PDE on a
    shared colour scale | their difference on a symmetric scale.
    """
    idx = [int(np.argmin(np.abs(pde.t - r["t"]))) for r in rows]
    if pde.dim == 1:
        _comparison_1d(pde, particles, rows, idx, path, pdf)
    else:
        _comparison_2d(pde, particles, rows, idx, path, pdf)


def _comparison_1d(pde, particles, rows, idx, path, pdf):
    from .metrics import cell_histogram
    grid = pde.grid
    ncol = 2 if len(rows) == 4 else min(len(rows), 3)
    nrow = -(-len(rows) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow + 0.6), squeeze=False,
                             layout="constrained", sharex=True, sharey=True)
    for ax in axes.ravel()[len(rows):]:
        ax.axis("off")
    backend = pde.meta.get("backend", "fv")
    for i, (ax, row, j) in enumerate(zip(axes.ravel(), rows, idx)):
        ax.plot(pde.axes[0], pde.rho[j], color=_method_colour(pde), lw=2.2, alpha=0.6,
                label=f"PDE ({backend})")
        ax.stairs(cell_histogram(particles.positions[i], grid), grid.edges[0],
                  color=_method_colour(particles), lw=0.8, label=_particle_label(particles))
        if pde.rho_d is not None:
            ax.plot(pde.axes[0], pde.rho_d, "k--", lw=1.0, label=r"target $\rho_d$")
        ax.set_title(f"t = {row['t']:g}:  L1 {row['l1']:.2e},  W1 {row['w1']:.2e}", fontsize=9)
        if i % ncol == 0:
            ax.set_ylabel("density")
        if i >= len(rows) - ncol:
            ax.set_xlabel("x")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{pde.meta.get('flow', '?')} flow: particle histogram (on the PDE cells) vs PDE")
    save_figure(fig, path, pdf)


def _comparison_2d(pde, particles, rows, idx, path, pdf):
    from .metrics import cell_histogram
    grid = pde.grid
    k = _coarsening(grid.shape, particles.positions.shape[1])
    hists = [_coarsen(cell_histogram(particles.positions[i], grid), k) for i in range(len(rows))]
    rhos = [_coarsen(pde.rho[j], k) for j in idx]
    vmax = max(max(float(h.max()), float(r.max())) for h, r in zip(hists, rhos))
    dmax = max(float(np.max(np.abs(h - r))) for h, r in zip(hists, rhos)) or 1.0
    fig, axes = plt.subplots(len(rows), 3, figsize=(8.4, 2.8 * len(rows) + 0.8), squeeze=False,
                             layout="constrained", sharex=True, sharey=True)
    ext = _extent(grid.centres)
    for i, row in enumerate(rows):
        a = axes[i]
        im = a[0].imshow(hists[i].T, origin="lower", extent=ext, vmin=0, vmax=vmax, cmap="viridis")
        a[1].imshow(rhos[i].T, origin="lower", extent=ext, vmin=0, vmax=vmax, cmap="viridis")
        dm = a[2].imshow((hists[i] - rhos[i]).T, origin="lower", extent=ext, vmin=-dmax, vmax=dmax,
                         cmap="RdBu_r")
        a[0].set_title(f"particles, t = {row['t']:g}", fontsize=9)
        a[1].set_title(f"PDE ({pde.meta.get('backend', 'fv')}), t = {row['t']:g}", fontsize=9)
        a[2].set_title(f"histogram - PDE\nL1 {row['l1']:.2e}, W1 {row['w1']:.2e}", fontsize=9)
        a[0].set_ylabel("y")
    for a in axes[-1]:
        a.set_xlabel("x")
    fig.colorbar(im, ax=axes[:, :2].ravel().tolist(), location="bottom", shrink=0.8, aspect=35,
                 label="density")
    fig.colorbar(dm, ax=axes[:, 2].tolist(), location="bottom", shrink=0.9, aspect=18,
                 label="histogram - PDE")
    blocks = f", densities on {k}x{k}-cell blocks" if k > 1 else ""
    fig.suptitle(f"{pde.meta.get('flow', '?')} flow: {_particle_label(particles)} vs PDE{blocks} "
                 "(W1 sliced)")
    save_figure(fig, path, pdf)
