"""Formats and quirks of the genuine datasets, as small fixtures written here: iMaterialist 2019
ImageIds with ``.jpg``, an old-ontology COCO file, spreadsheet-mangled FairFace CSVs, header-only
CSVs, empty folders, a FIFO in place of a data file, image/annotation size mismatches; and the
``data check`` levels (error / warning / note, ``--strict``)."""
from __future__ import annotations

import json
import os
import shutil
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kerasmt import cli
from kerasmt.datasets import DatasetError
from kerasmt.datasets import fairface as ff
from kerasmt.datasets import fashion as fd
from kerasmt.datasets import folder_classes as fc
from kerasmt.datasets import person_attributes as pa
from kerasmt.datasets import utkface as utk
from kerasmt.datasets.base import errors, level_of
from kerasmt.rle import rle_encode

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


def _jpeg(path, size=(20, 30), color=(200, 40, 40)):
    """A JPEG of ``size`` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, "JPEG")
    return path


def _levels(findings):
    return [level_of(f) for f in findings]


def _finishes(fn, seconds=20.0):
    """``fn()``'s result, failing the test (instead of hanging it) if it blocks."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


# ------------------------------------------------------------------------------------- fashion
def _imaterialist(root, image_ids, sizes=None, class_ids=None, labels=None):
    """An iMaterialist folder: one 30x20 (HxW) image per id, one 2-run mask each."""
    rows = []
    for k, image_id in enumerate(image_ids):
        h, w = (sizes or {}).get(image_id, (30, 20))
        _jpeg(root / "train" / fd.image_file_name(image_id), (20, 30))
        mask = np.zeros((h, w), bool)
        mask[5:15, 4:12] = True
        rows.append({"ImageId": image_id, "EncodedPixels": rle_encode(mask), "Height": h, "Width": w,
                     "ClassId": str((class_ids or {}).get(image_id, 23))})
    pd.DataFrame(rows).to_csv(root / fd.CSV_FILE, index=False)
    (root / fd.LABEL_FILE).write_text(json.dumps(labels or fd.label_descriptions()))
    return root


def test_imaterialist_2019_ids_end_in_jpg_and_2020_ids_are_bare(tmp_path):
    y2019 = _imaterialist(tmp_path / "2019", ["00a1.jpg", "00b2.jpg"])
    y2020 = _imaterialist(tmp_path / "2020", ["00a1", "00b2"])
    m2019, m2020 = fd.load(y2019), fd.load(y2020)
    assert list(m2019["file"]) == list(m2020["file"]) == ["train/00a1.jpg", "train/00b2.jpg"]
    assert list(m2019["image_id"]) == list(m2020["image_id"]) == ["00a1", "00b2"]
    assert fd.check(y2019) == [] and fd.check(y2020) == []


#: the older 48-category ontology of Fashionpedia's own sample: 'earmuffs' at 14, 'garment belt' at 33
OLD_ONTOLOGY = list(fd.CATEGORIES[:14]) + ["earmuffs"] + list(fd.CATEGORIES[14:32]) + ["garment belt"] + \
    list(fd.CATEGORIES[32:])


def _coco(root, category_ids, categories=None):
    _jpeg(root / "train" / "a.jpg", (20, 30))
    anns = [{"id": i + 1, "image_id": 7, "category_id": cid, "attribute_ids": [],
             "segmentation": [[2, 2, 15, 2, 15, 20, 2, 20]], "area": 234, "iscrowd": 0}
            for i, cid in enumerate(category_ids)]
    cats = [{"id": i, "name": n, "supercategory": "x"} for i, n in enumerate(categories or OLD_ONTOLOGY)]
    data = {"images": [{"id": 7, "file_name": "a.jpg", "height": 30, "width": 20}], "annotations": anns,
            "categories": cats, "attributes": []}
    (root / "instances_attributes_train2020.json").write_text(json.dumps(data))
    return root


