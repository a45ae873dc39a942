"""The report's hold-out protocol and ranking metrics.

Protocol (report): pick ``n_users`` random users with at least ``min_ratings`` ratings, remove
``n_remove`` of their rated movies (at random), fit on what is left, recommend, and score each
user by the report's accuracy ``|A ∩ B| / |A|`` (A = the ``accuracy_n`` recommended movies,
B = the removed ones). :func:`evaluate` adds precision@k, recall@k (hits / |B|), NDCG@k (binary
relevance) and catalogue coverage (distinct movies in anyone's top-k / movies the model can
recommend). Everything random is fixed by ``seed``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from kerasmt.datasets.movielens import clean_ratings


@dataclass
class HoldoutSplit:
    """``train``: the ratings minus the removed ones; ``test``: the removed ratings;
    ``users``: the sampled users (sorted)."""

    train: pd.DataFrame
    test: pd.DataFrame
    users: np.ndarray
    n_remove: int
    min_ratings: int
    seed: int

    order: str = "random"

    def relevant(self, min_rating: float | None = None) -> list[np.ndarray]:
        """The removed movie ids of each user of :attr:`users`, in that order: all of them (the
        report's "any removed movie"), or those rated at least ``min_rating`` (e.g. 4: "liked")."""
        test = self.test if min_rating is None else self.test[self.test["rating"] >= min_rating]
        groups = test.groupby("userId")["movieId"].apply(lambda s: np.sort(s.to_numpy()))
        return [groups.get(u, np.empty(0, dtype=np.int64)) for u in self.users]


def holdout_split(
    ratings: pd.DataFrame,
    n_users: int | None = 100,
    min_ratings: int = 100,
    n_remove: int = 50,
    seed: int = 0,
    order: str = "random",
) -> HoldoutSplit:
    """The report's hold-out: ``n_users`` random users (``None``: all) among those with at least
    ``min_ratings`` ratings, each losing ``n_remove`` rated movies: random ones (``order=
    "random"``, the report) or their latest ones (``"time"``: by timestamp, ties at random), which
    asks the model to predict a user's future rather than fill gaps in their past. ``min_ratings``
    must exceed ``n_remove`` so every test user keeps a history. Vectorised; fixed by ``seed``."""
    if order not in ("random", "time"):
        raise ValueError(f"order must be 'random' or 'time', got {order!r}")
    if n_remove < 1:
        raise ValueError(f"n_remove must be >= 1, got {n_remove}")
    if min_ratings <= n_remove:
        raise ValueError(f"min_ratings ({min_ratings}) must exceed n_remove ({n_remove}) so that "
                         f"every test user keeps some ratings")
    ratings = clean_ratings(ratings, source="ratings")
    counts = ratings["userId"].value_counts()
    eligible = np.sort(counts.index[counts >= min_ratings].to_numpy())
    if n_users is None:
        n_users = len(eligible)
    if n_users < 1:
        raise ValueError(f"n_users must be >= 1 or None, got {n_users}")
    if len(eligible) < n_users:
        raise ValueError(f"only {len(eligible)} users have >= {min_ratings} ratings, fewer than "
                         f"n_users={n_users}; lower min_ratings or n_users")
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(eligible, size=n_users, replace=False))
    chosen = np.flatnonzero(np.isin(ratings["userId"].to_numpy(), users))
    key = rng.random(len(chosen))
    if order == "time":
        if "timestamp" not in ratings.columns or not ratings["timestamp"].to_numpy().any():
            raise ValueError("order='time' needs the ratings' timestamps (the column is missing or all 0)")
        latest_first = -ratings["timestamp"].to_numpy()[chosen]
        rank = np.lexsort((key, latest_first, ratings["userId"].to_numpy()[chosen]))
    else:
        rank = np.lexsort((key, ratings["userId"].to_numpy()[chosen]))
    ranked = chosen[rank]
    position = pd.Series(ratings["userId"].to_numpy()[ranked]).groupby(
        ratings["userId"].to_numpy()[ranked]).cumcount().to_numpy()
    removed = np.zeros(len(ratings), dtype=bool)
    removed[ranked[position < n_remove]] = True
    train = ratings.loc[~removed].reset_index(drop=True)
    test = ratings.loc[removed].sort_values(["userId", "movieId"]).reset_index(drop=True)
    return HoldoutSplit(train, test, users, int(n_remove), int(min_ratings), int(seed), order)


