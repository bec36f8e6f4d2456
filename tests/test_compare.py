"""fpsolver compare: numbers against Monte-Carlo floors, and the command line on good and bad files."""
import json

import numpy as np
import pytest

from fpsolver import metrics as M
from fpsolver.case import Case
from fpsolver.cli import main
from fpsolver.compare import compare
from fpsolver.fv import solve_case
from fpsolver.result import Result

N = 20_000


def _exact_particles(pde: Result, n: int, seed: int, mode: str = "exact") -> Result:
    """Particles drawn exactly from the PDE density at every save time (independent seeds)."""
    grid = pde.grid
    pos = np.stack([M.sample_cell_density(grid, rho, n, np.random.default_rng(seed + k))
                    for k, rho in enumerate(pde.rho)])
    return Result(t=pde.t.copy(), meta={"mode": mode, "N": n, "seed": seed}, axes=pde.axes,
                  rho_d=pde.rho_d, positions=pos)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    case = Case.from_toml("examples/bimodal_1d.toml").with_overrides(cells=[120], dt=0.02,
                                                                     save_times=[0.2, 1.0])
    pde = solve_case(case)
    part = _exact_particles(pde, N, seed=100)
    case2 = Case.from_toml("examples/two_mode_2d.toml").with_overrides(cells=[24, 24], dt=0.05,
                                                                       save_times=[0.5])
    pde2 = solve_case(case2)
    part2 = _exact_particles(pde2, 4_000, seed=200)
    paths = {name: str(folder / f"{name}.npz") for name in ("pde", "part", "pde2", "part2")}
    for name, res in zip(paths, (pde, part, pde2, part2)):
        res.save(paths[name])
    return {"dir": folder, "pde": pde, "part": part, "pde2": pde2, "part2": part2, **{
        f"{k}_path": v for k, v in paths.items()}}


def _floors(pde, n, seeds, quantile, n_dirs=100):
    """Per save time: quantile over seeds of W1 and of the histogram L1 of n exact samples."""
    grid = pde.grid
    w1, l1 = [], []
    for rho in pde.rho:
        xs = [M.sample_cell_density(grid, rho, n, np.random.default_rng(10_000 + s)) for s in range(seeds)]
        w1.append(np.quantile([M.w1_to_density(x, grid, rho, n_dirs) for x in xs], quantile))
        l1.append(np.quantile([M.histogram_l1(x, grid, rho) for x in xs], quantile))
    return np.array(w1), np.array(l1)


# ------------------------------------------------------------------ numbers

def test_exact_particles_sit_within_the_monte_carlo_floor(files):
    pde, part = files["pde"], files["part"]
    rows = compare(pde, part)
    assert [r["t"] for r in rows] == list(pde.t) and all(r["n"] == N for r in rows)
    w1_floor, l1_floor = _floors(pde, N, seeds=100, quantile=0.99)
    for r, wf, lf, pos, rho in zip(rows, w1_floor, l1_floor, part.positions, pde.rho):
        assert r["w1"] <= wf and r["l1"] <= lf
        assert r["ks"] < 1.95 / np.sqrt(N)          # KS critical value at level 1e-3
        assert r["w1"] == M.w1_samples_density_1d(pos, pde.grid, rho)


def test_compare_detects_the_wrong_time(files):
    pde, part = files["pde"], files["part"]
    late = Result(t=part.t, meta=part.meta, axes=part.axes, rho_d=part.rho_d,
                  positions=part.positions[[0, 0, 0]])   # the t = 0 cloud at every time
    rows = compare(pde, late)
    w1_floor, _ = _floors(pde, N, seeds=20, quantile=0.95)
    assert rows[-1]["w1"] > 5 * w1_floor[-1]


