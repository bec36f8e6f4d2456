"""MLP GAN timings (fpsolver gan --discriminator mlp --generator mlp, 2D), side by side with numpy.

    python benchmarks/bench_gan_mlp.py            # whole run of 2000 outer iterations + per-part timings
    python benchmarks/bench_gan_mlp.py --quick    # 200 iterations, fewer repeats (smoke test)

1. A whole run of examples/gan_mlp_2d.toml through the loop (fpsolver.gan.loop.run_gan), 2000 outer
   iterations, JIT compilation included (it is the first JAX work in the process). Target: <= 60 s
   on 2 cores.
2. One outer iteration in its three parts, at the example's sizes: D training (disc_steps Adam
   steps on minibatches), target computation (d and grad_x d at the batch, y = x + eps h'(d) grad d),
   G fitting (K Adam steps on the MSE). Each beside a plain numpy version of the same computation
   (the same tanh MLPs, forward and backward written out, the same Adam), after checking that the
   two agree. Medians (and minima) of repeats; the load average is printed because the machine may
   be shared.
3. The same 2000 iterations as one compiled program (fpsolver.gan.neural_run, Python out of the loop).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# numpy's BLAS on one thread: at these sizes (512 x 32 matrices) threads add only synchronisation,
# which on a shared machine turns into waits of tens of ms (set before numpy is imported)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fpsolver.case import Case  # noqa: E402
from fpsolver.gan import neural  # noqa: E402
from fpsolver.gan.loop import run_gan  # noqa: E402
from fpsolver.gan.options import from_table, merged  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_particles import timings  # noqa: E402  (the same median-of-repeats timer, this folder)

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "gan_mlp_2d.toml")
LIMIT_S = 60.0




# ------------------------------------------------------------------ numpy reference

def np_forward(layers, x):
    """Activations of a tanh MLP (linear output): [x, h1, ..., out]."""
    acts = [x]
    for w, b in layers[:-1]:
        acts.append(np.tanh(acts[-1] @ w + b))
    w, b = layers[-1]
    acts.append(acts[-1] @ w + b)
    return acts


def np_backward(layers, acts, g_out):
    """(parameter gradients, input gradient) for the upstream gradient g_out of the output."""
    grads, g = [], g_out
    for i in range(len(layers) - 1, -1, -1):
        w, _ = layers[i]
        grads.append((acts[i].T @ g, g.sum(axis=0)))
        g = g @ w.T
        if i > 0:
            g = g * (1.0 - acts[i] ** 2)
    return grads[::-1], g


class NpAdam:
    def __init__(self, params, lr):
        self.lr, self.t = lr, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        b1, b2 = neural.ADAM_BETAS
        self.t += 1
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            mh, vh = self.m[i] / (1 - b1 ** self.t), self.v[i] / (1 - b2 ** self.t)
            out.append(p - self.lr * mh / (np.sqrt(vh) + neural.ADAM_EPS))
        return out


def _flat(layers):
    return [a for wb in layers for a in wb]


def _layers(flat):
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _sig(t):
    return 0.5 * (1.0 + np.tanh(0.5 * t))


def np_disc_train(layers, adam, data, fake, steps, batch, rng, centre, scale):
    """``steps`` Adam steps on mean softplus(-d(data)) + mean softplus(d(fake)), fresh minibatches."""
    for _ in range(steps):
        xd = (data[rng.integers(0, len(data), batch)] - centre) / scale
        xf = (fake[rng.integers(0, len(fake), batch)] - centre) / scale
        x = np.concatenate([xd, xf])
        acts = np_forward(layers, x)
        d = acts[-1][:, 0]
        g_out = np.concatenate([-_sig(-d[:batch]), _sig(d[batch:])])[:, None] / batch
        grads, _ = np_backward(layers, acts, g_out)
        layers = _layers(adam.step(_flat(layers), _flat(grads)))
    return layers


def np_targets(layers, x, eps, centre, scale):
    """y = x + eps sigmoid(d) grad d / 2 (js), grad d by backpropagation to the input."""
    acts = np_forward(layers, (x - centre) / scale)
    d = acts[-1][:, 0]
    _, g = np_backward(layers, acts, np.ones((len(x), 1)))
    return x + eps * 0.5 * _sig(d)[:, None] * g / scale


def np_gen_fit(gparams, adam, z, y, steps):
    """``steps`` full-batch Adam steps on mean |a + S z + MLP(z) - y|^2."""
    a, s, layers = gparams
    m = len(z)
    for _ in range(steps):
        acts = np_forward(layers, z)
        r = a + z @ s.T + acts[-1] - y
        g_out = 2.0 * r / m
        grads, _ = np_backward(layers, acts, g_out)
        flat = adam.step([a, s] + _flat(layers), [g_out.sum(axis=0), g_out.T @ z] + _flat(grads))
        a, s, layers = flat[0], flat[1], _layers(flat[2:])
    return a, s, layers


# ------------------------------------------------------------------ the three measurements

def whole_run(case, opts) -> tuple[float, float, dict]:
    """(wall, CPU time of the process, meta) of one run."""
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_gan(case, opts)
    return time.perf_counter() - t0, time.process_time() - c0, res.meta


def parts(case, opts, repeats: int) -> None:
    """Per-iteration D training, targets, G fitting: JAX classes vs numpy, same sizes."""
    o = neural.mlp_options(opts.mlp)
    rng = np.random.default_rng(0)
    batch, eps, k = opts.batch, opts.epsilon, opts.fit_steps
    disc = neural.MLPDiscriminator(2, width=o["width"], depth=o["depth"], steps=o["disc_steps"],
                                   batch=o["minibatch"], lr=o["lr_disc"], dtype="float64",
                                   centre=[0.0, 0.0], scale=[2.0, 2.0])
    gen = neural.MLPGenerator(2, loc=[0.0, -1.0], scale=0.8 * np.eye(2), width=o["width"],
                              depth=o["depth"], lr=o["lr_gen"], dtype="float64")
    data = case.target.sample(batch, rng, case.grid)
    z = rng.standard_normal((batch, 2))
    fake = gen.sample(z)
    disc.fit(data, fake, rng)
    np_d = [tuple(np.array(a) for a in wb) for wb in disc.params[0]]
    c, s = np.array(disc.params[1]), np.array(disc.params[2])
    # the numpy reference computes the same thing (float64 both): targets agree to round-off
    _, gj = disc.logit_and_grad(fake)
    y_np = np_targets(np_d, fake, eps, c, s)
    dj = disc.logit(fake)
    y_jax = fake + eps * 0.5 * _sig(dj)[:, None] * gj
    print(f"  check: |targets numpy - jax| = {np.abs(y_np - y_jax).max():.1e} (float64)")
    out = {}
    for dtype in ("float32", "float64"):
        disc32 = neural.MLPDiscriminator(2, width=o["width"], depth=o["depth"], steps=o["disc_steps"],
                                         batch=o["minibatch"], lr=o["lr_disc"], dtype=dtype,
                                         centre=[0.0, 0.0], scale=[2.0, 2.0])
        gen32 = neural.MLPGenerator(2, loc=[0.0, -1.0], scale=0.8 * np.eye(2), width=o["width"],
                                    depth=o["depth"], lr=o["lr_gen"], dtype=dtype)
        disc32.fit(data, fake, rng)
        y = y_jax
        t_d = timings(lambda: disc32.fit(data, fake, rng), repeats)
        t_t = timings(lambda: disc32.logit_and_grad(fake), repeats)
        t_g = timings(lambda: gen32.fit_mse(z, y, k, rng), repeats)
        out[dtype] = (t_d, t_t, t_g)
        print(f"  JAX {dtype}:   D training {_ms(t_d)}, targets {_ms(t_t)}, G fitting {_ms(t_g)}")
    adam_d = NpAdam(_flat(np_d), o["lr_disc"])
    gp = (np.array([0.0, -1.0]), 0.8 * np.eye(2), [tuple(np.array(a) for a in wb) for wb in gen.params[2]])
    adam_g = NpAdam([gp[0], gp[1]] + _flat(gp[2]), o["lr_gen"])
    n_d = timings(lambda: np_disc_train(np_d, adam_d, data, fake, o["disc_steps"], o["minibatch"], rng, c, s),
                  repeats)
    n_t = timings(lambda: np_targets(np_d, fake, eps, c, s), repeats)
    n_g = timings(lambda: np_gen_fit(gp, adam_g, z, y_np, k), repeats)
    print(f"  numpy float64: D training {_ms(n_d)}, targets {_ms(n_t)}, G fitting {_ms(n_g)}")
    for dtype, ts in out.items():
        ratios = ", ".join(f"{name} {n[0] / t[0]:.1f}x" for name, n, t in
                           zip(("D training", "targets", "G fitting"), (n_d, n_t, n_g), ts))
        print(f"  speed-up of JAX {dtype} over numpy (medians): {ratios}")


def fused(case, opts, iterations: int) -> tuple[float, float]:
    from fpsolver.gan.neural_run import gan_run_seeds
    t = case.target
    z = np.random.default_rng(1).standard_normal((opts.n, 2))
    t0, c0 = time.perf_counter(), time.process_time()
    gan_run_seeds([0], [0.0, -1.0], 0.8 * np.eye(2), t.weights, t.means, t.covs, z, opts.epsilon, 1,
                  iterations, n=opts.batch, fit_steps=opts.fit_steps, options=opts.mlp)
    return time.perf_counter() - t0, time.process_time() - c0


def _ms(t) -> str:
    return f"{1e3 * t[0]:7.2f} ms (min {1e3 * t[1]:6.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    iterations = 200 if args.quick else 2000
    repeats = 5 if args.quick else 21
    base = Case.from_toml(EXAMPLE)
    case = base.with_overrides(save_times=[round(iterations * from_table(base.raw["gan"]).epsilon, 10)])
    opts = merged(from_table(base.raw.get("gan"))).resolved(case)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; example {os.path.basename(EXAMPLE)}, "
          f"batch {opts.batch}, K = {opts.fit_steps}, [gan.mlp] {neural.mlp_options(opts.mlp)}")
    wall, cpu, meta = whole_run(case, opts)
    per = np.array(meta["iteration_wall"])
    verdict = "met" if wall <= LIMIT_S or args.quick else "NOT met"
    print(f"whole run, {meta['iterations']} outer iterations (JIT compile included): {wall:.1f} s "
          f"(target <= {LIMIT_S:.0f} s for 2000: {verdict}; CPU time {cpu:.1f} s); "
          f"median iteration {1e3 * np.median(per):.2f} ms")
    print("one outer iteration, by part (median of repeats):")
    parts(case, opts, repeats)
    f_wall, f_cpu = fused(case, opts, iterations)
    print(f"the same {iterations} iterations as one compiled program (compile included): "
          f"{f_wall:.1f} s (CPU time {f_cpu:.1f} s)")


if __name__ == "__main__":
    main()
