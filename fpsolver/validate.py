"""``fpsolver validate``: run the verification studies, write figures, report.md and summary.json.

Each study (``fpsolver.studies``) compares measured numbers with what theory predicts
(MATH.md) and returns a plain dict; this module runs the selected studies in order, writes
``DIR/<study>.png`` and ``.pdf`` (by the studies), ``DIR/summary.json`` (one object per study:
the measured quantity, its expected value and tolerance, pass/fail, every check) and
``DIR/report.md`` (a summary table, then per study its checks, its data table and its figure).

Exit status: 0 when every selected study passed, 1 when one failed (or raised an error,
which is recorded in the summary), 2 for bad options.
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
import traceback
from typing import Optional, Sequence

from . import __version__
from .errors import InputError

# (name, module under fpsolver.studies, function): the order of the report
STUDIES = [
    ("spatial_order", "orders", "study_spatial_order"),
    ("temporal_order", "orders", "study_temporal_order"),
    ("crandall_liggett", "exponential_formula", "study_crandall_liggett"),
    ("energy", "conservation", "study_energy"),
    ("superposition", "particle_studies", "study_superposition"),
    ("interacting", "particle_studies", "study_interacting"),
    ("long_time", "long_time", "study_long_time"),
    ("exact_ou", "exact", "study_exact_ou"),
    ("external_exact", "external", "study_external_exact"),
    ("gan_euler", "gan_step", "study_gan_euler"),
    ("fipy", "fipy_check", "study_fipy"),
    ("mmd_grid", "mmd", "study_mmd_grid"),
    ("mmd_arbel", "mmd", "study_mmd_arbel"),
    ("mmd_critic", "mmd", "study_mmd_critic"),
    ("mmd_particles", "mmd_particles", "study_mmd_particles"),
    ("gan_mlp", "gan_mlp", "study_gan_mlp"),
    ("dual_kappa", "dual", "study_dual_kappa"),
    ("dual_gan", "dual", "study_dual_gan"),
    ("dual_slow", "dual_modes", "study_dual_slow"),
    ("dual_kernel", "dual_modes", "study_dual_kernel"),
    ("dual_orders", "dual_modes", "study_dual_orders"),
    ("dual_particles", "dual_particles", "study_dual_particles"),
    ("adaptive", "adaptive", "study_adaptive"),
    ("gan_order", "gan_loop", "study_gan_order"),
    ("gan_persistence", "gan_loop", "study_gan_persistence"),
    ("gan_stability", "gan_loop", "study_gan_stability"),
    ("gan_losses", "gan_losses", "study_gan_losses"),
    ("gan_kernel_floor", "gan_losses", "study_gan_kernel_floor"),
]
STUDY_NAMES = [s[0] for s in STUDIES]


def select_studies(only: Optional[str]) -> list[str]:
    """Names from a comma-separated ``--only`` value (all studies when None)."""
    if only is None:
        return list(STUDY_NAMES)
    names = [s.strip() for s in only.split(",") if s.strip()]
    unknown = [s for s in names if s not in STUDY_NAMES]
    if not names or unknown:
        raise InputError(f"--only: unknown study {', '.join(unknown) or repr(only)} "
                         f"(choose from {', '.join(STUDY_NAMES)})")
    return [s for s in STUDY_NAMES if s in names]


def run_study(name: str, quick: bool, out_dir: str) -> dict:
    """Run one study; an exception becomes a failed entry carrying the error message."""
    import matplotlib.pyplot as plt

    from .studies._common import STYLE

    module, func = {s[0]: s[1:] for s in STUDIES}[name]
    started = time.perf_counter()
    try:
        fn = getattr(importlib.import_module(f"fpsolver.studies.{module}"), func)
        with plt.rc_context(STYLE):
            res = fn(quick, out_dir)
    except Exception as exc:  # a broken study must not hide the others' results
        res = {"name": name, "title": name, "quantity": "study ran", "measured": None, "expected": None,
               "tolerance": None, "criterion": "", "passed": False, "checks": [], "figure": None,
               "table": {"columns": [], "rows": []},
               "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
    finally:
        plt.close("all")
    res["wall_time"] = time.perf_counter() - started
    res["quick"] = quick
    return res


def run_studies(names: Sequence[str], quick: bool, out_dir: str, stream=None,
                scheduler: Optional[str] = None, workers: Optional[int] = None) -> list[dict]:
    """Run the named studies, printing one line per study; return their dicts in report order.

    ``scheduler`` (local | none | an address) runs each study as a task of the sweep engine
    (:func:`fpsolver.sweep.map_tasks`); None runs them here, one after the other.
    """
    stream = stream or sys.stderr
    if scheduler is not None:
        return _run_studies_mapped(names, quick, out_dir, stream, scheduler, workers)
    results = []
    for k, name in enumerate(names, 1):
        stream.write(f"[{k}/{len(names)}] {name} ...\n")
        stream.flush()
        res = run_study(name, quick, out_dir)
        _report_line(stream, k, len(names), res)
        results.append(res)
    return results


def _report_line(stream, k: int, n: int, res: dict) -> None:
    verdict = "pass" if res["passed"] else "FAIL"
    extra = f" ({res['error']})" if "error" in res else ""
    stream.write(f"[{k}/{n}] {res['name']}: {verdict} in {res['wall_time']:.1f} s{extra}\n")
    stream.flush()


def _study_task(task: tuple) -> dict:
    return run_study(*task)


def _run_studies_mapped(names, quick, out_dir, stream, scheduler, workers) -> list[dict]:
    from .sweep import map_tasks
    results: list = [None] * len(names)
    tasks = [(name, quick, os.path.abspath(out_dir)) for name in names]
    for k, (i, res) in enumerate(map_tasks(_study_task, tasks, scheduler, workers, name="study"), 1):
        if isinstance(res, BaseException):  # the worker running it died
            res = {"name": names[i], "title": names[i], "quantity": "study ran", "measured": None,
                   "expected": None, "tolerance": None, "criterion": "", "passed": False, "checks": [],
                   "figure": None, "table": {"columns": [], "rows": []}, "wall_time": 0.0, "quick": quick,
                   "error": f"{type(res).__name__}: {res}".splitlines()[0], "traceback": ""}
        _report_line(stream, k, len(names), res)
        results[i] = res
    return results


# ------------------------------------------------------------------ report

def _atomic_write(path: str, text: str) -> None:
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _num(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")  # a literal | would end the table cell


def _md_table(columns, rows) -> list[str]:
    out = ["| " + " | ".join(_num(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_num(v) for v in r) + " |" for r in rows]
    return out


def write_summary(results: list[dict], out_dir: str) -> str:
    path = os.path.join(out_dir, "summary.json")
    keep = ("name", "title", "quantity", "measured", "expected", "tolerance", "criterion", "passed",
            "figure", "wall_time", "quick", "checks", "error")
    _atomic_write(path, json.dumps([{k: r[k] for k in keep if k in r} for r in results], indent=1) + "\n")
    return path


def write_report(results: list[dict], out_dir: str, quick: bool, total_time: float) -> str:
    """report.md: summary table, then per study its checks, data table and figure."""
    lines = ["# fpsolver verification report", "",
             f"fpsolver {__version__}, Python {platform.python_version()}, {platform.machine()}; "
             f"{'quick' if quick else 'full'} run, {total_time:.0f} s in all. "
             f"Command: `fpsolver validate --out DIR{' --quick' if quick else ''}`.", "",
             "| study | quantity (worst check) | measured | expected | criterion | result | time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| [{r['name']}](#{r['name']}) | {r['quantity']} | {_num(r['measured'])} | "
                     f"{_num(r['expected'])} | {_num(r.get('criterion', ''))} | "
                     f"{'pass' if r['passed'] else '**FAIL**'} | {r['wall_time']:.1f} |")
    for r in results:
        lines += ["", f"<a id=\"{r['name']}\"></a>", f"## {r['title']}", ""]
        if "error" in r:
            lines += [f"**The study did not run:** `{r['error']}`", "", "```", r.get("traceback", ""), "```"]
            continue
        if r.get("notes"):
            lines += [r["notes"], ""]
        lines += _md_table(["check", "measured", "expected", "criterion", "result"],
                           [[c["quantity"], c["measured"], c["expected"], c["criterion"],
                             "pass" if c["passed"] else "FAIL"] for c in r["checks"]])
        if r["table"]["rows"]:
            lines += ["", "Measurements:", ""] + _md_table(r["table"]["columns"], r["table"]["rows"])
        if r.get("figure"):
            pdf = os.path.splitext(r["figure"])[0] + ".pdf"
            lines += ["", f"![{r['title']}]({r['figure']})", "", f"(vector version: [{pdf}]({pdf}))"]
    path = os.path.join(out_dir, "report.md")
    _atomic_write(path, "\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------ command line

def validate(out_dir: str, quick: bool = False, only: Optional[str] = None, stream=None,
             scheduler: Optional[str] = None, workers: Optional[int] = None) -> list[dict]:
    """Run the studies, write the figures, summary.json and report.md into ``out_dir``."""
    names = select_studies(only)
    if scheduler is not None or workers is not None:
        from .sweep.engine import check_scheduler
        check_scheduler(scheduler or "none", workers)
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise InputError(f"--out {out_dir}: folder {parent} does not exist")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    os.makedirs(out_dir, exist_ok=True)
    started = time.perf_counter()
    results = run_studies(names, quick, out_dir, stream, scheduler, workers)
    write_summary(results, out_dir)
    write_report(results, out_dir, quick, time.perf_counter() - started)
    return results


def validate_cli(args) -> int:
    """``fpsolver validate --out DIR [--quick] [--only a,b]``; exit 1 if a study failed."""
    results = validate(args.out, quick=args.quick, only=args.only,
                       scheduler=getattr(args, "scheduler", None), workers=getattr(args, "workers", None))
    failed = [r["name"] for r in results if not r["passed"]]
    print(f"{len(results) - len(failed)}/{len(results)} studies passed; "
          f"report: {os.path.join(args.out, 'report.md')}, summary: {os.path.join(args.out, 'summary.json')}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def main_single(name: str, argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the scripts in ``validation/``: run one study alone."""
    import argparse

    p = argparse.ArgumentParser(description=f"run the '{name}' verification study alone")
    p.add_argument("--out", default=os.path.join("validation-report", name), help="output folder")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    args.only = name
    try:
        os.makedirs(args.out, exist_ok=True)
        return validate_cli(args)
    except InputError as exc:
        print(f"fpsolver: error: {exc}", file=sys.stderr)
        return exc.exit_code
