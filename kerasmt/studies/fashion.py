"""The fashion study (seed 001): classify and segment worn fashion items (iMaterialist 2019).

The report trained Mask R-CNN (its winner, run "Full4") and RefineNet (22 runs, all failed:
all-background output) on 11 classes, and scored them with multi-label metrics (EMR, OA, JSS),
instance metrics (mAP@50, F1) and CPU inference time, combined into its TTO score (Tables 8-10).
This module holds the report's numbers and the steps ``notebooks/fashion.ipynb`` runs::

    from kerasmt.studies import fashion as study
    data = study.load_data(None, image_size=128, n_test=40)      # synthetic; or the Kaggle folder
    rn = study.train_refinenet(data, encoder="light", weights=None, epochs=20, out_dir="runs/fashion")
    ml = study.train_multilabel(data, backbone="light", weights=None, epochs=20, out_dir="runs/fashion")
    study.results_table([ml, rn])                                # report Tables 8-10 format

Every model is summarised by a :class:`ModelResult`; :func:`results_table` takes any list of them
(one row per model), so another model (Mask R-CNN) is one more ``ModelResult``.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
import time
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerasmt import diskarray
from kerasmt import metrics_instances as mi
from kerasmt.datasets import fashion as fd
from kerasmt.utils import cache_dir as user_cache_dir
from kerasmt.utils import set_seed

# ------------------------------------------------------------------------------ report numbers
#: Table 8: Mask R-CNN runs on the client set C (460 images): EMR, OA, JSS
REPORT_TABLE_8 = pd.DataFrame(
    [("Base1", 0.354, 0.810, 0.742), ("Base2", 0.318, 0.788, 0.715), ("Base3", 0.332, 0.794, 0.736),
     ("Base4", 0.049, 0.617, 0.411), ("Full1", 0.255, 0.875, 0.668), ("Full2", 0.013, 0.839, 0.509),
     ("Full3", 0.134, 0.864, 0.609), ("Full4", 0.292, 0.887, 0.699)],
    columns=["run", "emr", "oa", "jss"]).set_index("run")
#: Table 9: Mask R-CNN runs on the iMaterialist test set M_test (1,000 images)
REPORT_TABLE_9 = pd.DataFrame(
    [("Base1", 1.35, 0.289, 0.771, 0.622, 0.63, 0.51), ("Base2", 1.39, 0.232, 0.746, 0.591, 0.62, 0.50),
     ("Base3", 1.34, 0.231, 0.747, 0.608, 0.65, 0.52), ("Base4", 0.66, 0.143, 0.694, 0.398, 0.09, 0.09),
     ("Full1", 1.39, 0.303, 0.881, 0.611, 0.62, 0.52), ("Full2", 1.36, 0.323, 0.881, 0.579, 0.58, 0.51),
     ("Full3", 1.35, 0.367, 0.894, 0.635, 0.65, 0.54), ("Full4", 1.37, 0.379, 0.896, 0.677, 0.71, 0.56)],
    columns=["run", "seconds_per_image", "emr", "oa", "jss", "map50", "f1"]).set_index("run")
#: Table 10 as printed: combination metrics
REPORT_TABLE_10 = pd.DataFrame(
    [("Base1", 0.56, 0.48, 0.57, 0.14, 1.75), ("Base2", 0.53, 0.44, 0.56, 0.14, 1.75),
     ("Base3", 0.54, 0.44, 0.59, 0.13, 1.71), ("Base4", 0.26, 0.32, 0.09, 0.07, 0.74),
     ("Full1", 0.50, 0.50, 0.57, 0.14, 1.68), ("Full2", 0.32, 0.50, 0.55, 0.14, 1.38),
     ("Full3", 0.41, 0.54, 0.60, 0.14, 1.63), ("Full4", 0.53, 0.56, 0.64, 0.14, 1.85)],
    columns=["run", "class_c", "class_m", "segmentation", "speed", "tto"]).set_index("run")
#: the report's final model
REPORT_BEST = "Full4"
#: Appendix E: per-class accuracy of Full4 on C and M_test, and the printed overall accuracy
REPORT_APPENDIX_E = pd.DataFrame(
    {"client": [0.804, 0.741, 0.798, 0.769, 0.905, 0.919, 0.921, 0.985, 0.974, 0.936, 1.000],
     "test": [0.886, 0.728, 0.964, 0.873, 0.863, 0.883, 0.863, 0.975, 0.930, 0.889, 0.998]},
    index=pd.Index(fd.class_names("full"), name="class"))
REPORT_APPENDIX_E_TOTAL = {"client": 0.887, "test": 0.896}
#: dataset sizes the report states (sections 4.1, 4.2.1, 5.1): (images, segments)
REPORT_COUNTS: dict[str, tuple[int, int]] = {
    "all": (45_195, 331_213),
    "drop 18 garment parts": (45_194, 163_371),
    "keep base set (5 classes)": (42_031, 101_284),
    "keep full set (11 classes)": (44_234, 122_704),
    "test set M_test": (1_000, 2_777),
    "client set C": (460, 1_968),
}
#: worked example of report Table 2 (one image, 5 classes)
TABLE_2 = {"classes": ["top", "jacket", "pants", "dress", "shoe"], "true": [1, 1, 1, 0, 1],
           "predicted": [0, 1, 1, 0, 1], "emr": 0.0, "oa": 0.80, "jss": 0.75, "classification": 0.383}
#: worked example of report Table 11 (one client image). The table prints 12 columns (0..11)
#: but the full set has 11 classes; its 81.8 % label accuracy is 9/11, i.e. over classes 0..10.
TABLE_11 = {"true": [1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], "predicted": [0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0],
            "oa": 0.818, "emr": 0.0, "jss": 0.60}
#: the report's CPU (4-core Intel i7-7820HQ laptop) and its inference-time limit
REPORT_CPU = "Intel Core i7-7820HQ, 4 cores (report)"
TIME_LIMIT_SECONDS = 2.0
#: connected components smaller than this fraction of the image are not instances
MIN_AREA_FRACTION = 0.0007
#: components whose mean class probability is lower are dropped: Matterport's default
#: DETECTION_MIN_CONFIDENCE (0.7), the detection threshold of the report's Mask R-CNN code
MIN_SCORE = 0.7


# ----------------------------------------------------------------------------- worked examples
def table_2_example() -> pd.DataFrame:
    """Report Table 2 recomputed: EMR, OA, JSS and the Classification score beside the printed ones."""
    y, z = np.array([TABLE_2["true"]]), np.array([TABLE_2["predicted"]])
    ours = mi.multilabel_scores(y, z)
    ours["classification"] = mi.classification_score(ours["emr"], ours["oa"], ours["jss"])
    return pd.DataFrame({"report": {k: TABLE_2[k] for k in ours}, "recomputed": ours}).round(3)


def table_11_example() -> pd.DataFrame:
    """Report Table 11 recomputed over the 11 classes (0..10) and over the 12 printed columns."""
    y, z = np.array([TABLE_11["true"]]), np.array([TABLE_11["predicted"]])
    rows = {"report": {k: TABLE_11[k] for k in ("emr", "oa", "jss")},
            "11 classes (0..10)": mi.multilabel_scores(y[:, :11], z[:, :11]),
            "12 printed columns": mi.multilabel_scores(y, z)}
    return pd.DataFrame(rows).round(3)


def recompute_table_10(tolerance: float = 0.01) -> pd.DataFrame:
    """Table 10 recomputed from Tables 8 and 9 (equations 15-21) beside the printed values.

    ``ok`` is True when every recomputed value rounds to within ``tolerance`` of the printed one
    (the inputs are themselves rounded). Base2's TTO is printed 1.75 but recomputes to 1.65.
    """
    rows = []
    for run in REPORT_TABLE_9.index:
        t8, t9 = REPORT_TABLE_8.loc[run], REPORT_TABLE_9.loc[run]
        c = mi.combination_scores(t9.to_dict(), float(t9["seconds_per_image"]), client=t8.to_dict())
        printed = REPORT_TABLE_10.loc[run]
        row = {"run": run}
        worst = 0.0
        for key in ("class_c", "class_m", "segmentation", "speed", "tto"):
            row[key] = round(float(c[key]), 3)
            row[f"{key} printed"] = float(printed[key])
            worst = max(worst, abs(round(float(c[key]), 2) - float(printed[key])))
        row["max |diff|"] = round(worst, 3)
        row["ok"] = worst <= tolerance + 1e-9
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def appendix_e_check() -> pd.DataFrame:
    """Appendix E: OA equals the mean of the per-class accuracies (Hamming accuracy)."""
    means = REPORT_APPENDIX_E.mean()
    return pd.DataFrame({"mean of per-class accuracies": means.round(4),
                         "printed total OA": pd.Series(REPORT_APPENDIX_E_TOTAL)})


def instance_example() -> tuple[list[mi.Instances], list[mi.Instances]]:
    """A fixed two-image example for the instance metrics: image 1 has two shoes and a dress,
    predicted as one good shoe, one shifted shoe (IoU < 0.5) and the dress; image 2 has pants,
    predicted as pants and a false bag."""
    def box(h, w, y0, y1, x0, x1):
        m = np.zeros((h, w), bool)
        m[y0:y1, x0:x1] = True
        return m

    true1 = mi.Instances(np.stack([box(20, 20, 15, 18, 2, 6), box(20, 20, 15, 18, 12, 16), box(20, 20, 2, 14, 4, 15)]),
                         [8, 8, 6])
    pred1 = mi.Instances(np.stack([box(20, 20, 15, 18, 2, 6), box(20, 20, 16, 19, 14, 18), box(20, 20, 3, 14, 4, 15)]),
                         [8, 8, 6], [0.9, 0.6, 0.8])
    true2 = mi.Instances(np.stack([box(20, 20, 5, 19, 5, 14)]), [4])
    pred2 = mi.Instances(np.stack([box(20, 20, 5, 18, 5, 14), box(20, 20, 8, 12, 15, 19)]), [4, 9], [0.95, 0.7])
    return [pred1, pred2], [true1, true2]


def instance_example_table() -> pd.DataFrame:
    """Matching, per-image precision/recall/F1/AP@50 and the pooled results of :func:`instance_example`,
    with pycocotools' COCO AP@50 beside ours."""
    preds, truths = instance_example()
    rows = []
    for i, (p, t) in enumerate(zip(preds, truths), start=1):
        m = mi.match_instances(p, t)
        prec, rec, f1 = mi.precision_recall_f1(m.tp, m.fp, m.fn)
        rows.append({"image": str(i), "TP": m.tp, "FP": m.fp, "FN": m.fn, "precision": prec, "recall": rec,
                     "F1": f1, "AP@50": mi.average_precision(m, len(t))})
    ev = mi.evaluate_instances(preds, truths)
    coco = mi.coco_map50(preds, truths, n_classes=11)
    rows.append({"image": "mean (F1, mAP)", "TP": ev["tp"], "FP": ev["fp"], "FN": ev["fn"], "precision": ev["precision"],
                 "recall": ev["recall"], "F1": ev["f1"], "AP@50": ev["map50"]})
    rows.append({"image": "COCO AP@50 (pycocotools)", "AP@50": coco["map50"]})
    return pd.DataFrame(rows).set_index("image").round(3)


