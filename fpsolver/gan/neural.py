"""The neural tier of Algorithm 1 (MATH.md sections 1 and 8): an MLP discriminator and an MLP generator.

Discriminator. D = sigmoid(d), d(x) = MLP((x - c) / s) with tanh hidden layers, trained by Adam on
the logistic loss  L(d) = mean softplus(-d(x_data)) + mean softplus(d(x_fake))  over fresh
minibatches drawn (with replacement) from the samples of rho_d and of the generator handed to
``fit``; its minimiser over all functions is d* = log(rho_d / rho_G). The parameters and Adam's
moments persist from one outer iteration to the next (warm start, as in GAN training).
grad_x d is exact, by automatic differentiation.

Generator. G(z) = a + S z + MLP(z), latent z ~ N(0, I_dim): an affine map plus a tanh MLP whose
last layer starts at zero, so G_0 is exactly affine (a Gaussian law). Fitted by Adam either to
frozen targets, (1/m) sum_i |G(z_i) - y_i|^2 (sum over coordinates, mean over samples), or on
w (1/m) sum_i log(1 - D(G(z_i))) = -w mean softplus(d(G(z_i))) with D frozen. At the current
parameters the two gradients agree when y_i = G(z_i) + eps h'(d) grad d with js's h' = sigmoid/2
and w = eps (MATH.md section 1); Adam's moments persist across outer iterations.

Every inner loop (all Adam steps of one ``fit``) is one jitted ``lax.fori_loop``, so an outer
iteration costs three compiled calls, whatever the step counts.

Precision: float32 by default. The errors that matter here are statistical (minibatches of a few
hundred samples: relative error ~ 1/sqrt(batch) ~ 5e-2) or Adam's own step size (~ lr), both many
orders above float32's round-off (6e-8), and float32 matmuls are the faster path on CPU.
``dtype="float64"`` is available (JAX's x64 switch is turned on when JAX is first loaded, and
every array here carries an explicit dtype, so float32 runs are unchanged by it); the tests use
it where a check needs more than float32 (finite differences, a fit to round-off).

Determinism: initial parameters come from jax.random keys made from the builder's seed; each
``fit`` draws its key from the numpy Generator the loop passes (itself seeded from --seed), so a
run repeats exactly for a seed.

JAX is optional (``pip install "fpsolver[gan]"``) and imported only when an MLP is built.
"""
from __future__ import annotations

import functools
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from .registry import GAN_EXTRA
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

jax = jnp = lax = None  # bound by _load_jax() on first use; importing fpsolver never imports JAX


def _load_jax():
    """Import JAX (once), enable float64 support; InputError naming the extra when it is absent."""
    global jax, jnp, lax
    if jax is None:
        try:
            import jax as _jax
        except ImportError:
            raise InputError(f"the mlp discriminator and generator need JAX: {GAN_EXTRA}") from None
        _jax.config.update("jax_enable_x64", True)
        jax, jnp, lax = _jax, _jax.numpy, _jax.lax
    return jax


def _dtype(name: str):
    if name not in ("float32", "float64"):
        raise InputError(f"mlp dtype must be float32 or float64, not {name!r}")
    return np.dtype(name)


# ------------------------------------------------------------------ pure functions (JAX)

