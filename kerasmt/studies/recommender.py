"""The recommender study (seed 000, problem 1): GMM user clustering on MovieLens genre profiles.

The notebook ``notebooks/recommender.ipynb`` calls these functions one step per cell; they are
also usable on their own::

    from kerasmt.studies import recommender as study
    data = study.load_data("/data/ml-latest-small")        # or None: synthetic MovieLens
    gmm = study.fit_gmm(data)                               # K by BIC over 1..10
    study.recommendation_table(gmm, data)                   # users 4, 42, 314
    holdout = study.run_holdout(data)                       # K by BIC on the training ratings
    holdout.table                                           # GMM (hard, soft) vs baselines
    holdout.bootstrap                                       # differences to popularity, 95 % CI
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
    paired_bootstrap,
    holdout_split,
    interaction_matrix,
    intersection_table,
)

#: ml-latest-small as the report used it
REPORT_DATA: dict[str, int] = {"movies": 9742, "ratings": 100_836, "users": 610, "genres": 19}
#: K range of the report's BIC curve and the K it picked
REPORT_K_RANGE: tuple[int, ...] = tuple(range(1, 11))
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
#: method names of the comparison (metrics.json keys): the report's GMM (hard, soft with its
#: plain posteriors, soft with tempered posteriors), the GMM on genre watch shares, baselines
METHODS: tuple[str, ...] = ("gmm_hard", "gmm_soft", "gmm_tempered", "gmm_shares", "popularity", "item_knn", "ease")
#: the hold-out protocols compared: (which movies are removed, which removed movies count)
PROTOCOLS: tuple[tuple[str, float | None], ...] = (("random", None), ("random", 4.0), ("time", None), ("time", 4.0))


@dataclass
class RecommenderData:
    """The ratings and movies of one run, where they came from, and the time to read them."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    root: Path
    synthetic: bool
    seconds: float = 0.0
    #: the synthetic generator's arguments (None for real data): they give the planted segments
    synth_params: dict | None = None

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
    params = dict(n=n_ratings, n_users=n_users, n_movies=n_movies, seed=seed) if synthetic else None
    return RecommenderData(ratings, movies, Path(root), synthetic, time.perf_counter() - start, params)


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
    """The hold-out split, each method's fitted model and result, the comparison table, the
    paired-bootstrap differences to popularity, and the soft-vs-hard statistics."""

    split: HoldoutSplit
    models: dict
    results: dict[str, HoldoutResult]
    fit_seconds: dict[str, float]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    bootstrap: pd.DataFrame = field(default_factory=pd.DataFrame)
    soft: dict = field(default_factory=dict)
    temperature: float = 1.0
    min_rating: float | None = None

    @property
    def k_train(self) -> int:
        """K chosen by BIC on the training ratings (the hold-out users' removed movies unseen)."""
        return int(self.models["gmm"].n_components_)


def make_models(n_components: int | str = "bic", k_range: Sequence[int] = REPORT_K_RANGE, n_seeds: int = 5,
                covariance_type: str = "full", seed: int = 0, knn_neighbors: int = 20,
                ease_l2: float = 500.0) -> dict:
    """The compared recommenders, unfitted: the report's GMM (used for its hard, soft and
    tempered lists), the GMM on genre watch shares, and the three baselines."""
    gmm = dict(n_components=n_components, k_range=tuple(k_range), n_seeds=n_seeds,
               covariance_type=covariance_type, random_state=seed)
    return {
        "gmm": GMMRecommender(**gmm),
        "gmm_shares": GMMRecommender(features="watch_share", **gmm),
        "popularity": PopularityRecommender(),
        "item_knn": ItemKNNRecommender(n_neighbors=knn_neighbors),
        "ease": EASERecommender(l2=ease_l2),
    }