# ------------------------------------------------------------------------------------------ data
@dataclass
class Split:
    """Letterboxed images of one split with their targets."""

    images: pd.DataFrame  # image table rows
    x: np.ndarray | None  # uint8 (N, S, S, 3); None when streamed from disk
    semantic: np.ndarray | None  # uint8 (N, S, S)
    multi_hot: np.ndarray  # int32 (N, k)
    masks: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    #: ground-truth instances as run-length codes (test split on disk): decoded per image on access
    compact: mi.CompactInstances | None = None

    def __len__(self) -> int:
        return len(self.images)

    def instances(self) -> Sequence[mi.Instances]:
        """Ground-truth instances per image (test split): a list, or a
        :class:`~kerasmt.metrics_instances.CompactInstances` decoded one image at a time when the
        split is on disk."""
        if self.compact is not None:
            return self.compact
        return [mi.Instances(m, lab) for m, lab in zip(self.masks, self.labels)]

    def instance(self, i: int) -> mi.Instances:
        """Ground-truth instances of image ``i``."""
        if self.compact is not None:
            return self.compact[i]
        return mi.Instances(self.masks[i], self.labels[i])

    @property
    def on_disk(self) -> bool:
        """Whether the decoded images live in the on-disk cache rather than in memory."""
        return self.x is None or diskarray.is_disk(self.x)


@dataclass
class FashionData:
    """Manifests, label reduction and letterboxed splits (train / val / test) of one dataset."""

    root: Path
    synthetic: bool
    label_set: str
    size: int
    segments: pd.DataFrame  # every segment (46 categories)
    reduced: pd.DataFrame  # after label reduction (column ``label``)
    steps: pd.DataFrame  # images/segments per reduction step
    train: Split
    val: Split
    test: Split

    @property
    def class_names(self) -> list[str]:
        return fd.class_names(self.label_set, short=True)

    @property
    def n_classes(self) -> int:
        return len(fd.LABEL_SETS[self.label_set])

    def segments_of(self, image_id: str) -> pd.DataFrame:
        return self.reduced[self.reduced["image_id"] == image_id]

    def describe(self) -> pd.DataFrame:
        """Images and segments per split, with the share of background pixels."""
        rows = []
        for name, split in (("train", self.train), ("val", self.val), ("test", self.test)):
            segs = self.reduced[self.reduced["image_id"].isin(split.images["image_id"])]
            row = {"split": name, "images": len(split), "segments": len(segs),
                   "labels per image": round(float(split.multi_hot.sum(1).mean()), 2)}
            if split.semantic is not None:
                row["background pixels"] = round(float((_sample_maps(split.semantic) == 0).mean()), 3)
            rows.append(row)
        return pd.DataFrame(rows).set_index("split")

    def class_table(self) -> pd.DataFrame:
        """Segments and images per kept class, per split (report Figure 17 / Appendix E 'True')."""
        out = {}
        for name, split in (("train", self.train), ("test", self.test)):
            segs = self.reduced[self.reduced["image_id"].isin(split.images["image_id"])]
            out[f"{name} segments"] = np.bincount(segs["label"], minlength=self.n_classes)
            out[f"{name} images"] = split.multi_hot.sum(0)
        return pd.DataFrame(out, index=pd.Index(self.class_names, name="class"))

    def steps_with_report(self) -> pd.DataFrame:
        """Label-reduction counts beside the report's (section 4.2.1)."""
        table = self.steps.copy()
        report = {**REPORT_COUNTS, "drop attributes": REPORT_COUNTS["all"]}
        table["report images"] = pd.array([report[s][0] if s in report else None for s in table.index], dtype="Int64")
        table["report segments"] = pd.array([report[s][1] if s in report else None for s in table.index], dtype="Int64")
        return table

    def train_dataset(self, target: str = "semantic", batch_size: int = 8, augment: bool = True,
                      seed: int = 0, shuffle: bool = True) -> tf.data.Dataset:
        """Training batches ``(images float32 [0, 1], target)`` with the report's augmentation
        (:func:`kerasmt.datasets.fashion.augment_example`) applied per example. ``target``:
        ``"semantic"`` (label maps, 0 = background) or ``"multilabel"`` (0/1 vectors). Streams
        from disk when the training images were not decoded into memory."""
        return _dataset(self, self.train, target, batch_size, augment, seed, shuffle)

    def eval_dataset(self, split: str, target: str = "semantic", batch_size: int = 8) -> tf.data.Dataset:
        """Batches of the val or test split without augmentation."""
        part = {"val": self.val, "test": self.test, "train": self.train}[split]
        return _dataset(self, part, target, batch_size, False, 0, False)


def _dataset(data: FashionData, split: Split, target: str, batch_size: int, augment: bool, seed: int,
             shuffle: bool) -> tf.data.Dataset:
    if target not in {"semantic", "multilabel"}:
        raise ValueError(f"target must be 'semantic' or 'multilabel', got {target!r}")
    n = len(split)
    size = data.size
    if split.x is not None:
        y = split.semantic if target == "semantic" else split.multi_hot.astype(np.float32)
        # rows gathered by shuffled index batches (from memory or the on-disk cache), then unbatched
        # for the per-example augmentation: never copied into the graph, memory bounded
        ds = diskarray.rows_dataset((split.x, y), 32, shuffle, seed, unbatch=True)
    else:
        by_image = {k: v for k, v in data.reduced.groupby("image_id", sort=False)}
        rows = split.images

        def _load(i):
            row = rows.iloc[int(i)]
            ex = fd.load_example(row, by_image[row["image_id"]], size)
            return ex.image, fd.semantic_map(ex.masks, ex.labels)

        ds = tf.data.Dataset.range(n)
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)

        def _read(i):
            image, sem = tf.numpy_function(_load, [i], (tf.uint8, tf.uint8))
            image.set_shape((size, size, 3))
            sem.set_shape((size, size))
            if target == "semantic":
                return image, sem
            return image, tf.gather(split.multi_hot.astype(np.float32), i)

        ds = ds.map(_read, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)))

        def _aug(pair, seeds):
            image, y = pair
            mask = y if target == "semantic" else tf.zeros((size, size), tf.uint8)
            image, mask = fd.augment_example(tf.cast(image, tf.float32), mask, seeds)
            return image, (mask if target == "semantic" else y)

        ds = ds.map(_aug, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, tf.cast(y, tf.int32) if target == "semantic" else y),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _split(images: pd.DataFrame, reduced: pd.DataFrame, n_classes: int, size: int, decode: bool | str,
           instances: bool, cache_dir: str | Path | None = None) -> Split:
    """``decode``: ``True`` (into memory), ``"disk"`` (once into ``.npy`` files under ``cache_dir``,
    read by rows) or ``False`` (not decoded: streamed from the image files)."""
    hot = fd.multi_hot(images, n_classes)
    if not decode:
        return Split(images, None, None, hot)
    if decode == "disk":
        if instances:
            x, sem, compact = decode_to_disk(images, reduced, size, cache_dir, instances=True)
            return Split(images, x, sem, hot, compact=compact)
        x, sem = decode_to_disk(images, reduced, size, cache_dir)
        return Split(images, x, sem, hot)
    dec = fd.decode_examples(images, reduced, size, keep_instances=instances)
    return Split(images, dec.images, dec.semantic, hot, dec.masks, dec.labels)


