"""Saving the fitted recommender with titles, loading it, and `kerasmt recommend` (issue 15 item 4)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kerasmt import cli, recommend
from kerasmt.recommend import EASERecommender, GMMRecommender

from test_recommend_models import clustered


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    ratings, movies = clustered(20)
    model = GMMRecommender(k_range=(1, 2, 3, 4), n_seeds=2, random_state=0).fit_ratings(ratings, movies)
    path = recommend.save_model(model, tmp_path_factory.mktemp("m") / "models" / "gmm.joblib", movies)
    return model, path, ratings, movies


def test_round_trip_keeps_recommendations_and_titles(saved):
    model, path, _, movies = saved
    loaded = recommend.load_model(path)
    assert isinstance(loaded, GMMRecommender)
    np.testing.assert_array_equal(loaded.recommend_batch([1, 30, 60], 10), model.recommend_batch([1, 30, 60], 10))
    np.testing.assert_array_equal(loaded.labels_, model.labels_)
    table = recommend.recommend_titles(loaded, user=1, n=5)
    assert table["movieId"].tolist() == model.recommend(1, 5).tolist()
    lookup = dict(zip(movies.movieId, movies.title))
    assert table["title"].tolist() == [lookup[m] for m in table["movieId"]]
    assert table.attrs["cluster"] == model.labels_[0]


def test_a_new_user_from_a_few_ratings_is_assigned_to_a_cluster(saved):
    model, path, ratings, movies = saved
    loaded = recommend.load_model(path)
    liked = ratings[(ratings.userId == 45) & (ratings.rating >= 4)].movieId.tolist()[:4]  # a user of group 3
    title = movies.set_index("movieId").title[liked[0]]
    pairs = [f"{liked[1]}=5", f"{liked[2]}=4.5", f"{liked[3]}=4", f"{title}=5"]
    new = recommend.parse_ratings(pairs, loaded)
    assert new == {liked[1]: 5.0, liked[2]: 4.5, liked[3]: 4.0, liked[0]: 5.0}
    table = recommend.recommend_titles(loaded, ratings=new, n=5)
    assert table.attrs["cluster"] == model.labels_[model.interactions_.user_rows([45])[0]]
    assert not set(new) & set(table["movieId"])
    with pytest.raises(ValueError, match=r"titles match .*give the movie id or more of the title"):
        recommend.parse_ratings(["M1=4"], loaded)  # M1, M10, M11, ...
    with pytest.raises(ValueError, match="no movie id or title"):
        recommend.parse_ratings(["Casablanca=5"], loaded)
    with pytest.raises(ValueError, match="expected MOVIE=RATING"):
        recommend.parse_ratings(["5"], loaded)
    with pytest.raises(ValueError, match="give either user"):
        recommend.recommend_titles(loaded)


def test_cli_recommend_prints_titles(saved, capsys):
    model, path, _, movies = saved
    assert cli.main(["recommend", str(path), "--user", "1", "--n", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"GMMRecommender, user 1: cluster {model.labels_[0]} (P = ")
    lookup = dict(zip(movies.movieId, movies.title))
    assert out[1:] == [f"{i + 1:>3}. {lookup[m]} (movieId {m})" for i, m in enumerate(model.recommend(1, 3))]
    assert cli.main(["recommend", str(path), "--rate", "1=5", "--rate", "2=4", "--n", "2", "--soft"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("GMMRecommender, new user (2 ratings): cluster ") and len(out) == 3
    assert cli.main(["recommend", str(path), "--user", "99999"]) == 1
    assert "unknown user id(s) [99999]" in capsys.readouterr().err


def test_load_refuses_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        recommend.load_model(tmp_path / "nope.joblib")
    bad = tmp_path / "bad.joblib"
    bad.write_text("not a pickle")
    with pytest.raises(ValueError, match="not a saved kerasmt recommender"):
        recommend.load_model(bad)
    assert cli.main(["recommend", str(bad), "--user", "1"]) == 1


def test_baselines_save_too(tmp_path):
    ratings, movies = clustered(5)
    model = EASERecommender(l2=10.0).fit_ratings(ratings, movies)
    loaded = recommend.load_model(recommend.save_model(model, tmp_path / "ease.joblib"))
    assert loaded.titles_ is None
    np.testing.assert_array_equal(loaded.recommend(3, 5), model.recommend(3, 5))
    assert recommend.recommend_titles(loaded, user=3, n=2)["title"].tolist() == ["?", "?"]
