"""Mask R-CNN in and out: Matterport's Keras 2 COCO weights layout (nested ``rpn_model``), the
preprocessing that follows the weights' origin, ``detect`` on photos of any size, the overlay,
the bfloat16 inference model, and a real Fashionpedia photo (``KERASMT_REAL_SAMPLES``)."""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import _maskrcnn_tiny as _tiny
from kerasmt.models import maskrcnn as mr
from kerasmt.models.maskrcnn.fast import fast_inference_model
from kerasmt.models.maskrcnn.weights import CLASS_SPECIFIC, matterport_to_keras_resnet

SIZE = _tiny.SIZE
NAMES = ("top", "pants", "shoe")


def tiny_config(**kw) -> mr.MaskRCNNConfig:
    return _tiny.tiny_config(**{"class_names": NAMES, **kw})


# ------------------------------------------------------------------ Matterport's Keras 2 layout
def _layers(model):
    from kerasmt.models.maskrcnn.weights import _layers_with_weights

    return list(_layers_with_weights(model))


def write_matterport_h5(model: mr.MaskRCNN, path, rename=lambda n: n, drop: tuple[str, ...] = ()) -> list[str]:
    """``model``'s weights as Matterport's ``model.keras_model.save_weights`` (Keras 2.1) wrote
    ``mask_rcnn_coco.h5``: root attributes ``layer_names`` (every top-level layer, weightless ones
    included), ``backend``, ``keras_version``; one group per layer with ``weight_names``
    (``layer/kernel:0``) and datasets at those paths; the RPN as ONE group ``rpn_model`` whose
    weight names are its inner layers' (``rpn_conv_shared/kernel:0``)."""
    rpn = {layer.name for layer in _layers(model.rpn)}
    top = ["input_image", "zero_padding2d_1"]
    groups: dict[str, list[tuple[str, np.ndarray]]] = {"input_image": [], "zero_padding2d_1": []}
    for layer in _layers(model.inference_model):
        if layer.name in rpn:
            continue
        name = rename(layer.name)
        top.append(name)
        groups[name] = [(f"{name}/{w.path.split('/')[-1]}:0", w.numpy()) for w in layer.weights]
    top.insert(top.index("fpn_p5") + 1 if "fpn_p5" in top else len(top), "rpn_model")
    groups["rpn_model"] = [(f"{layer.name}/{w.path.split('/')[-1]}:0", w.numpy())
                           for layer in _layers(model.rpn) for w in layer.weights]
    top = [n for n in top if n not in drop]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode("utf8") for n in top], dtype="S")  # as Keras 2's h5 helpers
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.6"
        for name in top:
            g = f.create_group(name)
            g.attrs["weight_names"] = (np.array([n.encode("utf8") for n, _ in groups[name]], dtype="S")
                                       if groups[name] else [])
            for n, value in groups[name]:
                g.create_dataset(n, data=value)
    return top