def decode_to_disk(images: pd.DataFrame, reduced: pd.DataFrame, size: int, cache_dir: str | Path | None = None,
                   chunk: int = 128, instances: bool = False) -> tuple:
    """Letterboxed images ``(N, S, S, 3)`` and semantic maps ``(N, S, S)`` of an image table,
    decoded once, ``chunk`` images at a time, into two ``.npy`` files under ``cache_dir`` (default:
    the user cache ``fashion/`` folder) and returned as :class:`~kerasmt.diskarray.DiskArray` files
    read by rows. The file names hash the image files (paths, sizes, times), their segments and the
    size, so a changed dataset is decoded again. Vanished segments are counted in one warning.
    ``instances``: also the instance masks and labels, run-length coded
    (:class:`~kerasmt.metrics_instances.CompactInstances`, cached beside them as a ``.pkl``
    file), returned third."""
    paths = images["path"].astype(str).tolist()
    segs = reduced[reduced["image_id"].isin(set(images["image_id"]))]
    digest = hashlib.sha1(f"v1|{size}|".encode())
    for path in paths:
        st = os.stat(path)
        digest.update(f"{path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    digest.update(pd.util.hash_pandas_object(segs[["image_id", "rle", "label"]], index=False).to_numpy().tobytes())
    key = digest.hexdigest()[:20]
    folder = Path(cache_dir) if cache_dir is not None else user_cache_dir("fashion")
    x_path, s_path = folder / f"images-{size}-{key}.npy", folder / f"semantic-{size}-{key}.npy"
    i_path = folder / f"instances-{size}-{key}.pkl"
    if x_path.is_file() and s_path.is_file() and (not instances or i_path.is_file()):
        if not instances:
            return diskarray.DiskArray(x_path), diskarray.DiskArray(s_path)
        with open(i_path, "rb") as f:
            return diskarray.DiskArray(x_path), diskarray.DiskArray(s_path), pickle.load(f)
    n = len(images)
    compact = mi.CompactInstances()
    groups = segs.groupby("image_id", sort=False).indices
    x_writer = diskarray.Writer(x_path, (n, size, size, 3), np.uint8)
    s_writer = diskarray.Writer(s_path, (n, size, size), np.uint8)
    dropped = 0
    try:
        for start in range(0, n, chunk):
            part = images.iloc[start:start + chunk]
            rows = np.concatenate([groups[i] for i in part["image_id"] if i in groups] or [np.zeros(0, np.int64)])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dec = fd.decode_examples(part, segs.iloc[rows], size, keep_instances=instances)
            index = np.arange(start, start + len(part))
            x_writer.write(index, dec.images)
            s_writer.write(index, dec.semantic)
            for m, lab in zip(dec.masks, dec.labels):
                compact.append(mi.Instances(m, lab))
            dropped += dec.dropped
    except BaseException:
        x_writer.abort()
        s_writer.abort()
        raise
    if dropped:
        warnings.warn(f"{dropped} segment(s) vanished when letterboxing to {size}px and were dropped", stacklevel=2)
    if not instances:
        return x_writer.close(), s_writer.close()
    tmp = i_path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(compact, f)
    os.replace(tmp, i_path)
    return x_writer.close(), s_writer.close(), compact


def _sample_maps(maps: Any, limit: int = 1024) -> np.ndarray:
    """Label maps for class-frequency estimates: all of an in-memory array, else ``limit`` evenly
    spaced maps read from the on-disk cache."""
    if not diskarray.is_disk(maps) or len(maps) <= limit:
        return np.asarray(maps)
    return maps[np.linspace(0, len(maps) - 1, limit).astype(np.int64)]


def load_data(
    data_dir: str | Path | None = None,
    label_set: str = "full",
    image_size: int = fd.IMAGE_SIZE,
    n_test: int = fd.N_TEST,
    val_fraction: float = 0.1,
    n_synthetic: int = 240,
    seed: int = 0,
    limit: int | None = None,
    in_memory: bool | None = None,
    disk_cache: bool = True,
    cache_dir: str | Path | None = None,
) -> FashionData:
    """Read (or synthesize, ``data_dir=None``) the dataset, reduce the labels, hold out
    ``n_test`` test images (report: 1,000) and ``val_fraction`` of the rest for validation, and
    letterbox everything to ``image_size``.

    Test images are decoded into memory with their instance masks when they fit (the same
    limit, instance masks counted); otherwise into the on-disk cache with the instance masks run-length coded, and every
    evaluation streams them batch by batch. Training and validation images with their semantic maps are decoded into
    memory when ``in_memory`` (default: when a split's decoded arrays fit in 1 GiB,
    :func:`kerasmt.diskarray.in_memory_limit`); otherwise, with ``disk_cache`` (default), once into
    ``.npy`` files under ``cache_dir`` (default: the user cache) that every epoch reads by rows,
    and without it they are decoded from the image files every epoch. Either way memory stays
    bounded whatever the number of images. ``limit`` keeps a seeded random subset of the images
    (smoke runs).
    """
    synthetic = data_dir is None
    root = fd.synthetic_root(n_synthetic, seed) if synthetic else Path(data_dir).expanduser()
    segments = fd.load(root)
    reduced, steps = fd.reduce_labels(segments, label_set)
    images = fd.image_table(reduced)
    if limit and limit < len(images):
        images = images.sample(n=limit, random_state=seed).reset_index(drop=True)
    train_all, test = fd.holdout_split(images, n_test, seed)
    n_val = max(1, int(round(val_fraction * len(train_all))))
    train, val = fd.holdout_split(train_all, n_val, seed + 1)
    n_classes = len(fd.LABEL_SETS[label_set])
    def how(part: pd.DataFrame, instances: bool = False) -> bool | str:
        # 3 image bytes + 1 label byte per pixel, + 1 byte per pixel per instance mask (test split)
        planes = 4 * len(part) + (int(reduced["image_id"].isin(set(part["image_id"])).sum()) if instances else 0)
        fits = planes * image_size * image_size <= diskarray.in_memory_limit()
        if in_memory or (in_memory is None and fits):
            return True
        return "disk" if disk_cache else False

    return FashionData(
        root=Path(root), synthetic=synthetic, label_set=label_set, size=int(image_size), segments=segments,
        reduced=reduced, steps=steps,
        train=_split(train, reduced, n_classes, image_size, how(train), False, cache_dir),
        val=_split(val, reduced, n_classes, image_size, how(val), False, cache_dir),
        test=_split(test, reduced, n_classes, image_size, True if how(test, True) is True else "disk", True,
                    cache_dir),
    )


# ---------------------------------------------------------------------------------------- models
@dataclass
class ModelResult:
    """One model's results in the report's terms; a row of :func:`results_table`.

    ``kind`` is ``"multilabel"`` (classification only: no segmentation metrics, no TTO) or
    ``"instance"`` (instances scored with the instance metrics). ``client`` holds EMR/OA/JSS on
    the client set C when there is one; without it the test-set Classification stands in for
    Class_C in the TTO (``class_c_source`` says so).
    """

    name: str
    kind: str
    emr: float
    oa: float
    jss: float
    map50: float = float("nan")
    f1: float = float("nan")
    coco_map50: float = float("nan")
    coco_map: float = float("nan")
    seconds_per_image: float = float("nan")
    client: Mapping[str, float] | None = None
    data: str = ""
    model: keras.Model | None = None
    history: pd.DataFrame | None = None
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    instances: list[mi.Instances] | None = None
    extra: dict = field(default_factory=dict)
    checkpoint: Path | None = None
    train_seconds: float = float("nan")

    def scores(self) -> dict:
        """Classification, segmentation, speed, TO and TTO (equations 15-21)."""
        test = {"emr": self.emr, "oa": self.oa, "jss": self.jss, "map50": self.map50, "f1": self.f1}
        return mi.combination_scores(test, self.seconds_per_image, client=self.client)

    def metrics(self) -> dict:
        """``metrics.json`` entry: emr, oa, jss, map50, f1, seconds_per_image, tto (+ COCO AP@50)."""
        s = self.scores()
        return {"emr": self.emr, "oa": self.oa, "jss": self.jss, "map50": self.map50, "f1": self.f1,
                "coco_map50": self.coco_map50, "coco_map": self.coco_map, "seconds_per_image": self.seconds_per_image,
                "classification": s["class_m"], "segmentation": s["segmentation"], "to": s["to"],
                "tto": s["tto"], "class_c_source": s["class_c_source"]}


def report_result(run: str = REPORT_BEST) -> ModelResult:
    """A report run (Tables 8 and 9) as a :class:`ModelResult`."""
    t8, t9 = REPORT_TABLE_8.loc[run], REPORT_TABLE_9.loc[run]
    return ModelResult(name=f"{run} (report, Mask R-CNN)", kind="instance", emr=float(t9["emr"]), oa=float(t9["oa"]),
                       jss=float(t9["jss"]), map50=float(t9["map50"]), f1=float(t9["f1"]),
                       seconds_per_image=float(t9["seconds_per_image"]), client=t8.to_dict(),
                       data="iMaterialist M_test / client C")


def multilabel_baseline(data: FashionData) -> ModelResult:
    """Predict every class present in at least half of the training images (per-label majority)."""
    prior = (data.train.multi_hot.mean(0) >= 0.5).astype(np.int32)
    z = np.repeat(prior[None], len(data.test), axis=0)
    s = mi.multilabel_scores(data.test.multi_hot, z)
    return ModelResult(name="per-label majority", kind="multilabel", data=_data_name(data), y_true=data.test.multi_hot,
                       y_pred=z, **s)


def all_background(data: FashionData) -> ModelResult:
    """The report's RefineNet failure: every pixel background, hence no instance and no label."""
    z = np.zeros_like(data.test.multi_hot)
    s = mi.multilabel_scores(data.test.multi_hot, z)
    n = data.n_classes + 1
    cm = sum((mi.pixel_confusion(t, np.zeros_like(t), n) for t in _chunks(data.test.semantic)),
             np.zeros((n, n), np.int64))
    sem = mi.semantic_scores_from_confusion(cm)
    empty = [mi.Instances(np.zeros((0, data.size, data.size), bool), []) for _ in range(len(data.test))]
    ev = mi.evaluate_instances(empty, data.test.instances())
    return ModelResult(name="all background", kind="instance", data=_data_name(data), map50=ev["map50"], f1=ev["f1"],
                       coco_map50=0.0, coco_map=0.0, y_true=data.test.multi_hot, y_pred=z, extra={"semantic": sem, "instance": ev}, **s)


def semantic_oracle(data: FashionData) -> ModelResult:
    """The true semantic map turned into instances by connected components: the ceiling of any
    semantic model scored with instance metrics (touching instances of a class merge, an
    instance split by another one counts twice)."""
    eye = np.eye(data.n_classes + 1, dtype=np.float32)
    res = evaluate_semantic_model(data, (eye[t] for t in _chunks(data.test.semantic, 8)))
    res.update(name="true map -> components (ceiling)", probabilities=None)
    return ModelResult(**res)


def _chunks(array: Any, rows: int = 64) -> Iterator[np.ndarray]:
    """Consecutive row blocks of an in-memory or on-disk array."""
    for start in range(0, len(array), rows):
        yield np.asarray(array[start:start + rows])


def _instance_store(data: FashionData) -> list | mi.CompactInstances:
    """Where predicted instances of the test split go: a list when the split is in memory,
    run-length coded when it is on disk (bounded memory)."""
    return mi.CompactInstances() if data.test.on_disk else []


def predict_batches(model: keras.Model, dataset: tf.data.Dataset) -> Iterator[np.ndarray]:
    """``model``'s outputs batch by batch over a dataset of ``(x, y)`` or ``x`` (nothing held)."""
    for batch in dataset:
        x = batch[0] if isinstance(batch, tuple) else batch
        yield np.asarray(model.predict_on_batch(x))


def _data_name(data: FashionData) -> str:
    return ("synthetic" if data.synthetic else str(data.root.name)) + f" test ({len(data.test)} images, {data.size}px)"


def min_area(size: int) -> int:
    """Minimum instance area in pixels at ``size`` (:data:`MIN_AREA_FRACTION` of the image)."""
    return max(1, int(round(MIN_AREA_FRACTION * size * size)))


def _learning_rate(initial: float, cosine_decay: bool, epochs: int, n_train: int, batch_size: int):
    """``initial``, or a cosine decay from it to 0 over the whole training (``cosine_decay``)."""
    if not cosine_decay:
        return initial
    steps = max(1, epochs * int(np.ceil(n_train / batch_size)))
    return keras.optimizers.schedules.CosineDecay(initial, decay_steps=steps)


def train_multilabel(
    data: FashionData,
    out_dir: str | Path,
    backbone: str = "ResNet50",
    weights: str | None = "imagenet",
    epochs: int = 20,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    augment: bool = True,
    threshold: float = 0.5,
    cosine_decay: bool = True,
    seed: int = 0,
    verbose: int = 0,
) -> ModelResult:
    """Train the multi-label classifier (sigmoid per class, BCE) and score it on the test split
    (EMR, OA, JSS; it predicts no masks, so no segmentation metrics and no TTO). The best epoch
    by validation loss is kept (the report picked its best epochs, Table 6)."""
    from kerasmt.models.multilabel import compile_multilabel, multilabel_classifier, predict_labels
    from kerasmt.training import fit

    set_seed(seed)
    model = multilabel_classifier((None, None, 3), weights, f"multilabel_{backbone.lower()}", n_classes=data.n_classes,
                                  backbone=backbone)
    compile_multilabel(model, _learning_rate(learning_rate, cosine_decay, epochs, len(data.train), batch_size))
    start = time.perf_counter()
    result = fit(model, data.train_dataset("multilabel", batch_size, augment, seed),
                 data.eval_dataset("val", "multilabel", batch_size), epochs=epochs, run_dir=out_dir,
                 name=model.name, restore_best=True, verbose=verbose)
    seconds = time.perf_counter() - start
    probs = model.predict(data.eval_dataset("test", "multilabel", batch_size), verbose=0)
    z = predict_labels(probs, threshold)
    s = mi.multilabel_scores(data.test.multi_hot, z)
    return ModelResult(name=f"multi-label {backbone} (ours)", kind="multilabel", data=_data_name(data), model=model,
                       history=result.history, y_true=data.test.multi_hot, y_pred=z, probabilities=probs,
                       checkpoint=result.checkpoint, train_seconds=seconds,
                       extra={"per_class_accuracy": mi.per_class_accuracy(data.test.multi_hot, z)}, **s)


def train_refinenet(
    data: FashionData,
    out_dir: str | Path,
    encoder: str = "ResNet101",
    weights: str | None = "imagenet",
    features: int | Sequence[int] = (512, 256, 256, 256),
    epochs: int = 30,
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    ce_weight: float = 1.0,
    dice_weight: float = 1.0,
    class_weight_power: float = 0.5,
    augment: bool = True,
    cosine_decay: bool = True,
    seed: int = 0,
    verbose: int = 0,
    **builder_kwargs: Any,
) -> ModelResult:
    """Train RefineNet with class-weighted CE + Dice (:class:`kerasmt.losses_segmentation.PixelCrossentropyDice`),
    keep the best epoch by validation loss, and score it on the test split: pixel accuracy and
    per-class IoU, instances by connected components (:func:`kerasmt.models.refinenet.instances_from_semantic`)
    scored with mAP@50 / F1 (ours and COCO's), and multi-label EMR/OA/JSS from those instances.
    The test split is predicted and scored batch by batch (:func:`evaluate_semantic_model`): the
    result keeps the predicted label maps (``extra["pred_maps"]``), not the probabilities."""
    from kerasmt.losses_segmentation import PixelCrossentropyDice, class_weights_from_maps
    from kerasmt.models.refinenet import refinenet
    from kerasmt.training import fit

    set_seed(seed)
    n = data.n_classes + 1
    maps = data.train.semantic if data.train.semantic is not None else data.val.semantic
    weights_ce = class_weights_from_maps(_sample_maps(maps), n, power=class_weight_power)
    model = refinenet((None, None, 3), weights, f"refinenet_{encoder.lower()}", n_classes=data.n_classes, encoder=encoder,
                      features=features, **builder_kwargs)
    loss = PixelCrossentropyDice(ce_weight=ce_weight, dice_weight=dice_weight, class_weights=weights_ce)
    schedule = _learning_rate(learning_rate, cosine_decay, epochs, len(data.train), batch_size)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, jit_compile=False)
    start = time.perf_counter()
    result = fit(model, data.train_dataset("semantic", batch_size, augment, seed),
                 data.eval_dataset("val", "semantic", batch_size), epochs=epochs, run_dir=out_dir,
                 name=model.name, restore_best=True, verbose=verbose)
    seconds = time.perf_counter() - start
    res = evaluate_semantic_model(data, predict_batches(model, data.eval_dataset("test", "semantic", batch_size)))
    res.update(model=model, history=result.history, checkpoint=result.checkpoint, train_seconds=seconds,
               name=f"RefineNet {encoder} (ours)")
    res["extra"]["class_weights"] = weights_ce
    return ModelResult(**res)


