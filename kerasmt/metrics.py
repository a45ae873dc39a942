"""Metrics: masked accuracy for training, and NumPy helpers for evaluation tables."""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops

from kerasmt.losses import MISSING


@keras.saving.register_keras_serializable(package="kerasmt")
class MaskedSparseCategoricalAccuracy(keras.metrics.Metric):
    """Accuracy of ``argmax(y_pred)`` over rows whose label is not ``ignore_label`` (-1).

    Accumulates correct / labelled counts over batches, so the epoch value is exact even when
    batches have different numbers of missing labels.
    """

    def __init__(self, name: str = "accuracy", ignore_label: int = MISSING, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.ignore_label = int(ignore_label)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        predicted = ops.reshape(predicted, (-1,))
        valid = ops.cast(ops.not_equal(labels, self.ignore_label), self.dtype)
        hits = ops.cast(ops.equal(labels, predicted), self.dtype) * valid
        self.correct.assign_add(ops.sum(hits))
        self.count.assign_add(ops.sum(valid))

    def result(self):
        return ops.divide_no_nan(self.correct, self.count)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(ignore_label=self.ignore_label)
        return config


def accuracy_from_confusion(cm: np.ndarray) -> float:
    """Accuracy from a confusion matrix: ``trace / sum`` (the report's age 'accuracy' used the
    top-left 2x2 block instead, which is wrong for more than two classes)."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def report_top_left_accuracy(cm: np.ndarray) -> float:
    """The report's (wrong) age accuracy: the top-left 2x2 block's trace over its sum.
    Kept only to show in the notebook how the report's 83-87 % age 'accuracies' arose."""
    block = np.asarray(cm)[:2, :2]
    return float(np.trace(block) / block.sum()) if block.sum() else float("nan")


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Confusion matrix (rows = true, columns = predicted) over labelled rows (``y_true != -1``)."""
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    keep = y_true != MISSING
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true[keep], y_pred[keep], labels=np.arange(n_classes))


def majority_accuracy(y_true: Sequence[int]) -> float:
    """Accuracy of always predicting the most frequent labelled class."""
    y_true = np.asarray(y_true).reshape(-1)
    y_true = y_true[y_true != MISSING]
    if y_true.size == 0:
        return float("nan")
    return float(np.bincount(y_true).max() / y_true.size)
