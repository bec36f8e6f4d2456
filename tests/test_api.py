"""The Python API: Case from a path, a dict or keywords; solve / particles / compare / plot
return Results, tables and Figures; plots never switch the backend; notebooks show figures
inline; the notebook-style examples run; the docstring examples pass."""
import doctest
import json
import os
import runpy
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

import fpsolver
from fpsolver import CaseError, InputError
from fpsolver.densities import FunctionDensity

ROOT = os.path.join(os.path.dirname(__file__), "..")
EXAMPLES = os.path.join(ROOT, "examples")

TABLES = dict(domain={"lower": [-4.0], "upper": [4.0], "cells": [120]},
              target={"kind": "gaussian", "mean": [0.0], "std": [1.0]},
              initial={"kind": "gaussian", "mean": [1.0], "std": [0.6]},
              flow="js", time={"dt": 0.05, "save_times": [0.5]})


def test_three_lines_from_a_case_file_to_a_figure(tmp_path):
    r = fpsolver.solve(os.path.join(EXAMPLES, "bimodal_1d.toml"))
    fig = fpsolver.plot(r)
    fig.savefig(tmp_path / "r.png")
    assert isinstance(fig, Figure) and (tmp_path / "r.png").stat().st_size > 10_000
    assert r.t[0] == 0.0 and r.rho.shape[0] == len(r.t)


def test_case_from_path_dict_and_keywords_agree():
    path = os.path.join(EXAMPLES, "bimodal_1d.toml")
    a = fpsolver.Case(path)
    b = fpsolver.Case(a.raw)
    c = fpsolver.Case(**{k: a.raw[k] for k in ("domain", "target", "initial", "flow", "time")})
    for other in (b, c):
        assert other.grid == a.grid and other.flow == a.flow and other.save_times == a.save_times
    assert fpsolver.Case(path, flow="kl").flow == "kl"
    ra, rc = fpsolver.solve(a, save_times=[0.2]), fpsolver.solve(c, save_times=[0.2])
    assert np.array_equal(ra.rho, rc.rho)                      # the same case, the same bits


def test_arrays_and_callables_in_a_dict_case():
    grid_case = fpsolver.Case(**TABLES)
    target, _ = grid_case.discretised()
    values = np.exp(target.log_cells)
    by_values = fpsolver.Case(**(TABLES | {"target": {"kind": "grid", "values": values}}))
    assert np.allclose(np.exp(by_values.discretised()[0].log_cells), values, rtol=1e-14)
    # a callable log-density: the Gaussian of the initial table, written out by hand
    f = fpsolver.Case(**(TABLES | {"initial": lambda x: -0.5 * ((x[:, 0] - 1.0) / 0.6) ** 2}))
    assert isinstance(f.initial, FunctionDensity)
    r_tab, r_fun = fpsolver.solve(grid_case), fpsolver.solve(f)
    # the two log-density formulas differ by rounding (1e-16 relative); the solver is a contraction
    assert np.max(np.abs(r_tab.rho - r_fun.rho)) <= 1e-12 * np.max(r_tab.rho)


def test_function_density_gradient_by_differences():
    fd = FunctionDensity(lambda x: -0.5 * np.sum(x * x, axis=1) - 0.1 * x[:, 0] ** 3)
    pts = np.random.default_rng(0).uniform(-3, 3, (200, 2))
    exact = -pts - np.stack([0.3 * pts[:, 0] ** 2, np.zeros(200)], axis=1)
    # central differences, h = 1e-5 * 6: truncation h^2 |f'''| / 6 ~ 2e-11, round-off 1e-16 * 5 / h ~ 1e-11
    assert np.max(np.abs(fd.grad_log_pdf(pts) - exact)) < 1e-9


@pytest.mark.parametrize("spec, key", [
    ({"kind": "grid", "values": np.ones(120), "path": "x.npy"}, "target"),
    ({"kind": "grid", "values": np.ones(7)}, "target.values"),
    ({"kind": "grid", "values": [[np.nan] * 120]}, "target.values"),
    ({"kind": "function", "log_pdf": 3.0}, "target.log_pdf"),
    ({"kind": "samples", "points": np.zeros((10, 1)), "use": "as-is"}, "target.use"),
    ({"kind": "samples", "points": np.zeros((10, 1)), "use": "sometimes"}, "target.use"),
])
def test_bad_arrays_and_callables_are_one_line_errors(spec, key):
    with pytest.raises(CaseError) as err:
        fpsolver.Case(**(TABLES | {"target": spec}))
    assert str(err.value).startswith(key) and "\n" not in str(err.value)


