"""`kerasmt tune`: keras-tuner's distributed mode with a chief oracle and workers on 127.0.0.1.

The argument checks run in-process. The searches run `kerasmt tune ... --local-workers 2` as a
subprocess bounded by TUNE_TIMEOUT (and `--timeout`, which stops the chief and workers itself):
a tiny search (tests/_tiny_search.py) with 4 trials, checked trial by trial, and the real UTKFace
Model A search at smoke sizes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kerasmt import cli
from kerasmt import distributed_tuning as dt

TESTS = Path(__file__).resolve().parent
TUNE_TIMEOUT = 240


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), env.get("PYTHONPATH")) if p)
    for name in (dt.ENV_TUNER_ID, dt.ENV_ORACLE_IP, dt.ENV_ORACLE_PORT):
        env.pop(name, None)
    return env


def _tune(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "kerasmt.cli", "tune", *args, "--timeout", str(TUNE_TIMEOUT - 20)],
                              capture_output=True, text=True, env=env, timeout=TUNE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"kerasmt tune did not finish within {TUNE_TIMEOUT} s: {exc.stderr}")


# ------------------------------------------------------------------------------------ in-process
@pytest.mark.parametrize("address", ["localhost", "host:", ":80", "host:http", "host:70000"])
def test_bad_oracle_addresses_name_the_option(address):
    with pytest.raises(dt.TuneError, match="--oracle must be HOST:PORT"):
        dt.parse_oracle(address)


def test_tuner_environment_follows_keras_tuner_rules():
    env = dt.tuner_environment("chief", "10.0.0.1:8000")
    assert env == {dt.ENV_TUNER_ID: "chief", dt.ENV_ORACLE_IP: "10.0.0.1", dt.ENV_ORACLE_PORT: "8000"}
    worker = dt.tuner_environment("worker", "10.0.0.1:8000")
    assert worker[dt.ENV_TUNER_ID].startswith("worker-") and "chief" not in worker[dt.ENV_TUNER_ID]
    with pytest.raises(dt.TuneError, match="of the chief must contain 'chief'"):
        dt.tuner_environment("chief", "h:1", "boss")
    with pytest.raises(dt.TuneError, match="of a worker must not contain 'chief'"):
        dt.tuner_environment("worker", "h:1", "chief2")
    with pytest.raises(dt.TuneError, match="--role must be one of chief, worker"):
        dt.tuner_environment("ps", "h:1")
    assert 0 < dt.free_port() < 65536


def test_unknown_studies_are_clear_errors():
    with pytest.raises(dt.TuneError, match=r"unknown study 'fairface'.*\['utkface'\]"):
        dt.resolve_search("fairface")
    with pytest.raises(dt.TuneError, match="cannot import the search module 'no_such_module'"):
        dt.resolve_search("no_such_module:search")
    assert dt.resolve_search("utkface").project_name == "model_a"


def test_cli_tune_argument_errors(tmp_path, capsys):
    assert cli.main(["tune", "utkface", "--role", "chief", "--out", str(tmp_path)]) == 2
    assert "--role needs --oracle HOST:PORT" in capsys.readouterr().err
    assert cli.main(["tune", "utkface", "--role", "worker", "--oracle", "h:1", "--tuner-id", "chief-2",
                     "--out", str(tmp_path)]) == 2
    assert "must not contain 'chief'" in capsys.readouterr().err
    assert cli.main(["tune", "utkface", "--local-workers", "0", "--out", str(tmp_path)]) == 2
    assert "--local-workers must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --role and --local-workers exclude each other
        cli.main(["tune", "utkface", "--role", "chief", "--local-workers", "2"])
    assert os.environ.get(dt.ENV_ORACLE_IP) is None  # nothing was set by the failed calls


# ------------------------------------------------------------------------------------ searches
def test_chief_and_two_workers_run_four_trials_each_recorded_once(tmp_path):
    out = tmp_path / "out"
    done = _tune(["_tiny_search:search", "--local-workers", "2", "--trials", "4", "--out", str(out)],
                 _env(TINY_WORKERS="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    for tuner_id in ("chief", "worker0", "worker1"):
        assert f"{tuner_id} exited with 0" in done.stderr
    project = out / "tuning" / "search"
    # the chief's oracle recorded 4 trials, each once, all completed with a score
    records = [json.loads(p.read_text()) for p in sorted(project.glob("trial_*/trial.json"))]
    assert sorted(r["trial_id"] for r in records) == ["0", "1", "2", "3"]
    assert all(r["status"] == "COMPLETED" and r["score"] is not None for r in records)
    assert len({r["hyperparameters"]["values"]["units"] for r in records}) == 4  # 4 distinct configurations
    oracle = json.loads((project / "oracle.json").read_text())
    assert oracle["ongoing_trials"] == {} and sorted(oracle["end_order"]) == ["0", "1", "2", "3"]
    # every trial was run by exactly one worker, and both workers ran trials; the chief ran none
    runs = [line.split() for line in (out / "tuning" / "runs.txt").read_text().splitlines()]
    assert sorted(trial for _, trial in runs) == ["0", "1", "2", "3"]
    assert {tuner for tuner, _ in runs} == {"worker0", "worker1"}
    # the table printed at the end (from the chief's files), one row per trial
    assert "4 trials recorded in" in done.stdout
    assert sum(line.split()[1] == "COMPLETED" for line in done.stdout.splitlines()[2:]) == 4
    chief_log = (out / "logs" / "tune_chief.log").read_text()
    assert "4 trials recorded in" in chief_log


@pytest.mark.slow
def test_utkface_model_a_search_runs_distributed_at_smoke_sizes(tmp_path):
    out = tmp_path / "out"
    done = _tune(["utkface", "--smoke", "--local-workers", "2", "--trials", "2", "--out", str(out)], _env())
    assert done.returncode == 0, done.stderr[-3000:]
    project = out / "tuning" / "model_a"
    table = dt.recorded_trials(project)
    assert list(table["trial_id"]) == ["0", "1"] and set(table["status"]) == {"COMPLETED"}
    # the report's CNNs 1 and 2 (the "configs" search replays Table 2 in order)
    assert table[["n_blocks", "n_dense", "units", "split_point"]].values.tolist() == [[3, 1, 100, 3], [3, 1, 300, 3]]
    chief_log = (out / "logs" / "tune_chief.log").read_text()
    assert "gender_accuracy" in chief_log and "age_mae" in chief_log


def test_launcher_imports_no_study_and_resolves_by_name_or_entry_point(monkeypatch):
    code = ("import sys, kerasmt.distributed_tuning as dt; "
            "bad = [m for m in sys.modules if m.startswith('kerasmt.studies')]; assert not bad, bad; "
            "assert dt.SEARCHES['utkface'] == 'kerasmt.studies.utkface_search:search'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    spec = dt.resolve_search("utkface")
    from kerasmt.studies import utkface_search

    assert spec.search is utkface_search.search and spec.prepare is utkface_search.prepare
    by_entry_point = dt.resolve_search("kerasmt.studies.utkface_search:search")
    assert by_entry_point.search is spec.search and by_entry_point.project_name == "model_a"
    monkeypatch.setitem(dt.SEARCHES, "tiny", "_tiny_search:search")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    assert dt.resolve_search("tiny").project_name == "search"
    dt.register_search("tiny2", spec.search)
    try:
        assert dt.resolve_search("tiny2").search is spec.search
    finally:
        dt.SEARCHES.pop("tiny2")
    with pytest.raises(dt.TuneError, match="without ':'"):
        dt.register_search("a:b", "x:y")
    with pytest.raises(dt.TuneError, match="has no search function 'nope'"):
        dt.resolve_search("kerasmt.studies.utkface_search:nope")
