"""Mask R-CNN's graph layers (TensorFlow backend), all ``keras.saving``-registered with ``get_config``.

* :class:`ProposalLayer` — RPN scores + deltas on the anchors -> top ``pre_nms_limit`` -> decode,
  clip -> NMS -> ``proposal_count`` RoIs (zero-padded).
* :class:`PyramidRoIAlign` — RoIAlign (``tf.image.crop_and_resize``) on the FPN level each RoI
  belongs to (``4 + log2(sqrt(area) / 224)``, clipped to P2..P5).
* :class:`UnflattenRois` — ``(B * R, ...)`` head outputs back to ``(B, R, ...)``.
* :class:`DetectionTargetLayer` — RoI sampling and training targets (:mod:`.targets`).
* :class:`DetectionLayer` — refined boxes, score threshold, per-class NMS, ``max_instances``
  detections ``(y1, x1, y2, x2, class_id, score)``.
* :class:`SelectClassMask` — each detection's mask channel of its class.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from kerasmt.models.maskrcnn.anchors import generate_anchors, norm_boxes
from kerasmt.models.maskrcnn.boxes import clip_boxes, decode_boxes
from kerasmt.models.maskrcnn.targets import detection_targets

_PACKAGE = "kerasmt.maskrcnn"


def _floats(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ProposalLayer(layers.Layer):
    """RPN outputs -> ``proposal_count`` normalised RoIs per image, by score, after NMS.

    Inputs: ``[rpn_probs (B, N, 2), rpn_bbox (B, N, 4)]`` in the order of the anchors that
    ``anchor_scales``, ``anchor_ratios``, ``feature_strides``, ``anchor_stride`` and
    ``image_size`` generate (:func:`kerasmt.models.maskrcnn.anchors.generate_anchors`).
    Output: ``(B, proposal_count, 4)``, zero rows where NMS left fewer boxes.
    """

    def __init__(self, proposal_count: int, nms_threshold: float, pre_nms_limit: int, image_size: int,
                 anchor_scales: Sequence[float], anchor_ratios: Sequence[float], feature_strides: Sequence[int],
                 anchor_stride: int = 1, bbox_std_dev: Sequence[float] = (0.1, 0.1, 0.2, 0.2), **kwargs):
        super().__init__(**kwargs)
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        self.pre_nms_limit = int(pre_nms_limit)
        self.image_size = int(image_size)
        self.anchor_scales = _floats(anchor_scales)
        self.anchor_ratios = _floats(anchor_ratios)
        self.feature_strides = [int(s) for s in feature_strides]
        self.anchor_stride = int(anchor_stride)
        self.bbox_std_dev = _floats(bbox_std_dev)
        shapes = [(-(-self.image_size // s),) * 2 for s in self.feature_strides]
        pixels = generate_anchors(self.anchor_scales, self.anchor_ratios, shapes, self.feature_strides,
                                  self.anchor_stride)
        self._anchors = norm_boxes(pixels, self.image_size)

    def call(self, inputs):
        probs, deltas = inputs
        scores = tf.cast(probs[..., 1], tf.float32)
        deltas = tf.cast(deltas, tf.float32) * tf.constant(self.bbox_std_dev, tf.float32)
        anchors = tf.constant(self._anchors, tf.float32)
        k = min(self.pre_nms_limit, int(self._anchors.shape[0]))
        scores, idx = tf.math.top_k(scores, k=k, sorted=True)
        deltas = tf.gather(deltas, idx, batch_dims=1)
        boxes = clip_boxes(decode_boxes(tf.gather(anchors, idx), deltas))
        out = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], scores[:, :, None], max_output_size_per_class=self.proposal_count,
            max_total_size=self.proposal_count, iou_threshold=self.nms_threshold, pad_per_class=False,
            clip_boxes=False)
        valid = tf.sequence_mask(out.valid_detections, self.proposal_count, dtype=tf.float32)
        return tf.stop_gradient(out.nmsed_boxes * valid[..., None])

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.proposal_count, 4)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(proposal_count=self.proposal_count, nms_threshold=self.nms_threshold,
                      pre_nms_limit=self.pre_nms_limit, image_size=self.image_size, anchor_scales=self.anchor_scales,
                      anchor_ratios=self.anchor_ratios, feature_strides=self.feature_strides,
                      anchor_stride=self.anchor_stride, bbox_std_dev=self.bbox_std_dev)
        return config


def roi_levels(boxes: tf.Tensor, image_size: int) -> tf.Tensor:
    """FPN level (2..5) of normalised boxes: ``4 + round(log2(sqrt(h * w) / (224 / image_size)))``
    (Feature Pyramid Networks, eq. 1; Matterport's ``PyramidROIAlign``)."""
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    ratio = tf.sqrt(tf.maximum(h * w, 1e-12)) / (224.0 / float(image_size))
    level = 4.0 + tf.round(tf.math.log(ratio) / tf.math.log(2.0))
    return tf.cast(tf.clip_by_value(level, 2.0, 5.0), tf.int32)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PyramidRoIAlign(layers.Layer):
    """RoIAlign over the FPN: inputs ``[boxes (B, R, 4), P2, P3, P4, P5]``; each box is cropped
    from its level (:func:`roi_levels`) with ``tf.image.crop_and_resize`` (bilinear) to
    ``pool_shape``. Output ``(B * R, ph, pw, C)`` (``flatten=True``, for the heads' shared
    convolutions) or ``(B, R, ph, pw, C)``. No gradient flows into the boxes (as in Matterport)."""

    def __init__(self, pool_shape: Sequence[int], image_size: int, flatten: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.pool_shape = [int(s) for s in pool_shape]
        self.image_size = int(image_size)
        self.flatten = bool(flatten)

    def call(self, inputs):
        boxes = tf.stop_gradient(tf.cast(inputs[0], tf.float32))
        features = inputs[1:]
        if len(features) != 4:
            raise ValueError(f"PyramidRoIAlign expects [boxes, P2, P3, P4, P5], got {len(inputs)} inputs")
        level = roi_levels(boxes, self.image_size)
        shape = tf.shape(boxes)
        batch, n_rois = shape[0], shape[1]
        pooled, order = [], []
        for i, feature in enumerate(features):
            ix = tf.where(tf.equal(level, i + 2))  # (n, 2): image, roi
            level_boxes = tf.gather_nd(boxes, ix)
            pooled.append(tf.image.crop_and_resize(feature, level_boxes, tf.cast(ix[:, 0], tf.int32), self.pool_shape,
                                                   method="bilinear"))
            order.append(ix[:, 0] * tf.cast(n_rois, tf.int64) + ix[:, 1])
        pooled = tf.concat(pooled, axis=0)
        pooled = tf.gather(pooled, tf.argsort(tf.concat(order, axis=0)))
        channels = features[0].shape[-1]
        if self.flatten:
            return tf.ensure_shape(pooled, [None, *self.pool_shape, channels])
        return tf.reshape(pooled, tf.concat([[batch, n_rois], tf.shape(pooled)[1:]], axis=0))

    def compute_output_shape(self, input_shape):
        channels = input_shape[1][-1]
        if self.flatten:
            return (None, *self.pool_shape, channels)
        return (input_shape[0][0], input_shape[0][1], *self.pool_shape, channels)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(pool_shape=self.pool_shape, image_size=self.image_size, flatten=self.flatten)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class UnflattenRois(layers.Layer):
    """``[x (B * R, ...), rois (B, R, 4)]`` -> ``x`` reshaped to ``(B, R, ...)``, optionally with
    ``target_shape`` for the trailing axes."""

    def __init__(self, target_shape: Sequence[int] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = None if target_shape is None else [int(s) for s in target_shape]

    def call(self, inputs):
        x, rois = inputs
        shape = tf.shape(rois)
        tail = tf.constant(self.target_shape, tf.int32) if self.target_shape else tf.shape(x)[1:]
        return tf.reshape(x, tf.concat([shape[:2], tail], axis=0))

    def compute_output_shape(self, input_shape):
        x_shape, rois_shape = input_shape
        tail = tuple(self.target_shape) if self.target_shape else tuple(x_shape[1:])
        return (rois_shape[0], rois_shape[1], *tail)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(target_shape=self.target_shape)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DetectionTargetLayer(layers.Layer):
    """Training only: ``[proposals, gt_class_ids, gt_boxes, gt_masks]`` -> ``[rois, target_class_ids,
    target_deltas, target_masks]`` (:func:`kerasmt.models.maskrcnn.targets.detection_targets`)."""

    def __init__(self, train_rois: int, positive_ratio: float, bbox_std_dev: Sequence[float],
                 mask_shape: Sequence[int], use_mini_mask: bool = True, add_gt_to_proposals: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.train_rois = int(train_rois)
        self.positive_ratio = float(positive_ratio)
        self.bbox_std_dev = _floats(bbox_std_dev)
        self.mask_shape = [int(s) for s in mask_shape]
        self.use_mini_mask = bool(use_mini_mask)
        self.add_gt_to_proposals = bool(add_gt_to_proposals)

    def call(self, inputs):
        proposals, gt_class_ids, gt_boxes, gt_masks = inputs
        rois, class_ids, deltas, masks = detection_targets(
            proposals, gt_class_ids, gt_boxes, gt_masks, self.train_rois, self.positive_ratio, self.bbox_std_dev,
            self.mask_shape, self.use_mini_mask, self.add_gt_to_proposals)
        return [tf.stop_gradient(t) for t in (rois, class_ids, deltas, masks)]

    def compute_output_shape(self, input_shape):
        b = input_shape[0][0]
        return [(b, self.train_rois, 4), (b, self.train_rois), (b, self.train_rois, 4),
                (b, self.train_rois, *self.mask_shape)]

    def compute_output_spec(self, inputs):
        b = inputs[0].shape[0]
        return [keras.KerasTensor((b, self.train_rois, 4), "float32"),
                keras.KerasTensor((b, self.train_rois), "int32"),
                keras.KerasTensor((b, self.train_rois, 4), "float32"),
                keras.KerasTensor((b, self.train_rois, *self.mask_shape), "float32")]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(train_rois=self.train_rois, positive_ratio=self.positive_ratio, bbox_std_dev=self.bbox_std_dev,
                      mask_shape=self.mask_shape, use_mini_mask=self.use_mini_mask,
                      add_gt_to_proposals=self.add_gt_to_proposals)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DetectionLayer(layers.Layer):
    """``[rois (B, R, 4), class_probs (B, R, K), bbox_deltas (B, R, K, 4)]`` -> detections
    ``(B, max_instances, 6)``: ``(y1, x1, y2, x2, class_id, score)``, normalised boxes, sorted by
    score, zero rows after the last detection.

    Each RoI takes its most probable class (background RoIs are dropped) and that class's box
    refinement; detections with score < ``min_confidence`` are dropped, then NMS runs per class
    (``nms_threshold``) and the best ``max_instances`` remain (Matterport's ``refine_detections``).
    """

    def __init__(self, max_instances: int = 100, min_confidence: float = 0.7, nms_threshold: float = 0.3,
                 bbox_std_dev: Sequence[float] = (0.1, 0.1, 0.2, 0.2), **kwargs):
        super().__init__(**kwargs)
        self.max_instances = int(max_instances)
        self.min_confidence = float(min_confidence)
        self.nms_threshold = float(nms_threshold)
        self.bbox_std_dev = _floats(bbox_std_dev)

    def call(self, inputs):
        rois, probs, deltas = inputs
        rois = tf.cast(rois, tf.float32)
        probs = tf.cast(probs, tf.float32)
        n_classes = probs.shape[-1]
        class_ids = tf.argmax(probs, axis=-1, output_type=tf.int32)
        scores = tf.reduce_max(probs, axis=-1)
        chosen = tf.gather(tf.cast(deltas, tf.float32), class_ids, batch_dims=2)  # (B, R, 4)
        boxes = clip_boxes(decode_boxes(rois, chosen * tf.constant(self.bbox_std_dev, tf.float32)))
        real = tf.cast(tf.reduce_any(tf.not_equal(rois, 0.0), axis=-1), tf.float32)  # padded RoIs score 0
        per_class = tf.one_hot(class_ids, n_classes)[..., 1:] * (scores * real)[..., None]  # (B, R, K - 1)
        threshold = max(self.min_confidence, 1e-6)  # zero scores (other classes) never pass
        out = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], per_class, max_output_size_per_class=self.max_instances,
            max_total_size=self.max_instances, iou_threshold=self.nms_threshold, score_threshold=threshold,
            pad_per_class=False, clip_boxes=False)
        valid = tf.sequence_mask(out.valid_detections, self.max_instances, dtype=tf.float32)
        detections = tf.concat([out.nmsed_boxes, (out.nmsed_classes + 1.0)[..., None], out.nmsed_scores[..., None]],
                               axis=-1)
        return detections * valid[..., None]

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.max_instances, 6)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(max_instances=self.max_instances, min_confidence=self.min_confidence,
                      nms_threshold=self.nms_threshold, bbox_std_dev=self.bbox_std_dev)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SelectClassMask(layers.Layer):
    """``[masks (B, M, h, w, K), detections (B, M, 6)]`` -> ``(B, M, h, w)``: the channel of each
    detection's class."""

    def call(self, inputs):
        masks, detections = inputs
        class_ids = tf.cast(detections[..., 4], tf.int32)
        per_class = tf.transpose(masks, [0, 1, 4, 2, 3])  # (B, M, K, h, w)
        return tf.gather(per_class, class_ids, batch_dims=2)

    def compute_output_shape(self, input_shape):
        s = input_shape[0]
        return (s[0], s[1], s[2], s[3])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SliceRois(layers.Layer):
    """The first ``count`` RoIs (axis 1) of a tensor: the training graph runs the mask head only
    on the positive RoIs, which :class:`DetectionTargetLayer` puts first."""

    def __init__(self, count: int, **kwargs):
        super().__init__(**kwargs)
        self.count = int(count)

    def call(self, inputs):
        return inputs[:, : self.count]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.count, *input_shape[2:])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(count=self.count)
        return config


def anchors_of(layer: ProposalLayer) -> np.ndarray:
    """The normalised anchors a :class:`ProposalLayer` decodes against."""
    return np.array(layer._anchors)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConfigCarrier(layers.Layer):
    """Identity on the image input that carries the model's :class:`MaskRCNNConfig` (as a dict:
    image size, mean pixel, preprocessing origin, class names) in its ``get_config``, so that a
    saved inference model alone tells :func:`kerasmt.models.maskrcnn.detect` how to prepare photos."""

    def __init__(self, maskrcnn_config: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.maskrcnn_config = dict(maskrcnn_config or {})

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(maskrcnn_config=self.maskrcnn_config)
        return config
