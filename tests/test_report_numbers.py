"""Numbers labelled as the reports' are computed the way their labels say (issue 17): baselines,
macro-F1, parameter counts and the report-consistency checks, all without training."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from kerasmt.metrics import MACRO_F1_DEFINITION, macro_f1, majority_baseline_accuracy, present_classes


def test_majority_baseline_uses_the_training_majority():
    train = np.array([0, 0, 0, 1, -1])
    test = np.array([1, 1, 1, 0, -1])
    assert majority_baseline_accuracy(train, test) == pytest.approx(0.25)  # class 0 from train, not 1
    assert np.isnan(majority_baseline_accuracy([-1], [0]))


def test_one_macro_f1_in_tables_and_printed_reports():
    from kerasmt.studies import attribute_mtl as study

    # an 11-class task where only classes 0, 1 and 2 occur: absent classes are not averaged in as 0
    y_true = np.array([0, 0, 1, 1, 2, 2, -1])
    y_pred = np.array([0, 0, 1, 2, 2, 2, 5])
    assert present_classes(y_true, y_pred) == [0, 1, 2]
    value = macro_f1(y_true, y_pred)
    assert value == pytest.approx((1 + 2 / 3 + 0.8) / 3)
    tasks = study.TASKS
    res = study.AttributeResult("toy", None, pd.DataFrame(), 0.0, {t: y_true for t in tasks},
                                {t: y_pred for t in tasks}, {}, {}, {}, {})
    text = res.classification_report("torso_colour")
    printed = float(re.search(r"macro avg\s+\S+\s+\S+\s+(\S+)", text).group(1))
    assert printed == pytest.approx(value, abs=5e-3)
    assert "present" in MACRO_F1_DEFINITION


def test_attribute_comparison_flags_the_reports_accuracies_below_majority():
    from kerasmt.studies import attribute_mtl as study

    assert study.REPORT_TEST_MAJORITY["torso_type"] == pytest.approx(0.617, abs=5e-4)
    assert study.REPORT_TEST_MAJORITY["luggage"] == pytest.approx(0.689, abs=5e-4)
    below = {t for t in study.TASKS if study.REPORT_TEST_ACCURACY[t] < study.REPORT_TEST_MAJORITY[t]}
    assert below == {"torso_type", "luggage"}
    # the default network is the report's: no L2 on the kernels
    model = study.build_model("mtl")
    assert model.count_params() == 518_190
    assert all(getattr(layer, "kernel_regularizer", None) is None for layer in model.layers)
    assert any(getattr(layer, "kernel_regularizer", None) is not None
               for layer in study.build_model("mtl", weight_decay=1e-4).layers)


def test_paired_bootstrap_calls_overlapping_differences_a_tie():
    from kerasmt.metrics import paired_bootstrap

    rng = np.random.default_rng(0)
    a = rng.random(200) < 0.6
    same = paired_bootstrap(a, a)
    assert same["difference"] == 0 and same["verdict"] == "tie"
    b = a.copy()
    b[:3] = ~b[:3]  # three images differ: inside the noise
    assert paired_bootstrap(a, b)["verdict"] == "tie"
    better = paired_bootstrap(np.ones(200), a)
    assert better["verdict"] == "a" and better["low"] > 0
    with pytest.raises(ValueError, match="equal length"):
        paired_bootstrap([1, 0], [1])


def test_utkface_report_consistency_and_ranking_sensitivity():
    from kerasmt.studies import utkface as study

    table = study.report_consistency()
    assert table.loc["Table 3 (backbones)", "k/499"].all() and not table.loc["Table 3 (backbones)", "k/999"].any()
    assert table.loc["Table 4 (head orders)", "k/999"].all() and not table.loc["Table 4 (head orders)", "k/499"].any()
    assert "84.37%" in table.loc["Model B", "note"].iloc[0]
    noise = study.report_seed_noise()
    assert noise["gender_accuracy"] == pytest.approx(0.0422)
    sens = study.ranking_sensitivity(seed_noise=noise["score"])
    assert sens.loc[10, "winner"] == 10 and sens.loc[10, "margin"] == pytest.approx(0.0009, abs=1e-4)
    assert sens.loc[5, "winner"] == 5 and sens.loc[30, "winner"] == 19  # the choice flips with the scale
    assert sens["tie (margin < seed noise)"].all()  # every margin is below the seed noise
    # a search table (with a cnn column) works the same way
    search = pd.DataFrame({"cnn": [1, 2], "gender_accuracy": [0.9, 0.8], "age_mae": [8.0, 5.0]})
    flips = study.ranking_sensitivity(search, scales=(1, 100))
    assert flips["winner"].tolist() == [2, 1]


def test_utkface_seed_comparison_calls_overlaps_ties():
    from kerasmt.studies import utkface as study

    def run(seed, acc, mae):
        return study.TrainResult("m", None, pd.DataFrame(), {"gender_accuracy": acc, "age_mae": mae}, None, None, 0.0, seed)

    a = [run(0, 0.80, 6.0), run(1, 0.84, 6.4)]
    b = [run(0, 0.81, 6.1), run(1, 0.83, 6.3)]
    c = [run(0, 0.95, 3.0), run(1, 0.96, 3.1)]
    table = study.seed_comparison({"a": a, "b": b, "c": c}, reference="a")
    assert table.loc["b", "gender_accuracy verdict"] == "tie" and table.loc["b", "age_mae verdict"] == "tie"
    assert table.loc["c", "gender_accuracy verdict"] == "better" and table.loc["c", "age_mae verdict"] == "better"
    one = study.seed_comparison({"a": a[:1], "c": c[:1]}, reference="a")
    assert one.loc["c", "gender_accuracy verdict"] == "one seed: no spread"


def test_fairface_vae_loss_identity_and_gender_metrics():
    from kerasmt.studies import fairface as study

    identity = study.vae_loss_identity()
    values = list(identity.values())
    assert values[0] == pytest.approx(values[1], rel=1e-12)
    assert study.MULTITASK_PARAMS == {"gender_age": 106_315, "gender_age_race": 147_922}
    table = study.param_table()
    assert table.loc["multitask_gender_age", "params"] == 106_315
    assert table.loc["multitask_gender_age_race", "params"] == 147_922
    # the report's "precision" cm[0,0] / cm[0].sum() on its own matrix is the recall of Male
    cm = np.array([[4536, 1256], [1130, 4032]])
    y_true = np.repeat([0, 0, 1, 1], cm.ravel())
    y_pred = np.repeat([0, 1, 0, 1], cm.ravel())
    res = study.ClassifierResult("small_cnn_gender", "small_cnn", ["gender"], None, pd.DataFrame(),
                                 {"gender": y_true}, {"gender": y_pred}, {"gender": cm},
                                 {"gender": float(np.trace(cm) / cm.sum())}, {"gender": 0.0}, 0.0)
    metrics = study.gender_metrics({"small_cnn_gender": res})
    row = metrics.loc["small_cnn_gender"]
    assert row["report's 'precision' formula (= Male recall)"] == pytest.approx(0.7831, abs=1e-4)
    assert row["report 'precision'"] == 0.7831
    assert row["Male precision"] == pytest.approx(4536 / (4536 + 1130), abs=1e-4)
    assert row["accuracy"] == pytest.approx(0.7822, abs=1e-4)


def test_fairface_reports_the_saved_weights_on_a_held_out_test_split(tmp_path):
    import keras

    from kerasmt.studies import fairface as study

    data = study.load_data(None, 200, 60, seed=0, limit=120, synthetic_image_size=64, test_fraction=0.25)
    assert data.eval_split == "test" and len(data.test) == 30 and len(data.train) == 90
    assert not set(data.test["path"]) & set(data.train["path"])
    res = study.train_classifier("own_cnn", "gender", data, epochs=3, out_dir=tmp_path, early_stopping=1)
    assert res.split == "test" and res.weights.startswith("best val_loss epoch")
    assert len(res.y_true["gender"]) == 30
    # the saved model is the reported one: same predictions on the test split
    saved = keras.saving.load_model(res.checkpoint)
    pred = np.argmax(saved.predict(data.x_test.astype("float32") / 255.0, verbose=0), axis=-1)
    assert np.array_equal(pred, res.y_pred["gender"])
    fixed = study.train_classifier("own_cnn", "gender", data, epochs=2, out_dir=tmp_path / "fixed")
    assert fixed.weights == "final epoch 2"
    table = study.comparison_table({"own_cnn_gender": res}, data)
    assert table.loc[0, "split"] == "test" and "optimistic" in " ".join(table.columns)
