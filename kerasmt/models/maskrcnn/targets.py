"""Training targets: RPN anchor matching (NumPy, in the ``tf.data`` pipeline) and RoI sampling
with box / class / mask targets (TensorFlow, in the training graph), as Matterport's
``build_rpn_targets`` and ``DetectionTargetLayer``.

Boxes are normalised ``(y1, x1, y2, x2)`` (:func:`kerasmt.models.maskrcnn.anchors.norm_boxes`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from kerasmt.models.maskrcnn.boxes import encode_boxes, encode_boxes_np, iou_matrix, iou_matrix_tf

#: anchors with IoU >= this with a ground-truth box are positive, < NEGATIVE_IOU negative (Matterport)
RPN_POSITIVE_IOU = 0.7
RPN_NEGATIVE_IOU = 0.3
#: RoIs with IoU >= this with a ground-truth box are positive (foreground), the others negative
ROI_POSITIVE_IOU = 0.5


# ------------------------------------------------------------------------------------------- RPN
def build_rpn_targets(anchors: np.ndarray, gt_boxes: np.ndarray, train_anchors: int = 256,
                      bbox_std_dev: Sequence[float] = (0.1, 0.1, 0.2, 0.2),
                      rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Match anchors to ground-truth boxes.

    Returns ``rpn_match`` int32 ``(N,)`` (1 positive, -1 negative, 0 ignored) and ``rpn_bbox``
    float32 ``(N, 4)``: the deltas from each positive anchor to its best box divided by
    ``bbox_std_dev`` (zeros elsewhere). An anchor is positive with IoU >= 0.7, or when it is
    (one of) the best anchor(s) of a box; negative with IoU < 0.3. At most half of
    ``train_anchors`` are positive (random subset) and negatives fill the rest.
    """
    rng = rng or np.random.default_rng(0)
    anchors = np.asarray(anchors, np.float32)
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    n = len(anchors)
    match = np.zeros(n, np.int32)
    deltas = np.zeros((n, 4), np.float32)
    if len(gt_boxes) == 0:
        negatives = rng.permutation(n)[:train_anchors]
        match[negatives] = -1
        return match, deltas
    overlaps = iou_matrix(anchors, gt_boxes)  # (N, G)
    best_gt = overlaps.argmax(axis=1)
    best_iou = overlaps[np.arange(n), best_gt]
    match[best_iou < RPN_NEGATIVE_IOU] = -1
    column_max = overlaps.max(axis=0)
    best_anchors = np.argwhere((overlaps == column_max[None]) & (column_max[None] > 0))[:, 0]
    match[best_anchors] = 1
    match[best_iou >= RPN_POSITIVE_IOU] = 1
    positives = np.flatnonzero(match == 1)
    extra = len(positives) - train_anchors // 2
    if extra > 0:
        match[rng.choice(positives, extra, replace=False)] = 0
    negatives = np.flatnonzero(match == -1)
    extra = len(negatives) - (train_anchors - int((match == 1).sum()))
    if extra > 0:
        match[rng.choice(negatives, extra, replace=False)] = 0
    positives = np.flatnonzero(match == 1)
    deltas[positives] = encode_boxes_np(anchors[positives], gt_boxes[best_gt[positives]]) / np.asarray(
        bbox_std_dev, np.float32)
    return match, deltas


