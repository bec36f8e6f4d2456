"""Bad input never gives a traceback; output is atomic; runs checkpoint and resume exactly."""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.errors import CaseError
from casefiles import base, to_toml

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ malformed case files

def _set(d, path, value):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


def _del(d, path):
    for k in path[:-1]:
        d = d[k]
    del d[path[-1]]


def _mutations():
    """(id, dim, mutate(case, folder), expected text in the error line) for >= 200 bad cases."""
    out = []

    def add(name, dim, fn, key):
        out.append(pytest.param(dim, fn, key, id=f"{dim}d-{name}"))

    for dim in (1, 2):
        d = dim
        for sec in ("domain", "target", "initial", "flow", "time"):
            add(f"no-{sec}", d, lambda c, f, d=d, s=sec: _del(c, [s]), sec)
            add(f"{sec}-not-table", d, lambda c, f, d=d, s=sec: _set(c, [s], "junk"), sec)
            add(f"{sec}-unknown-key", d, lambda c, f, d=d, s=sec: _set(c, [s, "colour"], 1), f"{sec}.colour")
        add("top-unknown", d, lambda c, f, d=d: _set(c, ["extra"], 1), "extra")
        for key in ("lower", "upper", "cells"):
            p = ["domain", key]
            add(f"{key}-missing", d, lambda c, f, d=d, p=p: _del(c, p), f"domain.{key}")
            add(f"{key}-string", d, lambda c, f, d=d, p=p: _set(c, p, "abc"), f"domain.{key}")
            add(f"{key}-bools", d, lambda c, f, d=d, p=p: _set(c, p, [True] * d), f"domain.{key}")
            add(f"{key}-too-long", d, lambda c, f, d=d, p=p: _set(c, p, [5] * 3), f"domain.{key}")
            add(f"{key}-empty", d, lambda c, f, d=d, p=p: _set(c, p, []), f"domain.{key}")
            add(f"{key}-strings", d, lambda c, f, d=d, p=p: _set(c, p, ["a"] * d), f"domain.{key}")
        for key in ("lower", "upper"):
            p = ["domain", key]
            add(f"{key}-nan", d, lambda c, f, d=d, p=p: _set(c, p, [float("nan")] * d), f"domain.{key}")
            add(f"{key}-inf", d, lambda c, f, d=d, p=p: _set(c, p, [float("inf")] * d), f"domain.{key}")
        if d == 2:
            add("lower-short", d, lambda c, f, d=d: _set(c, ["domain", "upper"], [1.0]), "domain.upper")
        add("lower-eq-upper", d, lambda c, f, d=d: _set(c, ["domain", "upper"], list(c["domain"]["lower"])), "domain.upper")
        add("lower-gt-upper", d, lambda c, f, d=d: _set(c, ["domain", "lower"], [9.0] * d), "domain.upper")
        for bad in (0, -5, 2, 10.5):
            add(f"cells-{bad}", d, lambda c, f, d=d, b=bad: _set(c, ["domain", "cells"], [b] * d), "domain.cells")
        add("cells-huge", d, lambda c, f, d=d: _set(c, ["domain", "cells"], [10**9] + [10**5] * (d - 1)), "GiB")
        for dens in ("target", "initial"):
            add(f"{dens}-kind-missing", d, lambda c, f, d=d, s=dens: _del(c, [s, "kind"]), f"{dens}.kind")
            add(f"{dens}-kind-unknown", d, lambda c, f, d=d, s=dens: _set(c, [s, "kind"], "cauchy"), f"{dens}.kind")
            add(f"{dens}-kind-number", d, lambda c, f, d=d, s=dens: _set(c, [s, "kind"], 3), f"{dens}.kind")
            g = {"kind": "gaussian", "mean": [0.0] * d, "std": [1.0] * d}
            for name, patch, key in [
                ("mean-long", {"mean": [0.0] * (d + 1)}, "mean"),
                ("mean-nan", {"mean": [float("nan")] * d}, "mean"),
                ("mean-str", {"mean": "zero"}, "mean"),
                ("std-neg", {"std": [-1.0] * d}, "std"),
                ("std-zero", {"std": [0.0] * d}, "std"),
                ("std-nan", {"std": [float("nan")] * d}, "std"),
                ("std-inf", {"std": [float("inf")] * d}, "std"),
                ("std-tiny", {"std": [1e-200] * d}, "std"),
                ("std-short", {"std": [1.0] * (d + 1)}, "std"),
                ("std-and-cov", {"cov": np.eye(d).tolist()}, "std"),
                ("cov-nonsym", {"cov": [[1.0, 0.5], [0.1, 1.0]] if d == 2 else [[1.0, 2.0]]}, "cov"),
                ("cov-not-spd", {"cov": [[1.0, 2.0], [2.0, 1.0]] if d == 2 else [[-1.0]]}, "cov"),
                ("cov-shape", {"cov": [[1.0]] * (d + 1)}, "cov"),
                ("cov-nan", {"cov": [[float("nan")] * d] * d}, "cov"),
            ]:
                def fn(c, f, d=d, s=dens, g=g, patch=patch, name=name):
                    spec = dict(g, **patch)
                    if name.startswith("cov"):
                        del spec["std"]
                    c[s] = spec
                add(f"{dens}-gauss-{name}", d, fn, f"{dens}.{key}")
            add(f"{dens}-gauss-no-std", d, lambda c, f, d=d, s=dens: _set(c, [s], {"kind": "gaussian", "mean": [0.0] * d}), f"{dens}.std")
            add(f"{dens}-gauss-far", d, lambda c, f, d=d, s=dens: _set(c, [s], {"kind": "gaussian", "mean": [1e300] * d, "std": [1.0] * d}), dens)
            comp = {"weight": 1.0, "mean": [0.0] * d, "std": [1.0] * d}
            for name, value, key in [
                ("empty", [], "components"), ("not-list", "x", "components"),
                ("w0", [dict(comp, weight=0.0)], "weight"), ("wneg", [dict(comp, weight=-1.0)], "weight"),
                ("wnan", [dict(comp, weight=float("nan"))], "weight"), ("wstr", [dict(comp, weight="1")], "weight"),
                ("nomean", [{"weight": 1.0, "std": [1.0] * d}], "mean"),
                ("unknown", [dict(comp, skew=1.0)], "skew"), ("notable", [1.0], "components[0]"),
            ]:
                add(f"{dens}-mix-{name}", d, lambda c, f, d=d, s=dens, v=value: _set(c, [s], {"kind": "gaussian_mixture", "components": v}), key)
            add(f"{dens}-uniform-extra", d, lambda c, f, d=d, s=dens: _set(c, [s], {"kind": "uniform", "lower": [0.0] * d}), f"{dens}.lower")
            shape = (40,) if d == 1 else (12, 12)
            for name, arr, key in [
                ("wrong-shape", np.ones(7), "path"), ("zero", np.zeros(shape), "path"),
                ("negative", -np.ones(shape), "path"), ("nan", np.full(shape, np.nan), "path"),
                ("objects", np.array([{"a": 1}], dtype=object), "path"), ("strings", np.array(["a", "b"]), "path"),
            ]:
                def fn(c, f, d=d, s=dens, arr=arr, name=name):
                    np.save(f / f"{s}-{name}.npy", arr, allow_pickle=True)
                    c[s] = {"kind": "grid", "path": f"{s}-{name}.npy"}
                add(f"{dens}-grid-{name}", d, fn, f"{dens}.{key}")
            add(f"{dens}-grid-missing-file", d, lambda c, f, d=d, s=dens: _set(c, [s], {"kind": "grid", "path": "nope.npy"}), f"{dens}.path")

            def corrupt(c, f, d=d, s=dens):
                (f / "bad.npy").write_bytes(b"\x93NUMPY garbage")
                c[s] = {"kind": "grid", "path": "bad.npy"}
            add(f"{dens}-grid-corrupt", d, corrupt, f"{dens}.path")
            add(f"{dens}-grid-path-number", d, lambda c, f, d=d, s=dens: _set(c, [s], {"kind": "grid", "path": 3}), f"{dens}.path")
            for name, arr in [("samples-1pt", np.zeros((1, d))), ("samples-dim", np.zeros((50, d + 1))),
                              ("samples-nan", np.full((50, d), np.nan)), ("samples-outside", np.full((50, d), 100.0))]:
                def fn(c, f, d=d, s=dens, arr=arr, name=name):
                    np.save(f / f"{s}-{name}.npy", arr)
                    c[s] = {"kind": "samples", "path": f"{s}-{name}.npy"}
                add(f"{dens}-{name}", d, fn, f"{dens}.path")

            def bw(c, f, d=d, s=dens):
                np.save(f / "pts.npy", np.random.default_rng(0).normal(size=(200, d)))
                c[s] = {"kind": "samples", "path": "pts.npy", "bandwidth": -1.0}
            add(f"{dens}-samples-bandwidth", d, bw, f"{dens}.bandwidth")
        add("flow-unknown", d, lambda c, f, d=d: _set(c, ["flow", "kind"], "wasserstein"), "flow.kind")
        add("flow-missing", d, lambda c, f, d=d: _del(c, ["flow", "kind"]), "flow.kind")
        add("flow-number", d, lambda c, f, d=d: _set(c, ["flow", "kind"], 1), "flow.kind")
        for name, val in [("zero", 0.0), ("neg", -0.1), ("nan", float("nan")), ("inf", float("inf")),
                          ("str", "0.1"), ("bool", True), ("list", [0.1])]:
            add(f"dt-{name}", d, lambda c, f, d=d, v=val: _set(c, ["time", "dt"], v), "time.dt")
        add("dt-missing", d, lambda c, f, d=d: _del(c, ["time", "dt"]), "time.dt")
        add("dt-too-many-steps", d, lambda c, f, d=d: _set(c, ["time", "dt"], 1e-9), "time.dt")
        for name, val, key in [("empty", [], "save_times"), ("not-list", 1.0, "save_times"),
                               ("decreasing", [0.2, 0.1], "save_times[1]"), ("dup", [0.1, 0.1], "save_times[1]"),
                               ("negative", [-0.1, 0.1], "save_times[0]"), ("zero", [0.0, 0.1], "save_times[0]"),
                               ("not-multiple", [0.1, 0.125], "save_times[1]"), ("nan", [float("nan")], "save_times[0]"),
                               ("str", ["1"], "save_times[0]"), ("below-dt", [0.01], "save_times[0]")]:
            add(f"save-{name}", d, lambda c, f, d=d, v=val: _set(c, ["time", "save_times"], v), f"time.{key}")
        add("save-missing", d, lambda c, f, d=d: _del(c, ["time", "save_times"]), "time.save_times")
        add("scheme-unknown", d, lambda c, f, d=d: _set(c, ["time", "scheme"], "rk4"), "time.scheme")
        add("scheme-number", d, lambda c, f, d=d: _set(c, ["time", "scheme"], 2), "time.scheme")
    return out


