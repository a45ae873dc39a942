"""kerasmt.models.maskrcnn end to end at smoke size: input pipeline, training (overfitting one
batch, the two stages), inference output, ``.keras`` round trip, weights loaded by layer name."""
from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from _maskrcnn_tiny import SIZE, tiny_config
from kerasmt.models import maskrcnn as mr
from kerasmt.models.maskrcnn.weights import CLASS_SPECIFIC

COLORS = {0: (220, 30, 30), 1: (30, 200, 40), 2: (40, 60, 230)}


def tiny_data(n: int = 4, seed: int = 0):
    """Images with 1-3 filled rectangles, one colour per class, on a grey background."""
    rng = np.random.default_rng(seed)
    images = np.full((n, SIZE, SIZE, 3), 128, np.uint8)
    masks, labels = [], []
    for i in range(n):
        k = rng.integers(1, 4)
        ms, ls = [], []
        for j in range(k):
            h, w = rng.integers(10, 28, size=2)
            y, x = rng.integers(0, SIZE - h), (j * SIZE // 3 + rng.integers(0, 6)) % (SIZE - w)
            m = np.zeros((SIZE, SIZE), bool)
            m[y:y + h, x:x + w] = True
            c = int(rng.integers(0, 3))
            images[i][m] = COLORS[c]
            ms.append(m)
            ls.append(c)
        masks.append(np.stack(ms))
        labels.append(np.array(ls))
    return images, masks, labels


@pytest.fixture(scope="module")
def data():
    return tiny_data()


def test_pipeline_batches_and_flip_moves_boxes_with_the_image(data):
    images, masks, labels = data
    cfg = tiny_config()
    batch = next(iter(mr.make_dataset(images, masks, labels, cfg, batch_size=2, shuffle=False)))
    n_anchors = len(mr.config_anchors(cfg))
    assert batch["image"].shape == (2, SIZE, SIZE, 3) and batch["image"].dtype == tf.float32
    assert batch["gt_class_ids"].shape == (2, 4) and batch["gt_masks"].shape == (2, 4, 28, 28)
    assert batch["rpn_match"].shape == (2, n_anchors) and batch["rpn_bbox"].shape == (2, n_anchors, 4)
    np.testing.assert_array_equal(batch["gt_class_ids"][0].numpy()[: len(labels[0])], labels[0] + 1)
    assert (batch["rpn_match"].numpy() == 1).sum(axis=1).min() >= 1
    streamed = next(iter(mr.make_dataset_from(lambda i: (images[i], masks[i], labels[i]), len(images), cfg,
                                              batch_size=2, shuffle=False)))
    for key in batch:  # the same examples read on the fly
        np.testing.assert_array_equal(streamed[key].numpy(), batch[key].numpy())
    # one red box in the left part of the image: after augmentation the box still covers red pixels
    image = np.full((1, SIZE, SIZE, 3), 128, np.uint8)
    m = np.zeros((1, SIZE, SIZE), bool)
    m[0, 10:30, 4:20] = True
    image[0][m[0]] = COLORS[0]
    sides = set()
    ds = mr.make_dataset(np.repeat(image, 8, 0), [m] * 8, [np.array([0])] * 8, cfg, batch_size=8, augment=True)
    b = next(iter(ds))
    for x, box in zip(b["image"].numpy(), b["gt_boxes"].numpy()[:, 0]):
        y1, x1, y2, x2 = mr.denorm_boxes(box[None], SIZE)[0]
        inside = x[y1:y2, x1:x2]
        assert inside[..., 0].mean() > inside[..., 2].mean() + 60  # red stays inside the (flipped) box
        sides.add(int(x1 > SIZE // 2))
    assert sides == {0, 1}  # some flipped, some not
    with pytest.raises(ValueError, match="config.image_size"):
        mr.make_dataset(images[:, :32, :32], masks, labels, cfg)
    with pytest.raises(ValueError, match="differ in length"):
        mr.make_dataset(images, masks[:2], labels, cfg)
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        mr.example_targets(masks[0], labels[0] + 5, cfg)


def test_overfitting_one_tiny_batch_lowers_the_total_loss_by_a_large_factor(data):
    keras.utils.set_random_seed(0)
    images, masks, labels = data
    cfg = tiny_config()
    model = mr.build_maskrcnn(config=cfg)
    batch = next(iter(mr.make_dataset(images[:2], masks[:2], labels[:2], cfg, batch_size=2, shuffle=False)))

    def total():
        losses = model.compute_losses(batch, training=False)
        return float(sum(losses.values())), losses

    before, parts_before = total()
    assert set(parts_before) == set(mr.LOSS_NAMES) and all(np.isfinite(float(v)) for v in parts_before.values())
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    ds = tf.data.Dataset.from_tensors(batch).repeat()
    hist = model.fit(ds, steps_per_epoch=150, epochs=1, verbose=0, shuffle=False)
    after, parts = total()
    assert after < before / 5, (before, after, parts_before, parts)
    assert hist.history["loss"][0] > 0 and set(hist.history) >= {"loss", *mr.LOSS_NAMES}


def test_two_stages_train_heads_then_all_layers(data):
    keras.utils.set_random_seed(1)
    images, masks, labels = data
    cfg = tiny_config()
    model = mr.build_maskrcnn(config=cfg)
    snapshot = lambda: [w.numpy().copy() for w in model.backbone.trainable_weights]  # noqa: E731
    head = lambda: model.feature_model.get_layer("fpn_p2").kernel.numpy().copy()  # noqa: E731
    dataset = lambda aug: mr.make_dataset(images, masks, labels, cfg, 2, augment=aug)  # noqa: E731
    backbone0, head0 = snapshot(), head()
    history = mr.train_stages(model, dataset, [mr.Stage("heads", 1, 1e-3), mr.Stage("all", 0, 1e-3)], optimizer="sgd")
    assert history["stage"].tolist() == ["1: heads"] and np.isfinite(history["loss"]).all()
    assert all(np.array_equal(a, b) for a, b in zip(backbone0, snapshot()))  # frozen in stage 1
    assert not np.allclose(head(), head0)
    assert all(w.trainable for w in model.backbone.weights if "moving" not in w.name)  # unfrozen afterwards
    history = mr.train_stages(model, dataset, [mr.Stage("all", 1, 1e-3, 1e-4, augment=True)], optimizer="adam")
    assert history["stage"].tolist() == ["1: all"] and history["epoch"].tolist() == [1]
    assert any(not np.allclose(a, b) for a, b in zip(backbone0, snapshot()))  # trained in stage 2
    with pytest.raises(ValueError, match="'heads' or 'all'"):
        mr.Stage("backbone", 1, 1e-3)


def test_inference_output_format_and_keras_round_trip(data, tmp_path):
    keras.utils.set_random_seed(2)
    images, _, _ = data
    cfg = tiny_config(detection_min_confidence=0.0)
    model = mr.build_maskrcnn(config=cfg)
    out = model.inference_model(images[:2].astype(np.float32))
    det, masks = out["detections"].numpy(), out["masks"].numpy()
    assert det.shape == (2, 5, 6) and masks.shape == (2, 5, 14, 14)
    valid = det[..., 4] > 0
    assert valid.any()
    assert set(np.unique(det[..., 4][valid])) <= {1.0, 2.0, 3.0}
    assert np.all((det[..., 5][valid] > 0) & (det[..., 5][valid] <= 1))
    assert np.all(det[..., 2][valid] >= det[..., 0][valid]) and np.all((det[..., :4] >= 0) & (det[..., :4] <= 1))
    for d in det:
        assert np.all(np.diff(d[d[:, 4] > 0][:, 5]) <= 1e-6)  # sorted by score
    assert np.all(det[~valid] == 0)
    assert np.all((masks >= 0) & (masks <= 1))
    instances = mr.predict_instances(model, images[:2])
    assert len(instances) == 2 and instances[0].masks.shape[1:] == (SIZE, SIZE)
    assert len(instances[0]) <= 5 and set(instances[0].labels) <= {0, 1, 2}

    path = tmp_path / "mask_rcnn.keras"
    model.inference_model.save(path)
    loaded = keras.models.load_model(path)
    again = loaded(images[:2].astype(np.float32))
    np.testing.assert_allclose(again["detections"].numpy(), det, atol=1e-5)
    np.testing.assert_allclose(again["masks"].numpy(), masks, atol=1e-5)
    timed = mr.predictor(loaded)(images[0])
    assert timed.masks.shape[1:] == (SIZE, SIZE)


def test_resnet_backbones_build_without_downloads():
    cfg = tiny_config(backbone="resnet50", train_bn=False)
    model = mr.build_maskrcnn(config=cfg, backbone_weights=None)
    out = model.inference_model(np.zeros((1, SIZE, SIZE, 3), np.float32))
    assert out["detections"].shape == (1, 5, 6)
    assert model.backbone.get_layer("conv4_block6_3_conv") is not None
    with pytest.raises(ValueError, match="no ImageNet weights"):
        mr.build_maskrcnn(config=tiny_config(), backbone_weights="imagenet")


def test_load_weights_by_name_from_keras3_keras2_and_keras_files(tmp_path):
    keras.utils.set_random_seed(3)
    a = mr.build_maskrcnn(config=tiny_config())
    b = mr.build_maskrcnn(config=tiny_config(num_classes=6))
    path = tmp_path / "a.weights.h5"
    a.inference_model.save_weights(path)
    with pytest.raises(ValueError, match="template"):
        mr.load_weights_by_name(b.inference_model, path)
    report = mr.load_weights_by_name(b.inference_model, path, exclude=CLASS_SPECIFIC,
                                     template=mr.build_inference_model(tiny_config()))
    assert {"fpn_c5p5", "rpn_conv_shared", "mrcnn_mask_conv1", "backbone_stem_conv1"} <= set(report["loaded"])
    assert set(report["excluded"]) == set(CLASS_SPECIFIC) and not report["shape_mismatch"]
    get = lambda m, sub, name: m.get_layer(sub).get_layer(name).get_weights()  # noqa: E731
    for x, y in zip(get(a, "mrcnn_mask_head", "mrcnn_mask_conv1"), get(b, "mrcnn_mask_head", "mrcnn_mask_conv1")):
        np.testing.assert_array_equal(x, y)
    keras_file = tmp_path / "a.keras"
    a.inference_model.save(keras_file)
    assert set(mr.load_weights_by_name(b, keras_file)["shape_mismatch"]) == set(CLASS_SPECIFIC)
    with pytest.raises(ValueError, match="mrcnn_class_logits"):
        mr.load_weights_by_name(b, keras_file, skip_mismatch=False)
    c = mr.build_maskrcnn(config=tiny_config())
    assert len(mr.load_weights_by_name(c, keras_file)["loaded"]) == len(report["loaded"]) + 3
    np.testing.assert_allclose(c.inference_model(np.zeros((1, SIZE, SIZE, 3), np.float32))["detections"].numpy(),
                               a.inference_model(np.zeros((1, SIZE, SIZE, 3), np.float32))["detections"].numpy(),
                               atol=1e-5)

    # a Keras 2 (Matterport) HDF5 weights file, with Matterport's ResNet names
    h5 = tmp_path / "matterport.h5"
    kernel = np.full((1, 1, 32, 16), 0.25, np.float32)
    with h5py.File(h5, "w") as f:
        f.attrs["layer_names"] = [b"fpn_c5p5", b"res2a_branch2a"]
        g = f.create_group("fpn_c5p5")
        g.attrs["weight_names"] = [b"fpn_c5p5/kernel:0", b"fpn_c5p5/bias:0"]
        g.create_dataset("fpn_c5p5/kernel:0", data=kernel)
        g.create_dataset("fpn_c5p5/bias:0", data=np.ones(16, np.float32))
        f.create_group("res2a_branch2a").attrs["weight_names"] = []
    rep = mr.load_weights_by_name(c, h5, name_map=mr.matterport_to_keras_resnet)
    assert rep["loaded"] == ["fpn_c5p5"] and rep["unused"] == []
    np.testing.assert_array_equal(c.feature_model.get_layer("fpn_c5p5").kernel.numpy(), kernel)
    assert mr.matterport_to_keras_resnet("res4b21_branch2c") == "conv4_block22_3_conv"
    assert mr.matterport_to_keras_resnet("bn3a_branch1") == "conv3_block1_0_bn"
    assert mr.matterport_to_keras_resnet("bn_conv1") == "conv1_bn"
    with pytest.raises(FileNotFoundError):
        mr.load_weights_by_name(c, tmp_path / "missing.h5")
