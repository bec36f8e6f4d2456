"""One run of a sweep: a pure function of its task (resolved case, command, seed, options).

:func:`run_one` is what the engine sends to a worker (or calls in a loop for ``--scheduler
none``): it rebuilds the case, runs the command with Numba held to one thread (the same in
every process, so a run's arrays do not depend on where it ran), saves the Result atomically
and returns the row of summary numbers for ``index.csv``. A failure becomes a row with its
one-line error; it never escapes to stop the sweep.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import CaseError, FpsolverError
from ..result import Result

SUMMARY_COLUMNS = ("mass_error", "energy_drop", "newton_iterations")


@dataclass(frozen=True)
class Command:
    """A command a sweep can run: ``run(case, seed, options) -> Result``; ``random``: takes seeds."""

    run: Callable
    random: bool
    options: dict  # option name -> (type check, description)
    check: Optional[Callable] = None  # check(case, options): CaseError if the run cannot start


def _solve(case, seed, options) -> Result:
    from ..fv import solve_case
    return solve_case(case)


def _particles(case, seed, options) -> Result:
    from ..particles import solve_particles
    return solve_particles(case, seed=0 if seed is None else seed, **options)


def _positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _positive_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf")


def _gan_options(case, options):
    """The GAN loop's options for this case ([gan] table, then [sweep.options]), checked."""
    from ..gan.options import from_table, merged
    return merged(from_table(case.raw.get("gan")), **options).resolved(case)


def _gan(case, seed, options) -> Result:
    from ..gan import run_gan
    return run_gan(case, _gan_options(case, dict(options) if seed is None else dict(options, seed=seed)))


_GAN_CHOICES = {"discriminator": ("exact", "kernel", "mlp"), "generator": ("particles", "monotone", "mlp"),
                "generator_loss": ("mse", "minimax"), "latent": ("normal", "quantiles")}

# a new command is one entry here
COMMANDS: dict[str, Command] = {
    "solve": Command(_solve, False, {}),
    "particles": Command(_particles, True, {
        "n": (_positive_int, "an integer > 0"),
        "integrator": (lambda v: v in ("euler", "heun"), "\"euler\" or \"heun\""),
        "bandwidth": (_positive_number, "a number > 0"),
        "save_positions": (_positive_int, "an integer > 0"),
        "mmd_velocity": (lambda v: v in ("auto", "direct", "binned"), "\"auto\", \"direct\" or \"binned\""),
    }),
    "gan": Command(_gan, True, {
        "epsilon": (_positive_number, "a number > 0"),
        "knots": (_positive_int, "an integer > 0"),
        "fit_steps": (_positive_int, "an integer > 0"),
        "n": (_positive_int, "an integer > 0"),
        "batch": (_positive_int, "an integer > 0"),
        **{k: ((lambda v, c=c: v in c), " or ".join(f'"{x}"' for x in c)) for k, c in _GAN_CHOICES.items()},
    }, check=lambda case, options: _gan_options(case, dict(options))),
}


def check_options(command: str, options: dict) -> None:
    """Raise CaseError unless every [sweep.options] entry is an option of the command, well typed."""
    allowed = COMMANDS[command].options
    for name, value in options.items():
        if name not in allowed:
            raise CaseError(f"sweep.options.{name}", f"not an option of the {command} command "
                            f"(allowed: {', '.join(allowed) or 'none'})")
        ok, what = allowed[name]
        if not ok(value):
            raise CaseError(f"sweep.options.{name}", f"must be {what}, got {value!r}")


@contextlib.contextmanager
def one_thread():
    """Numba's parallel loops on one thread for the duration (the thread count changes the
    order of floating-point sums; BLAS threads are pinned by the workers' environment)."""
    import numba
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def run_one(task: dict) -> dict:
    """Run one task {key, command, case (resolved raw dict), source, seed, options, out, version}; save the
    Result to ``out``; return {key, status, error, wall_time, mass_error, energy_drop, newton_iterations}."""
    from .. import __version__
    from ..case import Case
    started = time.perf_counter()
    row = {"key": task["key"], "status": "ok", "error": ""}
    try:
        if task.get("version", __version__) != __version__:  # the key promises this version's numbers
            raise FpsolverError(f"this worker runs fpsolver {__version__}, the sweep {task['version']}")
        with one_thread():
            case = Case.from_dict(task["case"], base_dir=None, source=task["source"])
            res = COMMANDS[task["command"]].run(case, task["seed"], dict(task["options"]))
        res.save(task["out"])
        row.update(summarise(res))
    except FpsolverError as exc:
        row.update(status="failed", error=str(exc))
    except Exception as exc:  # a numerical failure of one run must not stop the others
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    row["wall_time"] = time.perf_counter() - started
    return row


def summarise(res: Result) -> dict:
    """Final relative mass error |m(T) - m(0)| / m(0), energy drop F(0) - F(T), Newton iterations
    in all (blank where the command does not report them)."""
    m = res.meta
    out = dict.fromkeys(SUMMARY_COLUMNS, "")
    mass, energy, its = m.get("mass") or [], m.get("energy") or [], m.get("newton_iterations")
    if mass:
        out["mass_error"] = abs(mass[-1] - mass[0]) / mass[0]
    if energy:
        out["energy_drop"] = energy[0] - energy[-1]
    if its:
        out["newton_iterations"] = int(sum(its))
    return out
