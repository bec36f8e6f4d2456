"""MMD particles (MATH.md section 9): the exact velocity, by direct sums or by binning + FFT.

Every velocity here is a signed sum of kernel gradients over point masses ("sources") y_s with
weights w_s,

    v(x) = -sum_s w_s grad_x k(x, y_s) = sum_s w_s (x - y_s) / sigma^2 k(x, y_s),

k the Gaussian kernel of the case (amplitude a = k(x, x)). For the MMD flow dX/dt = -grad f(X),
f = k * (mu_N - rho_d): the N particles with w = 1/N and the target with w = -rho_d,j |K| at the
case-grid centres (the cell-mass measure the grid solver uses) or w = -1/M at the target's M
samples when the target kind is ``samples``. No density estimate is involved.

With ``[flow.critic] lambda``: the particles move along +grad f*, f* = k * g, g solving
lam g - div(rho grad(k * g)) = rho_d - rho on the case grid (:class:`SobolevCritic`) with rho the
particles' cloud-in-cell density on the case grid; the sources are then the case centres with
w = -g_j |K| (and no particle term).

With ``[flow.noise] level = beta, until = T``: while the step starts before T, grad f is evaluated
at X + beta U, U ~ N(0, I) fresh each step (one draw per step, shared by the Heun stages), f still
built from the un-noised particles (Arbel et al. 2019, Algorithm 1). U comes from a generator
seeded by (run seed, step start time), so a resumed run draws the same U. The mean over U is the
velocity of the smoothed kernel g_beta * k (:meth:`GaussianKernel.smoothed`).

Two evaluations:
- ``direct``: the sum over all sources for each evaluation point, O(N (N + M)); a Numba kernel
  with one independent sum per point in a fixed order (deterministic for any thread count),
  vectorised over blocks of points with the 1-ulp 2^u of :mod:`.vector_exp` (the C library's
  exp would keep the loop scalar), beside the plain numpy :func:`direct_velocity_numpy`.
- ``binned``: the weights deposited on a uniform binning grid by cloud-in-cell (linear) weights,
  f = k * deposit by the zero-padded FFT of :class:`KernelConvolution`, grad f at the centres by
  second-order central differences, read at the points by linear interpolation; O(N + G log G),
  error O(h^2) (deposit, difference and interpolation are each second order). The binning grid
  extends the box by one cell plus 6 beta on each side, so every particle lies between centres
  (no weight is clamped to an edge cell); a noisy evaluation point further than 6 beta out
  (probability 2e-9 per coordinate) reads the edge value.
``auto`` takes the direct sum when N (N + M) <= BINNED_COST (N + G log2 G).

Step limit. |Hessian of k| <= a / sigma^2, so v is Lipschitz with L <= W a / sigma^2, W = sum|w_s|
(2 for the MMD flow). We take h <= C_STEP sigma^2 / (W a) with C_STEP = 1/2: h L <= 1/2, well
inside the stability bound h L <= 2 of Euler and Heun on real negative rates, and since
|grad k| <= a e^{-1/2} / sigma, no particle moves more than 0.3 sigma per step, the scale on
which v varies. The binned field is the same field up to O(h^2), so the same bound holds for it;
a particle may cross several binning cells in a step without loss, as the field is resolved on
the cells (sigma / h >= CELLS_PER_SIGMA).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ..errors import InputError
from ..flows import NONLOCAL_FLOWS
from ..flows.kernel import GaussianKernel, KernelConvolution, padded_length
from ..grid import Grid
from ..kde import linear_binning, linear_binning_numba
from ..densities import SampleDensity
from . import kernels
from .vector_exp import LOG2E, exp2_nonpositive

METHODS = ("auto", "direct", "binned")
CELLS_PER_SIGMA = 32                  # binning cells per kernel bandwidth (error ~ (h / sigma)^2)
MAX_BIN_CELLS = {1: 2**16, 2: 2**10}  # per axis
BINNED_COST = 10.0                    # binned work per unit of N + G log2 G, in direct pairs (measured,
                                      # 1D, one thread: 0.44 ns per vectorised pair, 4.2 ns per unit)
C_STEP = 0.5
NOISE_REACH = 6.0                     # the binning grid reaches NOISE_REACH * beta beyond the box


# ------------------------------------------------------------------ direct sums

def direct_velocity_numpy(points, sources, weights, kernel: GaussianKernel, chunk: int = 2**22) -> np.ndarray:
    """v(x) = sum_s w_s (x - y_s) / sigma^2 k(x, y_s) at points (n, d): plain numpy, in blocks of
    about ``chunk`` pairs."""
    points = np.asarray(points, dtype=float)
    out = np.empty_like(points)
    step = max(1, chunk // max(1, len(sources)))
    for i in range(0, len(points), step):
        diff = points[i:i + step, None, :] - sources[None, :, :]
        k = kernel.of_squared_distance(np.sum(diff * diff, axis=-1), points.shape[1])
        out[i:i + step] = np.einsum("nmd,m->nd", diff * k[..., None], weights) / kernel.sigma ** 2
    return out


POINT_BLOCK = 256      # evaluation points per task: their accumulators stay in L1 cache


@numba.njit(cache=True, parallel=True)
def _direct_sum(points, sources, weights, log2e_over_two_s2, scale, out):
    """out[i] = scale sum_s w_s (x_i - y_s) 2^(-|x_i - y_s|^2 log2e_over_two_s2), d = 1 or 2, s in order
    (2^(-r^2 log2(e) / (2 sigma^2)) = exp(-r^2 / (2 sigma^2))).

    Blocks of POINT_BLOCK points in parallel; for each source the innermost loop runs over the
    block's points, each with its own accumulator, so it vectorises (exp2_nonpositive is plain
    arithmetic) while every point's sum still runs over s = 0, 1, ... in order.
    """
    n, d = points.shape
    m = sources.shape[0]
    for b in numba.prange((n + POINT_BLOCK - 1) // POINT_BLOCK):
        i0 = b * POINT_BLOCK
        size = min(n, i0 + POINT_BLOCK) - i0
        x0 = np.zeros(POINT_BLOCK)
        x1 = np.zeros(POINT_BLOCK)
        a0 = np.zeros(POINT_BLOCK)
        a1 = np.zeros(POINT_BLOCK)
        for i in range(size):
            x0[i] = points[i0 + i, 0]
            if d == 2:
                x1[i] = points[i0 + i, 1]
        if d == 1:
            for s in range(m):
                y0, w = sources[s, 0], weights[s]
                for i in range(size):
                    d0 = x0[i] - y0
                    a0[i] += w * exp2_nonpositive(-(d0 * d0) * log2e_over_two_s2) * d0
        else:
            for s in range(m):
                y0, y1, w = sources[s, 0], sources[s, 1], weights[s]
                for i in range(size):
                    d0 = x0[i] - y0
                    d1 = x1[i] - y1
                    e = w * exp2_nonpositive(-(d0 * d0 + d1 * d1) * log2e_over_two_s2)
                    a0[i] += e * d0
                    a1[i] += e * d1
        for i in range(size):
            out[i0 + i, 0] = scale * a0[i]
            if d == 2:
                out[i0 + i, 1] = scale * a1[i]
    return out


def direct_velocity(points, sources, weights, kernel: GaussianKernel, out=None) -> np.ndarray:
    """Numba version of :func:`direct_velocity_numpy` (same sum, parallel over points)."""
    points = np.ascontiguousarray(points, dtype=float)
    out = np.empty_like(points) if out is None else out
    s2 = kernel.sigma ** 2
    return _direct_sum(points, np.ascontiguousarray(sources, dtype=float),
                       np.ascontiguousarray(weights, dtype=float), 0.5 * LOG2E / s2,
                       kernel.amplitude(points.shape[1]) / s2, out)


# ------------------------------------------------------------------ binning + FFT

def binning_grid(box: Grid, sigma: float, beta: float = 0.0, cells_per_sigma: float = CELLS_PER_SIGMA) -> Grid:
    """The box widened by one cell + NOISE_REACH beta per side, spacing <= sigma / cells_per_sigma."""
    lower, upper, cells = [], [], []
    for lo, hi, n in zip(box.lower, box.upper, box.shape):
        want = math.ceil(cells_per_sigma * (hi - lo) / sigma)
        h = (hi - lo) / want
        pad = math.ceil((h + NOISE_REACH * beta) / h)
        m = want + 2 * pad
        if m > MAX_BIN_CELLS[box.dim]:
            raise InputError(f"binned MMD velocity: {m} binning cells per axis exceed {MAX_BIN_CELLS[box.dim]}"
                             " (sigma too small for the box); use --mmd-velocity direct")
        lower.append(lo - pad * h)
        upper.append(hi + pad * h)
        cells.append(m)
    return Grid(tuple(lower), tuple(upper), tuple(cells))


class BinnedField:
    """v = -grad(k * deposit) on a binning grid, read at points by linear interpolation."""

    def __init__(self, grid: Grid, kernel: GaussianKernel):
        self.grid, self.kernel = grid, kernel
        self.conv = KernelConvolution(grid, kernel)

    def field(self, masses: np.ndarray) -> np.ndarray:
        """-grad(k * c) at the centres, shape (d, *grid.shape), c = masses / |K| (cell masses in)."""
        f = self.conv(masses / self.grid.cell_volume)
        g = np.gradient(f, *self.grid.spacing, edge_order=2)
        return -np.stack(g if self.grid.dim > 1 else [g])

    def read(self, field: np.ndarray, points: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Linear interpolation of the centre field at the points (Numba), into ``out``."""
        g = self.grid
        if g.dim == 1:
            return kernels.interp_field_1d(points, field, g.lower[0], g.spacing[0], out)
        return kernels.interp_field_2d(points, field, g.lower[0], g.spacing[0], g.lower[1], g.spacing[1], out)