def ranking_metrics(
    recommended: np.ndarray,
    relevant: Sequence[np.ndarray],
    k: int = 10,
    accuracy_n: int = 5,
) -> pd.DataFrame:
    """Per-user metrics of ranked lists (``recommended``: users x L movie ids, best first,
    ``-1`` = no item) against sets of relevant ids.

    Columns: ``accuracy@{accuracy_n}`` (the report: hits among the first ``accuracy_n`` / number
    of those recommended), ``precision@k`` (hits / k), ``recall@k`` (hits / |relevant|),
    ``ndcg@k`` (binary gains, ideal DCG of min(k, |relevant|) hits) and ``hits@k``.
    """
    recommended = np.atleast_2d(np.asarray(recommended, dtype=np.int64))
    if len(relevant) != len(recommended):
        raise ValueError(f"{len(recommended)} recommendation lists but {len(relevant)} relevant sets")
    width = max(k, accuracy_n)
    if recommended.shape[1] < width:
        recommended = np.pad(recommended, ((0, 0), (0, width - recommended.shape[1])), constant_values=-1)
    n_rel = np.array([len(np.unique(r)) for r in relevant], dtype=np.int64)
    rel_user = np.repeat(np.arange(len(relevant)), [len(r) for r in relevant])
    rel_items = np.concatenate([np.asarray(r, dtype=np.int64) for r in relevant]) if len(relevant) else np.empty(0, np.int64)
    rel_keys = rel_user.astype(np.int64) * (1 << 32) + rel_items
    rec = recommended[:, :width]
    rec_keys = np.arange(len(rec))[:, None].astype(np.int64) * (1 << 32) + rec
    hit = np.isin(rec_keys, rel_keys) & (rec >= 0)
    valid = rec >= 0
    hits_a = hit[:, :accuracy_n].sum(axis=1)
    shown = valid[:, :accuracy_n].sum(axis=1)
    hits_k = hit[:, :k].sum(axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hit[:, :k] * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.clip(np.minimum(n_rel, k) - 1, 0, None)] * (n_rel > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            f"accuracy@{accuracy_n}": np.where(shown > 0, hits_a / np.maximum(shown, 1), 0.0),
            f"precision@{k}": hits_k / k,
            f"recall@{k}": np.where(n_rel > 0, hits_k / np.maximum(n_rel, 1), 0.0),
            f"ndcg@{k}": np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1), 0.0),
            f"hits@{k}": hits_k,
        })


def _one(recommended: Sequence[int], relevant: Sequence[int], k: int, accuracy_n: int) -> pd.Series:
    return ranking_metrics(np.asarray([list(recommended)], dtype=np.int64).reshape(1, -1),
                           [np.asarray(list(relevant), dtype=np.int64)], k, accuracy_n).iloc[0]


def accuracy(recommended: Sequence[int], removed: Sequence[int]) -> float:
    """The report's accuracy ``|A ∩ B| / |A|`` of one recommendation list A and removed set B."""
    n = len(recommended)
    return float(_one(recommended, removed, n, n)[f"accuracy@{n}"]) if n else 0.0


def precision_at_k(recommended: Sequence[int], relevant: Sequence[int], k: int = 10) -> float:
    """Hits among the first ``k`` recommendations, divided by ``k``."""
    return float(_one(recommended, relevant, k, 1)[f"precision@{k}"])


def recall_at_k(recommended: Sequence[int], relevant: Sequence[int], k: int = 10) -> float:
    """Hits among the first ``k`` recommendations, divided by the number of relevant items."""
    return float(_one(recommended, relevant, k, 1)[f"recall@{k}"])


