"""The recommender study (seed 000, problem 1): GMM user clustering on MovieLens genre profiles.

The notebook ``notebooks/recommender.ipynb`` calls these functions one step per cell; they are
also usable on their own::

    from kerasmt.studies import recommender as study
    data = study.load_data("/data/ml-latest-small")        # or None: synthetic MovieLens
    gmm = study.fit_gmm(data)                               # K by BIC over 1..10
    study.recommendation_table(gmm, data)                   # users 4, 42, 314
    holdout = study.run_holdout(data, n_components=gmm.n_components_)
    holdout.table                                           # GMM (hard, soft) vs baselines
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from kerasmt.datasets import movielens as ml
from kerasmt.recommend import (
    EASERecommender,
    GMMRecommender,
    HoldoutResult,
    HoldoutSplit,
    ItemKNNRecommender,
    PopularityRecommender,
    evaluate,
    genre_profiles,
    holdout_split,
    intersection_table,
)

#: ml-latest-small as the report used it
REPORT_DATA: dict[str, int] = {"movies": 9742, "ratings": 100_836, "users": 610, "genres": 19}
#: K range of the report's BIC curve and the K it picked
REPORT_K_RANGE = range(1, 11)
REPORT_BEST_K = 3
#: the report's histogram intersections between its three cluster centres (clusters 1-based)
REPORT_INTERSECTIONS: dict[tuple[int, int], float] = {(1, 2): 0.5, (1, 3): 0.666, (2, 3): 0.5}
#: the report's recommendation table: user -> (cluster, 1-based; top-5 movie ids)
REPORT_RECOMMENDATIONS: dict[int, tuple[int, list[int]]] = {
    4: (3, [356, 318, 1210, 4993, 480]),
    42: (3, [1198, 4993, 480, 2858, 1]),
    314: (1, [2571, 231, 4993, 292, 454]),
}
#: users the report recommended for, and its hold-out protocol
REPORT_USERS: tuple[int, ...] = (4, 42, 314)
REPORT_HOLDOUT: dict[str, int] = {"n_users": 100, "n_remove": 50, "top_n": 5}
#: users with accuracy 0 in the report's hold-out
REPORT_ZERO_ACCURACY_USERS: tuple[int, ...] = (89, 567, 564)
#: method names of the comparison (metrics.json keys)
METHODS: tuple[str, ...] = ("gmm_hard", "gmm_soft", "popularity", "item_knn", "ease")


@dataclass
class RecommenderData:
    """The ratings and movies of one run, where they came from, and the time to read them."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    root: Path
    synthetic: bool
    seconds: float = 0.0

    def describe(self) -> pd.DataFrame:
        """Sizes beside the report's ml-latest-small."""
        r, m = self.ratings, self.movies
        n_users, n_rated = r["userId"].nunique(), r["movieId"].nunique()
        per_user = r.groupby("userId").size()
        ours = {
            "users": n_users,
            "movies": len(m),
            "rated movies": n_rated,
            "ratings": len(r),
            "ratings per user (median)": float(per_user.median()),
            "ratings per user (min)": int(per_user.min()),
            "density": round(len(r) / (n_users * max(n_rated, 1)), 4),
            "mean rating": round(float(r["rating"].mean()), 3),
            "movies without genres": int((m["genres"] == ml.NO_GENRES).sum()),
        }
        report = {"users": 610, "movies": 9742, "rated movies": 9724, "ratings": 100_836,
                  "ratings per user (median)": 70.5, "ratings per user (min)": 20, "density": 0.017,
                  "mean rating": 3.502, "movies without genres": 34}
        return pd.DataFrame({"this run": pd.Series(ours, dtype=object),
                             "ml-latest-small": pd.Series(report, dtype=object)})


def load_data(
    data_dir: str | Path | None = None,
    n_ratings: int = 100_836,
    n_users: int = 610,
    n_movies: int = 9742,
    seed: int = 0,
) -> RecommenderData:
    """MovieLens from ``data_dir`` (any release with the ml-latest-small layout), or the cached
    synthetic MovieLens of the given sizes when ``None``."""
    start = time.perf_counter()
    synthetic = data_dir is None
    root = ml.synthetic_root(n=n_ratings, n_users=n_users, n_movies=n_movies, seed=seed) if synthetic \
        else ml.resolve_root(data_dir)
    ratings, movies = ml.load(root)
    return RecommenderData(ratings, movies, Path(root), synthetic, time.perf_counter() - start)


def build_profiles(data: RecommenderData) -> tuple[pd.DataFrame, float]:
    """The users' genre profiles (users x genres) and the seconds the build took."""
    start = time.perf_counter()
    profiles = genre_profiles(data.ratings, data.movies)
    return profiles, time.perf_counter() - start


