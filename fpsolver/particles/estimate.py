"""Kernel density estimate of the particles and its gradient on an auxiliary grid.

    rho_hat = phi_b * (binned particles) / (N |K|),   grad rho_hat = (grad phi_b) * (binned) / (N |K|),

phi_b the Gaussian of standard deviation b, with reflection at the walls (the even extension
of the cell values, MATH.md section 5). The even extension of cell-centre data is exactly
the DCT-II basis, so the convolution is a DCT, a multiplication by exp(-(omega_k b)^2 / 2),
omega_k = pi k / L, and an inverse DCT; the derivative of a cosine series is a sine series,
so grad rho_hat is the inverse DST of -omega_k times the same coefficients. This is the same
estimate as :func:`fpsolver.kde.gaussian_smooth_reflect` (FFT of the even extension) at half
the transform length; tests check both against each other.
"""
from __future__ import annotations

import os

import numpy as np
import scipy.fft as sfft

from ..grid import Grid
from ..kde import linear_binning_numba

_WORKERS = max(1, min(os.cpu_count() or 1, 8))


def _omega(grid: Grid, axis: int) -> np.ndarray:
    n = grid.shape[axis]
    return np.pi * np.arange(n) / (n * grid.spacing[axis])


def smooth_with_gradient(counts: np.ndarray, grid: Grid, bandwidth: float):
    """(phi_b * c, grad phi_b * c) at the cell centres, reflecting walls, by DCT/DST.

    Returns ``(rho, grad)`` with ``grad`` of shape (d, *grid.shape). Unnormalised: the sum of
    ``rho`` equals the sum of ``counts``.
    """
    coef = sfft.dctn(counts, type=2, workers=_WORKERS)
    for a in range(grid.dim):
        shape = [1] * grid.dim
        shape[a] = grid.shape[a]
        coef *= np.exp(-0.5 * (_omega(grid, a) * bandwidth) ** 2).reshape(shape)
    rho = sfft.idctn(coef, type=2, workers=_WORKERS)
    grads = []
    for a in range(grid.dim):
        shape = [1] * grid.dim
        shape[a] = grid.shape[a]
        # d/dx of the cosine series: sine series with coefficients -omega_k a_k, shifted by one
        sine = np.zeros_like(coef)
        src = np.take(coef * (-_omega(grid, a)).reshape(shape), np.arange(1, grid.shape[a]), axis=a)
        sl = [slice(None)] * grid.dim
        sl[a] = slice(0, grid.shape[a] - 1)
        sine[tuple(sl)] = src
        g = sfft.idst(sine, type=2, axis=a, workers=_WORKERS)
        for other in range(grid.dim):
            if other != a:
                g = sfft.idct(g, type=2, axis=other, workers=_WORKERS)
        grads.append(g)
    return rho, np.stack(grads)


def smooth_with_gradient_numpy(counts: np.ndarray, grid: Grid, bandwidth: float):
    """Plain numpy reference of :func:`smooth_with_gradient`: FFT of the even extension, the
    derivative as multiplication by i 2 pi k (as :func:`fpsolver.kde.gaussian_smooth_reflect`)."""
    ext = np.asarray(counts, float)
    for a in range(grid.dim):
        ext = np.concatenate([ext, np.flip(ext, axis=a)], axis=a)
    freqs = [np.fft.fftfreq(2 * n, d=h) for n, h in zip(grid.shape, grid.spacing)]
    mesh = np.meshgrid(*freqs, indexing="ij")
    k2 = sum(m**2 for m in mesh)
    spec = np.fft.fftn(ext) * np.exp(-0.5 * (2 * np.pi) ** 2 * k2 * bandwidth**2)
    keep = tuple(slice(0, n) for n in grid.shape)
    rho = np.real(np.fft.ifftn(spec))[keep]
    grad = []
    for a, m in enumerate(mesh):
        n = grid.shape[a]
        # the Nyquist mode of an even sequence has no sine part: drop it from the derivative
        kk = np.where(np.abs(m) * 2 * n * grid.spacing[a] >= n, 0.0, m)
        grad.append(np.real(np.fft.ifftn(spec * 2j * np.pi * kk))[keep])
    return rho, np.stack(grad)


