"""kerasmt.studies.utkface: the report's numbers, data preparation, baselines, fairness tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kerasmt.studies import utkface as study


def test_report_tables_and_our_objective_picks_cnn_10():
    table = study.report_table2()
    assert len(table) == 24 and table.index.tolist() == list(range(1, 25))
    assert table["score"].idxmin() == study.REPORT_CHOSEN_CNN == 10
    assert study.report_config(10) == {"n_blocks": 5, "n_dense": 3, "units": 300, "split_point": 1}
    assert study.report_config(14) == study.report_config(23)  # same config, 4 points apart in the report
    with pytest.raises(ValueError, match="no CNN 25"):
        study.report_config(25)
    assert max(study.REPORT_TABLE3, key=lambda k: study.REPORT_TABLE3[k][0]) == "Xception"
    assert max(study.REPORT_TABLE4, key=study.REPORT_TABLE4.get) == "dense-dropout"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("utk-study")
    return study.load_data(None, subset=100, seed=0, image_size=16, n_synthetic=120, synthetic_image_size=32,
                           out_dir=root / "run")


def test_load_data_draws_splits_and_saves_them(data):
    assert data.synthetic and len(data.manifest) == 120 and len(data.skipped) == 3
    assert len(data.subset) == 100
    assert {s: {k: len(v) for k, v in p.items()} for s, p in data.splits.items()} == {
        "search": {"train": 80, "val": 10, "test": 10},
        "report_final": {"train": 90, "test": 10},
        "final": {"train": 80, "val": 10, "test": 10},
    }
    names = sorted(p.name for p in data.split_files.values())
    assert "subset.csv" in names and "final_test.csv" in names and "search_val.csv" in names
    saved = pd.read_csv(data.split_files["final_test"])
    assert saved["file"].tolist() == data.frame("final", "test")["file"].tolist()
    assert data.images_at().shape == (100, 16, 16, 3)
    images = data.images("final", "test")
    np.testing.assert_array_equal(images, data.images_at()[data.frame("final", "test")["row"].to_numpy()])
    x, y = next(iter(data.dataset("final", "train", batch_size=8)))
    assert x.shape == (8, 16, 16, 3) and x.dtype.name == "float32"
    assert y["age"].dtype.name == "float32" and y["gender"].dtype.name == "int32"
    assert sum(1 for _ in data.dataset("final", "train", batch_size=32)) == 2  # 80 images, remainder dropped
    x, _ = next(iter(data.dataset("final", "val", batch_size=None)))
    assert x.shape[0] == 10  # one batch holds a small split
    assert set(data.describe().index.get_level_values(0)) == {"search", "report_final", "final"}


def test_baselines_on_the_test_split(data):
    base = study.baselines(data)
    train, test = data.frame("final", "train"), data.frame("final", "test")
    majority = int(train["gender"].mean() >= 0.5)
    assert base["majority_gender_accuracy"] == pytest.approx((test["gender"] == majority).mean())
    assert base["mean_age_mae"] == pytest.approx(np.abs(test["age"] - train["age"].mean()).mean())


def test_metrics_of_and_age_bands():
    m = study.metrics_of(np.array([10.0, 20, 30]), np.array([0, 1, 1]), np.array([12.0, 20, 27]),
                         np.array([0.2, 0.6, 0.4]))
    assert m["gender_accuracy"] == pytest.approx(2 / 3) and m["age_mae"] == pytest.approx(5 / 3)
    assert m["score"] == pytest.approx(1 / 3 + 1 / 6)
    bands = study.age_band(np.array([0, 9.9, 10, 69, 70, 116]))
    assert list(bands.astype(str)) == ["0-9", "0-9", "10-19", "60-69", "70+", "70+"]


def test_fairness_tables_group_errors_by_age_band_and_race():
    frame = pd.DataFrame({"age": [5.0, 25, 27, 80], "gender": [0, 1, 1, 0], "race": [0, 1, 1, 0]})
    preds = {"A": (np.array([7.0, 25, 30, 70]), np.array([0.1, 0.9, 0.2, 0.6]))}
    by_age, by_race = study.fairness_tables(frame, preds)
    assert by_age.loc["0-9", "images"] == 1 and by_age.loc["0-9", "A MAE"] == 2.0
    assert by_age.loc["20-29", "A MAE"] == 1.5 and by_age.loc["70+", "A MAE"] == 10.0
    assert by_age.loc["30-39", "images"] == 0 and np.isnan(by_age.loc["30-39", "A MAE"])
    assert by_race.loc["White", "A gender acc"] == 0.5 and by_race.loc["Black", "A gender acc"] == 0.5
    assert by_race.loc["Indian", "images"] == 0


def test_augmentation_is_the_reports_and_keeps_shapes():
    aug = study.augmentation(0)
    assert [type(layer).__name__ for layer in aug.layers] == ["RandomFlip", "RandomTranslation", "RandomZoom",
                                                                "RandomRotation"]
    assert aug.layers[2].height_factor == (-0.2, 0.0)  # zoom in only
    assert aug.layers[3].factor == pytest.approx((-10 / 360, 10 / 360))
    x = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    out = np.asarray(aug(x, training=True))
    assert out.shape == x.shape and not np.allclose(out, x)
    np.testing.assert_allclose(np.asarray(aug(x, training=False)), x)  # nothing at inference


def test_head_training_on_cached_features_prints_one_line_per_epoch(data, capsys):
    from kerasmt.models import transfer
    from kerasmt.models.vgg import compile_age_gender

    rng = np.random.default_rng(0)
    features = {s: rng.random((len(data.labels("final", s)["age"]), 4), dtype=np.float32) for s in ("train", "val")}
    heads = compile_age_gender(transfer.age_gender_heads(4, transfer.HEAD_ORDERS["dense-dropout"], 4, age_bias=30.0))
    study._fit_heads(heads, data, features, 2, 32, 0, name="probe heads")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("probe heads epoch")]
    assert [line.split(" (")[0] for line in lines] == ["probe heads epoch 1/2", "probe heads epoch 2/2"]
    assert all("| val_loss" in line for line in lines)