def test_old_ontology_coco_is_matched_by_name(tmp_path, capsys):
    assert OLD_ONTOLOGY[24] == "shoe" and OLD_ONTOLOGY[15] == "hat" and OLD_ONTOLOGY[32] == "sleeve"
    root = _coco(tmp_path, [24, 15, 32, 14, 14])
    with pytest.warns(UserWarning, match=r"dropped 2 segment\(s\) of 1 categor\(ies\) not in the 46-category "
                                         r"list: 'earmuffs' \(id 14\): 2"):
        manifest = fd.load(root)
    assert [fd.CATEGORIES[c] for c in manifest["class_id"]] == ["shoe", "hat", "sleeve"]
    mapping = manifest.attrs["category_mapping"]
    assert mapping.remapped[24] == 23 and mapping.unknown == {14: "earmuffs", 33: "garment belt"}

    findings = fd.check(root)
    assert _levels(findings) == ["warning", "note"]
    assert "'earmuffs'" in findings[0] and "24 'shoe' -> 23" in findings[1] and "'garment belt'" in findings[1]
    assert cli.main(["data", "check", "fashion", str(root)]) == 0
    out = capsys.readouterr().out
    assert "OK with 1 warning" in out and "note: " in out and "24 'shoe' -> 23" in out
    assert cli.main(["data", "check", "fashion", str(root), "--strict"]) == 1
    assert "1 error (warnings count as errors with --strict)" in capsys.readouterr().out


