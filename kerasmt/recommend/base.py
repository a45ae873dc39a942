"""The interface every recommender of :mod:`kerasmt.recommend` shares.

A recommender is a scikit-learn estimator fitted on a users x items rating matrix (``fit``), or
on a ratings frame (``userId``, ``movieId``, ``rating``) and, where it needs genres, the movies
frame (``fit_ratings``). It scores every catalogue item for a
block of users (:meth:`BaseRecommender.score_matrix`, users in chunks so that 162 k users x 60 k
movies never exist as one dense array) and returns the top ``n`` movie ids, movies the user has
rated excluded:

- :meth:`~BaseRecommender.recommend` ``(user_id, n)`` for a user of the training ratings,
- :meth:`~BaseRecommender.recommend_batch` ``(user_ids, n)`` for many (one row per user),
- :meth:`~BaseRecommender.recommend_new` ``(ratings, n)`` for a user the model has never seen.
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from kerasmt.datasets.movielens import MovieLensWarning, clean_ratings
from kerasmt.recommend.profiles import Interactions, interaction_matrix


def _new_user_frame(ratings: Any) -> pd.DataFrame:
    """A new user's ratings as a frame: a DataFrame with movieId and rating (one user at most),
    a ``{movieId: rating}`` mapping, or a Series indexed by movieId."""
    if isinstance(ratings, pd.DataFrame):
        frame = ratings
        if "userId" in frame.columns and frame["userId"].nunique() > 1:
            raise ValueError(f"recommend_new takes the ratings of one user; got "
                             f"{frame['userId'].nunique()} userIds")
    elif isinstance(ratings, pd.Series):
        frame = pd.DataFrame({"movieId": ratings.index.to_numpy(), "rating": ratings.to_numpy()})
    elif isinstance(ratings, Mapping):
        frame = pd.DataFrame({"movieId": list(ratings.keys()), "rating": list(ratings.values())})
    else:
        raise TypeError(f"ratings must be a DataFrame (movieId, rating), a Series indexed by movieId "
                        f"or a {{movieId: rating}} dict; got {type(ratings).__name__}")
    if len(frame) == 0:
        raise ValueError("the new user has no ratings: at least one (movieId, rating) is needed "
                         "(recommend globally popular movies instead)")
    for column in ("movieId", "rating"):
        if column not in frame.columns:
            raise ValueError(f"ratings of the new user: missing column {column!r}; found {list(frame.columns)}")
    frame = frame.assign(userId=0) if "userId" not in frame.columns else frame
    return frame


#: columns that make a frame a long ratings table (for ``fit_ratings``), not a user x item matrix
_RATINGS_TABLE_COLUMNS = ("userId", "movieId", "rating")


class BaseRecommender(BaseEstimator):
    """Shared fit / recommend logic; subclasses implement ``_fit`` and ``_score``.

    **Input contract** (as scikit-learn's and ``implicit``'s recommenders): ``fit(X)`` takes a
    users x items rating matrix ``X`` (SciPy sparse, any format, or a dense array / numeric
    frame): row ``i`` is a user, column ``j`` an item, a positive entry the user's rating (or any
    positive strength), 0 or no entry = not rated. Negative, NaN or infinite entries, an empty
    matrix and a 1-D array are ``ValueError``. ``user_ids`` / ``item_ids`` name the rows and
    columns (default ``0..n-1``). ``y`` is ignored. :meth:`fit_ratings` is the helper for a
    MovieLens-style ratings table (``userId``, ``movieId``, ``rating``) and the movies table.

    Fitted attributes: ``interactions_`` (:class:`~kerasmt.recommend.profiles.Interactions`),
    ``user_ids_``, ``item_ids_`` (the catalogue: every movie of ``movies`` and every rated one),
    ``item_counts_`` (ratings per item), ``recommendable_`` (items with at least one rating: only
    these are recommended), ``n_features_in_`` (= number of items).
    """

    #: whether ``fit_ratings`` needs the movies frame
    _needs_movies = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True  # ratings: 0 = not rated
        tags.input_tags.allow_nan = False
        tags.target_tags.required = False
        return tags

    def _validate_matrix(self, X, reset: bool, where: str) -> sp.csr_matrix:
        """``X`` as a CSR float32 users x items matrix (checked; see the class docstring)."""
        if isinstance(X, pd.DataFrame) and any(c in X.columns for c in _RATINGS_TABLE_COLUMNS):
            raise ValueError(
                f"{type(self).__name__}.{where}: X has columns {list(X.columns)[:6]}, a ratings table; "
                f"{where} takes a users x items rating matrix. For a table of (userId, movieId, rating) "
                f"rows call fit_ratings(ratings, movies) (or recommend_new for one user's ratings)")
        ready = (sp.issparse(X) and X.format == "csr" and X.dtype == np.float32 and X.has_sorted_indices
                 and X.ndim == 2 and X.shape[0] > 0 and X.shape[1] > 0)
        if ready and X.nnz and np.isfinite(X.data).all() and X.data.min() > 0:
            # the matrix interaction_matrix builds: checked without a copy (25 M ratings: 0.3 GB each)
            if reset:
                self.n_features_in_ = X.shape[1]
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input")
            return X if isinstance(X, sp.csr_matrix) else sp.csr_matrix(X)
        try:
            X = validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32), reset=reset)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}.{where}: X must be a users x items rating matrix "
                             f"(finite, non-negative, 2-D, at least one user and item): {exc}") from exc
        check_non_negative(X, f"{type(self).__name__}.{where}")
        X = sp.csr_matrix(X, dtype=np.float32)
        X.eliminate_zeros()
        X.sort_indices()
        return X

    def fit(self, X, y=None, *, user_ids=None, item_ids=None, **fit_params) -> "BaseRecommender":
        """Fit on a users x items rating matrix ``X`` (see the class docstring); ``user_ids`` and
        ``item_ids`` name its rows and columns. Returns ``self``."""
        X = self._validate_matrix(X, reset=True, where="fit")
        n_users, n_items = X.shape
        user_ids = np.arange(n_users) if user_ids is None else np.asarray(user_ids)
        item_ids = np.arange(n_items) if item_ids is None else np.asarray(item_ids)
        for name, ids, n in (("user_ids", user_ids, n_users), ("item_ids", item_ids, n_items)):
            if ids.shape != (n,):
                raise ValueError(f"{name} must hold {n} ids (one per {'row' if name == 'user_ids' else 'column'} "
                                 f"of X), got shape {ids.shape}")
            if len(np.unique(ids)) != n:
                raise ValueError(f"{name} holds duplicates")
        inter = Interactions(X, user_ids, item_ids)
        self.interactions_ = inter
        self.user_ids_ = inter.user_ids
        self.item_ids_ = inter.item_ids
        self.item_counts_ = np.bincount(inter.matrix.indices, minlength=inter.shape[1]).astype(np.int64)
        self.recommendable_ = self.item_counts_ > 0
        self._fit(inter, **fit_params)
        return self

    def fit_ratings(self, ratings: pd.DataFrame, movies: pd.DataFrame | None = None) -> "BaseRecommender":
        """Fit on a ratings table (``userId``, ``movieId``, ``rating``; checked like
        :func:`~kerasmt.datasets.movielens.clean_ratings`, errors name the row) and the movies
        table (``movieId``, ``title``, ``genres``; required by models that use genres, and it
        makes every listed movie part of the catalogue). Returns ``self``."""
        if not isinstance(ratings, pd.DataFrame):
            raise TypeError(f"ratings must be a DataFrame with columns {list(_RATINGS_TABLE_COLUMNS)}, got "
                            f"{type(ratings).__name__} (for a users x items matrix call fit)")
        if movies is None and self._needs_movies:
            raise ValueError(f"{type(self).__name__}.fit_ratings needs the movies frame (movieId, title, genres)")
        if len(ratings) == 0:
            raise ValueError("ratings is empty: nothing to fit")
        ratings = clean_ratings(ratings, source="ratings")
        if len(ratings) == 0:
            raise ValueError("ratings is empty: nothing to fit")
        item_ids = None
        if movies is not None:
            if "movieId" not in movies.columns:
                raise ValueError(f"movies: missing column 'movieId'; found {list(movies.columns)}")
            item_ids = np.union1d(movies["movieId"].to_numpy(), ratings["movieId"].to_numpy())
        inter = interaction_matrix(ratings, item_ids=item_ids, source="ratings", validate=False)
        return self.fit_interactions(inter, movies)

    def fit_interactions(self, inter: Interactions, movies: pd.DataFrame | None = None) -> "BaseRecommender":
        """Fit on an :class:`~kerasmt.recommend.profiles.Interactions` built once (e.g. by
        :func:`~kerasmt.recommend.interaction_matrix` over every movie of ``movies``) and shared
        by several models: on 25 M ratings, checking the table and building the matrix again for
        every model costs more than fitting popularity."""
        if movies is None and self._needs_movies:
            raise ValueError(f"{type(self).__name__}.fit_interactions needs the movies frame (movieId, title, genres)")
        return self.fit(inter.matrix, user_ids=inter.user_ids, item_ids=inter.item_ids,
                        **self._side_data(movies, inter.item_ids))

    def _side_data(self, movies: pd.DataFrame | None, item_ids: np.ndarray) -> dict:
        """Extra ``fit`` arguments derived from the movies table (the GMM's genre matrix)."""
        return {}

    # -- subclass hooks
    def _fit(self, inter: Interactions, **fit_params) -> None:  # pragma: no cover
        raise NotImplementedError

    def _score(self, rows: sp.csr_matrix, **kwargs) -> np.ndarray:  # pragma: no cover
        """Scores (higher = better) of every item for each row of a user x item rating matrix."""
        raise NotImplementedError

    # -- public API
    def score_matrix(self, user_ids: Sequence[int] | np.ndarray, **kwargs) -> np.ndarray:
        """Dense scores (len(user_ids) x n_items) of known users; columns follow ``item_ids_``."""
        check_is_fitted(self, "interactions_")
        rows = self.interactions_.user_rows(user_ids)
        return self._score(self.interactions_.matrix[rows], **kwargs)

    def _ranked_lists(self, rows: sp.csr_matrix, **kwargs) -> tuple[np.ndarray, np.ndarray] | None:
        """For models whose scores are fixed rankings (popularity; the GMM's hard lists): the
        rankings (groups x recommendable items, best first) and each row's group; None otherwise."""
        return None

    def _top_n_ranked(self, rows: sp.csr_matrix, n: int, exclude_seen: bool, orders: np.ndarray,
                      group: np.ndarray) -> np.ndarray:
        """Top-``n`` from fixed rankings without dense scores: each row's first ``n + |seen|``
        candidates, seen ones dropped (same result as scoring every item, 20x faster)."""
        counts = np.diff(rows.indptr)
        width = min(orders.shape[1], n + (int(counts.max()) if exclude_seen and rows.nnz else 0))
        cand = orders[group, :width]  # (rows, width) item indices
        keep = np.ones(cand.shape, dtype=bool)
        if exclude_seen and rows.nnz:
            m = np.int64(len(self.item_ids_))
            seen = np.repeat(np.arange(rows.shape[0], dtype=np.int64), counts) * m + rows.indices
            keep = ~np.isin(np.arange(rows.shape[0], dtype=np.int64)[:, None] * m + cand, seen)
        rank = np.cumsum(keep, axis=1)
        take = keep & (rank <= n)
        out = np.full((rows.shape[0], n), -1, dtype=np.int64)
        r, c = np.nonzero(take)
        out[r, rank[r, c] - 1] = self.item_ids_[cand[r, c]]
        return out

    def _top_n(self, rows: sp.csr_matrix, n: int, exclude_seen: bool, **kwargs) -> np.ndarray:
        ranked = self._ranked_lists(rows, **kwargs)
        if ranked is not None:
            return self._top_n_ranked(rows, n, exclude_seen, *ranked)
        raw = self._score(rows, **kwargs)
        scores = np.array(raw, dtype=np.result_type(raw.dtype, np.float32), copy=True)  # float32 stays
        scores[:, ~self.recommendable_] = -np.inf
        if exclude_seen and rows.nnz:
            r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
            scores[r, rows.indices] = -np.inf
        m = scores.shape[1]
        take = min(n, m)
        if take < m:
            part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        else:
            part = np.broadcast_to(np.arange(m), scores.shape).copy()
        top = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -top), axis=-1)  # best first; ties: smaller item index first
        part = np.take_along_axis(part, order, axis=1)
        top = np.take_along_axis(top, order, axis=1)
        ids = self.item_ids_[part].astype(np.int64)
        ids[~np.isfinite(top)] = -1
        if take < n:
            ids = np.pad(ids, ((0, 0), (0, n - take)), constant_values=-1)
        return ids

    def recommend_batch(
        self,
        user_ids: Sequence[int] | np.ndarray,
        n: int = 10,
        exclude_seen: bool = True,
        chunk_size: int = 512,
        **kwargs,
    ) -> np.ndarray:
        """Top-``n`` movie ids for each known user (one row each, best first), movies the user
        rated excluded; ``-1`` pads a row when fewer than ``n`` movies are left. Users are scored
        ``chunk_size`` at a time. Unknown ids raise :class:`~kerasmt.recommend.UnknownUserError`."""
        check_is_fitted(self, "interactions_")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        rows = self.interactions_.user_rows(user_ids)
        out = np.empty((len(rows), n), dtype=np.int64)
        for lo in range(0, len(rows), chunk_size):
            block = self.interactions_.matrix[rows[lo: lo + chunk_size]]
            out[lo: lo + chunk_size] = self._top_n(block, n, exclude_seen, **kwargs)
        return out

    def recommend(self, user_id: int, n: int = 5, exclude_seen: bool = True, **kwargs) -> np.ndarray:
        """Top-``n`` movie ids for a user of the training ratings, best first, rated movies
        excluded (fewer than ``n`` only when the user has rated nearly everything)."""
        ids = self.recommend_batch([user_id], n, exclude_seen, **kwargs)[0]
        return ids[ids >= 0]

    def new_user_row(self, ratings: Any) -> sp.csr_matrix:
        """A new user's ratings (DataFrame with movieId and rating, ``{movieId: rating}`` or a
        Series indexed by movieId) as a 1 x n_items rating row. Ratings are checked like the
        training ratings; movies outside the catalogue are ignored with a warning; no usable
        rating raises ``ValueError``."""
        check_is_fitted(self, "interactions_")
        frame = clean_ratings(_new_user_frame(ratings), source="ratings of the new user")
        cols = self.interactions_.item_columns(frame["movieId"].to_numpy())
        known = cols >= 0
        if not known.all():
            warnings.warn(f"ratings of the new user: {int((~known).sum())} rating(s) of movies outside "
                          f"the model's catalogue ignored (e.g. movieId {int(frame['movieId'].to_numpy()[~known][0])})",
                          MovieLensWarning, stacklevel=3)
        if not known.any():
            raise ValueError("the new user has no rating of a movie in the model's catalogue")
        values = frame["rating"].to_numpy(dtype=np.float32)[known]
        return sp.csr_matrix((values, (np.zeros(int(known.sum()), dtype=np.int64), cols[known])),
                             shape=(1, len(self.item_ids_)), dtype=np.float32)

    def recommend_new(self, ratings: Any, n: int = 5, exclude_seen: bool = True, **kwargs) -> np.ndarray:
        """Top-``n`` movie ids for a new user given their ratings (see :meth:`new_user_row`),
        movies they rated excluded."""
        ids = self._top_n(self.new_user_row(ratings), n, exclude_seen, **kwargs)[0]
        return ids[ids >= 0]

    @property
    def n_recommendable_(self) -> int:
        """Number of items the model can recommend (items with at least one training rating)."""
        check_is_fitted(self, "recommendable_")
        return int(self.recommendable_.sum())


def popularity_order(counts: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Item indices ordered by ``counts`` descending, ties broken by ``keys`` (descending, in
    order) and then by item index (ascending)."""
    idx = np.arange(len(counts))
    return np.lexsort((idx, *[-np.asarray(k) for k in reversed(keys)], -np.asarray(counts)))


def rank_scores(order: np.ndarray) -> np.ndarray:
    """Scores from a ranking: the first item of ``order`` gets ``len(order)``, the last 1."""
    scores = np.empty(len(order), dtype=np.float64)
    scores[order] = np.arange(len(order), 0, -1, dtype=np.float64)
    return scores
