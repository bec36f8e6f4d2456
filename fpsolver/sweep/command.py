"""``fpsolver sweep``: options -> load, run or plot a sweep -> a summary on stdout."""
from __future__ import annotations

import os
import sys

from ..errors import InputError
from .driver import plan_table, report, timed_run
from .engine import check_scheduler
from .plot import plot_sweep, slopes_table
from .spec import describe, load_sweep


def sweep_cli(args) -> int:
    """Exit 0 when every run finished, 3 when some failed (they are in index.csv), 2 for bad input."""
    if args.plot is not None:
        if not os.path.isdir(args.path):
            raise InputError(f"--plot: {args.path} is not a sweep folder (give the --out folder of a sweep)")
        path, series = plot_sweep(args.path, args.plot or None, args.metric)
        print(slopes_table(series))
        print(f"wrote {path}")
        return 0
    if args.out is None:
        raise InputError("--out DIR is required to run a sweep (or give a sweep folder with --plot)")
    check_scheduler(args.scheduler, args.workers)
    sweep = load_sweep(args.path)
    if args.dry_run:
        print(plan_table(sweep, args.out if args.resume else None))
        return 2 if sweep.invalid else 0
    for i, values, seed, msg in sweep.invalid:
        print(f"fpsolver: invalid run {i} ({describe(values, seed)}): {msg}", file=sys.stderr)
    try:
        rows, wall = timed_run(sweep, args.out, scheduler=args.scheduler, workers=args.workers,
                               resume=args.resume, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"fpsolver: interrupted; the finished runs are in {os.path.join(args.out, 'index.csv')}, "
              "--resume continues the sweep", file=sys.stderr)
        return 130
    print(report(rows, args.out, wall))
    return 0 if all(r["status"] == "ok" for r in rows) else 3
