"""Case files (TOML) -> a validated :class:`Case`.

The schema is a contract (README, "Case files"). Every problem is reported as one
:class:`~fpsolver.errors.CaseError` naming the key, e.g. ``time.dt: must be > 0 (got -0.1)``.
"""
from __future__ import annotations

import copy
import importlib
import math
import os
import tomllib
from dataclasses import dataclass, fields
from typing import Optional

import numpy as np

from .densities import Density, FunctionDensity, GaussianMixture, GridDensity, SampleDensity, Uniform, discretise
from .dynamics.spec import DUAL_SCHEMES, DiscriminatorSpec, parse_discriminator
from .errors import CaseError
from .flows import FLOW_KINDS, NONLOCAL_FLOWS, Flow, get_flow
from .grid import Grid

SCHEMES = ("backward-euler", "bdf2")
KERNEL_FLOWS = tuple(NONLOCAL_FLOWS)     # energies with a nonlocal potential (fpsolver.flows)
TRANSPORT_SCHEMES = ("muscl", "upwind")  # their explicit transport scheme (fpsolver.fv.transport)
DENSITY_KINDS = ("gaussian", "gaussian_mixture", "uniform", "samples", "grid", "function")
SAMPLE_USES = ("resample", "as-is")
MAX_CELLS = 50_000_000
_KDE_RESOLVED = 1e-13  # KDE values below this fraction of the maximum are FFT round-off


