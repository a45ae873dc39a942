"""GMMRecommender and the baselines: known answers on small hand-made data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics.pairwise import cosine_similarity

from kerasmt.datasets import DatasetError
from kerasmt.datasets import movielens as ml
from kerasmt.recommend import (
    EASERecommender,
    GMMRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    UnknownUserError,
    ease_weights,
    gram_matrix,
)

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi"]


def clustered(n_per_group: int = 50, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three user groups with clearly different genre tastes. Every user rates movies of every
    genre (no zero columns), loved genres around 4.5 stars, the others around 1.5; each group also
    watches its own block of movies, so cluster popularity lists differ."""
    rng = np.random.default_rng(seed)
    movies_per_genre = 30
    movie_ids = np.arange(1, len(GENRES) * movies_per_genre + 1)
    genre_of = np.repeat(np.arange(len(GENRES)), movies_per_genre)
    movies = pd.DataFrame({"movieId": movie_ids, "title": [f"M{i} (2000)" for i in movie_ids],
                           "genres": [GENRES[g] for g in genre_of]})
    loved = {0: [0, 5], 1: [1, 4], 2: [2, 3]}
    rows = []
    user = 0
    for group, genres in loved.items():
        for _ in range(n_per_group):
            user += 1
            for g in range(len(GENRES)):
                pool = movie_ids[genre_of == g]
                k = 8 if g in genres else 4
                # loved genres: the group's favourite movies first (a group-specific block)
                weights = np.where(np.arange(len(pool)) // 10 == group, 6.0, 1.0) if g in genres else None
                picks = rng.choice(pool, size=k, replace=False, p=None if weights is None else weights / weights.sum())
                mean = 4.5 if g in genres else 1.5
                for m in picks:
                    rows.append((user, int(m), float(np.clip(np.round(rng.normal(mean, 0.4) * 2) / 2, 0.5, 5.0))))
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating"])
    return ratings, movies


@pytest.fixture(scope="module")
def data():
    return clustered()


@pytest.fixture(scope="module")
def gmm(data):
    ratings, movies = data
    return GMMRecommender(k_range=range(1, 7), n_seeds=3, random_state=0).fit_ratings(ratings, movies)


# -------------------------------------------------------------------------------------- GMM
def test_bic_picks_the_true_number_of_clusters(gmm):
    assert gmm.n_components_ == 3
    assert gmm.bic_.index.tolist() == [1, 2, 3, 4, 5, 6]
    assert gmm.bic_["mean"].idxmin() == 3
    assert gmm.bic_.filter(like="seed_").shape == (6, 3)
    # components ordered by size, labels agree with predict, groups recovered exactly
    assert (np.diff(gmm.cluster_sizes_) <= 0).all()
    np.testing.assert_array_equal(gmm.labels_, gmm.predict_profiles(gmm.profiles_))
    groups = np.repeat([0, 1, 2], 50)
    assert pd.crosstab(groups, gmm.labels_).max(axis=1).tolist() == [50, 50, 50]
    assert list(gmm.cluster_centers_.columns) == sorted(GENRES)
    proba = gmm.proba_of_profiles(gmm.profiles_.to_numpy())
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_hard_recommendations_follow_the_reports_algorithm(gmm, data):
    ratings, _ = data
    labels = pd.Series(gmm.labels_, index=gmm.user_ids_)
    for user in (1, 75, 150):
        cluster = labels[user]
        members = labels.index[labels == cluster]
        in_cluster = ratings[ratings.userId.isin(members)].groupby("movieId").size()
        overall = ratings.groupby("movieId").size()
        table = pd.DataFrame({"c": in_cluster, "g": overall.reindex(in_cluster.index)}).reset_index()
        table = table.sort_values(["c", "g", "movieId"], ascending=[False, False, True])
        seen = set(ratings.loc[ratings.userId == user, "movieId"])
        expected = [m for m in table["movieId"] if m not in seen][:5]
        assert gmm.recommend(user, 5).tolist() == expected, user
        assert not seen & set(gmm.recommend(user, 20).tolist())
    # with certain cluster assignments the soft lists are the hard ones
    assert np.allclose(gmm.assign([1]).iloc[0, 1:].max(), 1.0)
    assert gmm.recommend(1, 5, soft=True).tolist() == gmm.recommend(1, 5).tolist()
    top = gmm.popular_in_cluster(int(labels[1]), 3)
    assert top["ratings_in_cluster"].is_monotonic_decreasing
    assert gmm.recommend(1, 5, exclude_seen=False).tolist()[:3] == top["movieId"].tolist()


def test_soft_recommendations_mix_cluster_lists_by_probability(gmm, data):
    ratings, _ = data
    shares = gmm.cluster_popularity_ / gmm.cluster_sizes_[:, None]
    # soft scores are the user's cluster probabilities times each cluster's watch shares
    user_row = gmm.interactions_.matrix[[0]]
    p = gmm.predict_proba(user_row)
    np.testing.assert_allclose(gmm._score(user_row, soft=True), p @ shares, atol=1e-5)
    # a newcomer who rated the favourites of two groups gets both groups' popular movies
    a = ratings[(ratings.userId == 1) & (ratings.rating >= 4)]
    b = ratings[(ratings.userId == 150) & (ratings.rating >= 4)]
    mixed = dict(zip(pd.concat([a, b]).movieId, pd.concat([a, b]).rating))
    proba = gmm.proba_of_profiles(gmm.profile_new(mixed).to_frame().T)[0]
    soft = gmm.recommend_new(mixed, 10, soft=True)
    seen = np.array(list(mixed))
    scores = proba @ shares
    scores[gmm.interactions_.item_columns(seen)] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -gmm.item_counts_, -scores))
    assert soft.tolist() == gmm.item_ids_[order[:10]].tolist()