def binned_velocity_numpy(points, sources, weights, grid: Grid, kernel: GaussianKernel) -> np.ndarray:
    """The binned velocity with plain numpy deposit and interpolation (reference for the Numba path)."""
    bf = BinnedField(grid, kernel)
    field = bf.field(linear_binning(sources, grid, weights))
    return np.stack([kernels.interp_cells_numpy(points, field[a], grid.lower, grid.spacing)
                     for a in range(grid.dim)], axis=-1)


# ------------------------------------------------------------------ the velocity of a case

class MMDVelocity:
    """``__call__(x, out, t, t_start) -> h_lim`` and ``breakpoints`` for :func:`.run.integrate`."""

    def __init__(self, case, n: int, seed: int, method: str = "auto", cells_per_sigma: float = CELLS_PER_SIGMA):
        if method not in METHODS:
            raise InputError(f"--mmd-velocity: unknown method {method!r} (one of {', '.join(METHODS)})")
        # the flow as the case's [flow] table builds it (fpsolver.flows): the noisy phase first, if any
        phases = NONLOCAL_FLOWS[case.flow].phases_from_spec(case.raw["flow"])
        first = phases[0][0]
        self.kernel, self.beta, self.critic = first.kernel, first.noise, first.critic
        self.until = phases[0][1] if len(phases) > 1 else 0.0
        self.n, self.seed, self.case_grid = int(n), int(seed), case.grid
        self.breakpoints = (self.until,) if self.beta > 0 else ()
        target, _ = case.discretised()
        self.rho_d = np.exp(target.log_cells).reshape(case.grid.shape)
        if isinstance(case.target, SampleDensity):
            pts = np.asarray(case.target.points, dtype=float)
            self.target_points, self.target_weights = pts, np.full(len(pts), -1.0 / len(pts))
        else:
            keep = self.rho_d.ravel() > 0.0
            self.target_points = case.grid.points()[keep]
            self.target_weights = -self.rho_d.ravel()[keep] * case.grid.cell_volume
        self.bin_grid = binning_grid(case.grid, self.kernel.sigma, self.beta, cells_per_sigma)
        self.method = method if method != "auto" else self.choose()
        if self.method == "binned":
            self.binned = BinnedField(self.bin_grid, self.kernel)
            self.target_deposit = linear_binning(self.target_points, self.bin_grid, self.target_weights)
        if self.critic is not None:
            self.critic_conv = KernelConvolution(case.grid, self.kernel)

    def choose(self) -> str:
        """'direct' if N (N + M) <= BINNED_COST (N + G log2 G), else 'binned' (module docstring)."""
        m = len(self.target_points) if self.critic is None else self.case_grid.size
        g = int(np.prod([padded_length(c) for c in self.bin_grid.shape]))
        direct = self.n * (self.n + m)
        return "direct" if direct <= BINNED_COST * (self.n + g * math.log2(g)) else "binned"

    def sources(self, x: np.ndarray):
        """(points, weights, total |w|): particles + target, or the critic's cell masses."""
        if self.critic is None:
            pts = np.concatenate([x, self.target_points])
            w = np.concatenate([np.full(len(x), 1.0 / len(x)), self.target_weights])
            return pts, w, 1.0 + float(np.sum(np.abs(self.target_weights)))
        grid = self.case_grid
        rho = linear_binning_numba(x, grid) / (len(x) * grid.cell_volume)
        g = self.critic.solve(rho, self.rho_d, self.critic_conv).coefficients
        w = -g.ravel() * grid.cell_volume
        return grid.points(), w, float(np.sum(np.abs(w)))

    def noise(self, shape, t_start: float) -> np.ndarray:
        """beta U, U ~ N(0, I) from the generator seeded by (seed, bits of the step start time)."""
        bits = int(np.float64(t_start).view(np.uint64))
        return self.beta * np.random.default_rng([self.seed, bits]).standard_normal(shape)

    def evaluate(self, x: np.ndarray, points: np.ndarray, out: np.ndarray) -> float:
        """v at ``points`` for the particles ``x`` into ``out``; returns the step limit."""
        src, w, total = self.sources(x)
        if self.method == "direct":
            direct_velocity(points, src, w, self.kernel, out)
        elif self.critic is None:
            dep = linear_binning_numba(x, self.bin_grid) / len(x) + self.target_deposit
            self.binned.read(self.binned.field(dep), points, out)
        else:
            self.binned.read(self.binned.field(linear_binning(src, self.bin_grid, w)), points, out)
        return C_STEP * self.kernel.sigma ** 2 / (total * self.kernel.amplitude(x.shape[1])) if total > 0 else np.inf

    def __call__(self, x: np.ndarray, out: np.ndarray, t: float, t_start: float) -> float:
        """Write v(x) into ``out`` (noisy evaluation points while t_start < until); return h_lim."""
        points = x
        if self.beta > 0 and t_start < self.until:
            points = np.ascontiguousarray(x + self.noise(x.shape, t_start))
        return self.evaluate(x, points, out)

    def velocity_numpy(self, x: np.ndarray, points=None) -> np.ndarray:
        """The same velocity by the plain numpy references (direct or binned as chosen)."""
        points = x if points is None else points
        src, w, _ = self.sources(x)
        if self.method == "direct":
            return direct_velocity_numpy(points, src, w, self.kernel)
        return binned_velocity_numpy(points, src, w, self.bin_grid, self.kernel)
