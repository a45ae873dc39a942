"""From the inference model's outputs to full-size instance masks scored by
:mod:`kerasmt.metrics_instances` (like RefineNet's connected components).
"""
from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf


def paste_masks(masks: np.ndarray, boxes: np.ndarray, height: int, width: int, threshold: float = 0.5) -> np.ndarray:
    """Paste ``masks`` ``(n, h, w)`` (probabilities over each box) into ``(n, height, width)`` bool
    images at the normalised ``boxes`` ``(n, 4)``, with bilinear resampling (one
    ``tf.image.crop_and_resize`` through the inverse boxes: pixel ``p`` of the image reads mask
    position ``(p / (S - 1) - y1) / (y2 - y1)``; pixels outside the box read 0), then ``>= threshold``.
    The pixels inside a box are those whose centres lie in it (Matterport's normalisation)."""
    masks = np.asarray(masks, np.float32)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(masks)
    if n == 0:
        return np.zeros((0, height, width), bool)
    if masks.ndim != 3 or len(boxes) != n:
        raise ValueError(f"masks must be (n, h, w) with one box each, got masks {masks.shape}, boxes {boxes.shape}")
    y1, x1, y2, x2 = [boxes[:, i] for i in range(4)]
    h = np.maximum(y2 - y1, 1e-6)
    w = np.maximum(x2 - x1, 1e-6)
    inverse = np.stack([-y1 / h, -x1 / w, (1.0 - y1) / h, (1.0 - x1) / w], axis=1)
    pasted = tf.image.crop_and_resize(masks[..., None], inverse, np.arange(n, dtype=np.int32), [height, width],
                                      extrapolation_value=0.0)
    return pasted.numpy()[..., 0] >= threshold


def detections_to_instances(detections: np.ndarray, masks: np.ndarray, height: int, width: int,
                            threshold: float = 0.5):
    """One image's ``detections (M, 6)`` and ``masks (M, h, w)`` -> :class:`kerasmt.metrics_instances.Instances`
    with full-size masks, labels ``class_id - 1`` (0-based, like the datasets) and scores; padding
    rows (class 0) and masks that vanish are dropped."""
    from kerasmt.metrics_instances import Instances

    detections = np.asarray(detections, np.float32)
    keep = detections[:, 4] > 0
    pasted = paste_masks(np.asarray(masks)[keep], detections[keep, :4], height, width, threshold)
    nonempty = pasted.any(axis=(1, 2))
    return Instances(pasted[nonempty], detections[keep, 4][nonempty].astype(np.int64) - 1,
                     detections[keep, 5][nonempty].astype(float))


def predict_instances(model: keras.Model, images: np.ndarray, batch_size: int = 4, threshold: float = 0.5) -> list:
    """Instances of every image ``(N, S, S, 3)`` (uint8 or float 0..255) with an inference model
    (or a :class:`~kerasmt.models.maskrcnn.model.MaskRCNN`)."""
    model = getattr(model, "inference_model", model)
    images = np.asarray(images)
    size = model.inputs[0].shape[1]
    if images.ndim != 4 or images.shape[1] != size or images.shape[2] != size:
        raise ValueError(f"images must be (N, {size}, {size}, 3) for this model, got {images.shape}")
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    out = []
    for start in range(0, len(images), batch_size):
        res = fn(tf.convert_to_tensor(images[start:start + batch_size], tf.float32))
        det, masks = res["detections"].numpy(), res["masks"].numpy()
        out += [detections_to_instances(d, m, images.shape[1], images.shape[2], threshold) for d, m in zip(det, masks)]
    return out


def predictor(model: keras.Model, threshold: float = 0.5) -> Callable[[np.ndarray], Any]:
    """uint8 image -> instances: the whole Mask R-CNN inference of one image (network, detection
    layer, mask pasting), for :func:`kerasmt.studies.fashion.time_inference`."""
    model = getattr(model, "inference_model", model)
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def predict(image: np.ndarray):
        res = fn(tf.convert_to_tensor(image[None], tf.float32))
        return detections_to_instances(res["detections"][0].numpy(), res["masks"][0].numpy(), image.shape[0],
                                       image.shape[1], threshold)

    return predict
