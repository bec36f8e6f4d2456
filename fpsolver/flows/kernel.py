"""The MMD energy family of MATH.md section 9: a Gaussian kernel, its grid convolution, the
MMD flow, noise injection and the kernel-Sobolev critic.

Sign conventions (MATH.md section 9). With the unnormalised Gaussian kernel
k(x, y) = exp(-|x - y|^2 / (2 sigma^2)) the energy is

    F(rho) = 1/2 MMD^2(rho, rho_d) = 1/2 iint k d(rho - rho_d) d(rho - rho_d),

its first variation (the witness) is f = k * (rho - rho_d), and the flow is the Wasserstein
gradient flow

    d_t rho = div(rho grad f),   particles dX/dt = -grad f(X),   dF/dt = -int rho |grad f|^2 <= 0.

Every member of this module's family is written as "particles move along -grad(potential)"
with potential = k * c for a signed cell array c (the *source*): c = rho - rho_d for the MMD
flow. With the kernel-Sobolev critic f* (the critic of rho_d - rho, see
:class:`SobolevCritic`) the particles move along +grad f*, so the potential is -f* and c = -g.

On the grid (``fpsolver.grid.Grid``, 1D or 2D, uniform, cell-centred, arrays [ix, iy]) a
density is its cell values and its measure the cell masses rho_j |K| at the centres x_j, so

    (k * c)_i = sum_j k(x_i - x_j) c_j |K|,     F = 1/2 sum_i (rho - rho_d)_i (k * (rho - rho_d))_i |K|,

which is exactly 1/2 MMD^2 of the two cell-mass measures. The sum is computed by a zero-padded
FFT (no periodic wrap-around) whose kernel transform is built once per grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from scipy import fft as sfft

from ..errors import CaseError, SolverError
from ..grid import Grid

Array = np.ndarray


@dataclass(frozen=True)
class GaussianKernel:
    """k(x, y) = (base_sigma / sigma)^d exp(-|x - y|^2 / (2 sigma^2)) in dimension d.

    ``base_sigma`` defaults to ``sigma`` (amplitude 1: the unnormalised kernel of MATH.md
    section 9); :meth:`smoothed` raises sigma and keeps base_sigma, so the amplitude follows
    the dimension of the points the kernel is evaluated at.
    """

    sigma: float
    base_sigma: Optional[float] = None

    def __post_init__(self):
        sigma = float(self.sigma)
        if not (np.isfinite(sigma) and sigma > 0.0):
            raise ValueError(f"kernel bandwidth sigma must be finite and > 0, got {self.sigma!r}")
        base = sigma if self.base_sigma is None else float(self.base_sigma)
        if not (np.isfinite(base) and 0.0 < base <= sigma):
            raise ValueError(f"base_sigma must satisfy 0 < base_sigma <= sigma = {sigma}, got {self.base_sigma!r}")
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "base_sigma", base)

    def amplitude(self, dim: int) -> float:
        """k(x, x) = (base_sigma / sigma)^d."""
        return (self.base_sigma / self.sigma) ** dim

    def of_squared_distance(self, r2: Array, dim: int) -> Array:
        """k as a function of r^2 = |x - y|^2 in dimension ``dim``."""
        return self.amplitude(dim) * np.exp(-np.asarray(r2, dtype=float) / (2.0 * self.sigma ** 2))

    def __call__(self, x: Array, y: Array) -> Array:
        """k(x, y) for points with a trailing axis of length d (broadcast)."""
        diff = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
        return self.of_squared_distance(np.sum(diff * diff, axis=-1), diff.shape[-1])

    def gradient_x(self, x: Array, y: Array) -> Array:
        """grad_x k(x, y) = -(x - y) / sigma^2 k(x, y), trailing axis of length d."""
        diff = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
        k = self.of_squared_distance(np.sum(diff * diff, axis=-1), diff.shape[-1])
        return -diff / self.sigma ** 2 * k[..., None]

    def smoothed(self, beta: float) -> "GaussianKernel":
        """g_beta * k, phi_beta the N(0, beta^2 I) density: the mean-field kernel of noise injection.

        int phi_beta(z) k(x + z, y) dz is Gaussian with variance sigma^2 + beta^2 and amplitude
        multiplied by (sigma^2 / (sigma^2 + beta^2))^{d/2}, i.e. GaussianKernel(sqrt(sigma^2 +
        beta^2), base_sigma). So E_U grad_x k(X + beta U, y) = grad_x (g_beta * k)(X, y): evaluating
        the witness gradient at noisy positions (Arbel et al.) is, in the mean-field limit, the
        MMD flow of this kernel. beta = 0 returns the kernel itself.
        """
        beta = float(beta)
        if not (np.isfinite(beta) and beta >= 0.0):
            raise ValueError(f"noise level beta must be finite and >= 0, got {beta!r}")
        if beta == 0.0:
            return self
        return GaussianKernel(float(np.hypot(self.sigma, beta)), self.base_sigma)


def padded_length(n: int) -> int:
    """FFT length of an axis of n cells with zero padding against wrap-around (>= 2n - 1)."""
    return sfft.next_fast_len(2 * n - 1, real=True)


class KernelConvolution:
    """(k * g)_i = sum_j k(x_i - x_j) g_j |K| on the cells of ``grid``, by zero-padded real FFT.

    Each axis of n cells is padded to P >= 2n - 1 points, and the kernel is stored at the
    offsets -(n-1)..(n-1) (zero elsewhere), so the circular convolution of length P equals the
    linear one on the n cells: no wrap-around. The kernel's transform is computed once here.
    """

    def __init__(self, grid: Grid, kernel: GaussianKernel):
        if not isinstance(grid, Grid):
            raise ValueError(f"KernelConvolution needs a fpsolver.grid.Grid, got {type(grid).__name__}")
        if not isinstance(kernel, GaussianKernel):
            raise ValueError(f"KernelConvolution needs a GaussianKernel, got {type(kernel).__name__}")
        self.grid = grid
        self.kernel = kernel
        self.padded = tuple(padded_length(n) for n in grid.shape)
        r2 = np.zeros(self.padded)
        inside = np.ones(self.padded, dtype=bool)
        for axis, (n, p, h) in enumerate(zip(grid.shape, self.padded, grid.spacing)):
            o = np.arange(p)
            o = np.where(o < n, o, o - p)              # signed offset of each padded index
            shape = [1] * grid.dim
            shape[axis] = p
            r2 = r2 + ((o * h) ** 2).reshape(shape)
            inside = inside & (np.abs(o) <= n - 1).reshape(shape)
        table = np.where(inside, kernel.of_squared_distance(r2, grid.dim), 0.0) * grid.cell_volume
        self._symbol = sfft.rfftn(table, s=self.padded)
        self._crop = tuple(slice(0, n) for n in grid.shape)

    def __call__(self, g: Array) -> Array:
        """k * g on the grid (cell array of the grid's shape)."""
        g = np.asarray(g, dtype=float)
        if g.shape != self.grid.shape:
            raise ValueError(f"convolution input has shape {g.shape}, the grid has {self.grid.shape}")
        return sfft.irfftn(sfft.rfftn(g, s=self.padded) * self._symbol, s=self.padded)[self._crop]


def check_densities(rho: Array, rho_d: Array, grid: Grid) -> tuple[Array, Array]:
    """rho and rho_d as float arrays; ValueError unless both are finite, >= 0 and of the grid's shape."""
    out = []
    for name, a in (("rho", rho), ("rho_d", rho_d)):
        a = np.asarray(a, dtype=float)
        if a.shape != grid.shape:
            raise ValueError(f"{name} has shape {a.shape}, the grid has {grid.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} has non-finite values")
        if np.any(a < 0.0):
            raise ValueError(f"{name} is negative somewhere (min {a.min():.3g}); densities must be >= 0")
        out.append(a)
    return out[0], out[1]


def mmd_squared(rho: Array, rho_d: Array, conv: KernelConvolution) -> float:
    """MMD^2 = sum_i e_i (k * e)_i |K|, e = rho - rho_d, for the kernel of ``conv``."""
    rho, rho_d = check_densities(rho, rho_d, conv.grid)
    e = rho - rho_d
    return float(np.sum(e * conv(e)) * conv.grid.cell_volume)


def weighted_divergence(f: Array, rho: Array, grid: Grid) -> Array:
    """div_h(rho grad_h f): sum over axes of (F_{i+1/2} - F_{i-1/2}) / dx, F = rho_face (f_{i+1} - f_i) / dx,
    rho_face = (rho_i + rho_{i+1}) / 2, F = 0 at the walls (no flux)."""
    out = np.zeros(grid.shape)
    for a, h in enumerate(grid.spacing):
        lo = [slice(None)] * grid.dim
        hi = [slice(None)] * grid.dim
        lo[a], hi[a] = slice(0, -1), slice(1, None)
        flux = 0.5 * (rho[tuple(lo)] + rho[tuple(hi)]) * np.diff(f, axis=a) / h
        pad = [(0, 0)] * grid.dim
        pad[a] = (1, 1)
        out += np.diff(np.pad(flux, pad), axis=a) / h
    return out


@dataclass(frozen=True)
class CriticSolution:
    """f* = k * g, CG iterations, and the relative residuals (kernel norm, Euclidean) reached."""

    critic: Array
    coefficients: Array
    iterations: int
    residual: float
    euclidean_residual: float


@dataclass(frozen=True)
class SobolevCritic:
    """Kernel-Sobolev regularised critic (Mroueh & Nguyen; MATH.md section 9).

    f* = argmax over the RKHS of E_{rho_d} f - E_rho f - 1/2 (lam ||f||_H^2 + E_rho |grad f|^2).
    With f = k * g this is, on the grid (M the matrix of g -> k * g, symmetric, positive definite
    for the Gaussian kernel; B g = -div_h(rho grad_h g) from :func:`weighted_divergence`, symmetric
    positive semi-definite),

        T g := lam g + B M g = rho_d - rho,      f* = M g,      particles move along +grad f*.

    T is not symmetric, but it is self-adjoint and positive definite in the kernel inner product
    <a, b>_M = sum_i a_i (k * b)_i |K|:  <T a, b>_M = |K| a^T (lam M + M B M) b, and
    lam M + M B M >= lam M > 0 is the Hessian of the critic objective in g. So CG runs on
    T g = rho_d - rho in <.,.>_M (equivalently: preconditioned CG on the SPD system
    (lam M + M B M) g = M (rho_d - rho) with preconditioner M, applied without inverting M), two
    FFT products per iteration. It minimises the error in the critic's own norm
    lam ||df||_H^2 + E_rho |grad df|^2, and stops when the residual s = rho_d - rho - T g satisfies
    ||s||_M <= tol ||rho_d - rho||_M. Since lam T^{-1} <= 1 in <.,.>_M, the critic then obeys

        max_x |f*(x) - f*_exact(x)| <= sqrt(k(x, x)) ||s||_M / lam.

    lam -> inf: lam f* -> k * (rho_d - rho), the negative MMD witness (the MMD flow with time
    scaled by 1/lam); small lam tends to the linearised W2 (H^-1(rho)) flow. The critic also
    dissipates F = 1/2 MMD^2: dF/dt = -||e||_M^2 + lam <e, T^{-1} e>_M <= 0, e = rho - rho_d.
    """

    lam: float
    tol: float = 1e-12
    maxiter: int = 1000

    def __post_init__(self):
        lam = float(self.lam)
        if not (np.isfinite(lam) and lam > 0.0):
            raise ValueError(f"critic regularisation lambda must be finite and > 0, got {self.lam!r}")
        if not (0.0 < float(self.tol) < 1.0):
            raise ValueError(f"critic tolerance must lie in (0, 1), got {self.tol!r}")
        if int(self.maxiter) < 1:
            raise ValueError(f"critic maxiter must be >= 1, got {self.maxiter!r}")
        object.__setattr__(self, "lam", lam)

    def operator(self, g: Array, rho: Array, conv: KernelConvolution) -> Array:
        """T g = lam g - div_h(rho grad_h (k * g))."""
        return self.lam * g - weighted_divergence(conv(g), rho, conv.grid)

    def solve(self, rho: Array, rho_d: Array, conv: KernelConvolution) -> CriticSolution:
        """Solve T g = rho_d - rho by CG in the kernel inner product; SolverError if maxiter is hit."""
        rho, rho_d = check_densities(rho, rho_d, conv.grid)
        rhs = rho_d - rho
        g = np.zeros_like(rhs)
        s = rhs.copy()
        rz = rz0 = float(np.sum(s * conv(s)))
        p, it = s.copy(), 0
        while abs(rz) > (self.tol ** 2) * rz0 and it < self.maxiter:
            mp = conv(p)
            q = self.lam * p - weighted_divergence(mp, rho, conv.grid)
            alpha = rz / float(np.sum(mp * q))
            g += alpha * p
            s -= alpha * q
            rz_new = float(np.sum(s * conv(s)))
            p = s + (rz_new / rz) * p
            rz, it = rz_new, it + 1
        res = np.sqrt(abs(rz) / rz0) if rz0 > 0 else 0.0
        if res > self.tol:
            raise SolverError(f"critic CG reached maxiter = {self.maxiter} at relative residual {res:.3g}"
                               f" (tol {self.tol:g}, lambda {self.lam:g})")
        true_res = rhs - self.operator(g, rho, conv)
        norm = np.linalg.norm(rhs)
        eres = float(np.linalg.norm(true_res) / norm) if norm > 0 else 0.0
        return CriticSolution(conv(g), g, it, float(res), eres)


class MMDFlow:
    """The MMD flow of MATH.md section 9, optionally with noise injection and/or the Sobolev critic.

    ``noise`` (beta >= 0): the mean-field flow of the smoothed kernel g_beta * k
    (:meth:`GaussianKernel.smoothed`), which is what evaluating grad f at X + beta U amounts to.
    ``critic`` (a :class:`SobolevCritic` or its lambda): particles move along +grad f* instead of
    -grad f. In every case the velocity is -grad(potential), potential = k * c with
    c = :meth:`source`: c = rho - rho_d (MMD) or c = -g (critic, f* = k * g). Build the
    convolution with :meth:`convolution`; the methods check it uses this flow's kernel.
    """

    name = "mmd"

    def __init__(self, kernel: GaussianKernel, noise: Optional[float] = None,
                 critic: Union[SobolevCritic, float, None] = None):
        if not isinstance(kernel, GaussianKernel):
            raise ValueError(f"MMDFlow needs a GaussianKernel, got {type(kernel).__name__}")
        self.kernel = kernel
        self.noise = 0.0 if noise is None else float(noise)
        self.flow_kernel = kernel.smoothed(self.noise)   # validates noise >= 0
        if critic is not None and not isinstance(critic, SobolevCritic):
            critic = SobolevCritic(critic)
        self.critic = critic

    def convolution(self, grid: Grid) -> KernelConvolution:
        """The FFT convolution with this flow's kernel on ``grid`` (build once per grid)."""
        return KernelConvolution(grid, self.flow_kernel)

    def _check(self, conv: KernelConvolution) -> None:
        if not isinstance(conv, KernelConvolution) or conv.kernel != self.flow_kernel:
            raise ValueError("the convolution must use this flow's kernel: build it with flow.convolution(grid)")

    def source(self, rho: Array, rho_d: Array, conv: KernelConvolution) -> Array:
        """c with potential = k * c: rho - rho_d, or -g for the critic (f* = k * g)."""
        self._check(conv)
        rho, rho_d = check_densities(rho, rho_d, conv.grid)
        if self.critic is None:
            return rho - rho_d
        return -self.critic.solve(rho, rho_d, conv).coefficients

    def potential(self, rho: Array, rho_d: Array, conv: KernelConvolution) -> Array:
        """f = k * (rho - rho_d) (the witness, dF/drho), or -f* with the critic; velocity -grad of it."""
        return conv(self.source(rho, rho_d, conv))

    def energy(self, rho: Array, rho_d: Array, conv: KernelConvolution) -> float:
        """F = 1/2 sum_i (rho - rho_d)_i (k * (rho - rho_d))_i |K| = 1/2 MMD^2 (flow kernel)."""
        self._check(conv)
        return 0.5 * mmd_squared(rho, rho_d, conv)

    def velocity_at(self, points: Array, rho: Array, rho_d: Array, conv: KernelConvolution,
                    *, chunk: int = 2 ** 22) -> Array:
        """-grad(potential)(x) = -sum_j grad_x k(x, x_j) c_j |K| at points (N, d), exact sum over cells."""
        return kernel_gradient_sum(points, self.source(rho, rho_d, conv), conv.grid, self.flow_kernel,
                                   chunk=chunk, scale=-1.0)


def kernel_gradient_sum(points: Array, c: Array, grid: Grid, kernel: GaussianKernel, *,
                        chunk: int = 2 ** 22, scale: float = 1.0) -> Array:
    """scale * sum_j grad_x k(x, x_j) c_j |K| at points x (N, d), in blocks of ~chunk kernel values."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != grid.dim:
        raise ValueError(f"points must have shape (N, {grid.dim}), got {points.shape}")
    c = np.asarray(c, dtype=float)
    if c.shape != grid.shape:
        raise ValueError(f"source has shape {c.shape}, the grid has {grid.shape}")
    centres, weights = grid.points(), c.ravel() * grid.cell_volume
    out = np.empty_like(points)
    step = max(1, chunk // grid.size)
    for start in range(0, len(points), step):
        x = points[start:start + step]
        grad = kernel.gradient_x(x[:, None, :], centres[None, :, :])
        out[start:start + step] = scale * np.einsum("njd,j->nd", grad, weights)
    return out


# ------------------------------------------------------------------ case-file tables

def _spec_number(table: dict, key: str, name: str, *, positive: bool = True) -> float:
    v = table.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        raise CaseError(name, f"must be a finite number, got {v!r}")
    if (positive and v <= 0) or v < 0:
        raise CaseError(name, f"must be {'>' if positive else '>='} 0 (got {v!r})")
    return float(v)


def _spec_table(spec: dict, name: str, keys: set) -> dict:
    table = spec[name]
    if not isinstance(table, dict):
        raise CaseError(f"flow.{name}", f"must be a table, got {type(table).__name__}")
    unknown, missing = set(table) - keys, keys - set(table)
    if unknown or missing:
        key = sorted(unknown or missing)[0]
        raise CaseError(f"flow.{name}.{key}", "unknown key" if unknown else "missing")
    return table


SPEC_KEYS = ("kernel", "noise", "critic")   # the sub-tables of [flow] this family reads


def check_spec(spec: dict) -> None:
    """Validate a case file's ``[flow]`` table for kind = "mmd": ``[flow.kernel]`` (gaussian,
    sigma > 0), optional ``[flow.noise]`` (level >= 0, until > 0), ``[flow.critic]`` (sobolev,
    lambda > 0). Raises CaseError naming the key."""
    if "kernel" not in spec:
        raise CaseError("flow.kernel", 'missing (e.g. kind = "gaussian", sigma = 1.0)')
    kernel = _spec_table(spec, "kernel", {"kind", "sigma"})
    if kernel["kind"] != "gaussian":
        raise CaseError("flow.kernel.kind", f"unknown value {kernel['kind']!r} (one of gaussian)")
    _spec_number(kernel, "sigma", "flow.kernel.sigma")
    if "noise" in spec:
        noise = _spec_table(spec, "noise", {"level", "until"})
        _spec_number(noise, "level", "flow.noise.level", positive=False)
        _spec_number(noise, "until", "flow.noise.until")
    if "critic" in spec:
        critic = _spec_table(spec, "critic", {"kind", "lambda"})
        if critic["kind"] != "sobolev":
            raise CaseError("flow.critic.kind", f"unknown value {critic['kind']!r} (one of sobolev)")
        _spec_number(critic, "lambda", "flow.critic.lambda")


def phases_from_spec(spec: dict) -> list[tuple["MMDFlow", float]]:
    """[(flow, until)]: the flow to use up to each time, from a validated ``[flow]`` table. With
    noise: the smoothed-kernel flow until ``noise.until``, then the plain one; else one phase."""
    kernel = GaussianKernel(float(spec["kernel"]["sigma"]))
    critic = float(spec["critic"]["lambda"]) if "critic" in spec else None
    plain = MMDFlow(kernel, critic=critic)
    noise = spec.get("noise")
    if not noise or float(noise["level"]) == 0.0:
        return [(plain, np.inf)]
    return [(MMDFlow(kernel, noise=float(noise["level"]), critic=critic), float(noise["until"])),
            (plain, np.inf)]
