"""kerasmt.models.finetune (FT-k by block name, the report's head, cached-feature splits) and
kerasmt.models.simplenet (parameter count against the paper)."""
from __future__ import annotations

import numpy as np
import pytest

import keras
from keras import layers

from kerasmt.models import finetune as ft
from kerasmt.models.simplenet import KERNEL_WEIGHTS_CIFAR10, PAPER_PARAMS_CIFAR10, kernel_weight_count, simplenet

#: the report's unfreeze_cnn(first, 'end') cut for fine-tuning k blocks (section 4.4)
REPORT_FIRST_INDEX = {1: 280, 2: 249, 3: 229, 4: 197, 5: 165, 6: 133}


@pytest.fixture(scope="module")
def inception():
    keras.utils.set_random_seed(0)
    return ft.finetune_model((75, 75, 3), None, n_classes=73, backbone="InceptionV3")


def _base_trainable(base) -> set[str]:
    return {layer.name for layer in base.layers if layer.trainable and not isinstance(layer, layers.InputLayer)}


def test_report_head_and_parameter_counts(inception):
    # the report's summary: 22,889,321 parameters, head Dense 512 (1,049,088) + Dense 73 (37,449)
    assert inception.count_params() == 22_889_321
    assert ft.count_params(inception)["trainable"] == 1_049_088 + 37_449
    assert [inception.get_layer(n).__class__.__name__ for n in ft.HEAD_LAYERS] == \
        ["GlobalAveragePooling2D", "Dropout", "Dense", "Dense"]
    assert inception.get_layer("head_dropout").rate == 0.2
    assert inception.get_layer("head_dense").units == 512


@pytest.mark.parametrize("k", range(1, 10))
def test_inception_ft_k_unfreezes_exactly_the_layers_after_mixed(inception, k):
    base = ft.base_of(inception)
    names = [layer.name for layer in base.layers]
    cut = names.index(f"mixed{10 - k}")
    expected = set(names[cut + 1:])
    assert ft.boundary_layer(base, k) == f"mixed{10 - k}"
    assert set(ft.trainable_layer_names(base, k)) == expected
    if k in REPORT_FIRST_INDEX:
        assert cut + 1 == REPORT_FIRST_INDEX[k]
    # with BatchNorm trainable: exactly the layers after the boundary
    ft.unfreeze_blocks(inception, k, train_batchnorm=True)
    assert _base_trainable(base) == expected
    # default: the same layers except BatchNorm
    ft.unfreeze_blocks(inception, k)
    bn = {layer.name for layer in base.layers if isinstance(layer, layers.BatchNormalization)}
    assert _base_trainable(base) == expected - bn
    assert all(inception.get_layer(n).trainable for n in ft.HEAD_LAYERS)
    ft.unfreeze_blocks(inception, 0)
    assert _base_trainable(base) == set() and not base.trainable


def test_inception_blocks_and_regimes(inception):
    base = ft.base_of(inception)
    blocks = ft.backbone_blocks(base)
    assert [b.name for b in blocks] == [f"mixed{i}" for i in range(11)]
    assert ft.max_blocks(base) == 11 and ft.boundary_layer(base, 11) is None
    opened = ft.unfreeze_blocks(inception, "full")
    assert len(opened) == len([l for l in base.layers
                               if not isinstance(l, (layers.InputLayer, layers.BatchNormalization))])
    assert all(l.trainable for l in base.layers if isinstance(l, layers.Conv2D))
    ft.unfreeze_blocks(inception, 0)
    with pytest.raises(ValueError, match="k must be in 0..11"):
        ft.boundary_layer(base, 12)
    assert [ft.parse_regime(r) for r in ("tl", "ft-6", "FT7", 3, "full")] == [0, 6, 7, 3, "full"]
    assert ft.regime_name(0) == "tl" and ft.regime_name(9) == "ft-9"
    with pytest.raises(ValueError, match="regime"):
        ft.parse_regime("ft-x")


