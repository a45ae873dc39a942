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
    """``sum(values * weights) / sum(weights)``, and 0 when every weight is 0."""
    weights = ops.cast(weights, values.dtype)
    total = ops.sum(weights)
    return ops.divide_no_nan(ops.sum(values * weights), total)


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