MUTATIONS = _mutations()


def test_enough_malformed_cases():
    assert len(MUTATIONS) >= 200


def _run_cli(argv, capsys):
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.err.strip().splitlines()


@pytest.mark.parametrize("dim,mutate,key", MUTATIONS)
def test_malformed_case_is_one_line_exit_2(tmp_path, capsys, dim, mutate, key):
    case = base(dim)
    mutate(case, tmp_path)
    path = tmp_path / "case.toml"
    path.write_text(to_toml(case))
    out = tmp_path / "out.npz"
    rc, err = _run_cli(["solve", str(path), "--out", str(out), "--quiet"], capsys)
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("fpsolver: error: "), err
    assert key in err[0], err[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".fpsolver-")] == []


def test_not_toml_and_missing_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[domain\nlower = ")
    for target in (bad, tmp_path / "missing.toml", tmp_path):
        rc, err = _run_cli(["solve", str(target), "--out", str(tmp_path / "o.npz")], capsys)
        assert rc == 2 and len(err) == 1 and err[0].startswith("fpsolver: error: ")
    assert not (tmp_path / "o.npz").exists()


_junk = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                  st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                  st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=3),
                  st.lists(st.integers(-5, 10**6), max_size=3),
                  st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


def _paths(d, prefix=()):
    for k, v in d.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dim=st.sampled_from([1, 2]), index=st.integers(0, 10**6), value=_junk, delete=st.booleans())