def test_a_log_density_that_fails_is_named():
    def broken(x):
        return np.zeros(3)
    with pytest.raises(InputError, match="broken: must map points"):
        fpsolver.Case(**(TABLES | {"target": broken}))


def test_particles_start_from_the_users_points_as_is(tmp_path):
    pts = np.random.default_rng(3).normal(0.5, 0.7, size=(3000, 1))
    case = fpsolver.Case(**(TABLES | {"initial": {"kind": "samples", "points": pts, "use": "as-is",
                                                  "bandwidth": 0.5}}))
    r = fpsolver.particles(case, seed=0)
    assert r.meta["n"] == 3000 and np.array_equal(r.positions[0], pts)     # the points themselves
    with pytest.raises(InputError, match="N must be 3,000"):
        fpsolver.particles(case, n=100)
    outside = np.concatenate([pts, [[9.0]]])
    with pytest.raises(CaseError, match="1 of the points lie outside"):
        fpsolver.Case(**(TABLES | {"initial": {"kind": "samples", "points": outside, "use": "as-is"}}))
    # the same from a case file, through the command line: N taken from the file
    np.save(tmp_path / "pts.npy", pts)
    toml = tmp_path / "c.toml"
    toml.write_text('[domain]\nlower = [-4.0]\nupper = [4.0]\ncells = [120]\n'
                    '[target]\nkind = "gaussian"\nmean = [0.0]\nstd = [1.0]\n'
                    '[initial]\nkind = "samples"\npath = "pts.npy"\nuse = "as-is"\nbandwidth = 0.5\n'
                    '[flow]\nkind = "js"\n[time]\ndt = 0.05\nsave_times = [0.5]\n')
    from fpsolver.cli import main
    assert main(["particles", str(toml), "--out", str(tmp_path / "p.npz"), "--quiet"]) == 0
    res = fpsolver.load(str(tmp_path / "p.npz"))
    assert np.array_equal(res.positions[0], pts)


def test_resampling_stays_the_default():
    pts = np.random.default_rng(4).normal(0.5, 0.7, size=(500, 1))
    case = fpsolver.Case(**(TABLES | {"initial": {"kind": "samples", "points": pts, "bandwidth": 0.5}}))
    r = fpsolver.particles(case, n=800, seed=0, save_times=[0.05])
    assert r.positions.shape[1] == 800 and set(np.unique(r.positions[0])) <= set(pts[:, 0])


def test_compare_and_the_comparison_figure():
    pde = fpsolver.solve(fpsolver.Case(**TABLES))
    swarm = fpsolver.particles(fpsolver.Case(**TABLES), n=5000, seed=0)
    table = fpsolver.compare(swarm, pde)                          # either order
    assert [row["t"] for row in table] == [0.0, 0.5] and "W1" in str(table)
    assert table[-1]["w1"] < 0.05
    assert isinstance(fpsolver.plot(pde, swarm), Figure)
    assert isinstance(fpsolver.plot(swarm), Figure)


def test_plots_draw_into_a_given_axis():
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2)
    r = fpsolver.solve(fpsolver.Case(**TABLES))
    assert fpsolver.plot(r, ax=axes[1]) is fig and len(axes[1].lines) == len(r.t) + 1
    plt.close(fig)


def test_arrays_and_callables_in_meta_round_trip(tmp_path):
    case = fpsolver.Case(**(TABLES | {"initial": lambda x: -(x[:, 0] - 1.0) ** 2,
                                      "target": {"kind": "grid", "values": np.full(120, 0.125)}}))
    r = fpsolver.solve(case)
    r.save(tmp_path / "r.npz")
    meta = fpsolver.load(str(tmp_path / "r.npz")).meta
    assert meta["case"]["target"]["values"] == [0.125] * 120
    assert meta["case"]["initial"].startswith("<python callable ") and "lambda" in meta["case"]["initial"]
    json.dumps(meta)


