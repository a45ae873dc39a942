"""``tf.data`` input pipeline of Mask R-CNN: images with instance masks -> training batches.

Per example: (optionally) the report's augmentation with TensorFlow ops
(:func:`kerasmt.datasets.fashion.augment_example`: flip moves the masks with the image), then in
NumPy (``tf.numpy_function``): boxes from the masks, mini masks, RPN anchor targets; padded to
``max_gt_instances``. A batch is a dict::

    image (B, S, S, 3) float32 RGB 0..255      gt_class_ids (B, G) int32 (class + 1; 0 = padding)
    gt_boxes (B, G, 4) normalised               gt_masks (B, G, 56, 56) (mini masks) or (B, G, S, S)
    rpn_match (B, N) int32 (1 / -1 / 0)         rpn_bbox (B, N, 4) (deltas / RPN_BBOX_STD_DEV)
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from kerasmt.models.maskrcnn.anchors import config_anchors, norm_boxes
from kerasmt.models.maskrcnn.boxes import extract_boxes
from kerasmt.models.maskrcnn.config import MaskRCNNConfig
from kerasmt.models.maskrcnn.targets import build_rpn_targets, minimize_masks


def example_targets(masks: np.ndarray, labels: np.ndarray, config: MaskRCNNConfig, anchors: np.ndarray | None = None,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Ground truth and RPN targets of one image from its instance masks ``(k, S, S)`` and labels
    ``(k,)`` (0-based classes; stored as ``label + 1``). Empty masks are skipped; more than
    ``max_gt_instances`` instances keep the largest."""
    cfg = config
    masks = np.asarray(masks, bool)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if masks.ndim != 3 or len(masks) != len(labels):
        raise ValueError(f"masks must be (k, H, W) with one label each, got masks {masks.shape}, labels {labels.shape}")
    if masks.shape[1:] != (cfg.image_size, cfg.image_size) and len(masks):
        raise ValueError(f"masks are {masks.shape[1:]}, expected ({cfg.image_size}, {cfg.image_size}) = config.image_size")
    if len(labels) and (labels.min() < 0 or labels.max() >= cfg.num_classes - 1):
        raise ValueError(f"labels must be in 0..{cfg.num_classes - 2} (num_classes - 1 classes besides background), "
                         f"got {sorted(set(labels.tolist()))}")
    areas = masks.reshape(len(masks), -1).sum(axis=1) if len(masks) else np.zeros(0)
    keep = np.flatnonzero(areas > 0)
    if len(keep) > cfg.max_gt_instances:
        keep = keep[np.argsort(-areas[keep], kind="stable")[: cfg.max_gt_instances]]
    masks, labels = masks[keep], labels[keep]
    boxes = norm_boxes(extract_boxes(masks), cfg.image_size) if len(masks) else np.zeros((0, 4), np.float32)
    anchors = config_anchors(cfg) if anchors is None else anchors
    rng = np.random.default_rng(seed)
    match, deltas = build_rpn_targets(anchors, boxes, cfg.rpn_train_anchors_per_image, cfg.rpn_bbox_std_dev, rng)
    g = cfg.max_gt_instances
    shape = cfg.mini_mask_shape if cfg.use_mini_mask else (cfg.image_size, cfg.image_size)
    gt_masks = np.zeros((g, *shape), np.float32)
    if len(masks):
        gt_masks[: len(masks)] = minimize_masks(masks, boxes, shape) if cfg.use_mini_mask else masks
    gt_boxes = np.zeros((g, 4), np.float32)
    gt_boxes[: len(boxes)] = boxes
    gt_class_ids = np.zeros(g, np.int32)
    gt_class_ids[: len(labels)] = labels + 1
    return {"gt_class_ids": gt_class_ids, "gt_boxes": gt_boxes, "gt_masks": gt_masks, "rpn_match": match,
            "rpn_bbox": deltas}


