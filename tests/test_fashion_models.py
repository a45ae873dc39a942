"""RefineNet, the multi-label classifier, the segmentation loss and instance recovery."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasmt.losses_segmentation import PixelCrossentropyDice, class_weights_from_maps
from kerasmt.models.multilabel import compile_multilabel, multilabel_classifier, predict_labels
from kerasmt.models.refinenet import BilinearUpsampling, MeanPixelNormalization, instances_from_semantic, refinenet


def _toy_segmentation(n: int = 16, size: int = 32, seed: int = 0):
    """Images with one coloured square each; the square's colour is its class (1..3)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.2, (n, size, size, 3)).astype("float32")
    y = np.zeros((n, size, size), "int32")
    colors = np.eye(3, dtype="float32")
    for i in range(n):
        c = int(rng.integers(3))
        y0, x0 = rng.integers(0, size - 12, 2)
        x[i, y0:y0 + 12, x0:x0 + 12] = colors[c]
        y[i, y0:y0 + 12, x0:x0 + 12] = c + 1
    return x, y


def test_refinenet_output_shape_and_softmax():
    model = refinenet((None, None, 3), None, n_classes=5, encoder="light", features=8, light_widths=(8, 8, 16, 16))
    for size in (64, 96):
        out = model.predict(np.zeros((2, size, size, 3), "float32"), verbose=0)
        assert out.shape == (2, size, size, 6)  # background + 5 classes, at the input size
        np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)
    names = [layer.name for layer in model.layers]
    for part in ("rb_4_crp_pool4", "rb_1_mrf_sum", "rb_3_rcu_l1_sum", "rf_rcu_o2_sum", "rf_pred"):
        assert part in names
    with pytest.raises(ValueError, match="multiples of 32"):
        refinenet((100, 100, 3), None, n_classes=5, encoder="light")
    with pytest.raises(ValueError, match="ImageNet"):
        refinenet((64, 64, 3), "imagenet", n_classes=5, encoder="light")


def test_refinenet_on_a_keras_applications_resnet():
    model = refinenet((64, 64, 3), None, n_classes=11, encoder="ResNet50", features=(32, 16, 16, 16))
    assert model.output_shape == (None, 64, 64, 12)
    assert model.get_layer("normalize").bgr  # keras.applications ResNets take BGR caffe input
    encoder = [layer for layer in model.layers if isinstance(layer, keras.Model)][0]
    assert [o.shape[1] for o in encoder.outputs] == [16, 8, 4, 2]  # 1/4 .. 1/32


def test_short_training_lowers_the_loss_and_beats_all_background():
    keras.utils.set_random_seed(0)
    x, y = _toy_segmentation(24)
    model = refinenet((None, None, 3), None, n_classes=3, encoder="light", features=8, light_widths=(8, 8, 16, 16))
    weights = class_weights_from_maps(y, 4)
    model.compile(keras.optimizers.Adam(5e-3), PixelCrossentropyDice(class_weights=weights), jit_compile=False)
    history = model.fit(x, y, batch_size=8, epochs=12, verbose=0).history["loss"]
    assert history[-1] < 0.6 * history[0]
    pred = model.predict(x, verbose=0).argmax(-1)
    fg = y > 0
    assert (pred[fg] > 0).mean() > 0.5, "the squares are not all background any more"


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_keras_round_trip_with_custom_loss_and_layer(tmp_path):
    model = refinenet((None, None, 3), None, n_classes=2, encoder="light", features=8, light_widths=(8, 8, 8, 8))
    model.compile(keras.optimizers.Adam(1e-3), PixelCrossentropyDice(class_weights=[0.1, 1.0, 2.0], dice_weight=0.5))
    x, _ = _toy_segmentation(4)
    path = tmp_path / "rn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert loaded.loss.class_weights == [0.1, 1.0, 2.0] and loaded.loss.dice_weight == 0.5


def test_bilinear_upsampling_matches_tf_resize_and_takes_any_size():
    x = np.random.default_rng(0).random((2, 5, 7, 3)).astype("float32")
    np.testing.assert_allclose(BilinearUpsampling(2)(x).numpy(), tf.image.resize(x, (10, 14), "bilinear").numpy(), atol=1e-6)

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3))])
    def up4(t):
        return BilinearUpsampling(4)(t)

    assert up4(x).shape == (2, 20, 28, 3)
    with pytest.raises(ValueError, match="power of 2"):
        BilinearUpsampling(3)


def test_mean_pixel_normalization():
    x = np.full((1, 2, 2, 3), 0.5, "float32")
    out = MeanPixelNormalization()(x).numpy()
    np.testing.assert_allclose(out[0, 0, 0], [127.5 - 123.7, 127.5 - 116.8, 127.5 - 103.9], rtol=1e-5)
    out = MeanPixelNormalization(bgr=True)(x).numpy()
    np.testing.assert_allclose(out[0, 0, 0], [127.5 - 103.9, 127.5 - 116.8, 127.5 - 123.7], rtol=1e-5)


