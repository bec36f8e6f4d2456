"""fpsolver gan (Algorithm 1 in the loop, MATH.md section 8): players, loop, options, CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.errors import CaseError, InputError
from fpsolver.gan import GanOptions, run_gan
from fpsolver.gan.discriminators import KernelDiscriminator
from fpsolver.gan.generators import MonotoneGenerator
from fpsolver.gan.registry import DISCRIMINATORS, GAN_EXTRA, GENERATORS, BuildContext, _needs_extra
from fpsolver.result import Result

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gan_js_1d.toml"


def _case(flow="js", save=(0.2, 0.4), target_std=1.0, dim=1, **flow_keys):
    if dim == 1:
        dom = {"lower": [-6.0], "upper": [6.0], "cells": [300]}
        tgt = {"kind": "gaussian", "mean": [0.0], "std": [target_std]}
        ini = {"kind": "gaussian", "mean": [2.0], "std": [0.5]}
    else:
        dom = {"lower": [-4.0, -4.0], "upper": [4.0, 4.0], "cells": [48, 48]}
        tgt = {"kind": "gaussian", "mean": [0.0, 0.0], "std": [1.0, 1.0]}
        ini = {"kind": "gaussian", "mean": [1.0, 0.5], "std": [0.5, 0.5]}
    return Case.from_dict({"domain": dom, "target": tgt, "initial": ini, "flow": {"kind": flow, **flow_keys},
                           "time": {"dt": 0.1, "save_times": list(save)}})


def test_monotone_map_density_is_exact():
    """rho_G(G(z)) = phi(z)/G'(z) integrates to 1 and (log rho_G)' matches central differences (O(h^2))."""
    g = MonotoneGenerator(8, theta=np.abs(np.random.default_rng(0).standard_normal(10)) * 0.5)
    xs = np.linspace(-30.0, 30.0, 200001)[:, None]
    assert np.trapezoid(np.exp(g.log_density(xs)[0]), xs[:, 0]) == pytest.approx(1.0, abs=1e-9)
    x, h = np.linspace(-2.0, 2.0, 9)[:, None], 1e-5
    fd = (g.log_density(x + h)[0] - g.log_density(x - h)[0]) / (2 * h)
    np.testing.assert_allclose(g.log_density(x)[1][:, 0], fd, rtol=1e-7, atol=1e-8)


def test_kl_gaussian_loop_is_the_exact_euler_step():
    """kl flow, Gaussian target and start: the Euler step x + eps grad log(rho_d/rho_G) of a Gaussian
    G is affine, inside the monotone class, so every exact fit has residual at round-off and the
    mean follows Euler's recursion m_{k+1} = m_k + eps (m_d - m_k)/s_d^2 - eps (m_k - m_k)/s_k^2 = (1 - eps) m_k."""
    res = run_gan(_case("kl"), epsilon=0.1, knots=8, n=2000)
    assert max(res.meta["fit_residual"]) <= 1e-24
    # the mean of mid-quantile samples of an affine map is its intercept (symmetric latents): (1 - eps)^k m_0
    np.testing.assert_allclose([m[0] for m in res.meta["mean"]], [2.0, 2.0 * 0.9**2, 2.0 * 0.9**4], rtol=1e-12)


def test_first_minimax_step_equals_first_mse_step():
    """MATH.md section 1: at the current theta the MSE gradient is eps x the minimax gradient, so one
    step of each (same step size 1/L) gives the same generator to round-off."""
    case = _case(save=(0.1,))
    a = run_gan(case, epsilon=0.1, fit_steps=1, generator_loss="mse", n=1000)
    b = run_gan(case, epsilon=0.1, fit_steps=1, generator_loss="minimax", n=1000)
    np.testing.assert_allclose(a.positions[-1], b.positions[-1], rtol=0, atol=1e-13)


@pytest.mark.parametrize("disc", ["exact", "kernel"])
@pytest.mark.parametrize("gen", ["monotone", "particles"])
def test_every_numpy_combination_runs_in_1d(disc, gen):
    """Each tier pair takes 4 steps without diverging and stays within 0.1 (in W1) of the js PDE
    (the kernel floor at n = 400, lambda = 1e-3 is ~0.03: studies gan_kernel_floor)."""
    from fpsolver.compare import compare
    from fpsolver.fv import solve_case
    case = _case(save=(0.4,))
    res = run_gan(case, epsilon=0.1, discriminator=disc, generator=gen, n=400)
    assert res.meta["diverged"] is None and res.t.tolist() == [0.0, 0.4]
    assert res.positions.shape == (2, 400, 1)
    assert compare(solve_case(case.with_overrides(dt=0.01)), res)[-1]["w1"] <= 0.1
    if disc == "kernel":
        assert len(res.meta["lbfgs_iterations"]) == 4


