"""simple_resnet_v2 against the report's appendix, the segmentation decoder, and .keras round trips."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasmt.augment import report_augmentation
from kerasmt.models.resnet import REPORT_TASKS, simple_resnet_v2
from kerasmt.models.segmentation import add_mask_decoder, compile_joint
from kerasmt.studies import attribute_mtl as study


@pytest.fixture(scope="module")
def model():
    return simple_resnet_v2()


def test_parameter_counts_are_the_reports(model):
    assert model.count_params() == 518_190
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert non_trainable == 1_456 and model.count_params() - non_trainable == 516_734
    assert set(model.output_names) == set(REPORT_TASKS)
    out = model(np.zeros((2, 100, 60, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {t: (2, n) for t, n in REPORT_TASKS.items()}


def test_every_layer_matches_the_appendix(model):
    report = study.report_appendix()
    assert len(report) == 123 and report["params"].sum() == 518_190
    table = study.compare_with_appendix(model)
    assert table["match"].all(), table[~table["match"]]
    assert len(model.layers) == 123


def test_appendix_comparison_catches_a_different_network():
    wrong_head = study.compare_with_appendix(simple_resnet_v2(head_units=(64, 32, 8)))
    assert not wrong_head["match"].all()
    wrong_trunk = study.compare_with_appendix(simple_resnet_v2(filters=(8, 16, 16)))
    assert not wrong_trunk["match"].all()


def test_decoder_shares_the_trunk_and_outputs_masks(model):
    joint = add_mask_decoder(model, n_classes=9)
    assert joint.count_params() - model.count_params() == 24_497
    assert joint.get_layer("latent") is model.get_layer("latent")  # shared layers, shared weights
    out = joint(np.zeros((2, 100, 60, 3), "float32"))
    assert tuple(out["mask"].shape) == (2, 100, 60, 9) and tuple(out["gender"].shape) == (2, 2)
    skip = add_mask_decoder(simple_resnet_v2(), skip_layers=("stage2_out", "stage1_out"))
    assert tuple(skip.get_layer("mask_skip1").output.shape) == (None, 50, 30, 64)
    assert tuple(skip.get_layer("mask_skip2").output.shape) == (None, 100, 60, 48)
    odd = add_mask_decoder(simple_resnet_v2(input_shape=(90, 50, 3), pool_size=2))  # not a power-of-two multiple
    assert tuple(odd.output["mask"].shape) == (None, 90, 50, 9)
    with pytest.raises(ValueError, match="already has an output"):
        add_mask_decoder(joint)
    with pytest.raises(ValueError, match="no layer"):
        add_mask_decoder(simple_resnet_v2(), feature_layer="nope")


def test_joint_model_trains_on_missing_labels_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    # a small instance of the same builders (fast to trace): 32x24 input, one block per stage
    base = simple_resnet_v2((32, 24, 3), tasks={"gender": 2, "torso_colour": 11}, blocks_per_stage=1, pool_size=2)
    joint = add_mask_decoder(base, n_classes=9)
    compile_joint(joint, class_weights={"torso_colour": [1.0] * 11})
    rng = np.random.default_rng(0)
    x = rng.random((8, 32, 24, 3)).astype("float32")
    y = {"gender": np.array([0, 1, -1, 1, 0, 1, 0, 1]),
         "torso_colour": -np.ones(8, "int32"),  # a task without any label in the batch
         "mask": np.where(np.arange(8)[:, None, None] < 4, rng.integers(0, 9, (8, 32, 24)), -1)}
    history = joint.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert history.history["torso_colour_loss"][-1] == 0.0
    path = tmp_path / "joint.keras"
    joint.save(path)
    again = keras.saving.load_model(path)
    before, after = joint.predict(x, verbose=0), again.predict(x, verbose=0)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], atol=1e-5)
    results = again.evaluate(x, y, verbose=0, return_dict=True)  # compiled losses and metrics came back
    assert "mask_mean_iou" in results and np.isfinite(results["loss"])


def test_augmentation_layer_round_trips_inside_a_model(tmp_path):
    inputs = keras.Input((100, 60, 3))
    outputs = keras.layers.Conv2D(2, 1)(report_augmentation(seed=1)(inputs))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "aug.keras")
    again = keras.saving.load_model(tmp_path / "aug.keras")
    x = tf.random.stateless_uniform((2, 100, 60, 3), seed=(1, 2))
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