# ------------------------------------------------------------------------------------- the loss
def test_loss_ignores_unlabelled_pixels_and_is_zero_without_labels():
    loss = PixelCrossentropyDice()
    probs = tf.nn.softmax(tf.random.normal((2, 4, 4, 3)))
    assert float(loss(-tf.ones((2, 4, 4), tf.int32), probs)) == 0.0
    y = tf.constant(np.random.default_rng(0).integers(0, 3, (2, 4, 4)), tf.int32)
    perfect = tf.one_hot(y, 3) * 0.999 + 0.0005
    assert float(loss(y, perfect)) < 0.02
    assert float(loss(y, probs)) > 0.5


def test_class_weights_change_the_cross_entropy():
    y = tf.constant([[[0, 0, 0, 1]]], tf.int32)
    p = tf.constant([[[[0.9, 0.1]] * 3 + [[0.9, 0.1]]]], tf.float32)
    plain = float(PixelCrossentropyDice(dice_weight=0.0)(y, p))
    weighted = float(PixelCrossentropyDice(dice_weight=0.0, class_weights=[0.1, 10.0])(y, p))
    expected_plain = (3 * -np.log(0.9) - np.log(0.1)) / 4
    expected_weighted = (0.3 * -np.log(0.9) - 10 * np.log(0.1)) / 10.3
    assert plain == pytest.approx(expected_plain, rel=1e-4)
    assert weighted == pytest.approx(expected_weighted, rel=1e-4)


def test_saturated_softmax_still_gets_a_gradient():
    """The report's RefineNet trap: a softmax saturated on background. CE on clipped probabilities
    has no gradient there; our loss (Keras' logits-aware CE) does."""
    inputs = keras.Input((2, 2, 3))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(inputs))
    logits = tf.Variable(tf.constant([[[[60.0, -60.0, -60.0]] * 2] * 2]))
    y = tf.constant([[[1, 2], [0, 1]]], tf.int32)

    @tf.function
    def grads(loss_fn):
        with tf.GradientTape() as tape:
            value = loss_fn(y, model(logits))
        return tape.gradient(value, logits)

    ours = grads(PixelCrossentropyDice(dice_weight=0.0))
    assert float(tf.reduce_max(tf.abs(ours))) > 0.1

    def clipped(y_true, p):
        p = tf.clip_by_value(tf.reshape(p, (-1, 3)), 1e-7, 1.0)
        return -tf.reduce_mean(tf.reduce_sum(tf.one_hot(tf.reshape(y_true, (-1,)), 3) * tf.math.log(p), -1))

    assert float(tf.reduce_max(tf.abs(grads(clipped)))) == 0.0


def test_class_weights_from_maps():
    maps = np.zeros((1, 10, 10), np.int64)
    maps[0, :1, :] = 1  # 10 % class 1, 90 % background, class 2 absent
    w = class_weights_from_maps(maps, 3, power=1.0, max_weight=50.0)
    assert w[1] > w[0] and w[2] == 50.0
    assert w[0] == pytest.approx(0.5 / 0.9) and w[1] == pytest.approx(0.5 / 0.1)


# ---------------------------------------------------------------------------------- instances
def test_instances_from_semantic_connected_components():
    label_map = np.zeros((12, 12), np.int64)
    label_map[1:4, 1:4] = 3  # class 2 (channel 3)
    label_map[8:11, 8:11] = 3  # another class-2 instance
    label_map[1:3, 8:10] = 1  # class 0, 4 pixels
    label_map[6, 0] = 2  # a one-pixel speck of class 1
    inst = instances_from_semantic(label_map, min_area=2)
    assert sorted(inst.labels.tolist()) == [0, 2, 2]
    assert sorted(inst.masks.reshape(3, -1).sum(1).tolist()) == [4, 9, 9]
    probs = np.eye(4)[label_map] * 0.8 + 0.05
    inst = instances_from_semantic(probs, min_area=1)
    assert len(inst) == 4 and np.allclose(inst.scores, 0.85)
    probs[1:4, 1:4] = [0.3, 0.1, 0.2, 0.4]  # one class-2 region now has a mean probability of 0.4
    assert len(instances_from_semantic(probs, min_area=1, min_score=0.5)) == 3
    empty = instances_from_semantic(np.zeros((5, 5), np.int64))
    assert len(empty) == 0 and empty.masks.shape == (0, 5, 5)


# ----------------------------------------------------------------------------------- classifier
def test_multilabel_classifier_learns_a_toy_task():
    keras.utils.set_random_seed(0)
    x, y = _toy_segmentation(32)
    labels = np.stack([np.isin(np.arange(1, 4), np.unique(m)).astype("float32") for m in y])
    model = multilabel_classifier((32, 32, 3), None, n_classes=3, backbone="light", dropout=0.0)
    assert model.output_shape == (None, 3)
    compile_multilabel(model, 5e-3)
    history = model.fit(x, labels, batch_size=8, epochs=15, verbose=0).history["loss"]
    assert history[-1] < 0.7 * history[0]
    probs = model.predict(x, verbose=0)
    assert ((probs >= 0) & (probs <= 1)).all()
    assert predict_labels(np.array([[0.2, 0.5, 0.9]])).tolist() == [[0, 1, 1]]
