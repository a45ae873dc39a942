"""GMM user clustering on genre profiles and cluster-popularity recommendations (the report).

1. Each user's feature is their genre profile (:func:`~kerasmt.recommend.profiles.genre_profiles`).
2. A Gaussian mixture is fitted for every K of ``k_range`` with ``n_seeds`` seeds; K minimises
   the seed-averaged BIC (the report: K = 3 on ml-latest-small).
3. A user's cluster (hard: ``predict``) or cluster probabilities (soft: ``predict_proba``) come
   from their profile, so a new user is assigned from their ratings alone.
4. Hard recommendation: the movies rated by the users of the user's cluster, ordered by number
   of ratings in the cluster (ties: global number of ratings, then movie id), minus the movies the
   user rated, top ``n``. Soft: each movie scores ``sum_k P(k | user) * share_k(movie)`` where
   ``share_k`` is the fraction of cluster ``k``'s users who rated it, i.e. the clusters' popular
   lists mixed in proportion to ``predict_proba``.
"""
from __future__ import annotations

import contextlib
import time
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits
from sklearn.utils.validation import check_is_fitted

from kerasmt.recommend.base import BaseRecommender, popularity_order, rank_scores
from kerasmt.recommend.profiles import Interactions, genre_matrix, profiles_from_matrix


def _relabel_by_size(gmm: GaussianMixture, labels: np.ndarray) -> np.ndarray:
    """Reorder a fitted mixture's components by decreasing cluster size (in place); returns
    the permutation applied (new position -> old component)."""
    sizes = np.bincount(labels, minlength=gmm.n_components)
    perm = np.lexsort((np.arange(gmm.n_components), -sizes))
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        if not hasattr(gmm, name):
            continue
        value = getattr(gmm, name)
        if gmm.covariance_type == "tied" and name != "weights_" and name != "means_":
            continue  # one matrix shared by all components
        setattr(gmm, name, value[perm])
    return perm


