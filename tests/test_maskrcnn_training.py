"""Mask R-CNN training as Matterport / the report: global-norm clipping, L2 weight decay without
BatchNorm gamma/beta, steps per epoch, best epoch on validation loss, per-pixel noise; Table 6 as
named runs; the report's two-per-class post-processing; COCO AP per class; the paired comparison
that writes the notebook's closing sentence; the matcher's duplicate fix."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasmt import metrics_instances as mi
from kerasmt.datasets import fashion as fd
from _maskrcnn_tiny import SIZE, tiny_config
from kerasmt.models import maskrcnn as mr
from kerasmt.models.maskrcnn.training import make_optimizer
from kerasmt.studies import fashion as study


def tiny_data(n: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = np.full((n, SIZE, SIZE, 3), 128, np.uint8)
    masks, labels = [], []
    for i in range(n):
        m = np.zeros((1, SIZE, SIZE), bool)
        y, x = rng.integers(0, 30, size=2)
        m[0, y:y + 24, x:x + 24] = True
        images[i][m[0]] = (220, 30, 30)
        masks.append(m)
        labels.append(np.array([0]))
    return images, masks, labels


def test_weight_decay_is_matterports_l2_loss_without_batchnorm_gamma_beta():
    model = mr.build_maskrcnn(config=tiny_config(weight_decay=0.5))
    expected = 0.0
    for v in model.trainable_variables:
        if v.path.endswith(("gamma", "beta")):
            continue
        w = np.asarray(v)
        expected += 0.5 * np.sum(w.astype(np.float64) ** 2) / w.size
    assert float(model.weight_decay_loss()) == pytest.approx(expected, rel=1e-4)
    assert any(v.path.endswith("gamma") for v in model.trainable_variables)
    opt = make_optimizer("sgd", 1e-3, model.config)
    assert opt.global_clipnorm == model.config.gradient_clip_norm and opt.clipnorm is None
    assert opt.weight_decay is None  # the decay is the L2 loss, not the optimizer's decoupled one
    # clipping by the global norm scales every gradient by the same factor
    v1, v2 = keras.Variable(np.zeros(2, np.float32)), keras.Variable(np.zeros(2, np.float32))
    sgd = keras.optimizers.SGD(1.0, global_clipnorm=5.0)
    sgd.apply([np.array([30.0, 40.0], np.float32), np.array([0.0, 0.0], np.float32)], [v1, v2])
    np.testing.assert_allclose(np.asarray(v1), [-3.0, -4.0], rtol=1e-5)


def test_best_epoch_on_validation_loss_is_restored_and_steps_per_epoch_counts_batches(capsys):
    keras.utils.set_random_seed(0)
    images, masks, labels = tiny_data()
    cfg = tiny_config()
    model = mr.build_maskrcnn(config=cfg)
    seen: list = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((logs["val_loss"], [np.array(w) for w in self.model.get_weights()]))

    class Steps(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.n = 0

        def on_train_batch_end(self, batch, logs=None):
            self.n += 1

    steps = Steps()
    val = mr.make_dataset(images, masks, labels, cfg, 2, shuffle=False)
    history = mr.train_stages(model, lambda aug: mr.make_dataset(images, masks, labels, cfg, 2, augment=aug),
                              [mr.Stage("heads", 2, 5e-2), mr.Stage("all", 1, 1e-1, 1e-2, augment=True)],
                              val_dataset=val, optimizer="sgd", steps_per_epoch=3, callbacks=[Snapshot(), steps])
    assert steps.n == 9 and len(history) == 3
    lines = [line for line in capsys.readouterr().out.splitlines() if " epoch " in line]  # one per epoch
    assert [line.split(" (")[0] for line in lines] == ["stage 1 epoch 1/2", "stage 1 epoch 2/2", "stage 2 epoch 3/3"]
    assert all("loss" in line and "| val_loss" in line for line in lines)
    best = int(np.argmin([v for v, _ in seen]))
    assert history.attrs["best_epoch"] == best + 1 and history["best"].tolist() == [i == best for i in range(3)]
    for a, b in zip(model.get_weights(), seen[best][1]):
        np.testing.assert_array_equal(a, b)


def test_noise_augmentation_is_per_pixel_not_per_channel():
    image = np.full((16, 16, 3), 128.0, np.float32)
    img, _ = fd.augment_example(image, np.zeros((16, 16), np.uint8), [5, 6], force="noise")
    noise = np.asarray(img) - image
    assert np.abs(noise).max() > 1.0
    np.testing.assert_allclose(noise[..., 0], noise[..., 1], atol=1e-4)
    np.testing.assert_allclose(noise[..., 0], noise[..., 2], atol=1e-4)
    assert np.std(noise[..., 0]) > 1.0  # varies from pixel to pixel


def test_table_6_runs_are_named_configurations():
    assert list(study.REPORT_RUNS.index) == ["Base1", "Base2", "Base3", "Base4", "Full1", "Full2", "Full3", "Full4"]
    full4 = study.report_run_kwargs("Full4")
    assert (full4["epochs_heads"], full4["epochs_all"], full4["steps_per_epoch"]) == (10, 20, 5000)
    assert full4["augment"] is True and full4["pretrained"] == "COCO" and full4["label_set"] == "full"
    base4 = study.report_run_kwargs("Base4", scale=0.01)
    assert base4["image_size"] == 256 and base4["steps_per_epoch"] == 10 and base4["pretrained"] == "ImageNet"
    assert base4["augment"] == {"brightness_p": 0.0, "blur_or_noise_p": 0.0}
    assert study.report_run_kwargs("Base3")["steps_per_epoch"] == 18078
    table = study.report_runs_table({"Full4": "demo"})
    assert table.loc["Full4", "run here"] == "demo" and table.loc["Base1", "run here"] == ""
    with pytest.raises(ValueError, match="Full5"):
        study.report_run_kwargs("Full5")


def _box(y0, y1, x0, x1, size=20):
    m = np.zeros((size, size), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_the_matcher_counts_a_duplicate_of_the_top_prediction_as_a_false_positive():
    """Matterport's ``gt_match[j] > 0`` let the true mask matched by prediction 0 match again."""
    true = mi.Instances(np.stack([_box(0, 10, 0, 10)]), [3])
    dup = mi.Instances(np.stack([_box(0, 10, 0, 10), _box(0, 10, 0, 9)]), [3, 3], [0.9, 0.8])
    m = mi.match_instances(dup, true)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)


