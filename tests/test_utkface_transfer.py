"""Model B: keras.applications backbones with their own preprocessing, heads, fine-tuning."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasmt.models import transfer
from kerasmt.models.vgg import compile_age_gender

# backbone -> (smallest input side, pooled feature size, preprocess module)
BACKBONES = {
    "VGG16": (32, 512, "vgg16"),
    "VGG19": (32, 512, "vgg19"),
    "Xception": (71, 2048, "xception"),
    "ResNet50V2": (32, 2048, "resnet_v2"),
    "EfficientNetB4": (32, 1792, "efficientnet"),
    "InceptionV3": (75, 2048, "inception_v3"),
}


def test_the_report_compared_six_backbones():
    assert set(transfer.REPORT_BACKBONES) == set(BACKBONES)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_transfer_model_builds_each_backbone_offline(name):
    size, features, module = BACKBONES[name]
    keras.backend.clear_session()
    model = transfer.transfer_model((size, size, 3), None, backbone=name, units=16)
    assert model.output_names == ["age", "gender"] or set(model.output_names) == {"age", "gender"}
    base = transfer.base_of(model)
    assert not base.trainable  # frozen
    assert base.output.shape[-1] == features
    counts = transfer.count_params(model)
    head = 2 * (features * 16 + 16 + 16 + 1)  # per task: Dense(16) -> Dropout -> Dense(1)
    assert counts["trainable"] == head
    assert counts["total"] == counts["backbone"] + head
    assert transfer.backbone_spec(name).module == module
    out = model.predict(np.random.default_rng(0).random((2, size, size, 3)).astype("float32"), verbose=0)
    assert out["age"].shape == (2, 1) and out["gender"].shape == (2, 1)
    assert np.isfinite(out["age"]).all()


@pytest.mark.parametrize("name", list(BACKBONES))
def test_each_backbone_gets_its_own_preprocess_input(name):
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype("float32")  # pipeline output: [0, 1]
    ours = keras.ops.convert_to_numpy(transfer.BackbonePreprocess(name)(x))
    module = getattr(keras.applications, BACKBONES[name][2])
    np.testing.assert_allclose(ours, module.preprocess_input(x * 255.0), rtol=1e-5, atol=1e-4)


def test_preprocessing_ranges_differ_between_families():
    x = np.full((1, 4, 4, 3), 0.5, "float32")
    tf_mode = keras.ops.convert_to_numpy(transfer.BackbonePreprocess("Xception")(x))
    caffe = keras.ops.convert_to_numpy(transfer.BackbonePreprocess("VGG16")(x))
    effnet = keras.ops.convert_to_numpy(transfer.BackbonePreprocess("EfficientNetB4")(x))
    np.testing.assert_allclose(tf_mode, 0.0, atol=1e-6)  # [-1, 1]
    np.testing.assert_allclose(caffe[0, 0, 0], [127.5 - 103.939, 127.5 - 116.779, 127.5 - 123.68], atol=1e-3)
    np.testing.assert_allclose(effnet, 127.5)  # EfficientNet rescales [0, 255] itself


def test_transfer_model_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="not a keras.applications model"):
        transfer.transfer_model(weights=None, backbone="ResNet9000")
    with pytest.raises(ValueError, match="at least 71x71"):
        transfer.transfer_model((64, 64, 3), backbone="Xception", weights=None)
    with pytest.raises(ValueError, match="weights: file"):
        transfer.transfer_model((32, 32, 3), backbone="VGG16", weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="head: unknown layer kind"):
        transfer.transfer_model((32, 32, 3), backbone="VGG16", weights=None, head=("dense", "pool"))


def test_local_weights_file_is_loaded(tmp_path):
    keras.utils.set_random_seed(0)
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    path = tmp_path / "vgg16_notop.weights.h5"
    base.save_weights(path)
    model = transfer.transfer_model((32, 32, 3), backbone="VGG16", weights=str(path))
    for a, b in zip(transfer.base_of(model).get_weights(), base.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def vgg():
    keras.utils.set_random_seed(0)
    return transfer.transfer_model((32, 32, 3), backbone="VGG16", weights=None, units=8,
                                   head=transfer.HEAD_ORDERS["dense-dropout-bn-dropout"], age_bias=30.0)


def test_head_model_and_cached_features_match_the_full_model(vgg):
    x = np.random.default_rng(1).random((4, 32, 32, 3)).astype("float32")
    features = transfer.extract_features(vgg, (x * 255).astype("uint8"))
    assert features.shape == (4, 512)
    heads = transfer.head_model(vgg)
    assert set(heads.output_names) == {"age", "gender"}
    full = vgg.predict(np.round(x * 255) / 255, verbose=0)
    cached = heads.predict(features, verbose=0)
    for task in ("age", "gender"):
        np.testing.assert_allclose(cached[task], full[task], rtol=2e-3, atol=2e-3)
    # the head model shares its weights with the full model
    assert heads.get_layer("age_dense1") is vgg.get_layer("age_dense1")
    standalone = transfer.age_gender_heads(512, transfer.HEAD_ORDERS["dense-dropout-bn-dropout"], units=8)
    assert standalone.count_params() == heads.count_params()


def test_unfreeze_last_counts_weighted_layers_and_skips_batchnorm(vgg):
    frozen = transfer.count_params(vgg)["trainable"]
    names = transfer.unfreeze_last(vgg, 2)
    assert names == ["block5_conv2", "block5_conv3"]
    block5 = vgg.get_layer("vgg16").get_layer("block5_conv3")
    assert transfer.count_params(vgg)["trainable"] == frozen + 2 * (3 * 3 * 512 * 512 + 512)
    assert block5.trainable
    assert transfer.unfreeze_last(vgg, 0) == []
    assert transfer.count_params(vgg)["trainable"] == frozen
    keras.backend.clear_session()
    eff = transfer.transfer_model((32, 32, 3), backbone="EfficientNetB4", weights=None, units=4)
    names = transfer.unfreeze_last(eff, 3)
    assert len(names) == 3 and not any("bn" in n for n in names)
    assert all(not layer.trainable for layer in transfer.base_of(eff).layers
               if isinstance(layer, keras.layers.BatchNormalization))


def test_transfer_model_trains_and_round_trips(vgg, tmp_path):
    compile_age_gender(vgg, 1e-3)
    x = np.random.default_rng(2).random((8, 32, 32, 3)).astype("float32")
    y = {"age": np.linspace(10, 50, 8).astype("float32"), "gender": (np.arange(8) % 2).astype("int32")}
    base_before = transfer.base_of(vgg).get_weights()[0].copy()
    vgg.fit(x, y, epochs=1, batch_size=8, verbose=0)
    np.testing.assert_array_equal(transfer.base_of(vgg).get_weights()[0], base_before)  # frozen base unchanged
    path = tmp_path / "model_b.keras"
    vgg.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("preprocess"), transfer.BackbonePreprocess)
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["age"], vgg.predict(x, verbose=0)["age"], rtol=1e-5)