def ndcg_at_k(recommended: Sequence[int], relevant: Sequence[int], k: int = 10) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary relevance."""
    return float(_one(recommended, relevant, k, 1)[f"ndcg@{k}"])


def histogram_intersection(a: Sequence[float], b: Sequence[float], normalize: bool = True) -> float:
    """Histogram intersection ``sum_i min(a_i, b_i)`` of two non-negative histograms, each first
    divided by its sum when ``normalize`` (Swain & Ballard): 1 for identical shapes, 0 for
    histograms with no bin in common (the report's definition). Two empty histograms give 1."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"histograms must be 1-D of the same length, got {a.shape} and {b.shape}")
    if (a < 0).any() or (b < 0).any():
        raise ValueError("histograms must be non-negative")
    if normalize:
        sa, sb = a.sum(), b.sum()
        if sa == 0 or sb == 0:
            return 1.0 if sa == sb else 0.0
        a, b = a / sa, b / sb
    return float(np.minimum(a, b).sum())


def intersection_table(centres: pd.DataFrame, normalize: bool = True) -> pd.DataFrame:
    """Histogram intersection of every pair of rows of ``centres`` (e.g. the GMM's cluster
    centres, one bar per genre), as the report's table: columns ``a``, ``b``, ``intersection``."""
    rows = []
    labels = list(centres.index)
    values = centres.to_numpy(dtype=np.float64)
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            rows.append({"a": labels[i], "b": labels[j],
                         "intersection": histogram_intersection(values[i], values[j], normalize)})
    return pd.DataFrame(rows, columns=["a", "b", "intersection"])


@dataclass
class HoldoutResult:
    """One model's hold-out evaluation: ``summary`` (mean metrics and coverage), ``per_user``
    (index userId), ``recommendations`` (users x max(k, accuracy_n) movie ids)."""

    name: str
    summary: dict
    per_user: pd.DataFrame
    recommendations: np.ndarray
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def evaluate(
    model,
    split: HoldoutSplit,
    k: int = 10,
    accuracy_n: int = 5,
    name: str | None = None,
    chunk_size: int = 512,
    min_rating: float | None = None,
    recommendations: np.ndarray | None = None,
    **recommend_kwargs,
) -> HoldoutResult:
    """Score a recommender fitted on ``split.train`` on the removed movies of ``split.users``.

    Returns a :class:`HoldoutResult` whose ``summary`` holds the means over users of
    ``accuracy@{accuracy_n}`` (the report's metric), ``precision@k``, ``recall@k``, ``ndcg@k``,
    and ``coverage`` (distinct movies in the top-k lists / movies the model can recommend).
    ``recommend_kwargs`` go to ``recommend_batch`` (e.g. ``soft=True`` for the GMM).
    ``min_rating``: only removed movies rated at least this count as relevant (None: every
    removed movie, the report). ``recommendations``: lists already computed for ``split.users``
    (to score them against another relevance without recommending again).
    """
    start = time.perf_counter()
    width = max(k, accuracy_n)
    recs = recommendations if recommendations is not None else \
        model.recommend_batch(split.users, n=width, chunk_size=chunk_size, **recommend_kwargs)
    per_user = ranking_metrics(recs, split.relevant(min_rating), k, accuracy_n)
    per_user.index = pd.Index(split.users, name="userId")
    top_k = recs[:, :k]
    distinct = np.unique(top_k[top_k >= 0])
    summary = {c: float(per_user[c].mean()) for c in per_user.columns if not c.startswith("hits")}
    summary["coverage"] = float(len(distinct) / max(model.n_recommendable_, 1))
    return HoldoutResult(name or type(model).__name__, summary, per_user, recs, time.perf_counter() - start)


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Mean of the paired differences ``a - b`` (per user, same users in the same order) and its
    percentile bootstrap interval at ``level``: users resampled with replacement ``n_boot`` times
    (seeded). ``verdict`` is ``"better"`` / ``"worse"`` when the interval excludes 0, else
    ``"tie"`` (a difference inside the noise of the sampled users)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired_bootstrap needs two 1-D arrays of the same non-zero length, got {a.shape} and {b.shape}")
    diff = a - b
    rng = np.random.default_rng(seed)
    means = np.empty(int(n_boot))
    for lo in range(0, int(n_boot), 500):  # (500 x users) index blocks: bounded memory
        idx = rng.integers(0, len(diff), size=(min(500, int(n_boot) - lo), len(diff)))
        means[lo: lo + len(idx)] = diff[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    verdict = "better" if low > 0 else "worse" if high < 0 else "tie"
    return {"diff": float(diff.mean()), "low": float(low), "high": float(high), "verdict": verdict,
            "n_users": int(len(diff)), "n_boot": int(n_boot), "level": float(level)}
