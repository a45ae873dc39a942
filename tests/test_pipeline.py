import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kerasmt import pipeline
from kerasmt.datasets.base import DatasetError


@pytest.fixture
def images(tmp_path):
    """Twelve images of different sizes and modes, each a flat grey level = 20 * index."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(12):
        size = [(224, 224), (100, 80), (40, 60)][i % 3]
        mode = ["RGB", "L", "RGB"][i % 3]
        level = 20 * i
        array = np.full((*size, 3), level, dtype=np.uint8)
        image = Image.fromarray(array).convert(mode)
        path = tmp_path / f"{i}.{'jpg' if i % 2 else 'png'}"
        image.save(path, quality=95)
        rows.append({"path": str(path), "gender": i % 2, "age": int(rng.integers(-1, 9))})
    return pd.DataFrame(rows)


def test_decode_shapes_dtypes_and_values(images):
    x = pipeline.decode_images(images["path"], (32, 32), channels=1)
    assert x.shape == (12, 32, 32, 1) and x.dtype == np.uint8
    levels = x.reshape(12, -1).mean(axis=1)
    np.testing.assert_allclose(levels, 20 * np.arange(12), atol=3)  # JPEG/grey conversion tolerance
    rgb = pipeline.decode_images(images["path"][:2], (16, 20), channels=3)
    assert rgb.shape == (2, 16, 20, 3)


def test_pad_mode_keeps_aspect_ratio(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((20, 80, 3), 200, np.uint8)).save(path)
    x = pipeline.decode_images([str(path)], (40, 40), channels=1, resize="pad")[0, ..., 0]
    assert x[:14].max() == 0 and x[-14:].max() == 0  # 80x20 -> 40x10 band in the middle
    assert x[17:23].min() > 190


def test_missing_and_corrupt_files_are_named(images, tmp_path):
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(DatasetError) as err:
        pipeline.decode_images(list(images["path"]) + [str(bad)])
    assert "corrupt.jpg" in str(err.value) and "1 of 13" in str(err.value)
    with pytest.raises(DatasetError, match="nope.png"):
        pipeline.decode_images(list(images["path"]) + [str(tmp_path / "nope.png")])
    frame = pd.concat([images, pd.DataFrame([{"path": str(bad), "gender": 0, "age": 0}])])
    with pytest.raises(DatasetError, match="corrupt.jpg"):
        pipeline.image_dataset(frame, "gender")


def test_dataset_batches_float32_in_unit_range_with_dict_labels(images):
    ds = pipeline.image_dataset(images, ["gender", "age"], batch_size=5)
    x, y = next(iter(ds))
    assert x.dtype.name == "float32" and tuple(x.shape) == (5, 32, 32, 1)
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    assert set(y) == {"gender", "age"} and y["age"].dtype.name == "int32"
    np.testing.assert_array_equal(y["gender"].numpy(), images["gender"].to_numpy()[:5])
    assert sum(int(b[0].shape[0]) for b in ds) == 12


def test_shuffle_is_deterministic_for_a_seed_and_changes_each_epoch(images):
    def order(seed):
        ds = pipeline.image_dataset(images, "gender", batch_size=12, shuffle=True, seed=seed)
        return [np.round(b[0].numpy().mean(axis=(1, 2, 3)) * 255).tolist() for b in ds.take(1)], ds

    (first, ds1), (second, _) = order(3), order(3)
    assert first == second
    epochs = [np.round(b[0].numpy().mean(axis=(1, 2, 3)) * 255).tolist() for _ in range(2) for b in ds1]
    assert epochs[0] != epochs[1]
    assert sorted(epochs[0]) == sorted(epochs[1])


def test_streaming_matches_memory_cache(images, tmp_path):
    mem = np.concatenate([b[0].numpy() for b in pipeline.image_dataset(images, "gender", batch_size=4)])
    stream = np.concatenate([b[0].numpy() for b in pipeline.image_dataset(images, "gender", batch_size=4, cache=None)])
    filecache = pipeline.image_dataset(images, "gender", batch_size=4, cache=str(tmp_path / "tfcache"))
    np.testing.assert_allclose(mem, stream)
    np.testing.assert_allclose(mem, np.concatenate([b[0].numpy() for b in filecache]))


def test_npy_cache_reused_and_invalidated(images, tmp_path):
    cache = tmp_path / "cache"
    a = pipeline.load_images(images["path"], cache_dir=cache)
    files = list(cache.glob("*.npy"))
    assert len(files) == 1
    b = pipeline.load_images(images["path"], cache_dir=cache)
    np.testing.assert_array_equal(a, b)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(images["path"][0])  # change one image
    c = pipeline.load_images(images["path"], cache_dir=cache)
    assert len(list(cache.glob("*.npy"))) == 2 and c[0].max() == 0


def test_targets_images_and_augment(images):
    import keras

    ds = pipeline.image_dataset(images, None, batch_size=4, target="images")
    x, y = next(iter(ds))
    np.testing.assert_array_equal(x.numpy(), y.numpy())
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    x2, _ = next(iter(pipeline.image_dataset(images, "gender", batch_size=4, augment=flip)))
    assert tuple(x2.shape) == (4, 32, 32, 1)


def test_bad_arguments(images):
    with pytest.raises(KeyError, match="no label column"):
        pipeline.image_dataset(images, "race")
    with pytest.raises(ValueError, match="resize"):
        pipeline.decode_images(images["path"][:1], resize="crop")


def test_float_targets_stay_float_and_strings_are_rejected(images):
    frame = images.assign(years=np.linspace(1.5, 80.0, len(images)), name="x")
    _, y = next(iter(pipeline.image_dataset(frame, ["years", "gender"], batch_size=12)))
    assert y["years"].dtype.name == "float32" and y["gender"].dtype.name == "int32"
    np.testing.assert_allclose(y["years"].numpy(), frame["years"].to_numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="name"):
        pipeline.image_dataset(frame, "name")


@pytest.mark.parametrize("resize", ["stretch", "pad"])
def test_grouped_jpeg_batches_give_the_per_image_values(tmp_path, monkeypatch, resize):
    """JPEGs of one size and DCT scale are resized by batches: the values of one by one (stretch:
    matrix products, within one level on a few pixels; pad: TensorFlow's resize, equal)."""
    monkeypatch.setattr(pipeline, "_GROUP_MIN", 5)
    monkeypatch.setattr(pipeline, "_GROUP_BATCH", 4)  # several batches, the last one partial
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(123, 101)] * 11 + [(64, 90)] * 3):  # one group (31x26 at 1/4), three left over
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(str(path))
    paths.insert(4, str(tmp_path / "odd.png"))  # PIL, between grouped files
    Image.fromarray(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)).save(paths[4])
    plans = pipeline._fast_plans(paths, (24, 20))
    assert plans[0].tolist() == [4, 123, 101] and plans[4].tolist() == [0, 0, 0]
    through_pil = []
    real = pipeline._pil_decode_into
    monkeypatch.setattr(pipeline, "_pil_decode_into",
                        lambda out, index, *a, **k: through_pil.extend(index) or real(out, index, *a, **k))
    for channels in (1, 3):
        through_pil.clear()
        got = pipeline.decode_images(paths, (24, 20), channels=channels, resize=resize)
        assert through_pil == [4]  # TensorFlow decoded every JPEG: the group's shapes were right
        one_by_one = np.stack([x for x in pipeline.stream_images(paths, (24, 20), channels, resize=resize)
                               .as_numpy_iterator()])
        diff = np.abs(got.astype(int) - one_by_one)
        assert diff.max() <= (1 if resize == "stretch" else 0) and (diff > 0).mean() < 0.01
    decoder = pipeline._BATCH_DECODERS[(4, (31, 26, 1), (24, 20), resize)]
    pipeline.decode_images(paths, (24, 20), channels=1, resize=resize)
    assert pipeline._BATCH_DECODERS[(4, (31, 26, 1), (24, 20), resize)] is decoder  # kept for the process
    assert decoder.experimental_get_tracing_count() == 1  # and traced once