def test_random_junk_gives_case_error_or_valid_case(dim, index, value, delete):
    case = base(dim)
    paths = list(_paths(case))
    path = paths[index % len(paths)]
    if delete:
        _del(case, list(path))
    else:
        _set(case, list(path), copy.deepcopy(value))
    try:
        Case.from_dict(case)
    except CaseError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg
        assert exc.key == "" or exc.key.split(".")[0].split("[")[0] in case or exc.key.split(".")[0] in base(dim)


# ------------------------------------------------------------------ untrusted result files

def _good_result(tmp_path) -> Path:
    path = tmp_path / "good.npz"
    case = tmp_path / "c.toml"
    case.write_text(to_toml(base(1)))
    assert main(["solve", str(case), "--out", str(path), "--quiet"]) == 0
    return path


def _bad_npz(tmp_path, good):
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    variants = {
        "random-bytes": None,
        "no-meta": {k: v for k, v in arrays.items() if k != "meta"},
        "meta-not-json": dict(arrays, meta=np.array("__import__('os').system('echo hacked')")),
        "meta-list": dict(arrays, meta=np.array("[1, 2]")),
        "rho-shape": dict(arrays, rho=arrays["rho"][:, :-1]),
        "rho-nan": dict(arrays, rho=np.full_like(arrays["rho"], np.nan)),
        "rho-neg": dict(arrays, rho=-arrays["rho"]),
        "t-bad": dict(arrays, t=arrays["t"][::-1]),
        "pickled": dict(arrays, rho=np.array([object()], dtype=object)),
        "neither": {"t": arrays["t"], "meta": arrays["meta"]},
    }
    paths = []
    for name, arrs in variants.items():
        p = tmp_path / f"{name}.npz"
        if arrs is None:
            p.write_bytes(os.urandom(300))
        else:
            np.savez(p, **arrs)
        paths.append(p)
    return paths


