"""fpsolver sweep: plans validated up front, serial and Dask runs bit for bit the same, failures
recorded, --resume after a killed worker or an interrupted sweep, errors and orders against a
reference equal to the spatial-order study's."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from casefiles import base, to_toml

from fpsolver import __version__
from fpsolver.cli import main
from fpsolver.errors import CaseError, SolverError
from fpsolver.grid import Grid
from fpsolver.result import Result
from fpsolver.sweep import load_sweep, run_key, run_sweep
from fpsolver.sweep import runs as sweep_runs
from fpsolver.sweep.reference import w1_densities_1d
from fpsolver.sweep.runs import run_one

ROOT = Path(__file__).resolve().parents[1]

# 3 grids x 2 flows x 2 steps x 2 schemes = 24 runs of a 1D case with 4 or 8 steps
VARY_24 = {"domain.cells": [[40], [80], [160]], "flow.kind": ["js", "kl"], "time.dt": [0.05, 0.025],
           "time.scheme": ["backward-euler", "bdf2"]}


def _toml_value(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(v)  # JSON lists, strings and numbers are TOML values too


def write_sweep(folder: Path, vary: dict, name: str = "sweep.toml", **settings) -> Path:
    """A base case (casefiles.base(1)) and a sweep file over it in ``folder``."""
    (folder / "base.toml").write_text(to_toml(base(1)))
    lines = ["[sweep]", 'base = "base.toml"']
    lines += [f"{k} = {_toml_value(v)}" for k, v in settings.items()]
    lines.append("[sweep.vary]")
    lines += [f'"{k}" = {_toml_value(v)}' for k, v in vary.items()]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def index_rows(out: Path) -> list[dict]:
    with open(out / "index.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def array_digests(out: Path) -> dict:
    """key -> {array name: sha256} over every result of a sweep folder, and meta without its timings."""
    digests = {}
    for f in sorted((out / "results").glob("*.npz")):
        with np.load(f) as z:
            d = {k: hashlib.sha256(np.ascontiguousarray(z[k]).tobytes()).hexdigest() for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"]))
        for timing in ("wall_time", "step_wall_times", "linear_solve_time"):   # clocks, not results
            meta.pop(timing, None)
        d["meta"] = meta
        digests[f.stem] = d
    return digests


@pytest.fixture(scope="module")
def serial24(tmp_path_factory):
    """The 24-run sweep run serially (--scheduler none): the files every other run must equal."""
    folder = tmp_path_factory.mktemp("serial")
    path = write_sweep(folder, VARY_24)
    rc = main(["sweep", str(path), "--out", str(folder / "out"), "--scheduler", "none", "--quiet"])
    assert rc == 0
    return path, folder / "out", array_digests(folder / "out")


# ------------------------------------------------------------------ the plan

def test_plan_validates_every_combination_and_keys_resolved_cases(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, VARY_24))
    assert len(sweep.runs) == 24 and not sweep.invalid
    run = sweep.runs[3]  # the last index varies fastest (itertools.product order)
    assert run.values == {"domain.cells": [40], "flow.kind": "js", "time.dt": 0.025, "time.scheme": "bdf2"}
    assert run.case.grid.cells == (40,) and run.case.flow == "js" and run.case.dt == 0.025
    assert run.case.scheme == "bdf2" and run.case.raw["initial"] == base(1)["initial"]
    assert run.key == run_key(run.case.raw, "solve", None, {})
    assert len({r.key for r in sweep.runs}) == 24
    # the key is a hash of the resolved case: the same case written differently has the same key
    raw = json.loads(json.dumps(run.case.raw))
    raw["time"]["save_times"] = [0.1, 0.2]
    assert run_key(raw, "solve", None, {}) == run.key
    assert run_key(run.case.raw, "solve", 1, {}) != run.key


def test_zip_mode_and_indexed_keys(tmp_path):
    vary = {"time.dt": [0.05, 0.025], "target.components[1].mean": [[1.0], [2.0]]}
    sweep = load_sweep(write_sweep(tmp_path, vary, mode="zip"))
    assert [r.case.dt for r in sweep.runs] == [0.05, 0.025]
    assert [r.case.raw["target"]["components"][1]["mean"] for r in sweep.runs] == [[1.0], [2.0]]


def test_bad_combinations_are_reported_before_anything_runs(tmp_path, capsys):
    path = write_sweep(tmp_path, {"domain.cells": [[40], [2]], "time.dt": [0.05, -1.0]})
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 2
    listing = capsys.readouterr().out
    assert "1 valid, 3 invalid" in listing
    assert "domain.cells[0]: must be at least 3, got 2" in listing and "time.dt: must be > 0" in listing
    assert main(["sweep", str(path), "--out", str(out), "--scheduler", "none"]) == 2
    err = capsys.readouterr().err
    assert err.count("invalid run") == 3 and "3 of 4 combinations are invalid; nothing was run" in err
    assert not out.exists()


@pytest.mark.parametrize("settings, vary, message", [
    ({}, {"domain.nope.cells": [[40]]}, "the base case has no domain.nope"),
    ({}, {"target.components[5].mean": [[0.0]]}, "the base case has no target.components[5]"),
    ({"mode": "zip"}, {"time.dt": [0.05], "flow.kind": ["js", "kl"]}, "equal length"),
    ({"seeds": [0, 1]}, {"time.dt": [0.05]}, "the solve command is deterministic"),
    ({"command": "fit"}, {"time.dt": [0.05]}, "sweep.command: unknown value 'fit' (one of solve, particles, gan)"),
    ({}, {"time.dt": [0.05, 0.05]}, "are the same case"),
    ({"reference": "finest"}, {"flow.kind": ["js", "kl"]}, "needs domain.cells or time.dt"),
    ({"reference": "finest"}, {"domain.cells": [[40], [80]], "time.dt": [0.05, 0.025]}, None),
    ({"command": "particles", "options": {"n": -3}}, {"time.dt": [0.05]}, "sweep.options.n: must be an integer > 0"),
])
def test_sweep_settings_errors_name_the_key(tmp_path, settings, vary, message):
    path = write_sweep(tmp_path, vary, **settings)
    if message is None:  # a product of cells and dt has a finest run (most cells, smallest dt)
        assert len(load_sweep(path).runs) == 4
        return
    with pytest.raises(CaseError, match=None) as info:
        load_sweep(path)
    assert message in str(info.value)


def test_zip_of_cells_and_dt_without_a_finest_run_is_refused_up_front(tmp_path):
    path = write_sweep(tmp_path, {"domain.cells": [[40], [80]], "time.dt": [0.025, 0.05]},
                       mode="zip", reference="finest")
    with pytest.raises(CaseError, match="neither is finer in both cells and dt"):
        load_sweep(path)


# ------------------------------------------------------------------ serial = Dask, bit for bit

def test_serial_sweep_writes_results_and_index(serial24):
    _, out, digests = serial24
    rows = index_rows(out)
    assert len(rows) == 24 and len(digests) == 24 and all(r["status"] == "ok" for r in rows)
    for r in rows:
        res = Result.load(out / "results" / f"{r['key']}.npz", expect="density")
        assert json.loads(r["domain.cells"]) == list(res.grid.cells) and r["flow.kind"] == res.meta["flow"]
        # the grid solver conserves mass to round-off (backward Euler and BDF2 alike)
        assert float(r["mass_error"]) <= 1e-12
        assert float(r["energy_drop"]) > 0  # a gradient flow: the energy decreases
        assert int(r["newton_iterations"]) == sum(res.meta["newton_iterations"])
    plan = json.loads((out / "sweep.json").read_text())
    assert plan["version"] == __version__ and [r["key"] for r in plan["runs"]] == [r["key"] for r in rows]


def test_two_worker_cluster_gives_the_serial_files(serial24, tmp_path):
    path, serial_out, serial = serial24
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    assert array_digests(out) == serial
    drop = ("wall_time",)
    strip = [{k: v for k, v in r.items() if k not in drop} for r in index_rows(out)]
    assert strip == [{k: v for k, v in r.items() if k not in drop} for r in index_rows(serial_out)]


def test_a_scheduler_address_gives_the_serial_files(serial24, tmp_path):
    """--scheduler tcp://...: a cluster this sweep did not start (one worker, as a remote one
    would be sized by its owner); the runs pin Numba to one thread themselves."""
    from distributed import LocalCluster
    path, _, serial = serial24
    out = tmp_path / "out"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert main(["sweep", str(path), "--out", str(out), "--scheduler", cluster.scheduler_address,
                     "--quiet"]) == 0
    assert array_digests(out) == serial


def test_killed_worker_is_recorded_and_resume_completes_the_sweep(serial24, tmp_path):
    """A run kills its own worker process; with no retries allowed its task fails with
    KilledWorker, the sweep goes on, and --resume runs what is missing: the serial files."""
    import dask
    import distributed  # noqa: F401  (loads its config defaults, which dask.config.set must not shadow)
    path, _, serial = serial24
    out, flag = tmp_path / "out", tmp_path / "killed-once"
    sweep = load_sweep(path)
    victim = sweep.runs[7].key

    def killing_runner(task):
        if task["key"] == victim and not os.path.exists(flag):
            open(flag, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return run_one(task)

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        rows = run_sweep(sweep, str(out), scheduler="local", workers=2, progress=False, runner=killing_runner)
    failed = {r["key"] for r in rows if r["status"] == "failed"}
    assert victim in failed and flag.exists()
    assert all("KilledWorker" in r["error"] for r in rows if r["status"] == "failed")
    assert len(failed) < 24 and sum(r["status"] == "ok" for r in rows) == 24 - len(failed)
    assert {r["key"]: r["status"] for r in index_rows(out)} == {r["key"]: r["status"] for r in rows}
    assert main(["sweep", str(path), "--out", str(out), "--scheduler", "none", "--resume", "--quiet"]) == 0
    assert array_digests(out) == serial


def test_interrupted_sweep_resumes_only_the_missing_runs(serial24, tmp_path):
    path, _, serial = serial24
    out = tmp_path / "out"
    sweep = load_sweep(path)
    started = []

    def interrupted(task):
        started.append(task["key"])
        if len(started) == 10:
            raise KeyboardInterrupt
        return run_one(task)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, str(out), scheduler="none", progress=False, runner=interrupted)
    rows = index_rows(out)  # consistent after the interruption: 9 finished, the rest pending
    assert [r["status"] for r in rows] == ["ok"] * 9 + ["pending"] * 15
    before = {r["key"]: r for r in rows}
    again = []

    def counting(task):
        again.append(task["key"])
        return run_one(task)

    rows = run_sweep(sweep, str(out), scheduler="none", resume=True, progress=False, runner=counting)
    assert again == [r.key for r in sweep.runs[9:]]
    assert all(r["status"] == "ok" for r in rows)
    assert [r for r in index_rows(out)[:9]] == [before[r.key] for r in sweep.runs[:9]]
    assert array_digests(out) == serial


def test_a_failed_run_is_recorded_and_does_not_stop_the_sweep(tmp_path, monkeypatch, capsys):
    real = sweep_runs.COMMANDS["solve"]

    def failing(case, seed, options):
        if case.grid.cells == (80,):
            raise SolverError("Newton did not converge at t = 0.05 (test)")
        return real.run(case, seed, options)

    monkeypatch.setitem(sweep_runs.COMMANDS, "solve", sweep_runs.Command(failing, False, {}))
    path = write_sweep(tmp_path, {"domain.cells": [[40], [80], [160]]})
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--scheduler", "none", "--quiet"]) == 3
    assert "1 failed" in capsys.readouterr().out
    rows = index_rows(out)
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["error"] == "Newton did not converge at t = 0.05 (test)"
    assert not (out / "results" / f"{rows[1]['key']}.npz").exists()
    # without --resume the folder is not overwritten; with it only the failed run goes again
    assert main(["sweep", str(path), "--out", str(out), "--scheduler", "none", "--quiet"]) == 2
    monkeypatch.setitem(sweep_runs.COMMANDS, "solve", real)
    assert main(["sweep", str(path), "--out", str(out), "--scheduler", "none", "--resume", "--quiet"]) == 0
    again = index_rows(out)
    assert [r["status"] for r in again] == ["ok"] * 3
    assert again[0]["wall_time"] == rows[0]["wall_time"] and again[2]["wall_time"] == rows[2]["wall_time"]


# ------------------------------------------------------------------ reference errors and orders

def test_w1_between_densities_on_different_grids_is_exact():
    g7, g3 = Grid((0.0,), (1.0,), (7,)), Grid((0.0,), (1.0,), (3,))
    # the same uniform density on two grids: W1 = 0 up to round-off of the CDFs
    assert w1_densities_1d(g7, np.ones(7), g3, np.ones(3)) <= 1e-15
    # all mass in cell 0 vs all in cell 5 of 7: a rigid shift by 5 cells, W1 = 5/7
    a, b = np.zeros(7), np.zeros(7)
    a[0], b[5] = 1.0, 1.0
    assert w1_densities_1d(g7, a, g7, b) == pytest.approx(5 / 7, rel=1e-14)
    # uniform on [0, 1] vs uniform on the first third: int |x - x/3| ... = int_0^1 |F - G| = 1/3
    c = np.array([1.0, 0.0, 0.0])
    assert w1_densities_1d(g7, np.ones(7), g3, c) == pytest.approx(1 / 3, rel=1e-14)


def test_finest_reference_reproduces_the_spatial_order_study(tmp_path, capsys):
    """reference = "finest" on the spatial-order study's 1D case gives its fine-grid errors (the
    same solves, the same cubic-spline transfer) and --plot its observed order, 2 +- 0.15
    (ORDER_TOL_SPACE of the study)."""
    from fpsolver.studies import _common as C
    from fpsolver.studies.orders import ORDER_TOL_SPACE, reference_errors

    src = (ROOT / "examples" / "sweeps" / "sweep_orders.toml").read_text()
    src = src.replace('[[50], [100], [200], [400], [800], [6400]]', '[[50], [100], [200], [400], [3200]]')
    src = src.replace('["js", "reverse-kl", "kl", "chi2"]', '["js"]')
    sweep_file = tmp_path / "orders.toml"
    sweep_file.write_text(src.replace('base = "spatial_order_1d.toml"',
                                      f'base = "{ROOT / "examples" / "sweeps" / "spatial_order_1d.toml"}"'))
    out = tmp_path / "out"
    assert main(["sweep", str(sweep_file), "--out", str(out), "--scheduler", "none", "--quiet"]) == 0
    capsys.readouterr()
    rows = index_rows(out)
    l1 = np.array([float(r["l1"]) for r in rows])
    assert l1[-1] == 0.0
    expected = reference_errors("js", ((-4.0,), (4.0,)), [50, 100, 200, 400], 3200, C.bimodal_1d(),
                                C.gaussian([0.5], [0.8]))
    np.testing.assert_allclose(l1[:-1], expected, rtol=1e-12)
    assert main(["sweep", str(out), "--plot"]) == 0
    text = capsys.readouterr().out
    slope = float(text.splitlines()[1].split()[2])
    assert slope == pytest.approx(C.fit_slope([8 / n for n in (50, 100, 200, 400)], expected), abs=1e-3)
    assert abs(slope - 2.0) <= ORDER_TOL_SPACE
    assert (out / "convergence.png").stat().st_size > 0 and (out / "convergence.pdf").exists()
    # W1 <= (box length / 2) x L1 for probability densities, so it converges at order 2 as well
    assert main(["sweep", str(out), "--plot", str(tmp_path / "w1.png"), "--metric", "w1"]) == 0
    w1_slope = float(capsys.readouterr().out.splitlines()[1].split()[2])
    assert abs(w1_slope - 2.0) <= ORDER_TOL_SPACE


def test_particle_sweep_seeds_and_a_result_reference(tmp_path):
    ref_case = tmp_path / "ref"
    ref_case.mkdir()
    (ref_case / "case.toml").write_text(to_toml(base(1)))
    ref = tmp_path / "pde.npz"
    assert main(["solve", str(ref_case / "case.toml"), "--out", str(ref), "--quiet"]) == 0
    path = write_sweep(tmp_path, {"flow.kind": ["js"]}, command="particles", seeds=[0, 1],
                       reference="pde.npz", options={"n": 400})
    out = tmp_path / "out"
    rows = run_sweep(load_sweep(path), str(out), scheduler="none", progress=False)
    assert [r["seed"] for r in rows] == [0, 1] and all(r["status"] == "ok" for r in rows)
    from fpsolver.compare import compare
    pde = Result.load(ref)
    for r in rows:
        res = Result.load(out / "results" / f"{r['key']}.npz", expect="particles")
        assert res.meta["seed"] == r["seed"] and res.meta["n"] == 400
        last = compare(pde, res)[-1]
        assert r["l1"] == pytest.approx(last["l1"], rel=1e-12) and r["w1"] == pytest.approx(last["w1"], rel=1e-12)
    a, b = (np.load(out / "results" / f"{r['key']}.npz")["positions"] for r in rows)
    assert not np.array_equal(a, b)  # different seeds, different particles
    # a run ending where the reference has no save time is refused before anything runs
    path = write_sweep(tmp_path, {"time.save_times": [[0.2], [0.15]]}, reference="pde.npz")
    with pytest.raises(CaseError, match=r"pde.npz has no save time t = 0.15, the final time of run 1"):
        load_sweep(path)


# ------------------------------------------------------------------ command line

def test_cli_errors_are_one_line(tmp_path, capsys):
    path = write_sweep(tmp_path, {"time.dt": [0.05]})
    cases = [
        (["sweep", str(path), "--out", str(tmp_path / "o"), "--scheduler", "udp:/x"], "--scheduler: expected"),
        (["sweep", str(path), "--out", str(tmp_path / "o"), "--scheduler", "none", "--workers", "2"],
         "--workers applies to --scheduler local"),
        (["sweep", str(path)], "--out DIR is required"),
        (["sweep", str(tmp_path), "--plot"], "not a sweep folder (no sweep.json)"),
        (["sweep", str(tmp_path / "base.toml"), "--out", str(tmp_path / "o")], "a sweep file holds one [sweep] table"),
        (["validate", "--out", str(tmp_path / "v"), "--workers", "2"], "--workers applies to --scheduler local"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    out = tmp_path / "o2"
    assert main(["sweep", str(path), "--out", str(out), "--scheduler", "none", "--quiet"]) == 0
    assert main(["sweep", str(out), "--plot"]) == 2
    assert "names no reference" in capsys.readouterr().err


def test_validate_runs_its_studies_through_the_engine(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["validate", "--quick", "--only", "spatial_order", "--out", str(out),
                 "--scheduler", "local", "--workers", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [s["name"] for s in summary] == ["spatial_order"] and summary[0]["passed"]
    assert (out / "spatial_order.png").exists() and (out / "report.md").exists()
    assert abs(summary[0]["measured"] - 2.0) <= 0.15


def test_dry_run_marks_finished_runs_when_resuming(serial24, capsys):
    path, out, _ = serial24
    assert main(["sweep", str(path), "--out", str(out), "--dry-run", "--resume"]) == 0
    text = capsys.readouterr().out
    assert text.count(" done ") == 24 and "24 valid, 0 invalid; 0 to run" in text


def test_a_worker_of_another_version_refuses_the_run(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, {"time.dt": [0.05]}))
    run = sweep.runs[0]
    task = {"key": run.key, "command": "solve", "case": run.case.raw, "source": run.case.source, "seed": None,
            "options": {}, "out": str(tmp_path / "r.npz"), "version": "0.0.0-other"}
    row = run_one(task)
    assert row["status"] == "failed" and f"runs fpsolver {__version__}, the sweep 0.0.0-other" in row["error"]
    assert not (tmp_path / "r.npz").exists()
    task["version"] = __version__
    assert run_one(task)["status"] == "ok" and Result.load(tmp_path / "r.npz").meta["case"] == run.case.raw


def test_time_step_sweep_plots_the_order_of_backward_euler(tmp_path, capsys):
    """Against the finest step (dt / 16, same grid, so the spatial error cancels) backward Euler
    converges at order 1 in dt; the tolerance 0.1 is the temporal-order study's ORDER_TOL_TIME."""
    from fpsolver.studies.orders import ORDER_TOL_TIME
    dts = [0.02, 0.01, 0.005, 0.0025, 0.0025 / 16]
    path = write_sweep(tmp_path, {"time.dt": dts}, reference="finest")
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--scheduler", "none", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sweep", str(out), "--plot"]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line[:2] == ["time.dt", "4"] and abs(float(line[2]) - 1.0) <= ORDER_TOL_TIME