def mlp_init(rng: np.random.Generator, sizes: Sequence[int], dtype, zero_last: bool = False):
    """Layers ((W, b), ...) for widths ``sizes``; W ~ N(0, 1/fan_in) (unit-variance tanh inputs).
    Drawn by numpy (no JAX program to compile for a few random numbers); numpy arrays, which the
    compiled functions take as they are."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
        layers.append((w, np.zeros(n_out, dtype)))
    if zero_last:
        layers[-1] = (np.zeros_like(layers[-1][0]), layers[-1][1])
    return tuple(layers)


def mlp_apply(layers, x):
    """tanh hidden layers, linear output."""
    for w, b in layers[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = layers[-1]
    return x @ w + b


def adam_init(params):
    """(step count, first moments, second moments), all zero (numpy: nothing to compile)."""
    zeros = jax.tree_util.tree_map(lambda p: np.zeros(np.shape(p), p.dtype), params)
    return (np.zeros((), np.int32), zeros, zeros)


def adam_step(params, opt, grads, lr):
    """One Adam step (bias-corrected moments) on a pytree of parameters."""
    b1, b2 = ADAM_BETAS
    t, m, v = opt
    t = t + 1
    m = jax.tree_util.tree_map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
    v = jax.tree_util.tree_map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
    c1 = 1 - b1 ** t.astype(jnp.float64)
    c2 = 1 - b2 ** t.astype(jnp.float64)

    def move(p, m_, v_):
        step = (m_ / c1.astype(p.dtype)) / (jnp.sqrt(v_ / c2.astype(p.dtype)) + ADAM_EPS)
        return p - jnp.asarray(lr, p.dtype) * step
    return jax.tree_util.tree_map(move, params, m, v), (t, m, v)


def logit_apply(dparams, x):
    """d(x): dparams = (layers, centre, scale)."""
    layers, centre, scale = dparams
    return mlp_apply(layers, (x - centre) / scale)[:, 0]


def disc_loss(layers, centre, scale, x_data, x_fake):
    """mean softplus(-d(data)) + mean softplus(d(fake)) = -mean log D(data) - mean log(1 - D(fake))."""
    dp = (layers, centre, scale)
    return (jnp.mean(jax.nn.softplus(-logit_apply(dp, x_data)))
            + jnp.mean(jax.nn.softplus(logit_apply(dp, x_fake))))


def disc_train(dparams, opt, key, data, fake, steps: int, batch: int, lr):
    """``steps`` Adam steps on the logistic loss, each on fresh minibatches of ``batch`` data and
    ``batch`` fake points (drawn with replacement; the whole arrays when they are not larger)."""
    layers, centre, scale = dparams
    grad = jax.grad(disc_loss)

    def pick(k, pool):
        if pool.shape[0] <= batch:
            return pool
        return pool[jax.random.randint(k, (batch,), 0, pool.shape[0])]

    def body(i, carry):
        lay, op = carry
        kd, kf = jax.random.split(jax.random.fold_in(key, i))
        g = grad(lay, centre, scale, pick(kd, data), pick(kf, fake))
        return adam_step(lay, op, g, lr)
    layers, opt = lax.fori_loop(0, steps, body, (layers, opt))
    return (layers, centre, scale), opt, disc_loss(layers, centre, scale, data, fake)


def grad_logit_apply(dparams, x):
    """grad_x d(x), (n, dim): the gradient of sum_i d(x_i), each term depending on its own x_i."""
    return jax.grad(lambda y: jnp.sum(logit_apply(dparams, y)))(x)


def gen_apply(gparams, z):
    """G(z) = a + S z + MLP(z): gparams = (a, S, layers)."""
    a, s, layers = gparams
    return a + z @ s.T + mlp_apply(layers, z)


def _mse(gparams, z, y):
    return jnp.mean(jnp.sum((gen_apply(gparams, z) - y) ** 2, axis=1))


def gen_fit_mse(gparams, opt, z, y, steps: int, lr):
    """``steps`` full-batch Adam steps on (1/m) sum_i |G(z_i) - y_i|^2, targets frozen."""
    grad = jax.grad(_mse)

    def body(i, carry):
        gp, op = carry
        return adam_step(gp, op, grad(gp, z, y), lr)
    gparams, opt = lax.fori_loop(0, steps, body, (gparams, opt))
    return gparams, opt, _mse(gparams, z, y)


def _minimax(gparams, dparams, z, weight):
    # log(1 - sigmoid(d)) = -softplus(d)
    return -weight * jnp.mean(jax.nn.softplus(logit_apply(dparams, gen_apply(gparams, z))))


def gen_fit_minimax(gparams, opt, dparams, z, steps: int, lr, weight):
    """``steps`` Adam steps on weight (1/m) sum_i log(1 - D(G(z_i))), the MLP discriminator frozen."""
    grad = jax.grad(_minimax)

    def body(i, carry):
        gp, op = carry
        return adam_step(gp, op, grad(gp, dparams, z, weight), lr)
    gparams, opt = lax.fori_loop(0, steps, body, (gparams, opt))
    return gparams, opt, _minimax(gparams, dparams, z, weight)


def _minimax_vjp_step(gparams, opt, z, upstream, lr):
    """One Adam step when D is not a JAX function: the chain rule with the upstream gradient
    dL/dG(z_i) computed outside (numpy), so only G is differentiated here."""
    _, pullback = jax.vjp(lambda gp: gen_apply(gp, z), gparams)
    return adam_step(gparams, opt, pullback(upstream)[0], lr)


def logit_and_grad_apply(dparams, x):
    """(d(x), grad_x d(x)) in one pass."""
    d, pullback = jax.vjp(lambda y: logit_apply(dparams, y), x)
    return d, pullback(jnp.ones_like(d))[0]


def js_targets(dparams, x, eps):
    """y = x + eps h'(d) grad d with js's h'(t) = sigmoid(t) / 2 (= eps grad D / (2 (1 - D)))."""
    return x + eps * 0.5 * jax.nn.sigmoid(logit_apply(dparams, x))[:, None] * grad_logit_apply(dparams, x)


