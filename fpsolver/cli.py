"""Command line: argument parsing and printing only; the numerics live in the solvers.

Exit status: 0 success, 2 bad input (case file, result file, option), 3 a solve that failed
for good, 130/143 interrupted. Errors are one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

from .errors import FpsolverError, InputError


def _out_path(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"--out {path}: folder {folder} does not exist")
    return path


def _cells(text: str):
    try:
        cells = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"cells must be N or N,M integers, got {text!r}") from None
    if not cells or len(cells) > 2 or min(cells) < 3:
        raise argparse.ArgumentTypeError(f"cells must be one or two integers >= 3, got {text!r}")
    return cells


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def _progress(label, total, quiet):
    from .progress import ProgressBar
    return ProgressBar(label, total, enabled=not quiet)


# ------------------------------------------------------------------ commands

def cmd_solve(args) -> int:
    from .case import Case

    case = Case.from_toml(args.case, allow_imports=args.allow_imports)
    if args.cells is not None and len(args.cells) != case.grid.dim:
        raise InputError(f"--cells: give {case.grid.dim} value(s) for this {case.grid.dim}D case")
    case = case.with_overrides(dt=args.dt, cells=args.cells, scheme=args.scheme, rtol=args.rtol)
    out = _out_path(args.out)
    bar = _progress(f"solve ({args.backend})", case.save_steps[-1], args.quiet)
    if args.backend == "fipy":
        from .fipy_backend import solve_case_fipy
        if args.checkpoint or args.resume:
            raise InputError("--checkpoint/--resume are available for the fv backend only")
        res = solve_case_fipy(case, progress=bar)
    else:
        from .fv import solve_case
        res = solve_case(case, progress=bar, checkpoint_path=args.checkpoint,
                         checkpoint_every=args.checkpoint_every, resume=args.resume)
    bar.close()
    res.save(out)
    if not args.quiet:
        print(summary_density(res, out))
    return 0


def summary_density(res, out: str) -> str:
    m = res.meta
    lines = [f"wrote {out}",
             f"  backend {m.get('backend')}, flow {m.get('flow')}, scheme {m.get('scheme')}, "
             f"grid {'x'.join(str(c) for c in m['grid']['cells'])}, dt {m.get('dt'):g}",
             f"  final time       {res.t[-1]:g}  ({m.get('steps')} steps, {m.get('rejected_steps', 0)} rejected)",
             f"  mass error       {m.get('mass_error', float('nan')):.2e} (relative, max over steps)",
             f"  min rho          {m.get('min_rho', float('nan')):.3e}"]
    e = m.get("energy") or []
    if e:
        lines.append(f"  energy           {e[0]:.6g} -> {e[-1]:.6g}")
    if m.get("js"):
        lines.append(f"  JS(rho, rho_d)   {m['js'][0]:.6g} -> {m['js'][-1]:.6g}; GAN value "
                     f"{m['gan_value'][0]:.6g} -> {m['gan_value'][-1]:.6g} (discriminator flow)")
    if "dt_taken" in m:
        d = m["dt_taken"]
        lines.append(f"  CFL steps        dt from {d['min']:.3g} to {d['max']:.3g} (median {d['median']:.3g})")
    if "wall_mass" in m:
        lines.append(f"  wall mass        {m['wall_mass'][-1]:.3e} at t = {res.t[-1]:g} (cells touching a wall)")
    its = m.get("newton_iterations") or m.get("sweeps") or []
    if its:
        lines.append(f"  iterations/step  mean {sum(its) / len(its):.2f}, max {max(its)}")
    lines.append(f"  wall time        {m.get('wall_time', 0.0):.2f} s")
    return "\n".join(lines)


def cmd_plot(args) -> int:
    from .result import Result
    from .plots import plot_density

    res = Result.load(args.result)
    out = _out_path(args.out)
    if res.kind == "particles":
        from .plots import plot_particles
        plot_particles(res, out)
    else:
        plot_density(res, out)
    print(f"wrote {out}")
    return 0


def cmd_particles(args) -> int:
    from .case import Case
    from .particles import solve_particles_cli
    return solve_particles_cli(args, Case.from_toml(args.case, allow_imports=args.allow_imports), _out_path(args.out))


def cmd_gan(args) -> int:
    from .case import Case
    from .gan.command import run_gan_cli
    return run_gan_cli(args, Case.from_toml(args.case, allow_imports=args.allow_imports), _out_path(args.out))


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return v


def cmd_compare(args) -> int:
    from .compare import compare_cli
    return compare_cli(args)


def cmd_validate(args) -> int:
    from .validate import validate_cli
    return validate_cli(args)


def cmd_sweep(args) -> int:
    from .sweep.command import sweep_cli
    return sweep_cli(args)


def cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(args)


# ------------------------------------------------------------------ parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fpsolver", description="Nonlinear Fokker-Planck equations of "
                                "GANs as gradient flows: grid and particle solvers, with verification.")
    from . import __version__
    p.add_argument("--version", action="version", version=f"fpsolver {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("solve", help="solve a case on the grid (finite volumes, or FiPy)")
    s.add_argument("case", help="case file (TOML)")
    s.add_argument("--out", required=True, help="result file (.npz)")
    _allow_imports_option(s)
    s.add_argument("--backend", choices=("fv", "fipy"), default="fv")
    s.add_argument("--scheme", choices=("backward-euler", "bdf2", "muscl", "upwind"),
                   help="backward-euler | bdf2 (local flows); muscl | upwind (kernel flows)")
    s.add_argument("--dt", type=_positive)
    s.add_argument("--rtol", type=_positive, help="adaptive steps to this local error tolerance "
                   "(time.rtol; --dt is then the first and largest step)")
    s.add_argument("--cells", type=_cells, help="N or N,M")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--checkpoint", help="write the run state here every --checkpoint-every seconds")
    s.add_argument("--checkpoint-every", type=_positive, default=60.0, metavar="SECONDS")
    s.add_argument("--resume", help="continue from this checkpoint")
    s.set_defaults(func=cmd_solve)

    s = sub.add_parser("plot", help="plot a result file")
    s.add_argument("result")
    s.add_argument("--out", required=True, help="figure (.png)")
    s.set_defaults(func=cmd_plot)

    s = sub.add_parser("particles", help="particle solver for the distribution-dependent ODE")
    s.add_argument("case")
    s.add_argument("--out", required=True)
    _allow_imports_option(s)
    s.add_argument("--n", type=int, default=None,
                   help='number of particles (default 100000, or the points\' number with initial.use = "as-is")')
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--bandwidth", type=_positive)
    s.add_argument("--integrator", choices=("euler", "heun"), default="heun")
    s.add_argument("--mode", choices=("interacting", "superposition"), default="interacting")
    s.add_argument("--pde", help="PDE result whose velocity field drives superposition particles")
    s.add_argument("--save-positions", type=int, metavar="M", help="store only M of the particles")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--checkpoint")
    s.add_argument("--checkpoint-every", type=_positive, default=60.0, metavar="SECONDS")
    s.add_argument("--resume")
    s.add_argument("--mmd-velocity", choices=("auto", "direct", "binned"), default="auto",
                   help="kernel (mmd) flows: exact direct sums, binning + FFT, or by cost")
    s.set_defaults(func=cmd_particles)

    s = sub.add_parser("gan", help="GAN in the loop (Algorithm 1): a discriminator and a generator trained in turn")
    s.add_argument("case", help="case file (TOML); its optional [gan] table sets the defaults below")
    s.add_argument("--out", required=True, help="result file (.npz): generator samples at the save times")
    _allow_imports_option(s)
    s.add_argument("--epsilon", type=_positive, help="outer step (default: the case's dt)")
    s.add_argument("--discriminator", choices=("exact", "kernel", "mlp"))
    s.add_argument("--generator", choices=("particles", "monotone", "mlp"))
    s.add_argument("--knots", type=_count, help="knots J of the monotone map (default 16)")
    s.add_argument("--fit-steps", type=_count, metavar="K", help="gradient steps per fit (default: exact fit)")
    s.add_argument("--generator-loss", choices=("mse", "minimax"))
    s.add_argument("--latent", choices=("normal", "quantiles"))
    s.add_argument("--n", type=_count, help="output samples (default 4000)")
    s.add_argument("--batch", type=_count, help="training minibatch (default: n)")
    s.add_argument("--seed", type=int)
    s.add_argument("--penalty", type=float, help="L2 penalty of the kernel discriminator (default 1e-3)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_gan)

    s = sub.add_parser("compare", help="particles vs PDE: L1, W1, KS per save time")
    s.add_argument("pde")
    s.add_argument("particles")
    s.add_argument("--plot", help="figure (.png)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--floor", type=int, default=0, metavar="K",
                   help="also report the Monte-Carlo W1 floor (95th percentile over K seeds)")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("validate", help="run the verification studies and write a report")
    s.add_argument("--out", required=True, help="report folder")
    s.add_argument("--quick", action="store_true")
    s.add_argument("--only", help="comma-separated study names")
    s.add_argument("--scheduler", help="run each study as a task: local | none | tcp://HOST:PORT "
                   "(default: one after the other here)")
    s.add_argument("--workers", type=int, help="worker processes of --scheduler local (default: cores)")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("sweep", help="run a parameter sweep of cases (serially or on Dask), or plot its orders")
    s.add_argument("path", help="sweep file (TOML), or with --plot the sweep's --out folder")
    s.add_argument("--out", help="folder for results/, index.csv and sweep.json")
    s.add_argument("--scheduler", default="local", help="local (default) | none | tcp://HOST:PORT")
    s.add_argument("--workers", type=int, help="worker processes of the local cluster (default: cores)")
    s.add_argument("--resume", action="store_true", help="skip the runs already finished in --out")
    s.add_argument("--dry-run", action="store_true", help="validate and list the runs; run nothing")
    s.add_argument("--plot", nargs="?", const="", metavar="FIG",
                   help="plot error vs resolution with fitted slopes (default FIG: DIR/convergence.png)")
    s.add_argument("--metric", choices=("l1", "w1"), default="l1", help="error column for --plot")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("demo", help="run the built-in 1D bimodal case end to end")
    s.add_argument("--out", default=".", help="folder for the files (default: here)")
    s.set_defaults(func=cmd_demo)
    return p


def _allow_imports_option(s) -> None:
    s.add_argument("--allow-imports", action="store_true",
                   help='let [flow] kind = "package.module:name" import that Python module (a case file '
                        "never runs code without this flag)")


def _on_sigterm(signum, frame):
    raise SystemExit(143)


def main(argv=None) -> int:
    import matplotlib
    matplotlib.use("Agg")   # the command line only writes figures to files; Python users keep their backend
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass
    try:
        return int(args.func(args) or 0)
    except FpsolverError as exc:
        print(f"fpsolver: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fpsolver: interrupted; no output written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `fpsolver compare ... | head`: the reader left; stay quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
