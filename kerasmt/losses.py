"""Losses that understand missing labels (``-1``).

Every loss here is registered with ``keras.saving`` so models compiled with it round-trip through
``model.save("x.keras")``. A batch in which every label is missing gives a loss of exactly 0 (never
NaN), so a task whose labels are all missing in a batch simply does not contribute a gradient.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

MISSING = -1


def _flat_labels(y_true):
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) > 1:
        y_true = ops.reshape(y_true, (-1,))
    return ops.cast(y_true, "int32")


def masked_mean(values, weights):
    """``sum(values * weights) / sum(weights)``, and 0 when every weight is 0.

    Inside a replica of a ``tf.distribute`` strategy the denominator is the weight of the *global*
    batch (:func:`kerasmt.distribute.global_masked_mean`): Keras sums the replicas' gradients of an
    already reduced loss, so this keeps the result equal to the one-device masked mean.
    """
    weights = ops.cast(weights, values.dtype)
    if keras.backend.backend() == "tensorflow":
        from kerasmt.distribute import global_masked_mean

        return global_masked_mean(values, weights)
    total = ops.sum(weights)
    return ops.divide_no_nan(ops.sum(values * weights), total)


def replica_share(value):
    """``value / replicas in sync`` inside a replica of a ``tf.distribute`` strategy, else ``value``:
    the share of an already reduced loss term whose replica gradients Keras will sum."""
    if keras.backend.backend() != "tensorflow":
        return value
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return value
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return value / context.num_replicas_in_sync


@keras.saving.register_keras_serializable(package="kerasmt")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy that ignores rows whose label is ``ignore_label`` (-1).

    The loss is the (optionally class-weighted) mean over the labelled rows only:
    ``sum_i w[y_i] * CE_i / sum_i w[y_i]`` over rows with ``y_i != ignore_label`` (the convention of
    ``sklearn.metrics.log_loss(sample_weight=...)`` and PyTorch's ``CrossEntropyLoss(weight=...)``).
    With no labelled row in the batch the loss is 0.

    Args:
        from_logits: ``True`` when the model outputs logits, ``False`` for softmax probabilities.
        class_weights: optional per-class weights (length = number of classes).
        ignore_label: the label value that marks a missing label.
    """

    def __init__(
        self,
        from_logits: bool = False,
        class_weights: Sequence[float] | None = None,
        ignore_label: int = MISSING,
        name: str = "masked_sparse_categorical_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.ignore_label = int(ignore_label)

    def call(self, y_true, y_pred):
        labels = _flat_labels(y_true)
        valid = ops.not_equal(labels, self.ignore_label)
        safe = ops.where(valid, labels, ops.zeros_like(labels))
        per_row = keras.losses.sparse_categorical_crossentropy(
            safe, y_pred, from_logits=self.from_logits
        )
        weights = ops.cast(valid, per_row.dtype)
        if self.class_weights is not None:
            table = ops.convert_to_tensor(self.class_weights, dtype=per_row.dtype)
            weights = weights * ops.take(table, safe)
        return masked_mean(per_row, weights)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            from_logits=self.from_logits,
            class_weights=self.class_weights,
            ignore_label=self.ignore_label,
        )
        return config


@keras.saving.register_keras_serializable(package="kerasmt")
class MaskedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy over labelled rows only (labels 0/1, ``ignore_label`` = missing).

    Works for one output per row (``(batch,)`` or ``(batch, 1)``) and for multi-label outputs
    ``(batch, n)``, where each entry is masked independently. All-missing batches give 0.
    """

    def __init__(
        self,
        from_logits: bool = False,
        ignore_label: int = MISSING,
        name: str = "masked_binary_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)
        self.ignore_label = int(ignore_label)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
        valid = ops.not_equal(y_true, float(self.ignore_label))
        safe = ops.where(valid, y_true, ops.zeros_like(y_true))
        per_entry = keras.losses.binary_crossentropy(
            ops.expand_dims(safe, -1), ops.expand_dims(y_pred, -1), from_logits=self.from_logits
        )
        return masked_mean(per_entry, valid)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(from_logits=self.from_logits, ignore_label=self.ignore_label)
        return config


# ------------------------------------------------------------------------------- segmentation
def _segmentation_terms(y_true, y_pred, from_logits: bool, ignore_label: int):
    """Flattened pixels of a batch of label maps and class scores.

    ``y_true``: ``(batch, H, W)`` or ``(batch, H, W, 1)`` integer label maps (``ignore_label`` =
    unlabelled pixel, e.g. every pixel of an image without a mask); ``y_pred``: ``(batch, H, W, C)``
    logits or probabilities. Returns ``(labels, valid, probabilities, log_probabilities)`` with
    ``labels``/``valid`` of shape ``(P,)`` and the scores of shape ``(P, C)``; invalid pixels carry
    label 0 so gathers stay in range (their weight is 0).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    n_classes = y_pred.shape[-1]
    scores = ops.reshape(y_pred, (-1, n_classes))
    labels = _flat_labels(y_true)
    valid = ops.not_equal(labels, ignore_label)
    safe = ops.where(valid, labels, ops.zeros_like(labels))
    scores = ops.cast(scores, "float32")
    if from_logits:
        log_probs = ops.log_softmax(scores, axis=-1)
        probs = ops.exp(log_probs)
    else:
        probs = ops.clip(scores, 1e-7, 1.0)
        probs = probs / ops.sum(probs, axis=-1, keepdims=True)
        log_probs = ops.log(probs)
    return safe, ops.cast(valid, "float32"), probs, log_probs


