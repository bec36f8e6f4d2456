"""Algorithm 1 with mlp D x mlp G as one compiled JAX program, vmapped over seeds (MATH.md section 8).

The same pieces as the classes of :mod:`fpsolver.gan.neural` (``disc_train``, ``js_targets``,
``gen_fit_mse``), with the outer loop in ``lax.scan`` instead of Python, so that many seeds run as
one batched program (the ``gan_mlp`` study's seed-to-seed spread). Target samples come from a
Gaussian mixture drawn in JAX (not truncated to a box: the box must hold the mass).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from . import neural as nn
from .neural import _dtype, _load_jax, adam_init, disc_train, gen_apply, gen_fit_mse, js_targets, mlp_init


def mixture_sample(key, log_w, means, chols, n: int):
    """n samples of sum_k w_k N(mean_k, L_k L_k^T) (not truncated: the box must hold the mass)."""
    kc, kz = nn.jax.random.split(key)
    comp = nn.jax.random.categorical(kc, log_w, shape=(n,))
    z = nn.jax.random.normal(kz, (n, means.shape[1]), means.dtype)
    return means[comp] + nn.jnp.einsum("nij,nj->ni", chols[comp], z)


def gan_run(key, gparams, dparams, target, z_eval, eps, saves: int, every: int, n: int,
            d_steps: int, g_steps: int, batch: int, lr_d, lr_g, warmup: int = 0):
    """Algorithm 1 with the js targets, mlp D x mlp G, for saves * every outer iterations, all in
    one compiled scan (vmap it over keys for seeds). Per iteration: n fresh target samples and
    G(z), z ~ N(0, I) fresh; ``disc_train`` (d_steps, minibatches of ``batch``); ``js_targets``;
    ``gen_fit_mse`` (g_steps). ``target`` = (log_w, means, chols); ``dparams`` = (layers, centre,
    scale) as in the MLP discriminator; ``warmup`` extra D steps before the first iteration (as
    the MLP discriminator's first fit). Returns G(z_eval) at iterations 0, every, ...,
    saves * every, shape (saves + 1, len(z_eval), dim), and the final logistic loss at each save."""
    log_w, means, chols = (nn.jnp.asarray(a) for a in target)   # traced: index them with traced draws

    def one_iteration(carry, _):
        gp, gopt, dp, dopt, k = carry
        k, k_data, k_z, k_d = nn.jax.random.split(k, 4)
        data = mixture_sample(k_data, log_w, means, chols, n)
        z = nn.jax.random.normal(k_z, (n, z_eval.shape[1]), z_eval.dtype)
        x = gen_apply(gp, z)
        dp, dopt, loss = disc_train(dp, dopt, k_d, data, x, d_steps, batch, lr_d)
        gp, gopt, _ = gen_fit_mse(gp, gopt, z, js_targets(dp, x, eps), g_steps, lr_g)
        return (gp, gopt, dp, dopt, k), loss

    def one_save(carry, _):
        carry, losses = nn.lax.scan(one_iteration, carry, None, length=every)
        return carry, (gen_apply(carry[0], z_eval), losses[-1])

    dopt = adam_init(dparams[0])
    if warmup:
        key, k_data, k_z, k_d = nn.jax.random.split(key, 4)
        x0 = gen_apply(gparams, nn.jax.random.normal(k_z, (n, z_eval.shape[1]), z_eval.dtype))
        dparams, dopt, _ = disc_train(dparams, dopt, k_d, mixture_sample(k_data, log_w, means, chols, n),
                                      x0, warmup, batch, lr_d)
    carry = (gparams, adam_init(gparams), dparams, dopt, key)
    _, (snaps, losses) = nn.lax.scan(one_save, carry, None, length=saves)
    return nn.jnp.concatenate([gen_apply(gparams, z_eval)[None], snaps]), losses


def gan_run_seeds(seeds: Sequence[int], loc, scale, target_weights, target_means, target_covs,
                  z_eval: np.ndarray, eps: float, saves: int, every: int, n: int = 512,
                  fit_steps: int = nn.DEFAULT_FIT_STEPS, options: Optional[dict] = None):
    """:func:`gan_run` for several seeds at once (jax.vmap over the seeds' keys), G_0(z) = loc +
    scale z; D's inputs standardised by the target's mean and per-coordinate standard deviation
    (``fpsolver gan`` estimates them from its first target batch); seed s fixes D's and G's initial
    weights and every draw; ``options`` as the [gan.mlp] table (defaults:
    :data:`fpsolver.gan.neural.DEFAULTS`). Returns numpy arrays (seeds, saves + 1, len(z_eval), dim)
    of samples and (seeds, saves) of D losses."""
    _load_jax()
    o = nn.mlp_options(options)
    dt, width, depth = _dtype(o["dtype"]), o["width"], o["depth"]
    dim = len(loc)
    w = np.asarray(target_weights, float) / np.sum(target_weights)
    means, covs = np.asarray(target_means, float), np.asarray(target_covs, float)
    centre = w @ means
    std = np.sqrt(w @ (means - centre) ** 2 + w @ np.diagonal(covs, axis1=1, axis2=2))
    centre, std = centre.astype(dt), std.astype(dt)
    target = (np.log(w).astype(dt), means.astype(dt), np.linalg.cholesky(covs).astype(dt))

    def init(seed):
        rng = np.random.default_rng([int(seed), 12])
        return ((np.asarray(loc, dt), np.asarray(scale, dt),
                 mlp_init(rng, [dim] + [width] * depth + [dim], dt, zero_last=True)),
                (mlp_init(rng, [dim] + [width] * depth + [1], dt), centre, std),
                rng.integers(0, 2**32, size=2, dtype=np.uint32))

    def one(gparams, dparams, key):
        return gan_run(key, gparams, dparams, target, np.asarray(z_eval, dt), eps, saves, every, n,
                       o["disc_steps"], fit_steps, o["minibatch"], o["lr_disc"], o["lr_gen"],
                       o["warmup_steps"])
    # stack the seeds' initial weights and keys along a leading axis, run them as one vmapped program
    stacked = nn.jax.tree_util.tree_map(lambda *a: np.stack(a), *[init(s) for s in seeds])
    snaps, losses = nn.jax.jit(nn.jax.vmap(one))(*stacked)
    return np.asarray(snaps, float), np.asarray(losses, float)
