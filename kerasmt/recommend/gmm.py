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

The plain posteriors of a full-covariance mixture on 19 genres are nearly always 0 or 1 (on the
synthetic ml-latest-small 98 % of users have a top posterior above 0.99), so the soft lists equal
the hard ones. ``temperature`` T > 1 tempers them, ``P_T(k | x) ~ (w_k N(x | k))^(1/T)``: T = the
number of genres treats the profile's log-likelihood per genre rather than as 19 independent
pieces of evidence, and mixes clusters for users between them.
"""
from __future__ import annotations

import contextlib
import time
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import ClusterMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits
from sklearn.utils.validation import check_is_fitted

from kerasmt.recommend.base import BaseRecommender, popularity_order, rank_scores
from kerasmt.recommend.profiles import Interactions, genre_matrix, profiles_from_matrix, watch_shares_from_matrix

#: the report's K range (a tuple: estimator defaults must not be mutable objects)
DEFAULT_K_RANGE: tuple[int, ...] = tuple(range(1, 11))


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


class GMMRecommender(ClusterMixin, BaseRecommender):
    """The report's recommender: Gaussian-mixture clusters of genre profiles, K chosen by BIC.

    ``fit(X, item_genres=G, genre_names=...)`` takes a users x items rating matrix and the items x
    genres 0/1 matrix (``fit_ratings(ratings, movies)`` builds both from MovieLens tables);
    without ``item_genres`` every item is its own "genre", so the profile is the rating row
    itself. ``predict`` / ``predict_proba`` take rating rows of the same items (a clusterer:
    ``labels_``, ``fit_predict``).

    Parameters
    ----------
    n_components : "bic" or int
        ``"bic"`` (the report): choose K in ``k_range`` minimising the BIC averaged over
        ``n_seeds`` seeds. An int fixes K (``n_seeds`` fits, the best BIC kept).
    k_range : tuple of int
        Candidate K (the report: 1..10).
    n_seeds : int
        Random restarts per K whose BIC is averaged (the report ran "a few").
    covariance_type, reg_covar, max_iter : as :class:`sklearn.mixture.GaussianMixture`
        (its defaults: ``"full"``, 1e-6, 100, which the report used).
    bic_max_users : int or None
        Model selection runs on a seeded random subset of at most this many users (all 610 of
        ml-latest-small; 20 k of ml-25m's 162 k), the chosen K is then fitted on all users.
    genres : tuple of str or None
        Profile columns; default every genre of ``movies`` without ``(no genres listed)``.
    features : "mean_rating" or "watch_share"
        The user feature: the report's average rating per genre (0 = never rated), or the share
        of the user's movies having each genre (:func:`~kerasmt.recommend.profiles.watch_shares_from_matrix`).
    random_state : int, RandomState or None
        Seeds of the mixtures and of the BIC subset.

    Fitted attributes (besides :class:`~kerasmt.recommend.base.BaseRecommender`'s):
    ``genres_``, ``genre_matrix_`` (items x genres), ``profiles_`` (users x genres frame),
    ``bic_`` (K x seeds frame with ``mean``/``std``), ``n_components_``, ``gmm_`` (components
    ordered by decreasing size), ``labels_`` (cluster per training user), ``cluster_sizes_``,
    ``cluster_popularity_`` (clusters x items: ratings by the cluster's users),
    ``cluster_centers_`` (clusters x genres frame), ``collapsed_components_`` (components with a
    variance at the ``reg_covar`` floor, see :func:`collapsed_components`), ``n_iter_`` (EM
    iterations of the final mixture), ``profile_seconds_``, ``fit_seconds_``,
    ``n_not_converged_``.
    """

    _needs_movies = True

    def fit(self, X, y=None, *, user_ids=None, item_ids=None, item_genres=None,
            genre_names: Sequence[str] | None = None) -> "GMMRecommender":
        """Fit on a users x items rating matrix ``X`` and the items x genres 0/1 matrix
        ``item_genres`` (default: the identity, i.e. items as features); see the class docstring."""
        return super().fit(X, y, user_ids=user_ids, item_ids=item_ids, item_genres=item_genres,
                           genre_names=genre_names)

    def _side_data(self, movies: pd.DataFrame | None, item_ids: np.ndarray) -> dict:
        g, names = genre_matrix(movies, self.genres, item_ids=item_ids)
        if not names:
            raise ValueError("movies: no genre found (every movie is '(no genres listed)')")
        return {"item_genres": g, "genre_names": names}

    def __init__(
        self,
        n_components: int | str = "bic",
        k_range: Sequence[int] = DEFAULT_K_RANGE,
        n_seeds: int = 5,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        bic_max_users: int | None = 20_000,
        genres: Sequence[str] | None = None,
        features: str = "mean_rating",
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
        self.features = features
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

    def _fit(self, inter: Interactions, item_genres=None, genre_names=None) -> None:
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
        if self.features not in ("mean_rating", "watch_share"):
            raise ValueError(f"features must be 'mean_rating' or 'watch_share', got {self.features!r}")
        n_items = inter.shape[1]
        if item_genres is None:
            g = sp.identity(n_items, dtype=np.float32, format="csr")
            names = [str(i) for i in inter.item_ids] if genre_names is None else list(genre_names)
        else:
            g = sp.csr_matrix(item_genres, dtype=np.float32)
            names = [str(i) for i in range(g.shape[1])] if genre_names is None else list(genre_names)
        if g.shape[0] != n_items or len(names) != g.shape[1] or g.shape[1] == 0:
            raise ValueError(f"item_genres must be an items x genres matrix with {n_items} rows (one per "
                             f"column of X) and one genre name per column; got shape {g.shape} and "
                             f"{len(names)} names")
        self.genres_ = names
        self.genre_matrix_ = g
        t0 = time.perf_counter()
        X = self._features(inter.matrix, g)
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
        self.n_iter_ = int(gm.n_iter_)
        self.collapsed_components_ = collapsed_components(gm, names, labels, self.reg_covar)
        if len(self.collapsed_components_):
            warnings.warn(f"GMMRecommender: {len(self.collapsed_components_)} of {self.n_components_} "
                          f"component(s) collapsed (variance at reg_covar in some genre: all their users "
                          f"share one value there, e.g. 0 = never rated): clusters "
                          f"{self.collapsed_components_['cluster'].tolist()}; see collapsed_components_",
                          UserWarning, stacklevel=4)
        self.labels_ = labels
        k = self.n_components_
        self.cluster_sizes_ = np.bincount(labels, minlength=k)
        member = sp.csr_matrix((np.ones(n_users, dtype=np.float32), (labels, np.arange(n_users))),
                               shape=(k, n_users))
        self.cluster_popularity_ = np.asarray((member @ inter.binary()).todense()).round().astype(np.int64)
        self.cluster_centers_ = pd.DataFrame(gm.means_, index=pd.Index(range(k), name="cluster"), columns=names)
        self._hard_orders = np.stack([popularity_order(c, self.item_counts_) for c in self.cluster_popularity_])
        self._hard_scores = np.stack([rank_scores(o) for o in self._hard_orders])
        self._shares = self.cluster_popularity_ / np.maximum(self.cluster_sizes_, 1)[:, None]
        # below the smallest share step (1 / cluster size >= 1 / n_users), so it only breaks ties
        self._tie_break = 1e-3 / max(n_users, 1) * self.item_counts_ / max(self.item_counts_.max(), 1)
        self.fit_seconds_ = time.perf_counter() - start

    # ---------------------------------------------------------------------------- predicting
    def _check_profiles(self, P) -> np.ndarray:
        check_is_fitted(self, "gmm_")
        if isinstance(P, pd.DataFrame):
            missing = [g for g in self.genres_ if g not in P.columns]
            if missing:
                raise ValueError(f"profiles: missing genre column(s) {missing}")
            P = P[self.genres_].to_numpy(dtype=np.float64)
        P = np.asarray(P, dtype=np.float64)
        if P.ndim == 1:
            P = P[None, :]
        if P.ndim != 2 or P.shape[1] != len(self.genres_):
            raise ValueError(f"profiles must have {len(self.genres_)} genre columns {self.genres_[:20]}, "
                             f"got shape {P.shape}")
        if not np.isfinite(P).all():
            raise ValueError("profiles contain NaN or infinite values")
        return P

    def transform_profiles(self, X) -> np.ndarray:
        """Genre profiles (users x genres) of the rows of a users x items rating matrix."""
        check_is_fitted(self, "gmm_")
        return self.profiles_of(self._validate_matrix(X, reset=False, where="predict"))

    def predict(self, X) -> np.ndarray:
        """Cluster of each user (rows of a users x items rating matrix over the fitted items)."""
        profiles = self.transform_profiles(X)  # checks fitted first
        return self.gmm_.predict(profiles)

    def predict_proba(self, X, temperature: float = 1.0) -> np.ndarray:
        """Cluster probabilities of each user (rows of a users x items rating matrix); rows sum
        to 1. ``temperature`` > 1 tempers them (see the module docstring)."""
        return self.proba_of_profiles(self.transform_profiles(X), temperature)

    def predict_profiles(self, profiles) -> np.ndarray:
        """Cluster of each genre profile (array or frame with the genre columns)."""
        profiles = self._check_profiles(profiles)
        return self.gmm_.predict(profiles)

    def proba_of_profiles(self, profiles, temperature: float = 1.0) -> np.ndarray:
        """Cluster probabilities of genre profiles, tempered by ``temperature`` (1: the mixture's
        posteriors, ``predict_proba`` of scikit-learn's GaussianMixture)."""
        P = self._check_profiles(profiles)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        log_p = component_log_prob(self.gmm_, P) / float(temperature)
        log_p -= log_p.max(axis=1, keepdims=True)
        out = np.exp(log_p)
        return out / out.sum(axis=1, keepdims=True)

    def _features(self, rows: sp.csr_matrix, g: sp.csr_matrix) -> np.ndarray:
        if self.features == "watch_share":
            return watch_shares_from_matrix(rows, g)
        return profiles_from_matrix(rows, g)

    def profiles_of(self, rows: sp.csr_matrix) -> np.ndarray:
        """Genre profiles (``features``) of the rows of a user x item rating matrix (the model's
        item columns)."""
        check_is_fitted(self, "genre_matrix_")
        return self._features(rows, self.genre_matrix_)

    def profile_new(self, ratings) -> pd.Series:
        """Genre profile of a new user from their ratings (as :meth:`recommend_new` takes them)."""
        return pd.Series(self.profiles_of(self.new_user_row(ratings))[0], index=self.genres_, name="profile")

    def assign_new(self, ratings, temperature: float = 1.0) -> pd.Series:
        """Cluster and cluster probabilities of a new user from a few ratings (a ``{movieId:
        rating}`` dict, a Series or a frame): the report's reason for a GMM, no refit needed."""
        proba = self.proba_of_profiles(self.profile_new(ratings).to_numpy()[None, :], temperature)[0]
        out = pd.Series({"cluster": int(np.argmax(proba))}, dtype=object)
        for k, p in enumerate(proba):
            out[f"P(cluster {k})"] = float(p)
        return out

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

    def _ranked_lists(self, rows: sp.csr_matrix, soft: bool = False, temperature: float = 1.0):
        if soft:
            return None
        # items rated by nobody sort last in every cluster's order (global count 0 breaks ties)
        n_ok = int(self.recommendable_.sum())
        return self._hard_orders[:, :n_ok], self.gmm_.predict(self.profiles_of(rows))

    def _score(self, rows: sp.csr_matrix, soft: bool = False, temperature: float = 1.0) -> np.ndarray:
        X = self.profiles_of(rows)
        if soft:  # ties (equal mixed shares) broken by global popularity, as in the hard lists
            return self.proba_of_profiles(X, temperature) @ self._shares + self._tie_break
        return self._hard_scores[self.gmm_.predict(X)]

    def recommend(self, user_id: int, n: int = 5, exclude_seen: bool = True, soft: bool = False,
                  temperature: float = 1.0) -> np.ndarray:
        """Top-``n`` movie ids for a known user: hard (``soft=False``, the report) or soft
        recommendations (posteriors tempered by ``temperature``); rated movies are excluded."""
        return super().recommend(user_id, n, exclude_seen, soft=soft, temperature=temperature)

    def recommend_new(self, ratings, n: int = 5, exclude_seen: bool = True, soft: bool = False,
                      temperature: float = 1.0) -> np.ndarray:
        """Top-``n`` movie ids for a new user from their ratings (profile -> cluster(s) -> the
        cluster's popular movies they have not rated)."""
        return super().recommend_new(ratings, n, exclude_seen, soft=soft, temperature=temperature)


def component_log_prob(gm: GaussianMixture, X: np.ndarray) -> np.ndarray:
    """``log w_k + log N(x | mu_k, Sigma_k)`` of every row of ``X`` and component ``k`` of a
    fitted mixture (any covariance type), from its public ``precisions_cholesky_``."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    K = gm.n_components
    pc = gm.precisions_cholesky_
    out = np.empty((n, K))
    for k in range(K):
        diff = X - gm.means_[k]
        if gm.covariance_type == "full":
            y, logdet = diff @ pc[k], np.log(np.diag(pc[k])).sum()
        elif gm.covariance_type == "tied":
            y, logdet = diff @ pc, np.log(np.diag(pc)).sum()
        elif gm.covariance_type == "diag":
            y, logdet = diff * pc[k], np.log(pc[k]).sum()
        else:  # spherical
            y, logdet = diff * pc[k], d * np.log(pc[k])
        out[:, k] = -0.5 * (d * np.log(2 * np.pi) + (y * y).sum(axis=1)) + logdet + np.log(gm.weights_[k])
    return out


def component_variances(gm: GaussianMixture) -> np.ndarray:
    """Per-component, per-feature variances (K x d) of a fitted mixture of any covariance type."""
    K, d = gm.means_.shape
    cov = gm.covariances_
    if gm.covariance_type == "full":
        return np.stack([np.diag(c) for c in cov])
    if gm.covariance_type == "tied":
        return np.tile(np.diag(cov), (K, 1))
    if gm.covariance_type == "diag":
        return np.asarray(cov)
    return np.tile(np.asarray(cov)[:, None], (1, d))


def collapsed_components(gm: GaussianMixture, names: Sequence[str], labels: np.ndarray,
                         reg_covar: float, factor: float = 10.0) -> pd.DataFrame:
    """Components whose variance in some feature is at the ``reg_covar`` floor (below ``factor``
    times it): every user of the cluster has the same value there (for genre profiles usually
    0, "never rated the genre"), so the component is a degenerate spike that the BIC rewards.
    Columns: ``cluster``, ``users``, ``genres`` (the collapsed features), ``value`` (their mean)."""
    var = component_variances(gm)
    sizes = np.bincount(labels, minlength=gm.n_components)
    rows = []
    for k in range(gm.n_components):
        flat = np.flatnonzero(var[k] < factor * reg_covar)
        if len(flat):
            rows.append({"cluster": k, "users": int(sizes[k]), "genres": [names[j] for j in flat],
                         "value": [round(float(gm.means_[k, j]), 3) for j in flat]})
    return pd.DataFrame(rows, columns=["cluster", "users", "genres", "value"])