class DensityEstimator:
    """rho_hat and grad rho_hat of a particle cloud on a fixed grid with a fixed bandwidth."""

    def __init__(self, grid: Grid, bandwidth: float):
        self.grid, self.bandwidth = grid, float(bandwidth)

    def __call__(self, x: np.ndarray):
        """(rho_hat, grad rho_hat, binned counts) on the cell centres; sum |K| rho_hat = 1."""
        counts = linear_binning_numba(x, self.grid)
        rho, grad = smooth_with_gradient(counts, self.grid, self.bandwidth)
        scale = 1.0 / (len(x) * self.grid.cell_volume)
        return rho * scale, grad * scale, counts


# ------------------------------------------------------------------ the bandwidth rule

def gradient_roughness(values: np.ndarray, grid: Grid) -> float:
    """R3 = int |grad Laplacian rho|^2 dx of a cell density, spectrally with reflecting walls.

    In the orthonormal DCT basis a mode with wave vector omega contributes |omega|^6 c^2 (the
    gradient of a cosine is a sine of the same norm), times the cell volume.
    """
    coef = sfft.dctn(values, type=2, norm="ortho")
    w2 = np.zeros(grid.shape)
    for a in range(grid.dim):
        shape = [1] * grid.dim
        shape[a] = grid.shape[a]
        w2 = w2 + (_omega(grid, a) ** 2).reshape(shape)
    return float(np.sum(w2**3 * coef**2) * grid.cell_volume)


def _spread(values: np.ndarray, grid: Grid) -> float:
    """min(std, IQR / 1.34) of a cell density, averaged over axes (the normal-reference scale)."""
    out = []
    for a in range(grid.dim):
        marg = values.sum(axis=tuple(i for i in range(grid.dim) if i != a)) if grid.dim > 1 else values
        p = marg / marg.sum()
        c = grid.centres[a]
        std = np.sqrt(np.sum(p * (c - np.sum(p * c)) ** 2))
        cdf = np.cumsum(p)
        iqr = np.interp(0.75, cdf, c) - np.interp(0.25, cdf, c)
        out.append(min(std, iqr / 1.34) if iqr > 0 else std)
    return float(np.mean(out))


def velocity_bandwidth(grid: Grid, densities, n: int) -> float:
    """The bandwidth that minimises the error of grad rho_hat, the part of the velocity that is noisy.

    For a Gaussian kernel the asymptotic mean integrated squared error of grad rho_hat is
    R(grad phi) / (N b^(d+2)) + (b^4 / 4) R3, with R(grad phi) = (d/2)(4 pi)^(-d/2) and
    R3 = int |grad Laplacian rho|^2; it is smallest at

        b^(d+6) = (d + 2) R(grad phi) / (N R3),

    i.e. b ~ N^(-1/(d+6)), where bias b^2 and noise (N b^(d+2))^(-1/2) balance at N^(-2/(d+6)) (MATH.md
    section 5). Taken for each density in ``densities`` (cell values on ``grid``, scaled to unit mass), never more than the
    normal-reference value (4/(d+4))^(1/(d+6)) sigma N^(-1/(d+6)) of a Gaussian with the same spread
    sigma = min(std, IQR/1.34), and the smallest over the densities (the sharpest sets the resolution).
    """
    if n < 1:
        raise ValueError(f"velocity_bandwidth: n = {n} particles, need at least 1")
    d = grid.dim
    out = np.inf
    for values in densities:
        values = np.asarray(values, float)
        values = values / (values.sum() * grid.cell_volume)   # the rule is for a unit-mass density
        r3 = gradient_roughness(values, grid)
        if r3 > 0:
            out = min(out, ((d + 2) * 0.5 * d * (4 * np.pi) ** (-d / 2) / (n * r3)) ** (1.0 / (d + 6)))
        out = min(out, (4.0 / (d + 4)) ** (1.0 / (d + 6)) * _spread(values, grid) * n ** (-1.0 / (d + 6)))
    return float(out)