@pytest.mark.parametrize("disc", ["exact", "kernel"])
def test_particles_in_2d(disc):
    case = _case(dim=2, save=(0.2,))
    res = run_gan(case, epsilon=0.1, discriminator=disc, n=300)
    assert res.meta["latent"] == "normal" and res.positions.shape == (2, 300, 2)
    assert res.meta["diverged"] is None and np.all(np.isfinite(res.positions))


def test_kernel_discriminator_reaches_the_convex_optimum():
    """L-BFGS to convergence: the penalised logistic loss's gradient vanishes (|g| <= 1e-8, the gtol
    asked is 1e-10 per component), so the fit does not depend on the warm start."""
    rng = np.random.default_rng(3)
    data, fake = rng.standard_normal((400, 1)), 1.0 + 0.5 * rng.standard_normal((400, 1))
    k = KernelDiscriminator(1, np.random.default_rng(0), features=50, penalty=1e-2)
    k.fit(data, fake, rng)
    cold = k.params.copy()
    k.params = rng.standard_normal(k.params.shape)
    k.fit(data, fake, rng)
    np.testing.assert_allclose(k.params, cold, atol=1e-6)
    eps = 1e-6
    d_plus = np.array([k.logit(np.array([[0.3 + eps]]))[0] - k.logit(np.array([[0.3 - eps]]))[0]]) / (2 * eps)
    assert k.grad_logit(np.array([[0.3]]))[0, 0] == pytest.approx(d_plus[0], rel=1e-6)


def test_deterministic_for_a_seed():
    case = _case(save=(0.2,))
    a = run_gan(case, epsilon=0.1, discriminator="kernel", latent="normal", n=200, seed=4)
    b = run_gan(case, epsilon=0.1, discriminator="kernel", latent="normal", n=200, seed=4)
    np.testing.assert_array_equal(a.positions, b.positions)


BIMODAL = EXAMPLE.read_text().replace(
    'kind = "gaussian"\nmean = [0.0]\nstd = [1.0]',
    'kind = "gaussian_mixture"\n[[target.components]]\nweight = 0.5\nmean = [-1.5]\nstd = [0.6]\n'
    '[[target.components]]\nweight = 0.5\nmean = [1.5]\nstd = [0.6]').replace(
    "[0.5, 2.0, 8.0]", "[0.5, 2.0, 4.5]").replace('mean = [2.0]\nstd = [0.5]', 'mean = [1.0]\nstd = [0.5]')


