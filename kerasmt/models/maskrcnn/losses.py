"""The five Mask R-CNN losses (Matterport's names), with ``keras.ops``.

Every loss is a mean over the elements it is defined on and 0 (never NaN) when there are none:
no anchor to score, no positive anchor / RoI.
"""
from __future__ import annotations

from keras import ops


def smooth_l1(y_true, y_pred):
    """Element-wise smooth L1 (Huber with delta 1): ``0.5 d^2`` for ``|d| < 1``, else ``|d| - 0.5``."""
    d = ops.abs(ops.cast(y_true, "float32") - ops.cast(y_pred, "float32"))
    return ops.where(d < 1.0, 0.5 * d * d, d - 0.5)


def _safe_mean(total, count):
    return ops.divide(total, ops.maximum(ops.cast(count, "float32"), 1.0))


def rpn_class_loss(rpn_match, rpn_class_logits):
    """Anchor classifier cross-entropy (foreground vs background) over the anchors with
    ``rpn_match`` 1 (positive) or -1 (negative); 0 = ignored. ``rpn_match (B, N)``,
    ``rpn_class_logits (B, N, 2)``."""
    match = ops.cast(rpn_match, "int32")
    labels = ops.cast(ops.equal(match, 1), "int32")
    active = ops.cast(ops.not_equal(match, 0), "float32")
    ce = ops.sparse_categorical_crossentropy(labels, ops.cast(rpn_class_logits, "float32"), from_logits=True)
    return _safe_mean(ops.sum(ce * active), ops.sum(active))


def rpn_bbox_loss(rpn_target_bbox, rpn_match, rpn_bbox):
    """Smooth L1 of the anchor deltas of the positive anchors, mean over their 4 coordinates.
    ``rpn_target_bbox (B, N, 4)`` (zeros at non-positive anchors), ``rpn_match (B, N)``,
    ``rpn_bbox (B, N, 4)``."""
    positive = ops.cast(ops.equal(ops.cast(rpn_match, "int32"), 1), "float32")
    loss = ops.sum(smooth_l1(rpn_target_bbox, rpn_bbox), axis=-1)
    return _safe_mean(ops.sum(loss * positive), 4.0 * ops.sum(positive))


def mrcnn_class_loss(target_class_ids, class_logits, roi_valid=None):
    """RoI classifier cross-entropy over the sampled RoIs (``roi_valid`` 1 for real RoIs, 0 for
    padding; default all). ``target_class_ids (B, R)``, ``class_logits (B, R, K)``."""
    ids = ops.cast(target_class_ids, "int32")
    ce = ops.sparse_categorical_crossentropy(ids, ops.cast(class_logits, "float32"), from_logits=True)
    valid = ops.ones_like(ce) if roi_valid is None else ops.cast(roi_valid, "float32")
    return _safe_mean(ops.sum(ce * valid), ops.sum(valid))


def _gather_class(values, class_ids):
    """``values (B, R, K, ...)`` -> ``(B, R, ...)`` at ``class_ids (B, R)``."""
    k = values.shape[2]
    one_hot = ops.one_hot(ops.cast(class_ids, "int32"), k)  # (B, R, K)
    extra = len(values.shape) - 3
    weights = ops.reshape(one_hot, (*ops.shape(one_hot), *([1] * extra)))
    return ops.sum(values * weights, axis=2)


def mrcnn_bbox_loss(target_bbox, target_class_ids, pred_bbox):
    """Smooth L1 of the box refinement of each positive RoI for its ground-truth class only,
    mean over positive RoIs x 4. ``target_bbox (B, R, 4)``, ``target_class_ids (B, R)``,
    ``pred_bbox (B, R, K, 4)``."""
    positive = ops.cast(ops.greater(ops.cast(target_class_ids, "int32"), 0), "float32")
    pred = _gather_class(ops.cast(pred_bbox, "float32"), target_class_ids)
    loss = ops.sum(smooth_l1(target_bbox, pred), axis=-1)
    return _safe_mean(ops.sum(loss * positive), 4.0 * ops.sum(positive))


def mrcnn_mask_loss(target_masks, target_class_ids, pred_mask_logits):
    """Binary cross-entropy of the mask of each positive RoI, on its ground-truth class channel
    only (the other K - 1 channels get no gradient), mean over positive RoIs x pixels.
    ``target_masks (B, R, h, w)``, ``target_class_ids (B, R)``, ``pred_mask_logits (B, R, h, w, K)``."""
    positive = ops.cast(ops.greater(ops.cast(target_class_ids, "int32"), 0), "float32")
    logits = ops.transpose(ops.cast(pred_mask_logits, "float32"), (0, 1, 4, 2, 3))  # (B, R, K, h, w)
    logits = _gather_class(logits, target_class_ids)  # (B, R, h, w)
    y = ops.cast(target_masks, "float32")
    # numerically stable BCE with logits: max(x, 0) - x y + log(1 + exp(-|x|))
    bce = ops.maximum(logits, 0.0) - logits * y + ops.log1p(ops.exp(-ops.abs(logits)))
    per_roi = ops.sum(ops.reshape(bce, (ops.shape(bce)[0], ops.shape(bce)[1], -1)), axis=-1)
    pixels = float(target_masks.shape[-1] * target_masks.shape[-2])
    return _safe_mean(ops.sum(per_roi * positive), pixels * ops.sum(positive))
