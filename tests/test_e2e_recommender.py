"""``kerasmt run recommender --smoke`` end to end, the notebook under nbval, and
``kerasmt data synth|check movielens``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from kerasmt.datasets import STUDY_DATASETS
from kerasmt.runner import FINISHED_STUDIES

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "recommender.ipynb"
METHODS = {"gmm_hard", "gmm_soft", "gmm_tempered", "gmm_shares", "popularity", "item_knn", "ease"}
METRICS = {"accuracy@5", "precision@10", "recall@10", "ndcg@10", "coverage"}


def _kerasmt(*args, **kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "kerasmt", *args], capture_output=True, text=True, env=env, **kw)


@pytest.mark.slow
def test_run_recommender_smoke_writes_the_metrics(tmp_path):
    out = tmp_path / "rec"
    proc = _kerasmt("run", "recommender", "--smoke", "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:]
    for name in ("recommender.ipynb", "recommender.html", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    bic = metrics["bic"]
    assert set(bic["values"]) == {"1", "2", "3", "4"}  # the smoke K range
    assert bic["best_k"] == int(min(bic["values"], key=bic["values"].get))
    assert set(metrics["holdout"]) == METHODS
    for method, values in metrics["holdout"].items():
        assert set(values) == METRICS, method
        assert all(0.0 <= v <= 1.0 for v in values.values()), (method, values)
    assert metrics["timing"]["profiles_s"] > 0 and metrics["timing"]["fit_s"] > 0
    summary = metrics["summary"]
    assert summary["best_k"] == bic["best_k"]
    assert {f"{m}.accuracy@5" for m in METHODS} <= set(summary)
    assert "best_k = " in proc.stdout  # kerasmt prints the summary


@pytest.mark.slow
@pytest.mark.skipif("recommender" in FINISHED_STUDIES,
                    reason="tests/test_notebooks.py runs every finished study's notebook under nbval")
def test_recommender_notebook_nbval_smoke(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    checked = [c for c in nb.cells if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]
    assert len(checked) >= 3 and all(c.get("outputs") for c in checked)
    env = dict(os.environ, KERASMT_SMOKE="1", KERASMT_RUNS_DIR=str(tmp_path / "runs"), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-cell-timeout=600", str(NOTEBOOK)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout


@pytest.mark.skipif("movielens" not in STUDY_DATASETS,
                    reason="kerasmt.datasets.STUDY_DATASETS has no 'movielens' entry yet")
def test_data_synth_then_check_movielens(tmp_path):
    root = tmp_path / "ml"
    proc = _kerasmt("data", "synth", "movielens", str(root), "--n", "8000", "--seed", "2", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(root / "ratings.csv")) == 8000
    ok = _kerasmt("data", "check", "movielens", str(root), timeout=600)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
    ratings = pd.read_csv(root / "ratings.csv")
    ratings.loc[4, "rating"] = 11.0
    ratings.to_csv(root / "ratings.csv", index=False)
    bad = _kerasmt("data", "check", "movielens", str(root), timeout=600)
    assert bad.returncode == 1
    assert "line 6: rating 11 outside the scale" in bad.stdout
