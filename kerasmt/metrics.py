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


# ------------------------------------------------------------------------------- segmentation
@keras.saving.register_keras_serializable(package="kerasmt")
class MaskedMeanIoU(keras.metrics.Metric):
    """Mean intersection-over-union of ``argmax(y_pred)`` against integer label maps.

    ``y_true``: ``(batch, H, W)`` labels with ``ignore_label`` (-1) for unlabelled pixels (images
    without a mask); ``y_pred``: ``(batch, H, W, n_classes)`` scores. A confusion matrix is
    accumulated over batches; the result averages the IoU of the classes that occur (in truth or
    prediction) among labelled pixels, and is 0 before any labelled pixel was seen.
    """

    def __init__(self, n_classes: int, name: str = "mean_iou", ignore_label: int = MISSING, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.n_classes = int(n_classes)
        self.ignore_label = int(ignore_label)
        self.matrix = self.add_variable(
            shape=(self.n_classes * self.n_classes,), initializer="zeros", name="confusion"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        predicted = ops.cast(ops.reshape(ops.argmax(y_pred, axis=-1), (-1,)), "int32")
        valid = ops.not_equal(labels, self.ignore_label)
        safe = ops.where(valid, labels, ops.zeros_like(labels))
        # confusion matrix as one-hot(true)^T @ one-hot(pred): static shapes (XLA-friendly)
        truth = ops.one_hot(safe, self.n_classes, dtype="float32") * ops.cast(valid, "float32")[:, None]
        counts = ops.matmul(ops.transpose(truth), ops.one_hot(predicted, self.n_classes, dtype="float32"))
        self.matrix.assign_add(ops.cast(ops.reshape(counts, (-1,)), self.dtype))

    def result(self):
        cm = ops.reshape(self.matrix, (self.n_classes, self.n_classes))
        intersection = ops.diagonal(cm)
        union = ops.sum(cm, axis=0) + ops.sum(cm, axis=1) - intersection
        present = ops.cast(union > 0, self.dtype)
        iou = ops.divide_no_nan(intersection, union)
        return ops.divide_no_nan(ops.sum(iou * present), ops.sum(present))

    def reset_state(self):
        self.matrix.assign(ops.zeros_like(self.matrix))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(n_classes=self.n_classes, ignore_label=self.ignore_label)
        return config


def mask_iou(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class IoU of predicted label maps against true ones, over labelled pixels
    (``y_true != -1``), pooled over all images; ``NaN`` for a class absent from both."""
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred hold {y_true.size} and {y_pred.size} pixels; expected equal")
    keep = y_true != MISSING
    t, p = y_true[keep].astype(np.int64), y_pred[keep].astype(np.int64)
    if t.size and (t.max() >= n_classes or p.max() >= n_classes or t.min() < 0 or p.min() < 0):
        raise ValueError(f"labels must be in 0..{n_classes - 1} (or -1 in y_true for unlabelled pixels)")
    cm = np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    intersection = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.maximum(union, 1), np.nan)


#: the one macro-F1 definition of kerasmt (tables, metrics.json and printed classification reports)
MACRO_F1_DEFINITION = "mean F1 over the classes present in the truth or the predictions (scikit-learn's macro average)"


def present_classes(y_true: Sequence[int], y_pred: Sequence[int]) -> list[int]:
    """Sorted classes that occur among the labelled truths (``!= -1``) or their predictions: the
    classes :func:`macro_f1` averages over (pass them as ``labels`` to scikit-learn reports)."""
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    keep = y_true != MISSING
    return sorted(set(y_true[keep].tolist()) | set(y_pred[keep].tolist()))


def majority_baseline_accuracy(y_train: Sequence[int], y_test: Sequence[int]) -> float:
    """Test accuracy of always predicting the *training* split's most frequent labelled class (the
    honest baseline: the test labels are not known when choosing it). Ties: the lowest class."""
    y_train = np.asarray(y_train).reshape(-1)
    y_train = y_train[y_train != MISSING]
    y_test = np.asarray(y_test).reshape(-1)
    y_test = y_test[y_test != MISSING]
    if y_train.size == 0 or y_test.size == 0:
        return float("nan")
    return float(np.mean(y_test == np.bincount(y_train).argmax()))


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Macro-averaged F1 over labelled rows (``y_true != -1``), averaging the classes that occur in
    the truth or the predictions (scikit-learn's ``f1_score(average="macro")``, zero division = 0;
    :data:`MACRO_F1_DEFINITION`). A class absent from both is not averaged in as 0."""
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    keep = y_true != MISSING
    if not keep.any():
        return float("nan")
    from sklearn.metrics import f1_score

    return float(f1_score(y_true[keep], y_pred[keep], average="macro", zero_division=0))


def paired_bootstrap(
    correct_a: Sequence[float], correct_b: Sequence[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float | str]:
    """Difference ``mean(a) - mean(b)`` of two models' per-example scores on the *same* examples
    (e.g. 0/1 correctness), with a paired bootstrap ``level`` interval (examples resampled with
    replacement, the same draw for both models). ``verdict`` is ``"tie"`` when the interval
    contains 0, otherwise which of ``"a"`` / ``"b"`` is better."""
    a = np.asarray(correct_a, dtype=np.float64).reshape(-1)
    b = np.asarray(correct_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"correct_a and correct_b must be non-empty and of equal length, got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(int(n_boot), a.size))
    diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    low, high = np.quantile(diffs, [(1 - level) / 2, 1 - (1 - level) / 2])
    verdict = "tie" if low <= 0 <= high else ("a" if low > 0 else "b")
    return {"difference": float(a.mean() - b.mean()), "low": float(low), "high": float(high), "verdict": verdict}
