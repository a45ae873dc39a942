"""Sparse user x movie matrices and per-user genre profiles (the report's clustering features).

The report's feature of a user is the average rating they gave to each genre (a movie counts for
every genre it has), 0 for a genre they never rated, without ``(no genres listed)``. Here it is
two sparse products, ``R @ G`` (rating sums per genre) and ``B @ G`` (counts), with ``R`` the
user x movie rating matrix, ``B`` its 0/1 pattern and ``G`` the movie x genre indicator matrix:
about 30 ms on ml-latest-small and seconds on ml-25m, against minutes for the report's row loops
(:func:`genre_profiles_rowwise`, kept as the benchmark's baseline and a test oracle).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import chain
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kerasmt.datasets.movielens import NO_GENRES, MovieLensWarning, clean_ratings


@dataclass
class Interactions:
    """A user x item rating matrix with its id maps.

    ``matrix`` is CSR float32 (users x items, the rating where a user rated an item, else no
    entry); row ``i`` is user ``user_ids[i]``, column ``j`` is movie ``item_ids[j]``.
    """

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def binary(self, dtype: str = "float32") -> sp.csr_matrix:
        """The 0/1 pattern of :attr:`matrix` (1 where a user rated an item)."""
        out = self.matrix.copy().astype(dtype)
        out.data[:] = 1
        return out

    def user_rows(self, user_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row indices of ``user_ids``; an unknown id raises :class:`UnknownUserError`."""
        return _positions(self.user_ids, user_ids, "user")

    def item_columns(self, item_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Column indices of ``item_ids``; -1 for ids not in the catalogue."""
        index = pd.Index(self.item_ids)
        return index.get_indexer(np.asarray(item_ids))


class UnknownUserError(KeyError):
    """A user id the model was not fitted on (use ``recommend_new`` with their ratings)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


def _positions(ids: np.ndarray, wanted, kind: str) -> np.ndarray:
    wanted = np.atleast_1d(np.asarray(wanted))
    pos = pd.Index(ids).get_indexer(wanted)
    if (pos < 0).any():
        bad = wanted[pos < 0]
        raise UnknownUserError(
            f"unknown {kind} id(s) {bad[:10].tolist()}{' ...' if len(bad) > 10 else ''}: not in the "
            f"ratings the model was fitted on ({len(ids)} {kind}s, ids {ids.min()}..{ids.max()}); "
            f"for a new {kind} call recommend_new(their_ratings)")
    return pos


def interaction_matrix(
    ratings: pd.DataFrame,
    item_ids: Sequence[int] | np.ndarray | None = None,
    user_ids: Sequence[int] | np.ndarray | None = None,
    source: str = "ratings",
    validate: bool = True,
) -> Interactions:
    """The CSR user x item rating matrix of a ratings frame (``userId``, ``movieId``, ``rating``).

    ``item_ids`` fixes the columns (e.g. every movie of movies.csv; ratings of other movies are
    dropped with a warning); default: the rated movies, sorted. ``user_ids`` fixes the rows
    (users without ratings get empty rows); default: the users in ``ratings``, sorted. The frame
    is checked by :func:`kerasmt.datasets.movielens.clean_ratings` (errors name ``source``)
    unless ``validate=False`` (for frames that already passed it).
    """
    if validate:
        ratings = clean_ratings(ratings, source=source)
    users = ratings["userId"].to_numpy()
    items = ratings["movieId"].to_numpy()
    user_index = np.unique(users) if user_ids is None else np.asarray(user_ids)
    item_index = np.unique(items) if item_ids is None else np.asarray(item_ids)
    if len(np.unique(item_index)) != len(item_index):
        raise ValueError("item_ids holds duplicates")
    rows = pd.Index(user_index).get_indexer(users)
    cols = pd.Index(item_index).get_indexer(items)
    keep = (rows >= 0) & (cols >= 0)
    if not keep.all():
        n_items_bad, n_users_bad = int((cols < 0).sum()), int((rows < 0).sum())
        warnings.warn(f"{source}: {int((~keep).sum())} rating(s) left out of the matrix "
                      f"({n_items_bad} of movies outside item_ids, {n_users_bad} of users outside "
                      f"user_ids)", MovieLensWarning, stacklevel=2)
    matrix = sp.csr_matrix(
        (ratings["rating"].to_numpy(dtype=np.float32)[keep], (rows[keep], cols[keep])),
        shape=(len(user_index), len(item_index)), dtype=np.float32)
    matrix.sort_indices()
    return Interactions(matrix, np.asarray(user_index), np.asarray(item_index))


def genre_matrix(
    movies: pd.DataFrame,
    genres: Sequence[str] | None = None,
    item_ids: Sequence[int] | np.ndarray | None = None,
) -> tuple[sp.csr_matrix, list[str]]:
    """Movie x genre 0/1 matrix (CSR float32) from the pipe-separated ``genres`` column.

    Rows follow ``item_ids`` (default: ``movies["movieId"]`` order; ids missing from ``movies``
    get empty rows). Columns are ``genres`` (default: every genre found, sorted, without
    ``(no genres listed)``). Returns ``(matrix, genre_names)``.
    """
    for column in ("movieId", "genres"):
        if column not in movies.columns:
            raise ValueError(f"movies: missing column {column!r}; found {list(movies.columns)}")
    strings = movies["genres"].fillna(NO_GENRES).astype(str).tolist()
    split = [text.split("|") for text in strings]
    lengths = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    flat = pd.Index(list(chain.from_iterable(split))).str.strip()
    found = sorted(set(flat) - {NO_GENRES, ""})
    names = found if genres is None else list(genres)
    cols = pd.Index(names).get_indexer(flat)
    movie_rows = np.repeat(np.arange(len(strings)), lengths)
    keep = cols >= 0
    per_movie = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (movie_rows[keep], cols[keep])),
                              shape=(len(strings), len(names)))
    per_movie.sum_duplicates()
    per_movie.data[:] = 1.0  # a genre listed twice counts once
    if item_ids is not None:
        pos = pd.Index(movies["movieId"].to_numpy()).get_indexer(np.asarray(item_ids))
        pick = sp.csr_matrix((np.ones(int((pos >= 0).sum()), dtype=np.float32),
                              (np.flatnonzero(pos >= 0), pos[pos >= 0])), shape=(len(pos), len(strings)))
        per_movie = (pick @ per_movie).tocsr()
    return per_movie, names


