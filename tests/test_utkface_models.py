"""Model A (VGG-style split-point CNN), its cross-stitch variant, and the CrossStitch layer."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasmt.models.cross_stitch import CrossStitch, alpha_table
from kerasmt.models.vgg import block_filters, compile_age_gender, model_a, model_a_cross_stitch

# Parameter counts at the report's 128x128x3 (the report prints no summary; these pin the builder):
# (n_blocks, n_dense, units, split_point) -> params
PARAMS_128 = {
    (5, 3, 300, 1): 24_067_586,  # CNN 10, the report's choice (split after block 1)
    (5, 3, 300, 5): 14_695_682,  # same, all conv blocks shared (split at the dense layers)
    (5, 5, 200, 5): 13_018_082,  # CNN 17
    (3, 1, 100, 3): 14_255_602,  # CNN 1 (all 3 blocks shared)
    (2, 2, 150, 1): 39_852_782,  # CNN 18 (32x32x128 maps flattened: big dense layers)
}


def test_block_filters_follow_the_report():
    assert block_filters(5) == [64, 128, 256, 512, 512]
    assert block_filters(7) == [64, 128, 256, 512, 512, 512, 512]
    assert block_filters(5, base_filters=8) == [8, 16, 32, 64, 64]


@pytest.mark.parametrize("config, params", PARAMS_128.items())
def test_model_a_parameter_counts(config, params):
    n_blocks, n_dense, units, split = config
    model = model_a((128, 128, 3), n_blocks=n_blocks, n_dense=n_dense, units=units, split_point=split)
    assert model.count_params() == params


def test_model_a_defaults_are_cnn_10():
    model = model_a()
    assert model.input_shape == (None, 128, 128, 3)
    assert model.count_params() == PARAMS_128[(5, 3, 300, 1)]
    names = {layer.name for layer in model.layers}
    # one shared block, then four blocks per branch, three dense groups per head
    assert "block1_conv1" in names and "block2_conv1" not in names
    assert {f"age_block{i}_conv1" for i in range(2, 6)} <= names
    assert {f"gender_block{i}_conv1" for i in range(2, 6)} <= names
    assert {"age_dense3", "age_dropout3", "age_bn3", "gender_dense3"} <= names and "age_dense4" not in names
    dense = model.get_layer("age_dense1")
    assert dense.units == 300 and dense.kernel_regularizer.l2 == pytest.approx(1e-5)
    assert model.get_layer("age_dropout1").rate == 0.2
    assert model.get_layer("age").activation.__name__ == "linear"
    assert model.get_layer("gender").activation.__name__ == "sigmoid"


def test_split_point_structure_and_shapes():
    shared = model_a((32, 32, 3), n_blocks=3, n_dense=1, units=16, split_point=3, base_filters=4)
    names = {layer.name for layer in shared.layers}
    assert {"block1_conv1", "block2_conv1", "block3_conv1", "flatten"} <= names
    assert not any(n.startswith(("age_block", "gender_block")) for n in names)
    split = model_a((32, 32, 3), n_blocks=3, n_dense=1, units=16, split_point=1, base_filters=4)
    assert split.count_params() > shared.count_params()
    separate = model_a((32, 32, 3), n_blocks=3, n_dense=1, units=16, split_point=0, base_filters=4)
    assert not any(layer.name.startswith("block") for layer in separate.layers)
    out = split.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    assert set(out) == {"age", "gender"} and out["age"].shape == (2, 1) and out["gender"].shape == (2, 1)
    assert np.all((out["gender"] > 0) & (out["gender"] < 1))
    biased = model_a((32, 32, 3), n_blocks=2, n_dense=1, units=8, base_filters=2, age_bias=33.0)
    assert float(biased.get_layer("age").bias.numpy()[0]) == 33.0


def test_model_a_rejects_bad_configurations():
    with pytest.raises(ValueError, match="split_point"):
        model_a((64, 64, 3), n_blocks=3, split_point=4)
    with pytest.raises(ValueError, match="too small"):
        model_a((8, 8, 3), n_blocks=5)
    with pytest.raises(ValueError, match="input_shape"):
        model_a((64, 64), n_blocks=2)


def test_compile_age_gender_losses_metrics_and_learning():
    keras.utils.set_random_seed(0)
    model = compile_age_gender(model_a((8, 8, 3), n_blocks=1, n_dense=1, units=16, base_filters=4, age_bias=30.0),
                               learning_rate=1e-2)
    x = np.random.default_rng(0).random((32, 8, 8, 3)).astype("float32")
    y = {"age": np.linspace(5, 60, 32).astype("float32"), "gender": (np.arange(32) % 2).astype("int32")}
    first = model.train_on_batch(x, y, return_dict=True)
    assert {"loss", "age_loss", "age_mae", "gender_loss", "gender_accuracy"} <= set(first)
    for _ in range(30):
        last = model.train_on_batch(x, y, return_dict=True)
    assert last["loss"] < first["loss"]
    with pytest.raises(ValueError, match="outputs"):
        compile_age_gender(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    with pytest.raises(ValueError, match="unknown outputs"):
        compile_age_gender(model, loss_weights={"race": 1.0})


# ------------------------------------------------------------------------------- cross-stitch
def test_cross_stitch_identity_returns_inputs():
    unit = CrossStitch(self_weight=1.0, cross_weight=0.0)
    a = np.random.default_rng(0).random((2, 4, 4, 3)).astype("float32")
    b = np.random.default_rng(1).random((2, 4, 4, 3)).astype("float32")
    out_a, out_b = unit([a, b])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out_a), a)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out_b), b)


def test_cross_stitch_default_init_and_known_per_channel_mixing():
    a = np.array([[1.0, 2.0, 3.0]], "float32")
    b = np.array([[10.0, 20.0, 30.0]], "float32")
    unit = CrossStitch()
    out_a, out_b = unit([a, b])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(unit.alpha), np.tile([[0.9, 0.1], [0.1, 0.9]], (3, 1, 1)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out_a), [[1.9, 3.8, 5.7]], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out_b), [[9.1, 18.2, 27.3]], rtol=1e-6)
    # a different 2x2 matrix per channel, on conv maps (batch, H, W, C)
    alpha = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0.5, 0.5], [0.25, 0.75]]], "float32")
    unit.alpha.assign(alpha)
    xa = np.random.default_rng(2).random((2, 5, 5, 3)).astype("float32")
    xb = np.random.default_rng(3).random((2, 5, 5, 3)).astype("float32")
    out_a, out_b = (keras.ops.convert_to_numpy(t) for t in unit([xa, xb]))
    expect_a = alpha[:, 0, 0] * xa + alpha[:, 0, 1] * xb
    expect_b = alpha[:, 1, 0] * xa + alpha[:, 1, 1] * xb
    np.testing.assert_allclose(out_a, expect_a, rtol=1e-6)
    np.testing.assert_allclose(out_b, expect_b, rtol=1e-6)
    np.testing.assert_allclose(out_a[..., 1], xb[..., 1])  # channel 1 swaps the streams
    np.testing.assert_allclose(out_b[..., 1], xa[..., 1])


def test_cross_stitch_weights_are_per_channel_not_per_activation():
    inp_a, inp_b = keras.Input((64, 64, 64)), keras.Input((64, 64, 64))
    unit = CrossStitch()
    unit([inp_a, inp_b])
    assert unit.alpha.shape == (64, 2, 2)  # the report's layer: (2 * 262144) ** 2 weights
    shared = CrossStitch(per_channel=False)
    shared([inp_a, inp_b])
    assert shared.alpha.shape == (1, 2, 2)
    with pytest.raises(ValueError, match="same shape"):
        CrossStitch()([keras.Input((4, 4, 3)), keras.Input((4, 4, 5))])


def test_gradient_flows_to_alpha():
    unit = CrossStitch()
    a = tf.constant(np.random.default_rng(0).random((2, 3, 3, 4)), tf.float32)
    b = tf.constant(np.random.default_rng(1).random((2, 3, 3, 4)), tf.float32)
    with tf.GradientTape() as tape:
        out_a, out_b = unit([a, b])
        loss = tf.reduce_sum(out_a) + 2.0 * tf.reduce_sum(out_b)
    grad = tape.gradient(loss, unit.alpha).numpy()
    sum_a = a.numpy().sum(axis=(0, 1, 2))
    sum_b = b.numpy().sum(axis=(0, 1, 2))
    np.testing.assert_allclose(grad[:, 0, 0], sum_a, rtol=1e-5)
    np.testing.assert_allclose(grad[:, 0, 1], sum_b, rtol=1e-5)
    np.testing.assert_allclose(grad[:, 1, 0], 2 * sum_a, rtol=1e-5)
    np.testing.assert_allclose(grad[:, 1, 1], 2 * sum_b, rtol=1e-5)


def test_cross_stitch_model_a_trains_alpha_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model = model_a_cross_stitch((8, 8, 3), n_blocks=2, n_dense=2, units=8, split_point=1, base_filters=2)
    stitches = [layer.name for layer in model.layers if isinstance(layer, CrossStitch)]
    assert stitches == ["stitch_block2", "stitch_dense1", "stitch_dense2"]
    plain = model_a((8, 8, 3), n_blocks=2, n_dense=2, units=8, split_point=1, base_filters=2)
    assert model.count_params() - plain.count_params() == 4 * 4 + 4 * (8 + 8)
    compile_age_gender(model, learning_rate=1e-2)
    x = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")
    y = {"age": np.linspace(5, 60, 16).astype("float32"), "gender": (np.arange(16) % 2).astype("int32")}
    before = alpha_table(model)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    after = alpha_table(model)
    assert list(after.index) == stitches
    assert not np.allclose(before.to_numpy(), after.to_numpy())  # alpha is learned
    path = tmp_path / "cs.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    expected, got = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for task in ("age", "gender"):
        np.testing.assert_allclose(got[task], expected[task], rtol=1e-5, atol=1e-5)
    assert isinstance(loaded.get_layer("stitch_block2"), CrossStitch)
    assert loaded.get_layer("stitch_block2").get_config()["self_weight"] == 0.9


def test_cross_stitch_needs_something_to_stitch():
    with pytest.raises(ValueError, match="plain model_a"):
        model_a_cross_stitch((16, 16, 3), n_blocks=2, stitch_conv=False, stitch_dense=False)


def test_cross_stitch_lr_multiplier_moves_alpha_further_and_round_trips(tmp_path):
    from kerasmt.models.cross_stitch import report_matrix_entries

    assert report_matrix_entries() == 274_877_906_944  # the report's (2d, 2d) matrix, d = 64*64*64
    xa = np.random.default_rng(0).random((32, 5)).astype("float32")
    xb = np.random.default_rng(1).random((32, 5)).astype("float32")
    target = np.zeros((32, 5), "float32")
    moved = {}
    for m in (1.0, 100.0):
        unit = CrossStitch(lr_multiplier=m)
        a_in, b_in = keras.Input((5,)), keras.Input((5,))
        out_a, _ = unit([a_in, b_in])
        model = keras.Model([a_in, b_in], out_a)
        np.testing.assert_allclose(unit.mixing[0], [[0.9, 0.1], [0.1, 0.9]], rtol=1e-6)  # same start
        model.compile(keras.optimizers.Adam(1e-3), "mse")
        model.fit([xa, xb], target, epochs=3, batch_size=32, verbose=0)
        table = alpha_table(model)
        moved[m] = float(table["max_moved"].iloc[0])
        assert table["lr_multiplier"].iloc[0] == m
    assert moved[100.0] > 30 * moved[1.0] > 0  # Adam: ~100x further
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict([xa, xb], verbose=0), model.predict([xa, xb], verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="lr_multiplier"):
        CrossStitch(lr_multiplier=0)
