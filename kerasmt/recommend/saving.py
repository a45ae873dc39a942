"""Save a fitted recommender with its movie titles, load it back, and apply it by title.

    from kerasmt import recommend
    recommend.save_model(gmm, "runs/recommender/models/gmm.joblib", movies)
    model = recommend.load_model("runs/recommender/models/gmm.joblib")
    recommend.recommend_titles(model, user=4, n=10)                    # a user of the training data
    recommend.recommend_titles(model, ratings={1: 5, 50: 4}, n=10)     # a new user: a few ratings
    recommend.recommend_titles(model, ratings=recommend.parse_ratings(["Toy Story=5"], model))

The file is a joblib pickle of ``{"format", "version", "kerasmt", "model", "titles"}``. Like
every pickle it can run code when loaded: load only files you made or trust. The CLI is
``kerasmt recommend MODEL --user ID [--n 10]`` or ``--rate MOVIE=RATING`` (repeatable).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from kerasmt.recommend.base import BaseRecommender
from kerasmt.recommend.gmm import GMMRecommender

FORMAT = "kerasmt-recommender"
VERSION = 1


def save_model(model: BaseRecommender, path: str | os.PathLike, movies: pd.DataFrame | None = None) -> Path:
    """Write a fitted recommender and the titles of its catalogue (from ``movies``: movieId,
    title) to ``path`` (joblib); the folder is created. Returns the path."""
    import joblib

    from kerasmt import __version__

    if not isinstance(model, BaseRecommender):
        raise TypeError(f"save_model takes a kerasmt recommender, got {type(model).__name__}")
    check_is_fitted(model, "interactions_")
    titles = None
    if movies is not None:
        for column in ("movieId", "title"):
            if column not in movies.columns:
                raise ValueError(f"movies: missing column {column!r}; found {list(movies.columns)}")
        lookup = pd.Series(movies["title"].astype(str).to_numpy(), index=movies["movieId"].to_numpy())
        lookup = lookup[~lookup.index.duplicated()]
        titles = lookup.reindex(model.item_ids_)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    joblib.dump({"format": FORMAT, "version": VERSION, "kerasmt": __version__, "model": model,
                 "titles": titles}, tmp, compress=3)
    os.replace(tmp, path)  # never a half-written model under the final name
    return path


def load_model(path: str | os.PathLike) -> BaseRecommender:
    """A recommender written by :func:`save_model`; its titles are ``model.titles_`` (a Series
    movieId -> title, or None). Only load files you trust (pickle)."""
    import joblib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found (the recommender study writes "
                                f"<out>/models/recommender_gmm.joblib)")
    try:
        payload = joblib.load(path)
    except Exception as exc:
        raise ValueError(f"{path}: not a saved kerasmt recommender ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a saved kerasmt recommender (expected a file written by "
                         f"kerasmt.recommend.save_model)")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: saved with format version {payload.get('version')}, this kerasmt "
                         f"reads version {VERSION}")
    model = payload["model"]
    model.titles_ = payload.get("titles")
    return model


def _titles_of(model: BaseRecommender) -> pd.Series | None:
    return getattr(model, "titles_", None)


def parse_ratings(pairs: Iterable[str], model: BaseRecommender) -> dict[int, float]:
    """``["1=5", "Toy Story (1995)=4", "matrix=4.5"]`` as ``{movieId: rating}``: the part before
    the last ``=`` is a movie id of the model's catalogue or a title (exact, case-insensitive, or
    a substring matching exactly one title); the part after it a rating."""
    titles = _titles_of(model)
    out: dict[int, float] = {}
    for pair in pairs:
        movie, sep, value = str(pair).rpartition("=")
        movie = movie.strip()
        if not sep or not movie:
            raise ValueError(f"rating {pair!r}: expected MOVIE=RATING, e.g. 1=5 or 'Toy Story (1995)=4'")
        try:
            rating = float(value)
        except ValueError:
            raise ValueError(f"rating {pair!r}: {value!r} is not a number (expected a rating 0.5-5.0)") from None
        out[_movie_id(movie, model, titles)] = rating
    return out


def _movie_id(text: str, model: BaseRecommender, titles: pd.Series | None) -> int:
    try:
        movie_id = int(text)
    except ValueError:
        movie_id = None
    if movie_id is not None and movie_id in set(model.item_ids_.tolist()):
        return movie_id
    if titles is None:
        raise ValueError(f"movie {text!r}: not a movie id of the model's catalogue, and the model "
                         f"was saved without titles")
    lower = titles.fillna("").str.lower()
    exact = titles.index[lower == text.lower()]
    if len(exact) == 1:
        return int(exact[0])
    found = titles.index[lower.str.contains(text.lower(), regex=False)]
    if len(found) == 1:
        return int(found[0])
    if len(found) == 0:
        raise ValueError(f"movie {text!r}: no movie id or title of the model's catalogue matches")
    shown = "; ".join(f"{i}: {titles[i]}" for i in found[:8])
    raise ValueError(f"movie {text!r}: {len(found)} titles match ({shown}{' ...' if len(found) > 8 else ''}); "
                     f"give the movie id or more of the title")


def recommend_titles(
    model: BaseRecommender,
    user: int | None = None,
    ratings: Mapping[int, float] | pd.Series | pd.DataFrame | None = None,
    n: int = 10,
    soft: bool = False,
    temperature: float = 1.0,
) -> pd.DataFrame:
    """Top-``n`` recommendations (rank, movieId, title) for a ``user`` of the training data or a
    new user given by their ``ratings``. A GMM's frame carries ``attrs["cluster"]`` and
    ``attrs["proba"]`` (the user's cluster and its probabilities)."""
    if (user is None) == (ratings is None):
        raise ValueError("give either user (a user id of the training data) or ratings (a new user's "
                         "{movieId: rating})")
    kwargs: dict[str, Any] = {}
    if isinstance(model, GMMRecommender):
        kwargs = {"soft": soft, "temperature": temperature}
    if user is not None:
        ids = model.recommend(int(user), n, **kwargs)
    else:
        ids = model.recommend_new(ratings, n, **kwargs)
    titles = _titles_of(model)
    frame = pd.DataFrame({"rank": np.arange(1, len(ids) + 1), "movieId": ids,
                          "title": titles.reindex(ids).fillna("?").to_numpy() if titles is not None else "?"})
    if isinstance(model, GMMRecommender):
        if user is not None:
            row = model.assign([int(user)]).iloc[0]
            proba = row.drop("cluster").to_numpy(dtype=float)
        else:
            proba = model.proba_of_profiles(model.profile_new(ratings).to_numpy()[None, :], temperature)[0]
        frame.attrs["cluster"] = int(np.argmax(proba))
        frame.attrs["proba"] = [float(p) for p in proba]
    return frame
