"""Every image format real datasets ship, in kerasmt.images, the in-memory and the streamed
pipeline and the data checks; errors that name the file; labels validated at the data boundary."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from _image_formats import BLUE, RED, grey_levels, jpeg_bytes, scene, write_formats
from kerasmt import images, pipeline
from kerasmt.datasets.base import DatasetError


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    return write_formats(tmp_path_factory.mktemp("formats"))


def _halves(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = a.shape[:2]
    return a[h // 2, w // 4].astype(int), a[h // 2, 3 * w // 4].astype(int)


def test_every_format_decodes_upright_with_transparency_on_white(formats):
    lg, rg = grey_levels()
    for name, (path, expect) in formats.items():
        rgb = images.read_image(path)
        assert rgb.shape == (32, 48, 3) and rgb.dtype == np.uint8, name
        left, right = _halves(rgb)
        if expect is None:  # grey sources: the scene's luma
            assert abs(left[0] - lg) <= 3 and abs(right[0] - rg) <= 3, (name, left, right)
        else:
            assert np.abs(left - expect[0]).max() <= 8, (name, left)
            assert np.abs(right - expect[1]).max() <= 8, (name, right)
        grey = images.read_image(path, (16, 24), channels=1)
        assert grey.shape == (16, 24, 1)


def test_exif_orientation_is_applied_like_exif_transpose(formats):
    from PIL import ImageOps

    path = formats["exif_rotated.jpg"][0]
    with Image.open(path) as img:
        assert img.size == (32, 48)  # stored turned
        expected = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    np.testing.assert_array_equal(images.read_image(path), expected)


def test_sixteen_bit_png_scales_to_eight_bits(formats):
    path = formats["grey16.png"][0]
    with Image.open(path) as img:
        assert img.mode.startswith("I")
    grey = images.read_image(path, channels=1)[..., 0]
    lg, rg = grey_levels()
    assert abs(int(grey[0, 0]) - lg) <= 1 and abs(int(grey[0, -1]) - rg) <= 1


def test_gif_first_frame(formats):
    left, right = _halves(images.read_image(formats["animated.gif"][0]))
    assert np.abs(left - RED).max() <= 8 and np.abs(right - BLUE).max() <= 8  # not the green frame


def test_files_recognised_by_header_not_name(tmp_path, formats):
    webp_named_jpg = tmp_path / "product.jpg"
    webp_named_jpg.write_bytes(formats["photo.webp"][0].read_bytes())
    text_named_png = tmp_path / "notes.png"
    text_named_png.write_text("not an image")
    assert images.is_image_file(webp_named_jpg) and images.image_format(webp_named_jpg) == "webp"
    assert not images.is_image_file(text_named_png)
    assert not images.is_image_file(tmp_path)  # a folder
    for path, _ in formats.values():
        assert images.is_image_file(path), path


def test_check_image_names_the_file_and_the_problem(tmp_path, formats):
    for path, _ in formats.values():
        assert images.check_image(path) is None, path
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))[:600])
    for path, words in ((text, "not an image file"), (empty, "empty file"), (truncated, "truncated"),
                        (tmp_path / "absent.jpg", "not found"), (tmp_path, "not a regular file")):
        message = images.check_image(path)
        assert message is not None and str(path) in message and words in message, message
        assert "expected a JPEG, PNG, WebP" in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    assert "not a regular file" in images.check_image(fifo)
    assert not images.is_image_file(fifo)


def _manifest(formats) -> pd.DataFrame:
    paths = [str(p) for p, _ in formats.values()]
    return pd.DataFrame({"path": paths, "label": np.arange(len(paths)) % 2})


def test_in_memory_and_streamed_pipelines_decode_every_format_alike(formats):
    frame = _manifest(formats)
    for channels in (1, 3):
        mem = pipeline.decode_images(frame["path"], (16, 24), channels=channels)
        assert mem.shape == (len(frame), 16, 24, channels)
        streamed = np.concatenate([x.numpy() for x, _ in pipeline.image_dataset(
            frame, "label", (16, 24), channels, batch_size=5, cache=None)])
        np.testing.assert_allclose(streamed, mem / 255.0, atol=1e-6)
    rgb = pipeline.decode_images(frame["path"], (32, 48), channels=3)
    for (name, (_, expect)), image in zip(formats.items(), rgb):
        if expect is not None:
            left, right = _halves(image)
            assert np.abs(left - expect[0]).max() <= 10 and np.abs(right - expect[1]).max() <= 10, name


def test_cmyk_jpeg_through_the_grayscale_pipeline(formats):
    """Issue 14: a CMYK JPEG passed check and then failed the grey pipeline ("Invalid JPEG data")."""
    path = formats["cmyk.jpg"][0]
    assert images.check_image(path) is None
    assert pipeline.jpeg_fast_ratio(str(path), (16, 16)) == 0  # routed to PIL
    grey = pipeline.decode_images([path], (16, 24), channels=1)[0, ..., 0]
    lg, rg = grey_levels()
    assert abs(int(grey[8, 3]) - lg) <= 4 and abs(int(grey[8, -4]) - rg) <= 4
    frame = pd.DataFrame({"path": [str(path)], "label": [0]})
    x, _ = next(iter(pipeline.image_dataset(frame, "label", (16, 24), 1, cache=None)))
    np.testing.assert_allclose(x.numpy()[0, ..., 0], grey / 255.0, atol=1e-6)


def test_jpeg_fast_path_matches_pil_and_uses_dct_scaling(tmp_path):
    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 255, (28, 28, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 224 px
    path = tmp_path / "face.jpg"
    path.write_bytes(jpeg_bytes(base))
    assert pipeline.jpeg_fast_ratio(str(path), (32, 32)) == 4
    assert pipeline.jpeg_fast_ratio(str(path), (112, 112)) == 2
    assert pipeline.jpeg_fast_ratio(str(path), (200, 200)) == 1
    fast = pipeline.decode_images([path], (32, 32), channels=1)[0].astype(int)
    pil = images.read_image(path, (32, 32), channels=1).astype(int)
    assert np.abs(fast - pil).mean() < 3.0


# --------------------------------------------------------------------- errors at training time
def test_streamed_pipeline_names_a_truncated_file(tmp_path, formats):
    import tensorflow as tf

    good = scene(224, 224)
    paths = []
    for i in range(6):
        p = tmp_path / f"{i}.jpg"
        p.write_bytes(jpeg_bytes(good))
        paths.append(str(p))
    Path(paths[3]).write_bytes(jpeg_bytes(np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8))[:2000])
    frame = pd.DataFrame({"path": paths, "label": [0, 1] * 3})
    ds = pipeline.image_dataset(frame, "label", cache=None, batch_size=2)
    with pytest.raises(tf.errors.OpError) as err:
        for _ in ds:
            pass
    message = str(err.value)
    assert paths[3] in message and "truncated" in message and "expected a JPEG" in message
    with pytest.raises(DatasetError, match="3.jpg"):  # the in-memory path names it too
        pipeline.decode_images(paths)


def test_streamed_pipeline_names_a_file_that_is_not_an_image(tmp_path):
    import tensorflow as tf

    good = tmp_path / "good.png"
    Image.fromarray(scene()).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"<html>404 not found</html>")
    frame = pd.DataFrame({"path": [str(good), str(bad)], "label": [0, 1]})
    with pytest.raises(tf.errors.OpError, match=r"bad\.png: not an image file"):
        list(pipeline.image_dataset(frame, "label", cache=None, batch_size=1))


@pytest.mark.skipif(sys.platform != "linux", reason="non-UTF-8 file names need a byte file system")
def test_non_utf8_file_names_decode_in_both_pipelines(tmp_path):
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.jpg"  # Latin-1 name, invalid UTF-8
    with open(raw, "wb") as f:
        f.write(jpeg_bytes(scene(64, 64)))
    name = os.fsdecode(raw)  # str with a surrogate escape, as os.listdir returns it
    frame = pd.DataFrame({"path": [name, raw], "label": [0, 1]})
    mem = pipeline.decode_images(frame["path"], (16, 16), channels=3)
    streamed = np.concatenate([x.numpy() for x, _ in pipeline.image_dataset(frame, "label", (16, 16), 3, cache=None)])
    np.testing.assert_allclose(streamed, mem / 255.0, atol=1e-6)
    assert pipeline.load_images(frame["path"], (16, 16), 3, cache_dir=tmp_path / "cache").shape == (2, 16, 16, 3)
    os.remove(raw)
    message = str(pytest.raises(DatasetError, pipeline.decode_images, [name]).value)
    assert "caf\\xe9.jpg" in message  # shown escaped, not a UnicodeEncodeError


# ------------------------------------------------------------------------------- label range
def test_out_of_range_labels_are_errors_naming_task_and_value(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(scene()).save(path)
    frame = pd.DataFrame({"path": [str(path)] * 4, "gender": [0, 1, 7, -1], "race": [0, -3, 1, 2]})
    with pytest.raises(DatasetError) as err:
        pipeline.image_dataset(frame, ["gender", "race"], n_classes={"gender": 2, "race": 7})
    message = str(err.value)
    assert "task 'gender'" in message and "7" in message and "2 classes" in message
    assert "task 'race'" in message and "-3" in message
    for mode in ("memory", None):
        with pytest.raises(DatasetError, match="task 'gender'"):
            pipeline.image_dataset(frame, "gender", cache=mode, n_classes=2)
    huge = frame.assign(gender=[0, 1, 2**32 + 1, 0])  # would wrap to 1 as int32
    with pytest.raises(DatasetError, match="4294967297"):
        pipeline.image_dataset(huge, "gender", n_classes=2)
    with pytest.raises(DatasetError, match="int32"):
        pipeline.image_dataset(huge, "gender")
    ok = frame.assign(gender=[0, 1, 1, -1], race=[0, 6, -1, 2])
    pipeline.image_dataset(ok, ["gender", "race"], n_classes={"gender": 2, "race": 7})
    pipeline.validate_labels({"age": np.array([0.5, 90.0])}, {"gender": 2})  # no count: not checked


def test_segmentation_labels_and_mask_values_are_validated():
    x = np.zeros((3, 8, 8, 3), np.uint8)
    masks = np.zeros((3, 8, 8), np.int8)
    masks[1, 2, 2] = 9
    with pytest.raises(DatasetError, match=r"task 'mask'.*9 out of range for 7 classes"):
        pipeline.segmentation_dataset(x, {"gender": np.array([0, 1, 1])}, masks, n_mask_classes=7)
    with pytest.raises(DatasetError, match="task 'gender'"):
        pipeline.segmentation_dataset(x, {"gender": np.array([0, 5, 1])}, None, n_classes={"gender": 2})
    masks[1, 2, 2] = -1
    pipeline.segmentation_dataset(x, {"gender": np.array([0, 1, -1])}, masks, n_classes=2, n_mask_classes=7)


def test_bad_label_stops_before_xla_training_and_good_labels_train(tmp_path):
    """Under jit_compile=True an out-of-range label turned every loss into NaN: it is refused at
    the data boundary, before any step; valid labels (with missing ones) train to finite losses."""
    import keras

    from kerasmt.losses import MaskedSparseCategoricalCrossentropy

    rng = np.random.default_rng(0)
    paths = []
    for i in range(16):
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    frame = pd.DataFrame({"path": paths, "gender": rng.integers(0, 2, 16)})
    frame.loc[3, "gender"] = -1
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1))
    out = keras.layers.Dense(2, activation="softmax", name="gender")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, {"gender": out})
    model.compile("adam", {"gender": MaskedSparseCategoricalCrossentropy()}, jit_compile=True)
    bad = frame.copy()
    bad.loc[5, "gender"] = 7
    with pytest.raises(DatasetError, match=r"task 'gender'.*\b7\b.*2 classes"):
        model.fit(pipeline.image_dataset(bad, ["gender"], (16, 16), batch_size=8, n_classes={"gender": 2}),
                  epochs=1, verbose=0)
    assert model.optimizer.iterations.numpy() == 0
    ds = pipeline.image_dataset(frame, ["gender"], (16, 16), batch_size=8, n_classes={"gender": 2})
    history = model.fit(ds, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


# ------------------------------------------------------------------------------- real samples
REAL = os.environ.get("KERASMT_REAL_SAMPLES")


@pytest.mark.skipif(not REAL, reason="KERASMT_REAL_SAMPLES is not set")
def test_every_genuine_beauty_photo_decodes():
    root = Path(REAL) / "beauty"
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert files and all(images.is_image_file(p) for p in files)
    assert [images.check_image(p) for p in files] == [None] * len(files)
    x = pipeline.decode_images(files, (64, 64), channels=3)
    assert x.shape == (len(files), 64, 64, 3) and x.reshape(len(files), -1).std(axis=1).min() > 0
    grey = pipeline.decode_images(files, (32, 32), channels=1)
    assert grey.shape == (len(files), 32, 32, 1)


@pytest.mark.skipif(not REAL, reason="KERASMT_REAL_SAMPLES is not set")
@pytest.mark.parametrize("folder", ["utkface", "fashionpedia", "imaterialist2019"])
def test_genuine_photos_of_the_other_studies_decode(folder):
    files = sorted(p for p in (Path(REAL) / folder).rglob("*") if p.is_file() and images.is_image_file(p))
    assert files
    assert [images.check_image(p) for p in files] == [None] * len(files)
    assert pipeline.decode_images(files, (32, 32), channels=1).shape == (len(files), 32, 32, 1)


def test_fashion_streamed_decode_names_a_truncated_file(tmp_path):
    """Issue 14: fashion's streamed decode stopped with a bare ``OSError: image file is truncated``."""
    import tensorflow as tf

    from kerasmt.datasets import fashion as fd

    path = tmp_path / "0a1b.jpg"
    data = jpeg_bytes(np.random.default_rng(0).integers(0, 255, (120, 80, 3), dtype=np.uint8))
    path.write_bytes(data[: len(data) // 2])
    row = {"path": str(path), "height": 120, "width": 80, "image_id": "0a1b"}
    segments = pd.DataFrame({"rle": pd.Series([], dtype=object), "label": pd.Series([], dtype=np.int64)})
    with pytest.raises(images.ImageDecodeError, match=r"0a1b\.jpg: cannot decode image \(OSError: image file is truncated"):
        fd.load_example(row, segments, 64)

    def load(i):
        return fd.load_example(row, segments, 64).image

    ds = tf.data.Dataset.range(1).map(lambda i: tf.numpy_function(load, [i], tf.uint8))
    with pytest.raises(tf.errors.OpError, match=r"0a1b\.jpg: cannot decode image"):
        list(ds)


def test_streamed_pipeline_names_a_jpeg_with_a_damaged_header(tmp_path):
    """Damaged Huffman/quantisation tables made TensorFlow's decoder fail with a bare
    ``Invalid JPEG data`` error; such files are routed to PIL, whose error names them."""
    import tensorflow as tf

    data = bytearray(jpeg_bytes(np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)))
    data[400:2000] = bytes(np.random.default_rng(2).integers(0, 255, 1600, dtype=np.uint8))
    path = tmp_path / "damaged.jpg"
    path.write_bytes(bytes(data))
    assert pipeline.jpeg_fast_ratio(str(path), (32, 32)) == 0
    frame = pd.DataFrame({"path": [str(path)], "label": [0]})
    with pytest.raises(tf.errors.OpError, match=r"damaged\.jpg: cannot decode image"):
        list(pipeline.image_dataset(frame, "label", cache=None))
