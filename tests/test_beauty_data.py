"""kerasmt.datasets.folder_classes: the report's 80/10/10 split, name mapping, layouts, checks and the
synthetic Beauty generator."""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kerasmt.datasets import DatasetError
from kerasmt.datasets import folder_classes as fc


def _png(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


@pytest.fixture
def raw(tmp_path) -> Path:
    """A raw folder-per-class root: three classes of 10, 12 and 25 images written in shuffled order."""
    root = tmp_path / "raw"
    rng = np.random.default_rng(0)
    for folder, n in (("boxes_Body_Scrub_1189", 10), ("boxes_Lips_Gloss_77", 12), ("Shampoo", 25)):
        for i in rng.permutation(n):
            _png(root / folder / f"img_{i:03d}.png", int(i))
    return root


def test_class_names_of_the_report():
    assert fc.class_name("boxes_Body_AntiCelluliteCream_1186") == "Body_AntiCelluliteCream"
    assert fc.class_name("boxes_Fragrances_HouseFragrances_1356") == "Fragrances_HouseFragrances"
    assert fc.class_name("Shampoo") == "Shampoo"  # any other folder keeps its name
    assert fc.class_name("boxes_Setline_Setline_12345") == "Setline_Setline"  # ids of any length
    assert len(fc.REPORT_FOLDERS) == len(fc.CLASSES) == len(set(fc.CLASSES)) == 73
    assert list(fc.CLASSES) == sorted(fc.CLASSES)
    assert sum(fc.REPORT_COUNTS.values()) == 72_880


@pytest.mark.parametrize("n, expected", [(1000, (800, 100, 100)), (880, (704, 88, 88)), (30, (24, 3, 3)),
                                         (25, (20, 2, 3)), (45, (36, 4, 5)), (65, (52, 6, 7)), (7, (6, 0, 1)),
                                         (0, (0, 0, 0))])
def test_split_counts(n, expected):
    assert fc.split_counts(n) == expected


def test_split_counts_add_up_and_reject_bad_fractions():
    for n in range(0, 300):
        counts = fc.split_counts(n)
        assert sum(counts) == n and min(counts) >= 0
        # the report's own code: Python's round on floats (half to even)
        assert counts[0] == round(0.8 * n) and counts[0] + counts[1] == round(0.9 * n), n
    totals = np.sum([fc.split_counts(n) for n in fc.REPORT_COUNTS.values()], axis=0)
    assert totals.tolist() == [58_304, 7_288, 7_288]  # the report's split sizes
    with pytest.raises(ValueError, match="sum to 1"):
        fc.split_counts(10, (0.8, 0.1, 0.2))
    with pytest.raises(ValueError, match="three"):
        fc.split_counts(10, (0.5, 0.5))


def test_split_is_per_class_sorted_and_deterministic(raw):
    a = fc.load(raw, split=None)
    b = fc.load(raw, split=None)
    pd.testing.assert_frame_equal(a, b)
    assert fc.class_names(a) == ["Body_Scrub", "Lips_Gloss", "Shampoo"]
    for name, group in a.groupby("class_name"):
        n = len(group)
        counts = tuple(int((group["split"] == s).sum()) for s in fc.SPLITS)
        assert counts == fc.split_counts(n), name
        # the first files by name are train, then validation, then test (no shuffling)
        ordered = group.sort_values("file")
        assert ordered["split"].tolist() == sorted(ordered["split"], key=fc.SPLITS.index)
    # no file in two splits
    assert not a.duplicated(["class_name", "file"]).any()
    train = fc.load(raw, "train")
    assert set(train["split"]) == {"train"} and len(train) == 8 + 10 + 20
    assert train["label"].dtype == np.int64 and train["path"].map(os.path.isabs).all()


def test_write_split_merges_folders_without_overwriting(raw):
    # a second source folder of class Body_Scrub that reuses two file names
    for i in (0, 1, 11):
        _png(raw / "boxes_Body_Scrub_2000" / f"img_{i:03d}.png", 200 + i)
    out = raw.parent / "split"
    with pytest.warns(UserWarning, match="4 file"):
        written = fc.write_split(raw, out)
    on_disk = sorted(p for p in out.rglob("*.png"))
    assert len(on_disk) == 10 + 3 + 12 + 25  # nothing overwritten (the report's copyfile bug)
    assert (out / fc.SPLIT_CSV).is_file()
    names = {p.name for p in on_disk}
    assert "boxes_Body_Scrub_2000__img_000.png" in names and "boxes_Body_Scrub_1189__img_000.png" in names
    counts = written.groupby("class_name").size().to_dict()
    assert counts == {"Body_Scrub": 13, "Lips_Gloss": 12, "Shampoo": 25}
    # the written split equals the in-memory split of the raw root
    raw_split = fc.load(raw, None)
    assert (raw_split.groupby(["class_name", "split"]).size().to_dict()
            == written.groupby(["class_name", "split"]).size().to_dict())
    assert fc.check(out) == []
    with pytest.raises(DatasetError, match="not empty"):
        fc.write_split(raw, out)


def test_write_split_hardlinks(raw, tmp_path):
    written = fc.write_split(raw, tmp_path / "linked", mode="hardlink")
    first = Path(written["path"].iloc[0])
    assert first.stat().st_nlink == 2


def test_scan_counts_skipped_files(raw):
    (raw / "Shampoo" / "notes.txt").write_text("not an image")
    (raw / "Shampoo" / ".DS_Store").write_text("hidden")
    with pytest.warns(UserWarning, match=r"skipped 1 non-image"):
        frame = fc.scan(raw)
    assert len(frame) == 47
    (raw / "Shampoo" / "broken.png").write_bytes(b"garbage")  # not an image by its header
    with pytest.warns(UserWarning, match=r"skipped 2 non-image.*broken\.png"):
        assert len(fc.scan(raw)) == 47
    png = next((raw / "Shampoo").glob("img_*.png")).read_bytes()
    (raw / "Shampoo" / "broken.png").write_bytes(png[: len(png) // 2])  # a truncated image
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = fc.scan(raw, verify=True)
    assert len(frame) == 47
    assert any("skipped 1 unreadable" in str(w.message) for w in caught)


def test_errors_name_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        fc.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folder"):
        fc.load(tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown split"):
        fc.load(tmp_path, split="val")


def test_check_reports_problems(raw, tmp_path):
    assert fc.check(raw) == []
    (raw / "boxes_Empty_Class_1").mkdir()
    (raw / "Shampoo" / "readme.txt").write_text("x")
    (raw / "Shampoo" / "zzz.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    png = next((raw / "Shampoo").glob("img_*.png")).read_bytes()
    (raw / "Shampoo" / "zzz_truncated.png").write_bytes(png[: len(png) // 2])
    problems = "\n".join(fc.check(raw))
    assert "boxes_Empty_Class_1: class folder holds no image" in problems
    assert "readme.txt: not an image file" in problems
    assert "zzz.jpg: not an image file" in problems  # its header is no image header
    assert "zzz_truncated.png: image cannot be decoded" in problems

    split = tmp_path / "split"
    for s, cls, f in [("train", "A", "1.png"), ("validation", "A", "1.png"), ("test", "A", "2.png"),
                      ("train", "B", "3.png"), ("validation", "B", "4.png")]:
        _png(split / s / cls / f)
    problems = "\n".join(fc.check(split))
    assert "a file in two splits" in problems and "validation/A" in problems
    assert "class folder 'B' missing" in problems


def test_synthesize_is_deterministic_and_in_the_raw_layout(tmp_path):
    folders = [f for f in fc.REPORT_FOLDERS if "Oralhygiene" in f]
    a = fc.synthesize(tmp_path / "a", n=10, seed=1, image_size=32, folders=folders)
    b = fc.synthesize(tmp_path / "b", n=10, seed=1, image_size=32, folders=folders)
    c = fc.synthesize(tmp_path / "c", n=10, seed=2, image_size=32, folders=folders)

    def digest(root):
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*.jpg"))}

    assert digest(a) == digest(b) and digest(a) != digest(c)
    assert sorted(p.name for p in a.iterdir() if p.is_dir()) == sorted(folders)
    assert len(list((a / "boxes_Oralhygiene_ElectricToothbrush_1124").glob("*.jpg"))) == 9  # round(0.88 * 10)
    assert len(list((a / "boxes_Oralhygiene_Toothpaste_1120").glob("*.jpg"))) == 10
    with Image.open(next(a.rglob("*.jpg"))) as img:
        assert img.size == (32, 32) and img.mode == "RGB"
    assert fc.synthesize(tmp_path / "a", n=10, seed=1, image_size=32, folders=folders) == a  # reused
    with pytest.raises(DatasetError, match="synthetic Beauty dataset made with"):
        fc.synthesize(tmp_path / "a", n=11, seed=1, image_size=32, folders=folders)
    assert fc.check(a) == []
    assert fc.class_names(fc.load(a, None)) == ["Oralhygiene_ElectricToothbrush", "Oralhygiene_Toothbrushes",
                                                "Oralhygiene_Toothpaste"]


def test_synthetic_design_has_confusable_groups():
    members = [c for g in fc.SYNTHETIC_GROUPS for c in g]
    assert sorted(members) == list(fc.CLASSES)  # every class in exactly one group
    assert len(fc.SYNTHETIC_GROUPS) == 42  # the report's grouped class count
    assert all(c in fc.CLASSES for g in fc.REPORT_GROUPS.values() for c in g)
    design = fc.synthetic_design()
    for g, group in design.groupby("group"):
        assert group["shape"].nunique() == 1  # one look per group ...
        if len(group) > 1:  # ... and distinct labels inside it
            assert len(set(zip(group["motif"], group["label_colour"]))) == len(group)
    looks = design.drop_duplicates("group")[["shape", "body_hsv"]].astype(str)
    assert not looks.duplicated().any()  # groups look different from each other


def test_source_task_labels_are_not_the_classes():
    images, labels = fc.source_task(6, 32, seed=0)
    assert images.shape == (6, 32, 32, 3) and images.dtype == np.uint8
    assert set(labels) == {"shape", "hue"}
    assert labels["shape"].max() < len(fc.SHAPES) and labels["hue"].max() < 8
    again, _ = fc.source_task(6, 32, seed=0)
    assert np.array_equal(images, again)