@dataclass(frozen=True, init=False)
class Case:
    """A validated problem: grid, target rho_d, initial rho_0, flow, time stepping.

    ``Case(path)`` reads a case file, ``Case(dict)`` takes the same schema as a dict, and
    ``Case(domain=..., target=..., initial=..., flow=..., time=...)`` the tables as keywords
    (keywords also override a path's or dict's tables; ``flow="kl"`` is short for
    ``{"kind": "kl"}``). In a dict, a ``grid`` density may give ``values = <array>`` instead of
    ``path``, a ``samples`` density ``points = <array>``, and a density may be a callable
    log-density (or ``{"kind": "function", "log_pdf": f}``). A flow may be a
    :class:`~fpsolver.flows.Flow` of your own (``flow=fpsolver.flow_from_hprime(...)``), or, in a
    case file, ``kind = "package.module:name"``, imported only with ``allow_imports=True``
    (``--allow-imports``): a case file alone never runs code. Every problem is one CaseError.

    >>> c = Case(domain={"lower": [-4.0], "upper": [4.0], "cells": [80]},
    ...          target={"kind": "gaussian", "mean": [0.0], "std": [1.0]},
    ...          initial=lambda x: -0.5 * ((x[:, 0] - 1.0) / 0.5) ** 2,
    ...          flow="kl", time={"dt": 0.1, "save_times": [0.5]})
    >>> c.grid.shape, c.flow, c.save_steps
    ((80,), 'kl', (5,))
    """

    grid: Grid
    target: Density
    initial: Density
    flow: str
    dt: float
    save_times: tuple[float, ...]
    scheme: str
    raw: dict  # the case as a plain dict (paths made absolute), stored in result meta
    source: str = "<dict>"
    discriminator: DiscriminatorSpec | None = None  # [discriminator]: the dual flow of MATH.md §10
    custom: Optional[Flow] = None  # a user's Flow (flow.kind a Flow object or "module:name")
    rtol: float | None = None  # time.rtol: error-controlled steps (dt the first and largest step)

    def __init__(self, *args, **kwargs):
        if (args and isinstance(args[0], Grid)) or "grid" in kwargs:   # the validated parts (dataclasses.replace)
            names = [f.name for f in fields(Case)]
            values = {"source": "<dict>", "discriminator": None, "custom": None, "rtol": None} | dict(zip(names, args)) | kwargs
            for name in names:
                object.__setattr__(self, name, values[name])
            return
        if len(args) > 1:
            raise CaseError("", "Case(spec, **tables): one path or dict, then keyword tables")
        allow = bool(kwargs.pop("allow_imports", False))
        built = _build(args[0] if args else None, kwargs, allow)
        for f in fields(Case):
            object.__setattr__(self, f.name, getattr(built, f.name))

    @property
    def final_time(self) -> float:
        return self.save_times[-1]

    @property
    def flow_shift(self):
        """The minimax flow's logit shift C (``[flow] shift``; None for every other flow)."""
        return self.raw["flow"].get("shift") if self.flow == "minimax" else None

    def local_flow(self):
        """The :class:`~fpsolver.flows.Flow` of a local (f-divergence) flow, its parameters applied
        (or the user's own flow)."""
        return self.custom if self.custom is not None else get_flow(self.flow, shift=self.flow_shift)

    def with_flow(self, flow) -> "Case":
        """A copy solved with the :class:`~fpsolver.flows.Flow` ``flow`` (e.g. from
        :func:`fpsolver.monoflow.flow_from_hprime` or :func:`fpsolver.flows.custom_flow`) by every
        solver; results record ``python:<flow.name>``. The same as ``Case(self, flow=flow)``."""
        if not isinstance(flow, Flow):
            raise CaseError("flow", f"with_flow needs a Flow, got {type(flow).__name__}")
        if self.flow in KERNEL_FLOWS:
            raise CaseError("flow", f"the {self.flow} case has a nonlocal flow; with_flow sets a local one")
        return self.with_overrides(flow=flow)

    @property
    def save_steps(self) -> tuple[int, ...]:
        return tuple(int(round(t / self.dt)) for t in self.save_times)

    def with_overrides(self, *, dt: float | None = None, cells=None, scheme: str | None = None,
                       flow=None, save_times=None, rtol: float | None = None) -> "Case":
        """A copy with CLI overrides applied and re-validated."""
        raw = copy.deepcopy(self.raw)
        if dt is not None:
            raw["time"]["dt"] = dt
        if scheme is not None:
            raw["time"]["scheme"] = scheme
        if cells is not None:
            raw["domain"]["cells"] = list(cells)
        if flow is not None:
            raw["flow"]["kind"] = flow
            if flow != "minimax":
                raw["flow"].pop("shift", None)
        if save_times is not None:
            raw["time"]["save_times"] = list(save_times)
        if rtol is not None:
            raw["time"]["rtol"] = rtol
        # a flow imported from a module was allowed when this case was made
        return Case.from_dict(raw, base_dir=None, source=self.source,
                              allow_imports=self.custom is not None and flow is None)

    def discretised(self):
        """(target, initial) as :class:`~fpsolver.densities.Discretised` on the grid."""
        return _checked_discretise(self.target, self.grid, "target"), \
            _checked_discretise(self.initial, self.grid, "initial")

    @classmethod
    def from_toml(cls, path, *, allow_imports: bool = False) -> "Case":
        """Read and validate a case file; ``allow_imports`` lets ``[flow] kind = "module:name"`` import."""
        path = os.fspath(path)
        data = read_toml(path)
        return cls.from_dict(data, base_dir=os.path.dirname(os.path.abspath(path)), source=path,
                             allow_imports=allow_imports)

    @classmethod
    def from_dict(cls, data: dict, base_dir: str | None = None, source: str = "<dict>", *,
                  allow_imports: bool = False) -> "Case":
        data = copy.deepcopy(data)
        # [gan]: the GAN loop's options (fpsolver.gan.options validates them when the loop runs)
        _table(data, "", {"domain", "target", "initial", "flow", "time"}, required=True,
               optional=("gan", "discriminator"))
        grid = _parse_domain(data["domain"])
        target = _parse_density(data["target"], "target", grid, base_dir)
        initial = _parse_density(data["initial"], "initial", grid, base_dir)
        flow, custom = _parse_flow(data["flow"], allow_imports)
        disc = parse_discriminator(data["discriminator"], flow) if "discriminator" in data else None
        schemes = DUAL_SCHEMES if disc else TRANSPORT_SCHEMES if flow in KERNEL_FLOWS else SCHEMES
        dt, save_times, scheme = _parse_time(data["time"], schemes)
        data["time"]["scheme"] = scheme
        data["time"]["save_times"] = list(save_times)
        rtol = _parse_rtol(data["time"], flow, disc is not None)
        case = cls(grid, target, initial, flow, dt, save_times, scheme, data, source, disc, custom, rtol)
        case.discretised()  # positivity and finiteness of both densities on the grid
        return case