def test_new_user_is_assigned_from_their_ratings(gmm, data):
    ratings, movies = data
    template = ratings[ratings.userId == 3]  # a user of the first group
    new = dict(zip(template.movieId, template.rating))
    cluster = gmm.labels_[gmm.interactions_.user_rows([3])[0]]
    assert gmm.predict_profiles(gmm.profile_new(new).to_frame().T)[0] == cluster
    assert gmm.assign_new(new)["cluster"] == cluster
    assert gmm.recommend_new(new, 5).tolist() == gmm.recommend(3, 5).tolist()
    as_frame = pd.DataFrame({"movieId": list(new), "rating": list(new.values())})
    assert gmm.recommend_new(as_frame, 5, soft=True).tolist() == gmm.recommend(3, 5, soft=True).tolist()
    assert not set(new) & set(gmm.recommend_new(new, 30).tolist())


def test_bad_users_and_ratings_get_clear_errors(gmm):
    with pytest.raises(UnknownUserError, match=r"unknown user id\(s\) \[9999\].*recommend_new"):
        gmm.recommend(9999)
    assert isinstance(UnknownUserError("x"), KeyError)
    with pytest.raises(ValueError, match="the new user has no ratings"):
        gmm.recommend_new({})
    with pytest.raises(DatasetError, match="rating 6 outside the scale"):
        gmm.recommend_new({1: 6.0})
    with pytest.raises(ValueError, match="no rating of a movie in the model's catalogue"), \
            pytest.warns(ml.MovieLensWarning, match="1 rating"):
        gmm.recommend_new({123456: 4.0})
    with pytest.raises(ValueError, match="6 genre columns"):
        gmm.predict_profiles(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="ratings of one user"):
        gmm.recommend_new(pd.DataFrame({"userId": [1, 2], "movieId": [1, 2], "rating": [3.0, 4.0]}))
    with pytest.raises(NotFittedError):
        GMMRecommender().predict(np.zeros((1, 6)))
    with pytest.raises(ValueError, match="needs the movies frame"):
        GMMRecommender().fit_ratings(pd.DataFrame({"userId": [1], "movieId": [1], "rating": [4.0]}))
    with pytest.raises(ValueError, match="n_components must be 'bic' or a positive int"):
        GMMRecommender(n_components="aic").fit_ratings(*clustered(5))


def test_sklearn_conventions_and_fixed_k(data):
    ratings, movies = data
    model = GMMRecommender(n_components=3, n_seeds=2, covariance_type="diag", random_state=7)
    assert clone(model).get_params() == model.get_params()
    model.set_params(n_seeds=1)
    assert model.n_seeds == 1
    model.fit_ratings(ratings, movies)
    assert model.n_components_ == 3 and model.bic_.index.tolist() == [3]
    again = clone(model).fit_ratings(ratings, movies)
    np.testing.assert_array_equal(model.labels_, again.labels_)  # seeded
    # model selection on a subset of users, final fit on all of them
    sub = GMMRecommender(k_range=[2, 3, 4], n_seeds=2, bic_max_users=60).fit_ratings(ratings, movies)
    assert sub.n_components_ == 3 and len(sub.labels_) == 150


