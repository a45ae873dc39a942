"""Fashion report metrics (kerasmt.metrics_instances) against the report's worked examples
(Tables 2, 10 and 11, Appendix E) and hand-checked instance examples."""
from __future__ import annotations

import numpy as np
import pytest

from kerasmt import metrics_instances as mi
from kerasmt.studies import fashion as study


# ------------------------------------------------------------------------- report worked examples
def test_table_2_example():
    y, z = np.array([[1, 1, 1, 0, 1]]), np.array([[0, 1, 1, 0, 1]])
    assert mi.exact_match_ratio(y, z) == 0.0
    assert mi.hamming_accuracy(y, z) == pytest.approx(0.80)  # true negatives count (dress)
    assert mi.jaccard_score(y, z) == pytest.approx(0.75)
    s = mi.multilabel_scores(y, z)
    assert mi.classification_score(s["emr"], s["oa"], s["jss"]) == pytest.approx(0.3833, abs=5e-5)
    table = study.table_2_example()
    assert (table["report"] == table["recomputed"]).all()


def test_table_11_example_is_over_eleven_classes():
    t = study.TABLE_11
    y, z = np.array([t["true"]]), np.array([t["predicted"]])
    assert mi.hamming_accuracy(y[:, :11], z[:, :11]) == pytest.approx(0.818, abs=5e-4)  # 9/11
    assert mi.hamming_accuracy(y, z) == pytest.approx(10 / 12)  # the 12 printed columns: not the report's
    assert mi.jaccard_score(y, z) == pytest.approx(0.60)
    assert mi.exact_match_ratio(y, z) == 0.0


def test_table_10_recomputes_from_tables_8_and_9_except_base2():
    table = study.recompute_table_10()
    assert table.index[~table["ok"]].tolist() == ["Base2"]
    assert table.loc["Base2", "tto"] == pytest.approx(1.651, abs=1e-3)
    assert table.loc["Base2", "tto printed"] == 1.75
    full4 = table.loc["Full4"]
    assert full4["tto"] == pytest.approx(1.85, abs=0.005)
    assert full4["class_c"] == pytest.approx(0.527, abs=1e-3) and full4["class_m"] == pytest.approx(0.565, abs=1e-3)
    assert full4["segmentation"] == pytest.approx(0.635) and full4["speed"] == pytest.approx(0.137)
    # the best run by TTO is Full4 with the printed and with the recomputed values
    assert table["tto"].idxmax() == "Full4" and table["tto printed"].idxmax() == "Full4"


def test_combination_formulas():
    c = mi.combination_scores({"emr": 0.379, "oa": 0.896, "jss": 0.677, "map50": 0.71, "f1": 0.56}, 1.37,
                              client={"emr": 0.292, "oa": 0.887, "jss": 0.699})
    assert c["class_c"] == pytest.approx((3 * 0.292 + 0.887 + 2 * 0.699) / 6)
    assert c["class_m"] == pytest.approx((3 * 0.379 + 0.896 + 2 * 0.677) / 6)
    assert c["segmentation"] == pytest.approx((0.71 + 0.56) / 2)
    assert c["speed"] == pytest.approx(0.137)
    assert c["to"] == pytest.approx(c["class_m"] + c["segmentation"] - c["speed"])
    assert c["tto"] == pytest.approx(1.5 * c["class_c"] + c["to"])
    assert round(c["tto"], 2) == 1.85 and c["class_c_source"] == "client"
    no_client = mi.combination_scores({"emr": 0.5, "oa": 0.9, "jss": 0.6, "map50": 0.5, "f1": 0.5}, 1.0)
    assert no_client["class_c"] == no_client["class_m"] and no_client["class_c_source"] == "test"


def test_appendix_e_overall_accuracy_is_mean_per_class_accuracy():
    table = study.appendix_e_check()
    for split in ("client", "test"):
        # within the rounding of the printed per-class values (0.1 %)
        assert abs(table.loc[split, "mean of per-class accuracies"] - table.loc[split, "printed total OA"]) <= 6e-4
    # and our per-class accuracies average to OA
    rng = np.random.default_rng(0)
    y, z = rng.integers(0, 2, (30, 11)), rng.integers(0, 2, (30, 11))
    assert mi.per_class_accuracy(y, z).mean() == pytest.approx(mi.hamming_accuracy(y, z))


def test_multilabel_edge_cases():
    assert mi.jaccard_score([[0, 0, 0]], [[0, 0, 0]]) == 1.0  # nothing present, nothing predicted
    assert mi.jaccard_score([[0, 0, 0]], [[0, 0, 0]], empty=0.0) == 0.0
    assert mi.exact_match_ratio([[1, 0], [0, 1]], [[1, 0], [1, 1]]) == 0.5
    with pytest.raises(ValueError, match="0/1"):
        mi.hamming_accuracy([[0.2, 0.9]], [[0, 1]])
    with pytest.raises(ValueError, match="shape"):
        mi.hamming_accuracy([[0, 1]], [[0, 1, 1]])
    np.testing.assert_array_equal(mi.labels_to_multi_hot([[2, 2, 0], []], 3), [[1, 0, 1], [0, 0, 0]])