def test_label_descriptions_with_other_ids_are_matched_by_name(tmp_path):
    labels = {"categories": [{"id": i, "name": n} for i, n in enumerate(OLD_ONTOLOGY)], "attributes": []}
    root = _imaterialist(tmp_path, ["x1", "x2"], class_ids={"x1": 24, "x2": 14}, labels=labels)
    with pytest.warns(UserWarning, match="'earmuffs'"):
        manifest = fd.load(root)
    assert [fd.CATEGORIES[c] for c in manifest["class_id"]] == ["shoe"]
    only_unknown = _imaterialist(tmp_path / "b", ["x2"], class_ids={"x2": 14}, labels=labels)
    with pytest.raises(DatasetError, match="no usable segment"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fd.load(only_unknown)


def test_image_size_differs_from_annotation(tmp_path):
    root = _imaterialist(tmp_path, ["half", "rot"])
    _jpeg(root / "train" / "half.jpg", (10, 15))  # a resized copy: same aspect ratio
    _jpeg(root / "train" / "rot.jpg", (30, 20))  # another aspect ratio
    findings = fd.check(root)
    by_level = {level_of(f): f for f in findings}
    assert sorted(_levels(findings)) == ["error", "warning"]
    assert "half.jpg: image is 15x10" in by_level["warning"] and "scaled" in by_level["warning"]
    assert "rot.jpg: image is 20x30" in by_level["error"] and "says 30x20" in by_level["error"]
    reduced, _ = fd.reduce_labels(fd.load(root))
    images = fd.image_table(reduced)
    with pytest.warns(UserWarning, match=r"1 image\(s\) are resized copies"):
        decoded = fd.decode_examples(images.iloc[:1], reduced, 32)
    assert decoded.masks[0].any()
    with pytest.raises(DatasetError, match=r"rot\.jpg: image is 20x30 \(HxW\) but the annotation says 30x20"):
        fd.load_example(images.iloc[1], reduced[reduced["image_id"] == "rot"], 32)


def test_header_only_and_empty_fashion_data(tmp_path):
    root = _imaterialist(tmp_path, ["a"])
    pd.DataFrame(columns=list(fd.REQUIRED_COLUMNS)).to_csv(root / fd.CSV_FILE, index=False)
    with pytest.raises(DatasetError, match="train.csv: no data rows"):
        fd.load(root)
    assert any("no data rows" in p for p in errors(fd.check(root)))
    coco = _coco(tmp_path / "coco", [])
    with pytest.raises(DatasetError, match="no usable annotation"):
        fd.load(coco)


@needs_fifo
def test_fifo_in_place_of_a_fashion_image_is_an_error_not_a_hang(tmp_path):
    root = _imaterialist(tmp_path, ["a", "b"])
    (root / "train" / "b.jpg").unlink()
    os.mkfifo(root / "train" / "b.jpg")
    findings = _finishes(lambda: fd.check(root))
    assert len(findings) == 1 and "b.jpg" in findings[0] and "FIFO" in findings[0]
    with pytest.raises(DatasetError, match="FIFO"):
        _finishes(lambda: fd.load(root))
    reduced, _ = fd.reduce_labels(fd.load(root, check_files=False))
    images = fd.image_table(reduced)
    with pytest.raises(DatasetError, match="FIFO"):
        _finishes(lambda: fd.load_example(images.iloc[1], reduced[reduced["image_id"] == "b"], 32))
    for name in (fd.CSV_FILE, fd.LABEL_FILE):
        (root / name).unlink()
        os.mkfifo(root / name)
        assert "FIFO" in _finishes(lambda: fd.check(root))[0]


# ------------------------------------------------------------------------------------ fairface
def _fairface(root, rows, split="train", text=None):
    root.mkdir(parents=True, exist_ok=True)
    for k, _ in enumerate(rows):
        _jpeg(root / split / f"{k + 1}.jpg")
    body = text if text is not None else "file,age,gender,race,service_test\n" + "".join(
        f"{split}/{k + 1}.jpg,{a},{g},{r},{s}\n" for k, (a, g, r, s) in enumerate(rows))
    (root / ff.CSV_FILES[split]).write_bytes(body.encode("utf-8-sig"))
    return root


def test_fairface_after_a_spreadsheet_round_trip(tmp_path, capsys):
    rows = [("03-Sep", "Male", "White", "TRUE"), ("Oct-19", "Female", "Indian", "FALSE"),
            ("9-Mar", "Male", "Black", "True"), ("20-29", "Female", "East Asian", "False"),
            ("Feb-00", "Male", "White", "true")]
    root = _fairface(tmp_path / "ff", rows)
    shutil.copytree(root / "train", root / "val")
    (root / ff.CSV_FILES["val"]).write_text((root / ff.CSV_FILES["train"]).read_text(encoding="utf-8-sig")
                                            .replace("train/", "val/") + ",,,,\n")
    with pytest.warns(ff.SpreadsheetWarning, match=r"7 cell\(s\) or row\(s\).*'03-Sep' read as '3-9'"):
        train = ff.load(root, "train")
    assert [ff.LABELS["age"][a] for a in train["age"]] == ["3-9", "10-19", "3-9", "20-29", "0-2"]
    assert train["service_test"].tolist() == [True, False, True, False, True]
    with pytest.warns(ff.SpreadsheetWarning, match="line 7: empty row dropped"):
        assert len(ff.load(root, "val")) == 5
    findings = ff.check(root)
    assert _levels(findings) == ["warning", "warning"], findings
    assert cli.main(["data", "check", "fairface", str(root)]) == 0
    assert cli.main(["data", "check", "fairface", str(root), "--strict"]) == 1
    capsys.readouterr()


def test_fairface_semicolon_separated_export(tmp_path):
    root = _fairface(tmp_path, [("3-9", "Male", "White", "True"), ("Oct-19", "Female", "Indian", "False")])
    csv = root / ff.CSV_FILES["train"]
    csv.write_text(csv.read_text(encoding="utf-8-sig").replace(",", ";"))
    with pytest.warns(ff.SpreadsheetWarning, match=r"2 cell\(s\) or row\(s\).*separated by ';'"):
        train = ff.load(root)
    assert [ff.LABELS["age"][a] for a in train["age"]] == ["3-9", "10-19"]
    assert [level_of(f) for f in ff.check(root) if "train" in f] == ["warning"]


def test_fairface_unmappable_values_stay_errors(tmp_path):
    root = _fairface(tmp_path, [("Sep-45", "Male", "White", "maybe")])
    with pytest.raises(DatasetError) as info:
        ff.load(root)
    text = str(info.value)
    assert "line 2 (data row 1): column 'age': bad value 'Sep-45'" in text
    assert "column 'service_test': bad value 'maybe'; expected True or False" in text


def test_fairface_header_only_csv(tmp_path):
    root = _fairface(tmp_path, [], text="file,age,gender,race,service_test\n")
    with pytest.raises(DatasetError, match=r"fairface_label_train\.csv: no data rows"):
        ff.load(root)
    assert any("fairface_label_train.csv: no data rows" in p for p in errors(ff.check(root)))


@needs_fifo
def test_fairface_fifo_csv_and_image(tmp_path):
    root = _fairface(tmp_path, [("3-9", "Male", "White", "True")])
    (root / "train" / "1.jpg").unlink()
    os.mkfifo(root / "train" / "1.jpg")
    with pytest.raises(DatasetError, match="FIFO"):
        _finishes(lambda: ff.load(root))
    assert any("FIFO" in p for p in _finishes(lambda: ff.check(root)))
    (root / ff.CSV_FILES["val"]).unlink(missing_ok=True)
    os.mkfifo(root / ff.CSV_FILES["val"])
    with pytest.raises(DatasetError, match="FIFO"):
        _finishes(lambda: ff.load(root, "val"))


# ------------------------------------------------------------------------------------- utkface
def test_utkface_malformed_names_are_warnings_and_strict_refuses_them(tmp_path, capsys):
    _jpeg(tmp_path / "26_1_3_20170119193407522.jpg.chip.jpg")
    _jpeg(tmp_path / "39_1_20170116174525125.jpg.chip.jpg")
    findings = utk.check(tmp_path)
    assert _levels(findings) == ["warning"] and errors(findings) == []
    assert cli.main(["data", "check", "utkface", str(tmp_path)]) == 0
    assert "OK with 1 warning" in capsys.readouterr().out
    assert cli.main(["data", "check", "utkface", str(tmp_path), "--strict"]) == 1
    assert "1. error: " in capsys.readouterr().out


def test_utkface_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="no image named"):
        utk.load(tmp_path)
    assert errors(utk.check(tmp_path))
    _jpeg(tmp_path / "part1" / "26_1_3_20170119193407522.jpg")  # the in-the-wild archive's layout
    with pytest.raises(DatasetError, match=r"subfolder\(s\) \['part1'\]"):
        utk.load(tmp_path)
    assert "['part1']" in errors(utk.check(tmp_path))[0]


