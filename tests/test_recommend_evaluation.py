"""The report's hold-out protocol, ranking metrics, histogram intersection, and the synthetic
data's promise: personalised baselines clearly beat popularity on it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kerasmt.datasets import movielens as ml
from kerasmt.recommend import (
    EASERecommender,
    GMMRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    accuracy,
    evaluate,
    histogram_intersection,
    holdout_split,
    intersection_table,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)


@pytest.fixture(scope="module")
def demo():
    """The demo-size synthetic MovieLens (ml-latest-small's sizes), in memory."""
    return ml.synthesize_frames(seed=0)


def test_holdout_split_follows_the_protocol(demo):
    ratings, _ = demo
    split = holdout_split(ratings, n_users=40, min_ratings=100, n_remove=30, seed=1)
    counts = ratings.groupby("userId").size()
    assert len(split.users) == 40 and (counts[split.users] >= 100).all()
    assert (split.test.groupby("userId").size() == 30).all()
    assert set(split.test["userId"]) == set(split.users.tolist())
    assert len(split.train) + len(split.test) == len(ratings)
    key = lambda f: set(zip(f.userId, f.movieId))  # noqa: E731
    assert not key(split.train) & key(split.test)
    assert key(split.train) | key(split.test) == key(ratings)
    same = holdout_split(ratings, n_users=40, min_ratings=100, n_remove=30, seed=1)
    other = holdout_split(ratings, n_users=40, min_ratings=100, n_remove=30, seed=2)
    assert same.test.equals(split.test)
    assert not other.test.equals(split.test)
    relevant = split.relevant()
    assert len(relevant) == 40 and all(len(r) == 30 for r in relevant)
    everyone = holdout_split(ratings, n_users=None, min_ratings=100, n_remove=30)
    assert len(everyone.users) == int((counts >= 100).sum())


def test_holdout_split_rejects_impossible_requests(demo):
    ratings, _ = demo
    with pytest.raises(ValueError, match="must exceed n_remove"):
        holdout_split(ratings, min_ratings=50, n_remove=50)
    with pytest.raises(ValueError, match="only .* users have >= 3000 ratings"):
        holdout_split(ratings, n_users=100, min_ratings=3000)


def test_ranking_metrics_known_values():
    recommended = np.array([[10, 20, 30, 40, 50], [7, -1, -1, -1, -1], [1, 2, 3, 4, 5]])
    relevant = [np.array([20, 50, 60, 70]), np.array([7]), np.array([], dtype=np.int64)]
    table = ranking_metrics(recommended, relevant, k=5, accuracy_n=5)
    # user 0: hits at ranks 2 and 5
    assert table.loc[0, "accuracy@5"] == pytest.approx(0.4)
    assert table.loc[0, "precision@5"] == pytest.approx(0.4)
    assert table.loc[0, "recall@5"] == pytest.approx(0.5)
    dcg = 1 / np.log2(3) + 1 / np.log2(6)
    idcg = sum(1 / np.log2(i + 2) for i in range(4))
    assert table.loc[0, "ndcg@5"] == pytest.approx(dcg / idcg)
    # user 1: one recommendation, a hit -> the report's accuracy |A n B| / |A| is 1
    assert table.loc[1, "accuracy@5"] == 1.0 and table.loc[1, "precision@5"] == pytest.approx(0.2)
    assert table.loc[1, "ndcg@5"] == 1.0 and table.loc[1, "recall@5"] == 1.0
    # user 2: nothing relevant
    assert table.loc[2].drop("hits@5").eq(0).all()
    assert accuracy([10, 20, 30, 40, 50], [20, 50, 60, 70]) == pytest.approx(0.4)
    assert precision_at_k([10, 20, 30], [20], 3) == pytest.approx(1 / 3)
    assert recall_at_k([10, 20, 30], [20, 99], 3) == pytest.approx(0.5)
    assert ndcg_at_k([20, 10], [20], 2) == pytest.approx(1.0)
    assert ndcg_at_k([10, 20], [20], 2) == pytest.approx(1 / np.log2(3))


def test_histogram_intersection():
    assert histogram_intersection([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert histogram_intersection([1, 0, 0], [0, 2, 2]) == 0.0
    assert histogram_intersection([1, 1, 0, 0], [0, 1, 1, 0]) == pytest.approx(0.5)
    assert histogram_intersection([1, 1], [1, 3], normalize=False) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="non-negative"):
        histogram_intersection([1, -1], [1, 1])
    with pytest.raises(ValueError, match="same length"):
        histogram_intersection([1, 2], [1, 2, 3])
    centres = pd.DataFrame([[1, 0], [0, 1], [1, 1]], index=["a", "b", "c"])
    table = intersection_table(centres)
    assert table[["a", "b"]].values.tolist() == [["a", "b"], ["a", "c"], ["b", "c"]]
    assert table["intersection"].tolist() == pytest.approx([0.0, 0.5, 0.5])


def test_evaluate_counts_hits_and_coverage():
    ratings = pd.DataFrame({"userId": [1] * 6 + [2] * 6 + [3] * 2,
                            "movieId": [1, 2, 3, 4, 5, 6, 1, 2, 3, 7, 8, 9, 1, 2],
                            "rating": 4.0})
    split = holdout_split(ratings, n_users=2, min_ratings=6, n_remove=3, seed=0)
    model = PopularityRecommender().fit_ratings(split.train)
    result = evaluate(model, split, k=3, accuracy_n=2)
    recs = model.recommend_batch(split.users, 3)
    np.testing.assert_array_equal(result.recommendations, recs)
    expected = ranking_metrics(recs, split.relevant(), 3, 2)
    np.testing.assert_allclose(result.per_user.to_numpy(dtype=float), expected.to_numpy(dtype=float))
    assert result.per_user.index.tolist() == split.users.tolist()
    distinct = len(np.unique(recs[recs >= 0]))
    assert result.summary["coverage"] == pytest.approx(distinct / model.n_recommendable_)
    assert result.summary["accuracy@2"] == pytest.approx(expected["accuracy@2"].mean())


def test_personalised_baselines_beat_popularity_on_the_synthetic_data(demo):
    """The synthetic MovieLens has structure: EASE and item-kNN clearly beat popularity on the
    report's hold-out, and the GMM is no worse than popularity (as in the report)."""
    ratings, movies = demo
    split = holdout_split(ratings, n_users=100, min_ratings=100, n_remove=50, seed=0)
    scores = {}
    for name, model in {"popularity": PopularityRecommender(), "item_knn": ItemKNNRecommender(),
                        "ease": EASERecommender(), "gmm": GMMRecommender(n_components=3, n_seeds=2)}.items():
        model.fit_ratings(split.train, movies)
        scores[name] = evaluate(model, split).summary
    pop = scores["popularity"]
    for name in ("item_knn", "ease"):
        assert scores[name]["accuracy@5"] > pop["accuracy@5"] + 0.1, scores
        assert scores[name]["ndcg@10"] > pop["ndcg@10"] + 0.1, scores
        assert scores[name]["coverage"] > pop["coverage"], scores
    assert scores["gmm"]["ndcg@10"] >= pop["ndcg@10"] - 0.02, scores
    assert all(0 <= v <= 1 for s in scores.values() for v in s.values())


# ------------------------------------------------------------------------ issue 17: protocols
def _timed() -> pd.DataFrame:
    rows = [(u, m, float(1 + (u + m) % 5), 1000 * u + 37 * m % 101) for u in range(1, 7) for m in range(1, 13)]
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])


