"""The Python entry points: from a case to a Result, a table or a Figure in a line each.

Every function takes a case as a path, a dict with the case file's schema, or a
:class:`~fpsolver.case.Case`, and returns plain numpy arrays inside a
:class:`~fpsolver.result.Result`; the command line calls the same functions.

>>> import fpsolver
>>> case = fpsolver.Case(domain={"lower": [-4.0], "upper": [4.0], "cells": [100]},
...                      target={"kind": "gaussian", "mean": [0.0], "std": [1.0]},
...                      initial={"kind": "gaussian", "mean": [1.0], "std": [0.5]},
...                      flow="kl", time={"dt": 0.05, "save_times": [0.5]})
>>> r = fpsolver.solve(case)
>>> r.t.tolist(), r.rho.shape, bool(abs(r.rho[-1].sum() * r.grid.cell_volume - 1.0) < 1e-13)
([0.0, 0.5], (2, 100), True)
"""
from __future__ import annotations

import os
from typing import Optional, Union

from .case import Case
from .errors import InputError
from .result import Result

CaseLike = Union[str, os.PathLike, dict, Case]
_CASE_OVERRIDES = ("dt", "cells", "scheme", "flow", "save_times", "rtol")


def as_case(case: CaseLike, **overrides) -> Case:
    """A validated :class:`Case` from a path, a dict or a Case, with ``dt``, ``cells``,
    ``scheme``, ``flow``, ``save_times``, ``rtol`` (``time.rtol``: adaptive steps) overridden
    where given (not None)."""
    c = case if isinstance(case, Case) else Case(case)
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(_CASE_OVERRIDES))
    if unknown:
        raise InputError(f"unknown option {unknown[0]!r} (case overrides: {', '.join(_CASE_OVERRIDES)})")
    for key in ("cells", "save_times"):
        if key in given and (isinstance(given[key], (str, bytes)) or not hasattr(given[key], "__len__")):
            raise InputError(f"{key}: give a list (e.g. {key}=[{'200' if key == 'cells' else '0.5, 2.0'}]), "
                             f"got {given[key]!r}")
    if "cells" in given and len(given["cells"]) != c.grid.dim:
        raise InputError(f"cells: give {c.grid.dim} value(s) for this {c.grid.dim}D case")
    return c.with_overrides(**given) if given else c


def solve(case: CaseLike, *, backend: str = "fv", progress: bool = False, **options) -> Result:
    """Solve the case on its grid: d_t rho = div(rho_d grad beta(rho / rho_d)) (MATH.md section 2)
    by backward Euler or BDF2 (the Crandall-Liggett resolvent), the kernel flows by upwind
    transport (section 9); ``backend="fipy"`` for the independent FiPy formulation.

    ``options``: case overrides (``dt``, ``cells``, ``scheme``, ``flow``, ``save_times``, and
    ``rtol`` for error-controlled adaptive steps) and the solver's own (e.g. ``linear``). Returns the density Result (``t``, ``rho[t, ix(, iy)]``,
    ``rho_d``, ``meta``).
    """
    over = {k: options.pop(k) for k in list(options) if k in _CASE_OVERRIDES}
    c = as_case(case, **over)
    bar = _bar(f"solve ({backend})", c.save_steps[-1], progress)
    try:
        if backend == "fipy":
            from .fipy_backend import solve_case_fipy
            if options:
                raise InputError(f"backend 'fipy' takes no option {sorted(options)[0]!r}")
            return solve_case_fipy(c, progress=bar)
        if backend != "fv":
            raise InputError(f"backend: unknown {backend!r} (fv or fipy)")
        from .fv import solve_case
        return solve_case(c, progress=bar, **options)
    finally:
        if bar is not None:
            bar.close()


def particles(case: CaseLike, *, n: Optional[int] = None, seed: int = 0, progress: bool = False,
              **options) -> Result:
    """Particles for dY/dt = v(rho_t)(Y) (MATH.md sections 1, 4, 5, 9): interacting (a KDE of the
    particles, or the exact kernel sums of the MMD flow) or ``mode="superposition"`` with
    ``pde=<density Result>``. ``n`` defaults to 100000, or to the points' number when the case
    starts from its own samples (``initial.use = "as-is"``). Returns a particle Result
    (``t``, ``positions[t, i, :]``, ``meta``). Deterministic for a given ``seed``.

    >>> p = particles("examples/kl_gaussian.toml", n=500, seed=1, save_times=[0.1])
    >>> p.positions.shape, p.t.tolist()
    ((2, 500, 1), [0.0, 0.1])
    """
    over = {k: options.pop(k) for k in list(options) if k in _CASE_OVERRIDES}
    c = as_case(case, **over)
    from .particles import solve_particles
    bar = _bar("particles", 1000, progress)
    try:
        return solve_particles(c, n=n, seed=seed, progress=bar, **options)
    finally:
        if bar is not None:
            bar.close()


def gan(case: CaseLike, *, progress: bool = False, **options) -> Result:
    """GAN training in the loop (Algorithm 1, MATH.md section 8): train D, move the generator's
    samples to y = x + eps h'(d(x)) grad d(x), fit G to them; ``options`` as in ``fpsolver gan``
    (``epsilon``, ``discriminator``, ``generator``, ``knots``, ``fit_steps``, ``generator_loss``,
    ``latent``, ``n``, ``batch``, ``seed``) over the case's ``[gan]`` table, plus case overrides.
    Returns a particle Result of N fresh generator samples at the save times (``meta`` holds the
    per-iteration losses, and ``meta["diverged"]`` when the loop diverged).

    >>> g = gan("examples/gan_js_1d.toml", n=1000, save_times=[0.5])
    >>> g.positions.shape, g.meta.get("diverged") is None
    ((2, 1000, 1), True)
    """
    over = {k: options.pop(k) for k in list(options) if k in _CASE_OVERRIDES}
    c = as_case(case, **over)
    from .gan import run_gan
    from .gan.options import from_table, merged
    opts = merged(from_table(c.raw.get("gan")), **options).resolved(c)     # checked before anything runs
    bar = _bar("gan", max(1, int(round(c.save_times[-1] / opts.epsilon))), progress)
    try:
        return run_gan(c, opts, progress=bar)
    finally:
        if bar is not None:
            bar.close()


