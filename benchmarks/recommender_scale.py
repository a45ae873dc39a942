"""The recommender study at MovieLens-25M scale: time and peak memory of every step.

Synthesizes (or reads) a MovieLens of ``--ratings`` ratings by ``--users`` users on ``--movies``
movies (default: ml-25m's size, 25 M ratings / 162 k users / 60 k movies), then runs the study's
steps: read the CSVs (with ``--csv``), genre profiles, GMM with K chosen by BIC (on a
``--bic-max-users`` subset, final fit on every user), the report's hold-out on
``--holdout-users`` users, and popularity / item-kNN / EASE fitted and evaluated on the same
split. Prints one line per step (seconds, peak resident memory so far) and a JSON summary::

    python benchmarks/recommender_scale.py                       # ml-25m size, synthetic
    python benchmarks/recommender_scale.py --fraction 0.1 --csv             # 10 % of it
    python benchmarks/recommender_scale.py --data ~/data/ml-25m  # the real thing
"""
from __future__ import annotations

import argparse
import json
import warnings
import resource
import sys
import tempfile
import time
from pathlib import Path


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def cpu_s() -> float:
    """CPU seconds of this process (user + system, all threads): on a shared machine wall time
    grows with the load, CPU time much less."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    parser.add_argument("--skip", default="", help="comma-separated methods to skip (item_knn, ease, gmm, gmm_shares)")
    parser.add_argument("--fraction", type=float, default=None,
                        help="scale ratings, users and hold-out users of the defaults by this fraction "
                        "(movies by fraction**0.34, as the releases' catalogues grow)")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples of the hold-out users")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.fraction is not None:
        f = args.fraction
        args.ratings, args.users = int(args.ratings * f), int(args.users * f)
        args.movies = int(args.movies * f ** 0.34)
        args.holdout_users = max(100, int(args.holdout_users * f))
        args.bic_max_users = min(args.bic_max_users, args.users)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    warnings.filterwarnings("ignore", message="GMMRecommender: .* collapsed")  # printed below instead
    import numpy as np

    from kerasmt.datasets import movielens as ml
    from kerasmt.recommend import (
        EASERecommender,
        GMMRecommender,
        ItemKNNRecommender,
        PopularityRecommender,
        evaluate,
        genre_profiles,
        holdout_split,
        interaction_matrix,
    )
    from kerasmt.studies.recommender import bootstrap_table

    steps: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t_all = time.perf_counter()
    study_s = 0.0  # the study's own steps (without the benchmark-only synthesis and CSV writing)
    cpu_mark = [cpu_s()]

    def step(name: str, start: float, study: bool = True) -> None:
        nonlocal study_s
        steps[name] = time.perf_counter() - start
        now = cpu_s()
        cpu[name], cpu_mark[0] = now - cpu_mark[0], now
        study_s += steps[name] if study else 0.0
        print(f"{name:<40} {steps[name]:>8.1f} s  cpu {cpu[name]:>8.1f} s   peak {peak_gb():5.2f} GB", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        if args.data:
            ratings, movies = ml.load(args.data)
            step("load (real data)", start)
        else:
            ratings, movies = ml.synthesize_frames(n=args.ratings, n_users=args.users, n_movies=args.movies, seed=0)
            step("synthesize", start, study=False)
            if args.csv:
                start = time.perf_counter()
                root = Path(tmp) / "ml"
                root.mkdir()
                movies.to_csv(root / "movies.csv", index=False)
                ratings.to_csv(root / "ratings.csv", index=False, float_format="%.1f")
                step("write CSV", start, study=False)
                del ratings, movies
                start = time.perf_counter()
                ratings, movies = ml.load(root)
                step("load CSV (movielens.load)", start)
    n_users, n_items = ratings["userId"].nunique(), ratings["movieId"].nunique()
    print(f"data: {len(ratings):,} ratings, {n_users:,} users, {n_items:,} rated of {len(movies):,} movies", flush=True)

    cpu_mark[0] = cpu_s()
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
        print(f"  best K = {gmm.n_components_} (all ratings), cluster sizes {gmm.cluster_sizes_.tolist()}, "
              f"{len(gmm.collapsed_components_)} collapsed", flush=True)
        del gmm

    start = time.perf_counter()
    split = holdout_split(ratings, n_users=args.holdout_users, min_ratings=args.min_ratings,
                          n_remove=args.n_remove, seed=0)
    step(f"hold-out split ({len(split.users):,} users)", start)
    models = {"popularity": PopularityRecommender()}
    gmm_kw = dict(k_range=range(1, args.k_max + 1), n_seeds=args.n_seeds, bic_max_users=args.bic_max_users,
                  random_state=0)
    if "gmm" not in skip:  # K by BIC on the training ratings (the study since issue 17)
        models["gmm"] = GMMRecommender(**gmm_kw)
    if "gmm_shares" not in skip:
        models["gmm_shares"] = GMMRecommender(features="watch_share", **gmm_kw)
    if "item_knn" not in skip:
        models["item_knn"] = ItemKNNRecommender(n_neighbors=args.knn_neighbors)
    if "ease" not in skip:
        models["ease"] = EASERecommender(max_items=args.ease_max_items)
    evaluated = {}
    start = time.perf_counter()  # one rating matrix for every model, as the study does
    inter = interaction_matrix(split.train, item_ids=np.union1d(movies["movieId"].to_numpy(),
                                                                split.train["movieId"].to_numpy()), validate=False)
    step("training rating matrix", start)
    for name, model in models.items():
        start = time.perf_counter()
        model.fit_interactions(inter, movies)
        step(f"fit {name}", start)
        if name.startswith("gmm"):
            print(f"  K = {model.n_components_} (training ratings), {len(model.collapsed_components_)} "
                  f"collapsed components", flush=True)
        variants = {name: {}}
        if name == "gmm":
            variants = {"gmm_hard": {"soft": False}, "gmm_soft": {"soft": True},
                        "gmm_tempered": {"soft": True, "temperature": float(len(model.genres_))}}
        for label, kwargs in variants.items():
            start = time.perf_counter()
            evaluated[label] = evaluate(model, split, name=label, **kwargs)
            results[label] = evaluated[label].summary
            step(f"evaluate {label}", start)
        del model
        models[name] = None
    start = time.perf_counter()
    boot = bootstrap_table(evaluated, n_boot=args.n_boot)
    step(f"bootstrap ({args.n_boot} resamples)", start)
    total = time.perf_counter() - t_all
    print(f"{'study steps (without synthesis / CSV writing)':<40} {study_s:>8.1f} s  cpu {sum(cpu[k] for k in cpu if k not in ('synthesize', 'write CSV')):>8.1f} s")
    print(f"{'total':<40} {total:>8.1f} s   peak {peak_gb():5.2f} GB")
    print(boot.to_string())
    print(f"\n{'method':<12} " + " ".join(f"{k:>12}" for k in next(iter(results.values()))))
    for name, summary in results.items():
        print(f"{name:<12} " + " ".join(f"{v:>12.4f}" for v in summary.values()))
    out = {"ratings": int(len(ratings)), "users": int(n_users), "rated_movies": int(n_items),
           "seconds": steps, "cpu_seconds": cpu, "study_s": study_s, "total_s": total, "peak_gb": peak_gb(),
           "holdout": results, "bootstrap": boot.to_dict(orient="index"),
           "args": vars(args)}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