@needs_fifo
def test_utkface_fifo_named_like_an_image_is_counted(tmp_path):
    _jpeg(tmp_path / "26_1_3_20170119193407522.jpg.chip.jpg")
    os.mkfifo(tmp_path / "30_0_1_20170119193407599.jpg.chip.jpg")
    with pytest.warns(utk.MalformedNameWarning, match="30_0_1_20170119193407599.jpg.chip.jpg: not a regular file"):
        assert len(_finishes(lambda: utk.load(tmp_path))) == 1
    assert _levels(_finishes(lambda: utk.check(tmp_path))) == ["warning"]


def test_utkface_bad_value_in_a_split_csv_names_file_line_and_expectation(tmp_path):
    _jpeg(tmp_path / "26_1_3_20170119193407522.jpg.chip.jpg")
    csv = tmp_path / "train.csv"
    csv.write_text("file,age,gender,race,datetime\n26_1_3_20170119193407522.jpg.chip.jpg,twenty-six,1,3,"
                   "20170119193407522\n")
    with pytest.raises(DatasetError, match=r"train\.csv: line 2: column 'age': bad value 'twenty-six'; "
                                           r"expected an integer age 0\.\.116"):
        utk.read_split(csv, tmp_path)
    csv.write_text("file,age,gender,race,datetime\n")
    with pytest.raises(DatasetError, match=r"train\.csv: no data rows"):
        utk.read_split(csv, tmp_path)