def test_resnet50_and_efficientnet_blocks_by_name():
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    blocks = [b.name for b in ft.backbone_blocks(resnet, "ResNet50")]
    assert blocks[0] == "stem" and blocks[-3:] == ["conv5_block1", "conv5_block2", "conv5_block3"]
    assert len(blocks) == 1 + 3 + 4 + 6 + 3
    for k, last in ((1, ["conv5_block3"]), (2, ["conv5_block2", "conv5_block3"]),
                    (4, ["conv4_block6", "conv5_block1", "conv5_block2", "conv5_block3"])):
        names = ft.trainable_layer_names(resnet, k, "ResNet50")
        assert ft.boundary_layer(resnet, k, "ResNet50") == f"{blocks[-1 - k]}_out"
        assert {"_".join(n.split("_")[:2]) for n in names} == set(last)
    eff = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    blocks = [b.name for b in ft.backbone_blocks(eff)]
    assert blocks[0] == "stem" and blocks[-3:] == ["block6c", "block6d", "block7a"]
    one = ft.trainable_layer_names(eff, 1)
    assert all(n.startswith(("block7a_", "top_")) for n in one) and "top_conv" in one
    two = set(ft.trainable_layer_names(eff, 2))
    assert {n for n in two if not n.startswith(("block7a_", "top_"))} == \
        {l.name for l in eff.layers if l.name.startswith("block6d_")}
    with pytest.raises(ValueError, match="no block rule"):
        ft.backbone_blocks(eff, "MobileNetV2")


def test_split_at_boundary_reproduces_the_model(inception):
    x = np.random.default_rng(0).random((3, 75, 75, 3), dtype=np.float32)
    expected = np.asarray(inception(x, training=False))
    for k in (0, 3, 8):
        bottom, top = ft.split_at_boundary(inception, k)
        got = np.asarray(top(bottom(x, training=False), training=False))
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert bottom.output.shape[1:] == ft.boundary_shape(inception, k)
    # the top shares the model's layers: training it trains the model
    _, top = ft.split_at_boundary(inception, 2)
    assert top.get_layer("predictions") is inception.get_layer("predictions")


def test_preprocessing_modes_and_round_trip(tmp_path):
    x = np.array([[[[0.0, 0.5, 1.0]]]], dtype=np.float32)
    np.testing.assert_allclose(ft.FinetunePreprocess("InceptionV3")(x), [[[[-1.0, 0.0, 1.0]]]], atol=1e-6)
    np.testing.assert_allclose(ft.FinetunePreprocess("InceptionV3", "rescale")(x), x)
    with pytest.raises(ValueError, match="preprocessing mode"):
        ft.FinetunePreprocess("InceptionV3", "tf")
    keras.utils.set_random_seed(1)
    model = ft.finetune_model((32, 32, 3), None, n_classes=5, backbone="EfficientNetB0", regime="ft-1", units=16)
    images = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again(images), model(images), atol=1e-5)
    # a local weights file of the backbone is loaded afresh by every build
    weights = tmp_path / "base.weights.h5"
    ft.base_of(model).save_weights(weights)
    fresh = ft.finetune_model((32, 32, 3), weights, n_classes=5, backbone="EfficientNetB0", units=16)
    for a, b in zip(ft.base_of(fresh).get_weights(), ft.base_of(model).get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="missing.weights.h5"):
        ft.finetune_model((32, 32, 3), tmp_path / "missing.weights.h5", n_classes=5, backbone="EfficientNetB0")
    with pytest.raises(ValueError, match="too small"):
        ft.finetune_model((64, 64, 3), None, n_classes=5, backbone="InceptionV3")


def test_report_augmentation_and_compile():
    chained = ft.report_augmentation(seed=0, fused=False)
    kinds = [type(layer).__name__ for layer in chained.layers]
    assert kinds == ["RandomFlip", "RandomRotation", "RandomTranslation", "RandomShear", "RandomZoom"]
    assert chained.get_layer("rotation").factor == (-40 / 360, 40 / 360)
    fused = ft.report_augmentation(seed=0)
    assert [type(layer).__name__ for layer in fused.layers] == ["RandomAffine"]
    x = np.random.default_rng(0).random((4, 24, 24, 3), dtype=np.float32)
    for aug in (chained, fused):
        y = np.asarray(aug(x, training=True))
        assert y.shape == x.shape and 0.0 <= y.min() and y.max() <= 1.0 and not np.allclose(y, x)
        np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)


