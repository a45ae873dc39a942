"""kerasmt.studies.fashion: data loading and pipelines, evaluation of a semantic prediction,
the results table (one row per model) and metrics.json."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from kerasmt import diskarray
from kerasmt.studies import fashion as study
from kerasmt.utils import save_metrics

SIZE = 64


@pytest.fixture(scope="module")
def data():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return study.load_data(None, image_size=SIZE, n_test=6, n_synthetic=24, seed=2)


def test_load_data_splits_and_counts(data):
    assert (len(data.train), len(data.val), len(data.test)) == (16, 2, 6)
    assert data.synthetic and data.n_classes == 11 and len(data.class_names) == 11
    assert data.train.x.shape == (16, SIZE, SIZE, 3) and data.test.semantic.shape == (6, SIZE, SIZE)
    assert len(data.test.masks) == 6 and all(m.shape[1:] == (SIZE, SIZE) for m in data.test.masks)
    ids = [set(s.images["image_id"]) for s in (data.train, data.val, data.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    steps = data.steps_with_report()
    assert steps.loc["keep full set (11 classes)", "report images"] == 44_234
    assert steps.loc["drop 18 garment parts", "report segments"] == 163_371
    assert data.class_table()["test images"].sum() == data.test.multi_hot.sum()


@pytest.mark.parametrize("mode", ["memory", "disk", "stream"])
def test_training_batches_in_memory_and_streamed(data, mode, tmp_path):
    if mode != "memory":  # too large for memory: decoded once into .npy files, or from the image files
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = study.load_data(None, image_size=SIZE, n_test=6, n_synthetic=24, seed=2, in_memory=False,
                                   disk_cache=mode == "disk", cache_dir=tmp_path)
        if mode == "stream":
            assert data.train.x is None and data.val.x is None
        else:
            assert diskarray.is_disk(data.train.x) and diskarray.is_disk(data.val.semantic)
            assert len(list(tmp_path.glob("*.npy"))) == 6  # images + semantic maps of train, val and test
            memory = study.load_data(None, image_size=SIZE, n_test=6, n_synthetic=24, seed=2)
            assert np.array_equal(data.train.x[:], memory.train.x)
            assert np.array_equal(data.val.semantic[:], memory.val.semantic)
            assert data.describe().equals(memory.describe())
            x, y = next(iter(data.eval_dataset("val", "semantic", batch_size=8)))
            assert np.array_equal(y.numpy(), memory.val.semantic)
    x, y = next(iter(data.train_dataset("semantic", batch_size=4, augment=True, seed=0)))
    assert x.shape == (4, SIZE, SIZE, 3) and x.dtype.name == "float32"
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    assert y.shape == (4, SIZE, SIZE) and y.dtype.name == "int32" and int(y.numpy().max()) <= 11
    x, y = next(iter(data.train_dataset("multilabel", batch_size=4, augment=True, seed=0)))
    assert y.shape == (4, 11) and set(np.unique(y.numpy())) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="target"):
        data.train_dataset("boxes")


def test_a_perfect_semantic_prediction_scores_high_and_all_background_scores_zero(data):
    probs = np.eye(data.n_classes + 1, dtype=np.float32)[data.test.semantic]
    res = study.ModelResult(**study.evaluate_semantic_model(data, probs))
    assert res.extra["semantic"]["pixel_accuracy"] == 1.0
    assert res.map50 > 0.7 and res.f1 > 0.7 and res.jss > 0.9  # touching instances may merge
    bg = study.all_background(data)
    assert bg.map50 == 0.0 and bg.f1 == 0.0 and bg.jss == 0.0 and bg.emr == 0.0
    assert bg.extra["semantic"]["pixel_accuracy"] > 0.8  # why the report avoids pixel accuracy


def test_results_table_takes_any_model_row_and_metrics_json(data, tmp_path):
    bg = study.all_background(data)
    majority = study.multilabel_baseline(data)
    other = study.ModelResult(name="Mask R-CNN (later)", kind="instance", emr=0.4, oa=0.9, jss=0.7, map50=0.7,
                              f1=0.6, coco_map50=0.65, seconds_per_image=1.2)
    table = study.results_table([majority, bg, other])
    assert table.index.tolist() == ["Full4 (report, Mask R-CNN)", "per-label majority *", "all background *",
                                    "Mask R-CNN (later) *"]
    full4 = table.loc["Full4 (report, Mask R-CNN)"]
    assert full4[("Table 10: combination", "TTO")] == 1.85 and full4[("Table 8: client set C", "EMR")] == 29.2
    row = table.loc["Mask R-CNN (later) *"]
    expected = 1.5 * (3 * 0.4 + 0.9 + 1.4) / 6 + (3 * 0.4 + 0.9 + 1.4) / 6 + 0.65 - 0.12
    assert row[("Table 10: combination", "TTO")] == pytest.approx(round(expected, 2))
    assert np.isnan(table.loc["per-label majority *", ("Table 10: combination", "TTO")])

    metrics = study.metrics_summary({"maskrcnn": other}, data, {"maskrcnn": {"seconds_per_image": 1.2}},
                                    {"all_background": bg})
    for key in ("emr", "oa", "jss", "map50", "f1", "seconds_per_image", "tto"):
        assert key in metrics["models"]["maskrcnn"]
    assert metrics["summary"]["maskrcnn.tto"] == pytest.approx(expected, abs=1e-4)
    assert all(isinstance(v, (int, float)) for v in metrics["summary"].values())
    assert metrics["worked_examples"]["table_10_rows_ok"]["Base2"] is False
    loaded = json.loads(save_metrics(metrics, tmp_path).read_text())
    assert loaded["models"]["maskrcnn"]["tto"] == pytest.approx(expected)


def test_time_inference_excludes_warmup():
    calls = []

    def predict(image):
        calls.append(image.shape)

    out = study.time_inference(predict, np.zeros((3, 8, 8, 3), np.uint8), warmup=2)
    assert len(calls) == 5 and out["images"] == 3 and out["size"] == 8 and out["seconds_per_image"] >= 0
