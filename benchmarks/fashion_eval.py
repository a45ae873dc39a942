"""Peak memory of the fashion study's test evaluation: held whole vs streamed.

Writes a synthetic iMaterialist-layout dataset at the real file size (``kerasmt.scale.synthesize_real``)
with ``--test`` test images, then, in a fresh process per mode, loads it at ``--size`` px and scores
a semantic model (one convolution with a softmax over background + 11 classes: the network does
not matter here, its output's size does) on the test split the way ``train_refinenet`` does, and
the true-map oracle (``semantic_oracle``):

- ``whole``: the test split decoded into memory with its instance masks, ``model.predict`` over
  the whole split, then ``evaluate_semantic_model(data, probabilities)`` (the path before streaming);
- ``stream``: the test split in the on-disk cache (instances run-length coded), probabilities
  predicted and scored batch by batch (``predict_batches``).

Prints per mode the seconds and the process's peak resident memory after loading and at the end,
and checks that both modes give the same metrics.

    python benchmarks/fashion_eval.py --test 200 --size 512
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


def child(mode: str, data: str, cache: str, n_test: int, size: int, batch_size: int) -> dict:
    """One measurement, in this (fresh) process."""
    import warnings

    import keras

    from kerasmt import scale
    from kerasmt.studies import fashion as st

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # training and validation splits stay on disk in both modes: only the test split differs
        data_ = st.load_data(data, image_size=size, n_test=n_test, in_memory=mode == "whole", cache_dir=cache,
                             val_fraction=0.01)
    load_s = time.perf_counter() - start
    loaded = scale.peak_rss_bytes()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(data_.n_classes + 1, 3, padding="same", activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    start = time.perf_counter()
    ds = data_.eval_dataset("test", "semantic", batch_size)
    if mode == "whole":
        res = st.evaluate_semantic_model(data_, model.predict(ds, verbose=0))
    else:
        res = st.evaluate_semantic_model(data_, st.predict_batches(model, ds))
    oracle = st.semantic_oracle(data_)
    eval_s = time.perf_counter() - start
    keys = ("emr", "oa", "jss", "map50", "f1", "coco_map50", "coco_map")
    return {"mode": mode, "test_images": len(data_.test), "test_on_disk": data_.test.on_disk,
            "load_s": round(load_s, 1), "eval_s": round(eval_s, 1), "loaded_peak_mb": round(loaded / 2**20),
            "peak_rss_mb": round(scale.peak_rss_bytes() / 2**20),
            "metrics": {k: res[k] for k in keys}, "oracle": {k: getattr(oracle, k) for k in keys}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", type=int, default=200, help="test images (the study: 1,000)")
    parser.add_argument("--size", type=int, default=512, help="image size (the study: 512)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--modes", default="whole,stream")
    parser.add_argument("--root", help="folder for the dataset and caches (default: a temporary one)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="synthesis workers")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.data, args.cache, args.test, args.size, args.batch_size)), flush=True)
        return 0

    from kerasmt import scale

    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="kerasmt-fashion-eval-"))
    n = args.test + max(8, args.test // 8)  # a few training images beside the test split
    data = root / f"fashion-{n}"
    try:
        start = time.perf_counter()
        scale.synthesize_real("fashion", data, n=n, workers=args.workers)
        print(f"{n} images under {data} in {time.perf_counter() - start:.0f} s; {args.test} test images at "
              f"{args.size} px", flush=True)
        rows = []
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            cmd = [sys.executable, __file__, "--child", mode, "--data", str(data), "--cache", str(root / "cache"),
                   "--test", str(args.test), "--size", str(args.size), "--batch-size", str(args.batch_size)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            if proc.returncode != 0:
                raise RuntimeError(f"{mode}: the measurement failed:\n{proc.stderr[-4000:]}")
            r = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
            rows.append(r)
            print(f"{mode:<7} test on disk: {str(r['test_on_disk']):<5} load {r['load_s']:>6} s  eval {r['eval_s']:>6} s  "
                  f"peak after loading {r['loaded_peak_mb']:>6} MB  peak RSS {r['peak_rss_mb']:>6} MB", flush=True)
    finally:
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)
    if len(rows) > 1:
        same = all(r["metrics"] == rows[0]["metrics"] and r["oracle"] == rows[0]["oracle"] for r in rows)
        print(f"same metrics in every mode: {same}; peak RSS {rows[-1]['mode']} / {rows[0]['mode']} = "
              f"{rows[-1]['peak_rss_mb'] / max(rows[0]['peak_rss_mb'], 1):.2f}")
    print(json.dumps({"results": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