class GMMRecommender(BaseRecommender):
    """The report's recommender: Gaussian-mixture clusters of genre profiles, K chosen by BIC.

    Parameters
    ----------
    n_components : "bic" or int
        ``"bic"`` (the report): choose K in ``k_range`` minimising the BIC averaged over
        ``n_seeds`` seeds. An int fixes K (``n_seeds`` fits, the best BIC kept).
    k_range : iterable of int
        Candidate K (the report: 1..10).
    n_seeds : int
        Random restarts per K whose BIC is averaged (the report ran "a few").
    covariance_type, reg_covar, max_iter : as :class:`sklearn.mixture.GaussianMixture`
        (its defaults: ``"full"``, 1e-6, 100, which the report used).
    bic_max_users : int or None
        Model selection runs on a seeded random subset of at most this many users (all 610 of
        ml-latest-small; 20 k of ml-25m's 162 k), the chosen K is then fitted on all users.
    genres : list of str or None
        Profile columns; default every genre of ``movies`` without ``(no genres listed)``.
    random_state : int, RandomState or None
        Seeds of the mixtures and of the BIC subset.

    Fitted attributes (besides :class:`~kerasmt.recommend.base.BaseRecommender`'s):
    ``genres_``, ``genre_matrix_`` (items x genres), ``profiles_`` (users x genres frame),
    ``bic_`` (K x seeds frame with ``mean``/``std``), ``n_components_``, ``gmm_`` (components
    ordered by decreasing size), ``labels_`` (cluster per training user), ``cluster_sizes_``,
    ``cluster_popularity_`` (clusters x items: ratings by the cluster's users),
    ``cluster_centers_`` (clusters x genres frame), ``profile_seconds_``, ``fit_seconds_``,
    ``n_not_converged_``.
    """

    _needs_movies = True

    def __init__(
        self,
        n_components: int | str = "bic",
        k_range: Sequence[int] = range(1, 11),
        n_seeds: int = 5,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        bic_max_users: int | None = 20_000,
        genres: Sequence[str] | None = None,
        random_state: int | np.random.RandomState | None = 0,
    ):
        self.n_components = n_components
        self.k_range = k_range
        self.n_seeds = n_seeds
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.bic_max_users = bic_max_users
        self.genres = genres
        self.random_state = random_state

    # ------------------------------------------------------------------------------ fitting
    def _mixture(self, k: int, seed: int) -> GaussianMixture:
        return GaussianMixture(n_components=k, covariance_type=self.covariance_type,
                               reg_covar=self.reg_covar, max_iter=self.max_iter, random_state=seed)

    def _fit_mixture(self, k: int, seed: int, X: np.ndarray) -> tuple[GaussianMixture, int]:
        """A fitted mixture and 1 if it did not converge (its ConvergenceWarning is counted)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            gm = self._mixture(k, seed).fit(X)
        return gm, int(any(issubclass(w.category, ConvergenceWarning) for w in caught))

    def _fit(self, inter: Interactions, movies: pd.DataFrame | None) -> None:
        start = time.perf_counter()
        if isinstance(self.n_components, str):
            if self.n_components != "bic":
                raise ValueError(f"n_components must be 'bic' or a positive int, got {self.n_components!r}")
            ks = sorted({int(k) for k in self.k_range})
            if not ks or ks[0] < 1:
                raise ValueError(f"k_range must hold positive ints, got {list(self.k_range)}")
        else:
            if int(self.n_components) < 1:
                raise ValueError(f"n_components must be 'bic' or a positive int, got {self.n_components!r}")
            ks = [int(self.n_components)]
        if int(self.n_seeds) < 1:
            raise ValueError(f"n_seeds must be >= 1, got {self.n_seeds}")
        g, names = genre_matrix(movies, self.genres, item_ids=inter.item_ids)
        if not names:
            raise ValueError("movies: no genre found (every movie is '(no genres listed)')")
        self.genres_ = names
        self.genre_matrix_ = g
        t0 = time.perf_counter()
        X = profiles_from_matrix(inter.matrix, g)
        self.profile_seconds_ = time.perf_counter() - t0
        self.profiles_ = pd.DataFrame(X, index=pd.Index(inter.user_ids, name="userId"), columns=names)
        n_users = len(X)
        ks = [k for k in ks if k <= n_users]
        if not ks:
            raise ValueError(f"every K of {list(self.k_range)} exceeds the number of users ({n_users})")

        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, 2**31 - 1, size=int(self.n_seeds))
        subset = None
        if self.bic_max_users is not None and n_users > int(self.bic_max_users):
            subset = np.sort(rng.choice(n_users, int(self.bic_max_users), replace=False))
        Xs = X if subset is None else X[subset]
        table = np.empty((len(ks), len(seeds)))
        best: dict[int, tuple[float, int, GaussianMixture]] = {}
        not_converged = 0
        # tiny mixtures are dominated by BLAS/OpenMP thread start-up: one thread is ~20x faster
        small = Xs.size < 2_000_000
        with threadpool_limits(1) if small else contextlib.nullcontext():
            for i, k in enumerate(ks):
                for j, seed in enumerate(seeds):
                    gm, failed = self._fit_mixture(k, int(seed), Xs)
                    not_converged += failed
                    table[i, j] = gm.bic(Xs)
                    if k not in best or table[i, j] < best[k][0]:
                        best[k] = (table[i, j], int(seed), gm)
        bic = pd.DataFrame(table, index=pd.Index(ks, name="K"), columns=[f"seed_{s}" for s in seeds])
        bic["mean"] = table.mean(axis=1)
        bic["std"] = table.std(axis=1)
        self.bic_ = bic
        self.n_components_ = int(bic["mean"].idxmin())
        _, seed, gm = best[self.n_components_]
        if subset is not None:  # the chosen K on every user
            gm, failed = self._fit_mixture(self.n_components_, seed, X)
            not_converged += failed
        self.n_not_converged_ = not_converged
        if not_converged:
            warnings.warn(f"GMMRecommender: {not_converged} of {table.size + (subset is not None)} "
                          f"mixture fits did not converge in max_iter={self.max_iter} iterations "
                          f"(their BIC is still used)", ConvergenceWarning, stacklevel=3)
        labels = gm.predict(X)
        _relabel_by_size(gm, labels)
        labels = gm.predict(X)
        self.gmm_ = gm
        self.labels_ = labels
        k = self.n_components_
        self.cluster_sizes_ = np.bincount(labels, minlength=k)
        member = sp.csr_matrix((np.ones(n_users, dtype=np.float32), (labels, np.arange(n_users))),
                               shape=(k, n_users))
        self.cluster_popularity_ = np.asarray((member @ inter.binary()).todense()).round().astype(np.int64)
        self.cluster_centers_ = pd.DataFrame(gm.means_, index=pd.Index(range(k), name="cluster"), columns=names)
        self._hard_scores = np.stack([rank_scores(popularity_order(c, self.item_counts_))
                                      for c in self.cluster_popularity_])
        self._shares = self.cluster_popularity_ / np.maximum(self.cluster_sizes_, 1)[:, None]
        # below the smallest share step (1 / cluster size >= 1 / n_users), so it only breaks ties
        self._tie_break = 1e-3 / max(n_users, 1) * self.item_counts_ / max(self.item_counts_.max(), 1)
        self.fit_seconds_ = time.perf_counter() - start

    # ---------------------------------------------------------------------------- predicting
    def _check_profiles(self, X) -> np.ndarray:
        check_is_fitted(self, "gmm_")
        if isinstance(X, pd.DataFrame):
            missing = [g for g in self.genres_ if g not in X.columns]
            if missing:
                raise ValueError(f"profiles: missing genre column(s) {missing}")
            X = X[self.genres_].to_numpy(dtype=np.float64)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != len(self.genres_):
            raise ValueError(f"profiles must have {len(self.genres_)} genre columns {self.genres_}, "
                             f"got shape {X.shape}")
        return X

    def predict(self, X) -> np.ndarray:
        """Cluster of each genre profile (rows of ``X``: array or frame with the genre columns)."""
        X = self._check_profiles(X)
        return self.gmm_.predict(X)

    def predict_proba(self, X) -> np.ndarray:
        """Cluster probabilities of each genre profile (rows sum to 1)."""
        X = self._check_profiles(X)
        return self.gmm_.predict_proba(X)

    def profiles_of(self, rows: sp.csr_matrix) -> np.ndarray:
        """Genre profiles of the rows of a user x item rating matrix (the model's item columns)."""
        check_is_fitted(self, "genre_matrix_")
        return profiles_from_matrix(rows, self.genre_matrix_)

    def profile_new(self, ratings) -> pd.Series:
        """Genre profile of a new user from their ratings (as :meth:`recommend_new` takes them)."""
        return pd.Series(self.profiles_of(self.new_user_row(ratings))[0], index=self.genres_, name="profile")

    def assign(self, user_ids: Sequence[int] | np.ndarray) -> pd.DataFrame:
        """Cluster and cluster probabilities of known users (index userId)."""
        check_is_fitted(self, "gmm_")
        rows = self.interactions_.user_rows(user_ids)
        proba = self.gmm_.predict_proba(self.profiles_.to_numpy()[rows])
        frame = pd.DataFrame(proba, index=pd.Index(np.atleast_1d(user_ids), name="userId"),
                             columns=[f"P(cluster {k})" for k in range(proba.shape[1])])
        frame.insert(0, "cluster", self.labels_[rows])
        return frame

    def popular_in_cluster(self, cluster: int, n: int = 10) -> pd.DataFrame:
        """The ``n`` movies rated by most users of ``cluster`` (movieId, ratings in the cluster,
        share of the cluster's users)."""
        check_is_fitted(self, "gmm_")
        if not 0 <= cluster < self.n_components_:
            raise ValueError(f"cluster must be in 0..{self.n_components_ - 1}, got {cluster}")
        order = popularity_order(self.cluster_popularity_[cluster], self.item_counts_)[:n]
        return pd.DataFrame({"movieId": self.item_ids_[order],
                             "ratings_in_cluster": self.cluster_popularity_[cluster, order],
                             "share_of_cluster": self._shares[cluster, order]})

    def _score(self, rows: sp.csr_matrix, soft: bool = False) -> np.ndarray:
        X = self.profiles_of(rows)
        if soft:  # ties (equal mixed shares) broken by global popularity, as in the hard lists
            return self.gmm_.predict_proba(X) @ self._shares + self._tie_break
        return self._hard_scores[self.gmm_.predict(X)]

    def recommend(self, user_id: int, n: int = 5, exclude_seen: bool = True, soft: bool = False) -> np.ndarray:
        """Top-``n`` movie ids for a known user: hard (``soft=False``, the report) or soft
        recommendations; movies the user rated are excluded."""
        return super().recommend(user_id, n, exclude_seen, soft=soft)

    def recommend_new(self, ratings, n: int = 5, exclude_seen: bool = True, soft: bool = False) -> np.ndarray:
        """Top-``n`` movie ids for a new user from their ratings (profile -> cluster(s) -> the
        cluster's popular movies they have not rated)."""
        return super().recommend_new(ratings, n, exclude_seen, soft=soft)