def test_corrupt_results_are_refused_by_plot(tmp_path, capsys):
    good = _good_result(tmp_path)
    capsys.readouterr()
    for bad in _bad_npz(tmp_path, good) + [tmp_path / "missing.npz"]:
        out = tmp_path / "fig.png"
        rc, err = _run_cli(["plot", str(bad), "--out", str(out)], capsys)
        assert rc == 2, bad
        assert len(err) == 1 and err[0].startswith("fpsolver: error: ") and bad.name in err[0], err
        assert not out.exists()
    assert not (tmp_path / "hacked").exists()


def test_corrupt_checkpoint_is_refused(tmp_path, capsys):
    good = _good_result(tmp_path)
    case = tmp_path / "c.toml"
    capsys.readouterr()
    for bad in _bad_npz(tmp_path, good)[:3] + [good]:
        rc, err = _run_cli(["solve", str(case), "--out", str(tmp_path / "o.npz"), "--resume", str(bad)], capsys)
        assert rc == 2 and len(err) == 1 and "checkpoint" in err[0], err


# ------------------------------------------------------------------ interruption, atomicity, resume

def _spawn(args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    return subprocess.Popen([sys.executable, "-m", "fpsolver.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc, pattern: str, timeout=120):
    start = time.time()
    for line in proc.stderr:
        if pattern in line:
            return True
        if time.time() - start > timeout:
            break
    return False


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_keeps_previous_file(tmp_path, sig, code):
    out = tmp_path / "r.npz"
    out.write_bytes(b"previous complete file")
    # dt / 20: a run of some minutes, so the signal always lands mid-run (even on a fast machine)
    proc = _spawn(["solve", str(ROOT / "examples" / "two_mode_2d.toml"), "--out", str(out), "--dt", "0.001"],
                  tmp_path)
    assert _wait_for(proc, "10%"), "the run never reported progress"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode == code
    assert out.read_bytes() == b"previous complete file"
    assert [p.name for p in tmp_path.iterdir()] == ["r.npz"]


def _same_run(a, b):
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.rho, b.rho)
    for key in ("mass", "energy", "newton_iterations", "steps", "rejected_steps"):
        assert a.meta[key] == b.meta[key], key


@pytest.mark.parametrize("scheme", ["backward-euler", "bdf2"])
def test_resume_is_bitwise_identical(tmp_path, scheme):
    from fpsolver.fv import solve_case

    case = Case.from_toml(ROOT / "examples" / "bimodal_1d.toml").with_overrides(scheme=scheme, save_times=[0.5, 1.0, 2.0])
    full = solve_case(case)
    ckpt = tmp_path / "state.npz"

    class Stop(Exception):
        pass

    def stop_at(n, info=""):
        if n == 137:
            raise Stop

    with pytest.raises(Stop):
        solve_case(case, progress=stop_at, checkpoint_path=str(ckpt), checkpoint_every=1e-9)
    head = json.loads(str(np.load(ckpt, allow_pickle=False)["meta"]))
    assert head["n"] == 136
    _same_run(solve_case(case, resume=str(ckpt)), full)


def test_killed_then_resumed_cli_run_is_bitwise_identical(tmp_path):
    case = ROOT / "examples" / "two_mode_2d.toml"
    common = ["--cells", "128,128", "--quiet"]   # long enough (300 steps) to be killed mid-run
    assert main(["solve", str(case), "--out", str(tmp_path / "full.npz"), *common]) == 0
    ckpt = tmp_path / "state.npz"
    proc = _spawn(["solve", str(case), "--out", str(tmp_path / "cut.npz"), "--checkpoint", str(ckpt),
                   "--checkpoint-every", "0.1", *common], tmp_path)
    start = time.time()
    while not ckpt.exists() and proc.poll() is None and time.time() - start < 120:
        time.sleep(0.01)
    proc.kill()                                      # at once: the checkpoint is complete (renamed into place)
    proc.wait(timeout=60)
    assert ckpt.exists() and not (tmp_path / "cut.npz").exists()
    n_done = json.loads(str(np.load(ckpt, allow_pickle=False)["meta"]))["n"]
    total = Case.from_toml(case).save_steps[-1]     # 6.0 / 0.02 = 300 steps
    assert 0 < n_done < total                        # killed mid-run, with work on both sides
    assert main(["solve", str(case), "--out", str(tmp_path / "resumed.npz"), "--resume", str(ckpt), *common]) == 0
    from fpsolver.result import Result
    _same_run(Result.load(tmp_path / "resumed.npz"), Result.load(tmp_path / "full.npz"))
