"""Genre profiles and interaction matrices on hand-made frames with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kerasmt.datasets import DatasetError
from kerasmt.datasets import movielens as ml
from kerasmt.recommend import (
    genre_matrix,
    genre_profiles,
    genre_profiles_rowwise,
    interaction_matrix,
)

MOVIES = pd.DataFrame({
    "movieId": [10, 20, 30, 40],
    "title": ["A (2001)", "B (2002)", "C (2003)", "D (2004)"],
    "genres": ["Action|Comedy", "Comedy", "Drama", "(no genres listed)"],
})
RATINGS = pd.DataFrame({
    "userId": [1, 1, 1, 2, 2, 3],
    "movieId": [10, 20, 40, 30, 10, 40],
    "rating": [4.0, 2.0, 5.0, 3.5, 1.0, 0.5],
    "timestamp": [1, 2, 3, 4, 5, 6],
})


def test_profile_by_hand():
    profiles = genre_profiles(RATINGS, MOVIES)
    assert list(profiles.columns) == ["Action", "Comedy", "Drama"]  # no "(no genres listed)"
    assert profiles.index.name == "userId" and profiles.index.tolist() == [1, 2, 3]
    expected = np.array([
        [4.0, 3.0, 0.0],   # user 1: Action 4; Comedy (4 + 2) / 2; Drama never rated -> 0; movie 40 no genre
        [1.0, 1.0, 3.5],   # user 2
        [0.0, 0.0, 0.0],   # user 3 rated only a movie without genres
    ])
    np.testing.assert_allclose(profiles.to_numpy(), expected)
    assert profiles.dtypes.unique().tolist() == [np.float64]
    # a fixed genre list adds empty columns and keeps the order given
    fixed = genre_profiles(RATINGS, MOVIES, genres=["Drama", "Action", "War"])
    np.testing.assert_allclose(fixed.loc[2].to_numpy(), [3.5, 1.0, 0.0])
    assert genre_profiles(RATINGS, MOVIES, fill=np.nan).loc[1, "Drama"] != genre_profiles(RATINGS, MOVIES).loc[1, "Drama"]


def test_vectorised_profiles_equal_the_reports_row_loops():
    ratings, movies = ml.synthesize_frames(n=6000, n_users=120, n_movies=700, seed=5)
    fast = genre_profiles(ratings, movies)
    slow = genre_profiles_rowwise(ratings, movies)
    assert list(fast.columns) == list(ml.GENRES)
    slow = slow.reindex(columns=fast.columns, fill_value=0.0)
    assert fast.index.tolist() == slow.index.tolist()
    np.testing.assert_allclose(fast.to_numpy(), slow.to_numpy(), rtol=1e-12)


def test_interaction_matrix_ids_and_values():
    inter = interaction_matrix(RATINGS, item_ids=[40, 30, 20, 10, 50])
    assert inter.shape == (3, 5)
    assert inter.user_ids.tolist() == [1, 2, 3]
    dense = inter.matrix.toarray()
    assert dense[0].tolist() == [5.0, 0.0, 2.0, 4.0, 0.0]  # columns follow item_ids
    assert inter.binary().toarray()[1].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert inter.item_columns([10, 99]).tolist() == [3, -1]
    with pytest.raises(KeyError, match=r"unknown user id\(s\) \[7\]"):
        inter.user_rows([1, 7])
    with pytest.warns(ml.MovieLensWarning, match="2 rating\\(s\\) left out of the matrix"):
        interaction_matrix(RATINGS, item_ids=[10, 20, 30])


def test_bad_ratings_raise_with_row_and_value():
    bad = RATINGS.assign(rating=[4.0, 6.0, 5.0, 3.5, 1.0, 0.5])
    with pytest.raises(DatasetError, match=r"ratings: row 1: rating 6 outside the scale \[0.5, 5.0\]"):
        genre_profiles(bad, MOVIES)
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['rating'\]"):
        genre_profiles(RATINGS.drop(columns="rating"), MOVIES)
    with pytest.raises(ValueError, match="movies: missing column 'genres'"):
        genre_matrix(MOVIES.drop(columns="genres"))
    dup = pd.concat([RATINGS, RATINGS.iloc[[0]].assign(rating=1.0, timestamp=99)], ignore_index=True)
    with pytest.warns(ml.MovieLensWarning, match="1 duplicate"):
        profiles = genre_profiles(dup, MOVIES)
    assert profiles.loc[1, "Action"] == 1.0  # the latest rating of (1, 10) wins


def test_genre_matrix_rows_follow_item_ids():
    g, names = genre_matrix(MOVIES, item_ids=[30, 99, 10])
    assert names == ["Action", "Comedy", "Drama"]
    assert g.toarray().tolist() == [[0, 0, 1], [0, 0, 0], [1, 1, 0]]
