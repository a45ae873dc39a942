"""Readers, ``data check`` and smoke studies on small samples of the genuine datasets.

The samples are not part of the repository (their licences): set ``KERASMT_REAL_SAMPLES`` to the
folder holding ``utkface/``, ``beauty/``, ``fairface_csv/``, ``fashionpedia/``, ``imaterialist/``
and ``imaterialist2019/`` (``.ci/run`` does when ``../shared/realdata`` exists); without it every
test here is skipped. The smoke studies train tiny models for a few epochs: they prove the real
files flow through the study code, not the studies' accuracy.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from kerasmt import cli
from kerasmt.datasets import fairface as ff
from kerasmt.datasets import fashion as fd
from kerasmt.datasets import folder_classes as fc
from kerasmt.datasets import utkface as utk
from kerasmt.datasets.base import errors, level_of

ENV = "KERASMT_REAL_SAMPLES"
SAMPLES = Path(os.environ[ENV]).expanduser() if os.environ.get(ENV) else None
pytestmark = pytest.mark.skipif(SAMPLES is None, reason=f"{ENV} is not set (no real-data samples)")


def sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


def data_check(study: str, folder: Path, *extra: str) -> tuple[int, str]:
    """``kerasmt data check STUDY FOLDER`` in-process: (exit code, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["data", "check", study, str(folder), *extra])
    return code, out.getvalue()


# ------------------------------------------------------------------------------------- UTKFace
def test_utkface_reader_and_check():
    root = sample("utkface")
    with pytest.warns(utk.MalformedNameWarning, match=r"skipped 1 of 154"):
        manifest = utk.load(root)
    assert len(manifest) == 153 and manifest["age"].between(1, 116).all()
    assert set(manifest["gender"]) == {0, 1} and manifest["race"].between(0, 4).all()
    code, out = data_check("utkface", root)
    assert code == 0 and "OK with 1 warning" in out and "malformed name" in out
    assert data_check("utkface", root, "--strict")[0] == 1


def test_utkface_smoke_study(tmp_path):
    from kerasmt.studies import utkface as study

    data = study.load_data(sample("utkface"), subset=None, image_size=32, out_dir=tmp_path)
    assert len(data.manifest) == 153 and len(data.skipped) == 1
    sizes = {k: len(v) for k, v in data.splits["final"].items()}
    assert sum(sizes.values()) == 153 and min(sizes.values()) >= 15
    base = study.baselines(data)
    config = {"n_blocks": 2, "n_dense": 1, "units": 32, "split_point": 1}
    result = study.train_model_a(config, data, tmp_path, epochs=3, base_filters=8, batch_size=32, augment=False,
                                 learning_rate=1e-3)
    print("utkface smoke:", {k: round(v, 3) for k, v in result.test.items()}, "baselines:",
          {k: round(v, 3) for k, v in base.items()})
    assert np.isfinite(list(result.test.values())).all()
    assert 0.0 <= result.test["gender_accuracy"] <= 1.0


# -------------------------------------------------------------------------------------- Beauty
def test_beauty_reader_and_check():
    root = sample("beauty")
    manifest = fc.load(root, split=None)
    names = fc.class_names(manifest)
    assert len(names) == 7 and len(manifest) == 140
    per_class = manifest.groupby("class_name").size()
    assert per_class.to_dict() == {"Compact_foundation": 21, "Eyebrow_pencil": 24, "Foundation": 17, "Lipstick": 25,
                                   "Makeup_brushes": 20, "Nail_Polish": 25, "Palette": 8}
    for name, n in per_class.items():  # the split rule per class (numbers: fc.split_counts)
        got = manifest[manifest["class_name"] == name].groupby("split").size()
        assert tuple(int(got.get(s, 0)) for s in fc.SPLITS) == fc.split_counts(n)
    code, out = data_check("beauty", root)
    assert code == 0 and out.startswith("OK: ")


