"""Per-pixel losses for semantic segmentation with a dominant background class.

The fashion report's RefineNet runs (22 of them, section 5.3) all collapsed to "everything is
background": with plain per-pixel cross-entropy, background is most of every image, so predicting
it everywhere is a deep local minimum. Two standard remedies, usable together:

- class-weighted cross-entropy (:class:`PixelCrossentropyDice` with ``class_weights``, e.g. from
  :func:`class_weights_from_maps`: rarer classes weigh more);
- soft Dice over the classes (``dice_weight``): each class contributes equally whatever its area,
  and background-only output scores Dice 0 on every garment class.

Both are keras.ops only, registered with ``keras.saving`` and round-trip through ``.keras`` files.
Pixels labelled ``ignore_label`` (-1) are left out.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops

from kerasmt.losses import masked_mean, replica_share


@keras.saving.register_keras_serializable(package="kerasmt")
class PixelCrossentropyDice(keras.losses.Loss):
    """``ce_weight * weighted CE + dice_weight * soft Dice`` over the labelled pixels of a batch.

    ``y_true``: integer label maps ``(batch, H, W)`` (or ``(..., 1)``); ``y_pred``: per-pixel
    softmax probabilities ``(batch, H, W, C)`` (``from_logits=True`` for logits).

    * CE: ``sum_p w[y_p] CE_p / sum_p w[y_p]`` over pixels with ``y_p != ignore_label``.
    * Dice: ``1 - mean_c (2 sum P_c Y_c + s) / (sum P_c + sum Y_c + s)`` over the classes
      ``dice_from`` .. C-1 (``dice_from=1`` leaves background out), pooled over the batch.

    A batch without labelled pixels gives 0.
    """

    def __init__(
        self,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        class_weights: Sequence[float] | None = None,
        from_logits: bool = False,
        smooth: float = 1.0,
        dice_from: int = 1,
        ignore_label: int = -1,
        name: str = "pixel_crossentropy_dice",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.ce_weight = float(ce_weight)
        self.dice_weight = float(dice_weight)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.from_logits = bool(from_logits)
        self.smooth = float(smooth)
        self.dice_from = int(dice_from)
        self.ignore_label = int(ignore_label)

    def call(self, y_true, y_pred):
        n_classes = y_pred.shape[-1]
        labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        valid = ops.cast(ops.not_equal(labels, self.ignore_label), "float32")
        labels = ops.where(valid > 0, labels, ops.zeros_like(labels))
        total = ops.convert_to_tensor(0.0, "float32")
        if self.ce_weight:
            # Keras' own CE: on the TensorFlow backend it recovers the logits behind a softmax
            # output, so a saturated softmax still has a gradient (clipped probabilities have none)
            ce = ops.cast(ops.sparse_categorical_crossentropy(labels, y_pred, from_logits=self.from_logits), "float32")
            weights = valid
            if self.class_weights is not None:
                weights = weights * ops.take(ops.convert_to_tensor(self.class_weights, "float32"), labels)
            total = total + self.ce_weight * masked_mean(ce, weights)
        if self.dice_weight:
            scores = ops.cast(ops.reshape(y_pred, (-1, n_classes)), "float32")
            probs = ops.softmax(scores, axis=-1) if self.from_logits else scores
            flat_valid = ops.reshape(valid, (-1,))
            onehot = ops.one_hot(ops.reshape(labels, (-1,)), n_classes, dtype="float32")
            p = (probs * flat_valid[:, None])[:, self.dice_from:]
            y = (onehot * flat_valid[:, None])[:, self.dice_from:]
            inter = ops.sum(p * y, axis=0)
            dice = (2.0 * inter + self.smooth) / (ops.sum(p, axis=0) + ops.sum(y, axis=0) + self.smooth)
            dice_loss = 1.0 - ops.mean(dice)
            total = total + self.dice_weight * replica_share(ops.where(ops.sum(valid) > 0, dice_loss, ops.zeros_like(dice_loss)))
        return total

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(ce_weight=self.ce_weight, dice_weight=self.dice_weight, class_weights=self.class_weights,
                      from_logits=self.from_logits, smooth=self.smooth, dice_from=self.dice_from,
                      ignore_label=self.ignore_label)
        return config


def class_weights_from_maps(label_maps: np.ndarray, n_classes: int, power: float = 0.5,
                            max_weight: float = 50.0) -> list[float]:
    """Per-class CE weights ``(median frequency / frequency) ** power`` from training label maps
    (0 = background), capped at ``max_weight``; classes never seen get the cap. ``power=1`` is
    median-frequency balancing (Eigen & Fergus), ``0.5`` a softer version."""
    maps = np.asarray(label_maps)
    counts = np.bincount(maps[maps >= 0].reshape(-1).astype(np.int64), minlength=n_classes)[:n_classes].astype(float)
    seen = counts > 0
    if not seen.any():
        return [1.0] * n_classes
    freq = counts / counts.sum()
    median = np.median(freq[seen])
    weights = np.full(n_classes, float(max_weight))
    weights[seen] = np.minimum((median / freq[seen]) ** power, max_weight)
    return [float(w) for w in weights]
