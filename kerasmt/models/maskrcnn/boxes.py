"""Box utilities: IoU, encoding of a box relative to another (deltas) and decoding, extracting
boxes from masks. NumPy versions for the data pipeline, TensorFlow versions for the graph.

Boxes are ``(y1, x1, y2, x2)``; deltas are ``(dy, dx, log dh, log dw)`` of centres and sizes
(Faster R-CNN's parameterisation, Matterport's ``box_refinement`` / ``apply_box_deltas``).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


# ---------------------------------------------------------------------------------------- numpy
def iou_matrix(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU ``(n1, n2)`` of two box sets."""
    b1 = np.asarray(boxes1, np.float64).reshape(-1, 4)
    b2 = np.asarray(boxes2, np.float64).reshape(-1, 4)
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    y1 = np.maximum(b1[:, None, 0], b2[None, :, 0])
    x1 = np.maximum(b1[:, None, 1], b2[None, :, 1])
    y2 = np.minimum(b1[:, None, 2], b2[None, :, 2])
    x2 = np.minimum(b1[:, None, 3], b2[None, :, 3])
    inter = np.maximum(y2 - y1, 0) * np.maximum(x2 - x1, 0)
    union = area1[:, None] + area2[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def encode_boxes_np(boxes: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """Deltas that turn ``boxes`` into ``gt_boxes`` (row by row)."""
    b = np.asarray(boxes, np.float64)
    g = np.asarray(gt_boxes, np.float64)
    h, w = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cy, cx = b[:, 0] + 0.5 * h, b[:, 1] + 0.5 * w
    gh, gw = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    gcy, gcx = g[:, 0] + 0.5 * gh, g[:, 1] + 0.5 * gw
    return np.stack([(gcy - cy) / h, (gcx - cx) / w, np.log(gh / h), np.log(gw / w)], axis=1).astype(np.float32)


def decode_boxes_np(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Apply ``deltas`` to ``boxes`` (inverse of :func:`encode_boxes_np`)."""
    b = np.asarray(boxes, np.float64)
    d = np.asarray(deltas, np.float64)
    h, w = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cy, cx = b[:, 0] + 0.5 * h + d[:, 0] * h, b[:, 1] + 0.5 * w + d[:, 1] * w
    h, w = h * np.exp(d[:, 2]), w * np.exp(d[:, 3])
    return np.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=1).astype(np.float32)


def extract_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight pixel boxes ``(k, 4)`` int32 of masks ``(k, H, W)``, ``y2``/``x2`` exclusive; an empty
    mask gives ``(0, 0, 0, 0)``."""
    masks = np.asarray(masks, bool)
    boxes = np.zeros((len(masks), 4), np.int32)
    for i, m in enumerate(masks):
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        if len(rows):
            boxes[i] = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
    return boxes


# ------------------------------------------------------------------------------------ tensorflow
def iou_matrix_tf(boxes1: tf.Tensor, boxes2: tf.Tensor) -> tf.Tensor:
    """IoU ``(n1, n2)`` of two box sets (float32 tensors ``(n, 4)``)."""
    b1 = tf.cast(boxes1, tf.float32)
    b2 = tf.cast(boxes2, tf.float32)
    y1a, x1a, y2a, x2a = tf.split(b1, 4, axis=1)  # (n1, 1)
    y1b, x1b, y2b, x2b = [tf.transpose(t) for t in tf.split(b2, 4, axis=1)]  # (1, n2)
    inter = tf.maximum(tf.minimum(y2a, y2b) - tf.maximum(y1a, y1b), 0.0) * \
        tf.maximum(tf.minimum(x2a, x2b) - tf.maximum(x1a, x1b), 0.0)
    union = (y2a - y1a) * (x2a - x1a) + (y2b - y1b) * (x2b - x1b) - inter
    return tf.math.divide_no_nan(inter, union)


def encode_boxes(boxes: tf.Tensor, gt_boxes: tf.Tensor) -> tf.Tensor:
    """TensorFlow :func:`encode_boxes_np` (any leading shape, last axis 4)."""
    b = tf.cast(boxes, tf.float32)
    g = tf.cast(gt_boxes, tf.float32)
    h, w = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    cy, cx = b[..., 0] + 0.5 * h, b[..., 1] + 0.5 * w
    gh, gw = g[..., 2] - g[..., 0], g[..., 3] - g[..., 1]
    gcy, gcx = g[..., 0] + 0.5 * gh, g[..., 1] + 0.5 * gw
    return tf.stack([(gcy - cy) / h, (gcx - cx) / w, tf.math.log(gh / h), tf.math.log(gw / w)], axis=-1)


def decode_boxes(boxes: tf.Tensor, deltas: tf.Tensor) -> tf.Tensor:
    """TensorFlow :func:`decode_boxes_np` (any leading shape, last axis 4)."""
    b = tf.cast(boxes, tf.float32)
    d = tf.cast(deltas, tf.float32)
    h, w = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    cy = b[..., 0] + 0.5 * h + d[..., 0] * h
    cx = b[..., 1] + 0.5 * w + d[..., 1] * w
    h = h * tf.exp(d[..., 2])
    w = w * tf.exp(d[..., 3])
    return tf.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)


def clip_boxes(boxes: tf.Tensor, window=(0.0, 0.0, 1.0, 1.0)) -> tf.Tensor:
    """Clip boxes to ``window`` ``(y1, x1, y2, x2)``."""
    wy1, wx1, wy2, wx2 = [float(v) for v in window]
    y1 = tf.clip_by_value(boxes[..., 0], wy1, wy2)
    x1 = tf.clip_by_value(boxes[..., 1], wx1, wx2)
    y2 = tf.clip_by_value(boxes[..., 2], wy1, wy2)
    x2 = tf.clip_by_value(boxes[..., 3], wx1, wx2)
    return tf.stack([y1, x1, y2, x2], axis=-1)