def test_without_dask_the_local_scheduler_says_how_to_get_it(monkeypatch):
    import sys
    from fpsolver.errors import InputError
    from fpsolver.sweep.engine import map_tasks
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask.distributed were not installed
    with pytest.raises(InputError, match=r"needs dask.distributed \(pip install 'fpsolver\[dask\]'\)"):
        list(map_tasks(len, ["a"], "local"))
    assert list(map_tasks(len, ["ab", "c"], "none")) == [(0, 2), (1, 1)]


def test_ctrl_c_leaves_a_consistent_index_and_says_how_to_go_on(tmp_path, monkeypatch, capsys):
    real = sweep_runs.COMMANDS["solve"]

    def interrupted(case, seed, options):
        if case.grid.cells == (80,):
            raise KeyboardInterrupt
        return real.run(case, seed, options)

    monkeypatch.setitem(sweep_runs.COMMANDS, "solve", sweep_runs.Command(interrupted, False, {}))
    path = write_sweep(tmp_path, {"domain.cells": [[40], [80], [160]]})
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--scheduler", "none", "--quiet"]) == 130
    assert "--resume continues the sweep" in capsys.readouterr().err
    assert [r["status"] for r in index_rows(out)] == ["ok", "pending", "pending"]


def test_a_gan_sweep_checks_its_options_up_front_and_runs(tmp_path):
    from fpsolver.sweep import load_sweep, run_sweep
    base = ROOT / "examples" / "gan_js_1d.toml"
    sweep_file = tmp_path / "gan.toml"
    sweep_file.write_text(f'[sweep]\nbase = "{base}"\ncommand = "gan"\nseeds = [0]\n'
                          '[sweep.options]\nn = 500\n'
                          '[sweep.vary]\n"time.save_times" = [[0.5]]\n"gan.epsilon" = [0.1, 0.05, 0.3]\n')
    sweep = load_sweep(str(sweep_file))
    # 0.5 is not a multiple of 0.3: reported before anything runs, with the [gan] key named
    assert len(sweep.invalid) == 1 and "gan.epsilon" in sweep.invalid[0][3]
    sweep_file.write_text(sweep_file.read_text().replace(", 0.3]", "]"))
    rows = run_sweep(load_sweep(str(sweep_file)), str(tmp_path / "out"), scheduler="none", progress=False)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    res = Result.load(os.path.join(tmp_path, "out", "results", rows[1]["key"] + ".npz"))
    assert res.positions.shape == (2, 500, 1) and res.meta["backend"] == "gan"


def test_a_local_cluster_leaves_this_process_environment_as_it_was(tmp_path, monkeypatch):
    # the nannies write the pinned thread counts into the parent's os.environ before spawning;
    # left there, numba in this process would refuse its changed NUMBA_NUM_THREADS later
    from fpsolver.sweep.engine import PINNED_ENV, map_tasks
    for key in PINNED_ENV:
        monkeypatch.delenv(key, raising=False)
    before = dict(os.environ)
    assert sorted(map_tasks(abs, [-1, -2], "local", 1, name="env")) == [(0, 1), (1, 2)]
    assert {k: os.environ.get(k) for k in PINNED_ENV} == {k: before.get(k) for k in PINNED_ENV}


def test_the_key_changes_when_a_referenced_file_changes(tmp_path):
    from fpsolver.sweep.spec import run_key
    path = tmp_path / "pts.npy"
    np.save(path, np.zeros((10, 1)))
    raw = {"target": {"kind": "samples", "path": str(path)}, "initial": {"kind": "uniform"}}
    before = run_key(raw, "solve", None, {})
    assert run_key(raw, "solve", None, {}) == before
    np.save(path, np.ones((10, 1)))           # same path, new points: a new run, not a --resume hit
    assert run_key(raw, "solve", None, {}) != before
