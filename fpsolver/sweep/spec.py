"""Sweep files (TOML) -> a validated plan: one resolved, validated case per run, each with its key.

A sweep file names a base case and the values to vary::

    [sweep]
    base = "bimodal_1d.toml"     # relative to the sweep file
    command = "solve"            # a name in fpsolver.sweep.runs.COMMANDS
    mode = "product"             # product | zip
    seeds = [0, 1, 2]            # commands with randomness only (particles, gan)
    reference = "finest"         # optional: "finest" or a density result (.npz)
    [sweep.options]              # optional command options (particles: n, integrator, ...)
    [sweep.vary]
    "domain.cells" = [[200], [400], [800]]
    "flow.kind" = ["js", "kl"]

Every varied key is a dotted path into the base case's TOML dict (``target.components[0].mean``
indexes an array of tables); each combination replaces those values and goes through the case
parser again (:meth:`fpsolver.case.Case.from_dict`), so a sweep accepts exactly the cases a
case file does. A run's key is sha256 of the canonical JSON of (resolved case, command, seed,
options, fpsolver version), so equal keys mean equal runs.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Optional

from .. import __version__
from ..case import Case, read_toml
from ..errors import CaseError, FpsolverError, InputError
from .runs import COMMANDS, check_options

MODES = ("product", "zip")
RESOLUTION_KEYS = ("domain.cells", "time.dt")  # what reference = "finest" refines
_PART = re.compile(r"^([A-Za-z0-9_-]+)((?:\[\d+\])*)$")


@dataclass(frozen=True)
class Run:
    """One combination: its varied values, seed, validated case and key."""

    index: int
    values: dict
    seed: Optional[int]
    case: Case
    key: str


@dataclass
class Sweep:
    """A validated sweep: settings, the valid runs, and the combinations that failed to validate."""

    path: str
    base: str
    command: str
    mode: str
    vary: dict
    seeds: Optional[list]
    options: dict
    reference: Optional[str]       # None, "finest" or an absolute path
    runs: list[Run] = field(default_factory=list)
    invalid: list[tuple[int, dict, Optional[int], str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.runs) + len(self.invalid)


def run_key(raw: dict, command: str, seed: Optional[int], options: dict) -> str:
    """sha256 (first 16 hex digits) of the canonical JSON of everything that fixes a run's output:
    the resolved case, the contents of the .npy files it reads (an edited file is a new run), the
    command, seed, options and fpsolver version."""
    files = {}
    for key in ("target", "initial"):
        path = raw.get(key, {}).get("path") if isinstance(raw.get(key), dict) else None
        if isinstance(path, str) and os.path.isfile(path):
            with open(path, "rb") as fh:
                files[key] = hashlib.sha256(fh.read()).hexdigest()
    blob = {"case": raw, "files": files, "command": command, "seed": seed, "options": options,
            "version": __version__}
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(values: dict, seed: Optional[int] = None) -> str:
    """'domain.cells=[200], flow.kind=js[, seed=0]' for messages and tables."""
    parts = [f"{k}={_short(v)}" for k, v in values.items()]
    if seed is not None:
        parts.append(f"seed={seed}")
    return ", ".join(parts)


def _short(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


# ------------------------------------------------------------------ loading

def load_sweep(path) -> Sweep:
    """Read and validate a sweep file; every combination is validated before anything runs.

    Settings errors raise :class:`~fpsolver.errors.CaseError`; combinations that the case
    parser rejects are collected in ``Sweep.invalid`` (index, values, seed, message).
    """
    path = os.path.abspath(os.fspath(path))
    spec = _read(path)
    folder = os.path.dirname(path)
    base = _string(spec, "base")
    base_path = base if os.path.isabs(base) else os.path.join(folder, base)
    try:
        base_case = Case.from_toml(base_path)
    except CaseError as exc:
        raise CaseError("sweep.base", f"{base_path}: {exc}") from None
    command = spec.get("command", "solve")
    if command not in COMMANDS:
        raise CaseError("sweep.command", f"unknown value {command!r} (one of {', '.join(COMMANDS)})")
    mode = spec.get("mode", "product")
    if mode not in MODES:
        raise CaseError("sweep.mode", f"unknown value {mode!r} (one of {', '.join(MODES)})")
    options = spec.get("options", {})
    if not isinstance(options, dict):
        raise CaseError("sweep.options", "must be a table")
    check_options(command, options)
    sweep = Sweep(path, os.path.abspath(base_path), command, mode, _vary(spec), _seeds(spec, command),
                  options, _reference(spec, folder, command))
    _plan(sweep, base_case.raw)
    return sweep


def _read(path: str) -> dict:
    data = read_toml(path, "sweep file", " (for --plot give the sweep's --out folder)")
    if set(data) != {"sweep"} or not isinstance(data["sweep"], dict):
        raise CaseError("sweep", f"{path}: a sweep file holds one [sweep] table (and [sweep.vary]), "
                        f"got {', '.join(sorted(data)) or 'nothing'}")
    spec = data["sweep"]
    allowed = {"base", "command", "mode", "seeds", "reference", "options", "vary"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise CaseError(f"sweep.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
    return spec


def _string(spec: dict, key: str) -> str:
    v = spec.get(key)
    if not isinstance(v, str) or not v:
        raise CaseError(f"sweep.{key}", "missing or not a non-empty string")
    return v


def _vary(spec: dict) -> dict:
    vary = spec.get("vary")
    if not isinstance(vary, dict) or not vary:
        raise CaseError("sweep.vary", "missing or empty: give [sweep.vary] with at least one key = [values]")
    for k, vals in vary.items():
        if not isinstance(vals, list) or not vals:
            raise CaseError(f"sweep.vary.{k}", "must be a non-empty list of values")
        for part in k.split("."):
            if not _PART.match(part):
                raise CaseError(f"sweep.vary.{k}", "not a dotted key like \"time.dt\" or \"target.components[0].mean\"")
    if spec.get("mode", "product") == "zip" and len({len(v) for v in vary.values()}) > 1:
        lengths = ", ".join(f"{k}: {len(v)}" for k, v in vary.items())
        raise CaseError("sweep.vary", f"mode = \"zip\" needs lists of equal length ({lengths})")
    return vary


def _seeds(spec: dict, command: str) -> Optional[list]:
    if "seeds" not in spec:    # the command's own seed (particles: 0; gan: the case's [gan] seed)
        return [None] if COMMANDS[command].random else None
    if not COMMANDS[command].random:
        raise CaseError("sweep.seeds", f"the {command} command is deterministic; seeds apply to "
                        f"{', '.join(c for c, r in COMMANDS.items() if r.random)}")
    seeds = spec["seeds"]
    if not isinstance(seeds, list) or not seeds or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise CaseError("sweep.seeds", "must be a non-empty list of integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise CaseError("sweep.seeds", "repeats a seed")
    return list(seeds)


def _reference(spec: dict, folder: str, command: str) -> Optional[str]:
    ref = spec.get("reference")
    if ref is None:
        return None
    if not isinstance(ref, str) or not ref:
        raise CaseError("sweep.reference", "must be \"finest\" or the path of a density result (.npz)")
    if ref == "finest":
        if command != "solve":
            raise CaseError("sweep.reference", "\"finest\" compares grid solutions: it needs command = \"solve\"")
        return ref
    from ..result import Result
    full = ref if os.path.isabs(ref) else os.path.join(folder, ref)
    try:
        Result.load(full, expect="density")
    except InputError as exc:
        raise CaseError("sweep.reference", str(exc)) from None
    return os.path.abspath(full)


# ------------------------------------------------------------------ combinations

def _combinations(sweep: Sweep):
    keys = list(sweep.vary)
    lists = [sweep.vary[k] for k in keys]
    rows = zip(*lists) if sweep.mode == "zip" else itertools.product(*lists)
    for vals in rows:
        for seed in (sweep.seeds or [None]):
            yield dict(zip(keys, vals)), seed


def _plan(sweep: Sweep, base_raw: dict) -> None:
    """Validate every combination through the case parser; fill runs, invalid and check keys."""
    folder = os.path.dirname(sweep.base)
    probe = copy.deepcopy(base_raw)
    for k, values in sweep.vary.items():  # a key the base case lacks is a settings error, not a bad run
        _assign(probe, k, values[0])
    seen: dict[str, int] = {}
    for i, (values, seed) in enumerate(_combinations(sweep)):
        try:
            raw = copy.deepcopy(base_raw)
            for k, v in values.items():
                _assign(raw, k, v)
            case = Case.from_dict(raw, base_dir=folder, source=sweep.base)
            if COMMANDS[sweep.command].check is not None:      # e.g. the GAN loop's [gan] options
                COMMANDS[sweep.command].check(case, sweep.options)
        except FpsolverError as exc:
            sweep.invalid.append((i, values, seed, str(exc)))
            continue
        key = run_key(case.raw, sweep.command, seed, sweep.options)
        if key in seen:
            raise CaseError("sweep.vary", f"runs {seen[key]} and {i} are the same case "
                            f"({describe(values, seed)}); remove the repeated value")
        seen[key] = i
        sweep.runs.append(Run(i, values, seed, case, key))
    if sweep.reference == "finest" and sweep.runs:
        finest_by_group(sweep)  # raises now, not after the runs, if a group has no finest run
    elif sweep.reference is not None:
        _check_reference(sweep)


def _check_reference(sweep: Sweep) -> None:
    """Every run must end at a save time of the reference result, on the reference's box."""
    from ..result import Result
    from .reference import TIME_RTOL, same_box
    ref = Result.load(sweep.reference, expect="density")
    for run in sweep.runs:
        t = run.case.final_time
        if not any(abs(r - t) <= TIME_RTOL * max(1.0, abs(t)) for r in ref.t):
            raise CaseError("sweep.reference", f"{sweep.reference} has no save time t = {t:g}, the final "
                            f"time of run {run.index} ({describe(run.values, run.seed)})")
        try:
            same_box(run.case.grid, ref.grid)
        except InputError as exc:
            raise CaseError("sweep.reference", f"run {run.index}: {exc}") from None