def profiles_from_matrix(ratings: sp.spmatrix, genres: sp.spmatrix, fill: float = 0.0) -> np.ndarray:
    """Average rating per genre of each row of a user x item rating matrix (``fill`` where a
    user rated no movie of a genre): ``(R @ G) / (B @ G)``. Returns float64 (users x genres)."""
    ratings = sp.csr_matrix(ratings)
    pattern = ratings.copy()
    pattern.data = np.ones_like(pattern.data)
    sums = np.asarray((ratings @ genres).todense(), dtype=np.float64)
    counts = np.asarray((pattern @ genres).todense(), dtype=np.float64)
    out = np.full(sums.shape, float(fill))
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def watch_shares_from_matrix(ratings: sp.spmatrix, genres: sp.spmatrix) -> np.ndarray:
    """Share of each user's rated movies that has each genre (``(B @ G) / n_rated``; a movie
    with several genres counts for each, so a row sums to >= the share of movies with a genre).
    0 for a user without ratings. Unlike the average rating per genre, it separates "never
    rated" (0) from "rated low" without a spike at 0. Returns float64 (users x genres)."""
    pattern = sp.csr_matrix(ratings).copy()
    pattern.data = np.ones_like(pattern.data)
    counts = np.asarray((pattern @ genres).todense(), dtype=np.float64)
    n_rated = np.diff(pattern.indptr).astype(np.float64)[:, None]
    out = np.zeros_like(counts)
    np.divide(counts, n_rated, out=out, where=n_rated > 0)
    return out


def genre_profiles(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    genres: Sequence[str] | None = None,
    fill: float = 0.0,
) -> pd.DataFrame:
    """The report's user features: average rating each user gave to each genre.

    A movie counts for every genre it has; a genre the user never rated gets ``fill`` (the
    report's 0); ``(no genres listed)`` is not a column (ratings of such movies count towards no
    genre). Returns a float64 frame indexed by ``userId`` (sorted) with one column per genre
    (default: every genre of ``movies``, sorted; the 19 of :data:`~kerasmt.datasets.movielens.GENRES`
    on ml-latest-small). Vectorised: two sparse matrix products.
    """
    inter = interaction_matrix(ratings, source="ratings")
    g, names = genre_matrix(movies, genres, item_ids=inter.item_ids)
    values = profiles_from_matrix(inter.matrix, g, fill)
    return pd.DataFrame(values, index=pd.Index(inter.user_ids, name="userId"), columns=names)


def genre_profiles_rowwise(ratings: pd.DataFrame, movies: pd.DataFrame, fill: float = 0.0) -> pd.DataFrame:
    """The report's algorithm, row by row (its utility code's pandas loops): for every rating,
    look up the movie's genres and add the rating to that user's per-genre sums and counts.

    Kept only as the baseline of ``benchmarks/recommender_profiles.py`` and as a test oracle for
    :func:`genre_profiles`; it takes seconds to minutes where the vectorised build takes
    milliseconds. Same output layout as :func:`genre_profiles`.
    """
    genres_of = {}
    for _, movie in movies.iterrows():
        genres_of[movie["movieId"]] = [g for g in str(movie["genres"]).split("|") if g != NO_GENRES]
    names = sorted({g for gs in genres_of.values() for g in gs})
    sums: dict[int, dict[str, float]] = {}
    counts: dict[int, dict[str, int]] = {}
    for _, row in ratings.iterrows():
        user = int(row["userId"])
        s, c = sums.setdefault(user, {}), counts.setdefault(user, {})
        for genre in genres_of.get(row["movieId"], []):
            s[genre] = s.get(genre, 0.0) + float(row["rating"])
            c[genre] = c.get(genre, 0) + 1
    users = sorted(sums)
    frame = pd.DataFrame(
        [[sums[u][g] / counts[u][g] if counts[u].get(g) else np.nan for g in names] for u in users],
        index=pd.Index(users, name="userId"), columns=names)
    return frame.fillna(fill)
