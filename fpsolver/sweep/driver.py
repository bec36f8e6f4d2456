"""Run a validated sweep into a folder: ``results/<key>.npz``, ``index.csv``, ``sweep.json``.

The runs go through :func:`fpsolver.sweep.engine.map_tasks`; each finished run rewrites
``index.csv`` atomically. Errors against the reference are filled in after the runs, from
the saved results (the "finest" reference exists only once its run has finished).
"""
from __future__ import annotations

import os
import time
from typing import Callable, Optional

from .. import __version__
from ..errors import InputError
from ..progress import ProgressBar
from ..result import Result
from . import index as ix
from .engine import map_tasks
from .reference import reference_errors
from .runs import run_one
from .spec import Sweep, describe, finest_by_group


def prepare_folder(out_dir: str, resume: bool) -> None:
    """Create DIR and DIR/results; refuse to write over another sweep unless resuming."""
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise InputError(f"--out {out_dir}: folder {parent} does not exist")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    if not resume and os.path.isfile(os.path.join(out_dir, ix.INDEX)):
        raise InputError(f"--out {out_dir}: already holds a sweep (index.csv); add --resume to "
                         "continue it, or choose another folder")
    os.makedirs(os.path.join(out_dir, ix.RESULTS), exist_ok=True)


def plan_dict(sweep: Sweep) -> dict:
    """What ``--plot`` needs later: the settings and, per run, its values and resolution."""
    return {"version": __version__, "sweep": sweep.path, "base": sweep.base, "command": sweep.command,
            "mode": sweep.mode, "vary": list(sweep.vary), "reference": sweep.reference,
            "runs": [{"run": r.index, "key": r.key, "values": r.values, "seed": r.seed,
                      "h": max(r.case.grid.spacing), "dt": r.case.dt} for r in sweep.runs]}


def run_sweep(sweep: Sweep, out_dir: str, *, scheduler: str = "local", workers: Optional[int] = None,
              resume: bool = False, progress: bool = True, runner: Callable = run_one) -> list[dict]:
    """Run every run of ``sweep`` not already finished (with ``resume``); return the index rows.

    ``runner(task) -> row`` runs one task (default :func:`~.runs.run_one`; on a cluster it must
    be importable or picklable on the workers).
    """
    if sweep.invalid:
        raise InputError(f"{len(sweep.invalid)} of {sweep.size} combinations are invalid; nothing was run")
    prepare_folder(out_dir, resume)
    done = ix.finished(out_dir) if resume else {}
    keys = list(sweep.vary)
    rows = {}
    for r in sweep.runs:
        row = {"run": r.index, "key": r.key, "command": sweep.command, "seed": r.seed, **r.values,
               "status": "pending"}
        if r.key in done:
            row.update({c: done[r.key].get(c, "") for c in ix.columns(keys)[4 + len(keys):]})
        rows[r.key] = row
    ix.write_plan(out_dir, plan_dict(sweep))
    ix.write_index(out_dir, keys, list(rows.values()))
    todo = [r for r in sweep.runs if r.key not in done]
    tasks = [{"key": r.key, "command": sweep.command, "case": r.case.raw, "source": r.case.source,
              "seed": r.seed, "options": sweep.options, "out": os.path.abspath(ix.result_path(out_dir, r.key)),
              "version": __version__}
             for r in todo]
    bar = ProgressBar(f"sweep ({scheduler})", len(tasks), enabled=progress)
    for n, (i, out) in enumerate(map_tasks(runner, tasks, scheduler, workers, name="sweep"), 1):
        if isinstance(out, BaseException):  # the task itself died, e.g. its worker was killed
            out = {"status": "failed", "error": f"{type(out).__name__}: {out}".splitlines()[0], "wall_time": ""}
        rows[todo[i].key].update({k: v for k, v in out.items() if k != "key"})
        ix.write_index(out_dir, keys, list(rows.values()))
        bar(n, rows[todo[i].key]["status"])
    bar.close()
    if sweep.reference is not None:
        _fill_reference(sweep, out_dir, rows)
        ix.write_index(out_dir, keys, list(rows.values()))
    return sorted(rows.values(), key=lambda r: r["run"])


def _fill_reference(sweep: Sweep, out_dir: str, rows: dict) -> None:
    """L1 and W1 of every finished run against its reference (a failure blanks that row's columns)."""
    if sweep.reference == "finest":
        ref_of = finest_by_group(sweep)
    else:
        ref_of = {r.key: sweep.reference for r in sweep.runs}
    loaded: dict[str, Optional[Result]] = {}
    for key, row in rows.items():
        row["l1"] = row["w1"] = ""
        if row["status"] != "ok":
            continue
        ref_path = ref_of[key] if os.path.isabs(ref_of[key]) else ix.result_path(out_dir, ref_of[key])
        if ref_path not in loaded:
            ok = os.path.isfile(ref_path)
            loaded[ref_path] = Result.load(ref_path, expect="density") if ok else None
        ref = loaded[ref_path]
        if ref is None:
            continue  # the reference run failed: its group has no errors to report
        try:
            l1, w1 = reference_errors(Result.load(ix.result_path(out_dir, key)), ref)
        except InputError as exc:
            row["error"] = f"reference: {exc}"
            continue
        row["l1"], row["w1"] = l1, ("" if w1 != w1 else w1)


def plan_table(sweep: Sweep, out_dir: Optional[str] = None) -> str:
    """The ``--dry-run`` listing: one line per combination (key, or why it is invalid)."""
    done = ix.finished(out_dir) if out_dir and os.path.isdir(out_dir) else {}
    lines = [f"sweep {sweep.path}: {sweep.size} runs of `{sweep.command}` on {sweep.base} "
             f"({sweep.mode} of {', '.join(sweep.vary)}{', seeds ' + str(sweep.seeds) if sweep.seeds and len(sweep.seeds) > 1 else ''})"]
    entries = [(r.index, f"{r.key}  {'done   ' if r.key in done else 'to run '} {describe(r.values, r.seed)}")
               for r in sweep.runs]
    entries += [(i, f"{'INVALID':16}  {'':7} {describe(v, s)}: {msg}") for i, v, s, msg in sweep.invalid]
    lines += [f"  {i:4d}  {text}" for i, text in sorted(entries)]
    todo = sum(r.key not in done for r in sweep.runs)
    lines.append(f"{len(sweep.runs)} valid, {len(sweep.invalid)} invalid; {todo} to run")
    return "\n".join(lines)


def report(rows: list[dict], out_dir: str, wall: float) -> str:
    """The closing summary: counts, failures with their errors, where the index is."""
    ok = sum(r["status"] == "ok" for r in rows)
    failed = [r for r in rows if r["status"] != "ok"]
    lines = [f"{len(rows)} runs: {ok} ok, {len(failed)} failed, in {wall:.1f} s; "
             f"index {os.path.join(out_dir, ix.INDEX)}"]
    lines += [f"  run {r['run']} ({r['key']}) failed: {r.get('error', '')}" for r in failed]
    return "\n".join(lines)


def timed_run(sweep: Sweep, out_dir: str, **kw) -> tuple[list[dict], float]:
    started = time.perf_counter()
    rows = run_sweep(sweep, out_dir, **kw)
    return rows, time.perf_counter() - started
