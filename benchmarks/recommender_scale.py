"""The recommender study at MovieLens-25M scale: time and peak memory of every step.

Synthesizes (or reads) a MovieLens of ``--ratings`` ratings by ``--users`` users on ``--movies``
movies (default: ml-25m's size, 25 M ratings / 162 k users / 60 k movies), then runs the study's
steps: read the CSVs (with ``--csv``), genre profiles, GMM with K chosen by BIC (on a
``--bic-max-users`` subset, final fit on every user), the report's hold-out on
``--holdout-users`` users, and popularity / item-kNN / EASE fitted and evaluated on the same
split. Prints one line per step (seconds, peak resident memory so far) and a JSON summary::

    python benchmarks/recommender_scale.py                       # ml-25m size, synthetic
    python benchmarks/recommender_scale.py --ratings 2500000 --users 16200 --movies 20000
    python benchmarks/recommender_scale.py --data ~/data/ml-25m  # the real thing
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=25_000_000)
    parser.add_argument("--users", type=int, default=162_000)
    parser.add_argument("--movies", type=int, default=60_000)
    parser.add_argument("--data", help="a real MovieLens folder (ml-25m, ml-32m) instead of synthetic data")
    parser.add_argument("--csv", action="store_true", help="write the synthetic data to CSV and read it back with load()")
    parser.add_argument("--k-max", type=int, default=10, help="K range 1..k-max (the report: 10)")
    parser.add_argument("--n-seeds", type=int, default=3)
    parser.add_argument("--bic-max-users", type=int, default=20_000)
    parser.add_argument("--holdout-users", type=int, default=10_000)
    parser.add_argument("--min-ratings", type=int, default=100)
    parser.add_argument("--n-remove", type=int, default=50)
    parser.add_argument("--ease-max-items", type=int, default=10_000)
    parser.add_argument("--knn-neighbors", type=int, default=20)
    parser.add_argument("--skip", default="", help="comma-separated methods to skip (item_knn, ease, gmm)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    from kerasmt.datasets import movielens as ml
    from kerasmt.recommend import (
        EASERecommender,
        GMMRecommender,
        ItemKNNRecommender,
        PopularityRecommender,
        evaluate,
        genre_profiles,
        holdout_split,
    )

    steps: dict[str, float] = {}
    t_all = time.perf_counter()

    def step(name: str, start: float) -> None:
        steps[name] = time.perf_counter() - start
        print(f"{name:<34} {steps[name]:>9.1f} s   peak {peak_gb():5.1f} GB", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        if args.data:
            ratings, movies = ml.load(args.data)
            step("load (real data)", start)
        else:
            ratings, movies = ml.synthesize_frames(n=args.ratings, n_users=args.users, n_movies=args.movies, seed=0)
            step("synthesize", start)
            if args.csv:
                start = time.perf_counter()
                root = Path(tmp) / "ml"
                root.mkdir()
                movies.to_csv(root / "movies.csv", index=False)
                ratings.to_csv(root / "ratings.csv", index=False, float_format="%.1f")
                step("write CSV", start)
                del ratings, movies
                start = time.perf_counter()
                ratings, movies = ml.load(root)
                step("load CSV (movielens.load)", start)
    n_users, n_items = ratings["userId"].nunique(), ratings["movieId"].nunique()
    print(f"data: {len(ratings):,} ratings, {n_users:,} users, {n_items:,} rated of {len(movies):,} movies", flush=True)

    start = time.perf_counter()
    profiles = genre_profiles(ratings, movies)
    step("genre profiles", start)
    del profiles

    results: dict[str, dict] = {}
    if "gmm" not in skip:
        start = time.perf_counter()
        gmm = GMMRecommender(k_range=range(1, args.k_max + 1), n_seeds=args.n_seeds,
                             bic_max_users=args.bic_max_users, random_state=0).fit_ratings(ratings, movies)
        step(f"GMM + BIC (K 1..{args.k_max} x {args.n_seeds} seeds)", start)
        best_k = gmm.n_components_
        print(f"  best K = {best_k}, cluster sizes {gmm.cluster_sizes_.tolist()}", flush=True)
        del gmm

    start = time.perf_counter()
    split = holdout_split(ratings, n_users=args.holdout_users, min_ratings=args.min_ratings,
                          n_remove=args.n_remove, seed=0)
    step(f"hold-out split ({len(split.users):,} users)", start)
    models = {"popularity": PopularityRecommender()}
    if "gmm" not in skip:
        models["gmm"] = GMMRecommender(n_components=best_k, n_seeds=1, random_state=0)
    if "item_knn" not in skip:
        models["item_knn"] = ItemKNNRecommender(n_neighbors=args.knn_neighbors)
    if "ease" not in skip:
        models["ease"] = EASERecommender(max_items=args.ease_max_items)
    for name, model in models.items():
        start = time.perf_counter()
        model.fit_ratings(split.train, movies)
        step(f"fit {name}", start)
        variants = {"gmm_hard": {"soft": False}, "gmm_soft": {"soft": True}} if name == "gmm" else {name: {}}
        for label, kwargs in variants.items():
            start = time.perf_counter()
            results[label] = evaluate(model, split, **kwargs).summary
            step(f"evaluate {label}", start)
        del model
        models[name] = None
    total = time.perf_counter() - t_all
    print(f"{'total':<34} {total:>9.1f} s   peak {peak_gb():5.1f} GB")
    print(f"\n{'method':<12} " + " ".join(f"{k:>12}" for k in next(iter(results.values()))))
    for name, summary in results.items():
        print(f"{name:<12} " + " ".join(f"{v:>12.4f}" for v in summary.values()))
    out = {"ratings": int(len(ratings)), "users": int(n_users), "rated_movies": int(n_items),
           "seconds": steps, "total_s": total, "peak_gb": peak_gb(), "holdout": results,
           "args": vars(args)}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
