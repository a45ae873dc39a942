"""Genre-profile build: kerasmt's sparse products vs the report's row-by-row algorithm.

Both run on the same synthetic MovieLens ratings (ml-latest-small's 100,836 ratings by default)
in this process; the outputs are checked to be equal and the speed-up is printed. Usage::

    python benchmarks/recommender_profiles.py [--n 100836] [--repeats 5] [--data MOVIELENS_DIR]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_836, help="synthetic ratings (ml-latest-small: 100,836)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the vectorised build (best kept)")
    parser.add_argument("--row-repeats", type=int, default=1, help="runs of the row-by-row build (best kept)")
    parser.add_argument("--data", help="a real MovieLens folder instead of synthetic ratings")
    args = parser.parse_args(argv)

    from kerasmt.datasets import movielens as ml
    from kerasmt.recommend import genre_profiles, genre_profiles_rowwise

    if args.data:
        ratings, movies = ml.load(args.data)
        source = args.data
    else:
        ratings, movies = ml.synthesize_frames(n=args.n, seed=0)
        source = "synthetic"
    genre_profiles(ratings.head(1000), movies)  # warm-up (imports, first-call overheads)
    fast_s, fast = best_of(lambda: genre_profiles(ratings, movies), args.repeats)
    slow_s, slow = best_of(lambda: genre_profiles_rowwise(ratings, movies), args.row_repeats)
    slow = slow.reindex(columns=fast.columns, fill_value=0.0)
    assert fast.index.tolist() == slow.index.tolist(), "the two builds disagree on the users"
    np.testing.assert_allclose(fast.to_numpy(), slow.to_numpy(), rtol=1e-10)
    print(f"genre profiles of {len(ratings):,} ratings ({source}): {fast.shape[0]} users x {fast.shape[1]} genres; "
          f"outputs equal")
    print(f"{'build':<28} {'seconds':>10}")
    print(f"{'row by row (report)':<28} {slow_s:>10.3f}")
    print(f"{'sparse products (kerasmt)':<28} {fast_s:>10.4f}")
    print(f"speed-up (row by row / kerasmt): {slow_s / fast_s:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
