"""The sweep folder's tables: ``index.csv`` (a row per run) and ``sweep.json`` (the plan).

``index.csv`` is rewritten whole, to a temporary file that is then renamed, every time a run
finishes, so after a crash it holds every row finished up to then and nothing half-written;
rows not finished read ``pending``. ``--resume`` trusts a row only when its status is ``ok``
and its result file exists (a result written just before a crash, without its row, is run
again and comes out the same).
"""
from __future__ import annotations

import csv
import io
import json
import os

from ..errors import InputError
from .runs import SUMMARY_COLUMNS

INDEX = "index.csv"
PLAN = "sweep.json"
RESULTS = "results"
REFERENCE_COLUMNS = ("l1", "w1")


def columns(vary_keys) -> list[str]:
    return ["run", "key", "command", "seed", *vary_keys, "status", "wall_time", *SUMMARY_COLUMNS,
            *REFERENCE_COLUMNS, "error"]


def result_path(out_dir: str, key: str) -> str:
    return os.path.join(out_dir, RESULTS, f"{key}.npz")


def _atomic_text(path: str, text: str) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.part")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def cell(v) -> str:
    """A CSV cell: strings as they are, lists as JSON, floats to 17 significant digits."""
    if v is None or v == "":
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v)


def write_index(out_dir: str, vary_keys, rows: list[dict]) -> str:
    """Write ``index.csv`` atomically: the given rows in run order."""
    buf = io.StringIO()
    cols = columns(vary_keys)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for row in sorted(rows, key=lambda r: r["run"]):
        w.writerow([cell(row.get(c, "")) for c in cols])
    path = os.path.join(out_dir, INDEX)
    _atomic_text(path, buf.getvalue())
    return path


def read_index(out_dir: str) -> list[dict]:
    """Rows of ``index.csv`` as dicts of strings ([] when there is none)."""
    path = os.path.join(out_dir, INDEX)
    if not os.path.isfile(path):
        return []
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable sweep index ({exc})") from None
    if rows and not {"key", "status", "run"} <= set(rows[0]):
        raise InputError(f"{path}: not a sweep index (no key/status/run columns)")
    return rows


def finished(out_dir: str) -> dict[str, dict]:
    """key -> row for the runs that need not run again (status ok, result file present)."""
    return {r["key"]: r for r in read_index(out_dir)
            if r["status"] == "ok" and os.path.isfile(result_path(out_dir, r["key"]))}


def write_plan(out_dir: str, plan: dict) -> None:
    _atomic_text(os.path.join(out_dir, PLAN), json.dumps(plan, indent=1) + "\n")


def read_plan(out_dir: str) -> dict:
    path = os.path.join(out_dir, PLAN)
    if not os.path.isfile(path):
        raise InputError(f"{out_dir}: not a sweep folder (no {PLAN}); run `fpsolver sweep FILE --out {out_dir}` first")
    try:
        with open(path, encoding="utf-8") as fh:
            plan = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable sweep plan ({exc})") from None
    if not isinstance(plan, dict) or "runs" not in plan or "vary" not in plan:
        raise InputError(f"{path}: not a sweep plan")
    return plan