def test_time_ordered_holdout_removes_each_users_latest_ratings():
    ratings = _timed()
    split = holdout_split(ratings, n_users=4, min_ratings=10, n_remove=3, seed=2, order="time")
    assert split.order == "time"
    for user in split.users:
        mine = ratings[ratings.userId == user].sort_values("timestamp")
        assert sorted(split.test[split.test.userId == user].movieId) == sorted(mine.movieId.iloc[-3:])
    random = holdout_split(ratings, n_users=4, min_ratings=10, n_remove=3, seed=2)
    assert random.order == "random" and not random.test.equals(split.test)
    with pytest.raises(ValueError, match="order must be 'random' or 'time'"):
        holdout_split(ratings, n_users=4, min_ratings=10, n_remove=3, order="latest")
    with pytest.raises(ValueError, match="needs the ratings' timestamps"):
        holdout_split(ratings.drop(columns="timestamp"), n_users=4, min_ratings=10, n_remove=3, order="time")


def test_relevance_threshold_counts_only_liked_removed_movies():
    ratings = _timed()
    split = holdout_split(ratings, n_users=3, min_ratings=10, n_remove=6, seed=0)
    liked = split.relevant(4.0)
    for user, ids in zip(split.users, liked):
        removed = split.test[split.test.userId == user]
        assert ids.tolist() == sorted(removed.movieId[removed.rating >= 4])
    model = PopularityRecommender().fit_ratings(split.train)
    every = evaluate(model, split, k=5, accuracy_n=5)
    good = evaluate(model, split, k=5, accuracy_n=5, min_rating=4.0)
    np.testing.assert_array_equal(good.recommendations, every.recommendations)
    assert (good.per_user["hits@5"] <= every.per_user["hits@5"]).all()
    again = evaluate(model, split, k=5, accuracy_n=5, min_rating=4.0, recommendations=every.recommendations)
    assert again.summary == good.summary


def test_paired_bootstrap_intervals_and_verdicts():
    from kerasmt.recommend import paired_bootstrap

    rng = np.random.default_rng(0)
    a = rng.random(200)
    same = paired_bootstrap(a, a)
    assert same["diff"] == 0 and same["low"] == same["high"] == 0 and same["verdict"] == "tie"
    up = paired_bootstrap(a + 0.1, a)
    assert up["verdict"] == "better" and up["low"] == pytest.approx(0.1) and up["high"] == pytest.approx(0.1)
    noisy = paired_bootstrap(a, a[::-1], n_boot=1000, seed=3)
    assert noisy["low"] < noisy["diff"] < noisy["high"] and noisy["verdict"] == "tie"
    assert paired_bootstrap(a, a[::-1], n_boot=1000, seed=3) == noisy  # seeded
    assert paired_bootstrap(a - 0.5, a)["verdict"] == "worse"
    with pytest.raises(ValueError, match="same non-zero length"):
        paired_bootstrap(a, a[:5])