@functools.lru_cache(maxsize=None)
def compiled(name: str):
    """The jitted version of one of the functions above (step counts and batch sizes static)."""
    _load_jax()
    static = {"disc_train": ("steps", "batch"), "gen_fit_mse": ("steps",),
              "gen_fit_minimax": ("steps",)}.get(name, ())
    return jax.jit(globals()[name], static_argnames=static)


def _key_from(rng: np.random.Generator) -> np.ndarray:
    """A raw jax key (uint32[2]) drawn from the loop's numpy Generator (the loop's seed fixes
    every draw); made in numpy, so no key-making program is compiled."""
    return rng.integers(0, 2**32, size=2, dtype=np.uint32)


# ------------------------------------------------------------------ the two players

# [gan.mlp] keys: hidden width and layers of both nets, D's Adam steps per outer iteration and
# minibatch, the two learning rates, the float type, G_0's fitting steps (non-Gaussian rho_0),
# D's extra steps before its first use
MLP_KEYS = {"width": int, "depth": int, "disc_steps": int, "minibatch": int, "lr_disc": float,
            "lr_gen": float, "dtype": str, "init_steps": int, "warmup_steps": int}
# defaults: a 2000-iteration 2D run in well under a minute on 2 cores; lr_gen 3e-3 rather than 1e-3
# because Adam moves G by ~lr per step, and K lr must cover the step eps |v| (SW1 to the PDE at
# T = 4 in the gan_mlp set-up at eps = 0.04: 0.10 against 0.13 with 1e-3; width 64 did worse than 32)
DEFAULTS = {"width": 32, "depth": 2, "disc_steps": 10, "minibatch": 256, "lr_disc": 2e-3,
            "lr_gen": 3e-3, "dtype": "float32", "init_steps": 500,
            "warmup_steps": 200}
DEFAULT_FIT_STEPS = 10