def run_holdout(
    data: RecommenderData,
    n_components: int | str = "bic",
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
    k_range: Sequence[int] = REPORT_K_RANGE,
    order: str = "random",
    min_rating: float | None = None,
    temperature: float | None = None,
    n_boot: int = 2000,
    warn_collapsed: bool = False,
) -> HoldoutComparison:
    """The report's hold-out for every method on the same split: fit on the remaining ratings,
    recommend for the sampled users, score accuracy@``accuracy_n`` (the report's), precision,
    recall and NDCG at ``k`` and coverage, and a paired bootstrap of each method's per-user
    difference to popularity.

    The GMM chooses K by BIC on the **training ratings only** (``n_components="bic"``; an int
    fixes it). ``order`` / ``min_rating``: :func:`~kerasmt.recommend.holdout_split`'s removal
    order and the rating a removed movie needs to count as relevant (None: any, the report).
    ``temperature`` of the tempered soft lists: default the number of genres.
    """
    import warnings

    split = holdout_split(data.ratings, n_users=n_users, min_ratings=min_ratings, n_remove=n_remove,
                          seed=seed, order=order)
    models = make_models(n_components, k_range=k_range, n_seeds=n_seeds, covariance_type=covariance_type,
                         seed=seed, knn_neighbors=knn_neighbors, ease_l2=ease_l2)
    results: dict[str, HoldoutResult] = {}
    fit_seconds: dict[str, float] = {}
    width = max(k, accuracy_n)
    temp = 1.0
    # one checked rating matrix for every model (building it per model costs more than popularity)
    item_ids = np.union1d(data.movies["movieId"].to_numpy(), split.train["movieId"].to_numpy())
    inter = interaction_matrix(split.train, item_ids=item_ids, source="training ratings", validate=False)
    for name, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            if not warn_collapsed:  # reported by collapsed_components_ and collapsed_sentence instead
                warnings.filterwarnings("ignore", message="GMMRecommender: .* collapsed")
            model.fit_interactions(inter, data.movies)
        fit_seconds[name] = time.perf_counter() - start
        if name == "gmm":
            temp = float(len(model.genres_)) if temperature is None else float(temperature)
            variants = {"gmm_hard": {"soft": False}, "gmm_soft": {"soft": True},
                        "gmm_tempered": {"soft": True, "temperature": temp}}
        else:
            variants = {name: {}}
        for label, kwargs in variants.items():
            results[label] = evaluate(model, split, k, accuracy_n, name=label, min_rating=min_rating, **kwargs)
    comparison = HoldoutComparison(split, models, results, fit_seconds, temperature=temp, min_rating=min_rating)
    comparison.table = comparison_table(results)
    comparison.bootstrap = bootstrap_table(results, metrics=(f"accuracy@{accuracy_n}", f"ndcg@{k}"),
                                           n_boot=n_boot, seed=seed)
    gmm = models["gmm"]
    hard = results["gmm_hard"].recommendations[:, :k]
    comparison.soft = {
        "top_posterior_above_0.99": float((gmm.gmm_.predict_proba(gmm.profiles_.to_numpy()).max(axis=1) > 0.99).mean()),
        "tempered_top_posterior_above_0.99": float((gmm.proba_of_profiles(gmm.profiles_.to_numpy(), temp).max(axis=1) > 0.99).mean()),
        "tempered_mean_top_posterior": float(gmm.proba_of_profiles(gmm.profiles_.to_numpy(), temp).max(axis=1).mean()),
        "same_top_k_soft": float((results["gmm_soft"].recommendations[:, :k] == hard).all(axis=1).mean()),
        "same_top_k_tempered": float((results["gmm_tempered"].recommendations[:, :k] == hard).all(axis=1).mean()),
        "temperature": temp,
    }
    return comparison


def comparison_table(results: Mapping[str, HoldoutResult]) -> pd.DataFrame:
    """Methods x metrics (means over the hold-out users; coverage over all of them)."""
    table = pd.DataFrame({name: res.summary for name, res in results.items()}).T
    table.index.name = "method"
    return table.round(4)


def bootstrap_table(results: Mapping[str, HoldoutResult], baseline: str = "popularity",
                    metrics: Sequence[str] = ("accuracy@5", "ndcg@10"), n_boot: int = 2000,
                    seed: int = 0) -> pd.DataFrame:
    """Each method's mean per-user difference to ``baseline`` with a paired bootstrap 95 %
    interval (same users resampled), and the verdict: better / worse, or a tie when the interval
    holds 0. Rows: methods; columns: ``<metric> diff``, ``low``, ``high``, ``verdict``."""
    rows = {}
    base = results[baseline].per_user
    for name, res in results.items():
        if name == baseline:
            continue
        row = {}
        for metric in metrics:
            b = paired_bootstrap(res.per_user[metric].to_numpy(), base[metric].to_numpy(), n_boot=n_boot, seed=seed)
            row.update({f"{metric} diff": round(b["diff"], 4), f"{metric} low": round(b["low"], 4),
                        f"{metric} high": round(b["high"], 4), f"{metric} verdict": b["verdict"]})
        rows[name] = row
    table = pd.DataFrame(rows).T
    table.index.name = f"method - {baseline}"
    return table


