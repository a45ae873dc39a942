"""End-to-end tests of ``kerasmt run|data|demo`` on fixture notebooks and a fake dataset module.

The notebooks live in tests/fixtures/notebooks (found through ``$KERASMT_NOTEBOOKS``):
``toy.ipynb`` records the parameters, interpreter, cwd and ``KERASMT_SMOKE`` it sees into
``OUT_DIR/metrics.json``; ``broken.ipynb`` raises ``ValueError("boom from cell")`` in its second cell.
Each kernel start costs ~1-3 s, so the runs are shared through module-scoped fixtures.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kerasmt import cli, runner

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOTEBOOKS = FIXTURES / "notebooks"
CLEAN_ENV = ("KERASMT_SMOKE", "KERASMT_RUNS_DIR")


def call_main(argv: list[str]) -> tuple[int, str, str]:
    """``cli.main(argv)`` with stdout/stderr captured (usable in module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def notebooks_env():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(runner.NOTEBOOKS_ENV, str(NOTEBOOKS))
        for name in CLEAN_ENV:
            mp.delenv(name, raising=False)
        yield mp


@pytest.fixture(autouse=True)
def _fixture_notebooks():
    with notebooks_env() as mp:
        yield mp


def console_script() -> tuple[list[str], str]:
    """The installed ``kerasmt`` script (and the interpreter it runs on), else ``python -m``."""
    script = Path(sys.executable).parent / ("kerasmt.exe" if os.name == "nt" else "kerasmt")
    if script.is_file():
        first = script.read_text(errors="replace").splitlines()[0]
        if first.startswith("#!") and " " not in first[2:].strip():
            return [str(script)], first[2:].strip()
    return [sys.executable, "-m", "kerasmt.cli"], sys.executable


# ------------------------------------------------------------------------------ shared runs
@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """In-process ``kerasmt run toy --smoke --data D --out O -p ...``."""
    base = tmp_path_factory.mktemp("toy_run")
    data = base / "data"
    data.mkdir()
    out = base / "out"
    argv = ["run", "toy", "--smoke", "--data", str(data), "--out", str(out),
            "-p", "ALPHA=3", "-p", "NAME=abc", "-p", "FLAG=true"]
    with notebooks_env():
        code, stdout, stderr = call_main(argv)
        env_after = os.environ.get("KERASMT_SMOKE")
    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    return {"code": code, "stdout": stdout, "stderr": stderr, "out": out, "data": data,
            "metrics": metrics, "env_after": env_after}


@pytest.fixture(scope="module")
def script_run(tmp_path_factory):
    """``kerasmt run toy`` through the console script, in a fresh cwd (default --out), with a decoy
    ``python3`` kernelspec first on JUPYTER_PATH whose interpreter does not exist."""
    base = tmp_path_factory.mktemp("script_run")
    decoy = base / "jupyter" / "kernels" / "python3"
    decoy.mkdir(parents=True)
    (decoy / "kernel.json").write_text(json.dumps({
        "argv": [str(base / "no-such-python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "decoy", "language": "python",
    }))
    cwd = base / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env[runner.NOTEBOOKS_ENV] = str(NOTEBOOKS)
    env["JUPYTER_PATH"] = str(base / "jupyter")
    command, interpreter = console_script()
    proc = subprocess.run([*command, "run", "toy", "-p", "ALPHA=2.5", "-p", "NAME=[1, 2]"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    out = cwd / "runs" / "toy"
    metrics_path = out / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    return {"proc": proc, "out": out, "metrics": metrics, "interpreter": interpreter}


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("broken_run") / "out"
    with notebooks_env():
        code, stdout, stderr = call_main(["run", "broken", "--out", str(out), "-q"])
    return {"code": code, "stdout": stdout, "stderr": stderr, "out": out}


@pytest.fixture(scope="module", params=[1, 3], ids=["jobs1", "jobs3"])
def demo_run(tmp_path_factory, request):
    """Demo over broken (fails first), toy, and a finished study without a notebook; with
    ``--jobs 3`` broken runs in the pool and toy (a timed study here) alone afterwards."""
    jobs = request.param
    out = tmp_path_factory.mktemp("demo_run") / "demo"
    with notebooks_env() as mp:
        mp.setattr(runner, "FINISHED_STUDIES", ("broken", "toy", "no_notebook_yet"))
        mp.setattr(runner, "TIMED_STUDIES", ("toy",))
        code, stdout, stderr = call_main(["demo", "--out", str(out), "--smoke", "--jobs", str(jobs)])
    return {"code": code, "stdout": stdout, "stderr": stderr, "out": out, "jobs": jobs}


# ----------------------------------------------------------------------------------- run
@pytest.mark.slow
def test_run_writes_notebook_html_and_metrics(toy_run):
    assert toy_run["code"] == 0, toy_run["stderr"]
    out = toy_run["out"]
    assert (out / "toy.ipynb").is_file()
    html = (out / "toy.html").read_text()
    assert "<html" in html.lower() and "toy ran with ALPHA =" in html
    assert toy_run["metrics"] is not None
    executed = json.loads((out / "toy.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])


@pytest.mark.slow
def test_run_injects_typed_parameters(toy_run):
    received, types = toy_run["metrics"]["received"], toy_run["metrics"]["types"]
    assert received["ALPHA"] == 3 and types["ALPHA"] == "int"
    assert received["NAME"] == "abc" and types["NAME"] == "str"
    assert received["FLAG"] is True and types["FLAG"] == "bool"
    assert received["OUT_DIR"] == str(toy_run["out"].resolve())
    assert received["DATA_DIR"] == str(toy_run["data"].resolve())
    assert Path(received["DATA_DIR"]).is_absolute()


@pytest.mark.slow
def test_run_smoke_sets_parameter_and_kernel_env(toy_run):
    metrics = toy_run["metrics"]
    assert metrics["received"]["SMOKE"] is True and metrics["types"]["SMOKE"] == "bool"
    assert metrics["env_smoke"] == "1"
    assert toy_run["env_after"] is None  # the CLI's own environment is restored


@pytest.mark.slow
def test_run_smoke_sizes_yield_to_explicit_parameters(toy_run):
    """The toy's setup applies smoke sizes NAME="smoke", SIZE=2: -p NAME=abc wins, SIZE shrinks."""
    received = toy_run["metrics"]["received"]
    assert received["NAME"] == "abc" and received["SIZE"] == 2
    assert "smoke sizes: kept the explicit NAME='abc'" in (toy_run["out"] / "toy.ipynb").read_text()


@pytest.mark.slow
def test_run_records_where_it_ran(toy_run):
    run = toy_run["metrics"]["run"]
    assert run["parameters"] == {"DATA_DIR": str(toy_run["data"].resolve()), "SMOKE": True,
                                 "OUT_DIR": str(toy_run["out"].resolve()), "ALPHA": 3, "NAME": "abc",
                                 "FLAG": True, "SIZE": 2, "WRITE_METRICS": True}
    assert sorted(run["explicit_parameters"]) == ["ALPHA", "DATA_DIR", "FLAG", "NAME"]
    assert run["smoke"] is True and run["smoke_sizes"] == {"SIZE": 2}
    assert run["versions"]["kerasmt"] and run["versions"]["numpy"]
    assert run["command"].startswith("kerasmt run toy --data ") and "--smoke" in run["command"]
    assert run["devices"]["cpu"] and run["host"]
    html = (toy_run["out"] / "toy.html").read_text()
    assert "Run record" in html and html.index("Run record") < html.index("toy ran with ALPHA")
    assert "ALPHA" in html and run["versions"]["numpy"] in html


@pytest.mark.slow
def test_run_kernel_interpreter_and_cwd(toy_run):
    metrics = toy_run["metrics"]
    assert metrics["executable"] == sys.executable
    assert Path(metrics["cwd"]).resolve() == NOTEBOOKS


@pytest.mark.slow
def test_run_prints_outputs_and_headline_metrics(toy_run):
    stdout, out = toy_run["stdout"], toy_run["out"]
    assert str(out / "toy.html") in stdout and str(out / "metrics.json") in stdout
    assert "1 .keras file" in stdout
    assert "summary:\n    alpha = 3\n    score = 0.875\n" in stdout
    assert "received:" in stdout and "executable:" in stdout
    assert "[cell" in toy_run["stderr"]  # progress lines
    # epoch lines of the kernel follow the cell's progress line; other output does not
    assert "\n      toy epoch 1/1 (0.1 s): loss 0.5 | val_loss 0.6\n" in toy_run["stderr"]
    assert "toy ran with ALPHA" not in toy_run["stderr"]
    assert "Passed unknown parameter" not in toy_run["stderr"]  # papermill's own noise is dropped


@pytest.mark.slow
def test_console_script_default_out_and_same_interpreter(script_run):
    proc = script_run["proc"]
    assert proc.returncode == 0, proc.stderr
    metrics = script_run["metrics"]
    assert metrics is not None
    # the decoy kernelspec's interpreter does not exist: the kernel must still be the CLI's
    assert metrics["executable"] == script_run["interpreter"]
    assert f"kernel: python3 on {metrics['executable']}" in proc.stderr
    assert metrics["received"]["SMOKE"] is False and metrics["env_smoke"] is None
    assert metrics["received"]["DATA_DIR"] is None
    assert metrics["received"]["ALPHA"] == 2.5 and metrics["types"]["ALPHA"] == "float"
    assert metrics["received"]["NAME"] == [1, 2]
    assert Path(metrics["received"]["OUT_DIR"]) == script_run["out"].resolve()
    assert (script_run["out"] / "toy.html").is_file() and (script_run["out"] / "toy.ipynb").is_file()


@pytest.mark.slow
def test_broken_notebook_reports_failing_cell(broken_run):
    assert broken_run["code"] == 1
    err = broken_run["stderr"]
    assert "ValueError: boom from cell" in err
    assert "failed in cell 2 (In [" in err  # 1-based, like the progress lines
    assert 'raise ValueError("boom from cell")' in err
    out = broken_run["out"]
    assert "boom from cell" in (out / "broken.html").read_text()
    assert str(out / "broken.html") in err
    assert not (out / "metrics.json").exists()
    executed = json.loads((out / "broken.ipynb").read_text())
    texts = ["".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])]
    assert not any("never reached" in t for t in texts)  # execution stopped at the failing cell


@pytest.mark.slow
def test_run_without_metrics_fails_even_with_stale_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text('{"stale": 1}')  # from an earlier run
    code, _, err = call_main(["run", "toy", "--out", str(out), "-q", "-p", "WRITE_METRICS=False"])
    assert code == 1
    assert "did not write" in err and "metrics.json" in err
    assert (out / "toy.html").is_file()


@pytest.mark.slow
def test_timeout_stops_a_slow_cell(tmp_path, monkeypatch):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    # no kernelspec/language metadata on purpose: the runner must not need it
    nb = new_notebook(cells=[
        new_code_cell("DATA_DIR = None\nSMOKE = False\nOUT_DIR = None", metadata={"tags": ["parameters"]}),
        new_code_cell("import time\ntime.sleep(60)"),
    ])
    nbformat.write(nb, tmp_path / "slow.ipynb")
    monkeypatch.setenv(runner.NOTEBOOKS_ENV, str(tmp_path))
    code, _, err = call_main(["run", "slow", "--out", str(tmp_path / "out"), "--timeout", "1", "-q"])
    assert code == 1
    assert "CellTimeoutError" in err and "time.sleep(60)" in err
    assert (tmp_path / "out" / "slow.html").is_file()


def test_unknown_study_lists_available(capsys):
    assert cli.main(["run", "no_such_study"]) == 2
    err = capsys.readouterr().err
    assert "no_such_study" in err and "broken" in err and "toy" in err


def test_notebook_path_default_is_checkout_notebooks(monkeypatch):
    monkeypatch.delenv(runner.NOTEBOOKS_ENV)
    import kerasmt

    assert runner.notebooks_dir() == Path(kerasmt.__file__).resolve().parent.parent / "notebooks"
    monkeypatch.setenv(runner.NOTEBOOKS_ENV, str(NOTEBOOKS))
    assert runner.notebook_path("toy") == NOTEBOOKS / "toy.ipynb"
    assert runner.available_studies() == ["broken", "toy"]


def test_notebook_parameters_tolerates_comments_with_equals(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    src = "DATA_DIR = None  # root; None = synthetic\nSMOKE: bool = False  # KERASMT_SMOKE=1\nA, B = 1, 2"
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell(src, metadata={"tags": ["parameters"]})])
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert runner.notebook_parameters(tmp_path / "n.ipynb") == ["DATA_DIR", "SMOKE", "A", "B"]
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), tmp_path / "m.ipynb")
    assert runner.notebook_parameters(tmp_path / "m.ipynb") is None


def test_missing_data_dir_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["run", "toy", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, expected",
    [("3", 3), ("-2", -2), ("1e-3", 1e-3), ("2.5", 2.5), ("true", True), ("True", True),
     ("false", False), ("None", None), ("null", None), ("[64, 32]", [64, 32]),
     ("[true, null]", [True, None]), ("abc", "abc"), ("'3'", "3"), ("a b", "a b"),
     ("resnet50_v2", "resnet50_v2"), ("", ""), ("/data/x", "/data/x")],
)
def test_parse_value(text, expected):
    value = runner.parse_value(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("bad", ["ALPHA", "1X=3", "SMOKE=true", "OUT_DIR=/tmp", "DATA_DIR=x", "import=1",
                                 "class=2", "a-b=3", "None=1"])
def test_bad_parameters_are_usage_errors(bad, capsys):
    assert cli.main(["run", "toy", "-p", bad]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and bad.split("=")[0] in err


def test_keyword_parameter_names_the_argument(capsys):
    assert cli.main(["run", "toy", "-p", "import=1"]) == 2
    err = capsys.readouterr().err
    assert "-p 'import=1'" in err and "Python keyword" in err and "SyntaxError" not in err


def test_unknown_parameter_is_an_error_listing_the_study_parameters(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", "toy", "--out", str(out), "-p", "ALPHA=2", "-p", "EPOCHS=3"]) == 2
    err = capsys.readouterr().err
    assert "-p EPOCHS: not a parameter of toy" in err
    assert cli.main(["run", "toy", "--out", str(out), "-p", "ALPHAS=2"]) == 2
    assert "ALPHAS: did you mean ALPHA?" in capsys.readouterr().err
    assert "ALPHA, NAME, FLAG, SIZE, WRITE_METRICS" in err
    assert not out.exists()  # refused before anything ran or was written


# ---------------------------------------------------------------------------------- demo
@pytest.mark.slow
def test_demo_summary_and_failure_exit_code(demo_run):
    assert demo_run["code"] == 1  # broken failed ...
    out = demo_run["out"]
    assert (out / "toy" / "metrics.json").is_file()  # ... and toy still ran after it
    assert (out / "broken" / "broken.html").is_file()
    lines = demo_run["stdout"].splitlines()
    table = {line.split()[0]: line.split() for line in lines if line and line.split()[0] in {"toy", "broken"}}
    assert table["toy"][1] == "ok" and table["broken"][1] == "FAILED"
    assert "alpha=1" in table["toy"] and "score=0.875" in table["toy"]
    assert table["toy"][2].endswith("s")
    assert "no_notebook_yet" not in demo_run["stdout"]
    summary = json.loads((out / "summary.json").read_text())
    status = {s["study"]: s for s in summary["studies"]}
    assert summary["ok"] is False and summary["smoke"] is True
    assert status["toy"]["status"] == "ok" and status["toy"]["headline"] == {"alpha": 1, "score": 0.875}
    assert status["broken"]["status"] == "FAILED" and "boom from cell" in status["broken"]["error"]
    md = (out / "summary.md").read_text()
    assert "| toy | ok |" in md and "| broken | FAILED |" in md
    assert "boom from cell" in demo_run["stderr"]
    assert summary["jobs"] == demo_run["jobs"]
    progress = demo_run["stderr"].splitlines()
    done = [line for line in progress if line.startswith("demo: ")]
    assert [line.split()[1] for line in done] == ["1/2", "2/2"] and "min left" in done[0] and "min left" not in done[1]
    if demo_run["jobs"] > 1:  # concurrent studies' lines carry their name; the timed one runs alone
        assert any(line.startswith("broken: running broken") for line in progress)
        assert any(line.startswith("running toy") for line in progress)
        assert "ran alone" in md
        first_toy = next(i for i, line in enumerate(progress) if line.startswith("running toy"))
        assert all(not line.startswith("broken: ") for line in progress[first_toy:])
    else:
        assert not any(line.startswith("broken: ") for line in progress)


def test_demo_jobs_must_be_positive(tmp_path):
    with pytest.raises(runner.UsageError, match="jobs must be >= 1"):
        runner.run_demo(tmp_path / "demo", studies=["toy"], smoke=True, jobs=0)


def test_demo_unknown_study(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--studies", "toy,nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "toy").exists()


def test_headline_prefers_summary():
    assert runner.headline({"summary": {"acc": 0.5}, "loss": 1.0}) == {"acc": 0.5}
    assert runner.headline({"acc": 0.5, "name": "x", "per_task": {"a": 1}, "hist": [1]}) == {
        "acc": 0.5, "name": "x"}


# ---------------------------------------------------------------------------------- data
@pytest.fixture
def fake_datasets(monkeypatch):
    from kerasmt import datasets

    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.setitem(datasets.STUDY_DATASETS, "fake", "fake_dataset")
    monkeypatch.setitem(datasets.STUDY_DATASETS, "fake2", "fake_dataset_ntrain")


def test_data_synth_passes_n_and_seed(fake_datasets, tmp_path, capsys):
    assert cli.main(["data", "synth", "fake", str(tmp_path / "d"), "--n", "7", "--seed", "3"]) == 0
    assert json.loads((tmp_path / "d" / "call.json").read_text()) == {"n": 7, "seed": 3}
    out = capsys.readouterr().out
    assert "n=7, seed=3" in out and "9 files" in out and "images/" in out


def test_data_synth_maps_n_to_n_train(fake_datasets, tmp_path, capsys):
    assert cli.main(["data", "synth", "fake2", str(tmp_path), "--n", "5"]) == 0
    assert json.loads((tmp_path / "call.json").read_text()) == {"n_train": 5, "n_test": 2, "seed": 0}
    assert "n_train=5" in capsys.readouterr().out


def test_data_check_valid_and_invalid(fake_datasets, tmp_path, capsys):
    root = tmp_path / "d"
    assert cli.main(["data", "synth", "fake", str(root), "--n", "3"]) == 0
    capsys.readouterr()
    assert cli.main(["data", "check", "fake", str(root)]) == 0
    assert capsys.readouterr().out.strip() == f"OK: {root} is a valid fake dataset"

    (root / "images" / "1.txt").unlink()
    (root / "labels.csv").write_text((root / "labels.csv").read_text().replace("images/2.txt,0", "images/2.txt,7"))
    assert cli.main(["data", "check", "fake", str(root)]) == 1
    out = capsys.readouterr().out
    assert "2 errors" in out
    assert "1. " in out and "row 3: image images/1.txt does not exist" in out
    assert "2. " in out and "row 4: label '7' is not 0 or 1" in out


def test_data_fetch(fake_datasets, tmp_path, capsys):
    assert cli.main(["data", "fetch", "fake", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no fetch()" in err and "ask the test suite nicely" in err
    assert cli.main(["data", "fetch", "fake2", str(tmp_path)]) == 0
    assert (tmp_path / "FETCHED").is_file()


def test_data_unknown_study(fake_datasets, tmp_path, capsys):
    assert cli.main(["data", "check", "nope", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "fake" in err


# ------------------------------------------------------------------------------- general
def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    import kerasmt

    assert capsys.readouterr().out.strip() == f"kerasmt {kerasmt.__version__}"
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert "DATA_DIR" in help_text and "--smoke" in help_text and "NAME=VALUE" in help_text
    assert cli.main([]) == 2


def test_cli_import_does_not_load_tensorflow():
    code = ("import sys, kerasmt.cli, kerasmt.runner; "
            "bad = [m for m in ('tensorflow', 'keras', 'papermill') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_list_marks_finished(monkeypatch, capsys):
    monkeypatch.setattr(runner, "FINISHED_STUDIES", ("toy",))
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "toy" in out and "finished" in out and "broken" in out


def test_tune_help_and_strategy_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["tune", "--help"])
    help_text = capsys.readouterr().out
    for text in ("--role", "--local-workers", "--oracle", "--tuner-id", "--worker-gpus", "chief", "utkface"):
        assert text in help_text
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    assert "STRATEGY=mirrored" in capsys.readouterr().out
    code = ("import sys, kerasmt.cli, kerasmt.distributed_tuning; "
            "bad = [m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_list_study_prints_its_parameters(capsys):
    assert cli.main(["list", "toy"]) == 0
    out = capsys.readouterr().out
    assert "parameters of toy" in out and "ALPHA = 1" in out and "SIZE = 10" in out
    assert cli.main(["list", "nope"]) == 2


def _documented_run_parameters() -> list[tuple[str, str, str]]:
    """(where, study, NAME) for every `kerasmt run STUDY ... -p NAME=...` in the docs and --help."""
    import re

    root = Path(__file__).resolve().parents[1]
    texts = {str(p.relative_to(root)): p.read_text() for p in
             [root / "README.md", *sorted((root / "docs").glob("*.md")), *sorted((root / "data").glob("*/README.md"))]}
    texts["kerasmt run --help"] = cli.EPILOG_RUN
    found = []
    for where, text in texts.items():
        for line in text.splitlines():
            match = re.search(r"kerasmt run ([a-z_]+)\b(.*)", line)  # not the placeholder STUDY
            if match:
                found += [(where, match.group(1), name) for name in re.findall(r"-p '?(\w+)=", match.group(2))]
    return found


def test_documented_parameters_are_real_parameters(monkeypatch):
    monkeypatch.delenv(runner.NOTEBOOKS_ENV)
    documented = _documented_run_parameters()
    assert len(documented) >= 10  # the README, docs and data READMEs hold examples
    wrong = []
    for where, study, name in documented:
        declared = runner.notebook_parameters(runner.notebook_path(study))
        if name not in declared or name in runner.RESERVED_PARAMETERS:
            wrong.append(f"{where}: kerasmt run {study} -p {name}")
    assert not wrong, f"examples name parameters their study does not have: {wrong}"


def test_demo_parameters_are_real_parameters(monkeypatch):
    monkeypatch.delenv(runner.NOTEBOOKS_ENV)
    for study, params in runner.DEMO_PARAMETERS.items():
        declared = runner.notebook_parameters(runner.notebook_path(study))
        unknown = sorted(set(params) - set(declared))
        assert not unknown, f"DEMO_PARAMETERS[{study!r}] names {unknown}, not in its parameters cell"