class MLPDiscriminator:
    """D = sigmoid(d), d an MLP trained by Adam on the logistic loss (see the module docstring).

    ``centre`` and ``scale`` (per coordinate) standardise the inputs; when None they are taken
    from the first data set seen and then kept fixed. The first ``fit`` also takes (at least)
    ``warmup_steps`` more steps: the first targets then come from a trained D (an untrained D's
    gradient points anywhere), and the loss does not fall merely because D is still learning.
    """

    def __init__(self, dim: int, width: int = DEFAULTS["width"], depth: int = DEFAULTS["depth"],
                 steps: int = DEFAULTS["disc_steps"], batch: int = DEFAULTS["minibatch"],
                 lr: float = DEFAULTS["lr_disc"], seed: int = 0, dtype: str = DEFAULTS["dtype"],
                 centre: Optional[Sequence[float]] = None, scale: Optional[Sequence[float]] = None,
                 warmup_steps: int = 0):
        _load_jax()
        _check_sizes(dim=dim, width=width, depth=depth, steps=steps, batch=batch)
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise InputError(f"mlp discriminator: warmup_steps must be an integer >= 0, not {warmup_steps!r}")
        self._warmup_calls = -(-int(warmup_steps) // int(steps))   # whole calls of the compiled loop
        if not lr > 0:
            raise InputError(f"mlp discriminator: lr must be positive, not {lr}")
        self.dim, self.steps, self.batch, self.lr = int(dim), int(steps), int(batch), float(lr)
        self.dtype = _dtype(dtype)
        sizes = [self.dim] + [int(width)] * int(depth) + [1]
        self._layers = mlp_init(np.random.default_rng([int(seed), 10]), sizes, self.dtype)
        self._norm = None if centre is None else (np.asarray(centre, float), np.asarray(scale, float))
        self._opt = adam_init(self._layers)
        self.params = None

    def _ensure_params(self, data: np.ndarray) -> None:
        if self.params is None:
            centre, scale = self._norm or (data.mean(axis=0), data.std(axis=0) + 1e-12)
            self.params = (self._layers, np.asarray(centre, self.dtype), np.asarray(scale, self.dtype))

    def _points(self, x: np.ndarray, name: str):
        x = np.asarray(x, float)
        if x.ndim != 2 or x.shape[1] != self.dim or x.shape[0] == 0 or not np.all(np.isfinite(x)):
            raise InputError(f"mlp discriminator: {name} must be finite points of shape (n, {self.dim}), "
                             f"got {x.shape}")
        return x

    def fit(self, data: np.ndarray, fake: np.ndarray, rng: np.random.Generator, generator=None) -> float:
        """``steps`` Adam steps on fresh minibatches; returns the logistic loss on all of data, fake."""
        data, fake = self._points(data, "data"), self._points(fake, "fake")
        first = self.params is None
        self._ensure_params(data)
        data, fake = data.astype(self.dtype), fake.astype(self.dtype)
        for _ in range(1 + (self._warmup_calls if first else 0)):
            self.params, self._opt, loss = compiled("disc_train")(
                self.params, self._opt, _key_from(rng), data, fake, steps=self.steps, batch=self.batch,
                lr=self.lr)
        return float(loss)

    def _require_fit(self):
        if self.params is None:
            raise InputError("mlp discriminator: fit it before evaluating it")

    def logit(self, x: np.ndarray) -> np.ndarray:
        """d(x), (n,)."""
        self._require_fit()
        x = self._points(x, "x")
        return np.asarray(compiled("logit_apply")(self.params, x.astype(self.dtype)), float)

    def grad_logit(self, x: np.ndarray) -> np.ndarray:
        """grad_x d(x), (n, dim), by automatic differentiation."""
        self._require_fit()
        x = self._points(x, "x")
        return np.asarray(compiled("grad_logit_apply")(self.params, x.astype(self.dtype)), float)

    def logit_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(d(x), grad_x d(x)) from one compiled call (what the loop's targets need)."""
        self._require_fit()
        x = self._points(x, "x")
        d, g = compiled("logit_and_grad_apply")(self.params, x.astype(self.dtype))
        return np.asarray(d, float), np.asarray(g, float)


class MLPGenerator:
    """G(z) = a + S z + MLP(z), z ~ N(0, I_dim), fitted by Adam (see the module docstring).

    ``loc`` (a) and ``scale`` (S, a (dim, dim) matrix, e.g. the Cholesky factor of a covariance)
    set the initial affine map: G_0 pushes N(0, I) to N(loc, S S^T) exactly.
    """

    def __init__(self, dim: int, loc: Optional[Sequence[float]] = None, scale=None,
                 width: int = DEFAULTS["width"], depth: int = DEFAULTS["depth"], lr: float = DEFAULTS["lr_gen"],
                 fit_steps: int = DEFAULT_FIT_STEPS, seed: int = 0, dtype: str = DEFAULTS["dtype"]):
        _load_jax()
        _check_sizes(dim=dim, width=width, depth=depth, fit_steps=fit_steps)
        if not lr > 0:
            raise InputError(f"mlp generator: lr must be positive, not {lr}")
        self.dim, self.lr, self.fit_steps = int(dim), float(lr), int(fit_steps)
        self.dtype = _dtype(dtype)
        loc = np.zeros(self.dim) if loc is None else np.asarray(loc, float).reshape(self.dim)
        scale = np.eye(self.dim) if scale is None else np.asarray(scale, float).reshape(self.dim, self.dim)
        sizes = [self.dim] + [int(width)] * int(depth) + [self.dim]
        layers = mlp_init(np.random.default_rng([int(seed), 11]), sizes, self.dtype, zero_last=True)
        self.params = (loc.astype(self.dtype), scale.astype(self.dtype), layers)
        self._opt = adam_init(self.params)

    @classmethod
    def from_samples(cls, samples: np.ndarray, **kw) -> "MLPGenerator":
        """Start from the Gaussian with the samples' mean and covariance (G_0 affine)."""
        x = np.asarray(samples, float)
        cov = np.atleast_2d(np.cov(x, rowvar=False))
        return cls(x.shape[1], loc=x.mean(axis=0), scale=np.linalg.cholesky(cov), **kw)

    def _z(self, z: np.ndarray):
        z = np.asarray(z, float)
        if z.ndim != 2 or z.shape[1] != self.dim or not np.all(np.isfinite(z)):
            raise InputError(f"mlp generator: latents must be finite, shape (n, {self.dim}), got {z.shape}")
        return z.astype(self.dtype)

    def sample(self, z: np.ndarray) -> np.ndarray:
        """G(z), (n, dim)."""
        return np.asarray(compiled("gen_apply")(self.params, self._z(z)), float)

    def fit_mse(self, z: np.ndarray, targets: np.ndarray, steps: Optional[int],
                rng: np.random.Generator) -> float:
        """K full-batch Adam steps on (1/m) sum_i |G(z_i) - y_i|^2 (an MLP has no exact fit:
        steps=None means the generator's ``fit_steps``); returns the final residual."""
        y = np.asarray(targets, float)
        if y.shape != (np.shape(z)[0], self.dim) or not np.all(np.isfinite(y)):
            raise InputError(f"mlp generator: targets must be finite, shape (m, {self.dim}), got {y.shape}")
        k = self.fit_steps if steps is None else int(steps)
        self.params, self._opt, res = compiled("gen_fit_mse")(
            self.params, self._opt, self._z(z), y.astype(self.dtype), steps=k, lr=self.lr)
        return float(res)

    def fit_minimax(self, z: np.ndarray, disc, steps: int, rng: np.random.Generator,
                    loss_weight: float) -> float:
        """``steps`` Adam steps on loss_weight (1/m) sum_i log(1 - D(G(z_i))), D frozen; returns
        the final loss. An MLP discriminator is differentiated inside one compiled loop; any other
        discriminator supplies grad_x log(1 - D) = -sigmoid(d) grad d through its numpy methods."""
        zj = self._z(z)
        w = float(loss_weight)
        if isinstance(disc, MLPDiscriminator):
            disc._require_fit()
            self.params, self._opt, loss = compiled("gen_fit_minimax")(
                self.params, self._opt, disc.params, zj, steps=int(steps), lr=self.lr, weight=w)
            return float(loss)
        step = compiled("_minimax_vjp_step")
        m = zj.shape[0]
        for _ in range(int(steps)):
            x = self.sample(z)
            up = (-w / m) * _sigmoid(disc.logit(x))[:, None] * disc.grad_logit(x)
            self.params, self._opt = step(self.params, self._opt, zj, up.astype(self.dtype), self.lr)
        return float(-w * np.mean(np.logaddexp(0.0, disc.logit(self.sample(z)))))

    def is_finite(self) -> bool:
        return all(bool(np.all(np.isfinite(np.asarray(p)))) for p in jax.tree_util.tree_leaves(self.params))


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -t))


