"""kerasmt.studies.fashion with Mask R-CNN at smoke size: configuration from the data, training
and scoring with part 1's metrics, the results-table row, the 512 px timing model."""
from __future__ import annotations

import json
import warnings

import keras
import numpy as np
import pytest

from kerasmt.models.maskrcnn import predictor
from kerasmt.studies import fashion as study

SIZE = 64


@pytest.fixture(scope="module")
def data():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return study.load_data(None, image_size=SIZE, n_test=6, n_synthetic=24, seed=2)


def test_maskrcnn_config_follows_the_report_scaled_to_the_image(data):
    cfg = study.maskrcnn_config(data, "light", batch_size=4)
    assert cfg.num_classes == 12 and cfg.image_size == SIZE and cfg.batch_size == 4
    assert cfg.rpn_anchor_scales == pytest.approx((2, 4, 8, 16, 32))  # 16..256 at 512 px
    assert cfg.detection_max_instances == 10 and cfg.detection_min_confidence == 0.7
    assert cfg.top_down_pyramid_size == study.CPU_MASKRCNN["top_down_pyramid_size"]
    full = study.maskrcnn_config(data, "resnet101")
    assert full.top_down_pyramid_size == 256 and full.train_rois_per_image == 200 and not full.train_bn
    table = study.maskrcnn_config_table(cfg)
    assert not table.loc["TOP_DOWN_PYRAMID_SIZE", "same"] and table.loc["POOL_SIZE", "same"]


def test_train_maskrcnn_scores_like_refinenet_and_saves_the_inference_model(data, tmp_path):
    res = study.train_maskrcnn(data, tmp_path, backbone="light", weights=None, epochs_heads=0, epochs_all=1,
                               optimizer="adam", lr_all=2e-3, lr_all_end=1e-3, batch_size=4, validate=False, seed=0)
    assert res.kind == "instance" and len(res.instances) == len(data.test)
    assert all(p.masks.shape[1:] == (SIZE, SIZE) and len(p) <= 10 for p in res.instances)
    for key in ("emr", "oa", "jss", "map50", "f1"):
        assert 0.0 <= getattr(res, key) <= 1.0
    assert res.y_pred.shape == data.test.multi_hot.shape
    assert res.history["stage"].tolist() == ["2: all"] and np.isfinite(res.history["loss"]).all()
    assert res.checkpoint.name == "mask_rcnn_light.keras" and res.checkpoint.is_file()
    loaded = keras.models.load_model(res.checkpoint)
    out = loaded(data.test.x[:1].astype(np.float32))
    assert out["detections"].shape == (1, 10, 6) and out["masks"].shape == (1, 10, *res.model.config.mask_shape)

    timing_model = study.maskrcnn_timing_model(res.model, 128, max_instances=10)
    assert timing_model.inputs[0].shape[1:] == (128, 128, 3)
    images = study.timing_images(data, 1, 128)
    t = study.time_inference(predictor(timing_model), images)
    assert t["size"] == 128 and t["seconds_per_image"] > 0
    res.seconds_per_image = t["seconds_per_image"]

    table = study.results_table([res])
    row = table.loc["Mask R-CNN light (ours) *"]
    assert row[("Table 9: test set", "mAP")] == pytest.approx(round(res.map50, 2))
    assert not np.isnan(row[("Table 10: combination", "TTO")])
    metrics = study.metrics_summary({"mask_rcnn": res}, data, {"mask_rcnn": t})
    entry = json.loads(json.dumps(metrics["models"]["mask_rcnn"], default=float))
    assert set(entry) >= {"emr", "oa", "jss", "map50", "f1", "seconds_per_image", "tto"}
    assert "mask_rcnn.map50" in metrics["summary"]
    fig = study.plot_instance_predictions(res, data, [0, 1])
    assert len(fig.axes) == 6
    assert len(study.plot_maskrcnn_history(res.history).axes) == 6


def test_a_refinenet_checkpoint_initialises_the_light_backbone_by_name(tmp_path):
    from kerasmt.models import maskrcnn as mr
    from kerasmt.models.refinenet import refinenet

    assert study.init_name_map("encoder_s2b1_conv1") == "backbone_s2b1_conv1"
    assert study.init_name_map("res2a_branch2a") == "conv2_block1_1_conv" and study.init_name_map("fpn_p2") == "fpn_p2"
    rn = refinenet((SIZE, SIZE, 3), None, n_classes=11, encoder="light", features=8)
    path = tmp_path / "refinenet_light.keras"
    rn.save(path)
    model = mr.build_maskrcnn(config=mr.MaskRCNNConfig(backbone="light", image_size=SIZE))
    report = mr.load_weights_by_name(model, path, name_map=study.init_name_map)
    backbone = [layer.name for layer in model.backbone.layers if layer.weights]
    assert sorted(report["loaded"]) == sorted(backbone)
    np.testing.assert_array_equal(model.backbone.get_layer("backbone_s5b1_conv2").get_weights()[0],
                                  rn.get_layer("encoder").get_layer("encoder_s5b1_conv2").get_weights()[0])
