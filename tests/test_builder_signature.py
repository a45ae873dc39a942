"""Every model builder follows one convention (issue 19): ``builder(input_shape, weights, name, *,
task arguments)``; a weights file saved from a builder reproduces its outputs; bad weights and the
old positional calls fail with errors that name the argument."""
import inspect

import keras
import numpy as np
import pytest

import kerasmt.models as M
from kerasmt.models import maskrcnn

#: the smallest model of every builder (random weights; no downloads)
SMALL = {
    "dense_net": dict(input_shape=(8, 8, 1), n_classes=3, units=(4, 4, 4)),
    "small_cnn": dict(input_shape=(8, 8, 1), n_classes=3, filters=2, dense_units=4),
    "own_cnn": dict(input_shape=(8, 8, 1), n_classes=3, filters=(2, 2, 2), dense_units=(4, 4)),
    "multitask_cnn": dict(input_shape=(32, 32, 1), tasks={"a": 2, "b": 3}, filters=(2, 2, 2), head_units=(4,)),
    "simple_resnet_v2": dict(input_shape=(16, 8, 3), tasks={"a": 2}, stem_filters=2, filters=(2,), out_filters=(4,),
                             blocks_per_stage=1, pool_size=2, head_units=(4,)),
    "model_a": dict(input_shape=(8, 8, 3), n_blocks=1, n_dense=1, units=4, base_filters=2),
    "model_a_cross_stitch": dict(input_shape=(16, 16, 3), n_blocks=2, n_dense=1, units=4, base_filters=2),
    "transfer_model": dict(input_shape=(32, 32, 3), weights=None, backbone="MobileNetV2", units=4),
    "finetune_model": dict(input_shape=(32, 32, 3), weights=None, n_classes=3, backbone="MobileNetV2", units=4),
    "scratch_model": dict(input_shape=(32, 32, 3), architecture="SimpleNet", n_classes=3),
    "simplenet": dict(input_shape=(16, 16, 3), n_classes=3),
    "light_resnet": dict(input_shape=(32, 32, 3), widths=(2, 2, 2, 2)),
    "refinenet": dict(input_shape=(32, 32, 3), weights=None, n_classes=2, encoder="light", features=4, crp_stages=1,
                      light_widths=(2, 2, 2, 2)),
    "multilabel_classifier": dict(input_shape=(32, 32, 3), weights=None, n_classes=3, backbone="light"),
    "build_encoder": dict(filters=(2, 2, 2), dense_units=4, seed=0),
    "build_decoder": dict(input_shape=(2,)),
    "build_vae": dict(latent_dim=2, seed=0),
    "build_maskrcnn": dict(input_shape=(64, 64, 3), backbone="light", num_classes=3, light_widths=(4, 4, 4, 4),
                           top_down_pyramid_size=4, rpn_channels=4, fpn_classif_fc_layers_size=4, mask_head_channels=4,
                           pre_nms_limit=50, post_nms_rois_training=8, post_nms_rois_inference=4, train_rois_per_image=4,
                           max_gt_instances=2, detection_max_instances=2, rpn_anchor_scales=(4, 8, 16, 32, 64)),
}
#: builders whose outputs depend on a random draw at inference (the VAE samples z)
SAMPLING = {"build_encoder", "build_vae"}


def test_registry_lists_every_builder():
    assert set(M.BUILDERS) == set(SMALL)
    assert M.BUILDERS["build_maskrcnn"] is maskrcnn.build_maskrcnn
    assert all(name in M.__all__ for name in M.BUILDERS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_signature(name):
    params = list(inspect.signature(M.BUILDERS[name]).parameters.values())
    assert [p.name for p in params[:3]] == ["input_shape", "weights", "name"]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params[:3])
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params[3:])