def protocol_table(
    data: RecommenderData,
    metric: str = "accuracy@5",
    protocols: Sequence[tuple[str, float | None]] = PROTOCOLS,
    first: HoldoutComparison | None = None,
    **holdout_kwargs,
) -> pd.DataFrame:
    """``metric`` of every method under each hold-out protocol: random or time-ordered removal
    (``order``), any removed movie or only those rated >= 4 as relevant. A comparison already
    run with the random order (``first``) is reused for its split's lists; the time-ordered
    split refits every model. Columns ``"<order>, <relevant>"``; a last row ``K (train BIC)``."""
    columns = {}
    fitted: dict[str, HoldoutComparison] = {}
    if first is not None:
        fitted[first.split.order] = first
    for order, min_rating in protocols:
        if order not in fitted:
            fitted[order] = run_holdout(data, order=order, **holdout_kwargs)
        comp = fitted[order]
        k_eval = int(metric.split("@")[1]) if metric.startswith(("precision", "recall", "ndcg")) else None
        col = {}
        for name, res in comp.results.items():
            kwargs = {"k": k_eval or holdout_kwargs.get("k", 10)}
            acc_n = int(metric.split("@")[1]) if metric.startswith("accuracy") else holdout_kwargs.get("accuracy_n", 5)
            model = comp.models["gmm" if name.startswith("gmm_") and name != "gmm_shares" else name]
            again = evaluate(model, comp.split, kwargs["k"], acc_n, name=name, min_rating=min_rating,
                             recommendations=res.recommendations)
            col[name] = again.summary[metric]
        col["K (train BIC)"] = comp.k_train
        columns[f"{order}, {'any removed' if min_rating is None else f'rated >= {min_rating:g}'}"] = col
    table = pd.DataFrame(columns)
    table.index.name = metric
    return table


def segment_recovery(data: RecommenderData, models: Mapping[str, GMMRecommender]) -> pd.DataFrame | None:
    """Adjusted Rand index of each fitted GMM's clusters against the segments the synthetic
    generator planted (None for real data, which has no ground truth), with K and the number
    of collapsed components."""
    if not data.synthetic or data.synth_params is None:
        return None
    from sklearn.metrics import adjusted_rand_score

    truth = ml.planted_segments(**data.synth_params)
    rows = {}
    for name, model in models.items():
        planted = truth.reindex(model.user_ids_).to_numpy()
        rows[name] = {"features": model.features, "K": int(model.n_components_),
                      "ARI vs planted segments": round(float(adjusted_rand_score(planted, model.labels_)), 3),
                      "collapsed components": int(len(model.collapsed_components_))}
    return pd.DataFrame(rows).T


# ------------------------------------------------------------- sentences generated from numbers
def bootstrap_sentences(bootstrap: pd.DataFrame, metric: str = "accuracy@5") -> str:
    """One line per method: its difference to popularity in ``metric``, the 95 % interval and
    what it means (better, worse, or a tie when the interval holds 0)."""
    lines = []
    for name, row in bootstrap.iterrows():
        verdict = row[f"{metric} verdict"]
        meaning = {"better": "better than popularity", "worse": "worse than popularity",
                   "tie": "a tie with popularity (the interval holds 0)"}[verdict]
        lines.append(f"{name}: {metric} {row[f'{metric} diff']:+.3f} vs popularity, 95 % CI "
                     f"[{row[f'{metric} low']:+.3f}, {row[f'{metric} high']:+.3f}]: {meaning}")
    return "\n".join(lines)


def soft_sentence(soft: Mapping[str, float], k: int = 10) -> str:
    """What the soft lists change, from :attr:`HoldoutComparison.soft`."""
    return (f"{soft['top_posterior_above_0.99']:.0%} of the training users have a top posterior above 0.99, "
            f"so the soft top-{k} equals the hard one for {soft['same_top_k_soft']:.0%} of the hold-out "
            f"users. Tempered (T = {soft['temperature']:g}): {soft['tempered_top_posterior_above_0.99']:.0%} "
            f"above 0.99, mean top posterior {soft['tempered_mean_top_posterior']:.2f}, and the top-{k} "
            f"equals the hard one for {soft['same_top_k_tempered']:.0%} of the users; see gmm_soft and "
            f"gmm_tempered in the tables for whether that helps.")


def protocol_sentence(protocols: pd.DataFrame) -> str:
    """Per protocol: the best method and where the report's GMM ranks against popularity."""
    lines = []
    methods = protocols.drop(index="K (train BIC)", errors="ignore")
    for col in methods.columns:
        values = methods[col].astype(float)
        gap = values["gmm_hard"] - values["popularity"]
        lines.append(f"{col}: best {values.idxmax()} ({values.max():.3f}); gmm_hard {values['gmm_hard']:.3f} "
                     f"vs popularity {values['popularity']:.3f} ({gap:+.3f})")
    return "\n".join(lines)