# -------------------------------------------------------------------------------- baselines
SMALL = pd.DataFrame({
    "userId": [1, 1, 1, 2, 2, 3, 3, 3, 4, 4],
    "movieId": [1, 2, 3, 2, 3, 1, 3, 4, 3, 5],
    "rating": [5.0, 3.0, 4.0, 4.0, 2.0, 1.0, 5.0, 3.5, 4.0, 4.5],
})


def test_popularity_orders_by_count_then_id_and_excludes_seen():
    model = PopularityRecommender().fit_ratings(SMALL)
    # counts: movie 3 -> 4, movies 1 and 2 -> 2, movies 4 and 5 -> 1
    assert model.recommend(2, 5).tolist() == [1, 4, 5]
    assert model.recommend(2, 2, exclude_seen=False).tolist() == [3, 1]
    assert model.recommend_new({3: 4.0}, 2).tolist() == [1, 2]
    batch = model.recommend_batch([1, 2], 4)
    assert batch.tolist() == [[4, 5, -1, -1], [1, 4, 5, -1]]  # -1 pads exhausted lists
    np.testing.assert_array_equal(model.recommend_batch([1, 2, 3, 4], 3, chunk_size=1),
                                  model.recommend_batch([1, 2, 3, 4], 3))
    with pytest.raises(UnknownUserError):
        model.recommend(5)


def test_ease_equals_the_closed_form():
    rng = np.random.default_rng(0)
    X = (rng.random((12, 7)) < 0.4).astype(np.float64)
    X[0, :] = 1
    lam = 3.0
    P = np.linalg.inv(X.T @ X + lam * np.eye(7))
    B = np.eye(7) - P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    for solver in ("cholesky", "woodbury"):
        got = ease_weights(sp.csr_matrix(X), lam, dtype="float64", solver=solver)
        np.testing.assert_allclose(got, B, atol=1e-10)
    np.testing.assert_allclose(ease_weights(sp.csr_matrix(X), lam, dtype="float32"), B, atol=1e-4)
    np.testing.assert_allclose(gram_matrix(sp.csr_matrix(X), "float64", chunk_size=3), X.T @ X)
    # the recommender scores x_u @ B on the 0/1 pattern
    rows, cols = np.nonzero(X)
    ratings = pd.DataFrame({"userId": rows + 1, "movieId": cols + 1, "rating": 4.0})
    model = EASERecommender(l2=lam, dtype="float64").fit_ratings(ratings)
    np.testing.assert_allclose(model.score_matrix([1, 2]), X[:2] @ B, atol=1e-10)


def test_ease_max_items_limits_the_catalogue():
    model = EASERecommender(l2=1.0, max_items=2).fit_ratings(SMALL)
    # counts: movie 3 -> 4, movies 1 and 2 -> 2 (tie broken by id), movies 4 and 5 -> 1
    assert model.item_ids_[model.items_].tolist() == [1, 3]
    assert model.n_recommendable_ == 2
    assert model.weights_.shape == (2, 2)
    assert model.recommend(2, 5).tolist() == [1]
    assert model.recommend(3, 5).tolist() == []


def test_item_knn_keeps_the_top_cosine_neighbours():
    rng = np.random.default_rng(1)
    X = (rng.random((30, 9)) < 0.35).astype(np.float64)
    X[:, 8] = 0  # an item nobody rated
    X[0, 8] = 1
    rows, cols = np.nonzero(X)
    ratings = pd.DataFrame({"userId": rows + 1, "movieId": cols + 1, "rating": 3.0})
    k = 3
    model = ItemKNNRecommender(n_neighbors=k, chunk_size=2).fit_ratings(ratings)
    S = cosine_similarity(X.T)
    np.fill_diagonal(S, 0.0)
    got = model.similarity_.toarray()
    for i in range(9):
        kept = np.flatnonzero(got[i])
        assert len(kept) <= k
        np.testing.assert_allclose(got[i, kept], S[i, kept], rtol=1e-5)
        # nothing outside the kept set is more similar than the weakest kept neighbour
        if len(kept) == k:
            assert np.sort(S[i])[-k] <= got[i, kept].min() + 1e-6
    dense = np.zeros_like(S)
    dense[np.nonzero(got)] = got[np.nonzero(got)]
    np.testing.assert_allclose(model.score_matrix([1, 2]), X[:2] @ dense, rtol=1e-5)
    full = ItemKNNRecommender(n_neighbors=100).fit_ratings(ratings)  # more neighbours than items
    np.testing.assert_allclose(full.similarity_.toarray(), S, atol=1e-6)


