"""Peak memory and speed of each image study's data path at a fraction of its real dataset size.

For every study and fraction: write a synthetic dataset of that many images at the real file
image size (``kerasmt.scale.synthesize_real``: a few hundred drawn images, the rest byte copies;
reused when it exists), then, in a fresh process, load it as the study does (decoding once into
the on-disk cache when the decoded images exceed 1 GiB), read one pass of the training input
(augmentation included) and train the study's model on a slice of an epoch. Prints per run the
seconds to load (decode and cache), the data pass and training images/s and the process's peak
resident memory (after the data pass, and at the end), then per study the ratio of peak memory at the largest fraction to the smallest
(goal: at most 1.2 for 100 % vs 10 %; every peak at most 4 GiB).

    python benchmarks/scale.py                                   # 10 % and 100 % of every study
    python benchmarks/scale.py --studies fairface,utkface --fractions 0.01,0.1
    python benchmarks/scale.py --studies beauty --fractions 0.1,1 --pass-images 4096 --steps 2

The real sizes (``kerasmt.scale.REAL``): FairFace 97,698 images (224 px, used at 32x32 grey),
UTKFace 23,708 (200x200, every one used at 128 px), Beauty 72,880 (299 px, 73 classes),
iMaterialist 45,195 (512-1024 px, letterboxed to 512). Datasets and caches go under ``--root``
(default: a temporary folder, deleted at the end unless ``--keep``); they take disk space: about
1.8 GB of JPEGs and 19.5 GB of decoded cache for Beauty at 100 %, about 2 + 47 GB for fashion.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 1 << 30


def child(study: str, data: str, cache: str, steps: int, pass_images: int | None) -> dict:
    """One measurement, in this (fresh) process."""
    import numpy as np

    from kerasmt import scale

    start = time.perf_counter()
    work = scale.workload(study, data, cache_dir=cache)
    load_s = time.perf_counter() - start
    rss_loaded = scale.rss_bytes()
    # one pass of the training input (or its first pass_images images)
    limit = work.n_train if pass_images is None else min(work.n_train, pass_images)
    seen, start = 0, time.perf_counter()
    for batch in work.train:
        x = batch[0] if isinstance(batch, tuple) else batch
        seen += int(np.shape(x)[0])
        if seen >= limit:
            break
    pass_s = time.perf_counter() - start
    data_peak = scale.peak_rss_bytes()  # loading, caching and one pass of the input: the data path
    # a slice of a training epoch: the first step compiles, the others are timed
    model = work.build()
    timed = work.train.take(steps + 1)
    model.fit(timed.take(1), epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(timed.skip(1), epochs=1, verbose=0)
    train_s = time.perf_counter() - start
    return {"study": study, "images": scale_images(study, data), "train_images": work.n_train,
            "load_s": round(load_s, 1), "pass_images": seen, "pass_ips": round(seen / max(pass_s, 1e-9), 1),
            "train_ips": round(steps * work.batch_size / max(train_s, 1e-9), 2),
            "rss_loaded_mb": round(rss_loaded / 2**20), "data_peak_mb": round(data_peak / 2**20),
            "peak_rss_mb": round(scale.peak_rss_bytes() / 2**20)}


def scale_images(study: str, data: str) -> int:
    root = Path(data)
    return sum(1 for p in root.rglob("*.jpg"))


def run(study: str, fraction: float, root: Path, steps: int, pass_images: int | None, workers: int) -> dict:
    from kerasmt import scale

    n = scale.n_images(study, fraction)
    data = root / f"{study}-{n}"
    start = time.perf_counter()
    scale.synthesize_real(study, data, n=n, workers=workers)
    synth_s = time.perf_counter() - start
    cache = root / f"{study}-{n}-cache"
    cmd = [sys.executable, __file__, "--child", study, "--data", str(data), "--cache", str(cache),
           "--steps", str(steps)]
    if pass_images:
        cmd += ["--pass-images", str(pass_images)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{study} at {fraction:g}: the measurement failed:\n{proc.stderr[-4000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    result = json.loads(line)
    result.update(fraction=fraction, synth_s=round(synth_s, 1),
                  cache_gb=round(sum(p.stat().st_size for p in cache.rglob("*.npy")) / 1e9, 2) if cache.exists() else 0.0)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", default="fairface,utkface,beauty,fashion",
                        help="comma-separated studies (default: all four image studies)")
    parser.add_argument("--fractions", default="0.1,1.0", help="comma-separated fractions of the real size")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (after one compile step)")
    parser.add_argument("--pass-images", type=int, default=None,
                        help="read only this many training images in the data pass (default: all)")
    parser.add_argument("--root", help="folder for the datasets and caches (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the datasets and caches")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="synthesis workers")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.data, args.cache, args.steps, args.pass_images)), flush=True)
        return 0

    from kerasmt import scale

    studies = [s.strip() for s in args.studies.split(",") if s.strip()]
    unknown = [s for s in studies if s not in scale.REAL]
    if unknown:
        parser.error(f"unknown studies {unknown}; known: {sorted(scale.REAL)}")
    fractions = sorted(float(f) for f in args.fractions.split(","))
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        parser.error("--fractions must be in (0, 1]")
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="kerasmt-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"data and caches under {root}; {os.cpu_count()} CPU cores; in-memory limit "
          f"{int(os.environ.get('KERASMT_IN_MEMORY_MB', 1024))} MB")
    header = (f"{'study':<9} {'fraction':>8} {'images':>7} {'synth s':>8} {'load s':>7} {'cache GB':>8} "
              f"{'pass img/s':>10} {'train img/s':>11} {'data peak MB':>12} {'peak RSS MB':>11}")
    print(header, flush=True)
    results: dict[str, list[dict]] = {}
    try:
        for study in studies:
            for fraction in fractions:
                r = run(study, fraction, root, args.steps, args.pass_images, args.workers)
                results.setdefault(study, []).append(r)
                print(f"{study:<9} {fraction:>8.3g} {r['images']:>7} {r['synth_s']:>8} {r['load_s']:>7} "
                      f"{r['cache_gb']:>8} {r['pass_ips']:>10} {r['train_ips']:>11} {r.get('data_peak_mb', '-'):>12} "
                      f"{r['peak_rss_mb']:>11}",
                      flush=True)
    finally:
        if not args.keep and not args.root:
            shutil.rmtree(root, ignore_errors=True)
    print()
    worst = 0.0
    for study, rows in results.items():
        if len(rows) < 2:
            continue
        low, high = rows[0], rows[-1]
        ratio = high["peak_rss_mb"] / max(low["peak_rss_mb"], 1)
        data_ratio = high["data_peak_mb"] / max(low["data_peak_mb"], 1)
        worst = max(worst, ratio)
        print(f"{study}: peak RSS at {high['fraction']:g} / at {low['fraction']:g} of the real size = "
              f"{ratio:.2f} ({high['peak_rss_mb']} / {low['peak_rss_mb']} MB, "
              f"{high['images']:,} / {low['images']:,} images; goal <= 1.2, peak <= {4 * 1024} MB); "
              f"data path alone {data_ratio:.2f} ({high['data_peak_mb']} / {low['data_peak_mb']} MB)")
    over = [f"{s} {r['fraction']:g}" for s, rows in results.items() for r in rows if r["peak_rss_mb"] > 4 * 1024]
    print("every peak within 4 GiB" if not over else f"peaks above 4 GiB: {', '.join(over)}")
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