def test_compare_2d_uses_sliced_w1_within_floor(files):
    pde, part = files["pde2"], files["part2"]
    rows = compare(pde, part, n_dirs=32, floor_seeds=20)
    # the particles are exact samples, so their W1 is one more draw from the floor's distribution:
    # below its 99.9th percentile with probability 0.999. compare's floor is the 19th of 20 order
    # statistics, which lies between the median and the 99.9th percentile with probability
    # 1 - P(Bin(20, 1/2) >= 19) - P(Bin(20, 0.999) <= 18) > 0.9997. Percentiles from 200 other seeds.
    q50, _ = _floors(pde, 4_000, seeds=200, quantile=0.5, n_dirs=32)
    q999, _ = _floors(pde, 4_000, seeds=200, quantile=0.999, n_dirs=32)
    assert all("ks" not in r for r in rows)
    for r, lo, hi in zip(rows, q50, q999):
        assert r["w1"] <= hi
        assert lo <= r["w1_floor"] <= hi


# ------------------------------------------------------------------ command line

def _run(capsys, *argv):
    code = main(["compare", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_table_json_and_plot(files, capsys):
    code, out, err = _run(capsys, files["pde_path"], files["part_path"])
    assert code == 0 and err == ""
    table = np.array([[float(v) for v in line.split()] for line in out.splitlines()[-3:]])
    assert out.splitlines()[-4].split() == ["t", "L1", "W1", "KS"]
    ref = compare(files["pde"], files["part"])
    # the table prints %.3e (4 significant digits): rounding moves a value by at most 5e-4 of itself
    assert np.allclose(table, [[r["t"], r["l1"], r["w1"], r["ks"]] for r in ref], rtol=5e-4, atol=0)

    code, out, _ = _run(capsys, files["pde_path"], files["part_path"], "--json", "--floor", "3")
    data = json.loads(out)
    assert code == 0 and data["dim"] == 1 and len(data["rows"]) == 3
    for got, want in zip(data["rows"], ref):
        assert got["w1"] == want["w1"] and got["l1"] == want["l1"] and got["ks"] == want["ks"]
        assert got["w1_floor"] > 0

    fig = files["dir"] / "cmp.png"
    code, out, _ = _run(capsys, files["pde2_path"], files["part2_path"], "--plot", str(fig))
    assert code == 0 and "KS" not in out
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_particle_results(files, capsys):
    for name in ("part", "part2"):
        fig = files["dir"] / f"{name}.png"
        assert main(["plot", files[f"{name}_path"], "--out", str(fig)]) == 0
        assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = files["dir"] / "cmp1d.png"
    assert _run(capsys, files["pde_path"], files["part_path"], "--plot", str(fig))[0] == 0
    assert fig.stat().st_size > 10_000


def _bad(files, name, **change):
    part = files["part"]
    fields = dict(t=part.t, meta=part.meta, axes=part.axes, rho_d=part.rho_d, positions=part.positions)
    fields.update(change)
    path = str(files["dir"] / f"{name}.npz")
    Result(**fields).save(path)
    return path


@pytest.mark.parametrize("case, message", [
    ("grid", "differs from the grid of"),
    ("time", "no save time t = 0.3"),
    ("dim", "2D particles, but"),
    ("target", "target rho_d differs"),
    ("corrupt", "not a readable .npz"),
    ("swapped", "expected a particles result"),
    ("folder", "does not exist"),
])
def test_cli_bad_input_exits_2_with_one_line(files, capsys, case, message):
    part = files["part"]
    pde_path, part_path, extra = files["pde_path"], None, []
    if case == "grid":
        axes = (np.linspace(-4, 4, 101)[:-1] + 0.04,)
        part_path = _bad(files, "grid", axes=axes, rho_d=np.ones(100))
    elif case == "time":
        part_path = _bad(files, "time", t=np.array([0.0, 0.3, 1.0]))
    elif case == "dim":
        part_path = files["part2_path"]
    elif case == "target":
        part_path = _bad(files, "target", rho_d=np.roll(part.rho_d, 10))
    elif case == "corrupt":
        part_path = str(files["dir"] / "corrupt.npz")
        with open(part_path, "wb") as fh:
            fh.write(b"this is not a zip archive")
    elif case == "swapped":
        part_path = files["pde_path"]
    else:
        part_path, extra = files["part_path"], ["--plot", str(files["dir"] / "no" / "fig.png")]
    code, out, err = _run(capsys, pde_path, part_path, *extra)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("fpsolver: error: ")
    assert message in err
