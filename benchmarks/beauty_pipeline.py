"""Beauty study speed: the cached tf.data pipeline vs decode-and-augment every epoch, and TL head
training on cached bottleneck features vs through the frozen backbone. Ratios are measured in the
same run.

1. **Input pipeline.** The report's ``ImageDataGenerator.flow_from_directory`` read, decoded,
   resized and augmented every JPEG in every epoch (~1,450 s per epoch on a K80, CPU-bound).
   Baseline: ``kerasmt.pipeline.image_dataset(cache=None)`` (parallel tf.data decode + resize + the
   report's augmentation each epoch). kerasmt: ``cache="memory"`` (decoded once to uint8, then only
   the augmentation per epoch). Each with the augmentation as one fused affine map
   (``finetune.RandomAffine``, the default), as Keras' five chained layers, and without. Reported: images/second of the best of ``--repeats`` epochs after a
   warm-up (steady state), with and without augmentation, and the one-off decode time.
2. **TL head training.** Baseline: ``model.fit`` of the TL network (frozen InceptionV3 + head) on
   images. kerasmt: the head alone on cached pooled features (``finetune.head_model``). Reported:
   images/second of an epoch after the first (tracing excluded), the one-off feature extraction and
   the break-even number of epochs.

Usage::

    python benchmarks/beauty_pipeline.py [--n 8] [--px 400] [--size 150] [--head-size 75] [--repeats 3] [--data ROOT]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _epoch(ds) -> tuple[float, int]:
    start = time.perf_counter()
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    return time.perf_counter() - start, n


def bench_pipeline(manifest, size: int, batch: int, repeats: int = 3) -> dict:
    from kerasmt import pipeline
    from kerasmt.models import finetune as ft

    out = {"n": len(manifest)}
    start = time.perf_counter()
    images = pipeline.load_images(manifest["path"].tolist(), size, 3)
    out["decode_s"] = time.perf_counter() - start
    augmentations = {"fused": ft.report_augmentation(seed=0), "chained": ft.report_augmentation(seed=0, fused=False),
                     "none": None}
    for label, aug in augmentations.items():
        streamed = pipeline.image_dataset(manifest, "label", size, 3, batch, shuffle=True, cache=None, augment=aug)
        cached = pipeline.image_dataset(manifest, "label", size, 3, batch, shuffle=True, images=images, augment=aug)
        for ds in (streamed, cached):
            _epoch(ds.take(2))  # warm-up: graph tracing
        times: dict[str, list[float]] = {"uncached": [], "cached": []}
        for _ in range(repeats):  # interleaved, best epoch kept (the machine may be shared)
            for name, ds in (("uncached", streamed), ("cached", cached)):
                seconds, n = _epoch(ds)
                assert n == len(manifest)
                times[name].append(seconds)
        for name, values in times.items():
            out[f"{name}_{label}_s"] = min(values)
    return out


def bench_head(manifest, size: int, batch: int) -> dict:
    import keras

    from kerasmt import pipeline
    from kerasmt.models import finetune as ft

    images = pipeline.load_images(manifest["path"].tolist(), size, 3)
    labels = manifest["label"].to_numpy()
    n_classes = int(labels.max()) + 1
    keras.utils.set_random_seed(0)
    model = ft.finetune_model((size, size, 3), None, n_classes=n_classes, backbone="InceptionV3", regime="tl")
    ft.compile_report(model)
    ds = pipeline.image_dataset(manifest, "label", size, 3, batch, shuffle=True, images=images)
    model.fit(ds, epochs=1, verbose=0, shuffle=False)  # tracing
    start = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0, shuffle=False)
    out = {"frozen_base_s": time.perf_counter() - start, "n": len(labels)}
    start = time.perf_counter()
    features = ft.cached_outputs(ft.feature_model(model), images, 128)
    out["extract_s"] = time.perf_counter() - start
    head = ft.head_model(model)
    ft.compile_report(head)
    head.fit(features, labels, batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    head.fit(features, labels, batch_size=batch, epochs=1, verbose=0)
    out["cached_head_s"] = time.perf_counter() - start
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=8, help="synthetic images per class (73 classes)")
    parser.add_argument("--px", type=int, default=400, help="side of the synthetic JPEG files")
    parser.add_argument("--size", type=int, default=150, help="decoded image side for the pipeline benchmark")
    parser.add_argument("--head-size", type=int, default=75, help="InceptionV3 input side for the head benchmark")
    parser.add_argument("--batch", type=int, default=64, help="batch size (the report's 64)")
    parser.add_argument("--data", help="a real folder-per-class root instead of synthetic images")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per pipeline (best kept)")
    args = parser.parse_args(argv)

    from kerasmt.datasets import folder_classes as fc
    from kerasmt.utils import quiet_tensorflow

    quiet_tensorflow()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data) if args.data else fc.synthesize(Path(tmp) / "beauty", n=args.n, seed=0,
                                                                 image_size=args.px)
        manifest = fc.load(root, split=None)
        what = "real" if args.data else f"synthetic {args.px}x{args.px} JPEG"
        print(f"Beauty, {len(manifest)} images ({what}), {os.cpu_count()} CPU(s)")
        p = bench_pipeline(manifest, args.size, args.batch, args.repeats)
        h = bench_head(manifest, args.head_size, args.batch)
    n = p["n"]
    print(f"\n1. input pipeline, {args.size}x{args.size} RGB, batch {args.batch}, images/s per epoch")
    print(f"   {'augmentation':<36} {'decode every epoch':>18} {'uint8 cache':>12} {'ratio':>7}")
    rows = (("report's, one affine map (default)", "fused"), ("report's, 5 chained Keras layers", "chained"),
            ("none", "none"))
    for text, key in rows:
        u, c = p[f"uncached_{key}_s"], p[f"cached_{key}_s"]
        print(f"   {text:<36} {n / u:>18.0f} {n / c:>12.0f} {u / c:>6.1f}x")
    print(f"   one-off decode into the cache: {p['decode_s']:.1f} s")
    print(f"   speed-up per epoch, cached + fused vs decode + chained layers: "
          f"{p['uncached_chained_s'] / p['cached_fused_s']:.1f}x")
    n = h["n"]
    print(f"\n2. TL head training, InceptionV3 {args.head_size}x{args.head_size}, batch {args.batch}, one epoch")
    print(f"   {'training':<34} {'images/s':>10}")
    print(f"   {'through the frozen backbone':<34} {n / h['frozen_base_s']:>10.0f}")
    print(f"   {'head on cached features (kerasmt)':<34} {n / h['cached_head_s']:>10.0f}   (one-off extraction {h['extract_s']:.1f} s)")
    print(f"   speed-up per epoch (frozen base / cached): {h['frozen_base_s'] / h['cached_head_s']:.1f}x")
    gain = h["frozen_base_s"] - h["cached_head_s"]
    if gain > 0:
        print(f"   extraction pays for itself after {h['extract_s'] / gain:.1f} epoch(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
