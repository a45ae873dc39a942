"""Tests of kerasmt.datasets.fairface: synthetic generator, reader, checker."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kerasmt.datasets import DatasetError
from kerasmt.datasets import fairface as ff

N_TRAIN, N_VAL, SIZE = 40, 20, 64


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """A small synthetic dataset shared by the read-only tests."""
    return ff.synthesize(tmp_path_factory.mktemp("ff") / "data", n_train=N_TRAIN, n_val=N_VAL,
                         seed=3, image_size=SIZE)


@pytest.fixture
def copy(synth, tmp_path) -> Path:
    """A private copy of the small dataset that a test may break."""
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(synth, dst)
    return dst


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_label_maps():
    assert ff.LABELS["gender"] == ["Male", "Female"]
    assert ff.LABELS["age"][0] == "0-2" and ff.LABELS["age"][-1] == "more than 70"
    assert ff.LABELS["race"][:4] == ["Black", "Latino_Hispanic", "East Asian", "White"]
    assert ff.N_CLASSES == {"gender": 2, "age": 9, "race": 7}
    assert ff.TASKS == ("gender", "age", "race")


def test_synthesize_load_round_trip(synth):
    assert (synth / ".complete").is_file()
    raw = pd.read_csv(synth / "fairface_label_train.csv")
    assert list(raw.columns) == ["file", "age", "gender", "race", "service_test"]
    assert raw["file"].iloc[0] == "train/1.jpg" and raw["file"].iloc[-1] == f"train/{N_TRAIN}.jpg"
    assert raw["service_test"].dtype == bool

    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        m = ff.load(synth, split)
        assert len(m) == n
        assert list(m.columns) == ["path", "file", "gender", "age", "race", "service_test"]
        for task in ff.TASKS:
            assert m[task].dtype == np.int64
            assert m[task].between(0, ff.N_CLASSES[task] - 1).all()
        assert all(os.path.isabs(p) and os.path.isfile(p) for p in m["path"])
        assert m["file"].str.startswith(f"{split}/").all()
        # codes agree with the CSV strings
        raw = pd.read_csv(synth / ff.CSV_FILES[split])
        for task in ff.TASKS:
            assert [ff.LABELS[task][c] for c in m[task]] == raw[task].tolist()
        with Image.open(m["path"].iloc[0]) as img:
            assert img.format == "JPEG" and img.mode == "RGB" and img.size == (SIZE, SIZE)
    assert ff.check(synth) == []


def test_class_counts_and_majority(synth):
    m = ff.load(synth, "val")
    counts = ff.class_counts(m, "age")
    assert list(counts.index) == ff.LABELS["age"]
    assert counts.sum() == N_VAL
    assert counts.tolist() == np.bincount(m["age"], minlength=9).tolist()
    toy = pd.DataFrame({"race": [3, 3, 3, 0, -1]})
    c = ff.class_counts(toy, "race")
    assert c["White"] == 3 and c["Black"] == 1 and c["Indian"] == 0 and c.sum() == 4
    assert ff.majority_baseline(toy, "race") == pytest.approx(0.75)


def test_deterministic_and_reused(tmp_path, monkeypatch):
    a = ff.synthesize(tmp_path / "a", n_train=12, n_val=6, seed=7, image_size=SIZE, workers=1)
    monkeypatch.setattr(ff, "_MIN_PARALLEL", 4)  # use the process pool even for 12 images
    b = ff.synthesize(tmp_path / "b", n_train=12, n_val=6, seed=7, image_size=SIZE, workers=2)
    da, db = _digest(a), _digest(b)
    assert len(da) == 12 + 6 + 3 and da == db
    c = ff.synthesize(tmp_path / "c", n_train=12, n_val=6, seed=8, image_size=SIZE)
    assert _digest(c)["train/1.jpg"] != da["train/1.jpg"]
    # a complete folder is reused, not rewritten
    mtime = (a / "train" / "1.jpg").stat().st_mtime_ns
    assert ff.synthesize(a, n_train=12, n_val=6, seed=7, image_size=SIZE) == a
    assert (a / "train" / "1.jpg").stat().st_mtime_ns == mtime
    # ... but other parameters on the same folder are refused without overwrite
    with pytest.raises(DatasetError, match="overwrite"):
        ff.synthesize(a, n_train=5, n_val=6, seed=7, image_size=SIZE)
    ff.synthesize(a, n_train=5, n_val=2, seed=7, image_size=SIZE, overwrite=True)
    assert len(ff.load(a, "train")) == 5 and not (a / "train" / "6.jpg").exists()
    assert json.loads((a / ".complete").read_text())["n_train"] == 5


def test_half_written_folder_is_refused(tmp_path):
    root = tmp_path / "half"
    (root / "train").mkdir(parents=True)
    (root / "train" / "1.jpg").write_bytes(b"partial")
    with pytest.raises(DatasetError, match=r"\.complete"):
        ff.synthesize(root, n_train=4, n_val=2, image_size=SIZE)
    ff.synthesize(root, n_train=4, n_val=2, image_size=SIZE, overwrite=True)
    assert ff.check(root) == []


def test_label_frequencies():
    labels = ff.sample_labels(60_000, np.random.default_rng(0))
    male = (labels["gender"] == 0).mean()
    assert 0.52 < male < 0.54
    age = np.bincount(labels["age"], minlength=9) / 60_000
    real = np.array([199, 1356, 1181, 3300, 2330, 1353, 796, 321, 118]) / 10954
    np.testing.assert_allclose(age, real, atol=0.006)
    race = np.bincount(labels["race"], minlength=7) / 60_000
    expected = dict(zip(ff.LABELS["race"], [0.14, 0.15, 0.14, 0.19, 0.12, 0.11, 0.14]))
    for name, share in zip(ff.LABELS["race"], race):
        assert abs(share - expected[name]) < 0.01, name
    # class counts are the rounded shares, even for small n; n = 10,954 gives the real val counts
    for n in (40, 1200):
        small = ff.sample_labels(n, np.random.default_rng(1))
        for task in ff.TASKS:
            counts = np.bincount(small[task], minlength=ff.N_CLASSES[task])
            assert counts.sum() == n
            assert np.abs(counts - n * ff.SYNTHETIC_FREQUENCIES[task]).max() < 1, (n, task, counts)
    val_like = ff.sample_labels(10954, np.random.default_rng(2))
    assert np.bincount(val_like["age"]).tolist() == [199, 1356, 1181, 3300, 2330, 1353, 796, 321, 118]
    lo = np.array([0, 3, 10, 20, 30, 40, 50, 60, 70])[labels["age"]]
    hi = np.array([3, 10, 20, 30, 40, 50, 60, 70, 90])[labels["age"]]
    assert ((labels["age_years"] >= lo) & (labels["age_years"] < hi)).all()


def test_majority_baselines_of_synthetic_val(tmp_path):
    # labels alone (no drawing) of the default synthetic validation split
    labels = ff.sample_labels(1200, np.random.default_rng([0, 2, 0]))
    m = pd.DataFrame({t: labels[t] for t in ff.TASKS})
    assert 0.48 < ff.majority_baseline(m, "gender") < 0.58
    assert 0.26 < ff.majority_baseline(m, "age") < 0.34


def test_unknown_split(synth):
    with pytest.raises(ValueError, match=r"'train'.*'val'"):
        ff.load(synth, "test")


def test_load_missing_csv(copy):
    (copy / "fairface_label_val.csv").unlink()
    with pytest.raises(DatasetError, match="fairface_label_val.csv: file not found"):
        ff.load(copy, "val")


def test_load_missing_column(copy):
    csv = copy / "fairface_label_train.csv"
    pd.read_csv(csv).drop(columns="race").to_csv(csv, index=False)
    with pytest.raises(DatasetError) as err:
        ff.load(copy, "train")
    msg = str(err.value)
    assert "fairface_label_train.csv" in msg and "missing column(s) ['race']" in msg


def test_load_bad_label_value(copy):
    csv = copy / "fairface_label_train.csv"
    frame = pd.read_csv(csv)
    frame.loc[4, "gender"] = "Robot"  # data row 5 = csv line 6
    frame.loc[9, "age"] = "100+"
    frame.to_csv(csv, index=False)
    with pytest.raises(DatasetError) as err:
        ff.load(copy, "train")
    msg = str(err.value)
    assert "2 bad value(s)" in msg
    assert "fairface_label_train.csv: line 6 (data row 5): column 'gender': bad value 'Robot'" in msg
    assert "['Male', 'Female']" in msg
    assert "line 11 (data row 10): column 'age': bad value '100+'" in msg
    assert len(err.value.problems) == 2


def test_load_empty_label_is_missing(copy):
    csv = copy / "fairface_label_val.csv"
    frame = pd.read_csv(csv)
    frame["race"] = frame["race"].astype(object)
    frame.loc[2, "race"] = None
    frame.to_csv(csv, index=False)
    m = ff.load(copy, "val")
    assert m["race"].iloc[2] == -1 and (m["race"].drop(index=2) >= 0).all()


def test_load_missing_image_files(copy):
    (copy / "train" / "3.jpg").unlink()
    (copy / "train" / "17.jpg").unlink()
    with pytest.raises(DatasetError) as err:
        ff.load(copy, "train")
    msg = str(err.value)
    assert "2 of 40 listed image file(s) not found" in msg
    assert str(copy / "train" / "3.jpg") in msg and str(copy / "train" / "17.jpg") in msg
    assert len(ff.load(copy, "train", check_files=False)) == N_TRAIN


def test_check_reports_every_problem(copy):
    train_csv, val_csv = copy / "fairface_label_train.csv", copy / "fairface_label_val.csv"
    frame = pd.read_csv(train_csv)
    frame.loc[2, "race"] = "Martian"  # line 4
    frame.loc[7, "file"] = frame.loc[6, "file"]  # line 9 duplicates line 8 (train/7.jpg)
    frame.to_csv(train_csv, index=False)
    (copy / "train" / "12.jpg").unlink()  # line 13
    (copy / "train" / "20.jpg").write_bytes(b"this is not a jpeg")  # line 21
    data = (copy / "train" / "25.jpg").read_bytes()
    (copy / "train" / "25.jpg").write_bytes(data[: len(data) // 2])  # truncated, line 26
    pd.read_csv(val_csv).drop(columns="gender").to_csv(val_csv, index=False)

    problems = ff.check(copy)
    assert len(problems) == 6, "\n".join(problems)
    joined = "\n".join(problems)
    assert "fairface_label_train.csv: line 4 (data row 3): column 'race': bad value 'Martian'" in joined
    assert "fairface_label_train.csv: line 9 (data row 8): duplicate file entry 'train/7.jpg'" in joined
    assert "fairface_label_train.csv: line 13 (data row 12): image file not found" in joined
    assert any("line 21" in p and "train/20.jpg" in p and "cannot be decoded" in p for p in problems)
    assert any("line 26" in p and "train/25.jpg" in p and "cannot be decoded" in p for p in problems)
    assert any("fairface_label_val.csv: missing column(s) ['gender']" in p for p in problems)
    # without decoding the two corrupt images pass
    assert len(ff.check(copy, decode=False)) == 4


def test_check_missing_csv_and_folder(copy, tmp_path):
    (copy / "fairface_label_train.csv").unlink()
    problems = ff.check(copy)
    assert problems == [f"{copy / 'fairface_label_train.csv'}: label file not found "
                        f"(expected columns ['file', 'age', 'gender', 'race'])"]
    assert "dataset folder not found" in ff.check(tmp_path / "nowhere")[0]


def test_synthetic_root_uses_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASMT_CACHE", str(tmp_path / "cache"))
    root = ff.synthetic_root(n_train=6, n_val=3, seed=1, image_size=32)
    assert root.parent == tmp_path / "cache" / "synthetic"
    assert root.name.startswith("fairface")
    assert len(ff.load(root, "train")) == 6 and len(ff.load(root, "val")) == 3
    assert ff.synthetic_root(n_train=6, n_val=3, seed=1, image_size=32) == root