def evaluate_semantic_model(data: FashionData, probabilities: np.ndarray | Iterable[np.ndarray]) -> dict:
    """Scores of per-pixel softmax outputs on the test split (keyword arguments of :class:`ModelResult`).

    ``probabilities``: ``(N, S, S, classes)``, or an iterable of such batches in test order
    (e.g. :func:`predict_batches`): each batch is turned into its pixel confusion, argmax map and
    instances (connected components) and dropped, so memory does not grow with the probabilities.
    An array is kept in the result's ``probabilities``; the predicted label maps are kept in
    ``extra["pred_maps"]`` (uint8, in memory or, when the test split is on disk, on disk)."""
    from kerasmt.models.refinenet import instances_from_semantic

    whole = isinstance(probabilities, np.ndarray)
    batches = [probabilities] if whole else probabilities
    n, count, area = data.n_classes + 1, len(data.test), min_area(data.size)
    cm = np.zeros((n, n), np.int64)
    preds = _instance_store(data)
    shape = (count, data.size, data.size)
    maps_writer = None
    if data.test.on_disk:
        folder = Path(tempfile.mkdtemp(prefix="kerasmt-fashion-"))
        maps_writer = diskarray.Writer(folder / "pred_maps.npy", shape, np.uint8)
        maps: Any = None
    else:
        maps = np.zeros(shape, np.uint8)
    start = 0
    for batch in batches:
        batch = np.asarray(batch)
        stop = start + len(batch)
        if stop > count:
            raise ValueError(f"probabilities: more than the {count} test images")
        pred = batch.argmax(-1)
        cm += mi.pixel_confusion(np.asarray(data.test.semantic[start:stop]), pred, n)
        if maps_writer is not None:
            maps_writer.write(np.arange(start, stop), pred.astype(np.uint8))
        else:
            maps[start:stop] = pred
        for p in batch:
            preds.append(instances_from_semantic(p, min_area=area, min_score=MIN_SCORE))
        start = stop
    if start != count:
        if maps_writer is not None:
            maps_writer.abort()
        raise ValueError(f"probabilities: {start} images for the {count} test images")
    if maps_writer is not None:
        maps = maps_writer.close()
        # the maps live as long as the result that holds them; then (or at exit) the folder goes
        weakref.finalize(maps, shutil.rmtree, folder, True)
    sem = mi.semantic_scores_from_confusion(cm)
    truths = data.test.instances()
    ev = mi.evaluate_instances(preds, truths)
    coco = mi.coco_map50(preds, truths, data.n_classes)
    z = mi.labels_to_multi_hot([p.labels for p in _labels_only(preds)], data.n_classes)
    s = mi.multilabel_scores(data.test.multi_hot, z)
    return dict(name="semantic model", kind="instance", data=_data_name(data), map50=ev["map50"], f1=ev["f1"],
                coco_map50=coco["map50"], coco_map=coco["map"], y_true=data.test.multi_hot, y_pred=z,
                probabilities=probabilities if whole else None,
                instances=preds, extra={"semantic": sem, "instance": ev, "coco": coco, "min_area": area,
                                        "min_score": MIN_SCORE, "pred_maps": maps}, **s)


def _labels_only(preds: Sequence[mi.Instances]) -> Iterator[mi.Instances]:
    """Instances with their labels (masks of a list as they are; of run-length coded instances,
    empty, without decoding)."""
    if isinstance(preds, mi.CompactInstances):
        return (mi.Instances(np.zeros((len(lab), 0, 0), bool), lab) for lab in preds.labels())
    return iter(preds)