def test_beauty_smoke_study_follows_the_data():
    """The study's data, result, grouping and table code on the 7 real classes, with a tiny CNN in
    place of InceptionV3 (the notebook's smoke run takes minutes; see the closing note)."""
    import keras
    import pandas as pd

    from kerasmt.studies import beauty as study

    data = study.load_data(sample("beauty"), image_size=32)
    assert data.n_classes == 7 and not data.synthetic
    assert data.describe()["classes"].tolist() == [7, 7, 7]
    assert list(data.counts().index) == data.class_names and data.counts()["total"].sum() == 140
    assert study.default_n_groups(data.n_classes) == 4 and study.default_n_groups(73) == 42
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(data.n_classes, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    fit = model.fit(data.dataset("train", 32), validation_data=data.dataset("validation", 32), epochs=3, verbose=0)
    proba = model.predict(data.dataset("validation", 32), verbose=0)
    history = pd.DataFrame(fit.history, index=pd.RangeIndex(1, 4, name="epoch"))
    result = study.RegimeResult("full_tiny", "tl", data.n_classes, history, data.labels("validation"), proba, 1.0,
                                model.count_params(), model=model)
    test = study.evaluate_test(result, data)
    assert test.proba.shape == (len(data.manifests["test"]), 7) and len(test.class_names) == 7
    grouping = study.find_groups(result, data)
    assert grouping.n_groups == 4 and sorted(grouping.classes) == sorted(data.class_names)
    table = study.comparison_table({"full": {"tl": result}}, {"full": test})
    assert table.loc[("full", "ours"), "classes"] == 7
    metrics = study.metrics_summary(data, {"full": {"tl": result}}, {"full": test}, grouping)
    assert metrics["summary"]["classes"] == 7 and metrics["test"]["full"]["n_classes"] == 7
    assert metrics["summary"]["groups"] == 4
    print(f"beauty smoke (tiny CNN, 3 epochs, 32 px): val accuracy {result.val_accuracy:.3f}, test accuracy "
          f"{test.accuracy:.3f} (chance {1 / 7:.3f})")


# ------------------------------------------------------------------------------------ FairFace
def test_fairface_csvs_read_and_images_named_as_listed(tmp_path):
    src = sample("fairface_csv")
    for split in ff.CSV_FILES:  # the sample has no images: label CSVs only
        frame = ff.load(src, split, check_files=False)
        assert len(frame) == 150 and (frame[["gender", "age", "race"]] >= 0).all().all()
    code, out = data_check("fairface", src)
    assert code == 1 and "300 errors" in out and "image file not found" in out
    # the same CSVs with a synthetic face at every listed path, then after a spreadsheet round trip
    root = tmp_path / "ff"
    root.mkdir()
    for split, name in ff.CSV_FILES.items():
        shutil.copy(src / name, root / name)
        frame = ff.load(src, split, check_files=False)
        for k, row in enumerate(frame.itertuples()):
            path = root / row.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(ff.render_face(row.gender, 25.0, max(row.race, 0), 32, [k]))
    assert data_check("fairface", root)[0] == 0
    train = ff.load(root, "train")
    assert len(train) == 150 and all(Path(p).is_file() for p in train["path"])
    csv = root / ff.CSV_FILES["train"]
    text = csv.read_text()
    mangled = text.replace(",3-9,", ",03-Sep,").replace(",10-19,", ",Oct-19,").replace(",True\n", ",TRUE\n")
    assert mangled != text
    csv.write_text(mangled)
    with pytest.warns(ff.SpreadsheetWarning):
        again = ff.load(root, "train")
    assert again[["age", "gender", "race"]].equals(train[["age", "gender", "race"]])
    assert again["service_test"].tolist() == train["service_test"].tolist()
    code, out = data_check("fairface", root)
    assert code == 0 and "OK with 1 warning" in out


# ------------------------------------------------------------------------------------- Fashion
@pytest.mark.parametrize("folder", ["imaterialist2019", "fashionpedia"])
def test_fashion_readers_agree_and_check(folder):
    root = sample(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every category of the samples is in the 46-category list
        manifest = fd.load(root)
    assert len(manifest) == 12 and manifest["image_id"].nunique() == 2
    names = sorted(fd.CATEGORIES[c] for c in manifest["class_id"])
    assert names.count("shoe") == 2 and names.count("sleeve") == 4 and "hat" in names
    assert "bag, wallet" not in names and "pocket" not in names and "headband, head covering, hair accessory" not in names
    code, out = data_check("fashion", root)
    assert code == 0, out
    if folder == "fashionpedia":
        assert "24 'shoe' -> 23" in out and "'earmuffs'" in out
    findings = fd.check(root)
    assert errors(findings, strict=True) == [] and {level_of(f) for f in findings} <= {"note"}


def test_fashion_samples_give_the_same_masks():
    a = fd.load(sample("imaterialist2019")).sort_values(["file", "class_id", "area"]).reset_index(drop=True)
    b = fd.load(sample("fashionpedia")).sort_values(["file", "class_id", "area"]).reset_index(drop=True)
    assert [Path(f).name for f in a["file"]] == [Path(f).name for f in b["file"]]
    assert a["class_id"].tolist() == b["class_id"].tolist()
    assert np.abs(a["area"].to_numpy() - b["area"].to_numpy()).max() <= 0.02 * a["area"].max()


def test_fashion_decode_on_the_samples():
    """The study's data steps on the two images (a smoke study needs a hold-out and a training
    split: two images cannot give both, see the closing note)."""
    segments = fd.load(sample("imaterialist2019"))
    reduced, steps = fd.reduce_labels(segments, "full")
    images = fd.image_table(reduced)
    assert len(images) == 2 and steps["segments"].iloc[-1] == len(reduced)
    decoded = fd.decode_examples(images, reduced, 64)
    assert decoded.images.shape == (2, 64, 64, 3) and decoded.dropped == 0
    for k, labels in enumerate(decoded.labels):
        assert sorted(labels.tolist()) == sorted(reduced[reduced["image_id"] == images["image_id"][k]]["label"])
        assert (decoded.semantic[k] > 0).mean() > 0.05  # the garments cover a good part of a fashion photo


def test_real_label_descriptions_match_the_46_categories():
    path = sample("imaterialist") / fd.LABEL_FILE
    mapping = fd.category_mapping(fd._read_categories(path), str(path))
    assert len(mapping.ids) == 46 and mapping.remapped == {} and mapping.unknown == {}
    import json

    real = json.loads(path.read_text())
    ours = fd.label_descriptions()  # what the synthetic generator writes
    for key, fields in (("categories", ("id", "name", "supercategory", "level")),
                        ("attributes", ("id", "name", "supercategory", "level"))):
        assert [[x[f] for f in fields] for x in real[key]] == [[x[f] for f in fields] for x in ours[key]], key
