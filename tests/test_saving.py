"""``keras.models.load_model`` after ``import kerasmt`` alone, in a fresh process, for a tiny model of
every builder, compiled as its study compiles it (losses and metrics are saved with the model)."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import kerasmt
from kerasmt import saving

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["kerasmt.augment", "kerasmt.losses", "kerasmt.losses_segmentation", "kerasmt.metrics", "kerasmt.models",
           "kerasmt.models.maskrcnn", "kerasmt.modelinfo"]


def _env() -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    return env


def test_table_lists_every_registered_kerasmt_class():
    for module in MODULES:
        importlib.import_module(module)
    registered = {name: obj for name, obj in keras.saving.get_custom_objects().items() if name.startswith("kerasmt")}
    real = {name: obj.__module__ for name, obj in registered.items() if not isinstance(obj, saving.LazyCustomObject)}
    assert real == saving.CUSTOM_OBJECTS


def test_import_kerasmt_does_not_import_keras_or_tensorflow():
    code = "import sys, kerasmt; print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_placeholders_appear_when_keras_is_imported_later_and_name_the_class():
    code = ("import kerasmt, keras; o = keras.saving.get_custom_objects()['kerasmt.maskrcnn>DetectionLayer'];"
            "import sys; print(type(o).__name__, 'kerasmt.models.maskrcnn.layers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["LazyCustomObject", "False"]


def _tiny_models() -> dict[str, keras.Model]:
    from kerasmt import models as M
    from kerasmt.models import finetune, maskrcnn, vgg
    from kerasmt.modelinfo import raw_image_model, task_spec
    from kerasmt.training import compile_classifier

    fair = {"gender": 2, "age": 9}
    attr = {"gender": 2, "luggage": 2}
    small = (16, 16, 3)
    mrcnn_cfg = maskrcnn.MaskRCNNConfig(
        backbone="light", image_size=64, num_classes=3, light_widths=(8, 8, 8, 8), rpn_anchor_scales=(4, 8, 16, 32, 64),
        top_down_pyramid_size=8, rpn_channels=8, pre_nms_limit=100, post_nms_rois_training=16,
        post_nms_rois_inference=8, train_rois_per_image=8, fpn_classif_fc_layers_size=8, mask_head_channels=8,
        mask_pool_size=7, mask_shape=(14, 14), mini_mask_shape=(28, 28), max_gt_instances=4,
        detection_max_instances=3, images_per_gpu=1)
    resnet = M.simple_resnet_v2((32, 16, 3), tasks=attr, blocks_per_stage=1)
    vae = M.build_vae(seed=0)
    vae.compile(optimizer="adam")
    built = {
        "dense_net": compile_classifier(M.dense_net(n_classes=2, units=(8, 8, 8), task="gender")),
        "small_cnn": compile_classifier(M.small_cnn(n_classes=7, filters=4, dense_units=8, task="race")),
        "own_cnn": compile_classifier(M.own_cnn(n_classes=9, filters=(4, 4, 4), dense_units=(8, 8), task="age")),
        "multitask_cnn": compile_classifier(M.multitask_cnn(tasks=fair, filters=(4, 4, 4), head_units=(8,))),
        "vae": vae,
        "vae_encoder": M.build_encoder(filters=(4, 4, 4), dense_units=8),
        "vae_decoder": M.build_decoder(),
        "simple_resnet_v2": M.compile_joint(resnet),
        "simple_resnet_v2_mask": M.compile_joint(M.add_mask_decoder(resnet, n_classes=3, filters=(4, 4, 4))),
        "model_a": vgg.compile_age_gender(M.model_a((32, 32, 3), n_blocks=2, n_dense=1, units=8, base_filters=4)),
        "model_a_cross_stitch": vgg.compile_age_gender(
            M.model_a_cross_stitch((32, 32, 3), n_blocks=2, n_dense=1, units=8, base_filters=4)),
        "transfer_model": vgg.compile_age_gender(M.transfer_model((32, 32, 3), None, backbone="MobileNetV2", units=8)),
        "finetune_model": finetune.compile_report(
            M.finetune_model((32, 32, 3), None, n_classes=5, backbone="MobileNetV2", units=8)),
        "scratch_model": finetune.compile_report(M.scratch_model((32, 32, 3), architecture="SimpleNet", n_classes=5)),
        "simplenet": finetune.compile_report(M.simplenet((32, 32, 3), n_classes=5)),
        "light_resnet": M.light_resnet(small, widths=(4, 4, 4, 4)),
        "refinenet": M.refinenet((32, 32, 3), None, n_classes=3, encoder="light", features=8, light_widths=(4, 4, 4, 4)),
        "multilabel_classifier": M.compile_multilabel(
            M.multilabel_classifier((32, 32, 3), None, n_classes=4, backbone="light")),
        "mask_rcnn_inference": maskrcnn.build_maskrcnn(config=mrcnn_cfg).inference_model,
        "raw_image_model": raw_image_model(M.multitask_cnn(tasks=fair, filters=(4, 4, 4), head_units=(8,)),
                                           [task_spec("gender", "classes", ["m", "f"])], study="test"),
    }
    return built


LOAD = """
import json, sys
import kerasmt, keras, numpy as np
model = keras.models.load_model(sys.argv[1])
x = np.load(sys.argv[2])
y = model(x, training=False)
flat = keras.tree.flatten(y)
print(json.dumps([float(np.asarray(v, dtype="float64").sum()) for v in flat]))
"""


@pytest.mark.slow
def test_every_builder_round_trips_in_a_fresh_process(tmp_path):
    keras.utils.set_random_seed(0)
    models = _tiny_models()
    jobs = {}
    for name, model in models.items():
        inputs = getattr(model, "inputs", None) or []  # the VAE is a subclassed model: no symbolic inputs
        shape = [d if d is not None else 32 for d in inputs[0].shape[1:]] if inputs else [32, 32, 1]
        dtype = "uint8" if inputs and inputs[0].dtype == "uint8" else "float32"
        x = (np.random.default_rng(0).random((1, *shape)) * (255 if dtype == "uint8" else 1)).astype(dtype)
        expected = [float(np.asarray(v, dtype="float64").sum()) for v in keras.tree.flatten(model(x, training=False))]
        path = tmp_path / f"{name}.keras"
        model.save(path)
        np.save(tmp_path / f"{name}.npy", x)
        jobs[name] = (expected, [sys.executable, "-c", LOAD, str(path), str(tmp_path / f"{name}.npy")])
    failures = {}
    names = list(jobs)
    for start in range(0, len(names), 2):  # two fresh processes at a time
        running = {n: subprocess.Popen(jobs[n][1], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True) for n in names[start:start + 2]}
        for n, proc in running.items():
            out, err = proc.communicate(timeout=300)
            if proc.returncode != 0:
                failures[n] = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
                continue
            got = json.loads(out.strip().splitlines()[-1])
            if n == "vae_encoder":  # (z_mean, z_log_var, z): z is a random sample
                got, jobs[n] = got[:2], (jobs[n][0][:2], jobs[n][1])
            if not np.allclose(got, jobs[n][0], rtol=1e-4, atol=1e-4):
                failures[n] = f"outputs differ after loading: {got} vs {jobs[n][0]}"
    assert not failures, json.dumps(failures, indent=1)
    assert len(jobs) == 20