# ------------------------------------------------------------------------------------ Mask R-CNN
#: the report's anchor sides at 512 px (section 4.3); scaled with the image size for other sizes
REPORT_ANCHOR_SCALES: tuple[int, ...] = (16, 32, 64, 128, 256)
#: the report's inference setting (section 4.4.1): at most 10 detections per image
REPORT_MAX_DETECTIONS = 10
#: sizes of a CPU-sized Mask R-CNN (the light backbone, no COCO weights): narrower FPN, RPN and
#: heads, fewer proposals and RoIs, 14x14 masks from 7x7 RoIAlign (the mask head is most of a
#: training step), BN trained, ground-truth boxes among the sampled RoIs
CPU_MASKRCNN: dict[str, Any] = dict(
    top_down_pyramid_size=64, rpn_channels=64, pre_nms_limit=1000, post_nms_rois_training=256,
    post_nms_rois_inference=100, train_rois_per_image=48, fpn_classif_fc_layers_size=128, mask_head_channels=32,
    mask_pool_size=7, mask_shape=(14, 14), max_gt_instances=32, train_bn=True, add_gt_to_proposals=True)


def maskrcnn_config(data: FashionData, backbone: str = "resnet101", batch_size: int = 2,
                    **overrides: Any):
    """The report's Mask R-CNN configuration (Appendix B) for ``data``: background + its classes,
    its image size, anchors 16..256 scaled by ``size / 512``, at most 10 detections (report
    4.4.1). ``backbone="light"`` adds :data:`CPU_MASKRCNN`; ``overrides`` win."""
    from kerasmt.models.maskrcnn import MaskRCNNConfig

    values: dict[str, Any] = dict(
        num_classes=data.n_classes + 1, backbone=backbone, image_size=data.size, images_per_gpu=batch_size,
        rpn_anchor_scales=tuple(s * data.size / fd.IMAGE_SIZE for s in REPORT_ANCHOR_SCALES),
        detection_max_instances=REPORT_MAX_DETECTIONS, class_names=tuple(data.class_names))
    if backbone == "light":
        values.update(CPU_MASKRCNN)
    values.update(overrides)
    return MaskRCNNConfig(**values)


def init_name_map(name: str) -> str:
    """Layer names of an ``init_weights`` file -> this Mask R-CNN's: Matterport's ResNet names ->
    keras.applications names, and the light encoder of a RefineNet checkpoint (``encoder_*``) ->
    the light backbone (``backbone_*``)."""
    from kerasmt.models.maskrcnn.weights import matterport_to_keras_resnet

    if name.startswith("encoder_"):
        return "backbone_" + name[len("encoder_"):]
    return matterport_to_keras_resnet(name)


def _maskrcnn_dataset(data: FashionData, split: Split, config, batch_size: int, augment: bool, seed: int,
                      shuffle: bool = True) -> tf.data.Dataset:
    """Mask R-CNN batches of a split: from memory (instances decoded once) or, when the split was
    not decoded into memory (large real data), decoded from disk on the fly."""
    from kerasmt.models import maskrcnn as mr

    if split.x is not None and not diskarray.is_disk(split.x):
        masks, labels = split.masks, split.labels
        if not masks:  # training splits keep only semantic maps: decode the instances once
            dec = fd.decode_examples(split.images, data.reduced, data.size, keep_instances=True)
            split.masks, split.labels = masks, labels = dec.masks, dec.labels
        return mr.make_dataset(split.x, masks, labels, config, batch_size, augment=augment, shuffle=shuffle, seed=seed)
    rows = split.images
    by_image = {k: v for k, v in data.reduced.groupby("image_id", sort=False)}

    def load(i: int):
        row = rows.iloc[i]
        ex = fd.load_example(row, by_image[row["image_id"]], data.size)
        return ex.image, ex.masks, ex.labels

    return mr.make_dataset_from(load, len(rows), config, batch_size, augment=augment, shuffle=shuffle, seed=seed)


def evaluate_instance_model(data: FashionData, predictions: Sequence[mi.Instances]) -> dict:
    """Scores of predicted instances on the test split (keyword arguments of :class:`ModelResult`):
    mAP@50 / F1 (ours and COCO's) and multi-label EMR/OA/JSS from the detected classes."""
    truths = data.test.instances()
    ev = mi.evaluate_instances(predictions, truths)
    coco = mi.coco_map50(predictions, truths, data.n_classes)
    z = mi.labels_to_multi_hot([p.labels for p in _labels_only(predictions)], data.n_classes)
    s = mi.multilabel_scores(data.test.multi_hot, z)
    if not isinstance(predictions, mi.CompactInstances):
        predictions = list(predictions)
    return dict(kind="instance", data=_data_name(data), map50=ev["map50"], f1=ev["f1"], coco_map50=coco["map50"],
                coco_map=coco["map"], y_true=data.test.multi_hot, y_pred=z, instances=predictions,
                extra={"instance": ev, "coco": coco}, **s)


def train_maskrcnn(
    data: FashionData,
    out_dir: str | Path,
    backbone: str = "resnet101",
    weights: str | None = "imagenet",
    epochs_heads: int = 10,
    epochs_all: int = 20,
    lr_heads: float = 5e-4,
    lr_all: float = 1e-4,
    lr_all_end: float = 1e-5,
    optimizer: str = "sgd",
    batch_size: int = 2,
    init_weights: str | Path | None = None,
    validate: bool = True,
    steps_per_epoch: int | None = None,
    augment: bool | dict = True,
    seed: int = 0,
    verbose: int = 0,
    **config_overrides: Any,
) -> ModelResult:
    """Train Mask R-CNN the report's way and score it on the test split like RefineNet.

    Two stages (report 4.3): the heads (FPN, RPN, box/class and mask heads; backbone frozen) for
    ``epochs_heads`` at ``lr_heads`` without augmentation, then all layers for ``epochs_all`` with
    the report's augmentation, the learning rate decaying from ``lr_all`` to ``lr_all_end``. SGD
    (momentum 0.9, clip 5.0, weight decay 1e-4) or ``optimizer="adam"``. ``weights``: backbone
    weights ("imagenet", None, a file); ``init_weights``: a file loaded by layer name afterwards
    (e.g. Matterport's ``mask_rcnn_coco.h5``, class-specific layers excluded, as the report did).
    A Matterport-layout ``init_weights`` (:func:`kerasmt.models.maskrcnn.weights_origin`) is loaded
    with :func:`kerasmt.models.maskrcnn.load_coco_weights` (every backbone, FPN and RPN layer must
    load; the model is built with Matterport's preprocessing, RGB minus the mean pixel).
    ``steps_per_epoch``: batches per epoch (Matterport's STEPS_PER_EPOCH; default one pass);
    ``augment``: the second stage's augmentation (True: the report's scheme 4.2.5, or a dict of
    :func:`kerasmt.datasets.fashion.augment_example` keywords, see :data:`REPORT_RUNS`). With
    ``validate`` the epoch with the lowest validation loss is kept (the report's "best epoch").
    Configuration: :func:`maskrcnn_config` with ``config_overrides``. The inference model is saved
    as ``out_dir/models/mask_rcnn_<backbone>.keras``.
    """
    from kerasmt.models import maskrcnn as mr

    set_seed(seed)
    coco = init_weights is not None and mr.weights_origin(init_weights) == "matterport"
    if coco:
        config_overrides.setdefault("preprocessing", "matterport")
    config = maskrcnn_config(data, backbone, batch_size, **config_overrides)
    model = mr.build_maskrcnn(config=config, backbone_weights=weights)
    load_report = None
    if coco:
        load_report = mr.load_coco_weights(model, init_weights)
    elif init_weights is not None:
        from kerasmt.models.maskrcnn.weights import CLASS_SPECIFIC, load_weights_by_name

        load_report = load_weights_by_name(model, init_weights, exclude=CLASS_SPECIFIC, name_map=init_name_map)
        if not load_report["loaded"]:
            raise ValueError(f"init_weights={init_weights}: no layer of the model found by name in the file")
    if len(data.train) < batch_size:
        raise ValueError(f"batch_size={batch_size} is larger than the {len(data.train)} training images")

    def dataset(augment: bool) -> tf.data.Dataset:
        return _maskrcnn_dataset(data, data.train, config, batch_size, augment, seed)

    val = None
    if validate and len(data.val) >= batch_size:
        val = _maskrcnn_dataset(data, data.val, config, batch_size, False, seed, shuffle=False)
    stages = [mr.Stage("heads", epochs_heads, lr_heads, None, augment=False),
              mr.Stage("all", epochs_all, lr_all, lr_all_end, augment=augment)]
    start = time.perf_counter()
    history = mr.train_stages(model, dataset, stages, val_dataset=val, optimizer=optimizer, verbose=verbose,
                              steps_per_epoch=steps_per_epoch)
    seconds = time.perf_counter() - start
    preds = _instance_store(data)
    chunk = max(1, batch_size) * 64  # test images read (from memory or disk) and predicted a block at a time
    for block in _chunks(data.test.x, chunk):
        for inst in mr.predict_instances(model, block, batch_size=max(1, batch_size)):
            preds.append(inst)
    res = evaluate_instance_model(data, preds)
    path = Path(out_dir) / "models" / f"mask_rcnn_{backbone}.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.inference_model.save(path)
    res["extra"].update(config=config, stages=stages, load_report=load_report, optimizer=optimizer,
                        best_epoch=history.attrs.get("best_epoch"))
    return ModelResult(name=f"Mask R-CNN {backbone} (ours)", model=model, history=history, checkpoint=path,
                       train_seconds=seconds, **res)


def maskrcnn_config_table(config) -> pd.DataFrame:
    """A configuration beside the report's Appendix B (upper-case names; ``same`` marks equal values)."""
    from kerasmt.models.maskrcnn import appendix_b_check

    return appendix_b_check(config)


def maskrcnn_timing_model(model, size: int, max_instances: int = REPORT_MAX_DETECTIONS) -> keras.Model:
    """The trained Mask R-CNN's inference model rebuilt for ``size`` px inputs (anchors at the
    trained pixel sizes) with at most ``max_instances`` detections, weights copied."""
    from kerasmt.models import maskrcnn as mr

    config = model.config.replace(image_size=int(size), detection_max_instances=int(max_instances))
    other = mr.build_maskrcnn(config=config)
    other.inference_model.set_weights(model.inference_model.get_weights())
    return other.inference_model


