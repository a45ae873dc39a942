"""Raw-image models saved by the studies' ``save_predictor`` functions, loaded in a fresh process
after ``import kerasmt`` and applied to generated image files of odd sizes (``kerasmt.predict`` and
``kerasmt predict``)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from kerasmt import modelinfo, pipeline
from kerasmt.datasets import fairface as ff
from kerasmt.datasets import person_attributes as pa
from kerasmt.datasets import utkface as utk
from kerasmt.models import add_mask_decoder, model_a, multitask_cnn, simple_resnet_v2, simplenet
from kerasmt.prediction import PredictError, image_files, predict, read_image

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    return env


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Five images of odd sizes and formats: RGB PNG, JPEG, grey PNG, RGBA PNG, EXIF-rotated JPEG."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(folder / "a_rgb.png")
    Image.fromarray(rng.integers(0, 255, (120, 71, 3), dtype=np.uint8)).save(folder / "b.jpg", quality=90)
    Image.fromarray(rng.integers(0, 255, (29, 31), dtype=np.uint8)).save(folder / "c_grey.png")
    Image.fromarray(rng.integers(0, 255, (40, 90, 4), dtype=np.uint8), "RGBA").save(folder / "d_rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)).save(folder / "e_rot.jpg", exif=exif)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """One tiny raw-image model per vision study, saved by that study's own save function."""
    from kerasmt.studies import attribute_mtl, beauty, fairface, utkface

    keras.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("run")
    paths = {}
    ff_model = multitask_cnn(tasks={t: ff.N_CLASSES[t] for t in ff.TASKS}, filters=(4, 4, 4), head_units=(8,))
    paths["fairface"] = fairface.save_predictor(ff_model, list(ff.TASKS), out)
    utk_model = model_a((32, 32, 3), n_blocks=2, n_dense=1, units=8, base_filters=4, age_bias=30.0)
    paths["utkface"] = utkface.save_predictor(utk_model, out, "model_a")
    attr = simple_resnet_v2((40, 24, 3), tasks={t: pa.N_CLASSES[t] for t in pa.TASKS}, blocks_per_stage=1)
    attr = add_mask_decoder(attr, n_classes=len(pa.MASK_CLASSES), filters=(4, 4, 4))
    paths["attribute_mtl"] = attribute_mtl.save_predictor(attr, SimpleNamespace(mask_classes=pa.MASK_CLASSES), out,
                                                          "mtl_seg")
    names = [f"class_{i}" for i in range(7)]
    beauty_model = simplenet((32, 32, 3), n_classes=7)
    paths["beauty"] = beauty.save_predictor(beauty_model, SimpleNamespace(class_names=names),
                                            out / "models" / "tl.keras")
    return paths


def test_paths_follow_the_checkpoint_names(saved):
    assert {k: p.name for k, p in saved.items()} == {
        "fairface": "multitask_cnn.predict.keras", "utkface": "model_a.predict.keras",
        "attribute_mtl": "mtl_seg.predict.keras", "beauty": "tl.predict.keras"}


PREDICT = """
import json, sys
import kerasmt
table = kerasmt.predict(sys.argv[1], sys.argv[2], out_dir=sys.argv[3])
print(table.to_json(orient="records"))
"""


