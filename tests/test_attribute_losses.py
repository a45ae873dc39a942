"""Masked losses and metrics of the attribute study on hand-made batches (values worked out by hand
or with NumPy), including batches in which every label is missing."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasmt.losses import DiceLoss, MaskedSegmentationLoss, MaskedSparseCategoricalCrossentropy
from kerasmt.metrics import MaskedMeanIoU, macro_f1, mask_iou


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


LOGITS = np.array([[2.0, 0.5], [0.1, 1.0], [1.0, 1.0]], "float32")


def test_masked_ce_from_logits_by_hand():
    ce = MaskedSparseCategoricalCrossentropy(from_logits=True)
    # rows 0 and 2 are labelled: -log softmax(2, .5)[0] and -log softmax(1, 1)[1] = log 2
    expected = (np.log(1 + np.exp(-1.5)) + np.log(2.0)) / 2
    assert float(ce(np.array([0, -1, 1]), LOGITS)) == pytest.approx(expected, rel=1e-5)
    assert float(ce(np.array([0, -1, 1]), LOGITS)) == pytest.approx(0.4473, abs=1e-4)


def test_masked_ce_all_missing_is_zero_with_zero_gradient():
    ce = MaskedSparseCategoricalCrossentropy(from_logits=True, class_weights=[1.0, 3.0])
    logits = tf.Variable(LOGITS)
    with tf.GradientTape() as tape:
        loss = ce(np.array([-1, -1, -1]), logits)
    grad = tape.gradient(loss, logits).numpy()
    assert float(loss) == 0.0 and np.all(grad == 0)


def test_masked_ce_class_weights_by_hand():
    ce = MaskedSparseCategoricalCrossentropy(from_logits=True, class_weights=[1.0, 3.0])
    per_row = -_log_softmax(LOGITS)[[0, 1, 2], [0, 1, 1]]
    weights = np.array([1.0, 3.0, 3.0])
    expected = (per_row * weights).sum() / weights.sum()
    assert float(ce(np.array([0, 1, 1]), LOGITS)) == pytest.approx(expected, rel=1e-5)


def _seg_batch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    labels = rng.integers(0, 5, size=(2, 3, 4))
    labels[1] = -1  # the second image has no mask
    labels[0, 0, :2] = -1  # two unlabelled pixels in the first
    return labels, logits


def test_segmentation_ce_averages_labelled_pixels_only():
    labels, logits = _seg_batch()
    logp = _log_softmax(logits)
    keep = labels >= 0
    expected = -logp[keep, labels[keep]].mean()
    got = float(MaskedSegmentationLoss(from_logits=True, dice_weight=0.0)(labels, logits))
    assert got == pytest.approx(expected, rel=1e-5)
    # the image without a mask changes nothing: same loss as the first image alone
    alone = float(MaskedSegmentationLoss(from_logits=True)(labels[:1], logits[:1]))
    assert got == pytest.approx(alone, rel=1e-5)


def test_segmentation_class_weights_and_dice_by_hand():
    labels, logits = _seg_batch()
    w = np.array([1.0, 2.0, 0.5, 1.0, 4.0])
    logp = _log_softmax(logits)
    keep = labels >= 0
    y = labels[keep]
    ce = (-logp[keep, y] * w[y]).sum() / w[y].sum()
    p = np.exp(logp[keep])
    onehot = np.eye(5)[y]
    dice = ((2 * (p * onehot).sum(0) + 1.0) / (p.sum(0) + onehot.sum(0) + 1.0)).mean()
    loss = MaskedSegmentationLoss(from_logits=True, ce_weight=1.0, dice_weight=0.5, class_weights=w)
    assert float(loss(labels, logits)) == pytest.approx(ce + 0.5 * (1 - dice), rel=1e-5)
    assert float(DiceLoss(from_logits=True)(labels, logits)) == pytest.approx(1 - dice, rel=1e-5)


def test_segmentation_perfect_prediction_and_all_unlabelled():
    labels = np.array([[[0, 1], [2, 2]]])
    probs = np.eye(3, dtype="float32")[labels]
    assert float(DiceLoss(from_logits=False)(labels, probs)) == pytest.approx(0.0, abs=1e-5)
    logits = tf.Variable(np.random.default_rng(1).normal(size=(2, 4, 4, 9)).astype("float32"))
    for loss_fn in (MaskedSegmentationLoss(from_logits=True, dice_weight=1.0), DiceLoss(smooth=0.0)):
        with tf.GradientTape() as tape:
            loss = loss_fn(-np.ones((2, 4, 4)), logits)
        grad = tape.gradient(loss, logits).numpy()
        assert float(loss) == 0.0
        assert np.all(np.isfinite(grad)) and np.all(grad == 0)


def test_segmentation_losses_serialize():
    loss = MaskedSegmentationLoss(from_logits=True, dice_weight=0.5, class_weights=[1, 2, 3])
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, MaskedSegmentationLoss)
    assert again.dice_weight == 0.5 and again.class_weights == [1.0, 2.0, 3.0]
    assert isinstance(keras.losses.deserialize(keras.losses.serialize(DiceLoss(smooth=2.0))), DiceLoss)


def test_mask_iou_by_hand_ignores_unlabelled_pixels():
    y_true = np.array([[0, 0, 1, 1], [2, 2, -1, -1]])
    y_pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
    iou = mask_iou(y_true, y_pred, 4)
    # class 0: TP 1, FP 1 (pred 0 on a 2), FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 2: TP 1, FN 1 -> 1/2
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 1 / 2])
    assert np.isnan(iou[3])
    with pytest.raises(ValueError, match="pixels"):
        mask_iou(y_true, y_pred[:1], 4)


def test_masked_mean_iou_metric_accumulates():
    metric = MaskedMeanIoU(4)
    y_true = np.array([[[0, 0, 1, 1], [2, 2, -1, -1]]])
    y_pred = np.eye(4, dtype="float32")[np.array([[[0, 1, 1, 1], [2, 0, 2, 2]]])]
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3, rel=1e-5)
    metric.update_state(-np.ones((1, 2, 4)), y_pred)  # an image without mask adds nothing
    assert float(metric.result()) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3, rel=1e-5)
    metric.reset_state()
    assert float(metric.result()) == 0.0
    again = MaskedMeanIoU.from_config(metric.get_config())
    assert again.n_classes == 4


def test_macro_f1_skips_missing_labels():
    assert macro_f1([0, 1, 1, -1], [0, 1, 0, 1]) == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert np.isnan(macro_f1([-1, -1], [0, 1]))
