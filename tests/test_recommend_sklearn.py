"""scikit-learn's own conformance suite over the recommenders (issue 15 item 5), and the input
contract: a users x items rating matrix for ``fit``, a ratings table for ``fit_ratings``."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from kerasmt.datasets import DatasetError
from kerasmt.recommend import EASERecommender, GMMRecommender, ItemKNNRecommender, PopularityRecommender

ESTIMATORS = [
    GMMRecommender(k_range=(1, 2, 3), n_seeds=1),  # short K range: the suite fits dozens of times
    PopularityRecommender(),
    ItemKNNRecommender(),
    EASERecommender(),
]

#: checks that do not apply, with the reason (scikit-learn reports them as xfail)
GMM_XFAIL = {
    "check_clustering": "feeds standardised blobs with negative entries; a rating matrix is "
                        "non-negative (positive_only tag) and negative input is refused. "
                        "test_gmm_clusters_blobs_given_as_ratings runs the same check on shifted blobs",
    "check_estimator_sparse_array": "the check reads classifier_tags whenever predict_proba exists "
                                    "(None for a clusterer); sparse fit / predict are tested in "
                                    "test_sparse_and_dense_input_agree",
    "check_estimator_sparse_matrix": "as check_estimator_sparse_array",
}


def expected_failed_checks(estimator) -> dict[str, str]:
    return GMM_XFAIL if isinstance(estimator, GMMRecommender) else {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_conformance(estimator, check):
    check(estimator)


def test_gmm_clusters_blobs_given_as_ratings():
    X, y = make_blobs(n_samples=60, centers=3, random_state=1)
    X = X - X.min() + 0.5  # ratings are positive
    model = GMMRecommender(k_range=(1, 2, 3, 4, 5), n_seeds=2, random_state=0).fit(X)
    assert model.n_components_ == 3
    assert adjusted_rand_score(y, model.labels_) > 0.9  # scikit-learn asks for > 0.4
    np.testing.assert_array_equal(model.fit_predict(X), model.labels_)
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def _ratings() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [(u, m, float(rng.integers(1, 6))) for u in range(1, 31) for m in rng.choice(40, 8, replace=False) + 1]
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating"])


@pytest.mark.parametrize("model", [PopularityRecommender(), ItemKNNRecommender(n_neighbors=5),
                                   EASERecommender(l2=10.0)], ids=type)
def test_sparse_and_dense_input_agree(model):
    ratings = _ratings()
    table = model.fit_ratings(ratings)
    R = table.interactions_.matrix
    for X in (R, R.toarray(), sp.csc_array(R), R.tocoo()):
        m = type(model)(**model.get_params()).fit(X, user_ids=table.user_ids_, item_ids=table.item_ids_)
        np.testing.assert_array_equal(m.recommend_batch([1, 7, 30], 5), table.recommend_batch([1, 7, 30], 5))
    # without ids, rows and columns are numbered from 0
    plain = type(model)(**model.get_params()).fit(R)
    np.testing.assert_array_equal(plain.item_ids_[table.recommend_batch([1], 5) - 1] + 1,
                                  table.recommend_batch([1], 5))


def test_gmm_matrix_and_table_paths_agree():
    ratings = _ratings()
    movies = pd.DataFrame({"movieId": np.arange(1, 41), "title": [f"M{i}" for i in range(1, 41)],
                           "genres": ["Action|Comedy", "Drama", "Horror", "Comedy"] * 10})
    table = GMMRecommender(k_range=(1, 2), n_seeds=1).fit_ratings(ratings, movies)
    from kerasmt.recommend import genre_matrix
    g, names = genre_matrix(movies, item_ids=table.item_ids_)
    matrix = GMMRecommender(k_range=(1, 2), n_seeds=1).fit(
        table.interactions_.matrix, user_ids=table.user_ids_, item_ids=table.item_ids_, item_genres=g, genre_names=names)
    np.testing.assert_array_equal(matrix.labels_, table.labels_)
    np.testing.assert_allclose(matrix.profiles_.to_numpy(), table.profiles_.to_numpy())
    np.testing.assert_array_equal(table.predict(table.interactions_.matrix), table.labels_)
    with pytest.raises(ValueError, match="item_genres must be an items x genres matrix with 40 rows"):
        GMMRecommender().fit(table.interactions_.matrix, item_genres=g[:5])


@pytest.mark.parametrize("model", ESTIMATORS, ids=lambda m: type(m).__name__)
def test_bad_input_gets_a_clear_error(model):
    name = type(model).__name__
    with pytest.raises(ValueError, match=rf"{name}.fit: X must be a users x items rating matrix.*0 sample"):
        model.fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=rf"{name}.fit: X must be a users x items rating matrix.*NaN"):
        model.fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match=rf"Negative values in data passed to {name}.fit"):
        model.fit(np.array([[1.0, -1.0], [2.0, 3.0]]))
    # a ratings table given to fit: named, and pointed at fit_ratings
    table = pd.DataFrame({"userId": [1, 2], "movieId": [1, 2], "rating": [4.0, 3.0]})
    with pytest.raises(ValueError, match=r"a ratings table; fit takes a users x items rating matrix.*fit_ratings"):
        model.fit(table)
    # fit_ratings: empty, NaN and wrong columns
    movies = pd.DataFrame({"movieId": [1, 2], "title": ["A", "B"], "genres": ["Drama", "Comedy"]})
    with pytest.raises(ValueError, match="ratings is empty"):
        model.fit_ratings(table.iloc[:0], movies)
    with pytest.raises(DatasetError, match="row 1: column 'rating': empty value"):
        model.fit_ratings(table.assign(rating=[4.0, np.nan]), movies)
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['userId'\]"):
        model.fit_ratings(table.rename(columns={"userId": "user"}), movies)
    with pytest.raises(TypeError, match="ratings must be a DataFrame"):
        model.fit_ratings(np.ones((2, 3)))


def test_defaults_are_immutable():
    for est in ESTIMATORS:
        for name, value in type(est)().get_params().items():
            assert not isinstance(value, (list, dict, set, np.ndarray, range)), (type(est).__name__, name)
    assert GMMRecommender().k_range == tuple(range(1, 11))
