"""kerasmt.datasets.utkface: file-name reader, malformed names, splits as CSV, synthetic generator."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from kerasmt.datasets import DatasetError
from kerasmt.datasets import utkface as utk


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return utk.synthesize(tmp_path_factory.mktemp("utk") / "faces", n=40, seed=3, image_size=32)


def _touch_jpeg(path):
    from PIL import Image

    Image.new("RGB", (8, 8), (120, 80, 60)).save(path, format="JPEG")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("26_1_3_20170119193407522.jpg.chip.jpg", (26, 1, 3, "20170119193407522")),
        ("1_0_0_20161219140623097.jpg", (1, 0, 0, "20161219140623097")),
        ("116_0_4_20170120134921760.jpg.chip.jpg", (116, 0, 4, "20170120134921760")),
    ],
)
def test_parse_name_reads_the_four_fields(name, expected):
    labels = utk.parse_name(name)
    assert (labels.age, labels.gender, labels.race, labels.datetime) == expected


@pytest.mark.parametrize(
    "name, reason",
    [
        ("39_1_20170116174525125.jpg.chip.jpg", "3 '_'-separated field(s)"),  # real broken name: no race
        ("61_1_20170109142408075.jpg.chip.jpg", "expected 4"),
        ("a_1_2_20170116174525125.jpg.chip.jpg", "non-numeric"),
        ("25_2_1_20170116174525125.jpg.chip.jpg", "gender 2"),
        ("25_1_5_20170116174525125.jpg.chip.jpg", "race 5"),
        ("130_1_1_20170116174525125.jpg.chip.jpg", "age 130"),
        ("25_1_1_20170116174525125.png", "non-numeric field or wrong extension"),
    ],
)
def test_parse_name_rejects_malformed_names_with_the_reason(name, reason):
    with pytest.raises(ValueError) as info:
        utk.parse_name(name)
    assert name in str(info.value) and reason in str(info.value)


def test_load_skips_malformed_names_with_one_counted_warning(tmp_path):
    good = ["26_1_3_20170119193407522.jpg.chip.jpg", "3_0_0_20170119193407523.jpg.chip.jpg"]
    bad = ["39_1_20170116174525125.jpg.chip.jpg", "x_1_2_20170116174525126.jpg.chip.jpg"]
    for name in good + bad:
        _touch_jpeg(tmp_path / name)
    (tmp_path / "README.txt").write_text("not an image")  # ignored silently
    with pytest.warns(utk.MalformedNameWarning) as record:
        manifest = utk.load(tmp_path)
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 2 of 4" in message and bad[0] in message and bad[1] in message
    assert sorted(manifest["file"]) == sorted(good)
    assert len(manifest.attrs["skipped"]) == 2
    assert manifest["age"].dtype == np.float64  # float: the pipeline keeps it float32 (regression)
    assert manifest["gender"].dtype == np.int64 and manifest["race"].dtype == np.int64
    row = manifest.set_index("file").loc[good[0]]
    assert (row["age"], row["gender"], row["race"]) == (26.0, 1, 3)
    assert row["path"] == str(tmp_path.resolve() / good[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        utk.load(tmp_path, warn=False)  # silenced on request


def test_load_errors_name_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        utk.load(tmp_path / "missing")
    sub = tmp_path / "UTKFace"
    sub.mkdir()
    _touch_jpeg(sub / "26_1_3_20170119193407522.jpg.chip.jpg")
    with pytest.raises(DatasetError) as info:
        utk.load(tmp_path)
    assert "no image named" in str(info.value) and "UTKFace" in str(info.value)


def test_check_lists_malformed_names_and_broken_images(tmp_path):
    _touch_jpeg(tmp_path / "26_1_3_20170119193407522.jpg.chip.jpg")
    _touch_jpeg(tmp_path / "39_1_20170116174525125.jpg.chip.jpg")
    (tmp_path / "30_0_1_20170119193407599.jpg.chip.jpg").write_bytes(b"not a jpeg")
    problems = utk.check(tmp_path)
    assert len(problems) == 2
    assert any("39_1_20170116174525125" in p and "malformed" in p for p in problems)
    assert any("30_0_1_20170119193407599" in p and "cannot be decoded" in p for p in problems)
    assert utk.check(tmp_path / "nope") == [f"{(tmp_path / 'nope').resolve()}: dataset folder not found"]


def test_synthetic_dataset_uses_the_real_layout_and_is_reproducible(synthetic, tmp_path):
    with pytest.warns(utk.MalformedNameWarning, match="skipped 3 of 43"):
        manifest = utk.load(synthetic)  # 3 broken names like the real dataset's
    assert len(manifest) == 40
    assert all(f.endswith(".jpg.chip.jpg") for f in manifest["file"])
    assert utk.check(synthetic, decode=True) and all("malformed" in p for p in utk.check(synthetic))
    assert set(manifest["gender"]) == {0, 1} and manifest["race"].between(0, 4).all()
    assert manifest["age"].between(1, 116).all()
    again = utk.synthesize(tmp_path / "again", n=40, seed=3, image_size=32)
    for name in manifest["file"][:5]:
        assert (again / name).read_bytes() == (synthetic / name).read_bytes()
    assert utk.synthesize(synthetic, n=40, seed=3, image_size=32) == synthetic  # reused
    with pytest.raises(DatasetError, match="not"):
        utk.synthesize(synthetic, n=41, seed=3, image_size=32)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        utk.synthesize(tmp_path / "other", n=4, image_size=32)


def test_synthetic_labels_follow_utkface_frequencies():
    labels = utk.sample_labels(1000, np.random.default_rng(0))
    assert np.bincount(labels["race"]).tolist() == [425, 191, 145, 168, 71]
    assert abs(labels["gender"].mean() - 0.48) < 1e-9
    assert labels["age"].min() >= 1 and labels["age"].max() <= 95
    assert np.all(labels["age"] == np.clip(np.floor(labels["age_years"]), 1, 116))


def test_split_sizes_are_the_reports_and_scale():
    assert utk.split_sizes("search", 4998) == {"train": 4000, "val": 500, "test": 498}
    assert utk.split_sizes("report_final", 4998) == {"test": 499, "train": 4499}
    assert utk.split_sizes("final", 4998) == {"test": 499, "val": 500, "train": 3999}
    small = utk.split_sizes("final", 1500)
    assert sum(small.values()) == 1500 and small["val"] == 150
    with pytest.raises(ValueError, match="unknown split scheme"):
        utk.split_sizes("nope", 10)


def _fake_manifest(n):
    rng = np.random.default_rng(0)
    files = [f"{a}_{g}_{r}_2017{i:013d}.jpg.chip.jpg" for i, (a, g, r) in
             enumerate(zip(rng.integers(1, 90, n), rng.integers(0, 2, n), rng.integers(0, 5, n)))]
    frame = pd.DataFrame([utk.parse_name(f).__dict__ for f in files])
    frame.insert(0, "file", files)
    frame.insert(0, "path", [f"/data/{f}" for f in files])
    return frame.astype({"age": "float64"})


def test_subset_and_splits_are_seeded_disjoint_and_nested():
    manifest = _fake_manifest(5200)
    sub = utk.subset(manifest, 5000, seed=1, exclude=[])
    assert len(sub) == 5000 and sub["file"].is_unique
    assert sub["file"].tolist() == utk.subset(manifest, 5000, seed=1)["file"].tolist()
    assert sub["file"].tolist() != utk.subset(manifest, 5000, seed=2)["file"].tolist()
    two = list(sub["file"][:2])
    sub = utk.subset(manifest, 5000, seed=1, exclude=two)  # the report removed 2 non-faces
    assert len(sub) == 4998 and not set(two) & set(sub["file"])
    with pytest.raises(ValueError, match="not in the subset"):
        utk.subset(manifest, 5000, seed=1, exclude=["nope.jpg"])
    search, final, report = (utk.make_splits(sub, s) for s in ("search", "final", "report_final"))
    assert {k: len(v) for k, v in search.items()} == {"train": 4000, "val": 500, "test": 498}
    assert {k: len(v) for k, v in final.items()} == {"train": 3999, "val": 500, "test": 499}
    assert {k: len(v) for k, v in report.items()} == {"train": 4499, "test": 499}
    for splits in (search, final, report):
        files = [set(v["file"]) for v in splits.values()]
        assert sum(map(len, files)) == len(set().union(*files)) == 4998  # disjoint, complete
    assert set(final["test"]["file"]) == set(report["test"]["file"])
    # the final test images never ranked nor early-stopped a search trial
    assert set(final["test"]["file"]) <= set(search["train"]["file"])


def test_split_csv_round_trip_and_checks(synthetic, tmp_path):
    manifest = utk.load(synthetic, warn=False)
    splits = utk.make_splits(utk.subset(manifest, 30, seed=0), "final")
    paths = utk.save_splits(splits, tmp_path / "splits", prefix="final_")
    assert sorted(p.name for p in paths.values()) == ["final_test.csv", "final_train.csv", "final_val.csv"]
    back = utk.read_split(paths["train"], synthetic)
    pd.testing.assert_frame_equal(back, splits["train"][list(back.columns)].reset_index(drop=True),
                                  check_dtype=False)
    csv = pd.read_csv(paths["val"])
    csv.loc[1, "age"] = csv.loc[1, "age"] + 1
    csv.to_csv(paths["val"], index=False)
    with pytest.raises(DatasetError) as info:
        utk.read_split(paths["val"], synthetic)
    assert "final_val.csv: line 3" in str(info.value) and "disagree" in str(info.value)
    with pytest.raises(DatasetError, match="not found"):
        utk.read_split(paths["test"], tmp_path)


def test_render_draws_utkface_labels_with_the_shared_face_renderer():
    from io import BytesIO

    from PIL import Image

    from kerasmt.datasets import fairface as ff

    a = utk.render(31.5, 1, 2, 40, [5, 1, 0])
    assert a == utk.render(31.5, 1, 2, 40, [5, 1, 0])  # deterministic in the seed sequence
    assert a != utk.render(31.5, 1, 2, 40, [5, 1, 1])
    with Image.open(BytesIO(a)) as img:
        assert img.size == (40, 40) and img.mode == "RGB"
    # UTKFace "Black" (1) is FairFace drawing class "Black" (0): the same picture
    assert utk.render(20.0, 0, 1, 32, [1, 2]) == ff.render_face(0, 20.0, 0, 32, [1, 2])
    assert ff._render((0, 20.0, 0), 32, [1, 2]) == ff.render_face(0, 20.0, 0, 32, [1, 2])  # old name kept
    with pytest.raises(ValueError, match="race must be a UTKFace code"):
        utk.render(20.0, 0, 5, 32, [0])
    with pytest.raises(ValueError, match="gender must be 0"):
        ff.render_face(2, 20.0, 0, 32, [0])