def test_random_affine_geometry():
    image = np.zeros((1, 21, 21, 1), dtype=np.float32)
    image[0, 10, 15] = 1.0  # a dot 5 px right of the centre
    flip_only = ft.RandomAffine(0, 0, 0, 0, 0, horizontal_flip=False, fill_mode="constant")
    np.testing.assert_allclose(np.asarray(flip_only(image)), image, atol=1e-6)  # identity
    turned = ft.RandomAffine(40, 0, 0, 0, 0, horizontal_flip=False, fill_mode="constant", seed=3)
    out = np.asarray(turned(np.repeat(image, 16, axis=0)))[..., 0]
    ys, xs = np.unravel_index(out.reshape(16, -1).argmax(axis=1), (21, 21))
    radius = np.hypot(xs - 10, ys - 10)
    assert np.all(np.abs(radius - 5) <= 1.0)  # rotation about the centre keeps the distance
    angles = np.degrees(np.arctan2(ys - 10, xs - 10))
    assert np.all(np.abs(angles) <= 40 + 12) and angles.std() > 5  # random angles within +-40 deg
    mirrored = ft.RandomAffine(0, 0, 0, 0, 0, horizontal_flip=True, fill_mode="constant", seed=0)
    flipped = np.asarray(mirrored(np.repeat(image, 32, axis=0)))[..., 0]
    hits = flipped[:, 10, 5] > 0.5  # the dot mirrored to 5 px left of the centre
    assert 4 < hits.sum() < 28 and np.all(hits | (flipped[:, 10, 15] > 0.5))
    import tensorflow as tf

    aug = ft.RandomAffine(seed=1)
    ds = tf.data.Dataset.from_tensor_slices(np.repeat(image, 8, axis=0)).batch(4).map(
        lambda b: aug(b, training=True), num_parallel_calls=2)
    assert [tuple(b.shape) for b in ds] == [(4, 21, 21, 1), (4, 21, 21, 1)]  # works inside tf.data
    layer = ft.RandomAffine(30, 0.1, 0.1, 0.1, 0.1, seed=5)
    assert ft.RandomAffine.from_config(layer.get_config()).get_config() == layer.get_config()
    model = keras.Sequential([keras.Input((4,)), layers.Dense(7, activation="softmax")])
    ft.compile_report(model)
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-4)
    model.fit(np.zeros((8, 4)), np.arange(8) % 7, verbose=0)
    assert {"accuracy", "top5"} <= set(model.get_metrics_result())


def test_recalibrate_batchnorm_sets_moving_statistics():
    inputs = keras.Input((3,))
    bn = layers.BatchNormalization()
    model = keras.Model(inputs, bn(inputs))
    data = np.random.default_rng(0).normal(5.0, 2.0, (256, 3)).astype(np.float32)
    ft.recalibrate_batchnorm(model, data)
    np.testing.assert_allclose(np.asarray(bn.moving_mean), data.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), data.var(axis=0), rtol=1e-3)
    assert bn.momentum == 0.99
    assert ft.set_batchnorm_momentum(model, 0.9) == 1 and bn.momentum == 0.9


def test_simplenet_matches_the_paper():
    # Hasanpour et al. 2016, CIFAR-10 configuration (32x32x3 input, 10 classes): "5.48M parameters",
    # i.e. the 13 convolution kernels and the dense kernel, 5,484,736 weights.
    model = simplenet((32, 32, 3), n_classes=10)
    assert len([l for l in model.layers if isinstance(l, layers.Conv2D)]) == 13
    assert kernel_weight_count(model) == KERNEL_WEIGHTS_CIFAR10 == 5_484_736
    assert round(kernel_weight_count(model) / 1e6, 2) == PAPER_PARAMS_CIFAR10 / 1e6 == 5.48
    # plus 4,544 conv biases, 9,088 BatchNorm scales/offsets and the 10 dense biases
    assert ft.count_params(model)["trainable"] == 5_498_378
    assert model.output_shape == (None, 10)
    assert simplenet((75, 75, 3), n_classes=73).output_shape == (None, 73)
    with pytest.raises(ValueError, match="input_shape"):
        simplenet((8, 8, 3), n_classes=10)


def test_scratch_models_have_their_own_top():
    net = ft.scratch_model((32, 32, 3), architecture="SimpleNet", n_classes=12)
    assert net.output_shape == (None, 12) and net.name == "scratch_simplenet"
    res = ft.scratch_model((32, 32, 3), architecture="ResNet50", n_classes=12)
    assert res.output_shape == (None, 12) and res.get_layer("preprocess").mode == "backbone"
    with pytest.raises(ValueError, match="architecture"):
        ft.scratch_model((32, 32, 3), architecture="VGG16", n_classes=12)
