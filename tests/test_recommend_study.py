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


def test_holdout_k_on_training_ratings_bootstrap_soft_protocols_and_segments(data):
    kw = dict(n_users=15, min_ratings=40, n_remove=10, seed=1, n_seeds=1, k_range=(1, 2, 3), n_boot=200)
    holdout = study.run_holdout(data, **kw)
    gmm = holdout.models["gmm"]
    assert gmm.bic_.index.tolist() == [1, 2, 3] and holdout.k_train == gmm.n_components_
    assert len(gmm.user_ids_) == 320 and len(gmm.interactions_.matrix.data) == len(holdout.split.train)
    boot = holdout.bootstrap
    assert boot.index.tolist() == [m for m in study.METHODS if m != "popularity"]
    assert set(boot["accuracy@5 verdict"]) <= {"better", "worse", "tie"}
    assert (boot["accuracy@5 low"] <= boot["accuracy@5 diff"]).all()
    assert holdout.soft["temperature"] == 19.0
    assert 0 <= holdout.soft["same_top_k_soft"] <= 1
    text = study.bootstrap_sentences(boot)
    row = boot.loc["ease"]
    assert f"ease: accuracy@5 {row['accuracy@5 diff']:+.3f} vs popularity" in text
    assert "top posterior above 0.99" in study.soft_sentence(holdout.soft)
    protocols = study.protocol_table(data, first=holdout, **kw)
    assert protocols.columns.tolist() == ["random, any removed", "random, rated >= 4", "time, any removed",
                                          "time, rated >= 4"]
    assert protocols.loc["gmm_hard", "random, any removed"] == pytest.approx(holdout.results["gmm_hard"].summary["accuracy@5"])
    assert study.protocol_sentence(protocols).count("\n") == 3
    # planted segments of the synthetic generator: ARI of the clusters against them
    truth = study.ml.planted_segments(**data.synth_params)
    assert len(truth) == 320 and truth.nunique() == 4
    segments = study.segment_recovery(data, {"a": gmm, "b": holdout.models["gmm_shares"]})
    assert segments["ARI vs planted segments"].between(-1, 1).all()
    assert segments.loc["b", "features"] == "watch_share"
    assert "ARI" in study.closing_sentence(holdout, segments)
    assert "component" in study.collapsed_sentence(gmm)
    metrics = study.metrics_summary(data, gmm, holdout, 0.1, protocols=protocols, segments=segments)
    assert metrics["bic"]["best_k_train"] == holdout.k_train
    assert set(metrics["bootstrap"]) == set(boot.index) and metrics["soft"] == holdout.soft
    assert set(metrics["protocols"]) == set(protocols.columns)


def test_saved_study_model_applies(data, tmp_path):
    from kerasmt import recommend

    gmm = study.fit_gmm(data, k_range=[1, 2], n_seeds=1, seed=1)
    path = study.save_gmm(gmm, data, tmp_path)
    assert path == tmp_path / "models" / "recommender_gmm.joblib"
    table = recommend.recommend_titles(recommend.load_model(path), user=4, n=3)
    assert table["title"].tolist() == study.titles(data.movies, gmm.recommend(4, 3))