def test_a_matterport_layout_h5_loads_the_nested_rpn_and_reports_every_layer(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    coco = mr.build_maskrcnn(config=tiny_config(num_classes=81, class_names=(), preprocessing="matterport"))
    path = tmp_path / "mask_rcnn_coco.h5"
    top = write_matterport_h5(coco, path)
    with h5py.File(path, "r") as f:  # the layout as Keras 2 wrote it
        assert "rpn_model" in [n.decode() for n in f.attrs["layer_names"]]
        assert f["rpn_model"].attrs["weight_names"][0] == b"rpn_conv_shared/kernel:0"
        assert "rpn_conv_shared" not in f
    model = mr.build_maskrcnn(config=tiny_config(preprocessing="matterport"))
    report = mr.load_coco_weights(model, path)
    print(mr.format_load_report(report))
    rows, summary = mr.load_report_table(report)
    assert {"rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred"} <= set(report["loaded"])
    assert set(rows.loc[rows.part == "rpn", "status"]) == {"loaded"}
    assert set(rows.loc[rows.part.isin(["backbone", "fpn"]), "status"]) == {"loaded"}
    assert rows.set_index("layer").loc["rpn_conv_shared", "file"] == "rpn_model/rpn_conv_shared"
    skipped = rows[rows.status == "skipped"].set_index("layer")
    assert set(skipped.index) == set(CLASS_SPECIFIC)
    assert all("class count" in r for r in skipped.reason)
    assert summary.loc["rpn", "loaded"] == 3 and "input_image" not in report["unused"]
    for name in ("rpn_conv_shared", "rpn_bbox_pred"):
        for a, b in zip(coco.rpn.get_layer(name).get_weights(), model.rpn.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    out = capsys.readouterr().out
    assert "class count" in out and "rpn" in out and len(top) > 20

    # the old reader's failure: a file without the RPN (or any backbone / FPN layer) is refused
    no_rpn = tmp_path / "no_rpn.h5"
    write_matterport_h5(coco, no_rpn, drop=("rpn_model",))
    with pytest.raises(ValueError, match="rpn_conv_shared"):
        mr.load_coco_weights(mr.build_maskrcnn(config=tiny_config(preprocessing="matterport")), no_rpn)
    no_fpn = tmp_path / "no_fpn.h5"
    write_matterport_h5(coco, no_fpn, drop=("fpn_c3p3",))
    with pytest.raises(ValueError, match="fpn_c3p3"):
        mr.load_coco_weights(mr.build_maskrcnn(config=tiny_config(preprocessing="matterport")), no_fpn)
    assert mr.weights_origin(path) == "matterport"


def test_coco_weights_need_matterport_preprocessing():
    model = mr.build_maskrcnn(config=tiny_config())  # the light backbone: "auto" -> RGB minus the mean
    with pytest.raises(ValueError, match="preprocessing='matterport'"):
        mr.load_coco_weights(model, "unused.h5")


def test_matterport_resnet101_names_cover_the_keras_resnet101():
    """Every weighted layer of keras.applications' ResNet101 has a Matterport name (its
    ``resnet_graph``: stage 4 blocks ``a`` then ``chr(98 + i)`` for 22 identity blocks)."""
    names = ["conv1", "bn_conv1"]
    for stage, blocks in ((2, 3), (3, 4), (4, 23), (5, 3)):
        for b in range(blocks):
            letter = chr(97 + b)
            for branch in (["1"] if b == 0 else []) + ["2a", "2b", "2c"]:
                names += [f"res{stage}{letter}_branch{branch}", f"bn{stage}{letter}_branch{branch}"]
    base = keras.applications.ResNet101(include_top=False, weights=None, input_shape=(64, 64, 3))
    weighted = {layer.name for layer in base.layers if layer.weights}
    mapped = {matterport_to_keras_resnet(n) for n in names}
    assert mapped == weighted
    assert matterport_to_keras_resnet("res4w_branch2c") == "conv4_block23_3_conv"


# ------------------------------------------------------------------ preprocessing by origin
@pytest.mark.parametrize("origin, bgr", [("matterport", False), ("caffe", True), ("rgb", False), ("auto", False)])
def test_preprocessing_follows_the_weights_origin(origin, bgr):
    model = mr.build_maskrcnn(config=tiny_config(preprocessing=origin))
    assert model.normalize.bgr is bgr
    pixel = np.array([[[[200.0, 100.0, 50.0]]]], np.float32)
    out = keras.ops.convert_to_numpy(model.normalize(pixel))[0, 0, 0]
    rgb = pixel[0, 0, 0] - np.array(model.config.mean_pixel, np.float32)
    np.testing.assert_allclose(out, rgb[::-1] if bgr else rgb, rtol=1e-6)
    assert mr.MaskRCNNConfig(backbone="resnet101").resolved_preprocessing() == "caffe"
    assert mr.MaskRCNNConfig(backbone="resnet101", preprocessing="matterport").bgr is False


def test_config_rejects_unknown_preprocessing_and_wrong_class_names():
    with pytest.raises(ValueError, match="preprocessing"):
        tiny_config(preprocessing="bgr")
    with pytest.raises(ValueError, match="class_names"):
        tiny_config(class_names=("a", "b"))


# ------------------------------------------------------------------ detect
def force_detections(model: keras.Model, class_id: int = 2) -> None:
    """Every RoI becomes class ``class_id`` (1-based) with score ~1, boxes = RoIs, masks all ones."""
    inference = getattr(model, "inference_model", model)
    cls = inference.get_layer("mrcnn_classifier")
    logits = cls.get_layer("mrcnn_class_logits")
    k, b = logits.get_weights()
    b = np.full_like(b, -20.0)
    b[class_id] = 20.0
    logits.set_weights([np.zeros_like(k), b])
    cls.get_layer("mrcnn_bbox_fc").set_weights([np.zeros_like(w) for w in cls.get_layer("mrcnn_bbox_fc").get_weights()])
    mask = inference.get_layer("mrcnn_mask_head").get_layer("mrcnn_mask")
    k, b = mask.get_weights()
    mask.set_weights([np.zeros_like(k), np.full_like(b, 10.0)])


def test_unmold_maps_letterbox_boxes_back_to_the_photo():
    from kerasmt.models.maskrcnn.detect import _unmold, letterbox

    photo = np.zeros((100, 200, 3), np.uint8)  # letterboxed into 64: 32 x 64 at top 16
    _, window = letterbox(photo, 64)
    assert window == (16, 0, 32, 64)
    # a box over letterbox rows 16..31 (the photo's top half), columns 0..31 (its left half)
    det = np.array([[16 / 63, 0.0, 31 / 63, 31 / 63, 3, 0.9], [0, 0, 0, 0, 0, 0]], np.float32)
    masks = np.ones((2, 14, 14), np.float32)
    [inst] = _unmold((100, 200), window, 64, det, masks, list(NAMES), 0.5, None, None)
    assert inst["class_id"] == 2 and inst["class_name"] == "shoe" and inst["mask"].shape == (100, 200)
    np.testing.assert_allclose(inst["box"], [0, 0, 100, 50], atol=0.01)
    ys, xs = np.nonzero(inst["mask"])
    assert (ys.min(), xs.min()) == (0, 0) and abs(ys.max() - 49) <= 1 and abs(xs.max() - 99) <= 1


def test_limit_per_class_keeps_the_two_best_of_each_class():
    found = [{"class_id": c, "score": s} for c, s in [(1, .9), (1, .8), (1, .95), (2, .7), (1, .5), (2, .6), (2, .99)]]
    kept = mr.limit_per_class(found, mr.REPORT_MAX_PER_CLASS)
    assert [(d["class_id"], d["score"]) for d in kept] == [(2, .99), (1, .95), (1, .9), (2, .7)]
    assert mr.limit_per_class(found, None) == found
    with pytest.raises(ValueError, match="max_per_class"):
        mr.limit_per_class(found, 0)


@pytest.fixture(scope="module")
def forced(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = mr.build_maskrcnn(config=tiny_config(detection_min_confidence=0.7))
    force_detections(model)
    path = tmp_path_factory.mktemp("m") / "mask_rcnn.keras"
    model.inference_model.save(path)
    return model, path


def test_detect_returns_instances_at_each_photos_resolution_and_survives_a_keras_round_trip(forced):
    model, path = forced
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (50, 90, 3), dtype=np.uint8), rng.integers(0, 256, (120, 40), dtype=np.uint8)]
    found = mr.detect(model, photos)
    assert len(found) == 2
    for photo, instances in zip(photos, found):
        assert 1 <= len(instances) <= model.config.detection_max_instances
        for inst in instances:
            assert set(inst) == {"class_id", "class_name", "score", "box", "mask"}
            assert inst["class_id"] == 1 and inst["class_name"] == "pants" and inst["score"] > 0.99
            assert inst["mask"].shape == photo.shape[:2] and inst["mask"].dtype == bool
            x0, y0, x1, y1 = inst["box"]
            assert 0 <= x0 < x1 <= photo.shape[1] and 0 <= y0 < y1 <= photo.shape[0]
            ys, xs = np.nonzero(inst["mask"])  # an all-ones mask fills its box
            assert abs(xs.min() - x0) <= 1.5 and abs(xs.max() + 1 - x1) <= 1.5
            assert abs(ys.min() - y0) <= 1.5 and abs(ys.max() + 1 - y1) <= 1.5
    loaded = keras.models.load_model(path)
    assert mr.model_config(loaded).class_names == NAMES
    again = mr.detect(loaded, photos)
    assert [[(d["class_id"], round(d["score"], 4)) for d in im] for im in again] == \
        [[(d["class_id"], round(d["score"], 4)) for d in im] for im in found]
    for a, b in zip(again[0], found[0]):
        np.testing.assert_allclose(a["box"], b["box"], atol=1e-3)
        assert (a["mask"] == b["mask"]).mean() > 0.999
    renamed = mr.detect(loaded, photos[:1], class_names=["a", "b", "c"], max_per_class=1)
    assert len(renamed[0]) == 1 and renamed[0][0]["class_name"] == "b"
    overlay = mr.draw_instances(photos[0], found[0])
    assert overlay.shape == photos[0].shape and overlay.dtype == np.uint8 and (overlay != photos[0]).any()


def test_detect_rejects_bad_photos_naming_the_index(forced):
    model, _ = forced
    with pytest.raises(ValueError, match=r"images\[1\]"):
        mr.detect(model, [np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10, 5), np.uint8)])
    with pytest.raises(ValueError, match="class_names"):
        mr.detect(model, [np.zeros((10, 10, 3), np.uint8)], class_names=["x"])
    with pytest.raises(ValueError, match="maskrcnn_config"):
        mr.model_config(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]))