def time_report_maskrcnn(images: np.ndarray, n_classes: int = 11, backbone: str = "resnet101") -> dict:
    """CPU time per image of the report's Mask R-CNN (Appendix B, ResNet-101-FPN, at most 10
    detections) at the images' size, with random weights (timing hardly depends on them)."""
    from kerasmt.models import maskrcnn as mr

    config = mr.MaskRCNNConfig(num_classes=n_classes + 1, backbone=backbone, image_size=int(images.shape[1]),
                               detection_max_instances=REPORT_MAX_DETECTIONS)
    model = mr.build_maskrcnn(config=config).inference_model
    out = time_inference(mr.predictor(model), images)
    out["params"] = int(model.count_params())
    return out


#: the report's Table 6 (Mask R-CNN runs): label set, image size, augmentation of the second stage,
#: epochs, steps per epoch, best epoch (on validation loss), start weights and GPU hours. The report
#: does not split the epochs between its two stages: :func:`report_run_kwargs` gives the heads a
#: third (its schedule, 4.3). "Fliplr" = flips only; "All four" and "Scheme 4.2.5" = the report's
#: scheme (flip; brightness; blur or noise), which is what "all four" augmentations combine to.
REPORT_RUNS = pd.DataFrame(
    [("base", 512, "Fliplr", 20, 1000, 20, "COCO", 8.5), ("base", 512, "All four", 30, 1000, 30, "COCO", 9.0),
     ("base", 512, "All four", 4, 18078, 4, "COCO", 30.0), ("base", 256, "Fliplr", 8, 1000, 7, "ImageNet", 4.0),
     ("full", 512, "Scheme 4.2.5", 30, 5000, 10, "COCO", 45.0), ("full", 512, "Scheme 4.2.5", 10, 5000, 8, "COCO", 12.0),
     ("full", 512, "Scheme 4.2.5", 10, 5000, 10, "COCO", 16.5), ("full", 512, "Scheme 4.2.5", 30, 5000, 28, "COCO", 18.0)],
    index=pd.Index([f"Base{i}" for i in range(1, 5)] + [f"Full{i}" for i in range(1, 5)], name="run"),
    columns=["label_set", "image_size", "augment", "epochs", "steps_per_epoch", "best_epoch", "pretrained", "hours"])

#: augment_example keywords of Table 6's augmentation names
REPORT_AUGMENT: dict[str, bool | dict] = {"Fliplr": {"brightness_p": 0.0, "blur_or_noise_p": 0.0},
                                          "All four": True, "Scheme 4.2.5": True}


