"""kerasmt.models.maskrcnn building blocks against hand-computed values: configuration, anchors,
box encoding, RoIAlign, target assignment, the five losses, detection layer and mask pasting."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kerasmt.models import maskrcnn as mr
from kerasmt.models.maskrcnn import losses as L
from kerasmt.models.maskrcnn.layers import roi_levels
from kerasmt.models.maskrcnn.targets import crop_and_resize_np, detection_targets_single, minimize_masks


# ----------------------------------------------------------------------------------------- config
def test_config_defaults_are_appendix_b_except_the_class_count():
    check = mr.appendix_b_check()
    assert check.loc["NUM_CLASSES", "Appendix B"] == "6" and check.loc["NUM_CLASSES", "kerasmt"] == "12"
    assert check.drop(index="NUM_CLASSES")["same"].all(), check[~check["same"]]
    cfg = mr.MaskRCNNConfig()
    assert cfg.rpn_anchor_scales == (16, 32, 64, 128, 256) and cfg.image_shape == (512, 512, 3)
    assert cfg.feature_shapes() == [(128, 128), (64, 64), (32, 32), (16, 16), (8, 8)]


@pytest.mark.parametrize("field, value, words", [
    ("backbone", "vgg", "backbone"), ("image_size", 100, "multiple of 64"), ("num_classes", 1, "num_classes"),
    ("rpn_anchor_scales", (16, 32), "rpn_anchor_scales"), ("mask_shape", (14, 14), "mask_shape"),
    ("roi_positive_ratio", 0.0, "roi_positive_ratio"), ("loss_weights", {"mask": 1.0}, "loss_weights"),
    ("detection_min_confidence", 1.5, "detection_min_confidence"),
])
def test_config_rejects_bad_values_naming_the_field(field, value, words):
    with pytest.raises(ValueError, match=words):
        mr.MaskRCNNConfig(**{field: value})
    with pytest.raises(ValueError, match="no field"):
        mr.MaskRCNNConfig().replace(not_a_field=1)


# ---------------------------------------------------------------------------------------- anchors
def test_anchors_match_hand_computed_boxes():
    a = mr.generate_anchors([8], [0.5, 1, 2], [(2, 2)], [4])
    assert a.shape == (2 * 2 * 3, 4)
    r = np.sqrt(2.0)
    # location (row 0, col 0): ratio 0.5 (tall), 1, 2 (wide); side 8
    np.testing.assert_allclose(a[0], [-4 * r, -2 * r, 4 * r, 2 * r], atol=1e-6)
    np.testing.assert_allclose(a[1], [-4, -4, 4, 4])
    np.testing.assert_allclose(a[2], [-2 * r, -4 * r, 2 * r, 4 * r], atol=1e-6)
    np.testing.assert_allclose(a[4], [-4, 0, 4, 8])  # (row 0, col 1): centre x = 4
    np.testing.assert_allclose(a[10], [0, 0, 8, 8])  # (row 1, col 1): centre (4, 4)
    cfg = mr.MaskRCNNConfig(image_size=128)
    anchors = mr.config_anchors(cfg)
    assert anchors.shape == (3 * (32 ** 2 + 16 ** 2 + 8 ** 2 + 4 ** 2 + 2 ** 2), 4)
    side = 16 / 127  # first P2 anchor (ratio 1) in normalised coordinates
    np.testing.assert_allclose(anchors[1], [-8 / 127, -8 / 127, 8 / 127 - 1 / 127, 8 / 127 - 1 / 127], atol=1e-6)
    assert anchors[1][2] - anchors[1][0] == pytest.approx(side - 1 / 127, abs=1e-6)


def test_norm_and_denorm_boxes():
    boxes = np.array([[0, 0, 128, 128], [10, 20, 30, 64]])
    norm = mr.norm_boxes(boxes, 128)
    np.testing.assert_allclose(norm[0], [0, 0, 1, 1])
    np.testing.assert_array_equal(mr.denorm_boxes(norm, 128), boxes)


# ------------------------------------------------------------------------------------------ boxes
def test_box_encoding_by_hand_and_round_trip():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 25]], np.float32)
    gt = np.array([[0, 0, 20, 20], [4, 6, 16, 20]], np.float32)
    d = mr.encode_boxes_np(boxes, gt)
    np.testing.assert_allclose(d[0], [0.5, 0.5, np.log(2), np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(mr.decode_boxes_np(boxes, d), gt, atol=1e-4)
    d_tf = mr.encode_boxes(tf.constant(boxes), tf.constant(gt)).numpy()
    np.testing.assert_allclose(d_tf, d, atol=1e-6)
    np.testing.assert_allclose(mr.decode_boxes(tf.constant(boxes), tf.constant(d)).numpy(), gt, atol=1e-4)
    rng = np.random.default_rng(0)
    b = np.sort(rng.uniform(0, 1, (50, 2, 2)), axis=1).transpose(0, 2, 1).reshape(50, 4)[:, [0, 1, 2, 3]]
    b = np.stack([b[:, 0], b[:, 2], b[:, 1], b[:, 3]], 1).astype(np.float32)  # y1 < y2, x1 < x2
    deltas = rng.normal(0, 0.3, (50, 4)).astype(np.float32)
    np.testing.assert_allclose(mr.encode_boxes_np(b, mr.decode_boxes_np(b, deltas)), deltas, atol=1e-3)


def test_iou_by_hand():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], np.float32)
    expected = [[1 / 7, 1, 0], [0, 0.25, 0]]
    np.testing.assert_allclose(mr.iou_matrix(a, b), expected, atol=1e-6)
    from kerasmt.models.maskrcnn.boxes import iou_matrix_tf

    np.testing.assert_allclose(iou_matrix_tf(tf.constant(a), tf.constant(b)).numpy(), expected, atol=1e-6)


# --------------------------------------------------------------------------------------- RoIAlign
def _bilinear_reference(fmap: np.ndarray, box, size: int) -> np.ndarray:
    """Explicit-loop RoIAlign of one box: sample point (i, j) at row y1 (H-1) + i (y2-y1)(H-1)/(size-1)."""
    h, w, c = fmap.shape
    y1, x1, y2, x2 = box
    out = np.zeros((size, size, c))
    for i in range(size):
        for j in range(size):
            y = y1 * (h - 1) + i * (y2 - y1) * (h - 1) / (size - 1)
            x = x1 * (w - 1) + j * (x2 - x1) * (w - 1) / (size - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            fy, fx = y - y0, x - x0
            v = 0.0
            for dy, wy in ((0, 1 - fy), (1, fy)):
                for dx, wx in ((0, 1 - fx), (1, fx)):
                    yy, xx = min(y0 + dy, h - 1), min(x0 + dx, w - 1)
                    v = v + wy * wx * fmap[yy, xx]
            out[i, j] = v
    return out


def test_pyramid_roi_align_matches_a_numpy_reference_on_the_right_level():
    rng = np.random.default_rng(1)
    image_size = 1024  # levels: side 0.05 -> P2, 0.1 -> P3, 0.25 -> P4, 0.5 -> P5
    maps = [rng.normal(size=(2, s, s, 3)).astype(np.float32) for s in (9, 7, 6, 5)]
    boxes = np.array([[[0.1, 0.1, 0.15, 0.15], [0.2, 0.3, 0.3, 0.4], [0.3, 0.2, 0.55, 0.45]],
                      [[0.25, 0.25, 0.75, 0.75], [0.6, 0.6, 0.65, 0.65], [0.0, 0.0, 0.1, 0.1]]], np.float32)
    levels = roi_levels(tf.constant(boxes), image_size).numpy()
    np.testing.assert_array_equal(levels, [[2, 3, 4], [5, 2, 3]])
    layer = mr.PyramidRoIAlign((4, 4), image_size, flatten=False)
    out = layer([tf.constant(boxes)] + [tf.constant(m) for m in maps]).numpy()
    assert out.shape == (2, 3, 4, 4, 3)
    for b in range(2):
        for r in range(3):
            ref = _bilinear_reference(maps[levels[b, r] - 2][b], boxes[b, r], 4)
            np.testing.assert_allclose(out[b, r], ref, atol=1e-5)
    flat = mr.PyramidRoIAlign((4, 4), image_size)([tf.constant(boxes)] + [tf.constant(m) for m in maps]).numpy()
    np.testing.assert_allclose(flat.reshape(out.shape), out)
    ref_np = crop_and_resize_np(maps[0][0], boxes[0, :1], (4, 4))
    np.testing.assert_allclose(ref_np[0], out[0, 0], atol=1e-5)


# ---------------------------------------------------------------------------------------- targets
def test_rpn_targets_on_a_hand_made_case():
    gt = np.array([[0, 0, 0.5, 0.5], [0.8, 0.8, 0.9, 0.9]], np.float32)
    anchors = np.array([[0, 0, 0.5, 0.5],       # IoU 1 -> positive
                        [0, 0, 0.45, 0.5],      # IoU 0.9 -> positive
                        [0.5, 0.5, 1.0, 1.0],   # IoU 0.04 with box 2 -> negative... but the best of box 2? no:
                        [0.25, 0, 0.75, 0.5],   # IoU 1/3 -> neither (0.3 <= IoU < 0.7)
                        [0.75, 0.75, 1.0, 1.0]],  # IoU 0.16 with box 2, its best anchor -> positive
                       np.float32)
    match, deltas = mr.build_rpn_targets(anchors, gt, train_anchors=256, bbox_std_dev=(0.1, 0.1, 0.2, 0.2))
    np.testing.assert_array_equal(match, [1, 1, -1, 0, 1])
    np.testing.assert_allclose(deltas[0], 0, atol=1e-6)
    expected = mr.encode_boxes_np(anchors[1:2], gt[:1])[0] / np.array([0.1, 0.1, 0.2, 0.2])
    np.testing.assert_allclose(deltas[1], expected, rtol=1e-5)
    assert deltas[1][2] == pytest.approx(np.log(0.5 / 0.45) / 0.2, rel=1e-5)
    np.testing.assert_array_equal(deltas[2:4], 0)
    # subsampling: at most half positives, negatives fill up to train_anchors
    many = np.tile(anchors[:2], (10, 1))
    m, _ = mr.build_rpn_targets(many, gt[:1], train_anchors=8)
    assert (m == 1).sum() == 4 and (m == -1).sum() == 0
    m, _ = mr.build_rpn_targets(anchors, np.zeros((0, 4)), train_anchors=3)
    assert (m == -1).sum() == 3 and (m == 1).sum() == 0


def _box_mask(size, y1, x1, y2, x2):
    m = np.zeros((size, size), bool)
    m[y1:y2, x1:x2] = True
    return m


@pytest.mark.parametrize("mini", [False, True])
def test_detection_targets_on_a_hand_made_case(mini):
    size = 16
    full = np.stack([_box_mask(size, 2, 2, 10, 10)])
    gt_box = mr.norm_boxes(np.array([[2, 2, 10, 10]]), size)
    gt_masks = minimize_masks(full, gt_box, (8, 8)) if mini else full.astype(np.float32)
    exact = gt_box[0]
    shifted = mr.norm_boxes(np.array([[2, 3, 10, 11]]), size)[0]  # IoU 7/9 -> positive
    background = mr.norm_boxes(np.array([[11, 11, 16, 16]]), size)[0]
    proposals = np.stack([background, exact, shifted, np.zeros(4, np.float32)])
    tf.random.set_seed(0)
    rois, class_ids, deltas, masks = [t.numpy() for t in detection_targets_single(
        tf.constant(proposals), tf.constant([3, 0]), tf.constant(np.concatenate([gt_box, np.zeros((1, 4))])),
        tf.constant(np.concatenate([gt_masks[None, 0], np.zeros_like(gt_masks)])), train_rois=6, positive_ratio=0.5,
        bbox_std_dev=(0.1, 0.1, 0.2, 0.2), mask_shape=(4, 4), use_mini_mask=mini)]
    assert rois.shape == (6, 4) and masks.shape == (6, 4, 4)
    np.testing.assert_array_equal(class_ids, [3, 3, 0, 0, 0, 0])  # 2 positives, then 1 negative, padding
    np.testing.assert_allclose(rois[2], background)
    np.testing.assert_array_equal(rois[3:], 0)
    by_roi = {tuple(np.round(r, 5)): i for i, r in enumerate(rois[:2])}
    i_exact, i_shift = by_roi[tuple(np.round(exact, 5))], by_roi[tuple(np.round(shifted, 5))]
    np.testing.assert_allclose(deltas[i_exact], 0, atol=1e-6)
    np.testing.assert_allclose(deltas[i_shift], mr.encode_boxes_np(shifted[None], gt_box)[0] / [0.1, 0.1, 0.2, 0.2],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(masks[i_exact], 1)  # the RoI is the mask's box
    expected = np.round(crop_and_resize_np(full[0].astype(np.float32), shifted[None], (4, 4))[0])
    np.testing.assert_array_equal(masks[i_shift], expected)  # mini masks give the full masks' targets
    assert expected[:, -1].sum() == 0 and expected[:, 0].all()
    np.testing.assert_array_equal(masks[2:], 0)


def test_detection_targets_without_ground_truth_give_no_rois():
    rois, class_ids, deltas, masks = detection_targets_single(
        tf.constant([[0.1, 0.1, 0.4, 0.4]]), tf.zeros([2], tf.int32), tf.zeros([2, 4]), tf.zeros([2, 8, 8]),
        train_rois=4, positive_ratio=0.33, bbox_std_dev=(0.1, 0.1, 0.2, 0.2), mask_shape=(4, 4), use_mini_mask=True)
    assert rois.shape == (4, 4) and not np.any(rois.numpy()) and not np.any(class_ids.numpy())


# ----------------------------------------------------------------------------------------- losses
def test_rpn_losses_on_known_inputs():
    match = np.array([[1, -1, 0, 1]])
    logits = np.zeros((1, 4, 2), np.float32)
    assert float(L.rpn_class_loss(match, logits)) == pytest.approx(np.log(2), rel=1e-5)
    logits[0, 0] = [-20, 20]
    logits[0, 1] = [20, -20]
    logits[0, 3] = [-20, 20]
    logits[0, 2] = [20, -20]  # ignored anchor, "wrong" class: does not count
    assert float(L.rpn_class_loss(match, logits)) < 1e-6
    target = np.zeros((1, 4, 4), np.float32)
    target[0, 0] = [0.5, 0, 0, 2.0]
    pred = np.zeros((1, 4, 4), np.float32)
    pred[0, 1] = 100.0  # a negative anchor: no box loss
    # anchor 0: 0.5 * 0.25 + 0 + 0 + (2 - 0.5) = 1.625; anchor 3: 0; mean over 2 anchors x 4 coordinates
    assert float(L.rpn_bbox_loss(target, match, pred)) == pytest.approx(1.625 / 8, rel=1e-6)
    assert float(L.rpn_bbox_loss(target, np.array([[0, -1, 0, -1]]), pred)) == 0.0
    assert float(L.rpn_class_loss(np.zeros((1, 4)), logits)) == 0.0


def test_head_class_and_box_losses_on_known_inputs():
    ids = np.array([[2, 0, 0]])
    logits = np.zeros((1, 3, 3), np.float32)
    assert float(L.mrcnn_class_loss(ids, logits)) == pytest.approx(np.log(3), rel=1e-5)
    logits[0, 2] = [-50, 50, 0]  # a padded RoI predicted badly: excluded by roi_valid
    assert float(L.mrcnn_class_loss(ids, logits, np.array([[1, 1, 0]]))) == pytest.approx(np.log(3), rel=1e-5)
    target = np.zeros((1, 3, 4), np.float32)
    target[0, 0] = [0.2, 0, 0, 0]
    pred = np.zeros((1, 3, 3, 4), np.float32)
    pred[0, 0, 1] = 9.0  # another class's deltas of the positive RoI: ignored
    pred[0, 1] = 9.0  # a negative RoI: ignored
    assert float(L.mrcnn_bbox_loss(target, ids, pred)) == pytest.approx(0.5 * 0.04 / 4, rel=1e-5)
    pred[0, 0, 2, 3] = 3.0  # its own class: |d| = 3 -> 2.5
    assert float(L.mrcnn_bbox_loss(target, ids, pred)) == pytest.approx((0.02 + 2.5) / 4, rel=1e-5)
    assert float(L.mrcnn_bbox_loss(target, np.zeros((1, 3)), pred)) == 0.0


def test_mask_loss_uses_only_the_ground_truth_class_channel():
    ids = tf.constant([[2, 0]])
    target = np.zeros((1, 2, 2, 2), np.float32)
    target[0, 0, 0] = 1.0
    logits = np.zeros((1, 2, 2, 2, 3), np.float32)
    assert float(L.mrcnn_mask_loss(target, ids, logits)) == pytest.approx(np.log(2), rel=1e-5)
    other = logits.copy()
    other[..., 0] = 30.0
    other[..., 1] = -30.0
    other[0, 1] = 50.0  # the negative RoI, every channel
    assert float(L.mrcnn_mask_loss(target, ids, other)) == pytest.approx(np.log(2), rel=1e-5)
    good = logits.copy()
    good[0, 0, ..., 2] = np.where(target[0, 0] > 0, 20.0, -20.0)
    assert float(L.mrcnn_mask_loss(target, ids, good)) < 1e-6
    x = tf.Variable(other)
    with tf.GradientTape() as tape:
        loss = L.mrcnn_mask_loss(target, ids, x)
    grad = tape.gradient(loss, x).numpy()
    assert np.all(grad[..., :2] == 0) and np.all(grad[0, 1] == 0) and np.any(grad[0, 0, ..., 2] != 0)
    assert float(L.mrcnn_mask_loss(target, tf.zeros((1, 2), tf.int32), logits)) == 0.0


# ------------------------------------------------------------------------------ detection, pasting
def test_detection_layer_output_format_threshold_and_per_class_nms():
    rois = np.array([[[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9],
                      [0.0, 0.0, 0.2, 0.2], [0, 0, 0, 0]]], np.float32)
    probs = np.array([[[0.05, 0.9, 0.05], [0.1, 0.8, 0.1], [0.1, 0.05, 0.85], [0.2, 0.0, 0.8], [0.9, 0.05, 0.05],
                       [0.0, 1.0, 0.0]]], np.float32)
    deltas = np.zeros((1, 6, 3, 4), np.float32)
    deltas[0, 3, 2] = [1.0, 0, 0, 0]  # class 2 refinement of RoI 3: dy = 1 x 0.1 x height 0.3
    layer = mr.DetectionLayer(max_instances=4, min_confidence=0.7, nms_threshold=0.3)
    det = layer([rois, probs, deltas]).numpy()
    assert det.shape == (1, 4, 6)
    # RoI 1 is suppressed by RoI 0 (same class 1, IoU 0.9); RoI 2 has the same box but class 2: kept;
    # RoI 4 is background; the padded RoI 5 scores 0; only 3 detections -> one zero row
    np.testing.assert_allclose(det[0, :3, 5], [0.9, 0.85, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(det[0, :3, 4], [1, 2, 2])
    np.testing.assert_allclose(det[0, 2, :4], [0.63, 0.6, 0.93, 0.9], atol=1e-5)
    np.testing.assert_array_equal(det[0, 3], 0)
    assert np.all(np.diff(det[0, :3, 5]) <= 0)
    strict = mr.DetectionLayer(max_instances=4, min_confidence=0.82)([rois, probs, deltas]).numpy()
    assert (strict[0, :, 4] > 0).sum() == 2
    config = layer.get_config()
    assert mr.DetectionLayer.from_config(config).get_config() == config


def test_select_class_mask_and_paste_masks():
    masks = np.zeros((1, 2, 4, 4, 3), np.float32)
    masks[0, 0, ..., 2] = 1.0
    masks[0, 1, ..., 1] = 0.5
    det = np.array([[[0, 0, 1, 1, 2, 0.9], [0, 0, 1, 1, 1, 0.8]]], np.float32)
    sel = mr.SelectClassMask()([masks, det]).numpy()
    assert sel.shape == (1, 2, 4, 4) and np.all(sel[0, 0] == 1) and np.all(sel[0, 1] == 0.5)
    size = 20
    box = mr.norm_boxes(np.array([[3, 5, 11, 17]]), size)
    pasted = mr.paste_masks(np.ones((1, 28, 28), np.float32), box, size, size)
    np.testing.assert_array_equal(pasted[0], _box_mask(size, 3, 5, 11, 17))
    half = np.zeros((1, 28, 28), np.float32)
    half[:, :, :14] = 1.0  # left half of the box
    cols = np.flatnonzero(mr.paste_masks(half, box, size, size)[0].any(axis=0))
    assert cols.min() == 5 and cols.max() == 10
    inst = mr.detections_to_instances(np.array([[*box[0], 3, 0.9], [0, 0, 0, 0, 0, 0]]), np.ones((2, 28, 28)), size, size)
    assert len(inst) == 1 and inst.labels.tolist() == [2] and inst.scores.tolist() == pytest.approx([0.9])
    assert mr.paste_masks(np.zeros((0, 28, 28)), np.zeros((0, 4)), size, size).shape == (0, size, size)
    none = mr.detections_to_instances(np.zeros((3, 6)), np.ones((3, 28, 28)), size, size)  # no detection at all
    assert len(none) == 0 and none.masks.shape == (0, size, size)