def _outputs(model, name):
    if name == "build_maskrcnn":
        model = model.inference_model
    if name == "build_vae":
        model = model.encoder
    shape = [8 if d is None else d for d in model.input_shape[1:]]
    x = np.random.default_rng(0).random((1, *shape)).astype("float32")
    if name in SAMPLING:  # the deterministic part: z_mean
        return [np.asarray(model(x)[0])]
    out = model(x)
    values = out.values() if isinstance(out, dict) else (out if isinstance(out, (list, tuple)) else [out])
    return [np.asarray(v) for v in values]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_weights_file_reproduces_outputs(name, tmp_path):
    build = M.BUILDERS[name]
    keras.utils.set_random_seed(0)
    first = build(**SMALL[name])
    path = tmp_path / f"{name}.weights.h5"
    first.save_weights(path)
    keras.utils.set_random_seed(1)
    again = build(**{**SMALL[name], "weights": path})
    for a, b in zip(_outputs(first, name), _outputs(again, name)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    keras.backend.clear_session()


def test_keras_file_weights_are_taken(tmp_path):
    model = M.dense_net(**SMALL["dense_net"])
    model.save(tmp_path / "dense.keras")
    again = M.dense_net(**SMALL["dense_net"], weights=tmp_path / "dense.keras")
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_backbone_weights_file_is_accepted_by_pretrained_builders(tmp_path):
    model = M.finetune_model(**SMALL["finetune_model"])
    path = tmp_path / "backbone.weights.h5"
    M.finetune.base_of(model).save_weights(path)
    again = M.finetune_model(**{**SMALL["finetune_model"], "weights": path})
    for a, b in zip(M.finetune.base_of(model).get_weights(), M.finetune.base_of(again).get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_weights_name_the_argument(tmp_path):
    small = {k: v for k, v in SMALL["dense_net"].items()}
    with pytest.raises(ValueError, match=r"dense_net: weights: file .*missing.weights.h5 not found"):
        M.dense_net(**small, weights=tmp_path / "missing.weights.h5")
    with pytest.raises(ValueError, match=r"dense_net: weights='imagenet'.*no ImageNet weights"):
        M.dense_net(**small, weights="imagenet")
    with pytest.raises(ValueError, match=r"weights=.*\.txt: expected a file ending in"):
        (tmp_path / "w.txt").write_text("x")
        M.dense_net(**small, weights=tmp_path / "w.txt")
    other = tmp_path / "other.weights.h5"
    M.dense_net(**{**small, "units": (5, 4, 4)}).save_weights(other)
    model_before = M.dense_net(**small)
    with pytest.raises(ValueError, match=r"dense_net: weights=.*other.weights.h5 does not match the model: expected"):
        M.dense_net(**small, weights=other)
    assert model_before.count_params() == M.dense_net(**small).count_params()


def test_old_positional_calls_give_the_new_convention():
    with pytest.raises(TypeError, match=r"dense_net: input_shape must be a shape like \(32, 32, 1\), got 3; "
                                        r"the task arguments \(n_classes\) are keyword-only"):
        M.dense_net(3)
    with pytest.raises(TypeError, match=r"finetune_model: input_shape must be a shape like \(299, 299, 3\), got 73.*"
                                        r"finetune_model\(n_classes=73\)"):
        M.finetune_model(73)
    with pytest.raises(TypeError, match=r"multitask_cnn: input_shape .* got \{'a': 2\}.*tasks"):
        M.multitask_cnn({"a": 2})
    with pytest.raises(TypeError, match="missing a required argument|missing 1 required keyword-only"):
        M.dense_net((8, 8, 1))
    with pytest.raises(ValueError, match=r"own_cnn: input_shape must be 3 positive sizes"):
        M.own_cnn((8, 8), n_classes=2)


def test_input_shape_takes_numpy_sizes_and_none():
    assert M.dense_net(tuple(np.array([8, 8, 1])), n_classes=2).input_shape == (None, 8, 8, 1)
    assert M.light_resnet([None, None, 3], widths=(2, 2, 2, 2)).input_shape == (None, None, None, 3)
