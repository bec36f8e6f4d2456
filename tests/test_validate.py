"""The verification suite: ``fpsolver validate --quick`` passes every study and writes its files.

The quick run is done once (module fixture, about a minute on 2 cores); the other tests check
the pieces the studies are built from on small known cases.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from fpsolver.cli import main
from fpsolver.densities import discretise
from fpsolver.fv import FVOperator
from fpsolver.grid import Grid
from fpsolver.studies import _common as C
from fpsolver.studies.long_time import flat_window, generalised_gap, spectral_gap
from fpsolver.validate import STUDY_NAMES


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate") / "report"
    rc = main(["validate", "--quick", "--out", str(out)])
    with open(out / "summary.json", encoding="utf-8") as fh:
        return rc, out, json.load(fh)


def test_quick_validation_passes_every_study(quick_report):
    rc, _, summary = quick_report
    assert [s["name"] for s in summary] == STUDY_NAMES
    failed = {s["name"]: s.get("error") or [c for c in s["checks"] if not c["passed"]]
              for s in summary if not s["passed"]}
    assert not failed, failed
    assert rc == 0
    for s in summary:
        assert s["checks"], s["name"]
        for c in s["checks"]:
            assert np.isfinite(c["measured"]) and c["passed"], (s["name"], c)
        # the headline is the worst check, copied from the checks themselves
        assert any(c["quantity"] == s["quantity"] and c["measured"] == s["measured"] for c in s["checks"])


def test_quick_validation_writes_report_and_figures(quick_report):
    _, out, summary = quick_report
    report = (out / "report.md").read_text(encoding="utf-8")
    for s in summary:
        png = out / s["figure"]
        assert png.is_file() and png.stat().st_size > 10_000, png
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pdf = png.with_suffix(".pdf")
        assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"
        assert f"]({s['figure']})" in report
        assert f"## {s['title']}" in report
    assert report.count("| pass |") >= len(summary)
    assert "FAIL" not in report


def test_orders_in_summary_are_theirs(quick_report):
    """Spot checks of the numbers theory fixes (they are also the studies' own criteria)."""
    _, _, summary = quick_report
    by = {s["name"]: s for s in summary}
    space = [c["measured"] for c in by["spatial_order"]["checks"]]
    assert len(space) >= 6 and all(abs(p - 2) <= 0.15 for p in space)
    lt = [c for c in by["long_time"]["checks"] if c["quantity"].startswith("decay rate, Gaussian 1D js")][0]
    # MATH.md section 6: rho_d = N(0, 1) on a wide box has lambda_1 = 1/sigma^2 = 1 (up to O(dx^2): the
    # gap test below finds 1e-3 at 200 cells, this grid has 400), so js (beta'(1) = 1/4) at h = 0.1
    # decays at ln(1 + 0.1/4)/0.1
    assert lt["expected"] == pytest.approx(np.log1p(0.1 / 4) / 0.1, rel=1e-3)
    assert lt["measured"] == pytest.approx(lt["expected"], rel=lt["tolerance"])


def test_only_selects_and_unknown_study_is_one_clear_error(tmp_path, capsys):
    assert main(["validate", "--quick", "--out", str(tmp_path / "r"), "--only", "spatial_order,nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fpsolver: error: --only: unknown study nope") and "spatial_order" in err
    assert not (tmp_path / "r").exists()
    assert main(["validate", "--out", str(tmp_path / "missing" / "r")]) == 2


def test_a_failing_study_is_reported_and_exit_status_is_1(tmp_path, monkeypatch, capsys):
    import fpsolver.studies.exponential_formula as ef

    def broken(quick, out_dir):
        raise RuntimeError("deliberately broken")

    monkeypatch.setattr(ef, "study_crandall_liggett", broken)
    out = tmp_path / "r"
    assert main(["validate", "--quick", "--out", str(out), "--only", "crandall_liggett"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary) == 1 and summary[0]["passed"] is False
    assert summary[0]["error"] == "RuntimeError: deliberately broken"
    assert "did not run" in (out / "report.md").read_text()
    assert "failed: crandall_liggett" in capsys.readouterr().out


def test_check_rules():
    assert C.check("p", 2.1, 2.0, 0.15)["passed"] and not C.check("p", 2.2, 2.0, 0.15)["passed"]
    assert C.check("r", 1.04, 1.0, 0.05, rule="rel")["passed"]
    assert not C.check("r", 1.06, 1.0, 0.05, rule="rel")["passed"]
    assert C.check("m", 1e-12, 1e-11, rule="le")["passed"] and not C.check("m", 0.0, 0.0, rule="gt")["passed"]
    assert not C.check("nan", float("nan"), 1.0, rule="le")["passed"]
    assert C.fit_slope([1, 2, 4, 8], [3.0, 0.75, 0.1875, 0.046875]) == pytest.approx(-2.0)


def test_flat_window_recovers_a_known_rate():
    t = np.arange(0, 60, 0.1)
    # fast transient, then rate 0.3, then a floor at 1e-9 where the local rate drifts
    dist = np.exp(-0.3 * t) + 0.5 * np.exp(-3 * t) + 1e-9
    i0, i1, rate = flat_window(t, dist)
    assert rate == pytest.approx(0.3, rel=1e-3)
    assert t[i0] > 1.0 and dist[i1] > 1e-8


def test_spectral_gap_scaled_equals_generalised_and_is_one_over_sigma2():
    from fpsolver.studies._common import gaussian

    grid = Grid((-8.0,), (8.0,), (200,))
    target = discretise(gaussian([0.0], [1.0]), grid)
    op = FVOperator.build(grid, target)
    lam0, lam1 = spectral_gap(op)
    assert abs(lam0) < 1e-10
    assert lam1 == pytest.approx(generalised_gap(grid, target), rel=1e-9)
    assert lam1 == pytest.approx(1.0, rel=1e-3)  # lambda_1 = 1/sigma^2 on a wide box
    # 2D (sparse shift-invert path): the gap of N(0, diag(1, 0.5^2)) is 1/max(sigma^2) = 1
    g2 = Grid((-6.0, -4.0), (6.0, 4.0), (48, 48))
    t2 = discretise(gaussian([0.0, 0.0], [1.0, 0.5]), g2)
    op2 = FVOperator.build(g2, t2)
    assert spectral_gap(op2)[1] == pytest.approx(1.0, rel=2e-2)
    assert generalised_gap(g2, t2) == pytest.approx(spectral_gap(op2)[1], rel=1e-9)


def test_validation_scripts_exist_for_every_study():
    here = os.path.join(os.path.dirname(__file__), "..", "validation")
    for name in STUDY_NAMES:
        text = open(os.path.join(here, f"{name}.py"), encoding="utf-8").read()
        assert f'main_single("{name}")' in text


def test_generator_norm_of_a_one_cell_bump_is_four_delta_over_h():
    """beta(u) = u, rho_d = 1 on [0, 1]: A_h rho = -Laplacian_h rho, so a bump delta in one cell gives
    (2, -1, -1) delta / h^2 there and next door, ||A_h rho||_1 = 4 delta / h; rho_d itself gives 0."""
    from fpsolver.studies.exponential_formula import generator_l1

    grid = Grid((0.0,), (1.0,), (10,))
    zeros = np.zeros(10)
    faces = (np.zeros(9),)
    rho = np.ones(10)
    rho[4] += 0.3
    assert generator_l1(grid, np.log(rho), zeros, faces, lambda u: u) == pytest.approx(4 * 0.3 / 0.1, rel=1e-12)
    assert generator_l1(grid, zeros, zeros, faces, lambda u: 0.5 * np.log1p(u)) == 0.0