def test_a_file_tensorflow_refuses_costs_its_batch_mates_nothing(tmp_path, monkeypatch):
    """A JPEG whose headers read well but whose decoding TensorFlow refuses fails its whole batch
    (tf.map_fn): the batch is decoded again one by one with TensorFlow, and only that file goes to
    PIL, which names it."""
    monkeypatch.setattr(pipeline, "_GROUP_MIN", 5)
    monkeypatch.setattr(pipeline, "_GROUP_BATCH", 4)
    rng = np.random.default_rng(3)
    paths = []
    for i in range(9):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (123, 101, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(str(path))
    good = open(paths[2], "rb").read()
    sos = good.index(b"\xff\xda")
    data_start = sos + 2 + int.from_bytes(good[sos + 2:sos + 4], "big")
    # a second frame header inside the scan data: "Invalid JPEG file structure: two SOF markers"
    broken = good[:data_start + 100] + b"\xff\xc0\x00\x02" + good[data_start + 100:]
    (tmp_path / "2.jpg").write_bytes(broken)
    assert pipeline.jpeg_fast_plan(paths[2], (24, 20)) == (4, 123, 101)  # the header scan lets it through
    through_pil, one_by_one = [], []
    real_pil, real_single = pipeline._pil_decode_into, pipeline._per_image_dataset
    monkeypatch.setattr(pipeline, "_pil_decode_into",
                        lambda out, index, *a, **k: through_pil.extend(index) or real_pil(out, index, *a, **k))
    monkeypatch.setattr(pipeline, "_per_image_dataset",
                        lambda paths, index, *a, **k: one_by_one.extend(index) or real_single(paths, index, *a, **k))
    with pytest.raises(DatasetError) as err:
        pipeline.decode_images(paths, (24, 20))
    assert "1 of 9" in str(err.value) and "2.jpg" in str(err.value)
    assert sorted(one_by_one) == [0, 1, 2, 3]  # its batch, again one by one
    assert list(through_pil) == [2]
    del paths[2]
    through_pil.clear()
    pipeline.decode_images(paths, (24, 20))
    assert not through_pil


def test_resize_weights_match_tensorflow_resize():
    rng = np.random.default_rng(2)
    for n_in, n_out in [(56, 32), (30, 64), (50, 50), (7, 3)]:
        x = rng.uniform(0, 255, (1, n_in, 1, 1)).astype(np.float32)
        want = pipeline.tf.image.resize(x, (n_out, 1), antialias=True).numpy()[0, :, 0, 0]
        np.testing.assert_allclose(pipeline.resize_weights(n_in, n_out) @ x[0, :, 0, 0], want, atol=2e-3)
