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
