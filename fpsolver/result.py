"""The one result format every command reads and writes (``.npz``).

Density results: ``t`` (nt,), ``x`` (nx,), ``y`` (ny,) in 2D, ``rho`` (nt, nx[, ny]) cell
values, ``rho_d`` (nx[, ny]) the target on the same cells, ``meta`` (JSON string).
Particle results: ``t`` (nt,), ``positions`` (nt, N, d), ``meta``; plus the grid (``x``, ``y``)
and ``rho_d`` of the case so a particle file can be compared on its own.
Dual-flow results (MATH.md section 10) add ``f`` (nt, nx[, ny]), the discriminator logit on the
cells at the save times; files without it load as before. Times always include t = 0. Files are loaded with ``allow_pickle=False`` and ``meta`` is parsed
as JSON, never evaluated; writes go to a temporary file in the target folder that is then
renamed, so a reader never sees a half-written result.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .errors import InputError
from .grid import Grid


def atomic_savez(path: str | os.PathLike, **arrays) -> None:
    """np.savez to ``path`` via a temporary file in the same folder and an atomic rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{path}: output folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".fpsolver-", suffix=".npz.part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@dataclass
class Result:
    """A density or particle solution at the saved times (t = 0 included)."""

    t: np.ndarray
    meta: dict
    axes: tuple[np.ndarray, ...] = ()
    rho: Optional[np.ndarray] = None
    rho_d: Optional[np.ndarray] = None
    positions: Optional[np.ndarray] = None
    f: Optional[np.ndarray] = None      # discriminator logit at the save times (dual flows)
    extra: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "particles" if self.positions is not None else "density"

    @property
    def dim(self) -> int:
        return len(self.axes) if self.axes else int(self.positions.shape[-1])

    @property
    def grid(self) -> Grid:
        if not self.axes:
            raise InputError("this result carries no grid")
        return Grid.from_axes(*self.axes)

    def save(self, path) -> None:
        arrays = {"t": np.asarray(self.t, dtype=float),
                  "meta": np.array(json.dumps(self.meta, default=_json_default))}
        for name, ax in zip(("x", "y"), self.axes):
            arrays[name] = np.asarray(ax, dtype=float)
        for name in ("rho", "rho_d", "positions", "f"):
            val = getattr(self, name)
            if val is not None:
                arrays[name] = np.asarray(val)
        for name, val in self.extra.items():
            arrays[name] = np.asarray(val)
        atomic_savez(path, **arrays)

    def to_xarray(self):
        """An ``xarray.Dataset`` with labelled coordinates (t, x[, y] for densities; t, particle,
        dim for particles), ``meta`` in its attrs as JSON. Needs xarray (optional).

        >>> r = Result(t=np.array([0.0, 1.0]), meta={"flow": "js"}, axes=(np.array([0.0, 1.0]),),
        ...            rho=np.ones((2, 2)), rho_d=np.ones(2))
        >>> r.to_xarray()["rho"].sel(t=1.0).values.tolist()
        [1.0, 1.0]
        """
        try:
            import xarray as xr
        except ImportError:
            raise InputError('Result.to_xarray needs xarray: pip install xarray') from None
        space = tuple("xy"[: len(self.axes)])
        coords = {"t": np.asarray(self.t)} | {n: np.asarray(a) for n, a in zip(space, self.axes)}
        data = {}
        if self.rho is not None:
            data["rho"] = (("t",) + space, self.rho)
        if self.rho_d is not None:
            data["rho_d"] = (space, self.rho_d)
        if self.positions is not None:
            data["positions"] = (("t", "particle", "dim"), self.positions)
        return xr.Dataset(data, coords=coords, attrs={"meta": json.dumps(self.meta, default=_json_default)})

    @classmethod
    def load(cls, path, *, expect: Optional[str] = None) -> "Result":
        """Load and check a result file; ``expect`` is "density" or "particles" if required."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise InputError(f"{path}: no such result file")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise InputError(f"{path}: not a readable .npz result ({type(exc).__name__}: {exc})") from None
        res = cls._from_arrays(path, data)
        if expect is not None and res.kind != expect:
            raise InputError(f"{path}: expected a {expect} result, got a {res.kind} result")
        return res

    @classmethod
    def _from_arrays(cls, path: str, data: dict) -> "Result":
        def need(key):
            if key not in data:
                raise InputError(f"{path}: missing array '{key}'")
            return data[key]

        try:
            meta = json.loads(str(need("meta")))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: 'meta' is not valid JSON ({exc.msg})") from None
        if not isinstance(meta, dict):
            raise InputError(f"{path}: 'meta' must be a JSON object")
        t = np.asarray(need("t"))
        if t.ndim != 1 or t.size == 0 or t.dtype.kind not in "fi" or not np.all(np.isfinite(t)):
            raise InputError(f"{path}: 't' must be a non-empty finite 1-D array")
        if np.any(np.diff(t) <= 0) or t[0] != 0:
            raise InputError(f"{path}: 't' must start at 0 and increase")
        axes = tuple(np.asarray(data[k], dtype=float) for k in ("x", "y") if k in data)
        for name, ax in zip("xy", axes):
            if ax.ndim != 1 or ax.size < 2 or not np.all(np.isfinite(ax)) or np.any(np.diff(ax) <= 0):
                raise InputError(f"{path}: '{name}' must be increasing finite cell centres")
        shape = tuple(a.size for a in axes)
        known = {"t", "meta", "x", "y", "rho", "rho_d", "positions", "f"}
        extra = {k: v for k, v in data.items() if k not in known}
        rho_d = data.get("rho_d")
        if rho_d is not None and rho_d.shape != shape:
            raise InputError(f"{path}: 'rho_d' has shape {rho_d.shape}, expected {shape}")
        f = _checked_logit(path, data.get("f"), (t.size, *shape), bool(axes))
        if "rho" in data:
            rho = data["rho"]
            if not axes:
                raise InputError(f"{path}: a density result needs 'x'")
            if rho.shape != (t.size, *shape):
                raise InputError(f"{path}: 'rho' has shape {rho.shape}, expected {(t.size, *shape)}")
            if rho.dtype.kind != "f" or not np.all(np.isfinite(rho)) or np.any(rho < 0):
                raise InputError(f"{path}: 'rho' must be finite and non-negative")
            return cls(t=t, meta=meta, axes=axes, rho=rho, rho_d=rho_d, f=f, extra=extra)
        if "positions" in data:
            pos = data["positions"]
            if pos.ndim != 3 or pos.shape[0] != t.size or pos.shape[2] not in (1, 2):
                raise InputError(f"{path}: 'positions' must have shape (nt, N, d) with nt = len(t)")
            if pos.dtype.kind != "f" or not np.all(np.isfinite(pos)):
                raise InputError(f"{path}: 'positions' must be finite")
            if axes and len(axes) != pos.shape[2]:
                raise InputError(f"{path}: grid dimension does not match 'positions'")
            return cls(t=t, meta=meta, axes=axes, rho_d=rho_d, positions=pos, f=f, extra=extra)
        raise InputError(f"{path}: neither 'rho' nor 'positions' present")


def json_plain(obj):
    """``obj`` as it reads back from a result's meta (arrays as lists, callables by name)."""
    return json.loads(json.dumps(obj, default=_json_default))


def _checked_logit(path: str, f, shape: tuple, has_grid: bool):
    """The optional 'f' array: the logit on the grid cells at every save time, finite."""
    if f is None:
        return None
    if not has_grid:
        raise InputError(f"{path}: 'f' needs the grid ('x')")
    if f.shape != shape:
        raise InputError(f"{path}: 'f' has shape {f.shape}, expected {shape}")
    if f.dtype.kind != "f" or not np.all(np.isfinite(f)):
        raise InputError(f"{path}: 'f' must be finite")
    return f


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "log_dbeta") and hasattr(obj, "name"):     # a user's Flow object: by name
        return f"<python flow {obj.name}>"
    if callable(obj):       # a log-density given from Python: recorded by name, never re-run from a file
        return f"<python callable {getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}>"
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