# ----------------------------------------------------------------------------------- instances
def _box(y0, y1, x0, x1, h=20, w=20):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_mask_iou_and_matching_at_half():
    a, b = _box(0, 10, 0, 10), _box(0, 10, 5, 15)  # IoU 50 / 150 = 1/3
    iou = mi.mask_iou_matrix(np.stack([a, b]), np.stack([a]))
    np.testing.assert_allclose(iou[:, 0], [1.0, 1 / 3])
    true = mi.Instances(np.stack([a]), [3])
    # a shifted mask below IoU 0.5 is a false positive and leaves a false negative
    m = mi.match_instances(mi.Instances(np.stack([b]), [3], [0.9]), true)
    assert (m.tp, m.fp, m.fn) == (0, 1, 1)
    # the right mask with the wrong class does not match either
    m = mi.match_instances(mi.Instances(np.stack([a]), [4], [0.9]), true)
    assert (m.tp, m.fp, m.fn) == (0, 1, 1)
    # two predictions for one object: the higher score wins, the other is a false positive
    m = mi.match_instances(mi.Instances(np.stack([a, a]), [3, 3], [0.2, 0.8]), true)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0) and m.order.tolist() == [1, 0] and m.pred_match.tolist() == [0, -1]


def test_average_precision_by_hand():
    t1, t2 = _box(0, 5, 0, 5), _box(10, 15, 10, 15)
    true = mi.Instances(np.stack([t1, t2]), [0, 0])
    perfect = mi.Instances(np.stack([t1, t2]), [0, 0], [0.9, 0.8])
    assert mi.average_precision(mi.match_instances(perfect, true), 2) == pytest.approx(1.0)
    # ranking FP (0.9), TP (0.8): precisions 0, 1/2; recall reaches 1/2 at precision 1/2 -> AP = 0.25
    fp_first = mi.Instances(np.stack([_box(5, 9, 15, 19), t1]), [0, 0], [0.9, 0.8])
    assert mi.average_precision(mi.match_instances(fp_first, true), 2) == pytest.approx(0.25)
    # TP first then FP: precision 1 up to recall 1/2 -> AP = 0.5
    tp_first = mi.Instances(np.stack([t1, _box(5, 9, 15, 19)]), [0, 0], [0.9, 0.8])
    assert mi.average_precision(mi.match_instances(tp_first, true), 2) == pytest.approx(0.5)
    empty = mi.Instances(np.zeros((0, 20, 20), bool), [])
    assert mi.average_precision(mi.match_instances(empty, true), 2) == 0.0
    assert np.isnan(mi.average_precision(mi.match_instances(perfect, empty), 0))


def test_evaluate_instances_and_pycocotools_agree_on_simple_cases():
    preds, truths = study.instance_example()
    ev = mi.evaluate_instances(preds, truths)
    # image 1: TP, FP, FN (2/3 each) ; image 2: TP + FP -> P 1/2, R 1, F1 2/3
    assert (ev["tp"], ev["fp"], ev["fn"]) == (3, 2, 1)
    assert ev["f1"] == pytest.approx(2 / 3)
    assert ev["precision"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert ev["ap"][0] == pytest.approx(2 / 3) and ev["ap"][1] == pytest.approx(1.0)
    assert ev["map50"] == pytest.approx(5 / 6)
    coco = mi.coco_map50(preds, truths, n_classes=11)
    assert 0.7 < coco["map50"] < 0.9  # same matches, per-class 101-point averaging
    assert mi.coco_map50(truths, truths, n_classes=11)["map50"] == pytest.approx(1.0)
    nothing = [mi.Instances(np.zeros((0, 20, 20), bool), []) for _ in truths]
    assert mi.coco_map50(nothing, truths)["map50"] == 0.0
    ev0 = mi.evaluate_instances(nothing, truths)
    assert ev0["map50"] == 0.0 and ev0["f1"] == 0.0
    table = study.instance_example_table()
    assert table.loc["COCO AP@50 (pycocotools)", "AP@50"] == pytest.approx(coco["map50"], abs=1e-3)


def test_precision_recall_f1_conventions():
    assert mi.precision_recall_f1(0, 0, 0) == (1.0, 1.0, 1.0)
    assert mi.precision_recall_f1(0, 0, 3) == (0.0, 0.0, 0.0)
    assert mi.precision_recall_f1(2, 2, 0) == pytest.approx((0.5, 1.0, 2 / 3))


def test_semantic_scores_and_all_background():
    true = np.zeros((2, 4, 4), np.int64)
    true[:, :2, :2] = 3
    scores = mi.semantic_scores(true, np.zeros_like(true), 4)
    assert scores["pixel_accuracy"] == pytest.approx(0.75)  # all background still scores 75 %
    assert scores["iou"][3] == 0.0 and np.isnan(scores["iou"][1]) and scores["mean_iou_foreground"] == 0.0
    perfect = mi.semantic_scores(true, true, 4)
    assert perfect["pixel_accuracy"] == 1.0 and perfect["mean_iou"] == 1.0