def _check_sizes(**sizes) -> None:
    for name, v in sizes.items():
        if int(v) != v or int(v) < 1:
            raise InputError(f"mlp: {name} must be a positive integer, not {v!r}")



# ------------------------------------------------------------------ builders (fpsolver gan)

_MATCH_MAX = 1000   # points in the initial assignment problem (O(m^3) in 2D)


def mlp_options(table: Optional[dict]) -> dict:
    """The [gan.mlp] table checked and completed with the defaults (CaseError naming the key)."""
    from ..errors import CaseError
    out = dict(DEFAULTS)
    for key, value in (table or {}).items():
        key = key.replace("-", "_")
        kind = MLP_KEYS.get(key)
        if kind is None:
            raise CaseError(f"gan.mlp.{key}", f"unknown key (allowed: {', '.join(MLP_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
            raise CaseError(f"gan.mlp.{key}", f"must be {kind.__name__}, got {value!r}")
        low_ok = kind is str or (value >= 0 if key == "warmup_steps" else value > 0)
        if not low_ok:
            raise CaseError(f"gan.mlp.{key}", f"must be {'>=' if key == 'warmup_steps' else '>'} 0, got {value!r}")
        out[key] = kind(value)
    if out["dtype"] not in ("float32", "float64"):
        raise CaseError("gan.mlp.dtype", f"must be float32 or float64, got {out['dtype']!r}")
    return out


def build_discriminator(ctx) -> MLPDiscriminator:
    """The MLP discriminator for a loop's BuildContext; its inputs standardised per coordinate by
    the mean and standard deviation of the first target batch (then fixed), as the gan_mlp study
    does with the exact moments (there: SW1 / distance covered 0.19 against 0.28 with the box
    mapped to [-2, 2]^dim; through this loop at T = 2 the two agree within the seed spread)."""
    o = mlp_options(ctx.options.get("mlp"))
    return MLPDiscriminator(ctx.dim, width=o["width"], depth=o["depth"], steps=o["disc_steps"],
                            batch=o["minibatch"], lr=o["lr_disc"], seed=ctx.seed, dtype=o["dtype"],
                            warmup_steps=o["warmup_steps"])


def build_generator(ctx) -> MLPGenerator:
    """The MLP generator: G_0 exactly mean + L z for a Gaussian rho_0 (L L^T its covariance);
    otherwise the samples' Gaussian, then ``init_steps`` Adam steps of MSE towards rho_0's
    samples matched to the latents by optimal transport (sorted in 1D, an assignment in 2D)."""
    from ..densities import GaussianMixture
    o = mlp_options(ctx.options.get("mlp"))
    kw = dict(width=o["width"], depth=o["depth"], lr=o["lr_gen"], seed=ctx.seed + 1, dtype=o["dtype"],
              fit_steps=DEFAULT_FIT_STEPS if ctx.fit_steps is None else ctx.fit_steps)
    ini = getattr(ctx.case, "initial", None)
    if isinstance(ini, GaussianMixture) and len(ini.weights) == 1:
        return MLPGenerator(ctx.dim, loc=ini.means[0], scale=np.linalg.cholesky(ini.covs[0]), **kw)
    x = np.asarray(ctx.init_samples, float)[:_MATCH_MAX]
    gen = MLPGenerator.from_samples(x, **kw)
    rng = np.random.default_rng([ctx.seed, 2])
    z = rng.standard_normal((x.shape[0], ctx.dim))
    gen.fit_mse(z, _ot_match(z, x), o["init_steps"], rng)
    gen._opt = adam_init(gen.params)   # the loop's fits start with fresh moments
    return gen


def _ot_match(z: np.ndarray, x: np.ndarray) -> np.ndarray:
    """x reordered so that z_i -> x_i is the optimal assignment for |z - x|^2."""
    if z.shape[1] == 1:
        out = np.empty_like(x)
        out[np.argsort(z[:, 0])] = np.sort(x[:, 0])[:, None]
        return out
    from scipy.optimize import linear_sum_assignment
    rows, cols = linear_sum_assignment(-z @ x.T)   # min |z - x|^2 = max z . x over permutations
    return x[cols[np.argsort(rows)]]