def read_toml(path: str, what: str = "case file", folder_hint: str = "") -> dict:
    """The TOML file at ``path`` as a dict; one CaseError line for a missing, unreadable or invalid file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise CaseError("", f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise CaseError("", f"{path}: is a folder, not a {what}{folder_hint}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CaseError("", f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise CaseError("", f"{path}: not a UTF-8 text file") from None


def _build(spec, tables: dict, allow_imports: bool = False) -> Case:
    """Case(spec, **tables): spec a path (str or PathLike), a dict, a Case or None."""
    if isinstance(spec, Case):
        spec = spec.raw
    if spec is None or isinstance(spec, dict):
        data, base_dir, source = dict(spec or {}), None, "<dict>"
    elif isinstance(spec, (str, os.PathLike)):
        base = Case.from_toml(spec, allow_imports=allow_imports)
        data, base_dir, source = dict(base.raw), os.path.dirname(os.path.abspath(spec)), os.fspath(spec)
    else:
        raise CaseError("", f"Case(...): expected a case file path, a dict or keyword tables, got {type(spec).__name__}")
    for key, value in tables.items():
        data[key] = {"kind": value} if key == "flow" and isinstance(value, (str, Flow)) else value
    return Case.from_dict(data, base_dir=base_dir, source=source, allow_imports=allow_imports)


# ---------------------------------------------------------------- helpers

def _table(obj, key, allowed, required=False, optional=()):
    if not isinstance(obj, dict):
        raise CaseError(key or "case", f"must be a table, got {type(obj).__name__}")
    unknown = set(obj) - set(allowed) - set(optional)
    if unknown:
        raise CaseError(_k(key, sorted(unknown)[0]), f"unknown key (allowed: {', '.join(sorted(set(allowed) | set(optional)))})")
    if required:
        missing = [k for k in sorted(allowed) if k not in obj]
        if missing:
            raise CaseError(_k(key, missing[0]), "missing")


def _k(prefix, key):
    return f"{prefix}.{key}" if prefix else str(key)


def _choice(value, key, options):
    if not isinstance(value, str) or value not in options:
        raise CaseError(key, f"unknown value {value!r} (one of {', '.join(options)})")
    return value


def _number(value, key, *, positive=False, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CaseError(key, f"must be a number, got {type(value).__name__} {value!r}")
    if integer and not isinstance(value, int):
        raise CaseError(key, f"must be an integer, got {value!r}")
    if not math.isfinite(value):
        raise CaseError(key, f"must be finite, got {value!r}")
    if positive and value <= 0:
        raise CaseError(key, f"must be > 0 (got {value!r})")
    return value


def _vector(value, key, length=None, **kw):
    if not isinstance(value, list):
        raise CaseError(key, f"must be a list of numbers, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise CaseError(key, f"needs {length} entr{'y' if length == 1 else 'ies'} for a {length}D domain, got {len(value)}")
    return [_number(v, f"{key}[{i}]", **kw) for i, v in enumerate(value)]


def _parse_domain(dom) -> Grid:
    _table(dom, "domain", {"lower", "upper", "cells"}, required=True)
    lower = _vector(dom["lower"], "domain.lower")
    if len(lower) not in (1, 2):
        raise CaseError("domain.lower", f"must have 1 or 2 entries (the dimension), got {len(lower)}")
    d = len(lower)
    upper = _vector(dom["upper"], "domain.upper", d)
    cells = _vector(dom["cells"], "domain.cells", d, integer=True)
    for i in range(d):
        if upper[i] <= lower[i]:
            raise CaseError(f"domain.upper[{i}]", f"must be > domain.lower[{i}] ({upper[i]} <= {lower[i]})")
        if cells[i] < 3:
            raise CaseError(f"domain.cells[{i}]", f"must be at least 3, got {cells[i]}")
    n = int(np.prod(cells, dtype=object))
    need = _memory_estimate(n)
    avail = _physical_memory()
    if n > MAX_CELLS or need > 0.8 * avail:
        raise CaseError("domain.cells", f"{n:,} cells would need about {need / 2**30:.1f} GiB "
                        f"(this machine has {avail / 2**30:.1f} GiB); use fewer cells")
    return Grid(tuple(lower), tuple(upper), tuple(cells))


def _memory_estimate(ncells: int) -> float:
    """Bytes for a solve: ~60 work arrays of float64 per cell plus a few saved snapshots."""
    return 80.0 * 8.0 * ncells


def _physical_memory() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8.0 * 2**30


def _cov(comp, key, d):
    has_std, has_cov = "std" in comp, "cov" in comp
    if has_std == has_cov:
        raise CaseError(f"{key}.std", "give exactly one of 'std' (per-axis) or 'cov' (full covariance)")
    if has_std:
        std = _vector(comp["std"], f"{key}.std", d, positive=True)
        var = np.square(np.array(std, float))
        if not np.all(np.isfinite(var)) or np.any(var < 1e-200):
            raise CaseError(f"{key}.std", f"out of range for double precision: {std}")
        return np.diag(var)
    cov = comp["cov"]
    if not isinstance(cov, list) or len(cov) != d:
        raise CaseError(f"{key}.cov", f"must be a {d}x{d} list of lists")
    rows = [_vector(r, f"{key}.cov[{i}]", d) for i, r in enumerate(cov)]
    c = np.array(rows, float)
    if np.abs(c).max() > 1e150:
        raise CaseError(f"{key}.cov", "entries out of range for double precision")
    if not np.allclose(c, c.T, rtol=1e-12, atol=0):
        raise CaseError(f"{key}.cov", "must be symmetric")
    if np.any(np.linalg.eigvalsh(c) <= 1e-14 * max(1.0, np.abs(c).max())):
        raise CaseError(f"{key}.cov", "must be positive definite")
    return c


def _parse_density(spec, key, grid: Grid, base_dir) -> Density:
    if callable(spec):
        return FunctionDensity(spec)
    if not isinstance(spec, dict):
        raise CaseError(key, f"must be a table, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind is None:
        raise CaseError(f"{key}.kind", f"missing (one of {', '.join(DENSITY_KINDS)})")
    _choice(kind, f"{key}.kind", DENSITY_KINDS)
    d = grid.dim
    if kind == "gaussian":
        _table(spec, key, {"kind", "mean"}, required=True, optional=("std", "cov"))
        mean = _vector(spec["mean"], f"{key}.mean", d)
        return GaussianMixture([1.0], [mean], [_cov(spec, key, d)])
    if kind == "gaussian_mixture":
        _table(spec, key, {"kind", "components"}, required=True)
        comps = spec["components"]
        if not isinstance(comps, list) or not comps:
            raise CaseError(f"{key}.components", "must be a non-empty array of tables [[...components]]")
        ws, ms, cs = [], [], []
        for i, c in enumerate(comps):
            ck = f"{key}.components[{i}]"
            _table(c, ck, {"weight", "mean"}, required=True, optional=("std", "cov"))
            ws.append(_number(c["weight"], f"{ck}.weight", positive=True))
            ms.append(_vector(c["mean"], f"{ck}.mean", d))
            cs.append(_cov(c, ck, d))
        return GaussianMixture(ws, ms, cs)
    if kind == "uniform":
        _table(spec, key, {"kind"})
        return Uniform(d)
    if kind == "function":
        _table(spec, key, {"kind", "log_pdf"}, required=True, optional=("grad_log_pdf",))
        for name in ("log_pdf", "grad_log_pdf"):
            if name in spec and not callable(spec[name]):
                raise CaseError(f"{key}.{name}", "must be a Python callable (points (M, d) -> values)")
        return FunctionDensity(spec["log_pdf"], spec.get("grad_log_pdf"))
    if kind == "samples":
        _table(spec, key, {"kind"}, optional=("path", "points", "bandwidth", "use"))
        pts, where = _array_or_file(spec, key, "points", base_dir)
        if pts.ndim == 1 and d == 1:
            pts = pts[:, None]
        if pts.ndim != 2 or pts.shape[1] != d or pts.shape[0] < 2:
            raise CaseError(where, f"samples must be an (n, {d}) array with n >= 2, got shape {pts.shape}")
        lo, hi = np.array(grid.lower), np.array(grid.upper)
        inside = np.all((pts >= lo) & (pts <= hi), axis=1)
        if inside.sum() < 2:
            raise CaseError(where, "fewer than 2 samples lie inside the domain")
        bw = None
        if "bandwidth" in spec:
            bw = _number(spec["bandwidth"], f"{key}.bandwidth", positive=True)
        use = _choice(spec.get("use", "resample"), f"{key}.use", SAMPLE_USES)
        if use == "as-is" and key != "initial":
            raise CaseError(f"{key}.use", '"as-is" is for the initial density (particles start at the points)')
        if use == "as-is" and not inside.all():
            raise CaseError(where, f'{int((~inside).sum())} of the points lie outside the domain; with use = "as-is" '
                            "every point is a particle, so all must lie inside")
        return SampleDensity(pts[inside], bw, use)
    _table(spec, key, {"kind"}, optional=("path", "values"))
    vals, where = _array_or_file(spec, key, "values", base_dir)
    if vals.shape != grid.shape:
        raise CaseError(where, f"grid values must have shape {grid.shape} (domain.cells), got {vals.shape}")
    if np.any(vals <= 0):
        raise CaseError(where, f"grid density must be > 0 in every cell ({int(np.sum(vals <= 0))} cells are not)")
    return GridDensity(vals)


def _array_or_file(spec, key, name: str, base_dir):
    """(array, key for messages) from ``path`` (a .npy file) or ``name`` (an array, Python only)."""
    if ("path" in spec) == (name in spec):
        raise CaseError(key, f"give exactly one of {key}.path (a .npy file) or {key}.{name} (an array)")
    if "path" in spec:
        return _load_npy(spec, key, base_dir), f"{key}.path"
    try:
        arr = np.array(spec[name], dtype=float)
    except (TypeError, ValueError):
        raise CaseError(f"{key}.{name}", "must be a numeric array") from None
    if not np.all(np.isfinite(arr)):
        raise CaseError(f"{key}.{name}", "contains NaN or inf")
    spec[name] = arr
    return arr, f"{key}.{name}"


def _load_npy(spec, key, base_dir) -> np.ndarray:
    p = spec["path"]
    if not isinstance(p, str) or not p:
        raise CaseError(f"{key}.path", "must be a non-empty string (a .npy file)")
    full = p if os.path.isabs(p) or base_dir is None else os.path.join(base_dir, p)
    try:
        arr = np.load(full, allow_pickle=False)
    except FileNotFoundError:
        raise CaseError(f"{key}.path", f"no such file: {full}") from None
    except (ValueError, OSError, EOFError) as exc:
        raise CaseError(f"{key}.path", f"not a readable .npy array ({full}: {exc})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise CaseError(f"{key}.path", f"must hold a numeric array ({full})")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)):
        raise CaseError(f"{key}.path", f"contains NaN or inf ({full})")
    spec["path"] = os.path.abspath(full)
    return arr


def _parse_flow(spec, allow_imports: bool = False) -> tuple[str, Optional[Flow]]:
    """(kind, the user's Flow or None); a kernel flow's sub-tables are validated here (MATH.md section 9)."""
    tables = sorted(set().union(*(m.SPEC_KEYS for m in NONLOCAL_FLOWS.values())))
    if isinstance(spec, dict) and (isinstance(spec.get("kind"), Flow)
                                   or (isinstance(spec.get("kind"), str) and ":" in spec["kind"])):
        _table(spec, "flow", {"kind"}, required=True)
        return _custom_flow(spec["kind"], allow_imports)
    _table(spec, "flow", {"kind"}, required=True, optional=tables + ["shift"])
    kind = _choice(spec["kind"], "flow.kind", FLOW_KINDS + KERNEL_FLOWS)
    extra = [k for k in tables if k in spec]
    if "shift" in spec:     # MonoFlow's logit shift C of the minimax loss (MATH.md section 7)
        if kind != "minimax":
            raise CaseError("flow.shift", "only for kind = \"minimax\"")
        spec["shift"] = float(_number(spec["shift"], "flow.shift"))
        if abs(spec["shift"]) > 30.0:
            raise CaseError("flow.shift", f"must lie in [-30, 30] (got {spec['shift']:g}): "
                            "e^C scales the flow's speed")
    if kind not in KERNEL_FLOWS:
        if extra:
            raise CaseError(f"flow.{extra[0]}", f"only for the kernel flows ({', '.join(KERNEL_FLOWS)})")
        return kind, None
    unknown = [k for k in extra if k not in NONLOCAL_FLOWS[kind].SPEC_KEYS]
    if unknown:
        raise CaseError(f"flow.{unknown[0]}", f"not a table of the {kind} flow")
    NONLOCAL_FLOWS[kind].check_spec(spec)
    return kind, None


def _custom_flow(kind, allow_imports: bool) -> tuple[str, Flow]:
    """A Flow object as it is ("python:<name>"), or "module:name" imported if the user allows it."""
    if isinstance(kind, Flow):
        return f"python:{kind.name}", kind
    module, _, name = kind.partition(":")
    if not allow_imports:
        raise CaseError("flow.kind", f"{kind!r} names Python code, and a case file never runs code on its own; "
                        "allow it with --allow-imports (command line) or allow_imports=True (Python)")
    if not module or not name:
        raise CaseError("flow.kind", f"{kind!r}: expected \"package.module:name\"")
    try:
        obj = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise CaseError("flow.kind", f"{kind!r}: cannot import {module!r} ({exc})") from None
    except AttributeError:
        raise CaseError("flow.kind", f"{kind!r}: module {module!r} has no {name!r}") from None
    except Exception as exc:   # the user's module itself failed while importing
        raise CaseError("flow.kind", f"{kind!r}: importing {module!r} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, Flow):
        raise CaseError("flow.kind", f"{kind!r} is a {type(obj).__name__}, not a fpsolver Flow "
                        "(make one with fpsolver.custom_flow or fpsolver.flow_from_hprime)")
    return kind, obj


def _parse_time(spec, schemes=SCHEMES):
    _table(spec, "time", {"dt", "save_times"}, required=True, optional=("scheme", "rtol"))
    dt = float(_number(spec["dt"], "time.dt", positive=True))
    st = spec["save_times"]
    if not isinstance(st, list) or not st:
        raise CaseError("time.save_times", "must be a non-empty list of times > 0")
    times = _vector(st, "time.save_times", positive=True)
    for i in range(1, len(times)):
        if times[i] <= times[i - 1]:
            raise CaseError(f"time.save_times[{i}]", f"must increase ({times[i]} after {times[i - 1]})")
    for i, t in enumerate(times):
        k = t / dt
        if abs(k - round(k)) > 1e-9 * max(1.0, k) or round(k) < 1:
            raise CaseError(f"time.save_times[{i}]", f"{t} is not a multiple of dt = {dt}")
    if round(times[-1] / dt) > 10_000_000:
        raise CaseError("time.dt", f"{round(times[-1] / dt):,} steps to t = {times[-1]}; use a larger dt")
    scheme = _choice(spec.get("scheme", schemes[0]), "time.scheme", schemes)
    return dt, tuple(float(t) for t in times), scheme


def _parse_rtol(spec, flow: str, dual: bool = False):
    """time.rtol: the local error tolerance of adaptive steps (fpsolver.fv.adaptive), or None."""
    if "rtol" not in spec:
        return None
    rtol = float(_number(spec["rtol"], "time.rtol", positive=True))
    if not rtol < 1.0:
        raise CaseError("time.rtol", f"must be < 1 (a relative tolerance; got {spec['rtol']!r})")
    if flow in KERNEL_FLOWS:
        raise CaseError("time.rtol", f"adaptive steps are not available for the kernel flow {flow!r}")
    if dual:
        raise CaseError("time.rtol", "adaptive steps are not available for dual flows ([discriminator]); "
                        "their steps follow the CFL and stiffness limits")
    return rtol


def _checked_discretise(density: Density, grid: Grid, key: str):
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        disc = discretise(density, grid)
    lc = disc.log_cells
    if not np.all(np.isfinite(lc)) or any(not np.all(np.isfinite(f)) for f in disc.log_faces):
        if isinstance(density, SampleDensity):
            raise CaseError(key, "the samples' kernel density estimate is zero in part of the "
                            "domain; use a larger bandwidth or a smaller domain")
        raise CaseError(key, "density is zero or not finite somewhere on the grid")
    if isinstance(density, SampleDensity):
        if lc.min() < lc.max() + math.log(_KDE_RESOLVED):
            raise CaseError(key, "the samples' kernel density estimate falls below round-off "
                            f"({_KDE_RESOLVED:g} of its maximum) in part of the domain; use a larger "
                            "bandwidth or a smaller domain")
    return disc