def report_run_kwargs(run: str, scale: float = 1.0) -> dict:
    """Keyword arguments of :func:`train_maskrcnn` for a Table 6 run (``"Base1"`` .. ``"Full4"``):
    epochs (a third on the heads), steps per epoch times ``scale`` (at least 1; 1.0 = the report's),
    the augmentation, and the start weights' kind (``"pretrained"``: "COCO" needs
    ``init_weights="mask_rcnn_coco.h5"``, "ImageNet" ``weights="imagenet"``). The data must be loaded
    with the run's ``label_set`` and ``image_size`` (see :data:`REPORT_RUNS`)."""
    if run not in REPORT_RUNS.index:
        raise ValueError(f"run {run!r}: expected one of {list(REPORT_RUNS.index)}")
    row = REPORT_RUNS.loc[run]
    heads = max(1, int(row["epochs"]) // 3) if int(row["epochs"]) > 1 else 0
    return {"epochs_heads": heads, "epochs_all": int(row["epochs"]) - heads,
            "steps_per_epoch": max(1, round(int(row["steps_per_epoch"]) * scale)),
            "augment": REPORT_AUGMENT[row["augment"]], "pretrained": row["pretrained"],
            "label_set": row["label_set"], "image_size": int(row["image_size"])}


def report_runs_table(ran: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Table 6 with the keyword arguments each run maps to, and which ran here (``ran``: run ->
    what this notebook trained for it, e.g. ``{"Full4": "light backbone, 128 px, 4 epochs"}``)."""
    table = REPORT_RUNS.copy()
    table["heads / all epochs"] = [f"{report_run_kwargs(r)['epochs_heads']} / {report_run_kwargs(r)['epochs_all']}"
                                   for r in table.index]
    table["run here"] = [(ran or {}).get(r, "") for r in table.index]
    return table


def limit_per_class(instances: mi.Instances, max_per_class: int = 2) -> mi.Instances:
    """The report's post-processing (6.2.2): at most ``max_per_class`` instances of each class per
    image, those with the highest scores."""
    order = np.argsort(-np.asarray(instances.scores), kind="stable")
    counts: dict[int, int] = {}
    keep = []
    for i in order:
        c = int(instances.labels[i])
        if counts.get(c, 0) < max_per_class:
            counts[c] = counts.get(c, 0) + 1
            keep.append(i)
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    return mi.Instances(instances.masks[keep], np.asarray(instances.labels)[keep], np.asarray(instances.scores)[keep])


def postprocessed(result: ModelResult, data: FashionData, max_per_class: int = 2) -> ModelResult:
    """``result`` re-scored after :func:`limit_per_class` (the report's "at most two per class")."""
    preds = _instance_store(data)
    for p in result.instances:
        preds.append(limit_per_class(p, max_per_class))
    res = evaluate_instance_model(data, preds)
    return ModelResult(name=f"{result.name} + at most {max_per_class} per class", model=result.model,
                       seconds_per_image=result.seconds_per_image, checkpoint=result.checkpoint, **res)


def per_class_ap_table(results: Sequence[ModelResult], data: FashionData) -> pd.DataFrame:
    """COCO mask AP per class (pycocotools, pooled over the test images): AP@50 and AP@[.5:.95] of
    each instance model, with the number of true instances of the class."""
    counts = np.zeros(data.n_classes, np.int64)
    for t in _labels_only(data.test.instances()):
        for label in t.labels:
            counts[int(label)] += 1
    out: dict[str, Any] = {"true instances": counts}
    for res in results:
        coco = res.extra.get("coco")
        if coco is not None and "per_class_ap" in coco:
            out[f"{res.name} AP@50"] = np.round(coco["per_class_ap50"], 3)
            out[f"{res.name} AP@[.5:.95]"] = np.round(coco["per_class_ap"], 3)
    return pd.DataFrame(out, index=pd.Index(data.class_names, name="class"))


def _per_image(res: ModelResult) -> dict[str, np.ndarray]:
    y, z = np.asarray(res.y_true, bool), np.asarray(res.y_pred, bool)
    union = (y | z).sum(1)
    return {"emr": (y == z).all(1).astype(float), "oa": (y == z).mean(1),
            "jss": np.where(union > 0, (y & z).sum(1) / np.maximum(union, 1), 1.0),
            "map50": np.asarray(res.extra["instance"]["ap"], float),
            "f1": np.asarray(res.extra["instance"]["f1_per_image"], float)}


def compare_models(a: ModelResult, b: ModelResult, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Paired bootstrap over the test images (95 % intervals) of ``a - b`` for EMR, OA, JSS, the
    report's mAP@50 and F1, and the TTO they combine to (each model's own speed; test-set
    Classification standing in for the client set's). A difference whose interval contains 0 is a
    ``tie``."""
    pa, pb = _per_image(a), _per_image(b)
    n = len(pa["emr"])
    if len(pb["emr"]) != n:
        raise ValueError(f"{a.name} and {b.name} were scored on different test sets ({n} vs {len(pb['emr'])})")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, (n_boot, n))

    def tto(p, rows, speed):
        m = {k: (np.nanmean(v[rows], axis=-1)) for k, v in p.items()}
        cls = (3 * m["emr"] + m["oa"] + 2 * m["jss"]) / 6
        return 2.5 * cls + (m["map50"] + m["f1"]) / 2 - np.nan_to_num(speed) / 10

    rows = []
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        for key in ("emr", "oa", "jss", "map50", "f1", "tto"):
            if key == "tto":
                va, vb = tto(pa, np.arange(n), a.seconds_per_image), tto(pb, np.arange(n), b.seconds_per_image)
                boot = tto(pa, idx, a.seconds_per_image) - tto(pb, idx, b.seconds_per_image)
            else:
                va, vb = np.nanmean(pa[key]), np.nanmean(pb[key])
                boot = np.nanmean(pa[key][idx], axis=1) - np.nanmean(pb[key][idx], axis=1)
            lo, hi = np.nanpercentile(boot, [2.5, 97.5])
            verdict = "tie" if lo <= 0 <= hi else (a.name if lo > 0 else b.name)
            rows.append({"metric": key, a.name: float(va), b.name: float(vb), "difference": float(va - vb),
                         "95% low": float(lo), "95% high": float(hi), "better": verdict})
    return pd.DataFrame(rows).set_index("metric")


_METRIC_NAMES = {"emr": "EMR", "oa": "OA", "jss": "JSS", "map50": "mAP@50 (per image)", "f1": "F1", "tto": "TTO"}


def comparison_sentence(table: pd.DataFrame, a: str, b: str) -> str:
    """One sentence from :func:`compare_models`' table: where ``a`` is better, where ``b`` is, and
    the ties (intervals containing 0)."""
    def names(who):
        return [_METRIC_NAMES.get(k, k) for k, v in table["better"].items() if v == who]

    wins_a, wins_b, ties = names(a), names(b), names("tie")
    parts = []
    if wins_a:
        parts.append(f"{a} is better on {', '.join(wins_a)}")
    if wins_b:
        parts.append(f"{b} is better on {', '.join(wins_b)}")
    if ties:
        parts.append(f"{'the two tie' if parts else f'{a} and {b} tie'} on {', '.join(ties)} (95 % bootstrap "
                     f"interval of the difference contains 0)")
    text = "; ".join(parts) + "."
    if "tto" in table.index:
        r = table.loc["tto"]
        text += (f" TTO: {a} {r[a]:.2f}, {b} {r[b]:.2f} (difference {r['difference']:+.2f}, "
                 f"95 % interval [{r['95% low']:+.2f}, {r['95% high']:+.2f}]).")
    return text[0].upper() + text[1:]


def timing_table(model, photos: Sequence[np.ndarray], sizes: Sequence[int] = (128, 256, 512),
                 max_detections: Sequence[int] = (100, 10), warmup: int = 1) -> pd.DataFrame:
    """The report's timing experiments with a trained Mask R-CNN: seconds per photo at each image
    size (max 10 detections) and at 512 px with each maximum number of detections, for the
    current path (float32, :func:`kerasmt.models.maskrcnn.predictor` on pre-letterboxed images) and
    the fast one (bfloat16 model, :func:`kerasmt.models.maskrcnn.detect` on the photos), interleaved
    photo by photo. Anchors keep their trained pixel sizes (as :func:`maskrcnn_timing_model`)."""
    from kerasmt.models import maskrcnn as mr
    from kerasmt.models.maskrcnn.detect import letterbox
    from kerasmt.models.maskrcnn.fast import fast_inference_model

    cases = list(dict.fromkeys([(int(s), REPORT_MAX_DETECTIONS) for s in sizes]
                               + [(512, int(m)) for m in max_detections]))
    rows = []
    for size, max_det in cases:
        current_model = maskrcnn_timing_model(model, size, max_det)
        fast = fast_inference_model(model, "bfloat16", image_size=size, detection_max_instances=max_det)
        current = mr.predictor(current_model)
        boxed = [letterbox(np.asarray(p), size)[0] for p in photos]
        current(boxed[0])
        for _ in range(warmup):
            mr.detect(fast, [photos[0]])
        tc, tf_ = [], []
        for p, bx in zip(photos, boxed):
            t0 = time.perf_counter()
            current(bx)
            tc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            mr.detect(fast, [p])
            tf_.append(time.perf_counter() - t0)
        rows.append({"image size": size, "max detections": max_det, "current (s)": float(np.mean(tc)),
                     "fast (s)": float(np.mean(tf_)), "fast / current": float(np.mean(tf_) / np.mean(tc))})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- timing
def time_inference(predict: Callable[[np.ndarray], Any], images: np.ndarray, warmup: int = 1) -> dict:
    """Seconds per image of ``predict(image)`` over ``images`` (one call each, after ``warmup``
    untimed calls on the first image): mean, min, max."""
    images = np.asarray(images)
    for _ in range(warmup):
        predict(images[0])
    times = []
    for image in images:
        start = time.perf_counter()
        predict(image)
        times.append(time.perf_counter() - start)
    return {"seconds_per_image": float(np.mean(times)), "min": float(np.min(times)), "max": float(np.max(times)),
            "images": len(times), "size": int(images.shape[1])}


def semantic_predictor(model: keras.Model, size: int) -> Callable[[np.ndarray], Any]:
    """uint8 image -> instances: the whole RefineNet inference (normalisation and network in one
    compiled call, softmax, connected components)."""
    from kerasmt.models.refinenet import instances_from_semantic

    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    area = min_area(size)

    def predict(image: np.ndarray):
        probs = fn(tf.convert_to_tensor(image[None], tf.float32) / 255.0)[0].numpy()
        return instances_from_semantic(probs, min_area=area, min_score=MIN_SCORE)

    return predict


def multilabel_predictor(model: keras.Model, threshold: float = 0.5) -> Callable[[np.ndarray], Any]:
    """uint8 image -> 0/1 class vector of a multi-label classifier."""
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def predict(image: np.ndarray):
        return (fn(tf.convert_to_tensor(image[None], tf.float32) / 255.0)[0].numpy() >= threshold).astype(np.int32)

    return predict


def timing_images(data: FashionData, n: int = 5, size: int = fd.IMAGE_SIZE) -> np.ndarray:
    """The first ``n`` test images letterboxed to ``size`` (the report timed 512 px inputs)."""
    rows = data.test.images.iloc[:n]
    return fd.decode_examples(rows, data.reduced, size, keep_instances=False).images


def time_report_refinenet(images: np.ndarray, n_classes: int = 11, encoder: str = "ResNet101") -> dict:
    """CPU time per image of the report's RefineNet configuration (ResNet-101, 512/256 channels)
    at the images' size, with random weights (timing does not depend on the weights)."""
    from kerasmt.models.refinenet import refinenet

    model = refinenet(images.shape[1:], None, n_classes=n_classes, encoder=encoder)
    out = time_inference(semantic_predictor(model, images.shape[1]), images)
    out["params"] = int(model.count_params())
    return out


# ---------------------------------------------------------------------------------------- tables
TABLE_COLUMNS = [
    ("Table 8: client set C", "EMR"), ("Table 8: client set C", "OA"), ("Table 8: client set C", "JSS"),
    ("Table 9: test set", "Av_Speed (s)"), ("Table 9: test set", "EMR"), ("Table 9: test set", "OA"),
    ("Table 9: test set", "JSS"), ("Table 9: test set", "mAP"), ("Table 9: test set", "F1"),
    ("COCO mask AP (pycocotools)", "AP@50"), ("COCO mask AP (pycocotools)", "AP@[.5:.95]"),
    ("Table 10: combination", "Class_C"), ("Table 10: combination", "Class_M"),
    ("Table 10: combination", "Segmentation"), ("Table 10: combination", "Speed"), ("Table 10: combination", "TTO"),
]


def results_table(results: Sequence[ModelResult], include_report: Sequence[str] = (REPORT_BEST,)) -> pd.DataFrame:
    """The report's Tables 8-10 as one table, one row per model: report runs first, then ours.

    Percentages are shown as in the report (EMR/OA/JSS in %, mAP/F1 as fractions). "mAP" is the
    report's: AP@50 of each image (Matterport's ``compute_ap``) averaged over images; the COCO
    columns are pycocotools' mask AP (per class over all images pooled, then averaged over classes)
    at IoU 0.5 and averaged over IoU 0.5:0.95. Rows without
    a client set use the test-set Classification as Class_C (marked ``*``); classification-only
    models have no Segmentation, so no TO/TTO.
    """
    rows, index = [], []
    for res in [report_result(r) for r in include_report] + list(results):
        s = res.scores()
        client = res.client or {}
        pct = lambda v: round(100 * v, 1) if v == v else np.nan  # noqa: E731
        two = lambda v: round(float(v), 2) if v == v else np.nan  # noqa: E731
        rows.append([
            pct(client.get("emr", np.nan)), pct(client.get("oa", np.nan)), pct(client.get("jss", np.nan)),
            two(res.seconds_per_image), pct(res.emr), pct(res.oa), pct(res.jss), two(res.map50), two(res.f1),
            two(res.coco_map50), two(res.coco_map), two(s["class_c"]), two(s["class_m"]), two(s["segmentation"]),
            two(s["speed"]), two(s["tto"]),
        ])
        mark = "" if s["class_c_source"] == "client" else " *"
        index.append(res.name + mark)
    table = pd.DataFrame(rows, index=pd.Index(index, name="run"), columns=pd.MultiIndex.from_tuples(TABLE_COLUMNS))
    return table


def per_class_table(results: Sequence[ModelResult], data: FashionData) -> pd.DataFrame:
    """Per-class label accuracy (report Appendix E) of each model, and per-class pixel IoU of the
    semantic models, on the test split."""
    out = {"test images with class": data.test.multi_hot.sum(0)}
    for res in results:
        if res.y_pred is not None:
            out[f"{res.name} accuracy"] = mi.per_class_accuracy(res.y_true, res.y_pred).round(3)
        sem = res.extra.get("semantic")
        if sem is not None:
            out[f"{res.name} pixel IoU"] = np.round(sem["iou"][1:], 3)
    return pd.DataFrame(out, index=pd.Index(data.class_names, name="class"))


def semantic_table(results: Sequence[ModelResult]) -> pd.DataFrame:
    """Pixel accuracy and mean IoU (with / without background) of semantic models."""
    rows = {}
    for res in results:
        sem = res.extra.get("semantic")
        if sem is not None:
            rows[res.name] = {"pixel accuracy": sem["pixel_accuracy"], "mean IoU": sem["mean_iou"],
                              "mean IoU (garments)": sem["mean_iou_foreground"], "background IoU": sem["iou"][0]}
    return pd.DataFrame(rows).T.round(3)


def metrics_summary(results: Mapping[str, ModelResult], data: FashionData, timing: Mapping[str, dict] | None = None,
                    baselines: Mapping[str, ModelResult] | None = None) -> dict:
    """The study's ``metrics.json``: per model {emr, oa, jss, map50, f1, seconds_per_image, tto, ...},
    baselines, semantic scores, the worked-example checks, data sizes and a flat ``summary``."""
    models = {key: res.metrics() for key, res in results.items()}
    metrics: dict = {
        "data": {"synthetic": data.synthetic, "label_set": data.label_set, "image_size": data.size,
                 "train": len(data.train), "val": len(data.val), "test": len(data.test)},
        "models": models,
        "baselines": {key: res.metrics() for key, res in (baselines or {}).items()},
        "semantic": {key: {"pixel_accuracy": res.extra["semantic"]["pixel_accuracy"],
                           "mean_iou_foreground": res.extra["semantic"]["mean_iou_foreground"],
                           "iou": res.extra["semantic"]["iou"]}
                     for key, res in {**(baselines or {}), **results}.items() if "semantic" in res.extra},
        "timing": dict(timing or {}),
        "report": {"Full4": report_result().metrics()},
        "worked_examples": {
            "table_2": table_2_example()["recomputed"].to_dict(),
            "table_11_11_classes": table_11_example()["11 classes (0..10)"].to_dict(),
            "table_10_rows_ok": recompute_table_10()["ok"].to_dict(),
        },
    }
    summary: dict = {}
    for key, m in models.items():
        for name in ("emr", "oa", "jss", "map50", "f1", "seconds_per_image", "tto"):
            value = m[name]
            if value is not None and value == value:
                summary[f"{key}.{name}"] = round(float(value), 4)
    for key, res in (baselines or {}).items():
        summary[f"{key}.jss"] = round(float(res.jss), 4)
    metrics["summary"] = summary
    return metrics


# ----------------------------------------------------------------------------------------- plots
#: colours of background + the 11 full-set classes in the figures
COLORS = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                   [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
                   [0, 128, 128]], dtype=np.uint8)


def colorize(label_map: np.ndarray) -> np.ndarray:
    """Label map (0 = background) -> RGB image with :data:`COLORS`."""
    return COLORS[np.asarray(label_map) % len(COLORS)]


def overlay(image: np.ndarray, label_map: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Image with the (non-background) label map blended on top."""
    image = np.asarray(image, np.float32)
    colors = colorize(label_map).astype(np.float32)
    fg = (np.asarray(label_map) > 0)[..., None]
    return np.where(fg, (1 - alpha) * image + alpha * colors, image).astype(np.uint8)


def _legend(ax, names: Sequence[str], present: Sequence[int] | None = None) -> None:
    import matplotlib.patches as mpatches

    ids = range(len(names)) if present is None else sorted(set(present))
    handles = [mpatches.Patch(color=COLORS[i + 1] / 255.0, label=names[i]) for i in ids]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)


def plot_category_counts(data: FashionData):
    """Segments per category before reduction (report Figure 12), kept classes highlighted."""
    import matplotlib.pyplot as plt

    counts = fd.segment_counts(data.segments)
    kept = set(fd.LABEL_SETS[data.label_set])
    colors = ["tab:blue" if i in kept else ("lightgray" if i in fd.DROPPED_PARTS else "tab:gray")
              for i in range(len(counts))]
    fig, ax = plt.subplots(figsize=(11, 3))
    ax.bar(range(len(counts)), counts.to_numpy(), color=colors)
    ax.set_xticks(range(len(counts)))
    ax.set_xticklabels([f"{i}: {n}" for i, n in enumerate(counts.index)], rotation=90, fontsize=6)
    ax.set_ylabel("segments")
    ax.set_title(f"segments per category (blue: kept '{data.label_set}' set; light grey: the 18 dropped parts)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_examples(data: FashionData, indices: Sequence[int], split: str = "test"):
    """Letterboxed images (top) and their instance masks as a semantic map (bottom)."""
    import matplotlib.pyplot as plt

    part = {"test": data.test, "val": data.val, "train": data.train}[split]
    fig, axes = plt.subplots(2, len(indices), figsize=(1.6 * len(indices) + 1.2, 3.6), squeeze=False)
    present = []
    for col, i in enumerate(indices):
        axes[0][col].imshow(part.x[i])
        axes[1][col].imshow(colorize(part.semantic[i]), interpolation="nearest")
        present += np.flatnonzero(part.multi_hot[i]).tolist()
        axes[0][col].set_title(f"{part.images['n_segments'].iloc[i]} segments", fontsize=7)
        for ax in axes[:, col]:
            ax.axis("off")
    _legend(axes[0][-1], data.class_names, present)
    fig.tight_layout()
    return fig


def plot_preprocessing(data: FashionData, index: int = 0, size: int = fd.IMAGE_SIZE, seed: int = 0):
    """The report's preprocessing on one test image (top: image, bottom: its masks): original,
    letterboxed to ``size`` (zero padding; masks identically), mean-pixel normalised, and the four
    augmentations (flip moves the mask with the image; brightness, blur and noise leave it)."""
    import matplotlib.pyplot as plt

    from kerasmt.images import open_image

    row = data.test.images.iloc[index]
    segs = data.segments_of(row["image_id"])
    original = np.asarray(open_image(row["path"]))
    masks = [fd.rle_decode(r, int(row["height"]), int(row["width"])) for r in segs["rle"]]
    sem_orig = fd.semantic_map(np.stack(masks), segs["label"].to_numpy())
    ex = fd.load_example(row, segs, size)
    sem = fd.semantic_map(ex.masks, ex.labels)
    norm = fd.normalize(ex.image)
    panels = [(f"original {original.shape[0]}x{original.shape[1]}", original, sem_orig),
              (f"letterboxed {size}x{size}", ex.image, sem),
              ("minus COCO mean\n(rescaled to show)",
               ((norm - norm.min()) / (norm.max() - norm.min()) * 255).astype(np.uint8), sem)]
    for k, kind in enumerate(("flip", "brightness", "blur", "noise")):
        img, m = fd.augment_example(ex.image.astype(np.float32), sem, [seed, k], force=kind)
        panels.append((kind + ("\n(image and mask)" if kind == "flip" else "\n(image only)"),
                       np.asarray(img).astype(np.uint8), np.asarray(m)))
    fig, axes = plt.subplots(2, len(panels), figsize=(1.75 * len(panels), 3.8))
    for col, (title, image, mask) in enumerate(panels):
        axes[0][col].imshow(image)
        axes[1][col].imshow(colorize(mask), interpolation="nearest")
        axes[0][col].set_title(title, fontsize=7)
        for ax in axes[:, col]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_predictions(result: ModelResult, data: FashionData, indices: Sequence[int]):
    """Test images (top), their true masks (middle) and the model's semantic prediction
    (bottom), with instance counts (predicted instances: connected components)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, len(indices), figsize=(1.6 * len(indices) + 1.2, 5.2), squeeze=False)
    present = []
    for col, i in enumerate(indices):
        pred = (result.probabilities[i].argmax(-1) if result.probabilities is not None
                else np.asarray(result.extra["pred_maps"][i]))
        axes[0][col].imshow(data.test.x[i])
        axes[1][col].imshow(colorize(data.test.semantic[i]), interpolation="nearest")
        axes[2][col].imshow(colorize(pred), interpolation="nearest")
        n_pred = len(result.instances[i]) if result.instances else 0
        axes[1][col].set_title(f"truth: {len(data.test.instance(i))} instances", fontsize=7)
        axes[2][col].set_title(f"predicted: {n_pred} instances", fontsize=7)
        present += np.unique(data.test.semantic[i]).tolist() + np.unique(pred).tolist()
        for ax in axes[:, col]:
            ax.axis("off")
    _legend(axes[0][-1], data.class_names, [p - 1 for p in present if p > 0])
    fig.tight_layout()
    return fig


def instances_map(instances: mi.Instances, shape: tuple[int, int]) -> np.ndarray:
    """Instances drawn as a label map (0 = background, label + 1), lowest score first so that the
    most confident instance is on top."""
    out = np.zeros(shape, np.uint8)
    scores = instances.scores if instances.scores is not None else np.ones(len(instances))
    for k in np.argsort(scores, kind="stable"):
        out[instances.masks[k]] = int(instances.labels[k]) + 1
    return out


def plot_instance_predictions(result: ModelResult, data: FashionData, indices: Sequence[int]):
    """Test images with the true instances (middle) and the predicted ones (bottom): masks in the
    class colours, boxes around each predicted mask with class name and score."""
    import matplotlib.patches as mpatches
    import matplotlib.pyplot as plt

    indices = list(indices)
    fig, axes = plt.subplots(3, len(indices), figsize=(1.7 * len(indices) + 1.2, 5.6), squeeze=False)
    present = []
    names = data.class_names
    for col, i in enumerate(indices):
        pred = result.instances[i]
        truth = data.test.instance(i)
        axes[0][col].imshow(data.test.x[i])
        axes[1][col].imshow(overlay(data.test.x[i], instances_map(truth, (data.size, data.size))))
        axes[2][col].imshow(overlay(data.test.x[i], instances_map(pred, (data.size, data.size))))
        for m, label, score in zip(pred.masks, pred.labels, pred.scores):
            ys, xs = np.nonzero(m)
            color = COLORS[int(label) + 1] / 255.0
            axes[2][col].add_patch(mpatches.Rectangle((xs.min() - 0.5, ys.min() - 0.5), xs.max() - xs.min() + 1,
                                                      ys.max() - ys.min() + 1, fill=False, lw=0.8, ec=color))
            axes[2][col].text(xs.min(), ys.min() - 1, f"{names[int(label)]} {score:.2f}", fontsize=4.5, color="white",
                              bbox=dict(facecolor=color, alpha=0.8, pad=0.3, lw=0))
        axes[1][col].set_title(f"truth: {len(truth)} instances", fontsize=7)
        axes[2][col].set_title(f"predicted: {len(pred)}", fontsize=7)
        present += list(truth.labels) + list(pred.labels)
        for ax in axes[:, col]:
            ax.axis("off")
    _legend(axes[0][-1], names, [int(p) for p in present])
    fig.tight_layout()
    return fig


def plot_maskrcnn_history(history: pd.DataFrame):
    """The five losses and their sum per epoch over the two stages (report Appendix D), the stage
    boundary dashed; validation losses dotted when there are any."""
    import matplotlib.pyplot as plt

    from kerasmt.models.maskrcnn import LOSS_NAMES

    names = ["loss", *LOSS_NAMES]
    fig, axes = plt.subplots(1, len(names), figsize=(2.1 * len(names), 2.3))
    boundaries = history.groupby("stage")["epoch"].max().sort_values().to_numpy()[:-1]
    for ax, name in zip(axes, names):
        ax.plot(history["epoch"], history[name], marker=".", label="train")
        if f"val_{name}" in history:
            ax.plot(history["epoch"], history[f"val_{name}"], ls=":", marker=".", label="val")
        for b in boundaries:
            ax.axvline(b + 0.5, color="gray", ls="--", lw=0.8)
        ax.set_title(name.replace("_loss", "") if name != "loss" else "total", fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6)
    fig.suptitle("Mask R-CNN losses: stage 1 heads | stage 2 all layers", fontsize=9)
    fig.tight_layout()
    return fig