def sample_rows(n_rows: int, max_rows: int | None, seed: int = 0) -> np.ndarray:
    """Sorted positions of at most ``max_rows`` of ``n_rows`` rows (all when there are fewer),
    drawn with ``seed``: t-SNE of 162 k ml-25m users would take long, a 5 k sample shows the same."""
    if max_rows is None or n_rows <= max_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=int(max_rows), replace=False))


def fit_gmm(
    data: RecommenderData,
    k_range: Sequence[int] = REPORT_K_RANGE,
    n_seeds: int = 5,
    covariance_type: str = "full",
    seed: int = 0,
    n_components: int | str = "bic",
) -> GMMRecommender:
    """The report's GMM recommender on all ratings, K chosen by the seed-averaged BIC."""
    model = GMMRecommender(n_components=n_components, k_range=k_range, n_seeds=n_seeds,
                           covariance_type=covariance_type, random_state=seed)
    return model.fit_ratings(data.ratings, data.movies)


def save_gmm(model: GMMRecommender, data: RecommenderData, out_dir: str | Path) -> Path:
    """Save the fitted GMM recommender with the movie titles as
    ``<out_dir>/models/recommender_gmm.joblib`` (apply it with ``kerasmt recommend PATH --user ID``
    or :func:`kerasmt.recommend.load_model`)."""
    from kerasmt.recommend import save_model

    return save_model(model, Path(out_dir) / "models" / "recommender_gmm.joblib", data.movies)


def report_intersections(model: GMMRecommender) -> pd.DataFrame:
    """Histogram intersection between every pair of cluster centres, beside the report's
    values where the report has that pair (clusters numbered from 0 here, from 1 there)."""
    table = intersection_table(model.cluster_centers_.rename(index=lambda k: f"cluster {k}"))
    report = [REPORT_INTERSECTIONS.get((i + 1, j + 1)) for i, j in
              ((int(a.split()[1]), int(b.split()[1])) for a, b in zip(table["a"], table["b"]))]
    table["report (its clusters 1-3)"] = pd.Series(report, dtype="Float64")
    table["intersection"] = table["intersection"].round(3)
    return table


def titles(movies: pd.DataFrame, ids: Sequence[int]) -> list[str]:
    """Titles of movie ids (``?`` for unknown ids)."""
    lookup = pd.Series(movies["title"].to_numpy(), index=movies["movieId"].to_numpy())
    return [str(lookup.get(int(i), "?")) for i in ids]


def existing_users(data: RecommenderData, users: Sequence[int] = REPORT_USERS) -> list[int]:
    """The users of ``users`` present in the ratings (all of 4, 42, 314 on ml-latest-small and
    on the synthetic data, whose ids are 1..n_users)."""
    have = set(np.unique(data.ratings["userId"].to_numpy()).tolist())
    return [int(u) for u in users if int(u) in have]


def recommendation_table(model: GMMRecommender, data: RecommenderData,
                         users: Sequence[int] = REPORT_USERS, n: int = 5) -> pd.DataFrame:
    """The report's table: per user their cluster, cluster probabilities, hard and soft top-``n``
    movie ids (first titles), and the report's recommendations (ml-latest-small movie ids)."""
    users = existing_users(data, users)
    assigned = model.assign(users)
    rows = []
    for u in users:
        hard = model.recommend(u, n)
        soft = model.recommend(u, n, soft=True)
        proba = assigned.loc[u].drop("cluster").to_numpy(dtype=float)
        report = REPORT_RECOMMENDATIONS.get(u)
        rows.append({
            "user": u,
            "ratings": int((data.ratings["userId"] == u).sum()),
            "cluster": int(assigned.loc[u, "cluster"]),
            "P(cluster)": " ".join(f"{p:.2f}" for p in proba),
            "hard top-5 (movieId)": hard.tolist(),
            "soft top-5 (movieId)": soft.tolist(),
            "first hard pick": titles(data.movies, hard[:1])[0] if len(hard) else "",
            "report: cluster, top-5": "" if report is None else f"{report[0]}: {report[1]}",
        })
    return pd.DataFrame(rows).set_index("user")


@dataclass
class HoldoutComparison:
    """The hold-out split, each method's fitted model and result, and the comparison table."""

    split: HoldoutSplit
    models: dict
    results: dict[str, HoldoutResult]
    fit_seconds: dict[str, float]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def make_models(n_components: int | str, k_range: Sequence[int] = REPORT_K_RANGE, n_seeds: int = 5,
                covariance_type: str = "full", seed: int = 0, knn_neighbors: int = 20,
                ease_l2: float = 500.0) -> dict:
    """The compared recommenders, unfitted: the GMM (used for both its hard and soft lists) and
    the three baselines."""
    return {
        "gmm": GMMRecommender(n_components=n_components, k_range=k_range, n_seeds=n_seeds,
                              covariance_type=covariance_type, random_state=seed),
        "popularity": PopularityRecommender(),
        "item_knn": ItemKNNRecommender(n_neighbors=knn_neighbors),
        "ease": EASERecommender(l2=ease_l2),
    }