@pytest.mark.slow
def test_fresh_process_predicts_one_row_per_photo(saved, photos, tmp_path):
    """Each study's model: loaded after ``import kerasmt`` only, one row per image with its tasks."""
    tables = {}
    for study, path in saved.items():
        run = subprocess.run([sys.executable, "-c", PREDICT, str(path), str(photos), str(tmp_path / study)],
                             env=_env(), capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        tables[study] = pd.DataFrame(json.loads(run.stdout.strip().splitlines()[-1]))
    for study, table in tables.items():
        assert len(table) == 5, study
        assert [Path(p).name for p in table["image"]] == ["a_rgb.png", "b.jpg", "c_grey.png", "d_rgba.png", "e_rot.jpg"]
        assert table.loc[4, ["height", "width"]].tolist() == [50, 30]  # EXIF rotation applied
    fair = tables["fairface"]
    for task in ff.TASKS:
        assert set(fair[task]) <= set(ff.LABELS[task])
        assert fair[f"{task}_prob"].between(1 / ff.N_CLASSES[task] - 1e-6, 1).all()
    utk_table = tables["utkface"]
    assert utk_table["age"].dtype.kind == "f" and set(utk_table["gender"]) <= set(utk.LABELS["gender"])
    assert utk_table["gender_prob"].between(0.5, 1).all()
    attr = tables["attribute_mtl"]
    for task in pa.TASKS:
        assert set(attr[task]) <= set(pa.LABELS[task])
    for row in attr.itertuples():
        mask = np.asarray(Image.open(row.mask_png))
        assert mask.shape == (row.height, row.width)  # the photo's resolution, letterbox undone
        assert mask.max() < len(pa.MASK_CLASSES)
    beauty = tables["beauty"]
    assert [c for c in beauty.columns if c.startswith("class_top")] == [
        f"class_top{i}{s}" for i in range(1, 6) for s in ("", "_prob")]
    assert (beauty["class_top1_prob"] >= beauty["class_top2_prob"]).all()


def test_raw_model_matches_the_training_pipeline(saved, tmp_path):
    """The model's own preprocessing gives the images the study trained on (pipeline.decode_images:
    TensorFlow's or PIL's decoder and resize) up to resampling differences, on a smooth photo-like
    image (noise would magnify the two resamplers' differences)."""
    yy, xx = np.mgrid[0:150, 0:110]
    smooth = np.stack([yy * 1.6, xx * 2.2, 128 + 80 * np.sin(xx / 9.0) * np.cos(yy / 13.0)], -1).clip(0, 255)
    Image.fromarray(smooth.astype(np.uint8)).save(tmp_path / "smooth.jpg", quality=95)
    # JPEGs: the pipeline decodes and resizes them with TensorFlow. The attribute dataset ships PNGs,
    # which go through PIL (kerasmt.images), whose letterbox is centred on the floored inner size and
    # can sit one row off tf.image.resize_with_pad (the geometry of the masks and of this layer)
    for study, file, channels, size, resize in (("fairface", "smooth.jpg", 1, (32, 32), "stretch"),
                                                ("attribute_mtl", "smooth.jpg", 3, (40, 24), "pad")):
        model = keras.models.load_model(saved[study], compile=False)
        layer = model.get_layer("raw_image_preprocess")
        ours = layer(read_image(tmp_path / file)[None]).numpy()[0] * 255.0
        expected = pipeline.decode_images([str(tmp_path / file)], size, channels, resize)[0].astype(np.float32)
        error = np.abs(ours - expected)
        assert error.max() <= 3.0 and error.mean() < 0.75, (study, error.max(), error.mean())


def test_info_round_trips_and_predict_takes_arrays(saved):
    model = keras.models.load_model(saved["utkface"], compile=False)
    info = modelinfo.model_info(model)
    assert info["study"] == "utkface" and [t["name"] for t in info["tasks"]] == ["age", "gender"]
    assert info["tasks"][1]["labels"] == utk.LABELS["gender"]
    out = model.predict(np.zeros((2, 61, 47, 3), np.uint8), verbose=0)
    assert set(out) == {"age", "gender"} and out["age"].shape == (2, 1)
    table = predict(model, [np.full((10, 300, 3), 200, np.uint8), np.zeros((77, 5, 3), np.uint8)])
    assert table["image"].tolist() == ["image_0", "image_1"] and table["width"].tolist() == [300, 5]


def test_clear_errors(saved, photos, tmp_path):
    with pytest.raises(PredictError, match="no such file"):
        image_files([photos / "missing.jpg"])
    with pytest.raises(PredictError, match="no image files"):
        image_files([tmp_path])
    with pytest.raises(PredictError, match="notes.txt"):
        read_image(photos / "notes.txt")
    plain = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten()])
    with pytest.raises(PredictError, match="predict.keras"):
        predict(plain, [np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(PredictError, match="model file not found"):
        predict(tmp_path / "none.keras", photos)


@pytest.mark.slow
def test_cli_predict_writes_csv_and_masks(saved, photos, tmp_path):
    from tests.test_cli import console_script

    cmd, _ = console_script()
    run = subprocess.run([*cmd, "predict", str(saved["attribute_mtl"]), str(photos / "b.jpg"),
                          str(photos / "c_grey.png"), "--out", str(tmp_path / "pred")],
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_csv(tmp_path / "pred" / "predictions.csv")
    assert len(table) == 2 and "torso_colour" in run.stdout
    assert sorted(p.name for p in (tmp_path / "pred" / "masks").iterdir()) == ["b_mask.png", "c_grey_mask.png"]
    bad = subprocess.run([*cmd, "predict", str(saved["beauty"]), str(tmp_path / "nothing")], env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "no such file or folder" in bad.stderr


def test_mask_rcnn_models_go_through_maskrcnn_detect(tmp_path):
    """A Mask R-CNN inference model: instances via kerasmt.models.maskrcnn.detect (JSON + overlay),
    or, where this kerasmt has no detect yet, an error that says so."""
    from kerasmt.models import maskrcnn

    cfg = maskrcnn.MaskRCNNConfig(
        backbone="light", image_size=64, num_classes=3, light_widths=(8, 8, 8, 8), rpn_anchor_scales=(4, 8, 16, 32, 64),
        top_down_pyramid_size=8, rpn_channels=8, pre_nms_limit=100, post_nms_rois_training=16,
        post_nms_rois_inference=8, train_rois_per_image=8, fpn_classif_fc_layers_size=8, mask_head_channels=8,
        mask_pool_size=7, mask_shape=(14, 14), mini_mask_shape=(28, 28), max_gt_instances=4,
        detection_max_instances=3, images_per_gpu=1, detection_min_confidence=0.0)
    keras.utils.set_random_seed(0)
    model = maskrcnn.build_maskrcnn(config=cfg).inference_model
    photo = np.random.default_rng(0).integers(0, 255, (50, 90, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "street.png")
    if not hasattr(maskrcnn, "detect"):
        with pytest.raises(PredictError, match="Mask R-CNN.*detect"):
            predict(model, tmp_path / "street.png", out_dir=tmp_path / "out")
        return
    table = predict(model, tmp_path / "street.png", out_dir=tmp_path / "out", class_names=["shirt", "shoe"])
    assert table.loc[0, ["height", "width"]].tolist() == [50, 90]
    found = json.loads((tmp_path / "out" / "street_instances.json").read_text())
    assert len(found) == table.loc[0, "instances"]
    for inst in found:
        assert inst["class_name"] in ("shirt", "shoe") and inst["mask_rle"]["size"] == [50, 90]
    assert np.asarray(Image.open(tmp_path / "out" / "street_overlay.png")).shape == (50, 90, 3)
