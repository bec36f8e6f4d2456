"""Custom flows everywhere: a Flow object from Python, or "module:name" in a case file (imported
only when allowed), through solve, particles, FiPy, the GAN loop and the command line."""
import os
import textwrap

import numpy as np
import pytest

import fpsolver
from fpsolver import CaseError
from fpsolver.cli import main

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
BIMODAL = os.path.join(EXAMPLES, "bimodal_1d.toml")


def _hprime_flow():
    return fpsolver.flow_from_hprime(lambda t: 1.0 / np.sqrt(1.0 + t * t), name="arcsinh-by-hand")


def test_an_h_prime_flow_matches_the_arcsinh_preset_in_every_solver():
    mine = fpsolver.Case(BIMODAL, flow=_hprime_flow(), time={"dt": 0.02, "save_times": [0.4]})
    preset = fpsolver.Case(BIMODAL, flow="arcsinh", time={"dt": 0.02, "save_times": [0.4]})
    a, b = fpsolver.solve(mine), fpsolver.solve(preset)
    assert a.meta["flow"] == "python:arcsinh-by-hand"
    # both tabulate beta by quadrature to ~1e-13 relative; the Newton solves agree to that level
    assert np.max(np.abs(a.rho - b.rho)) <= 1e-10 * np.max(b.rho)
    fa, fb = fpsolver.solve(mine, backend="fipy"), fpsolver.solve(preset, backend="fipy")
    # the same FiPy discretisation with the user's beta' (tabulated) and FiPy's closed-form arcsinh
    # beta': both sweeps stop at the relative mass residual 1e-10, so they agree to about that
    assert fa.meta["flow"] == "python:arcsinh-by-hand"
    assert np.max(np.abs(fa.rho - fb.rho)) <= 1e-8 * np.max(fb.rho)
    pa = fpsolver.particles(mine, n=3000, seed=4)
    pb = fpsolver.particles(preset, n=3000, seed=4)
    assert np.max(np.abs(pa.positions - pb.positions)) < 1e-8     # same draws, same velocity to ~1e-13


def test_a_flow_of_my_own_in_the_gan_loop():
    from fpsolver.gan import run_gan
    time = {"dt": 0.01, "save_times": [0.2]}
    gan = os.path.join(EXAMPLES, "gan_js_1d.toml")
    mine = run_gan(fpsolver.Case(gan, flow=_hprime_flow(), time=time), n=1000)
    preset = run_gan(fpsolver.Case(gan, flow="arcsinh", time=time), n=1000)
    assert mine.meta["flow"] == "python:arcsinh-by-hand" and mine.positions.shape == preset.positions.shape
    # the targets x + eps h'(d) grad d use the tabulated h' (1e-13 from the closed form)
    assert np.max(np.abs(mine.positions - preset.positions)) < 1e-9
    assert mine.meta.get("diverged") == preset.meta.get("diverged")


@pytest.fixture
def flow_module(tmp_path, monkeypatch):
    (tmp_path / "my_flows.py").write_text(textwrap.dedent("""
        import numpy as np
        import fpsolver
        soft = fpsolver.flow_from_hprime(lambda t: 0.5 / (1.0 + np.exp(-t)), name="js-by-hprime")
        not_a_flow = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    case = tmp_path / "c.toml"
    text = open(BIMODAL).read()
    head, tail = text.split("[flow]")
    case.write_text(head + '[flow]\nkind = "my_flows:soft"\n' + "[time]" + tail.split("[time]")[1])
    return case


def test_a_case_file_never_imports_without_permission(flow_module, tmp_path, capsys):
    with pytest.raises(CaseError, match="never runs code on its own; allow it with --allow-imports"):
        fpsolver.Case(str(flow_module))
    assert main(["solve", str(flow_module), "--out", str(tmp_path / "r.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--allow-imports" in err
    assert not (tmp_path / "r.npz").exists()


def test_an_allowed_import_runs_through_the_command_line(flow_module, tmp_path):
    out = tmp_path / "r.npz"
    assert main(["solve", str(flow_module), "--out", str(out), "--quiet", "--allow-imports"]) == 0
    r = fpsolver.load(str(out))
    assert r.meta["flow"] == "my_flows:soft"
    mine = fpsolver.solve(fpsolver.Case(str(flow_module), allow_imports=True))
    assert np.array_equal(mine.rho, r.rho)
    js = fpsolver.solve(BIMODAL)
    # h' = sigmoid/2 is the js flow: the tabulated beta agrees with js's closed form to ~1e-13
    assert np.max(np.abs(js.rho - r.rho)) <= 1e-10 * np.max(js.rho)
    assert main(["particles", str(flow_module), "--out", str(tmp_path / "p.npz"), "--n", "500",
                 "--quiet", "--allow-imports"]) == 0


@pytest.mark.parametrize("kind, message", [
    ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
    ("my_flows:missing", "has no 'missing'"),
    ("my_flows:not_a_flow", "is a int, not a fpsolver Flow"),
    ("my_flows:", 'expected "package.module:name"'),
])
def test_bad_imports_are_one_line_errors(flow_module, kind, message):
    text = open(flow_module).read().replace('"my_flows:soft"', f'"{kind}"')
    open(flow_module, "w").write(text)
    with pytest.raises(CaseError, match=message) as err:
        fpsolver.Case(str(flow_module), allow_imports=True)
    assert "\n" not in str(err.value)


def test_a_flow_from_beta_and_dbeta_runs_like_the_preset():
    mine = fpsolver.custom_flow(lambda u: 0.5 * np.log1p(u), lambda u: 0.5 / (1.0 + u), name="js-by-beta")
    case = fpsolver.Case(BIMODAL, flow=mine, time={"dt": 0.02, "save_times": [0.4]})
    a, b = fpsolver.solve(case), fpsolver.solve(case, flow="js")
    # the same beta in u instead of the preset's log-space closed forms: equal to round-off of the
    # u-space evaluation (|log u| stays < 40 here), far below the scheme's error
    assert a.meta["flow"] == "python:js-by-beta"
    assert np.max(np.abs(a.rho - b.rho)) <= 1e-10 * np.max(b.rho)
    pa = fpsolver.particles(case, n=2000, seed=1)
    pb = fpsolver.particles(case, n=2000, seed=1, flow="js")
    assert np.max(np.abs(pa.positions - pb.positions)) < 1e-8