def _soft_dice(labels, valid, probs, smooth: float):
    """``1 - mean_c (2 |P_c ∩ Y_c| + s) / (|P_c| + |Y_c| + s)`` over labelled pixels; a class absent
    from both prediction and truth scores a perfect 1 (its loss is 0)."""
    n_classes = probs.shape[-1]
    onehot = ops.one_hot(labels, n_classes, dtype=probs.dtype) * valid[:, None]
    probs = probs * valid[:, None]
    intersection = ops.sum(probs * onehot, axis=0)
    totals = ops.sum(probs, axis=0) + ops.sum(onehot, axis=0)
    numerator = 2.0 * intersection + smooth
    denominator = totals + smooth
    dice = ops.where(denominator > 0, ops.divide_no_nan(numerator, denominator), ops.ones_like(denominator))
    return 1.0 - ops.mean(dice)


@keras.saving.register_keras_serializable(package="kerasmt")
class MaskedSegmentationLoss(keras.losses.Loss):
    """Per-pixel cross-entropy (+ optional soft Dice) for semantic masks with unlabelled pixels.

    ``y_true`` is a batch of integer label maps ``(batch, H, W)`` where ``ignore_label`` (-1) marks
    pixels without a label, e.g. every pixel of an image that has no mask; ``y_pred`` is
    ``(batch, H, W, n_classes)`` logits (``from_logits=True``) or probabilities. The loss is
    ``ce_weight * CE + dice_weight * Dice``:

    * CE is the (optionally class-weighted) mean over labelled pixels,
      ``sum_p w[y_p] CE_p / sum_p w[y_p]``;
    * Dice is the soft multi-class Dice loss over the labelled pixels of the batch (see
      :class:`DiceLoss`).

    A batch without any labelled pixel gives exactly 0 (no NaN, no gradient), so images without
    masks can share batches with masked ones.
    """

    def __init__(
        self,
        from_logits: bool = True,
        ce_weight: float = 1.0,
        dice_weight: float = 0.0,
        class_weights: Sequence[float] | None = None,
        smooth: float = 1.0,
        ignore_label: int = MISSING,
        name: str = "masked_segmentation_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)
        self.ce_weight = float(ce_weight)
        self.dice_weight = float(dice_weight)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.smooth = float(smooth)
        self.ignore_label = int(ignore_label)

    def call(self, y_true, y_pred):
        labels, valid, probs, log_probs = _segmentation_terms(y_true, y_pred, self.from_logits, self.ignore_label)
        loss = ops.convert_to_tensor(0.0, dtype="float32")
        if self.ce_weight:
            n_classes = probs.shape[-1]
            per_pixel = -ops.sum(ops.one_hot(labels, n_classes, dtype=log_probs.dtype) * log_probs, axis=-1)
            weights = valid
            if self.class_weights is not None:
                table = ops.convert_to_tensor(self.class_weights, dtype="float32")
                weights = weights * ops.take(table, labels)
            loss = loss + self.ce_weight * masked_mean(per_pixel, weights)
        if self.dice_weight:
            dice = _soft_dice(labels, valid, probs, self.smooth)
            # no labelled pixel: Dice is already 0 with smooth > 0; guard smooth == 0 as well
            dice = ops.where(ops.sum(valid) > 0, dice, ops.zeros_like(dice))
            loss = loss + self.dice_weight * replica_share(dice)
        return loss

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            from_logits=self.from_logits,
            ce_weight=self.ce_weight,
            dice_weight=self.dice_weight,
            class_weights=self.class_weights,
            smooth=self.smooth,
            ignore_label=self.ignore_label,
        )
        return config


@keras.saving.register_keras_serializable(package="kerasmt")
class DiceLoss(keras.losses.Loss):
    """Soft multi-class Dice loss over the labelled pixels of a batch of label maps.

    ``1 - mean_c (2 sum_p P_pc Y_pc + smooth) / (sum_p P_pc + sum_p Y_pc + smooth)``, where ``Y`` is
    the one-hot truth and ``P`` the predicted probabilities (softmax of logits with
    ``from_logits=True``), both restricted to pixels whose label is not ``ignore_label``. Classes
    absent from truth and prediction count as perfectly matched; a batch without labelled pixels
    gives 0.
    """

    def __init__(
        self,
        from_logits: bool = True,
        smooth: float = 1.0,
        ignore_label: int = MISSING,
        name: str = "dice_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)
        self.smooth = float(smooth)
        self.ignore_label = int(ignore_label)

    def call(self, y_true, y_pred):
        labels, valid, probs, _ = _segmentation_terms(y_true, y_pred, self.from_logits, self.ignore_label)
        dice = _soft_dice(labels, valid, probs, self.smooth)
        return replica_share(ops.where(ops.sum(valid) > 0, dice, ops.zeros_like(dice)))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(from_logits=self.from_logits, smooth=self.smooth, ignore_label=self.ignore_label)
        return config