def _assign(raw: dict, dotted: str, value) -> None:
    """raw[a][b][i]... = value for the dotted key 'a.b[i]...'; every parent must exist."""
    steps: list = []
    for part in dotted.split("."):
        m = _PART.match(part)
        steps.append(m.group(1))
        steps += [int(i) for i in re.findall(r"\[(\d+)\]", m.group(2))]
    node = raw
    for depth, step in enumerate(steps[:-1]):
        where = _path(steps[:depth + 1])
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            raise CaseError(f"sweep.vary.{dotted}", f"the base case has no {where}") from None
        if not isinstance(node, (dict, list)):
            raise CaseError(f"sweep.vary.{dotted}", f"{where} in the base case is a value, not a table")
    last = steps[-1]
    if isinstance(node, list) != isinstance(last, int) or (isinstance(last, int) and last >= len(node)):
        raise CaseError(f"sweep.vary.{dotted}", f"the base case has no {_path(steps)}")
    node[last] = copy.deepcopy(value)


def _path(steps) -> str:
    out = ""
    for s in steps:
        out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else s)
    return out


# ------------------------------------------------------------------ the "finest" reference

def resolution(case: Case) -> tuple[tuple[int, ...], float]:
    """(cells per axis, dt): run a is at least as fine as b when cells_a >= cells_b and dt_a <= dt_b."""
    return tuple(case.grid.cells), case.dt