def test_importing_never_switches_the_backend():
    code = ("import matplotlib; import fpsolver, fpsolver.plots, fpsolver.studies._common; "
            "r = fpsolver.solve('examples/kl_gaussian.toml', cells=[60]); fpsolver.plot(r); "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=os.environ | {"MPLBACKEND": "svg"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "svg"


def test_a_jupyter_kernel_shows_the_figure_inline():
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import fpsolver\n"
        f"r = fpsolver.solve({os.path.join(EXAMPLES, 'kl_gaussian.toml')!r}, cells=[80])\n"
        "fpsolver.plot(r)"))
    env_backend = os.environ.pop("MPLBACKEND", None)   # let the kernel pick its inline backend
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
    kinds = [set(o.get("data", {})) for o in nb.cells[0].outputs]
    assert any("image/png" in k for k in kinds), nb.cells[0].outputs


@pytest.mark.parametrize("script", ["quick_start.py", "particles_vs_pde.py", "custom_monoflow.py",
                                    "gan_in_the_loop.py", "mmd_flow.py"])
def test_notebook_examples_run_and_write_their_figure(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(os.path.join(EXAMPLES, "notebooks", script), run_name="__main__")
    png = tmp_path / script.replace(".py", ".png")
    assert png.stat().st_size > 10_000


def test_a_sweep_from_python(tmp_path):
    (tmp_path / "s.toml").write_text(
        f'[sweep]\nbase = "{os.path.join(EXAMPLES, "kl_gaussian.toml")}"\ncommand = "solve"\n'
        '[sweep.vary]\n"domain.cells" = [[60], [120]]\n"time.dt" = [0.05, 0.025]\n')
    rows = fpsolver.sweep(str(tmp_path / "s.toml"), str(tmp_path / "out"), scheduler="none")
    assert [r["status"] for r in rows] == ["ok"] * 4
    for r in rows:
        res = fpsolver.load(str(tmp_path / "out" / "results" / f"{r['key']}.npz"))
        assert abs(float(np.sum(res.rho[-1])) * res.grid.cell_volume - 1.0) < 1e-12


def test_result_as_xarray():
    r = fpsolver.solve(fpsolver.Case(**TABLES))
    ds = r.to_xarray()
    assert np.array_equal(ds["rho"].sel(t=0.5).values, r.rho[-1])
    assert json.loads(ds.attrs["meta"])["flow"] == "js"
    swarm = fpsolver.particles(fpsolver.Case(**TABLES), n=100, seed=0)
    assert swarm.to_xarray()["positions"].shape == (2, 100, 1)


@pytest.mark.parametrize("module", ["fpsolver.api", "fpsolver.case", "fpsolver.plots", "fpsolver.result",
                                    "fpsolver.monoflow", "fpsolver.flows.local"])
def test_docstring_examples(module, monkeypatch):
    import importlib
    monkeypatch.chdir(ROOT)                 # the examples name files under examples/
    res = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0


@pytest.mark.parametrize("call, message", [
    (lambda: fpsolver.solve(os.path.join(EXAMPLES, "kl_gaussian.toml"), cells=200), "cells: give a list"),
    (lambda: fpsolver.solve(os.path.join(EXAMPLES, "kl_gaussian.toml"), save_times=0.5), "save_times: give a list"),
    (lambda: fpsolver.solve(os.path.join(EXAMPLES, "kl_gaussian.toml"), linear="multigird"), "linear: unknown solver"),
    (lambda: fpsolver.solve(os.path.join(EXAMPLES, "kl_gaussian.toml"), linear="multigrid"), "is for 2D grids"),
    (lambda: fpsolver.solve(os.path.join(EXAMPLES, "kl_gaussian.toml"), rtol=1e-3, backend="fipy"),
     "adaptive steps are available for the fv backend only"),
    (lambda: fpsolver.solve(os.path.join(EXAMPLES, "dual_js_1d.toml"), rtol=1e-3),
     "time.rtol: adaptive steps are not available for dual flows"),
    (lambda: fpsolver.gan(os.path.join(EXAMPLES, "gan_js_1d.toml"), fit_step=3), "gan.fit_step: unknown option"),
    (lambda: fpsolver.gan(os.path.join(EXAMPLES, "gan_js_1d.toml"), knots="16"), "gan.knots: must be an integer"),
    (lambda: fpsolver.gan(os.path.join(EXAMPLES, "gan_js_1d.toml"), epsilon=float("nan")), "gan.epsilon: must be a number"),
])
def test_bad_python_options_are_one_line_errors(call, message):
    with pytest.raises(fpsolver.FpsolverError) as err:
        call()
    assert message in str(err.value) and "\n" not in str(err.value)
