"""kerasmt.datasets.fashion: synthetic iMaterialist layout, readers (iMaterialist CSV and
Fashionpedia COCO JSON), broken-input errors, label reduction, hold-out, letterbox, augmentation."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from kerasmt.datasets import DatasetError
from kerasmt.datasets import fashion as fd
from kerasmt.rle import rle_decode, rle_encode

N = 12


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return fd.synthesize(tmp_path_factory.mktemp("fashion") / "data", n=N, seed=5)


@pytest.fixture
def copy(synth, tmp_path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(synth, dst)
    return dst


def _rewrite(root: Path, edit) -> pd.DataFrame:
    frame = pd.read_csv(root / fd.CSV_FILE, dtype=str, keep_default_na=False)
    edit(frame)
    frame.to_csv(root / fd.CSV_FILE, index=False)
    return frame


# ------------------------------------------------------------------------------------ layout
def test_synthetic_layout_and_label_descriptions(synth):
    frame = pd.read_csv(synth / fd.CSV_FILE)
    assert list(frame.columns) == list(fd.REQUIRED_COLUMNS)
    assert frame["ImageId"].nunique() == N
    for image_id in frame["ImageId"].unique():
        assert (synth / "train" / f"{image_id}.jpg").is_file()
    labels = json.loads((synth / fd.LABEL_FILE).read_text())
    assert len(labels["categories"]) == 46 and len(labels["attributes"]) == 92
    names = {c["id"]: c["name"] for c in labels["categories"]}
    # ids the report names (section 4.1, Table 5): '0: shirt', '23: shoe', and the kept classes
    assert names[0] == "shirt, blouse" and names[23] == "shoe" and names[26] == "umbrella"
    # the genuine file's 11 supercategories (coat, dress, jumpsuit and cape are "upperbody" there; the
    # report's Table 4 has a 12th, "wholebody": fd.SUPERCATEGORIES)
    assert len({c["supercategory"] for c in labels["categories"]}) == 11
    assert len(set(fd.SUPERCATEGORIES)) == 12
    # some segments carry attributes ("cat_attr_attr"), as in the real train.csv
    assert frame["ClassId"].astype(str).str.contains("_").any()


def test_synthesize_is_deterministic_and_reuses_or_refuses(tmp_path, synth):
    a = fd.synthesize(tmp_path / "a", n=4, seed=1)
    b = fd.synthesize(tmp_path / "b", n=4, seed=1)
    assert (a / fd.CSV_FILE).read_bytes() == (b / fd.CSV_FILE).read_bytes()
    first = sorted((a / "train").iterdir())[0].name
    assert (a / "train" / first).read_bytes() == (b / "train" / first).read_bytes()
    assert fd.synthesize(a, n=4, seed=1) == a  # complete folder with the same parameters: reused
    with pytest.raises(DatasetError, match="made with"):
        fd.synthesize(a, n=5, seed=1)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.txt").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        fd.synthesize(tmp_path / "c", n=4)


def test_manifest_masks_overlap_and_shoes_are_separate_instances(synth):
    seg = fd.load(synth)
    assert list(seg.columns) == list(fd.MANIFEST_COLUMNS)
    assert (seg["area"] > 0).all()
    image_id = seg["image_id"].iloc[0]
    rows = seg[seg["image_id"] == image_id]
    masks = np.stack([rle_decode(r.rle, r.height, r.width) for r in rows.itertuples()]).astype(bool)
    assert masks.sum(0).max() >= 2, "garment parts (sleeve, neckline...) overlap their garment"
    shoes = seg[seg["class_id"] == 23]
    assert (shoes.groupby("image_id").size() == 2).mean() > 0.5


# ------------------------------------------------------------------------------- broken inputs
def test_bad_rle_names_file_line_and_column(copy):
    frame = _rewrite(copy, lambda f: f.__setitem__("EncodedPixels", f["EncodedPixels"].where(f.index != 2, "5 3 7")))
    with pytest.raises(DatasetError) as err:
        fd.load(copy)
    text = str(err.value)
    assert "train.csv: line 4" in text and frame["ImageId"][2] in text
    assert "'EncodedPixels'" in text and "odd number" in text


def test_run_past_the_image_is_an_error(copy):
    def edit(f):
        h, w = int(f.loc[1, "Height"]), int(f.loc[1, "Width"])
        f.loc[1, "EncodedPixels"] = f"{h * w - 2} 10"
    _rewrite(copy, edit)
    with pytest.raises(DatasetError, match=r"line 3 .*past the last pixel"):
        fd.load(copy)


def test_unknown_and_malformed_class_ids_are_errors(copy):
    def edit(f):
        f.loc[0, "ClassId"] = "99"
        f.loc[3, "ClassId"] = "shirt"
    _rewrite(copy, edit)
    with pytest.raises(DatasetError) as err:
        fd.load(copy)
    text = str(err.value)
    assert "2 problem(s)" in text
    assert "line 2" in text and "unknown category id 99" in text
    assert "line 5" in text and "'ClassId'" in text and "'shirt'" in text


def test_sizes_must_agree_and_be_positive(copy):
    def edit(f):
        first = f["ImageId"][0]
        rows = f.index[f["ImageId"] == first]
        f.loc[rows[-1], "Height"] = str(int(f.loc[rows[-1], "Height"]) + 1)
        f.loc[5, "Width"] = "-3"
    _rewrite(copy, edit)
    with pytest.raises(DatasetError) as err:
        fd.load(copy)
    assert "disagree on Height/Width" in str(err.value)
    assert "column 'Width': bad value -3; expected a positive integer" in str(err.value)


def test_missing_image_and_missing_column(copy):
    frame = pd.read_csv(copy / fd.CSV_FILE)
    (copy / "train" / f"{frame['ImageId'][0]}.jpg").unlink()
    with pytest.raises(DatasetError, match=f"(?s)1 of {N} listed image.*not found.*train.csv:2: ImageId {frame['ImageId'][0]}"):
        fd.load(copy)
    frame.drop(columns=["ClassId"]).to_csv(copy / fd.CSV_FILE, index=False)
    with pytest.raises(DatasetError, match="missing column"):
        fd.load(copy, check_files=False)


def test_empty_and_duplicate_rows_are_dropped_with_counted_warnings(copy):
    def edit(f):
        f.loc[4, "EncodedPixels"] = ""
    frame = _rewrite(copy, edit)
    frame = pd.concat([frame, frame.iloc[[0]]])
    frame.to_csv(copy / fd.CSV_FILE, index=False)
    with pytest.warns(UserWarning) as record:
        seg = fd.load(copy)
    messages = [str(w.message) for w in record]
    assert any("dropped 1 row(s) with an empty EncodedPixels (lines 6)" in m for m in messages)
    assert any("dropped 1 duplicate row(s)" in m for m in messages)
    assert len(seg) == len(frame) - 2


def test_check_lists_every_problem(copy):
    assert fd.check(copy) == []
    frame = pd.read_csv(copy / fd.CSV_FILE)
    (copy / "train" / f"{frame['ImageId'][0]}.jpg").write_bytes(b"not a jpeg")
    problems = fd.check(copy)
    assert len(problems) == 1 and "cannot decode image" in problems[0]
    _rewrite(copy, lambda f: f.__setitem__("ClassId", f["ClassId"].where(f.index != 1, "77")))
    assert any("unknown category id 77" in p for p in fd.check(copy))


# -------------------------------------------------------------------------------- Fashionpedia
def test_fashionpedia_reader_gives_the_same_manifest(synth, tmp_path):
    seg = fd.load(synth)
    root = tmp_path / "fashionpedia"
    shutil.copytree(synth / "train", root / "train")
    images, annotations = [], []
    ids = {image_id: k + 1 for k, image_id in enumerate(seg["image_id"].unique())}
    for image_id, k in ids.items():
        row = seg[seg["image_id"] == image_id].iloc[0]
        images.append({"id": k, "file_name": f"{image_id}.jpg", "height": int(row.height), "width": int(row.width)})
    for i, row in enumerate(seg.itertuples()):
        mask = rle_decode(row.rle, row.height, row.width)
        rle = mask_utils.encode(np.asfortranarray(mask))
        if i % 2:  # compressed and uncompressed COCO RLE both occur
            segmentation = {"size": rle["size"], "counts": rle["counts"].decode()}
        else:
            from kerasmt.rle import rle_to_coco
            segmentation = rle_to_coco(row.rle, row.height, row.width)
        annotations.append({"id": i + 1, "image_id": ids[row.image_id], "category_id": int(row.class_id),
                            "segmentation": segmentation, "attribute_ids": list(row.attributes), "iscrowd": 0})
    categories = [{"id": i, "name": n, "supercategory": fd.SUPERCATEGORIES[i]} for i, n in enumerate(fd.CATEGORIES)]
    (root / fd.FASHIONPEDIA_FILES["train"][0]).write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    coco = fd.load(root)
    assert fd.detect_format(root) == "fashionpedia"
    assert list(coco.columns) == list(fd.MANIFEST_COLUMNS)
    assert coco["rle"].tolist() == seg["rle"].tolist()
    assert coco["class_id"].tolist() == seg["class_id"].tolist()
    assert [Path(p).name for p in coco["path"]] == [Path(p).name for p in seg["path"]]
    assert coco["attributes"].tolist() == seg["attributes"].tolist()

    # a broken annotation is named
    data = json.loads((root / fd.FASHIONPEDIA_FILES["train"][0]).read_text())
    data["annotations"][3]["category_id"] = 404
    data["annotations"][4]["image_id"] = 999
    (root / fd.FASHIONPEDIA_FILES["train"][0]).write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        fd.load(root)
    assert "annotations[3]" in str(err.value) and "unknown category_id 404" in str(err.value)
    assert "annotations[4]" in str(err.value) and "unknown image_id 999" in str(err.value)


# ------------------------------------------------------------------------------ label reduction
def _manifest(class_ids, image_ids):
    return pd.DataFrame({"image_id": image_ids, "file": "f", "path": "p", "height": 4, "width": 4,
                         "class_id": class_ids, "attributes": [(1, 2)] * len(class_ids), "rle": "1 1",
                         "area": 1, "source": "s"})


def test_reduce_labels_follows_the_report():
    # image a: hood (kept as complete item, not in the sets), sleeve (part), shoe; image b: collar only;
    # image c: shorts (complete item, not in the sets) and a tie
    seg = _manifest([27, 31, 23, 28, 7, 16], ["a", "a", "a", "b", "c", "c"])
    full, steps = fd.reduce_labels(seg, "full")
    assert steps.loc["all"].tolist() == [3, 6]
    assert steps.loc["drop attributes"].tolist() == [3, 6]
    assert steps.loc["drop 18 garment parts"].tolist() == [2, 4]  # hood stays, image b drops out
    assert steps.loc["keep full set (11 classes)"].tolist() == [2, 2]
    assert full["class_id"].tolist() == [23, 16]
    assert full["label"].tolist() == [8, 7]  # Table 5: shoe -> 8, tie -> 7
    assert all(a == () for a in full["attributes"])
    base, _ = fd.reduce_labels(seg, "base")
    assert base["label"].tolist() == [4]  # base set: shoe -> 4; tie is not in it
    assert fd.class_names("base") == ["top, t-shirt, sweatshirt", "jacket", "pants", "dress", "shoe"]
    assert len(fd.DROPPED_PARTS) == 18 and 27 not in fd.DROPPED_PARTS
    assert len(fd.ontology()) == 46 and fd.ontology()["full"].notna().sum() == 11
    with pytest.raises(ValueError, match="label_set"):
        fd.reduce_labels(seg, "medium")


def test_image_table_multi_hot_and_holdout(synth):
    red, _ = fd.reduce_labels(fd.load(synth))
    images = fd.image_table(red)
    assert len(images) == N
    hot = fd.multi_hot(images, 11)
    assert hot.shape == (N, 11) and hot.sum() == sum(len(l) for l in images["labels"])
    train, test = fd.holdout_split(images, 4, seed=0)
    assert len(test) == 4 and len(train) == N - 4
    assert not set(train["image_id"]) & set(test["image_id"])
    assert fd.holdout_split(images, 4, seed=0)[1]["image_id"].tolist() == test["image_id"].tolist()
    with pytest.raises(ValueError, match="n_test"):
        fd.holdout_split(images, N, seed=0)


# ------------------------------------------------------------------------------- preprocessing
def test_letterbox_geometry_matches_tensorflow_resize_with_pad(tmp_path):
    import tensorflow as tf

    from kerasmt.pipeline import decode_image

    for h, w in [(37, 91), (120, 50), (64, 64)]:
        path = tmp_path / f"{h}x{w}.png"
        Image.fromarray(np.full((h, w, 3), 255, np.uint8)).save(path)
        tf_img = decode_image(tf.io.read_file(str(path)), (48, 48), channels=3, resize="pad").numpy()
        ours = fd.letterbox_image(np.full((h, w, 3), 255, np.uint8), 48)
        np.testing.assert_array_equal(tf_img[..., 0] > 0, ours[..., 0] > 0)
        box = fd.letterbox_geometry(h, w, 48)
        assert max(box.new_h, box.new_w) == 48


def test_masks_are_letterboxed_like_their_image():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 20, (90, 40, 3), dtype=np.uint8)
    mask = np.zeros((90, 40), np.uint8)
    mask[30:70, 10:25] = 1
    image[mask == 1] = 255
    big = fd.letterbox_image(image, 64)
    m = fd.letterbox_mask(mask, 64)
    assert m.shape == (64, 64) and set(np.unique(m)) == {0, 1}
    assert big[m == 1].mean() > 200 and big[m == 0].mean() < 60
    box = fd.letterbox_geometry(90, 40, 64)
    assert (big[:, : box.left] == 0).all() and (m[:, : box.left] == 0).all()  # zero padding


def test_normalize_subtracts_the_coco_mean():
    out = fd.normalize(np.full((2, 2, 3), 128, np.uint8))
    np.testing.assert_allclose(out[0, 0], [128 - 123.7, 128 - 116.8, 128 - 103.9], rtol=1e-6)


def test_semantic_map_puts_smaller_masks_on_top():
    big = np.zeros((6, 6), bool)
    big[:, :] = True
    small = np.zeros((6, 6), bool)
    small[2:4, 2:4] = True
    sem = fd.semantic_map(np.stack([small, big]), [8, 4])
    assert sem[0, 0] == 5 and sem[2, 2] == 9


def test_load_example_and_decode_examples(synth):
    red, _ = fd.reduce_labels(fd.load(synth))
    images = fd.image_table(red)
    row = images.iloc[0]
    ex = fd.load_example(row, red[red["image_id"] == row["image_id"]], 64)
    assert ex.image.shape == (64, 64, 3) and ex.image.dtype == np.uint8
    assert ex.masks.shape[1:] == (64, 64) and len(ex.masks) == len(ex.labels) <= row["n_segments"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dec = fd.decode_examples(images.iloc[:3], red, 64)
    assert dec.images.shape == (3, 64, 64, 3) and dec.semantic.shape == (3, 64, 64)
    assert dec.semantic.max() <= 11 and (dec.semantic > 0).any()
    np.testing.assert_array_equal(dec.semantic[0], fd.semantic_map(ex.masks, ex.labels))


def test_augmentation_moves_masks_only_with_the_flip():
    rng = np.random.default_rng(0)
    image = rng.uniform(40, 200, (16, 16, 3)).astype(np.float32)
    mask = np.zeros((16, 16), np.uint8)
    mask[2:6, 1:4] = 3
    img, m = fd.augment_example(image, mask, [1, 2], force="flip")
    np.testing.assert_array_equal(np.asarray(m), mask[:, ::-1])
    np.testing.assert_allclose(np.asarray(img), image[:, ::-1])
    img, m = fd.augment_example(image, mask, [1, 2], force="brightness")
    delta = np.asarray(img) - image
    assert np.allclose(delta, delta.flat[0]) and abs(delta.flat[0]) <= 40
    np.testing.assert_array_equal(np.asarray(m), mask)
    for kind in ("blur", "noise"):
        img, m = fd.augment_example(image, mask, [1, 2], force=kind)
        np.testing.assert_array_equal(np.asarray(m), mask)
        assert not np.allclose(np.asarray(img), image)
    img, m = fd.augment_example(image, mask, [3, 4], flip_p=0.0, brightness_p=0.0, blur_or_noise_p=0.0)
    np.testing.assert_allclose(np.asarray(img), image)
    # over many seeds, about half the examples are flipped
    flips = sum(not np.array_equal(np.asarray(fd.augment_example(image, mask, [s, 0])[1]), mask) for s in range(40))
    assert 10 <= flips <= 30


def test_rle_of_letterboxed_mask_round_trips():
    mask = np.zeros((30, 20), np.uint8)
    mask[5:9, 3:17] = 1
    m = fd.letterbox_mask(mask, 32)
    np.testing.assert_array_equal(rle_decode(rle_encode(m), 32, 32), m)


def test_large_jpeg_decoded_in_draft_mode_stays_aligned_with_its_mask(tmp_path):
    h, w = 800, 410
    image = np.full((h, w, 3), 30, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[100:700, 50:200] = 1
    image[mask == 1] = 230
    path = tmp_path / "big.jpg"
    Image.fromarray(image).save(path, quality=95)
    row = {"path": str(path), "height": h, "width": w}
    segs = pd.DataFrame({"rle": [rle_encode(mask)], "label": [3]})
    ex = fd.load_example(row, segs, 64)
    m = ex.masks[0]
    assert ex.labels.tolist() == [3]
    inner = m.copy()
    inner[1:-1, 1:-1] &= m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]  # away from the edge
    assert ex.image[inner].mean() > 200 and ex.image[~m].mean() < 60