def test_two_per_class_post_processing_and_per_class_coco_ap():
    masks = np.stack([_box(0, 5, 0, 5), _box(0, 5, 6, 11), _box(6, 11, 0, 5), _box(12, 18, 0, 5)])
    inst = mi.Instances(masks, [1, 1, 1, 2], [0.5, 0.9, 0.7, 0.3])
    kept = study.limit_per_class(inst, 2)
    assert sorted(kept.scores.tolist()) == [0.3, 0.7, 0.9] and sorted(kept.labels.tolist()) == [1, 1, 2]
    truths = [mi.Instances(masks[[1, 3]], [1, 2])]
    coco = mi.coco_map50([inst], truths, n_classes=4)
    assert np.isnan(coco["per_class_ap"][0]) and np.isnan(coco["per_class_ap"][3])
    assert coco["per_class_ap50"][2] == pytest.approx(1.0) and coco["per_class_ap"][2] == pytest.approx(1.0)
    assert 0 < coco["per_class_ap50"][1] <= 1.0 and coco["map"] <= coco["map50"]


def _result(name, y_pred, ap, f1, seconds=0.1):
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]] * 10, np.int32)
    return study.ModelResult(name=name, kind="instance", emr=0, oa=0, jss=0, y_true=y, y_pred=y_pred,
                             seconds_per_image=seconds,
                             extra={"instance": {"ap": np.asarray(ap, float), "f1_per_image": np.asarray(f1, float)}})


def test_the_closing_comparison_is_generated_from_the_numbers_with_bootstrap_ties():
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]] * 10, np.int32)
    wrong = y.copy()
    wrong[::2, 0] ^= 1  # half the images get one label wrong
    a = _result("Mask R-CNN", y, [0.9] * 40, np.linspace(0.4, 0.6, 40))
    b = _result("RefineNet", wrong, [0.2] * 40, np.linspace(0.6, 0.4, 40))
    table = study.compare_models(a, b, n_boot=500)
    assert table.loc["emr", "better"] == "Mask R-CNN" and table.loc["map50", "better"] == "Mask R-CNN"
    assert table.loc["f1", "better"] == "tie"
    sentence = study.comparison_sentence(table, "Mask R-CNN", "RefineNet")
    assert sentence.startswith("Mask R-CNN is better on EMR") and "tie on F1" in sentence
    assert "RefineNet is better" not in sentence
    flipped = study.comparison_sentence(study.compare_models(b, a, n_boot=500), "RefineNet", "Mask R-CNN")
    assert "Mask R-CNN is better on EMR" in flipped and "TTO: RefineNet" in flipped


def test_results_table_shows_coco_ap_beside_the_reports_per_image_map():
    other = study.ModelResult(name="Mask R-CNN (later)", kind="instance", emr=0.4, oa=0.9, jss=0.7, map50=0.7,
                              f1=0.6, coco_map50=0.65, coco_map=0.41, seconds_per_image=1.2)
    row = study.results_table([other]).loc["Mask R-CNN (later) *"]
    assert row[("Table 9: test set", "mAP")] == 0.7
    assert row[("COCO mask AP (pycocotools)", "AP@50")] == 0.65
    assert row[("COCO mask AP (pycocotools)", "AP@[.5:.95]")] == 0.41
    assert other.metrics()["coco_map"] == 0.41