def finest_by_group(sweep: Sweep) -> dict[str, str]:
    """key -> key of the finest run among the runs that differ from it only in resolution.

    Runs are grouped by their varied values other than domain.cells and time.dt (and by seed);
    in each group one run must have at least as many cells on every axis and at most the dt
    of every other run.
    """
    res_keys = [k for k in sweep.vary if k in RESOLUTION_KEYS]
    if not res_keys:
        raise CaseError("sweep.reference", "\"finest\" needs domain.cells or time.dt among the varied keys")
    groups: dict[str, list[Run]] = {}
    for run in sweep.runs:
        rest = {k: v for k, v in run.values.items() if k not in RESOLUTION_KEYS}
        groups.setdefault(json.dumps([rest, run.seed], sort_keys=True), []).append(run)
    out = {}
    for runs in groups.values():
        best = max(runs, key=lambda r: (math.prod(r.case.grid.cells), -r.case.dt))
        cb, db = resolution(best.case)
        for r in runs:
            c, d = resolution(r.case)
            if any(a < b for a, b in zip(cb, c)) or db > d:
                raise CaseError("sweep.reference", f"no finest run among {describe(best.values, best.seed)} "
                                f"and {describe(r.values, r.seed)} (neither is finer in both cells and dt)")
            out[r.key] = best.key
    return out
