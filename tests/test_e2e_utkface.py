"""``kerasmt run utkface --smoke`` and ``kerasmt data synth|check utkface`` end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def _kerasmt(*args, **kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "kerasmt", *args], capture_output=True, text=True, env=env, **kw)


def _registered() -> bool:
    from kerasmt.datasets import STUDY_DATASETS

    return "utkface" in STUDY_DATASETS


@pytest.mark.slow
def test_run_utkface_smoke_writes_every_output(tmp_path):
    out = tmp_path / "utk"
    proc = _kerasmt("run", "utkface", "--smoke", "--out", str(out), timeout=1800)
    assert proc.returncode == 0, proc.stderr[-5000:]
    for name in ("utkface.ipynb", "utkface.html", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for model in ("model_a", "model_b", "cross_stitch"):
        assert 0.0 <= metrics[model]["gender_accuracy"] <= 1.0, model
        assert metrics[model]["age_mae"] >= 0.0, model
    assert len(metrics["search"]) == 2  # two trials in smoke mode
    for trial in metrics["search"]:
        assert {"cnn", "n_blocks", "n_dense", "units", "split_point", "score", "gender_accuracy", "age_mae"} <= set(trial)
    assert metrics["params"]["Model A, CNN 10"] == 24_067_586
    assert metrics["model_a_weighted"]["loss_weights"] == {"age": 1.0, "gender": 100.0}
    assert metrics["cross_stitch_alphas"]["lr_multiplier"] == 100.0 and metrics["cross_stitch_alphas"]["max_moved"] > 0
    assert set(metrics["summary"]) >= {"model_a.gender_accuracy", "model_a.age_mae", "model_b.age_mae",
                                       "cross_stitch.age_mae", "baseline.mean_age_mae"}
    models = sorted(p.name for p in (out / "models").glob("*.keras") if not p.name.endswith(".predict.keras"))
    predictors = sorted(p.name for p in (out / "models").glob("*.predict.keras"))  # raw-image models
    assert models == ["cross_stitch_seed0.keras", "model_a_seed0.keras", "model_a_weighted_seed0.keras", "model_b.keras"]
    assert predictors == sorted(m.replace(".keras", ".predict.keras") for m in models)
    splits = out / "splits"
    assert (splits / "subset.csv").is_file()
    test = pd.read_csv(splits / "final_test.csv")
    assert list(test.columns) == ["file", "age", "gender", "race", "datetime"]
    assert (out / "tuning" / "model_a").is_dir() and (out / "tuning" / "model_b_heads").is_dir()


def _finished() -> bool:
    from kerasmt.runner import FINISHED_STUDIES

    return "utkface" in FINISHED_STUDIES


@pytest.mark.slow
@pytest.mark.skipif(_finished(), reason="tests/test_notebooks.py runs nbval on every finished study")
def test_notebook_nbval_smoke(tmp_path):
    """The committed (executed) notebook runs in smoke mode and its # NBVAL_CHECK_OUTPUT cells
    (parameter counts, the report's Table 2 ranking, the cross-stitch arithmetic) reproduce."""
    import nbformat

    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "utkface.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    checked = [c for c in nb.cells if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]
    assert len(checked) >= 3 and all(c.get("outputs") for c in checked), "notebook committed without outputs"
    env = dict(os.environ, KERASMT_SMOKE="1", KERASMT_RUNS_DIR=str(tmp_path / "runs"), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-cell-timeout=900",
         str(notebook)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout


@pytest.mark.skipif(not _registered(), reason="utkface not yet in kerasmt.datasets.STUDY_DATASETS")
def test_data_synth_then_check(tmp_path):
    root = tmp_path / "utk"
    proc = _kerasmt("data", "synth", "utkface", str(root), "--n", "20", "--seed", "3", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert len(list(root.glob("*.jpg.chip.jpg"))) == 23  # 20 faces + 3 malformed names
    warned = _kerasmt("data", "check", "utkface", str(root), timeout=600)
    assert warned.returncode == 0  # the three malformed names are warnings: load skips them, counted
    assert warned.stdout.count("malformed") + warned.stderr.count("malformed") == 3
    assert _kerasmt("data", "check", "utkface", str(root), "--strict", timeout=600).returncode == 1
    for path in root.glob("*.jpg.chip.jpg"):
        if path.name.count("_") == 2:
            path.unlink()
    ok = _kerasmt("data", "check", "utkface", str(root), timeout=600)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
