"""Study 9: the GAN generator step is an explicit Euler step of the particle ODE.

Algorithm 1 with the optimal discriminator moves every generated sample by
eps v = (eps / 2) grad log(1 + rho_d / rho_hat) (MATH.md section 1): one explicit Euler step of
size eps of the interacting particle system with the js flow. Here that update is applied with
a fixed eps (no step-size control), x <- R(x + eps v(x)), R the reflection at the walls.

Order. Against a Heun run with a much smaller step from the same particles (same seed), the
W1 distance at time T is the time-stepping error alone (the Monte-Carlo and KDE errors are
shared): expected O(eps).

Stability. Linearising the KDE velocity, a density perturbation of wave number k decays at the
rate beta'(u) k^2 exp(-k^2 b^2 / 2), largest at k^2 = 2 / b^2, where it is 2 beta'(u) / (e b^2);
explicit Euler is stable when eps times that is at most 2, i.e. eps <= e b^2 / beta'(u). For js,
beta'(u) = 1 / (2 (1 + u)) lies between beta'(1) = 1/4 and beta'(0) = 1/2 where the particles are
scarcer than rho_d, so the largest stable eps should lie between eps_lin = e b^2 / beta'(0) and
2 eps_lin. Measured: eps runs over eps_lin 2^{k/4}; the error err(eps) = ||KDE_eps - KDE_ref||_L1
at T follows the first-order law c eps (c from the smallest eps) while stable; eps is called
unstable when err(eps) > 2 c eps. The largest stable eps on the grid is eps_max(b). Check:
theory puts log2(limit / eps_lin) in [0, 1] (beta'(u) between beta'(0) and beta'(1) where the
particles are not denser than rho_d; the mass-carrying region always has such points, since
int rho_d u = 1). The scan adds one step (a quarter octave) on each side: eps_max is the last stable
scan point, up to one step below the limit; a point up to one step above the limit amplifies its
unstable mode per step only by |1 - eps rate| = 1 + 2 delta (delta < 2^(1/4) - 1), which over the
T / eps steps of a run may stay under the factor-2 detection threshold. So log2(eps_max / eps_lin)
must lie in [-1/4, 5/4].
"""
from __future__ import annotations

import time

import numpy as np

from ..flows import get_flow
from ..kde import kde_on_grid
from ..metrics import mc_floor_w1, w1_samples_1d, w1_samples_density_1d
from ..particles.interacting import InteractingVelocity, default_kde_grid
from ..particles.run import ParticleState, integrate
from ..fv import solve_case
from . import _common as C
from .particle_studies import demo_case, kde_bias_bound

ORDER_TOL = 0.1
UNSTABLE_FACTOR = 2.0
STEP_OCTAVE = 0.25
GRID_STEP = 2 ** STEP_OCTAVE


class _NoStepLimit:
    """The interacting velocity without its step-size limit: the step is exactly eps."""

    def __init__(self, velocity):
        self.velocity, self.breakpoints = velocity, ()

    def __call__(self, x, out, t, t_start):
        self.velocity(x, out, t, t_start)
        return np.inf


def particle_run(case, n: int, seed: int, bandwidth: float, step: float, integrator: str = "euler",
                 fixed: bool = True) -> np.ndarray:
    """Positions at the case's final time; ``fixed``: every step is exactly ``step`` (GAN update)."""
    rng = np.random.default_rng(seed)
    x = np.ascontiguousarray(case.initial.sample(n, rng, case.grid), dtype=float)
    state = ParticleState(steps=0, t=0.0, x=x, rng_state={})
    velocity = InteractingVelocity(case, bandwidth, default_kde_grid(case.grid, bandwidth))
    state = integrate(_NoStepLimit(velocity) if fixed else velocity, state, case.save_times, h_max=step,
                      integrator=integrator, grid=case.grid, n_saved=1)
    return state.x


