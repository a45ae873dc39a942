"""Mask R-CNN CPU inference at the fashion report's configuration (ResNet-101-FPN, 512x512
letterbox, 11 classes + background, at most 10 detections), random weights (time hardly depends on
them), seconds per image of one photo at a time, as the report timed it (4.4.1, 6.2.2).

Paths, measured in the same run and interleaved image by image (so that the load of a shared
machine hits both alike):

* **current**: ``maskrcnn.predictor`` of the float32 inference model (the path the study used:
  network, detection layer, mask pasting on the 512 px canvas);
* **fast**: ``maskrcnn.detect`` (letterbox of the photo, one ``tf.function`` with a fixed input
  signature, masks pasted at the photo's resolution) on
  ``maskrcnn.fast.fast_inference_model(compute="bfloat16")`` (convolutions in bfloat16 with every
  BatchNormalization folded into the convolution before it; proposals, RoIAlign and detections in
  float32).

Tables: (1) the report's configuration, current vs fast, and the ratio; (2) the report's
max-detections experiment (100 -> 10; the report: 2.1 -> 1.5 s); (3) the report's image-size sweep
(128 / 256 / 512 / 1024; the report: 0.1 / 1.0 / 1.7 / 4.0 s). The photos are 640x480 noise
(letterboxed by ``detect``; the current path gets them letterboxed beforehand, untimed).
``--proposals 300`` adds rows with fewer RoIs after the RPN (not the report's setting: it kept
Matterport's POST_NMS_ROIS_INFERENCE = 1000; the classifier head's cost is proportional to it).
``--profile`` times the fast path alone under TensorFlow's profiler and prints, per part of the
network, its op time, its multiply-accumulates and the rate (GMAC/s): how near each part runs to
what the CPU can do.

Usage::

    python benchmarks/maskrcnn_cpu.py [--images 4] [--sizes 128 256 512 1024] [--backbone resnet101] [--threads 2]
                                      [--proposals 300] [--profile]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: the report's timings (seconds per image, 4-core i7-7820HQ laptop)
REPORT_SIZES = {128: 0.1, 256: 1.0, 512: 1.7, 1024: 4.0}
REPORT_MAX_DETECTIONS = {100: 2.1, 10: 1.5}


def _paths(config, photos):
    """(current predictor on letterboxed images, fast detect on the photos) of one configuration."""
    import numpy as np

    from kerasmt.models import maskrcnn as mr
    from kerasmt.models.maskrcnn.detect import letterbox
    from kerasmt.models.maskrcnn.fast import fast_inference_model

    model = mr.build_maskrcnn(config=config)
    current = mr.predictor(model.inference_model)
    fast = fast_inference_model(model, "bfloat16")
    boxed = np.stack([letterbox(p, config.image_size)[0] for p in photos])
    return (lambda i: current(boxed[i])), (lambda i: mr.detect(fast, [photos[i]]))


def _interleaved(fns: dict, n: int) -> dict:
    """Seconds per image of each function, calls interleaved image by image after one warm-up each."""
    import numpy as np

    for fn in fns.values():
        fn(0)
    times: dict = {k: [] for k in fns}
    for i in range(n):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn(i)
            times[k].append(time.perf_counter() - start)
    return {k: (float(np.mean(v)), float(np.min(v))) for k, v in times.items()}


#: parts of the network, by the first name in an op's scope that matches (the rest: proposals,
#: detection, RoI bookkeeping)
PARTS = (("rpn_model", "RPN"), ("backbone", "backbone"), ("fpn_", "FPN"), ("mrcnn_classifier", "box head"),
         ("mrcnn_mask", "mask head"))


def _part_gmac(model, config) -> dict:
    """Multiply-accumulates (GMAC) per part for one image: each convolution's output size times its
    kernel, the RPN once per pyramid level, the box head per RoI after the RPN, the mask head per
    detection."""
    import keras
    import numpy as np

    from kerasmt.models.fold import _leaf_layers

    rois, dets = config.post_nms_rois_inference, config.detection_max_instances
    levels = [(config.image_size // s) ** 2 for s in (4, 8, 16, 32, 64)]
    gmac: dict = {}
    for path, layer in _leaf_layers(model):
        inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
        if not isinstance(inner, (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.Dense)):
            continue
        kernel = float(np.prod(inner.kernel.shape))
        out = layer.output.shape
        if isinstance(inner, keras.layers.Dense):
            macs = kernel
        elif isinstance(inner, keras.layers.Conv2DTranspose):
            macs = kernel * float(np.prod(layer.input.shape[-3:-1]))  # per input pixel
        elif out[-3] is None:  # the RPN, shared by the levels
            macs = kernel * sum(levels)
        else:
            macs = kernel * float(out[-3] * out[-2])
        part = next((name for key, name in PARTS if key in path), "other")
        macs *= rois if part == "box head" else dets if part == "mask head" else 1
        gmac[part] = gmac.get(part, 0.0) + macs / 1e9
    return gmac


def _profile(config, photo, calls: int = 4) -> None:
    """Where the fast path's time goes at ``config``: TensorFlow's profiler over ``calls`` calls of
    the compiled network, op time per part against its multiply-accumulates (GMAC/s: how close
    each part runs to the CPU's peak)."""
    import glob
    import tempfile

    import numpy as np
    import pandas as pd
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from kerasmt.models import maskrcnn as mr
    from kerasmt.models.maskrcnn.detect import compiled_inference, letterbox
    from kerasmt.models.maskrcnn.fast import fast_inference_model

    fast = fast_inference_model(mr.build_maskrcnn(config=config), "bfloat16")
    fn = compiled_inference(fast)
    x = tf.constant(letterbox(photo, config.image_size)[0][None], tf.float32)
    for _ in range(3):
        fn(x)
    with tempfile.TemporaryDirectory() as logdir:
        start = time.perf_counter()
        tf.profiler.experimental.start(logdir)
        for _ in range(calls):
            tf.nest.map_structure(lambda t: t.numpy(), fn(x))
        tf.profiler.experimental.stop()
        wall = (time.perf_counter() - start) / calls
        space = xplane_pb2.XSpace()
        space.ParseFromString(open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb").read())
    seconds: dict = {}
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or name.startswith("ExecutorState"):  # bookkeeping, not an op
                    continue
                part = next((label for key, label in PARTS if key in name), "other")
                seconds[part] = seconds.get(part, 0.0) + event.duration_ps / 1e12 / calls
    gmac = _part_gmac(fast, config)
    table = pd.DataFrame([{"part": part, "ms": 1e3 * seconds.get(part, 0.0), "GMAC": gmac.get(part, 0.0)}
                          for _, part in PARTS + (("", "other"),)])
    table["GMAC/s"] = (table["GMAC"] / (table["ms"] / 1e3)).where(table["GMAC"] > 0.01)
    total = table[["ms", "GMAC"]].sum()
    print(f"\nfast path, {config.image_size} px, {config.post_nms_rois_inference} RoIs, "
          f"{config.detection_max_instances} detections: op time per part (profiler, {calls} calls)")
    print(table.round(2).to_string(index=False))
    print(f"ops {total['ms']:.0f} ms (wall {1e3 * wall:.0f} ms per call under the profiler, one op at a time), "
          f"{total['GMAC']:.1f} GMAC, {total['GMAC'] / (total['ms'] / 1e3):.0f} GMAC/s overall")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs="*", default=[128, 256, 512, 1024])
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: TensorFlow's default)")
    parser.add_argument("--proposals", type=int, nargs="*", default=[],
                        help="also time the fast path with this many RoIs after the RPN's NMS "
                             "(POST_NMS_ROIS_INFERENCE; the report kept Matterport's 1000)")
    parser.add_argument("--profile", action="store_true",
                        help="only the fast path at the report's configuration: time and GMAC per part")
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if args.profile:  # one op at a time, so that each op's time is its own (the wall time is the same)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from kerasmt.models import maskrcnn as mr

    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(max(1, args.images))]
    base = mr.MaskRCNNConfig(num_classes=args.classes + 1, backbone=args.backbone, image_size=512,
                             detection_max_instances=10)
    if args.profile:
        _profile(base, photos[0])
        return
    print(f"Mask R-CNN {args.backbone}-FPN, {args.classes} classes, random weights, {len(photos)} photos "
          f"640x480, CPU threads: {os.cpu_count()} visible; seconds per image (mean; min)\n", flush=True)

    rows = []
    for max_det in (10, 100):
        current, fast = _paths(base.replace(detection_max_instances=max_det), photos)
        t = _interleaved({"current": current, "fast": fast}, len(photos))
        rows.append({"image size": 512, "max detections": max_det, "current (s)": t["current"][0],
                     "current min": t["current"][1], "fast (s)": t["fast"][0], "fast min": t["fast"][1],
                     "fast / current": t["fast"][0] / t["current"][0],
                     "report (s)": REPORT_MAX_DETECTIONS[max_det]})
        print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
    for size in args.sizes:
        if size == 512:
            continue
        anchors = tuple(s * size / 512 for s in base.rpn_anchor_scales)
        current, fast = _paths(base.replace(image_size=size, rpn_anchor_scales=anchors), photos)
        t = _interleaved({"current": current, "fast": fast}, len(photos))
        rows.append({"image size": size, "max detections": 10, "current (s)": t["current"][0],
                     "current min": t["current"][1], "fast (s)": t["fast"][0], "fast min": t["fast"][1],
                     "fast / current": t["fast"][0] / t["current"][0], "report (s)": REPORT_SIZES.get(size)})
        print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
    for count in args.proposals:
        current, fast = _paths(base.replace(post_nms_rois_inference=count), photos)
        t = _interleaved({"current": current, "fast": fast}, len(photos))
        rows.append({"image size": 512, "max detections": 10, "proposals": count, "current (s)": t["current"][0],
                     "current min": t["current"][1], "fast (s)": t["fast"][0], "fast min": t["fast"][1],
                     "fast / current": t["fast"][0] / t["current"][0], "report (s)": None})
        print(pd.DataFrame(rows[-1:]).round(3).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    if "proposals" not in table:  # no --proposals rows: every row ran at the configuration's count
        table["proposals"] = base.post_nms_rois_inference
    table["proposals"] = table["proposals"].fillna(base.post_nms_rois_inference).astype(int)
    table = table.sort_values(["proposals", "max detections", "image size"], ascending=[False, True, True]).round(3)
    print("\n" + table.to_string(index=False))
    report = table[(table["image size"] == 512) & (table["max detections"] == 10)
                   & (table["proposals"] == base.post_nms_rois_inference)].iloc[0]
    print(f"\nreport's configuration (512 px, max 10 detections): current {report['current (s)']:.2f} s, fast "
          f"{report['fast (s)']:.2f} s per image, fast / current = {report['fast / current']:.2f}")


if __name__ == "__main__":
    main()
