"""Algorithm 1 in the loop (MATH.md sections 1, 7 and 8), for every flow whose generator loss has a GAN form.

Outer iteration k (step eps), with latents z_i and x_i = G_k(z_i):

1. train D = sigmoid(d) on samples of rho_d and the x_i;
2. targets y_i = x_i + eps h'(d(x_i)) grad d(x_i), h'(t) = beta'(e^{-t}) of the flow
   (js: h' = sigmoid/2, so y = x + eps grad D / (2 (1 - D)));
3. fit G_{k+1} to the frozen targets by the MSE (exactly, or K steps: ``fit_steps``), or take
   K steps on eps' mean log(1 - D(G_theta(z))) with D frozen (``generator_loss = "minimax"``;
   eps' = 2 eps h'/sigmoid, so that its first step is the MSE's first step; js and minimax only).

With D = D* and an exact fit this is the explicit Euler step of the flow's particle ODE; the output
holds N fresh generator samples at the case's save times, readable by ``fpsolver compare``.
Divergence is a result: non-finite parameters or targets, G' <= 0 (monotone map), or a monitored
divergence rising for PATIENCE iterations in a row ends the run with ``meta["diverged"]``.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import numpy as np
from scipy.special import ndtri

from .. import __version__
from ..errors import InputError
from ..flows import GAN_FORM_FLOWS, PRESETS
from ..result import Result
from .base import logit_and_grad
from .options import PATIENCE, GanOptions
from .registry import DISCRIMINATORS, GENERATORS, BuildContext
from .target import GanTarget, cell_quantiles

_JS = PRESETS["js"]
_LOG4 = float(np.log(4.0))
_RISE_TOL = 1e-12      # a rise smaller than this (round-off of a converged JS) does not count


def run_gan(case, options: Optional[GanOptions] = None, *, progress: Optional[Callable] = None,
            initial_generator=None, **overrides) -> Result:
    """Run Algorithm 1 on ``case`` (module docstring) and return a particle Result.

    ``options`` (default: the case's ``[gan]`` table) with keyword ``overrides`` on top, e.g.
    ``run_gan(case, epsilon=0.05, knots=16, discriminator="kernel")``. ``initial_generator``
    (optional) is G_0 itself, used instead of the one built from rho_0 (e.g. a perturbed equilibrium).
    """
    from .options import from_table, merged
    base = options if options is not None else from_table(case.raw.get("gan"))
    opts = merged(base, **overrides).resolved(case)
    flow, weight = _flow_and_loss_weight(case, opts)
    run = _Run(case, opts, flow, weight, initial_generator)
    return run.execute(progress)


def _flow_and_loss_weight(case, opts: GanOptions):
    """The flow, and for the minimax loss the weight w with w d/dx log(1 - sigmoid(d)) = -2 h'(d) grad d."""
    if case.flow not in GAN_FORM_FLOWS and case.custom is None:   # a user's flow is its own h'
        raise InputError(f"fpsolver gan: flow {case.flow!r} has no GAN generator loss "
                         f"(one of {', '.join(GAN_FORM_FLOWS)}, or a flow of your own)")
    flow = case.local_flow()
    weight = None
    if opts.generator_loss == "minimax":
        t = np.linspace(-20.0, 20.0, 81)
        ratio = np.exp(flow.log_dbeta(-t)) * (1.0 + np.exp(-t))     # h'(t) / sigmoid(t)
        if not np.allclose(ratio, ratio[0], rtol=1e-12):
            raise InputError(f"--generator-loss minimax: flow {flow.name!r} is not a multiple of "
                             "log(1 - D) (js or minimax without shift)")
        weight = 2.0 * opts.epsilon * float(ratio[0])
    return flow, weight


class _Run:
    """One run: players, latents, per-iteration records, save times."""

    def __init__(self, case, opts: GanOptions, flow, loss_weight, initial_generator=None):
        self.case, self.opts, self.flow, self.loss_weight = case, opts, flow, loss_weight
        self.rng = np.random.default_rng(opts.seed)
        self.out_rng = np.random.default_rng([opts.seed, 1])     # output draws: training unaffected
        self.target = GanTarget(case)
        dim = case.grid.dim
        init = self._initial_points(opts.n if opts.generator == "particles" else opts.batch)
        ctx = BuildContext(dim=dim, lower=np.array(case.grid.lower), upper=np.array(case.grid.upper),
                           log_target=self.target.log_pdf, grad_log_target=self.target.grad_log_pdf,
                           epsilon=opts.epsilon, fit_steps=opts.fit_steps, batch=opts.batch, n=opts.n,
                           seed=opts.seed, latent=opts.latent, knots=opts.knots, init_samples=init,
                           options={"kernel": dict(opts.kernel), "mlp": dict(opts.mlp)},
                           case=case, target=self.target, rng=self.rng)
        self.generator = GENERATORS[opts.generator](ctx) if initial_generator is None else initial_generator
        self.disc = DISCRIMINATORS[opts.discriminator](ctx)
        self.records = {"disc_loss": [], "fit_residual": [], "js": [], "js_estimate": [],
                        "min_slope": [], "iteration_wall": []}

    def _initial_points(self, m: int) -> np.ndarray:
        """m points of rho_0: its mid-quantiles with quantile latents (1D), else exact samples."""
        if self.opts.latent == "quantiles":
            _, initial = self.case.discretised()
            p = (np.arange(m) + 0.5) / m
            return cell_quantiles(initial.cells, self.case.grid, p)[:, None]
        return np.asarray(self.case.initial.sample(m, self.rng, self.case.grid), dtype=float)

    def _latents(self, m: int, rng) -> np.ndarray:
        if hasattr(self.generator, "latents"):      # particles: every particle, by index
            return self.generator.latents()
        if self.opts.latent == "quantiles":
            return ndtri((np.arange(m) + 0.5) / m)[:, None]
        return rng.standard_normal((m, self.generator.dim))

    def _hprime(self, d: np.ndarray) -> np.ndarray:
        """h'(d) = beta'(e^{-d})."""
        with np.errstate(over="ignore", invalid="ignore"):
            return np.exp(self.flow.log_dbeta(-d))

    def step(self):
        """One outer iteration; returns the reason it diverged, or None."""
        o, g = self.opts, self.generator
        z = self._latents(o.batch, self.rng)
        x = g.sample(z)
        data = self.target.sample(o.batch, self.rng)
        loss = self.disc.fit(data, x, self.rng, generator=g)
        self.records["disc_loss"].append(float(loss))
        if o.generator_loss == "mse":
            d, grad = logit_and_grad(self.disc, x)
            y = x + o.epsilon * self._hprime(d)[:, None] * grad
            if not np.all(np.isfinite(y)):
                self.records["fit_residual"].append(None)
                return "non-finite targets"
            res = g.fit_mse(z, y, o.fit_steps, self.rng)
        else:
            res = g.fit_minimax(z, self.disc, o.fit_steps, self.rng, self.loss_weight)
        self.records["fit_residual"].append(float(res))
        if not g.is_finite():
            return "non-finite generator parameters"
        if hasattr(g, "slope"):
            slope = float(np.min(g.slope(z)))
            self.records["min_slope"].append(slope)
            if not slope > 0:
                return f"G' <= 0 (min G' = {slope:.3g})"
        return None

    def execute(self, progress) -> Result:
        o, case = self.opts, self.case
        total = int(round(case.save_times[-1] / o.epsilon))
        save_at = {int(round(t / o.epsilon)): t for t in case.save_times}
        times, positions = [0.0], [self._output()]
        js_now = self._js()
        self.records["js"].append(js_now)
        diverged, rises, previous = None, 0, self._monitored(js_now, None)
        start = time.perf_counter()
        for k in range(1, total + 1):
            t0 = time.perf_counter()
            with np.errstate(all="ignore"):     # a diverging generator is detected below, by value
                reason = self.step()
            if reason is None:
                js_now = self._js()
                self.records["js"].append(js_now)
                est = (_LOG4 - self.records["disc_loss"][-1]) / 2.0
                self.records["js_estimate"].append(est)
                now = self._monitored(js_now, est)
                rises = rises + 1 if now > previous + _RISE_TOL else 0
                previous = now
                if rises >= PATIENCE:
                    reason = f"the monitored JS rose for {PATIENCE} iterations in a row (to {now:.4g})"
            self.records["iteration_wall"].append(time.perf_counter() - t0)
            if reason is not None:
                diverged = {"iteration": k, "time": k * o.epsilon, "reason": reason}
                break
            if k in save_at:
                times.append(save_at[k])
                positions.append(self._output())
            if progress is not None:
                progress(k, f"t={k * o.epsilon:.4g}")
        return self._result(times, positions, diverged, time.perf_counter() - start, total)

    def _output(self) -> np.ndarray:
        """N fresh generator samples (the particles themselves for the particle generator)."""
        return np.asarray(self.generator.sample(self._latents(self.opts.n, self.out_rng)), dtype=float)

    def _js(self):
        """JS(rho_G, rho_d) on the case cells where the generator's density is known, else None."""
        g = self.generator
        if not hasattr(g, "log_density"):
            return None
        pts = self.case.grid.points()
        if not hasattr(self, "_log_rho_d_cells"):
            self._log_rho_d_cells = self.target.log_pdf(pts)
        with np.errstate(all="ignore"):
            log_g = g.log_density(pts)[0]
            val = _JS.energy_from_logs(log_g, self._log_rho_d_cells, self.case.grid.cell_volume)
        return float(val) if np.isfinite(val) else None

    @staticmethod
    def _monitored(js, estimate) -> float:
        """The exact JS where known, else the discriminator's estimate (log 4 - loss)/2 (0 at the start)."""
        if js is not None:
            return js
        return 0.0 if estimate is None else estimate

    def _result(self, times, positions, diverged, wall, total) -> Result:
        o, case = self.opts, self.case
        pos = np.stack(positions)
        target, _ = case.discretised()
        meta = {"kind": "particles", "backend": "gan", "mode": "gan", "version": __version__,
                "case": case.raw, "source": case.source, "flow": case.flow, "flow_name": self.flow.name,
                "epsilon": o.epsilon, "discriminator": o.discriminator, "generator": o.generator,
                "knots": o.knots if o.generator == "monotone" else None, "fit_steps": o.fit_steps,
                "generator_loss": o.generator_loss, "latent": o.latent, "n": int(pos.shape[1]),
                "n_saved": int(pos.shape[1]), "batch": o.batch, "seed": o.seed,
                "kernel": dict(o.kernel), "mlp": dict(o.mlp), "grid": case.grid.to_dict(),
                "iterations": len(self.records["disc_loss"]), "iterations_planned": total,
                "diverged": diverged, "wall_time": wall,
                "mean": [np.mean(p, axis=0).tolist() for p in pos],
                "std": [np.std(p, axis=0).tolist() for p in pos]}
        meta.update(self.records)
        if hasattr(self.disc, "lengthscale"):
            meta["kernel"] = {"features": self.disc.M, "lengthscale": self.disc.lengthscale,
                              "penalty": self.disc.penalty}
            meta["lbfgs_iterations"] = self.disc.iterations
        return Result(t=np.array(times), meta=meta, axes=case.grid.centres, positions=pos,
                      rho_d=np.exp(target.log_cells).reshape(case.grid.shape))