# -------------------------------------------------------------------------------------- beauty
def _classes(root, counts, prefix=""):
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            _jpeg(root / name / f"{prefix}{k:03d}.jpg")
    return root


def test_beauty_empty_class_folder_is_an_error_not_a_label_shift(tmp_path):
    root = _classes(tmp_path / "raw", {"Apple": 10, "Banana": 0, "Cherry": 10})
    with pytest.raises(DatasetError, match=r"1 class\(es\) without an image: \['Banana'\]"):
        fc.load(root, split=None)
    assert any("'Banana' has no image" in p for p in errors(fc.check(root)))


def test_beauty_split_root_class_missing_in_a_split_keeps_its_label(tmp_path):
    root = tmp_path / "split"
    for split, counts in {"train": {"A": 8, "B": 8, "C": 8}, "validation": {"A": 1, "C": 1},
                          "test": {"A": 1, "B": 1, "C": 1}}.items():
        _classes(root / split, counts, prefix=split)
    with pytest.warns(UserWarning, match="validation/B"):
        manifest = fc.load(root, split=None)
    assert dict(zip(manifest["class_name"], manifest["label"])) == {"A": 0, "B": 1, "C": 2}
    findings = fc.check(root)
    assert _levels(findings) == ["warning"] and "'B' missing" in findings[0]


def test_beauty_empty_root_and_non_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError):
        fc.load(tmp_path / "empty")
    assert errors(fc.check(tmp_path / "empty"))
    root = _classes(tmp_path / "raw", {"A": 10, "B": 10})
    (root / "A" / "notes.txt").write_text("x")
    with pytest.warns(UserWarning, match=r"skipped 1 non-image"):
        fc.load(root, split=None)
    findings = fc.check(root)
    assert _levels(findings) == ["warning"] and "notes.txt" in findings[0]


# --------------------------------------------------------------------------- person attributes
@pytest.fixture(scope="module")
def attributes(tmp_path_factory):
    return pa.synthesize(tmp_path_factory.mktemp("attr") / "ds", n_train=3, n_test=2, seed=1)


def test_attribute_mask_of_another_size_is_an_error_in_load_and_check(attributes, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(attributes, root)
    first = pd.read_csv(root / "Train_Data" / "Train.csv")["filename"][0]
    mask = pa.mask_files(root / "Train_Data", first)[3]
    with Image.open(mask) as img:
        Image.new(img.mode, (img.width + 4, img.height)).save(mask)
    with pytest.raises(DatasetError, match=rf"{mask.name} is .* but the image is"):
        pa.load(root, "train")
    assert any(mask.name in p and "masks must have their image's size" in p for p in errors(pa.check(root)))


def test_attribute_header_only_csv(attributes, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(attributes, root)
    csv = root / "Test_Data" / "Test.csv"
    csv.write_text(csv.read_text().splitlines()[0] + "\n")
    with pytest.raises(DatasetError, match=r"Test\.csv: no data rows"):
        pa.load(root, "test")
    assert any("Test.csv: no data rows" in p for p in errors(pa.check(root)))


def test_beauty_empty_split_is_an_error(tmp_path):
    root = _classes(tmp_path / "raw", {"A": 2, "B": 2})  # 2 images per class: all in train
    assert len(fc.load(root, "train")) == 4
    with pytest.raises(DatasetError, match="no image in split 'validation'"):
        fc.load(root, "validation")
    findings = fc.check(root)
    assert _levels(findings) == ["warning", "warning", "error", "error"]  # too few for validation and test
    assert "the validation split would hold no image" in findings[2]
