"""Person-attribute reader, synthetic generator, mask decoding and the study's data steps."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kerasmt import pipeline
from kerasmt.datasets import DatasetError
from kerasmt.datasets import person_attributes as pa


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return pa.synthesize(tmp_path_factory.mktemp("attr") / "ds", n_train=16, n_test=6, seed=3)


@pytest.fixture()
def broken(root, tmp_path):
    import shutil

    copy = tmp_path / "broken"
    shutil.copytree(root, copy)
    return copy


def test_synthetic_layout_and_manifest(root):
    assert pa.check(root) == []
    train = pa.load(root, "train")
    test = pa.load(root, "test")
    assert len(train) == 16 and len(test) == 6
    assert list(train.columns[:9]) == ["path", "filename", *pa.TASKS, "has_mask"]
    assert train["has_mask"].all() and not test["has_mask"].any()
    assert "pose" in train.columns  # extra CSV columns are kept
    for task in pa.TASKS:
        assert train[task].between(-1, pa.N_CLASSES[task] - 1).all()
        assert (test[task] >= 0).all()  # like the report's test set: no missing labels
    assert not (root / "Test_Data" / "Binary_Maps").exists()
    for f in pa.mask_paths(train)[0]:
        assert Image.open(f).size == Image.open(train["path"][0]).size
    csv = pd.read_csv(root / "Train_Data" / "Train.csv")
    assert list(csv.columns[:7]) == ["filename", "gender", "tortyp", "torcol", "legtyp", "legcol", "luggage"]


def test_synthesize_is_deterministic_and_reused(root, tmp_path):
    again = pa.synthesize(tmp_path / "again", n_train=16, n_test=6, seed=3)
    for rel in ("Train_Data/Train.csv", "Train_Data/Originals/0005.png", "Train_Data/Binary_Maps/0005_torso.png"):
        assert (again / rel).read_bytes() == (root / rel).read_bytes()
    assert pa.synthesize(root, n_train=16, n_test=6, seed=3) == root  # complete folder reused
    with pytest.raises(DatasetError, match="synthetic person-attribute dataset made with"):
        pa.synthesize(root, n_train=8, n_test=6, seed=3)


def test_sample_labels_imbalance_and_missing_rates():
    labels = pa.sample_labels(520, np.random.default_rng(0), pa.SYNTHETIC_MISSING)
    assert (labels["torso_colour"] == -1).sum() == round(0.22 * 520)
    assert (labels["luggage"] == -1).sum() == round(0.01 * 520)
    counts = np.bincount(labels["leg_colour"][labels["leg_colour"] >= 0], minlength=11)
    assert counts.argmax() == 0 and counts.min() >= 1  # black dominates, every colour exists


def test_render_masks_are_exact_and_follow_labels():
    row = {"gender": 1, "torso_type": 1, "torso_colour": 8, "leg_type": 0, "leg_colour": 1, "luggage": 1}
    rgb, lab = pa.render(row, seed=7, pose=0)
    assert rgb.shape[:2] == lab.shape and lab.max() <= len(pa.PARTS)
    parts = {p: (lab == k + 1) for k, p in enumerate(pa.PARTS)}
    assert parts["torso"].sum() > 100 and parts["luggage"].sum() > 20
    assert parts["skin_arms"].sum() > 20  # short sleeves show the arms
    assert parts["skin_legs"].sum() == 0  # long trousers hide the legs
    torso = rgb[parts["torso"]].astype(float).mean(0)
    legs = rgb[parts["legs"]].astype(float).mean(0)
    assert torso[0] > torso[2] + 40  # red-ish torso
    assert legs[2] > legs[0] + 40  # blue-ish legs
    row.update(torso_type=0, leg_type=1, luggage=0)
    _, lab2 = pa.render(row, seed=7, pose=0)
    assert (lab2 == pa.PARTS.index("skin_legs") + 1).sum() > 20
    assert (lab2 == pa.PARTS.index("luggage") + 1).sum() == 0


def test_masks_decode_to_label_maps_aligned_with_the_letterboxed_image(tmp_path):
    # a 40x40 image (wider than 100x60's aspect): letterboxing pads top and bottom
    image = np.zeros((40, 40, 3), np.uint8)
    image[10:20, 5:15] = 255
    Image.fromarray(image).save(tmp_path / "img.png")
    mask_a = np.zeros((40, 40), np.uint8)
    mask_a[10:20, 5:15] = 255
    mask_b = np.zeros((40, 40), np.uint8)
    mask_b[30:40, 30:40] = 1  # a 0/1-coded mask is understood too
    Image.fromarray(mask_a).save(tmp_path / "a.png")
    Image.fromarray(mask_b).save(tmp_path / "b.png")
    x = pipeline.decode_images([str(tmp_path / "img.png")], (100, 60), 3, resize="pad")[0]
    m = pipeline.decode_masks([[str(tmp_path / "a.png"), str(tmp_path / "b.png")], None], (100, 60))
    assert m.dtype == np.int8 and m.shape == (2, 100, 60)
    assert (m[1] == -1).all()  # a row without masks is unlabelled
    bright = x[..., 0] > 127
    assert np.array_equal(bright, m[0] == 1)  # image square and mask a coincide
    assert (m[0] == 2).sum() > 0 and set(np.unique(m[0])) == {0, 1, 2}
    assert (m[0][:20] == 0).all() and (x[:20] == 0).all()  # padding rows are background / black
    onehot = pipeline.one_hot_masks(m, 3)
    assert onehot.shape == (2, 100, 60, 3)
    np.testing.assert_array_equal(onehot[0].sum(-1), 1.0)
    assert onehot[1].sum() == 0
    with pytest.raises(DatasetError, match="not found"):
        pipeline.decode_masks([[str(tmp_path / "missing.png")]], (100, 60))


def test_load_masks_cache_and_merge_skin(root, tmp_path):
    train = pa.load(root, "train")
    maps = pipeline.load_masks(pa.mask_paths(train), pa.IMAGE_SIZE, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("masks-*.npy"))) == 1
    np.testing.assert_array_equal(maps, pipeline.load_masks(pa.mask_paths(train), pa.IMAGE_SIZE, cache_dir=tmp_path))
    assert maps.min() >= 0 and maps.max() <= 8
    merged = pa.merge_skin(np.concatenate([maps, -np.ones_like(maps[:1])]))
    assert merged.max() <= 6 and (merged[-1] == -1).all()
    assert ((maps >= 6) == (merged[:-1] == 6)).all()


def test_reader_names_a_missing_mask_file(broken):
    victim = broken / "Train_Data" / "Binary_Maps" / "0004_shoes.png"
    victim.unlink()
    with pytest.raises(DatasetError) as err:
        pa.load(broken, "train")
    assert "0004_shoes.png" in str(err.value) and "line 5" in str(err.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manifest = pa.load(broken, "train", missing_masks="skip")
    assert not manifest["has_mask"][3] and manifest["has_mask"].sum() == 15
    assert any("1 of 16 image(s) have missing mask files" in str(w.message) for w in caught)
    assert pa.mask_paths(manifest)[3] is None
    assert any("0004_shoes.png" in p for p in pa.check(broken))


def test_reader_names_bad_label_values(broken):
    csv = broken / "Train_Data" / "Train.csv"
    frame = pd.read_csv(csv)
    frame["torcol"] = frame["torcol"].astype(object)
    frame.loc[2, "torcol"] = 11  # out of range (11 colours: 0..10)
    frame.loc[6, "luggage"] = 2
    frame.loc[7, "torcol"] = "red"
    frame.to_csv(csv, index=False)
    with pytest.raises(DatasetError) as err:
        pa.load(broken, "train")
    text = str(err.value)
    assert "line 4" in text and "'torcol'" in text and "value 11 out of range" in text and "0003.png" in text
    assert "line 8" in text and "'luggage'" in text
    assert "line 9" in text and "'red'" in text
    assert sum("out of range" in p or "bad value" in p for p in pa.check(broken)) == 3


def test_check_reports_missing_images_columns_and_mask_sizes(broken):
    (broken / "Test_Data" / "Originals" / "0002.png").unlink()
    Image.new("L", (5, 5)).save(broken / "Train_Data" / "Binary_Maps" / "0001_hair.png")
    frame = pd.read_csv(broken / "Test_Data" / "Test.csv").drop(columns=["legcol"])
    frame.to_csv(broken / "Test_Data" / "Test.csv", index=False)
    problems = "\n".join(pa.check(broken))
    assert "0002.png" in problems and "image file not found" in problems
    assert "missing column(s) ['legcol']" in problems
    assert "0001_hair.png is 5x5" in problems
    with pytest.raises(DatasetError, match="legcol"):
        pa.load(broken, "test")


def test_study_split_and_class_weights(root):
    from kerasmt.studies import attribute_mtl as study

    tr, va = study.validation_split(520, 0.1, seed=0)
    assert len(tr) == 468 and len(va) == 52 and not set(tr) & set(va)
    assert np.array_equal(va, study.validation_split(520, 0.1, seed=0)[1])
    assert not np.array_equal(va, study.validation_split(520, 0.1, seed=1)[1])
    frame = pd.DataFrame({"torso_colour": [0, 0, 0, 1, -1, 0], "leg_colour": [2] * 6})
    weights = study.class_weights(frame, cap=10.0)
    assert weights["torso_colour"][0] == pytest.approx(5 / (11 * 4), rel=1e-3)
    assert weights["torso_colour"][1] == pytest.approx(5 / 11, rel=1e-3)
    assert weights["torso_colour"][2] == 1.0  # absent class
    data = study.load_data(root, val_fraction=0.25, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (12, 4, 6)
    assert data.x_train.shape == (12, 100, 60, 3) and data.m_val.shape == (4, 100, 60)
    assert (data.m_test == -1).all() and (data.m_train >= 0).all()
    summary = data.describe()
    assert summary.loc["images", "test"] == 6 and summary.loc["with_mask", "test"] == 0


def test_header_size_is_upright_for_exif_rotated_photos(tmp_path):
    """A phone photo stored 40x20 with EXIF orientation 6 (rotate 90) is 20x40 once decoded, and
    its part masks are compared with that upright size."""
    from PIL import Image

    from kerasmt.datasets.person_attributes import _header_size
    from kerasmt.images import read_image

    img = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    assert _header_size(str(path)) == (20, 40)
    assert read_image(path).shape[:2] == (40, 20)  # (H, W) after exif_transpose