# ------------------------------------------------------------------------------------ mini masks
def crop_and_resize_np(image: np.ndarray, boxes: np.ndarray, crop_size: tuple[int, int]) -> np.ndarray:
    """NumPy ``tf.image.crop_and_resize`` of one ``(H, W)`` or ``(H, W, C)`` array (bilinear,
    extrapolation 0): ``(len(boxes), ch, cw[, C])``. A normalised coordinate ``y`` samples row
    ``y * (H - 1)``."""
    image = np.asarray(image, np.float32)
    squeeze = image.ndim == 2
    if squeeze:
        image = image[..., None]
    h, w = image.shape[:2]
    ch, cw = crop_size
    out = np.zeros((len(boxes), ch, cw, image.shape[2]), np.float32)
    for k, (y1, x1, y2, x2) in enumerate(np.asarray(boxes, np.float64)):
        ys = (y1 * (h - 1) + np.arange(ch) * (y2 - y1) * (h - 1) / (ch - 1)) if ch > 1 else \
            np.array([0.5 * (y1 + y2) * (h - 1)])
        xs = (x1 * (w - 1) + np.arange(cw) * (x2 - x1) * (w - 1) / (cw - 1)) if cw > 1 else \
            np.array([0.5 * (x1 + x2) * (w - 1)])
        y0 = np.floor(ys).astype(int)
        x0 = np.floor(xs).astype(int)
        fy = (ys - y0)[:, None, None]
        fx = (xs - x0)[None, :, None]
        yi0, yi1 = np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
        xi0, xi1 = np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
        top = image[yi0][:, xi0] * (1 - fx) + image[yi0][:, xi1] * fx
        bottom = image[yi1][:, xi0] * (1 - fx) + image[yi1][:, xi1] * fx
        value = top * (1 - fy) + bottom * fy
        inside = ((ys >= 0) & (ys <= h - 1))[:, None, None] & ((xs >= 0) & (xs <= w - 1))[None, :, None]
        out[k] = np.where(inside, value, 0.0)
    return out[..., 0] if squeeze else out