def sweep(path: str, out: str, *, scheduler: str = "local", workers: Optional[int] = None,
          resume: bool = False, progress: bool = False) -> list[dict]:
    r"""Run a sweep file (``[sweep]`` over a base case; ``fpsolver sweep``): every combination
    validated first, run serially (``scheduler="none"``) or on dask.distributed (``"local"``, or
    a scheduler address), results in ``out/results/<key>.npz``, one row per run in
    ``out/index.csv``; returns those rows (values, status, wall time, mass error, errors against
    the sweep's reference). Bitwise the same for any number of workers.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "s.toml"), "w") as fh:
    ...     _ = fh.write(f'[sweep]\nbase = "{os.path.abspath("examples/kl_gaussian.toml")}"\n'
    ...                  '[sweep.vary]\n"domain.cells" = [[50], [100]]\n')
    >>> rows = sweep(os.path.join(folder, "s.toml"), os.path.join(folder, "out"), scheduler="none")
    >>> [(r["domain.cells"], r["status"]) for r in rows]
    [([50], 'ok'), ([100], 'ok')]
    """
    from .sweep.driver import run_sweep
    from .sweep.engine import check_scheduler
    from .sweep.spec import load_sweep
    check_scheduler(scheduler, workers)
    return run_sweep(load_sweep(path), out, scheduler=scheduler, workers=workers, resume=resume,
                     progress=progress)


class ComparisonTable(list):
    """Rows {t, n, l1, w1[, ks]} (a list of dicts) that print as the ``fpsolver compare`` table."""

    def __init__(self, rows, text: str):
        super().__init__(rows)
        self.text = text

    def __str__(self) -> str:
        return self.text

    def _repr_pretty_(self, p, cycle) -> None:      # IPython / Jupyter display
        p.text(self.text)


def compare(a: Union[Result, str], b: Union[Result, str], *, floor_seeds: int = 0) -> ComparisonTable:
    """Particles against a density solution per common save time: L1 of the histogram on the
    density's cells, W1 (exact in 1D, sliced in 2D), KS in 1D; either order of arguments.
    ``floor_seeds`` > 0 adds the 95th percentile of the i.i.d. Monte-Carlo W1 floor.

    >>> pde = solve("examples/kl_gaussian.toml", save_times=[0.1])
    >>> table = compare(pde, particles("examples/kl_gaussian.toml", n=20000, save_times=[0.1]))
    >>> [row["t"] for row in table], bool(table[-1]["w1"] < 0.02)     # i.i.d. floor ~ 1/sqrt(N)
    ([0.0, 0.1], True)
    """
    from .compare import compare as _compare, format_table
    ra, rb = (_load(x) for x in (a, b))
    if ra.kind == "particles" and rb.kind == "density":
        ra, rb, a, b = rb, ra, b, a
    if ra.kind != "density" or rb.kind != "particles":
        raise InputError("compare: needs one density result and one particle result")
    names = [x if isinstance(x, str) else f"<{r.kind} result>" for x, r in ((a, ra), (b, rb))]
    rows = _compare(ra, rb, pde_name=names[0], particles_name=names[1], floor_seeds=floor_seeds)
    return ComparisonTable(rows, format_table(rows, ra, rb, names[0], names[1]))


def plot(result: Union[Result, str], other: Union[Result, str, None] = None, *, ax=None):
    """A matplotlib Figure of a result (density snapshots or particle histograms; with ``ax``,
    drawn there), or with ``other`` the particles-vs-density comparison. Never changes the
    backend: in a notebook the figure shows inline.

    >>> fig = plot(solve("examples/kl_gaussian.toml", save_times=[0.1]))
    >>> type(fig).__name__, fig.axes[0].get_xlabel()
    ('Figure', 'x')
    """
    from . import plots
    r = _load(result)
    if other is not None:
        table = compare(r, other)
        pde, part = (r, _load(other)) if r.kind == "density" else (_load(other), r)
        return plots.comparison_figure(pde, part, list(table))
    return plots.density_figure(r, ax) if r.kind == "density" else plots.particles_figure(r, ax)


def validate(only: Optional[str] = None, *, quick: bool = False, out: str = "validation_report") -> list[dict]:
    """Run the verification studies (``only``: comma-separated names) and write
    ``out/report.md``, ``summary.json`` and the figures; returns one dict per study (the measured
    number, what theory predicts, the tolerance, pass/fail, every check).

    >>> import tempfile
    >>> [(s["name"], s["passed"]) for s in validate("exact_ou", quick=True, out=tempfile.mkdtemp())]
    [('exact_ou', True)]
    """
    from .validate import validate as _validate
    os.makedirs(out, exist_ok=True)
    return _validate(out, quick=quick, only=only)


def load(path: str) -> Result:
    """Read a result file written by any fpsolver command.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "r.npz")
    >>> solve("examples/kl_gaussian.toml", save_times=[0.1]).save(path)
    >>> load(path).kind
    'density'
    """
    return Result.load(path)


def _load(x: Union[Result, str]) -> Result:
    return x if isinstance(x, Result) else Result.load(x)


def _bar(label: str, total: int, enabled: bool):
    if not enabled:
        return None
    from .progress import ProgressBar
    return ProgressBar(label, total)
