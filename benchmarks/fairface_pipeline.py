"""FairFace loading: kerasmt's tf.data pipeline vs the report's approach, on the same images.

The report (seed 002) read every image with PIL in a ``ThreadPoolExecutor``, flattened them into
Python lists, Min-Max scaled them with scikit-learn (float64) and kept the whole set in memory.
kerasmt decodes in parallel with TensorFlow (JPEG DCT-domain downscaling), keeps ``uint8`` and
converts batches to ``float32`` on the fly.

Both approaches run in fresh subprocesses on the same files; each reports images/second (from
file bytes to model-ready float arrays for the whole set) and its peak resident memory above the
process's memory after imports and a 32-image warm-up (excluded from the timing). Ratios are printed against the report's approach measured in the
same run. Usage::

    python benchmarks/fairface_pipeline.py [--n 6000] [--data FAIRFACE_ROOT] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = r"""
import json, os, resource, sys, time
approach, paths_file = sys.argv[1], sys.argv[2]
paths = open(paths_file).read().split("\n")
import numpy as np
if approach == "report":
    from concurrent.futures import ThreadPoolExecutor
    from PIL import Image
    from sklearn.preprocessing import MinMaxScaler
else:
    import tensorflow as tf
    from kerasmt import pipeline
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
# Warm-up on a few files (imports, thread pools, TensorFlow graph tracing), excluded from timing.
if approach == "report":
    from PIL import Image as _I
    [_I.open(p).convert("L").resize((32, 32)) for p in paths[:32]]
else:
    pipeline.decode_images(paths[:32], (32, 32), channels=1)
base = rss_mb()
start = time.perf_counter()
if approach == "report":
    def read_image(path):
        with Image.open(path) as image:  # the report's files were already 32x32 grey
            return np.asarray(image.convert("L").resize((32, 32), Image.BILINEAR))
    with ThreadPoolExecutor() as executor:
        images = list(executor.map(read_image, paths))
    flat = [img.reshape(32 * 32) for img in images]
    scaled = MinMaxScaler().fit(flat).transform(flat)  # float64, as in the report
    held = scaled.nbytes
    checksum = float(scaled[:, :10].sum())
else:
    images = pipeline.decode_images(paths, (32, 32), channels=1)
    held = images.nbytes
    ds = pipeline.image_dataset(
        __import__("pandas").DataFrame({"path": paths}), None, images=images, batch_size=256)
    checksum = 0.0
    for batch in ds:  # every image converted to a model-ready float32 batch
        checksum += float(batch[0, 0, 0, 0])
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "peak_mb": rss_mb() - base, "held_mb": held / 2**20, "n": len(paths)}))
"""


def run(approach: str, paths_file: Path) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, approach, str(paths_file)], capture_output=True, text=True, env=env
    )
    if proc.returncode:
        raise SystemExit(f"{approach} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=6000, help="synthetic images (224x224 colour JPEG)")
    parser.add_argument("--data", help="a real FairFace root instead of synthetic images")
    parser.add_argument("--repeats", type=int, default=3, help="runs per approach (best time kept)")
    args = parser.parse_args(argv)

    from kerasmt.datasets import fairface

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data) if args.data else fairface.synthesize(Path(tmp) / "ff", n_train=args.n, n_val=0, seed=0)
        manifest = fairface.load(root, "train")
        if args.data and args.n:
            manifest = manifest.iloc[: args.n]
        paths_file = Path(tmp) / "paths.txt"
        paths_file.write_text("\n".join(manifest["path"]))
        results = {}
        for approach in ("report", "kerasmt"):
            runs = [run(approach, paths_file) for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["seconds"])
            best["peak_mb"] = max(r["peak_mb"] for r in runs)
            results[approach] = best
    n = results["report"]["n"]
    print(f"FairFace loading, {n} images ({'real' if args.data else 'synthetic 224x224 JPEG'}), best of {args.repeats}")
    print(f"{'approach':<10} {'images/s':>10} {'peak MB':>9} {'held MB':>9}")
    for name, r in results.items():
        print(f"{name:<10} {r['n'] / r['seconds']:>10.0f} {r['peak_mb']:>9.1f} {r['held_mb']:>9.2f}")
    rep, ours = results["report"], results["kerasmt"]
    print(f"speed-up (images/s, kerasmt / report): {rep['seconds'] / ours['seconds']:.2f}x")
    print(f"peak memory ratio (report / kerasmt):   {rep['peak_mb'] / max(ours['peak_mb'], 1e-9):.2f}x")
    print(f"held array ratio (report / kerasmt):    {rep['held_mb'] / ours['held_mb']:.2f}x "
          f"(86,744 images: {86744 * 1024 * 8 / 2**20:.0f} MB float64 vs {86744 * 1024 / 2**20:.0f} MB uint8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
