"""Figures from Results only. Every figure is also saved as PDF on request.

``density_figure``, ``particles_figure`` and ``comparison_figure`` return matplotlib Figures
(``density_figure`` and ``particles_figure`` draw into a given ``ax`` instead: 1D results all
save times, 2D results the last one); ``plot_*`` save them to a file. Importing this module never
chooses a backend (a notebook keeps its inline one); the command line chooses Agg for itself.
"""
from __future__ import annotations

import os
from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .result import Result

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


def _snapshots_1d(ax: Axes, x, t, values, rho_d, step: bool = False, edges=None) -> None:
    """One line per save time (colour by time), rho_d dashed."""
    cmap = plt.get_cmap("viridis")
    for k, (tk, v) in enumerate(zip(t, values)):
        colour = cmap(k / max(len(t) - 1, 1))
        if step:
            ax.stairs(v, edges, color=colour, label=f"t = {tk:g}")
        else:
            ax.plot(x, v, color=colour, label=f"t = {tk:g}")
    if rho_d is not None:
        ax.plot(x, rho_d, "k--", lw=1.2, label=r"target $\rho_d$")
    ax.set_xlabel("x")
    ax.legend(fontsize=8)


def _heat_map(ax: Axes, values, extent, vmax, title: str):
    """One 2D panel: x horizontal, y vertical (values indexed [ix, iy])."""
    im = ax.imshow(values.T, origin="lower", extent=extent, vmin=0, vmax=vmax, cmap="viridis")
    ax.set_title(title)
    return im


def _panels(panels, extent, title: str, label: str) -> Figure:
    """Heat maps of (title, values) on a shared colour scale, up to 5 per row."""
    vmax = max(float(np.max(p[1])) for p in panels)
    ncol = min(len(panels), 5)
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.8 * ncol + 1.0, 2.8 * nrow), squeeze=False,
                             layout="constrained", sharex=True, sharey=True)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for k, (ax, (name, values)) in enumerate(zip(axes.ravel(), panels)):
        im = _heat_map(ax, values, extent, vmax, name)
        if k % ncol == 0:
            ax.set_ylabel("y")
        if k >= len(panels) - ncol:
            ax.set_xlabel("x")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=label)
    fig.suptitle(title)
    return fig


def density_figure(res: Result, ax: Optional[Axes] = None) -> Figure:
    """Density snapshots rho(t, x): 1D lines with rho_d dashed; 2D heat maps on a shared colour
    scale (with ``ax``: the last save time only). Returns the Figure.

    >>> import numpy as np
    >>> from fpsolver.result import Result
    >>> x = np.linspace(-1, 1, 5)
    >>> r = Result(t=np.array([0.0]), meta={"flow": "js"}, axes=(x,), rho=np.ones((1, 5)) / 2, rho_d=np.ones(5) / 2)
    >>> density_figure(r).axes[0].get_xlabel()
    'x'
    """
    if res.kind != "density":
        raise ValueError("density_figure needs a density result (use particles_figure for particles)")
    title = f"{res.meta.get('flow', '?')} flow, {res.meta.get('backend', 'fv')} solver"
    if res.f is not None and ax is None:
        return _density_and_logit_figure(res)
    if res.dim == 1 or ax is not None:
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.4, 4.0))
        if res.dim == 1:
            _snapshots_1d(ax, res.axes[0], res.t, res.rho, res.rho_d)
            ax.set_ylabel(r"density $\rho(t, x)$")
            ax.set_title(title)
        else:
            im = _heat_map(ax, res.rho[-1], _extent(res.axes), float(np.max(res.rho[-1])),
                           f"{title}, t = {res.t[-1]:g}")
            fig.colorbar(im, ax=ax, label=r"density $\rho$")
        return fig
    panels = [(f"t = {t:g}", rho) for t, rho in zip(res.t, res.rho)]
    if res.rho_d is not None:
        panels.append((r"target $\rho_d$", res.rho_d))
    return _panels(panels, _extent(res.axes), title, r"density $\rho$")


def plot_density(res: Result, path: str, pdf: bool = False) -> None:
    """:func:`density_figure` saved to ``path`` (and a PDF beside it if asked)."""
    save_figure(density_figure(res), path, pdf)


def _density_and_logit_figure(res: Result) -> Figure:
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
        return fig
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
    return fig


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


def particles_figure(res: Result, ax: Optional[Axes] = None) -> Figure:
    """Histogram snapshots of a particle result: 1D steps with rho_d dashed; 2D heat maps on a
    shared colour scale (histogram cells merged in blocks when there are few particles per cell;
    with ``ax``: the last save time only). Returns the Figure."""
    if res.kind != "particles":
        raise ValueError("particles_figure needs a particle result (use density_figure for densities)")
    grid, hists = _histograms(res)
    title = f"{res.meta.get('flow', '?')} flow, {_particle_label(res)}"
    rho_d = res.rho_d if (res.rho_d is not None and res.axes) else None
    if res.dim == 1:
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.4, 4.0))
        _snapshots_1d(ax, res.axes[0] if res.axes else None, res.t, hists, rho_d, step=True, edges=grid.edges[0])
        ax.set_ylabel("particle histogram (density)")
        ax.set_title(title)
        return fig
    k = _coarsening(grid.shape, res.positions.shape[1])
    if ax is not None:
        h = _coarsen(hists[-1], k)
        im = _heat_map(ax, h, _extent(grid.centres), float(np.max(h)), f"{title}, t = {res.t[-1]:g}")
        ax.figure.colorbar(im, ax=ax, label="particle histogram (density)")
        return ax.figure
    panels = [(f"t = {t:g}", _coarsen(h, k)) for t, h in zip(res.t, hists)]
    if rho_d is not None:
        panels.append((r"target $\rho_d$", _coarsen(rho_d, k)))
    return _panels(panels, _extent(grid.centres), title + (f"; histogram on {k}x{k}-cell blocks" if k > 1 else ""),
                   "particle histogram (density)")


def plot_particles(res: Result, path: str, pdf: bool = False) -> None:
    """:func:`particles_figure` saved to ``path`` (and a PDF beside it if asked)."""
    save_figure(particles_figure(res), path, pdf)


def plot_comparison(pde: Result, particles: Result, rows: list, path: str, pdf: bool = False) -> None:
    """:func:`comparison_figure` saved to ``path`` (and a PDF beside it if asked)."""
    save_figure(comparison_figure(pde, particles, rows), path, pdf)


def comparison_figure(pde: Result, particles: Result, rows: list) -> Figure:
    """Particles vs PDE per save time (``rows`` from :func:`fpsolver.compare.compare`); the Figure.

    1D: one panel per time, particle histogram on the PDE cells (steps) over the PDE density
    (line), rho_d dashed, L1 and W1 in the title. 2D: one row per time, histogram | PDE on a
    shared colour scale | their difference on a symmetric scale.
    """
    idx = [int(np.argmin(np.abs(pde.t - r["t"]))) for r in rows]
    if pde.dim == 1:
        return _comparison_1d(pde, particles, rows, idx)
    return _comparison_2d(pde, particles, rows, idx)


def _comparison_1d(pde, particles, rows, idx) -> Figure:
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
    return fig


def _comparison_2d(pde, particles, rows, idx) -> Figure:
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
    return fig
