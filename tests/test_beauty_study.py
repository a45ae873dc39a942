"""kerasmt.studies.beauty without training: data loading and regrouping, metrics, tables, plots."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kerasmt import regroup
from kerasmt.datasets import folder_classes as fc
from kerasmt.studies import beauty as study


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = fc.synthesize(tmp_path_factory.mktemp("beauty") / "raw", n=10, seed=0, image_size=40)
    return study.load_data(root, image_size=32)


def _result(regime: str, proba: np.ndarray, y: np.ndarray, epochs: int = 3) -> study.RegimeResult:
    history = pd.DataFrame({"loss": np.linspace(2, 1, epochs), "val_loss": [1.5, 1.2, 1.4][:epochs],
                            "accuracy": np.linspace(0.1, 0.5, epochs), "val_accuracy": np.linspace(0.1, 0.4, epochs)},
                           index=pd.RangeIndex(1, epochs + 1, name="epoch"))
    return study.RegimeResult(f"full_{regime}", regime, proba.shape[1], history, y, proba, 1.0, 100)


def test_load_data_splits_and_regroup(data):
    assert data.n_classes == 73 and data.image_size == 32
    sizes = {s: len(m) for s, m in data.manifests.items()}
    assert sizes == {"train": 72 * 8 + 7, "validation": 73, "test": 73}  # toothbrushes: 9 -> 7/1/1
    assert data.images["train"].shape == (sizes["train"], 32, 32, 3) and data.images["train"].dtype == np.uint8
    counts = data.counts()
    assert counts["total"].sum() == sum(sizes.values()) and list(counts.index) == data.class_names
    grouping = regroup.groups_from_mapping(fc.REPORT_GROUPS, data.class_names)
    grouped = data.regroup(grouping)
    assert grouped.n_classes == 45 and grouped.images["train"] is data.images["train"]  # no copy
    assert grouped.labels("train").max() == 44
    assert (grouped.manifests["train"]["fine_label"] == data.labels("train")).all()
    x, y = next(iter(grouped.dataset("validation", batch_size=16)))
    assert x.shape == (16, 32, 32, 3) and float(x.numpy().max()) <= 1.0
    assert np.array_equal(y.numpy(), grouped.labels("validation")[:16])
    described = data.describe()
    assert described.loc["train", "report images"] == 58_304


def test_top_k_and_test_result():
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.3, 0.5], [0.1, 0.6, 0.3]])
    assert study.top_k_accuracy(y, proba, 1) == 0.5
    assert study.top_k_accuracy(y, proba, 2) == 1.0
    assert study.top_k_accuracy(y, proba, 5) == 1.0  # k above the class count
    t = study.TestResult("m", "ft-1", y, proba, ["a", "b", "c"])
    f1 = t.per_class_f1()
    assert t.accuracy == 0.5 and list(f1.columns) == ["precision", "recall", "f1", "support"]
    assert f1.loc["a", "f1"] == pytest.approx(2 / 3, abs=1e-3) and f1.loc["b", "f1"] == 0.0
    assert t.macro_f1 == pytest.approx(t.per_class_f1(digits=None)["f1"].mean(), abs=1e-12)


def test_results_tables_metrics_and_plots(data):
    rng = np.random.default_rng(0)
    y = data.labels("validation")
    sharp = np.eye(73)[y] * 5 + rng.random((len(y), 73))
    results = {"tl": _result("tl", rng.random((len(y), 73)), y),
               "ft-3": _result("ft-3", sharp / sharp.sum(1, keepdims=True), y)}
    assert study.best_result(results).regime == "ft-3"
    assert results["tl"].best_epoch == 2 and results["ft-3"].val_accuracy == 1.0
    table = study.sweep_table(results)
    assert table.loc["tl", "report val accuracy"] == 0.2564 and table.loc["ft-3", "val accuracy"] == 1.0
    grouping = study.find_groups(results["tl"], data, n_groups=42)
    assert grouping.n_groups == 42
    agreement = study.grouping_agreement(grouping, data)
    assert set(agreement) == {"ari_vs_designed", "ari_vs_report_groups"}
    test = study.TestResult("full_ft3", "ft-3", y, results["ft-3"].val_proba, data.class_names)
    metrics = study.metrics_summary(data, {"full": results}, {"full": test}, grouping)
    assert metrics["sweep"]["full"]["ft-3"]["val_accuracy"] == 1.0
    assert set(metrics["sweep"]["full"]["tl"]) >= {"val_accuracy", "val_top5"}
    assert metrics["test"]["full"]["best_regime"] == "ft-3" and metrics["test"]["full"]["top5"] == 1.0
    assert len(metrics["groups"]["mapping"]) == 73
    assert metrics["summary"]["best_regime"] == "ft-3" and metrics["summary"]["groups"] == 42
    assert metrics["report"]["test"]["full"]["accuracy"] == 0.3733
    comparison = study.comparison_table({"full": results}, {"full": test})
    assert comparison.loc[("full", "report"), "best regime"] == "ft-6"
    fig = study.plot_accuracy_vs_k({"full": results})
    assert len(fig.axes[0].lines) == 2  # ours and the report's
    ours = fig.axes[0].lines[0].get_ydata()
    # tl and ft-3 were run, ft-1 and ft-2 were not: no line may join them (NaN gaps)
    assert len(ours) == 4 and np.isnan(ours[1]) and np.isnan(ours[2]) and not np.isnan(ours[3])
    assert fig.dpi >= 100 and fig.axes[1].get_ylabel().startswith("validation loss")
    histories = study.plot_histories(results)
    assert len(histories.axes) == 4  # accuracy and loss per regime
    assert [ax.get_ylabel() for ax in histories.axes] == ["accuracy", "accuracy", "loss", "loss"]
    assert all(float(t).is_integer() for t in histories.axes[0].get_xticks())  # integer epochs
    # the fine model counted per group on the test split, and the problem-image gallery
    assert metrics["test"]["full"]["group_accuracy"] == 1.0
    wrong = study.TestResult("full_tl", "tl", y, results["tl"].val_proba, data.class_names)
    idx = study.problem_images(wrong, 5)
    assert len(idx) == 5 and len(set(y[idx])) == 5 and np.all(wrong.y_pred[idx] != y[idx])
    p_true = wrong.proba[idx, y[idx]]
    assert np.all(np.diff(p_true) >= 0)  # worst first
    gallery = study.plot_problem_images(wrong, data, 5)
    assert all(ax.title.get_fontsize() >= 8 for ax in gallery.axes if ax.title.get_text())


def test_top_k_ties_are_deterministic_and_macro_f1_unrounded():
    # four classes tied at the top: the lowest class indices win, the same on every call
    proba = np.array([[0.25, 0.25, 0.25, 0.25, 0.0, 0.0]] * 3)
    assert study.top_k(proba, 2).tolist() == [[0, 1]] * 3
    assert study.top_k_accuracy(np.array([1, 2, 3]), proba, 2) == pytest.approx(1 / 3)
    # per-class F1 of 1/3, 1/3, 1/3 averages to 1/3, not to the rounded 0.333
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    pred = np.array([0, 1, 2, 1, 2, 0, 2, 0, 1])
    t = study.TestResult("m", "tl", y, np.eye(3)[pred], ["a", "b", "c"])
    assert t.macro_f1 == pytest.approx(1 / 3, abs=1e-12) and t.macro_f1 != 0.333
    assert t.per_class_f1(digits=None)["f1"].tolist() == pytest.approx([1 / 3] * 3)


def test_cached_training_without_copies_warns(data):
    # augment=True with cached features and no augmented copies trained with no augmentation at all
    with pytest.warns(UserWarning, match="no augmentation"):
        res = study.train_regime(data, "tl", data.root.parent / "out", backbone="EfficientNetB0", weights=None,
                                 epochs=1, batch_size=64,
                                 cache_features=True, augment_copies=0, save=False)
    assert res.augmentation == "none" and study.sweep_table({"tl": res}).loc["tl", "augmentation"] == "none"


def test_resolve_weights(data, tmp_path):
    assert study.resolve_weights("imagenet", data)[0] == "imagenet"
    assert study.resolve_weights(None, data)[0] is None
    assert "random" in study.resolve_weights(None, data)[1]
    local = tmp_path / "w.weights.h5"
    local.write_bytes(b"x")
    assert study.resolve_weights(str(local), data)[0] == str(local)
    with pytest.raises(ValueError, match="nope.h5"):
        study.resolve_weights(str(tmp_path / "nope.h5"), data)


def test_report_numbers():
    assert study.REPORT_SWEEP["full"]["ft-6"] == max(study.REPORT_SWEEP["full"].values()) == 0.3873
    assert set(study.REPORT_SWEEP["grouped"]) == set(study.REPORT_REGIMES)  # all ten grouped values
    assert study.REPORT_SWEEP["grouped"]["ft-6"] == 0.4940
    assert max(study.REPORT_SWEEP["grouped"], key=study.REPORT_SWEEP["grouped"].get) == "ft-7"
    assert len(study.REPORT_SWEEP["full"]) == 10 and study.REPORT_REGIMES[-1] == "ft-9"
    assert study.REPORT_TEST["grouped"] == {"best_regime": "ft-7", "val_accuracy": 0.5045, "accuracy": 0.5003,
                                            "n_classes": 42}
    assert study.REPORT_SCRATCH == {"InceptionV3": 0.2846, "ResNet50": 0.1450, "SimpleNet": 0.1504}


def test_standin_pretraining_prints_one_line_per_epoch(tmp_path, capsys):
    path = study.pretrain_standin("MobileNetV2", image_size=32, n_images=8, epochs=2, batch_size=8, folder=tmp_path)
    assert path.is_file()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("pretraining epoch")]
    assert [line.split(" (")[0] for line in lines] == ["pretraining epoch 1/2", "pretraining epoch 2/2"]