def _order_part(quick: bool, rows: list, checks: list):
    T, n, b = (0.5, 30_000, 0.05) if quick else (1.0, 100_000, 0.05)
    case = demo_case(T)
    pde = solve_case(case)
    grid, rho = pde.grid, pde.rho[-1]
    eps_lin = np.e * b**2 / get_flow("js").dbeta(np.array([0.0]))[0]
    eps = eps_lin * np.array([1 / 16, 1 / 8, 1 / 4, 1 / 2])
    ref = particle_run(case, n, 0, b, eps[0] / 4, "heun", fixed=False)[:, 0]
    err, to_pde = [], []
    for e in eps:
        x = particle_run(case, n, 0, b, e)
        err.append(w1_samples_1d(x[:, 0], ref))
        to_pde.append(w1_samples_density_1d(x, grid, rho))
    floor = mc_floor_w1(grid, rho, n, seeds=20)
    p = C.fit_slope(eps, err)
    checks.append(C.check("order in eps of W1(Euler, reference)", p, 1.0, ORDER_TOL))
    # W1(Euler, PDE) <= W1(Euler, reference) + W1(reference, rho^b) + W1(rho^b, PDE): the time-stepping
    # error (measured: err[0], O(eps)), Monte-Carlo noise (at most the floor) and the KDE bias at b, from
    # the mean-field limit rho^b solved on a grid, independently of the particle code (kde_bias_bound)
    bias = kde_bias_bound(case, b, pde, refine=2)[-1]
    bound = floor + bias + err[0]
    checks.append(C.check(f"W1(Euler, PDE) at the smallest eps / (floor + KDE bias {bias:.2e} + Euler error "
                          f"{err[0]:.2e})", to_pde[0] / bound, 1.0, rule="le"))
    for e, a, d, loc in zip(eps, err, to_pde, C.local_slopes(eps, err)):
        rows.append(["order", C.fmt(b), C.fmt(e), C.fmt(e / eps_lin), C.fmt(a), C.fmt(loc), C.fmt(d), C.fmt(floor)])
    rows.append(["order", C.fmt(b), "fit", "", "", C.fmt(p), "", ""])
    return eps, np.array(err), np.array(to_pde), floor, p, (T, n)


def stability_scan(case, n: int, b: float):
    """[(eps, err, stable, x)] up to the first unstable eps, (KDE grid, reference KDE), eps_lin.

    KDEs live on the solver's default KDE grid for b (module docstring for the criterion)."""
    eps_lin = np.e * b**2 / get_flow("js").dbeta(np.array([0.0]))[0]
    ref = particle_run(case, n, 0, b, eps_lin / 8, "heun", fixed=False)
    grid = default_kde_grid(case.grid, b)
    kref = kde_on_grid(ref, grid, b)
    out, law = [], None
    for k in range(-4, 13):
        e = eps_lin * GRID_STEP**k
        x = particle_run(case, n, 0, b, e)
        err = C.l1(kde_on_grid(x, grid, b), kref, grid)
        law = err / e if law is None else law
        stable = err <= UNSTABLE_FACTOR * law * e
        out.append((e, err, stable, x))
        if not stable:
            break
    return out, (grid, kref), eps_lin