# ------------------------------------------------------ issue 17: tempered posteriors, collapse
def test_tempered_posteriors(gmm, data):
    X = gmm.interactions_.matrix[:20]
    np.testing.assert_allclose(gmm.predict_proba(X), gmm.gmm_.predict_proba(gmm.profiles_of(X)), atol=1e-9)
    hot = gmm.predict_proba(X, temperature=50.0)
    np.testing.assert_allclose(hot.sum(axis=1), 1.0)
    np.testing.assert_array_equal(hot.argmax(axis=1), gmm.predict(X))  # tempering keeps the order
    assert hot.max(axis=1).mean() < gmm.predict_proba(X).max(axis=1).mean()
    assert gmm.recommend(1, 5, soft=True, temperature=1e6).tolist() != gmm.recommend(1, 5, soft=True).tolist()
    with pytest.raises(ValueError, match="temperature must be > 0"):
        gmm.predict_proba(X, temperature=0)


def test_collapsed_components_are_detected_and_reported():
    ratings, movies = clustered()
    horror = movies.movieId[movies.genres == "Horror"]
    never = ratings[~((ratings.userId > 100) & ratings.movieId.isin(horror))]  # group 3 never rates Horror
    with pytest.warns(UserWarning, match=r"1 of 3 component\(s\) collapsed"):
        model = GMMRecommender(n_components=3, n_seeds=2, random_state=0).fit_ratings(never, movies)
    table = model.collapsed_components_
    assert len(table) == 1 and table["genres"].iloc[0] == ["Horror"] and table["value"].iloc[0] == [0.0]
    assert table["users"].iloc[0] == 50
    clean = GMMRecommender(n_components=3, n_seeds=2, random_state=0).fit_ratings(ratings, movies)
    assert clean.collapsed_components_.empty


def test_watch_share_features():
    ratings = pd.DataFrame({"userId": [1, 1, 1, 2], "movieId": [1, 2, 3, 3], "rating": [5.0, 1.0, 2.0, 4.0]})
    movies = pd.DataFrame({"movieId": [1, 2, 3], "title": ["a", "b", "c"], "genres": ["Action|Drama", "Drama", "Comedy"]})
    model = GMMRecommender(n_components=1, n_seeds=1, features="watch_share").fit_ratings(ratings, movies)
    np.testing.assert_allclose(model.profiles_.loc[1, ["Action", "Comedy", "Drama"]], [1 / 3, 1 / 3, 2 / 3])
    np.testing.assert_allclose(model.profiles_.loc[2, ["Action", "Comedy", "Drama"]], [0, 1, 0])
    with pytest.raises(ValueError, match="features must be 'mean_rating' or 'watch_share'"):
        GMMRecommender(features="votes").fit_ratings(ratings, movies)


def test_ranked_lists_give_the_same_top_n_as_dense_scores(gmm, data, monkeypatch):
    """Popularity and the GMM's hard lists skip dense scoring; the result must not change."""
    ratings, movies = data
    pop = PopularityRecommender().fit_ratings(ratings, movies)
    users = gmm.user_ids_[::7]
    fast = {"pop": pop.recommend_batch(users, 40), "gmm": gmm.recommend_batch(users, 40),
            "pop_all": pop.recommend_batch(users, 40, exclude_seen=False)}
    monkeypatch.setattr(PopularityRecommender, "_ranked_lists", lambda self, rows, **kw: None)
    monkeypatch.setattr(GMMRecommender, "_ranked_lists", lambda self, rows, **kw: None)
    np.testing.assert_array_equal(pop.recommend_batch(users, 40), fast["pop"])
    np.testing.assert_array_equal(gmm.recommend_batch(users, 40), fast["gmm"])
    np.testing.assert_array_equal(pop.recommend_batch(users, 40, exclude_seen=False), fast["pop_all"])
