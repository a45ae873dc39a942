"""Recommenders on MovieLens-style ratings: genre profiles, the report's GMM recommender,
baselines with the same interface, and the report's hold-out evaluation.

    from kerasmt.datasets import movielens
    from kerasmt import recommend

    ratings, movies = movielens.load("~/data/ml-latest-small")
    profiles = recommend.genre_profiles(ratings, movies)           # users x 19 genres
    gmm = recommend.GMMRecommender().fit_ratings(ratings, movies)   # K by BIC over 1..10
    gmm.recommend(4, n=5), gmm.recommend(4, n=5, soft=True)
    split = recommend.holdout_split(ratings, n_users=100, min_ratings=100, n_remove=50, seed=0)
    ease = recommend.EASERecommender().fit_ratings(split.train)
    recommend.evaluate(ease, split).summary                         # accuracy@5, ndcg@10, ...
"""
from kerasmt.recommend.base import BaseRecommender, popularity_order
from kerasmt.recommend.baselines import (
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    ease_weights,
    gram_matrix,
)
from kerasmt.recommend.evaluation import (
    HoldoutResult,
    HoldoutSplit,
    accuracy,
    evaluate,
    histogram_intersection,
    holdout_split,
    intersection_table,
    ndcg_at_k,
    paired_bootstrap,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)
from kerasmt.recommend.gmm import GMMRecommender, collapsed_components, component_log_prob
from kerasmt.recommend.saving import load_model, parse_ratings, recommend_titles, save_model
from kerasmt.recommend.profiles import (
    Interactions,
    UnknownUserError,
    genre_matrix,
    genre_profiles,
    genre_profiles_rowwise,
    interaction_matrix,
    profiles_from_matrix,
    watch_shares_from_matrix,
)

__all__ = [
    "BaseRecommender", "EASERecommender", "GMMRecommender", "collapsed_components", "component_log_prob", "HoldoutResult", "HoldoutSplit",
    "Interactions", "ItemKNNRecommender", "PopularityRecommender", "UnknownUserError", "accuracy",
    "ease_weights", "evaluate", "genre_matrix", "genre_profiles", "genre_profiles_rowwise",
    "gram_matrix", "histogram_intersection", "holdout_split", "interaction_matrix",
    "intersection_table", "ndcg_at_k", "popularity_order", "precision_at_k",
    "profiles_from_matrix", "ranking_metrics", "recall_at_k", "save_model", "load_model",
    "parse_ratings", "recommend_titles", "paired_bootstrap", "watch_shares_from_matrix",
]
