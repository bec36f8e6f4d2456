"""Every example solves through the CLI; plot and demo write their files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpsolver.cli import main
from fpsolver.result import Result

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def test_examples_exist():
    names = {p.stem for p in EXAMPLES}
    assert {"bimodal_1d", "two_mode_2d", "uniform_reverse_kl", "kl_gaussian"} <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_solves_and_plots(tmp_path, capsys, example):
    out, fig = tmp_path / "r.npz", tmp_path / "r.png"
    assert main(["solve", str(example), "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "mass error" in summary and "wall time" in summary
    res = Result.load(out, expect="density")
    assert res.t[0] == 0.0 and res.t[-1] == pytest.approx(res.meta["case"]["time"]["save_times"][-1])
    assert res.rho.shape == (len(res.t), *res.grid.shape)
    assert res.meta["mass_error"] <= 1e-11
    assert np.all(res.rho > 0)
    # the resolvent exists for every step size (A is m-accretive): no example needs a rejected step
    assert res.meta["rejected_steps"] == 0
    assert f"{res.meta['rejected_steps']} rejected" in summary
    energy = np.array(res.meta["energy"])
    if "discriminator" in res.meta["case"]:
        # dual flows (MATH.md section 10): no energy is monotone for finite kappa (the discriminator
        # lags, the generator can overshoot); what holds is a finite logit at every save time
        assert res.f.shape == res.rho.shape and np.all(np.isfinite(res.f))
    else:
        assert np.all(np.diff(energy) <= 1e-12 * energy[0])
    assert main(["plot", str(out), "--out", str(fig)]) == 0
    assert fig.stat().st_size > 10_000 and fig.read_bytes()[:4] == b"\x89PNG"


def test_overrides_change_the_run(tmp_path):
    ex = ROOT / "examples" / "bimodal_1d.toml"
    out = tmp_path / "r.npz"
    assert main(["solve", str(ex), "--out", str(out), "--quiet", "--cells", "100", "--dt", "0.05",
                 "--scheme", "bdf2"]) == 0
    res = Result.load(out)
    assert res.rho.shape[1] == 100
    assert res.meta["scheme"] == "bdf2" and res.meta["dt"] == 0.05 and res.meta["steps"] == 160


def test_bad_overrides_are_one_line_errors(tmp_path, capsys):
    ex = ROOT / "examples" / "bimodal_1d.toml"
    for extra in (["--cells", "10,10"], ["--dt", "0.3"]):
        assert main(["solve", str(ex), "--out", str(tmp_path / "r.npz"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fpsolver: error: ")
    assert main(["solve", str(ex), "--out", str(tmp_path / "no" / "r.npz")]) == 2
    assert not (tmp_path / "r.npz").exists()