def run_holdout(
    data: RecommenderData,
    n_components: int | str,
    n_users: int = 100,
    min_ratings: int = 100,
    n_remove: int = 50,
    seed: int = 0,
    k: int = 10,
    accuracy_n: int = 5,
    n_seeds: int = 5,
    covariance_type: str = "full",
    knn_neighbors: int = 20,
    ease_l2: float = 500.0,
) -> HoldoutComparison:
    """The report's hold-out for every method on the same split: fit on the remaining ratings,
    recommend for the sampled users, score accuracy@``accuracy_n`` (the report's), precision,
    recall and NDCG at ``k`` and coverage. The GMM keeps the K chosen on all data
    (``n_components``)."""
    split = holdout_split(data.ratings, n_users=n_users, min_ratings=min_ratings, n_remove=n_remove, seed=seed)
    models = make_models(n_components, n_seeds=n_seeds, covariance_type=covariance_type, seed=seed,
                         knn_neighbors=knn_neighbors, ease_l2=ease_l2)
    results: dict[str, HoldoutResult] = {}
    fit_seconds: dict[str, float] = {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit_ratings(split.train, data.movies)
        fit_seconds[name] = time.perf_counter() - start
        if name == "gmm":
            results["gmm_hard"] = evaluate(model, split, k, accuracy_n, name="gmm_hard", soft=False)
            results["gmm_soft"] = evaluate(model, split, k, accuracy_n, name="gmm_soft", soft=True)
        else:
            results[name] = evaluate(model, split, k, accuracy_n, name=name)
    comparison = HoldoutComparison(split, models, results, fit_seconds)
    comparison.table = comparison_table(results)
    return comparison


def comparison_table(results: Mapping[str, HoldoutResult]) -> pd.DataFrame:
    """Methods x metrics (means over the hold-out users; coverage over all of them)."""
    table = pd.DataFrame({name: res.summary for name, res in results.items()}).T
    table.index.name = "method"
    return table.round(4)


def zero_accuracy_users(result: HoldoutResult, metric: str = "accuracy@5") -> list[int]:
    """Hold-out users whose ``metric`` is 0 (the report inspected them: its users 89, 567, 564)."""
    per_user = result.per_user[metric]
    return [int(u) for u in per_user.index[per_user.to_numpy() == 0]]


def profiles_of_users(model: GMMRecommender, users: Sequence[int]) -> pd.DataFrame:
    """Genre profiles of known users with their cluster in the row label."""
    rows = model.interactions_.user_rows(users)
    frame = model.profiles_.iloc[rows].copy()
    frame.index = [f"user {u} (cluster {model.labels_[r]})" for u, r in zip(users, rows)]
    return frame


def metrics_summary(
    data: RecommenderData,
    model: GMMRecommender,
    holdout: HoldoutComparison,
    profiles_seconds: float,
    k: int = 10,
    accuracy_n: int = 5,
) -> dict:
    """The study's ``metrics.json``: ``bic`` (best K, mean BIC per K), ``holdout`` (per method:
    accuracy@5, precision@10, recall@10, ndcg@10, coverage), ``timing`` and a flat ``summary``."""
    keys = [f"accuracy@{accuracy_n}", f"precision@{k}", f"recall@{k}", f"ndcg@{k}", "coverage"]
    hold = {name: {key: float(res.summary[key]) for key in keys} for name, res in holdout.results.items()}
    summary: dict = {"best_k": int(model.n_components_)}
    for name in holdout.results:
        summary[f"{name}.accuracy@{accuracy_n}"] = round(hold[name][f"accuracy@{accuracy_n}"], 3)
    for name in holdout.results:
        summary[f"{name}.ndcg@{k}"] = round(hold[name][f"ndcg@{k}"], 3)
    return {
        "data": {"synthetic": data.synthetic, "users": int(data.ratings["userId"].nunique()),
                 "movies": int(len(data.movies)), "ratings": int(len(data.ratings))},
        "bic": {"best_k": int(model.n_components_),
                "values": {int(kk): float(v) for kk, v in model.bic_["mean"].items()},
                "report_best_k": REPORT_BEST_K},
        "clusters": {"sizes": model.cluster_sizes_.tolist()},
        "holdout": hold,
        "holdout_protocol": {"n_users": int(len(holdout.split.users)), "n_remove": holdout.split.n_remove,
                             "min_ratings": holdout.split.min_ratings, "seed": holdout.split.seed,
                             "k": k, "accuracy_n": accuracy_n},
        "timing": {"profiles_s": float(profiles_seconds), "fit_s": float(model.fit_seconds_),
                   "load_s": float(data.seconds),
                   "holdout_fit_s": {name: float(s) for name, s in holdout.fit_seconds.items()}},
        "summary": summary,
    }
