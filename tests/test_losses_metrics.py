import keras
import numpy as np
import pytest
from sklearn.metrics import log_loss

from kerasmt.losses import MaskedBinaryCrossentropy, MaskedSparseCategoricalCrossentropy
from kerasmt.metrics import (
    MaskedSparseCategoricalAccuracy,
    accuracy_from_confusion,
    confusion,
    majority_accuracy,
    report_top_left_accuracy,
)

RNG = np.random.default_rng(0)


def _probs(n, k):
    logits = RNG.normal(size=(n, k))
    p = np.exp(logits)
    return logits.astype("float32"), (p / p.sum(1, keepdims=True)).astype("float32")


def test_masked_ce_equals_sklearn_log_loss_on_unmasked_rows():
    logits, probs = _probs(12, 4)
    y = np.array([0, 1, -1, 3, 2, -1, 1, 0, -1, 3, 2, 2])
    keep = y != -1
    expected = log_loss(y[keep], probs[keep], labels=range(4))
    got = float(MaskedSparseCategoricalCrossentropy()(y, probs))
    got_logits = float(MaskedSparseCategoricalCrossentropy(from_logits=True)(y, logits))
    assert got == pytest.approx(expected, rel=1e-5)
    assert got_logits == pytest.approx(expected, rel=1e-5)


def test_masked_ce_class_weights_match_weighted_log_loss():
    _, probs = _probs(10, 3)
    y = np.array([0, 1, 2, -1, 1, 0, 2, 2, -1, 1])
    w = np.array([1.0, 3.0, 0.5])
    keep = y != -1
    expected = log_loss(y[keep], probs[keep], sample_weight=w[y[keep]], labels=range(3))
    got = float(MaskedSparseCategoricalCrossentropy(class_weights=w)(y, probs))
    assert got == pytest.approx(expected, rel=1e-5)


def test_all_missing_batch_gives_zero_loss_and_zero_gradient():
    import tensorflow as tf

    logits = tf.Variable(RNG.normal(size=(5, 3)).astype("float32"))
    y = -np.ones(5, dtype="int32")
    with tf.GradientTape() as tape:
        loss = MaskedSparseCategoricalCrossentropy(from_logits=True)(y, logits)
    grad = tape.gradient(loss, logits)
    assert float(loss) == 0.0
    assert np.all(np.isfinite(grad.numpy())) and np.all(grad.numpy() == 0)


def test_labels_as_column_vector_are_accepted():
    _, probs = _probs(6, 3)
    y = np.array([[0], [1], [2], [-1], [1], [0]])
    flat = float(MaskedSparseCategoricalCrossentropy()(y.ravel(), probs))
    assert float(MaskedSparseCategoricalCrossentropy()(y, probs)) == pytest.approx(flat)


def test_masked_binary_ce_ignores_missing_entries():
    p = np.array([[0.9, 0.2], [0.3, 0.6], [0.5, 0.5]], dtype="float32")
    y = np.array([[1, -1], [0, 1], [-1, -1]])
    keep = y != -1
    expected = -np.mean(np.where(y[keep] == 1, np.log(p[keep]), np.log(1 - p[keep])))
    assert float(MaskedBinaryCrossentropy()(y, p)) == pytest.approx(expected, rel=1e-5)
    assert float(MaskedBinaryCrossentropy()(-np.ones((2, 2)), p[:2])) == 0.0


def test_losses_serialize():
    loss = MaskedSparseCategoricalCrossentropy(from_logits=True, class_weights=[1, 2])
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, MaskedSparseCategoricalCrossentropy)
    assert again.from_logits and again.class_weights == [1.0, 2.0]


def test_masked_accuracy_accumulates_over_batches():
    metric = MaskedSparseCategoricalAccuracy()
    metric.update_state(np.array([0, 1, -1]), np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]]))
    metric.update_state(np.array([-1, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    # labelled rows: (0 ok), (1 wrong), (1 ok) -> 2/3
    assert float(metric.result()) == pytest.approx(2 / 3)
    metric.reset_state()
    metric.update_state(np.array([-1, -1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    assert float(metric.result()) == 0.0


def test_accuracy_from_confusion_is_trace_over_sum_not_the_reports_block():
    cm = np.array([[30, 10, 5], [8, 40, 12], [2, 20, 60]])
    assert accuracy_from_confusion(cm) == pytest.approx(130 / 187)
    assert report_top_left_accuracy(cm) == pytest.approx(70 / 88)
    with pytest.raises(ValueError, match="square"):
        accuracy_from_confusion(np.ones((2, 3)))


def test_confusion_skips_missing_and_majority():
    cm = confusion([0, 1, -1, 2, 2], [0, 2, 1, 2, 2], 3)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    assert majority_accuracy([1, 1, 0, -1]) == pytest.approx(2 / 3)