def make_dataset(images: np.ndarray, masks: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                 config: MaskRCNNConfig, batch_size: int | None = None, augment: bool | dict = False, shuffle: bool = True,
                 seed: int = 0, drop_remainder: bool = True) -> tf.data.Dataset:
    """Training / validation batches (see the module docstring) from uint8 images ``(N, S, S, 3)``,
    per-image masks ``(k, S, S)`` and labels ``(k,)``. ``augment``: the report's scheme (True), or
    a dict of :func:`kerasmt.datasets.fashion.augment_example` keywords (e.g. ``{"brightness_p": 0,
    "blur_or_noise_p": 0}``: flips only, the report's Base1 / Base4)."""
    cfg = config
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != cfg.image_shape:
        raise ValueError(f"images must be (N, {cfg.image_size}, {cfg.image_size}, 3) (config.image_size), "
                         f"got {images.shape}")
    if not (len(images) == len(masks) == len(labels)):
        raise ValueError(f"images ({len(images)}), masks ({len(masks)}) and labels ({len(labels)}) differ in length")
    masks = [np.asarray(m, bool) for m in masks]
    labels = [np.asarray(lab, np.int64).reshape(-1) for lab in labels]
    return make_dataset_from(lambda i: (images[i], masks[i], labels[i]), len(images), config, batch_size, augment,
                             shuffle, seed, drop_remainder)


def make_dataset_from(loader: Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]], n: int,
                      config: MaskRCNNConfig, batch_size: int | None = None, augment: bool | dict = False,
                      shuffle: bool = True, seed: int = 0, drop_remainder: bool = True) -> tf.data.Dataset:
    """:func:`make_dataset` with examples read on the fly: ``loader(i)`` returns example ``i``
    (uint8 image ``(S, S, 3)``, bool masks ``(k, S, S)``, labels ``(k,)``), e.g. decoded from disk
    (datasets too large for memory)."""
    from kerasmt.datasets.fashion import augment_example

    cfg = config
    if n < 1:
        raise ValueError(f"n must be >= 1 examples, got {n}")
    augment_kwargs = dict(augment) if isinstance(augment, dict) else {}
    batch_size = int(batch_size or cfg.batch_size)
    anchors = config_anchors(cfg)
    n_anchors = len(anchors)
    size = cfg.image_size
    g = cfg.max_gt_instances
    mshape = cfg.mini_mask_shape if cfg.use_mini_mask else (size, size)

    def _load(i):
        image, m, lab = loader(int(i))
        image = np.asarray(image, np.uint8)
        m = np.asarray(m, bool)
        if image.shape != cfg.image_shape:
            raise ValueError(f"example {int(i)}: image {image.shape}, expected {cfg.image_shape} (config.image_size)")
        stacked = np.transpose(m, (1, 2, 0)).astype(np.uint8) if len(m) else np.zeros((size, size, 0), np.uint8)
        return image, stacked, np.asarray(lab, np.int32).reshape(-1)

    def _targets(stacked, lab, seed_value):
        out = example_targets(np.transpose(stacked, (2, 0, 1)) > 0, lab, cfg, anchors, int(seed_value) % (2**32))
        return (out["gt_class_ids"], out["gt_boxes"], out["gt_masks"], out["rpn_match"], out["rpn_bbox"])

    def _example(i, seeds):
        image, stacked, lab = tf.numpy_function(_load, [i], (tf.uint8, tf.uint8, tf.int32))
        image = tf.ensure_shape(tf.cast(image, tf.float32), cfg.image_shape)
        stacked = tf.ensure_shape(stacked, [size, size, None])
        if augment or isinstance(augment, dict):
            image, stacked = augment_example(image, stacked, seeds, **augment_kwargs)
        outs = tf.numpy_function(_targets, [stacked, lab, seeds[0]],
                                 (tf.int32, tf.float32, tf.float32, tf.int32, tf.float32))
        shapes = ([g], [g, 4], [g, *mshape], [n_anchors], [n_anchors, 4])
        outs = [tf.ensure_shape(t, s) for t, s in zip(outs, shapes)]
        return {"image": image, "gt_class_ids": outs[0], "gt_boxes": outs[1], "gt_masks": outs[2],
                "rpn_match": outs[3], "rpn_bbox": outs[4]}

    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds)).map(_example, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