def test_divergence_is_a_result(tmp_path, capsys):
    """MSE fitting alone can diverge: a 12-knot map carrying one mode onto two loses it after t ~ 2
    (JS(rho_G, rho_d) rises for 10 iterations in a row, then every slope collapses to G' = 0 by
    t ~ 4.4). The run stops, keeps the save times reached, records where and why, and the CLI exits
    0 with one line about it."""
    path = tmp_path / "c.toml"
    path.write_text(BIMODAL.replace("knots = 16", "knots = 12"))
    assert 'mean = [-1.5]' in path.read_text()
    assert main(["gan", str(path), "--out", str(tmp_path / "g.npz")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "DIVERGED" in ln]
    assert len(lines) == 1 and ("G' <= 0" in lines[0] or "JS rose for 10 iterations" in lines[0])
    out = Result.load(tmp_path / "g.npz", expect="particles")
    d = out.meta["diverged"]
    assert 2.0 < d["time"] < 4.5 and out.t.tolist() == [0.0, 0.5, 2.0]
    assert len(out.meta["disc_loss"]) == d["iteration"]


def test_options_table_and_errors(tmp_path):
    case = Case.from_toml(EXAMPLE)
    assert run_gan.__module__ == "fpsolver.gan.loop"
    with pytest.raises(CaseError, match="gan.epsilon: save time 0.5 is not a multiple of epsilon = 0.2"):
        GanOptions(epsilon=0.2).resolved(case)
    with pytest.raises(CaseError, match="gan.generator: the monotone map is 1D"):
        GanOptions(generator="monotone").resolved(_case(dim=2))
    with pytest.raises(CaseError, match="gan.fit_steps: the minimax generator loss needs"):
        GanOptions(generator_loss="minimax").resolved(case)
    for good, bad, msg in [("knots = 16", "foo = 1", "gan.foo: unknown key"),
                           ("knots = 16", 'knots = "x"', "gan.knots: must be an integer"),
                           ('latent = "quantiles"', 'latent = "sobol"', "gan.latent: must be one of normal, quantiles")]:
        path = tmp_path / "c.toml"
        path.write_text(EXAMPLE.read_text().replace(good, bad))
        with pytest.raises(CaseError, match=msg):
            run_gan(Case.from_toml(path))
    with pytest.raises(InputError, match="has no GAN generator loss"):
        run_gan(_case("chi2"))
    with pytest.raises(InputError, match="not a multiple of log"):
        run_gan(_case("kl", save=(0.1,)), epsilon=0.1, generator_loss="minimax", fit_steps=2)


def test_missing_extra_is_one_line():
    """The registry's refusal for a tier whose optional dependency is missing names the extra."""
    ctx = BuildContext(dim=1, lower=np.zeros(1), upper=np.ones(1), log_target=None, grad_log_target=None,
                       epsilon=0.1, fit_steps=None, batch=10, n=10, seed=0)
    for what in ("discriminator", "generator"):
        with pytest.raises(InputError) as err:
            _needs_extra(what)(ctx)
        assert str(err.value) == f"--{what} mlp needs JAX: {GAN_EXTRA}" and "\n" not in str(err.value)
    assert set(DISCRIMINATORS) == {"exact", "kernel", "mlp"} and set(GENERATORS) == {"particles", "monotone", "mlp"}


def test_cli_solve_gan_compare_on_the_example(tmp_path, capsys):
    """The new user's path: the generator's law sits on the PDE solution (W1 <= 5e-3 at every save
    time: eps = 0.05 gives ~3e-3, studies gan_order)."""
    pde, gan, fig = tmp_path / "pde.npz", tmp_path / "gan.npz", tmp_path / "cmp.png"
    assert main(["solve", str(EXAMPLE), "--out", str(pde), "--quiet"]) == 0
    assert main(["gan", str(EXAMPLE), "--out", str(gan), "--epsilon", "0.1", "--quiet"]) == 0
    assert Result.load(gan).meta["epsilon"] == 0.1        # the command line wins over [gan]
    assert main(["gan", str(EXAMPLE), "--out", str(gan)]) == 0
    assert "JS(rho_G, rho_d)" in capsys.readouterr().out
    assert main(["compare", str(pde), str(gan), "--json", "--plot", str(fig)]) == 0
    import json
    rows = json.loads(capsys.readouterr().out.split("\nwrote")[0])
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert all(r["w1"] <= 5e-3 for r in rows)
    assert fig.stat().st_size > 10_000


@pytest.mark.parametrize("flow,keys", [("js", {}), ("non-saturating", {}), ("minimax", {"shift": 5.0}),
                                       ("kl", {}), ("arcsinh", {})])
def test_every_gan_form_flow_runs_in_the_loop(flow, keys):
    """Each flow with a GAN generator loss moves the generator towards rho_d = N(0, 1) from N(2, 0.5^2):
    the exact JS(rho_G, rho_d) decreases at every iteration (the flow's dissipation, seen through
    explicit steps inside the stability limit: beta' <= 1 for all five, so with 8 knots (s = 3/4)
    eps_c = 2 s^2 / (beta' pi^2) >= 0.11 > eps = 0.05; at 16 knots and eps = 0.1 non-saturating,
    with beta'(1) = 1/2, is past its eps_c = 0.057 and diverges)."""
    res = run_gan(_case(flow, **keys), epsilon=0.05, knots=8, n=1000)
    js = np.array(res.meta["js"])
    assert res.meta["diverged"] is None and np.all(np.diff(js) < 0), js
    assert res.meta["flow_name"] == ("minimax(shift=5)" if keys else flow)


class _BlowsUp(MonotoneGenerator):
    """The monotone map whose second fit overflows (a stand-in for an optimiser that blew up)."""

    fits = 0

    def fit_mse(self, z, targets, steps, rng):
        self.fits += 1
        res = super().fit_mse(z, targets, steps, rng)
        if self.fits == 2:
            self.theta = self.theta * np.inf
        return res


def test_non_finite_generator_is_a_recorded_divergence(tmp_path):
    g = _BlowsUp(8)
    g.theta[:2] = 2.0, 0.5
    with np.errstate(all="raise"):      # detection, not a warning or a NaN in the file
        res = run_gan(_case(save=(0.1, 0.2, 0.3)), epsilon=0.1, n=200, initial_generator=g)
    assert res.meta["diverged"] == {"iteration": 2, "time": 0.2, "reason": "non-finite generator parameters"}
    assert res.t.tolist() == [0.0, 0.1] and np.all(np.isfinite(res.positions))
    res.save(tmp_path / "g.npz")
    assert Result.load(tmp_path / "g.npz").meta["diverged"]["iteration"] == 2