def collapsed_sentence(model: GMMRecommender) -> str:
    """The collapsed components of a fitted GMM in words."""
    table = model.collapsed_components_
    if not len(table):
        return f"No collapsed component among the {model.n_components_} clusters."
    parts = [f"cluster {r.cluster} ({r.users} users: every one has {', '.join(f'{g} = {v:g}' for g, v in zip(r.genres, r.value))})"
             for r in table.itertuples()]
    return (f"{len(table)} of {model.n_components_} components collapsed (variance at reg_covar): "
            + "; ".join(parts) + ". Such a cluster is defined by what its users never rated.")


def closing_sentence(holdout: HoldoutComparison, segments: pd.DataFrame | None, k: int = 10,
                     accuracy_n: int = 5) -> str:
    """The study's conclusion, generated from the hold-out table, the bootstrap and the ARIs."""
    table, boot = holdout.table, holdout.bootstrap
    metric = f"accuracy@{accuracy_n}"
    best = table[f"ndcg@{k}"].idxmax()
    verdict = boot.loc["gmm_hard", f"{metric} verdict"]
    gmm_vs_pop = {"tie": "is a tie with global popularity", "better": "beats global popularity",
                  "worse": "is worse than global popularity"}[verdict]
    beaten = [m for m in ("item_knn", "ease") if boot.loc[m, f"{metric} verdict"] == "better"]
    text = (f"The report's GMM (hard) {gmm_vs_pop} in {metric} ({boot.loc['gmm_hard', f'{metric} diff']:+.3f}, "
            f"95 % CI [{boot.loc['gmm_hard', f'{metric} low']:+.3f}, {boot.loc['gmm_hard', f'{metric} high']:+.3f}]). "
            f"Best NDCG@{k}: {best} ({table.loc[best, f'ndcg@{k}']:.3f}). ")
    if beaten:
        text += f"{' and '.join(beaten)} beat popularity beyond the noise. "
    if segments is not None:
        rep, shares = segments.iloc[0], segments.iloc[-1]
        text += (f"The report's features recover the generator's planted segments at ARI "
                 f"{float(rep['ARI vs planted segments']):.2f}; genre watch shares at "
                 f"{float(shares['ARI vs planted segments']):.2f}.")
    return text


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
    protocols: pd.DataFrame | None = None,
    segments: pd.DataFrame | None = None,
) -> dict:
    """The study's ``metrics.json``: ``bic`` (best K on all ratings, and on the hold-out's
    training ratings), ``holdout`` (per method: accuracy@5, precision@10, recall@10, ndcg@10,
    coverage), ``bootstrap`` (differences to popularity with 95 % intervals), ``soft``,
    ``protocols``, ``segments`` (ARI against the synthetic generator's planted segments),
    ``collapsed`` components, ``timing`` and a flat ``summary``."""
    keys = [f"accuracy@{accuracy_n}", f"precision@{k}", f"recall@{k}", f"ndcg@{k}", "coverage"]
    hold = {name: {key: float(res.summary[key]) for key in keys} for name, res in holdout.results.items()}
    summary: dict = {"best_k": int(model.n_components_), "best_k_train": holdout.k_train}
    for name in holdout.results:
        summary[f"{name}.accuracy@{accuracy_n}"] = round(hold[name][f"accuracy@{accuracy_n}"], 3)
    for name in holdout.results:
        summary[f"{name}.ndcg@{k}"] = round(hold[name][f"ndcg@{k}"], 3)
    return {
        "data": {"synthetic": data.synthetic, "users": int(data.ratings["userId"].nunique()),
                 "movies": int(len(data.movies)), "ratings": int(len(data.ratings))},
        "bic": {"best_k": int(model.n_components_), "best_k_train": holdout.k_train,
                "values": {int(kk): float(v) for kk, v in model.bic_["mean"].items()},
                "report_best_k": REPORT_BEST_K},
        "clusters": {"sizes": model.cluster_sizes_.tolist(),
                     "collapsed": model.collapsed_components_.to_dict(orient="records")},
        "holdout": hold,
        "bootstrap": holdout.bootstrap.to_dict(orient="index"),
        "soft": dict(holdout.soft),
        "protocols": {} if protocols is None else
        {col: {str(m): float(v) for m, v in protocols[col].items()} for col in protocols.columns},
        "segments": {} if segments is None else segments.to_dict(orient="index"),
        "holdout_protocol": {"n_users": int(len(holdout.split.users)), "n_remove": holdout.split.n_remove,
                             "min_ratings": holdout.split.min_ratings, "seed": holdout.split.seed,
                             "k": k, "accuracy_n": accuracy_n},
        "timing": {"profiles_s": float(profiles_seconds), "fit_s": float(model.fit_seconds_),
                   "load_s": float(data.seconds),
                   "holdout_fit_s": {name: float(s) for name, s in holdout.fit_seconds.items()}},
        "summary": summary,
    }
