"""Fashion evaluation in bounded memory: a test split in the on-disk cache (instances run-length
coded) scored batch by batch gives exactly the metrics of the in-memory path."""
from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from kerasmt import diskarray
from kerasmt import metrics_instances as mi
from kerasmt.studies import fashion as study

SIZE = 64
KW = dict(image_size=SIZE, n_test=10, n_synthetic=30, seed=3)


def _load(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return study.load_data(None, **KW, **kw)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    memory = _load()
    mp = pytest.MonkeyPatch()
    mp.setenv("KERASMT_IN_MEMORY_MB", "0.01")  # every split above 10 kB: the on-disk path
    try:
        disk = _load(cache_dir=tmp_path_factory.mktemp("cache"))
    finally:
        mp.undo()
    return memory, disk


def _same(a: study.ModelResult, b: study.ModelResult) -> None:
    for key in ("emr", "oa", "jss", "map50", "f1", "coco_map50", "coco_map"):
        assert getattr(a, key) == getattr(b, key) or (np.isnan(getattr(a, key)) and np.isnan(getattr(b, key))), key
    assert np.array_equal(a.y_pred, b.y_pred)
    for key in ("ap", "f1_per_image"):
        np.testing.assert_array_equal(a.extra["instance"][key], b.extra["instance"][key])
    assert (a.instances is None) == (b.instances is None)
    assert len(a.instances or []) == len(b.instances or [])
    for p, q in zip(a.instances or [], b.instances or []):
        assert np.array_equal(p.masks, q.masks) and np.array_equal(p.labels, q.labels)
        assert np.array_equal(p.scores, q.scores)
    if "semantic" in a.extra:
        np.testing.assert_array_equal(a.extra["semantic"]["confusion"], b.extra["semantic"]["confusion"])
        np.testing.assert_array_equal(a.extra["semantic"]["iou"], b.extra["semantic"]["iou"])


def test_test_split_on_disk_holds_the_same_images_and_instances(both):
    memory, disk = both
    assert not memory.test.on_disk and disk.test.on_disk
    assert diskarray.is_disk(disk.test.x) and isinstance(disk.test.instances(), mi.CompactInstances)
    assert np.array_equal(disk.test.x[:], memory.test.x) and np.array_equal(disk.test.semantic[:], memory.test.semantic)
    for i, (t, u) in enumerate(zip(memory.test.instances(), disk.test.instances())):
        assert np.array_equal(t.masks, u.masks) and np.array_equal(t.labels, u.labels), i
        assert np.array_equal(disk.test.instance(i).masks, t.masks)
    # the cache (images, maps, run-length coded instances) is reused as it is
    again = study.load_data(None, **KW, in_memory=False, cache_dir=disk.test.x.path.parent)
    assert [len(t) for t in again.test.instances()] == [len(t) for t in memory.test.instances()]


def test_streamed_semantic_evaluation_equals_the_whole_array(both):
    memory, disk = both
    rng = np.random.default_rng(0)
    n = memory.n_classes + 1
    # a noisy version of the truth: some right, some wrong, some instances too small
    logits = np.eye(n, dtype=np.float32)[memory.test.semantic] * 2 + rng.random((10, SIZE, SIZE, n), dtype=np.float32)
    probs = logits / logits.sum(-1, keepdims=True)
    whole = study.ModelResult(**study.evaluate_semantic_model(memory, probs))
    streamed = study.ModelResult(**study.evaluate_semantic_model(disk, (probs[s:s + 3] for s in range(0, 10, 3))))
    _same(whole, streamed)
    assert whole.probabilities is probs and streamed.probabilities is None
    assert diskarray.is_disk(streamed.extra["pred_maps"])
    assert np.array_equal(streamed.extra["pred_maps"][:], probs.argmax(-1))
    _same(study.semantic_oracle(memory), study.semantic_oracle(disk))
    _same(study.all_background(memory), study.all_background(disk))
    _same(study.postprocessed(whole, memory, 1), study.postprocessed(streamed, disk, 1))
    assert isinstance(study.postprocessed(streamed, disk, 1).instances, mi.CompactInstances)
    with pytest.raises(ValueError, match="9 images for the 10 test images"):
        study.evaluate_semantic_model(disk, [probs[:9]])
    import matplotlib

    matplotlib.use("Agg")
    study.plot_predictions(streamed, disk, [0, 1])
    study.plot_instance_predictions(streamed, disk, [0, 1])
    assert study.per_class_ap_table([streamed], disk).equals(study.per_class_ap_table([whole], memory))


def test_model_predicted_batch_by_batch_equals_predict_whole(both):
    memory, disk = both
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(memory.n_classes + 1, 3, padding="same", activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    probs = model.predict(memory.eval_dataset("test", "semantic", 4), verbose=0)
    whole = study.ModelResult(**study.evaluate_semantic_model(memory, probs))
    streamed = study.ModelResult(**study.evaluate_semantic_model(
        disk, study.predict_batches(model, disk.eval_dataset("test", "semantic", 4))))
    _same(whole, streamed)


def test_maskrcnn_evaluation_reads_the_test_split_by_blocks(both, tmp_path):
    memory, disk = both
    kw = dict(backbone="light", weights=None, epochs_heads=0, epochs_all=0, batch_size=2, validate=False, seed=0)
    a = study.train_maskrcnn(memory, tmp_path / "a", **kw)
    b = study.train_maskrcnn(disk, tmp_path / "b", **kw)
    assert isinstance(b.instances, mi.CompactInstances) and len(b.instances) == len(disk.test)
    _same(a, b)


def test_train_refinenet_scores_the_test_split_batch_by_batch(both, tmp_path):
    memory, disk = both
    res = study.train_refinenet(disk, tmp_path, encoder="light", weights=None, features=8, epochs=1, batch_size=4,
                                seed=0)
    assert res.probabilities is None and diskarray.is_disk(res.extra["pred_maps"])
    probs = res.model.predict(memory.eval_dataset("test", "semantic", 4), verbose=0)
    whole = study.ModelResult(**study.evaluate_semantic_model(memory, probs))
    _same(whole, res)
    assert np.array_equal(res.extra["pred_maps"][:], probs.argmax(-1))


def test_streamed_prediction_maps_are_removed_with_their_result(both, tmp_path, monkeypatch):
    """The on-disk predicted label maps of an evaluation live in a temporary folder that is removed
    once the result holding them is gone (not left behind: ~262 MB per evaluation at real size)."""
    import gc
    import tempfile

    _, disk = both
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rng = np.random.default_rng(0)
    probs = rng.random((len(disk.test.semantic), SIZE, SIZE, disk.n_classes + 1), dtype=np.float32)
    result = study.evaluate_semantic_model(disk, probs)
    folders = list(tmp_path.glob("kerasmt-fashion-*"))
    assert len(folders) == 1 and (folders[0] / "pred_maps.npy").is_file()
    del result
    gc.collect()
    assert not folders[0].exists()
