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
