"""The study module's steps on a tiny synthetic MovieLens (what the notebook calls, cell by cell)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import kerasmt
from kerasmt.studies import recommender as study


@pytest.fixture(scope="module")
def data():
    return study.load_data(None, n_ratings=12_000, n_users=320, n_movies=900, seed=1)


def test_study_steps_and_metrics(data, tmp_path):
    assert data.synthetic and len(data.ratings) == 12_000
    described = data.describe()
    assert described.loc["users", "this run"] == 320 and described.loc["ratings", "ml-latest-small"] == 100_836
    profiles, seconds = study.build_profiles(data)
    assert profiles.shape == (320, 19) and seconds > 0
    gmm = study.fit_gmm(data, k_range=[1, 2, 3], n_seeds=2, seed=1)
    inter = study.report_intersections(gmm)
    k = gmm.n_components_
    assert len(inter) == k * (k - 1) // 2
    assert inter["intersection"].between(0, 1).all()
    table = study.recommendation_table(gmm, data, users=(4, 42, 314, 999), n=5)
    assert table.index.tolist() == [4, 42, 314]  # 999 does not exist and is left out
    assert all(len(r) == 5 for r in table["hard top-5 (movieId)"])
    assert table.loc[4, "report: cluster, top-5"] == "3: [356, 318, 1210, 4993, 480]"
    assert study.titles(data.movies, [data.movies["movieId"].iloc[0], -5])[1] == "?"
    holdout = study.run_holdout(data, k, n_users=15, min_ratings=40, n_remove=10, seed=1, n_seeds=1)
    assert holdout.table.index.tolist() == list(study.METHODS)
    zero = study.zero_accuracy_users(holdout.results["gmm_hard"])
    assert set(zero) <= set(holdout.split.users.tolist())
    metrics = study.metrics_summary(data, gmm, holdout, seconds)
    assert set(metrics["holdout"]) == set(study.METHODS)
    assert set(metrics["holdout"]["ease"]) == {"accuracy@5", "precision@10", "recall@10", "ndcg@10", "coverage"}
    assert metrics["bic"]["best_k"] == k and set(metrics["bic"]["values"]) == {1, 2, 3}
    assert {"profiles_s", "fit_s"} <= set(metrics["timing"])
    assert metrics["summary"]["best_k"] == k
    saved = json.loads(kerasmt.save_metrics(metrics, tmp_path).read_text())
    assert saved["bic"]["values"].keys() == {"1", "2", "3"}
    rows = study.sample_rows(320, 100, seed=0)
    assert len(rows) == 100 and np.all(np.diff(rows) > 0)
    assert len(study.sample_rows(50, 100)) == 50