def minimize_masks(masks: np.ndarray, boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mini masks (Matterport ``USE_MINI_MASK``): each mask ``(k, H, W)`` cropped to its normalised
    box and resized to ``shape``, 0/1 float32 ``(k, *shape)``. Sampled like RoIAlign, so cropping a
    mini mask with RoI coordinates relative to its box equals cropping the full mask with the RoI."""
    out = np.zeros((len(masks), *shape), np.float32)
    for i, (m, b) in enumerate(zip(masks, boxes)):
        out[i] = crop_and_resize_np(m.astype(np.float32), b[None], shape)[0]
    return (out >= 0.5).astype(np.float32)


# ------------------------------------------------------------------------------ RoI sampling (tf)
def detection_targets_single(proposals: tf.Tensor, gt_class_ids: tf.Tensor, gt_boxes: tf.Tensor,
                             gt_masks: tf.Tensor, train_rois: int, positive_ratio: float,
                             bbox_std_dev: Sequence[float], mask_shape: Sequence[int], use_mini_mask: bool,
                             add_gt_to_proposals: bool = False):
    """RoI sampling and targets of one image (Matterport's ``detection_targets_graph``).

    ``proposals`` ``(P, 4)`` and ``gt_boxes`` ``(G, 4)`` normalised, zero rows are padding;
    ``gt_class_ids`` ``(G,)`` (0 = padding); ``gt_masks`` ``(G, h, w)`` (mini masks or full size).
    Keeps up to ``train_rois * positive_ratio`` random positive RoIs (IoU >= 0.5 with a box) and
    ``positives * (1 / positive_ratio - 1)`` random negatives, positives first, zero-padded to
    ``train_rois``. Returns ``rois (R, 4)``, ``class_ids (R,)`` int32 (0 for negatives and
    padding), ``deltas (R, 4)`` (to the matched box, divided by ``bbox_std_dev``) and
    ``masks (R, mh, mw)`` (the matched box's mask cropped to the RoI, rounded to 0/1).
    """
    proposals = tf.cast(proposals, tf.float32)
    keep = tf.reduce_any(tf.not_equal(proposals, 0.0), axis=1)
    proposals = tf.boolean_mask(proposals, keep)
    valid_gt = gt_class_ids > 0
    gt_class_ids = tf.boolean_mask(tf.cast(gt_class_ids, tf.int32), valid_gt)
    gt_boxes = tf.boolean_mask(tf.cast(gt_boxes, tf.float32), valid_gt)
    gt_masks = tf.boolean_mask(tf.cast(gt_masks, tf.float32), valid_gt)
    if add_gt_to_proposals:
        proposals = tf.concat([proposals, gt_boxes], axis=0)

    overlaps = iou_matrix_tf(proposals, gt_boxes)  # (P, G)
    padded = tf.concat([overlaps, tf.zeros([tf.shape(overlaps)[0], 1])], axis=1)  # max over an empty G is 0
    roi_iou_max = tf.reduce_max(padded, axis=1)
    positive_indices = tf.where(roi_iou_max >= ROI_POSITIVE_IOU)[:, 0]
    negative_indices = tf.where(roi_iou_max < ROI_POSITIVE_IOU)[:, 0]
    positive_count = int(train_rois * positive_ratio)
    positive_indices = tf.random.shuffle(positive_indices)[:positive_count]
    n_pos = tf.shape(positive_indices)[0]
    negative_count = tf.cast(tf.cast(n_pos, tf.float32) / positive_ratio, tf.int32) - n_pos
    negative_indices = tf.random.shuffle(negative_indices)[:negative_count]
    positive_rois = tf.gather(proposals, positive_indices)
    negative_rois = tf.gather(proposals, negative_indices)

    # the zero column of `padded` never wins for a positive (IoU >= 0.5), and keeps argmax defined when G = 0
    assignment = tf.argmax(tf.gather(padded, positive_indices), axis=1, output_type=tf.int32)
    roi_boxes = tf.gather(gt_boxes, assignment)
    roi_class_ids = tf.gather(gt_class_ids, assignment)
    deltas = encode_boxes(positive_rois, roi_boxes) / tf.constant(list(bbox_std_dev), tf.float32)

    masks = tf.gather(gt_masks, assignment)[..., None]  # (n_pos, h, w, 1)
    boxes = positive_rois
    if use_mini_mask:
        y1, x1, y2, x2 = tf.split(positive_rois, 4, axis=1)
        gy1, gx1, gy2, gx2 = tf.split(roi_boxes, 4, axis=1)
        gh, gw = tf.maximum(gy2 - gy1, 1e-6), tf.maximum(gx2 - gx1, 1e-6)
        boxes = tf.concat([(y1 - gy1) / gh, (x1 - gx1) / gw, (y2 - gy1) / gh, (x2 - gx1) / gw], axis=1)
    crops = tf.image.crop_and_resize(masks, boxes, tf.range(n_pos), list(mask_shape))
    crops = tf.round(crops[..., 0])

    rois = tf.concat([positive_rois, negative_rois], axis=0)
    n = tf.shape(rois)[0]
    pad = tf.maximum(train_rois - n, 0)
    rois = tf.pad(rois, [[0, pad], [0, 0]])[:train_rois]
    class_ids = tf.pad(roi_class_ids, [[0, train_rois - n_pos]])[:train_rois]
    deltas = tf.pad(deltas, [[0, train_rois - n_pos], [0, 0]])[:train_rois]
    crops = tf.pad(crops, [[0, train_rois - n_pos], [0, 0], [0, 0]])[:train_rois]
    rois = tf.ensure_shape(rois, [train_rois, 4])
    class_ids = tf.ensure_shape(class_ids, [train_rois])
    deltas = tf.ensure_shape(deltas, [train_rois, 4])
    crops = tf.ensure_shape(crops, [train_rois, *mask_shape])
    return rois, class_ids, deltas, crops


def detection_targets(proposals, gt_class_ids, gt_boxes, gt_masks, train_rois: int, positive_ratio: float,
                      bbox_std_dev: Sequence[float], mask_shape: Sequence[int], use_mini_mask: bool,
                      add_gt_to_proposals: bool = False):
    """:func:`detection_targets_single` over a batch (``tf.map_fn``)."""
    def one(args):
        return detection_targets_single(*args, train_rois=train_rois, positive_ratio=positive_ratio,
                                        bbox_std_dev=bbox_std_dev, mask_shape=mask_shape,
                                        use_mini_mask=use_mini_mask, add_gt_to_proposals=add_gt_to_proposals)

    signature = (tf.TensorSpec([train_rois, 4], tf.float32), tf.TensorSpec([train_rois], tf.int32),
                 tf.TensorSpec([train_rois, 4], tf.float32), tf.TensorSpec([train_rois, *mask_shape], tf.float32))
    return tf.map_fn(one, (tf.cast(proposals, tf.float32), tf.cast(gt_class_ids, tf.int32),
                           tf.cast(gt_boxes, tf.float32), tf.cast(gt_masks, tf.float32)),
                     fn_output_signature=signature)