def test_bfloat16_inference_model_computes_the_same_network(forced):
    model, _ = forced
    fast = fast_inference_model(model, "bfloat16")
    assert fast.get_layer("mrcnn_detection").compute_dtype == "float32"
    assert fast.get_layer("features").get_layer("fpn_p2").compute_dtype == "bfloat16"
    x = np.random.default_rng(1).uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)
    a, b = model.feature_model(x), fast.get_layer("features")(x)
    for key in ("rpn_class_logits", "rpn_bbox"):  # bfloat16 keeps ~3 significant digits
        u, v = np.asarray(a[key], np.float32), np.asarray(b[key], np.float32)
        assert np.abs(u - v).max() <= 0.03 * np.abs(u).max(), key
    assert np.abs(np.asarray(a["rpn_probs"]) - np.asarray(b["rpn_probs"], np.float32)).mean() < 0.01
    photo = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    [found] = mr.detect(fast, [photo])
    assert found and all(d["mask"].shape == (64, 64) and d["class_name"] == "pants" for d in found)
    with pytest.raises(ValueError, match="compute"):
        fast_inference_model(model, "float16")


def test_fast_model_folds_every_batchnorm_without_changing_the_network(forced):
    model, _ = forced
    rng = np.random.default_rng(3)
    for layer in model.inference_model._flatten_layers():  # non-trivial statistics to fold
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.2, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
    fast = fast_inference_model(model, "float32")
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in fast._flatten_layers())
    x = np.random.default_rng(1).uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)
    a, b = model.feature_model(x), fast.get_layer("features")(x)
    for u, v in zip([*a["p"], a["rpn_bbox"]], [*b["p"], b["rpn_bbox"]]):
        np.testing.assert_allclose(v, u, rtol=1e-3, atol=1e-4 * float(np.abs(u).max()))
    rois = keras.ops.convert_to_tensor(np.array([[[0.1, 0.1, 0.6, 0.5], [0.3, 0.2, 0.9, 0.9]]], np.float32))
    want = model.inference_model.get_layer("mrcnn_classifier")([rois, *a["p"]])[1]
    got = fast.get_layer("mrcnn_classifier")([rois, *b["p"]])[1]
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.skipif(not os.environ.get("KERASMT_REAL_SAMPLES"), reason="KERASMT_REAL_SAMPLES not set")
def test_detect_on_a_real_fashionpedia_photo(forced, capsys):
    from PIL import Image

    model, path = forced
    folder = Path(os.environ["KERASMT_REAL_SAMPLES"]) / "fashionpedia" / "train"
    photo_path = sorted(folder.glob("*.jpg"))[0]
    photo = np.asarray(Image.open(photo_path).convert("RGB"))
    [instances] = mr.detect(keras.models.load_model(path), [photo], max_per_class=mr.REPORT_MAX_PER_CLASS)
    print(f"{photo_path.name} {photo.shape}")
    for inst in instances:
        print({k: (v if k != "mask" else f"bool {v.shape}, {int(v.sum())} px") for k, v in inst.items()})
    assert 1 <= len(instances) <= 2
    assert all(inst["mask"].shape == photo.shape[:2] for inst in instances)
    assert mr.draw_instances(photo, instances).shape == photo.shape