def study_gan_euler(quick: bool, out_dir: str) -> dict:
    """GAN step = explicit Euler: order 1 in eps, and the largest stable eps against the bandwidth."""
    started = time.perf_counter()
    checks, rows = [], []
    eps, err, to_pde, floor, p, (T_o, n_o) = _order_part(quick, rows, checks)
    T, n = (1.0, 10_000) if quick else (2.0, 20_000)
    case = demo_case(T)
    fig, axes = C.new_figure(3, 1, width=3.3, height=2.9)
    ax = axes[0, 0]
    ax.plot(eps, err, "o-", color=C.METHOD_COLOURS["particles"], label=f"W1(Euler, reference) (p = {p:.2f})")
    ax.plot(eps, to_pde, "s--", color=C.METHOD_COLOURS["fv"], label="W1(Euler, PDE)")
    ax.axhline(floor, color=C.METHOD_COLOURS["exact"], ls=":", label="Monte-Carlo floor (95%)")
    C.reference_slope(ax, eps, err, 1.0, label=r"$\propto \varepsilon$", factor=0.4)
    C.style_axes(ax, r"GAN step $\varepsilon$", r"$W_1$ at $T$", f"order (N = {n_o:,}, T = {T_o:g})", loglog=True)
    ax.legend(fontsize=6)
    bs = [0.03, 0.045, 0.07]
    eps_max, lin = [], []
    for b in bs:
        scan, reference, eps_lin = stability_scan(case, n, b)
        stable = [s for s in scan if s[2]]
        eps_max.append(stable[-1][0] if stable else np.nan)
        lin.append(eps_lin)
        ratio = np.round(4 * np.log2(eps_max[-1] / eps_lin)) / 4     # a scan point: k/4 exactly
        checks.append(C.check(f"log2(eps_max / eps_lin), b = {b:g} (theory: limit in [0, 1]; scan: "
                              f"[{-STEP_OCTAVE:g}, {1 + STEP_OCTAVE:g}])", ratio, 0.5, 0.5 + STEP_OCTAVE, rule="abs"))
        for e, er, st, _ in scan:
            rows.append(["stability", C.fmt(b), C.fmt(e), C.fmt(e / eps_lin), C.fmt(er), "stable" if st else "UNSTABLE",
                         "", ""])
            axes[0, 1].plot(b, e, "o" if st else "x", color="C2" if st else "C3", ms=4)
        if b == bs[1]:
            _above(axes[0, 2], case, scan, reference, b, n, eps_lin)
    bb = np.linspace(min(bs) * 0.9, max(bs) * 1.1, 50)
    e_lin = np.e * bb**2 / 0.5
    axes[0, 1].plot(bb, e_lin, "k-", lw=1.0, label=r"$e b^2 / \beta'(0)$")
    axes[0, 1].plot(bb, 2 * e_lin, "k--", lw=1.0, label=r"$e b^2 / \beta'(1)$")
    axes[0, 1].plot(bs, eps_max, "D", color="C0", mfc="none", ms=7, label=r"measured $\varepsilon_{max}$")
    axes[0, 1].plot([], [], "o", color="C2", label="stable")
    axes[0, 1].plot([], [], "x", color="C3", label="unstable")
    C.style_axes(axes[0, 1], r"bandwidth $b$", r"GAN step $\varepsilon$", f"stability map (N = {n:,}, T = {T:g})",
                 loglog=True)
    axes[0, 1].set_xticks(bs, [f"{b:g}" for b in bs])
    axes[0, 1].xaxis.set_minor_locator(C.matplotlib.ticker.NullLocator())
    axes[0, 1].legend(fontsize=6)
    expo = C.fit_slope(bs, eps_max)
    rows.append(["stability", "fit", "", "", "", f"eps_max ~ b^{expo:.2f}", "", ""])
    figure = C.save(fig, out_dir, "gan_euler")
    return C.study_result(
        "gan_euler", "GAN step = explicit Euler step: order 1 and the stability limit", checks, figure,
        ["part", "b", "eps", "eps / eps_lin", "error (order: W1 to reference; stability: KDE L1)", "order / verdict",
         "W1 to PDE", "MC floor"], rows,
        "Demo case, js flow (Algorithm 1 with the optimal discriminator), fixed step eps, explicit Euler; "
        "eps_lin = e b^2 / beta'(0). Order: same particles as a Heun reference run with step eps_min/4. "
        f"Stability: eps unstable when the KDE error exceeds {UNSTABLE_FACTOR:g} times the first-order law.",
        started)


def _above(ax, case, scan, reference, b, n: int, eps_lin: float) -> None:
    """KDE_eps - KDE_ref at T: the last stable eps, the first unstable one, and 4 eps_lin."""
    grid, kref = reference
    x = grid.centres[0]
    stable = [s for s in scan if s[2]]
    unstable = [s for s in scan if not s[2]]
    shown = [(s[0], s[3], "C2") for s in stable[-1:]] + [(s[0], s[3], "C1") for s in unstable[-1:]]
    shown.append((4 * eps_lin, particle_run(case, n, 0, b, 4 * eps_lin), "C3"))
    for e, pos, colour in shown:
        verdict = "stable" if e <= (stable[-1][0] if stable else 0) else "unstable"
        ax.plot(x, kde_on_grid(pos, grid, b) - kref, color=colour, lw=0.9,
                label=rf"$\varepsilon$ = {e:.3g} = {e / eps_lin:.2f} $\varepsilon_{{lin}}$ ({verdict})")
    C.style_axes(ax, r"$x$", r"$\hat\rho_\varepsilon(T) - \hat\rho_{ref}(T)$", f"above the limit (b = {b:g})")
    ax.legend(fontsize=6)
