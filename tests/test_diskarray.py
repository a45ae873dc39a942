"""kerasmt.diskarray and the on-disk paths that use it: decoded images larger than the in-memory
limit go to a .npy file read by rows (pipeline, Beauty), bottleneck features to disk (finetune)."""
from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kerasmt import diskarray, pipeline
from kerasmt.datasets import folder_classes as fc
from kerasmt.models import finetune as ft
from kerasmt.studies import beauty


@pytest.fixture()
def array(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (100, 5, 4, 3), dtype=np.uint8)
    # written in two chunks, out of order
    out = diskarray.create(tmp_path / "a.npy", x.shape, x.dtype,
                           [(np.arange(50, 100), x[50:]), (np.arange(50)[::-1], x[:50][::-1])])
    return x, out


def test_rows_read_back_exactly(array):
    x, a = array
    assert a.written.all() and a.shape == x.shape and a.dtype == np.uint8 and len(a) == 100
    assert a.nbytes == x.nbytes and np.array_equal(np.load(a.path), x)
    assert np.array_equal(a[:], x) and np.array_equal(a[7], x[7]) and np.array_equal(a[-1], x[-1])
    assert np.array_equal(a[::7], x[::7]) and np.array_equal(a[10:20], x[10:20])
    assert np.array_equal(a[[5, 3, 3, 99, 0]], x[[5, 3, 3, 99, 0]])
    assert np.array_equal(a[x[:, 0, 0, 0] > 128], x[x[:, 0, 0, 0] > 128])
    assert np.array_equal(a[[1, 2], 0, 1], x[[1, 2], 0, 1])
    view = a.rows([9, 8, 1])  # lazy, reads nothing
    assert view.shape == (3, 5, 4, 3) and np.array_equal(view[[2, 0]], x[[1, 9]])
    assert np.array_equal(np.asarray(view), x[[9, 8, 1]])
    assert np.array_equal(diskarray.take_rows(a, [4, 2])[:], x[[4, 2]])
    assert np.array_equal(diskarray.take_rows(x, [4, 2]), x[[4, 2]])
    with pytest.raises(IndexError):
        a[[100]]
    with pytest.raises(IndexError):
        a.rows([-101])


def test_writer_rejects_bad_chunks_and_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="chunk of shape"):
        diskarray.create(tmp_path / "b.npy", (4, 2), np.float32, [(np.arange(2), np.zeros((2, 3)))])
    assert not list(tmp_path.iterdir())  # no torn or temporary file left
    partial = diskarray.create(tmp_path / "c.npy", (4, 2), np.float32, [(np.array([2]), np.ones((1, 2)))])
    assert partial.written.tolist() == [False, False, True, False] and partial[2].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="expected 5"):
        diskarray.save_chunks(tmp_path / "d.npy", [np.zeros((2, 3)), np.zeros((2, 3))], n=5)


def test_rows_dataset_shuffles_indices_and_keeps_rows_with_labels(array):
    x, a = array
    y = np.arange(100)
    for source in (a, x):
        ds = diskarray.rows_dataset((source, y), 16, shuffle=True, seed=1)
        batches = list(ds.as_numpy_iterator())
        assert [len(b[1]) for b in batches] == [16] * 6 + [4]
        seen = np.concatenate([b[1] for b in batches])
        assert sorted(seen) == list(range(100)) and not np.array_equal(seen, y)
        assert all(np.array_equal(xb, x[yb]) for xb, yb in batches)
    rows = list(diskarray.rows_dataset({"x": a, "y": y}, 32, unbatch=True).take(3).as_numpy_iterator())
    assert rows[2]["y"] == 2 and np.array_equal(rows[2]["x"], x[2])
    with pytest.raises(ValueError, match="different lengths"):
        diskarray.rows_dataset((a, y[:3]), 4)


def test_in_memory_limit_from_the_environment(monkeypatch):
    monkeypatch.delenv("KERASMT_IN_MEMORY_MB", raising=False)
    assert diskarray.in_memory_limit() == 1 << 30
    monkeypatch.setenv("KERASMT_IN_MEMORY_MB", "2.5")
    assert diskarray.in_memory_limit() == int(2.5 * (1 << 20))
    monkeypatch.setenv("KERASMT_IN_MEMORY_MB", "lots")
    with pytest.raises(ValueError, match="KERASMT_IN_MEMORY_MB"):
        diskarray.in_memory_limit()


def test_large_decodes_go_to_disk_and_match_memory(tmp_path, monkeypatch):
    paths = []
    for i in range(30):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((20, 24, 3), i * 8, np.uint8)).save(path)
        paths.append(str(path))
    memory = pipeline.load_images(paths, (8, 8), 3)
    assert isinstance(memory, np.ndarray)
    monkeypatch.setenv("KERASMT_IN_MEMORY_MB", "0")  # everything is "large"
    disk = pipeline.load_images(paths, (8, 8), 3, cache_dir=tmp_path / "cache")
    assert diskarray.is_disk(disk) and np.array_equal(disk[:], memory)
    again = pipeline.load_images(paths, (8, 8), 3, cache_dir=tmp_path / "cache")
    assert again.path == disk.path  # built once, reused
    manifest = pd.DataFrame({"path": paths, "label": np.arange(30) % 3})
    streamed = pipeline.image_dataset(manifest, "label", (8, 8), 3, batch_size=8, shuffle=True, images=disk)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in streamed])
    assert [len(y) for y in ys] == [8, 8, 8, 6] and sorted(np.concatenate(ys).tolist()) == sorted(manifest["label"])
    auto = pipeline.image_dataset(manifest, "label", (8, 8), 3, batch_size=30, cache="disk", cache_dir=tmp_path / "cache")
    x, y = next(iter(auto))
    assert np.allclose(x.numpy(), memory / 255.0) and np.array_equal(y.numpy(), manifest["label"])
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "bad.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(pipeline.DatasetError, match="1 of 31"):
        pipeline.load_images(paths + [str(tmp_path / "bad.png")], (8, 8), 3, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob(".*tmp*"))


def test_beauty_on_disk_features_and_resize(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASMT_IN_MEMORY_MB", "0")
    root = fc.synthesize(tmp_path / "raw", n=10, seed=0, image_size=32)
    data = beauty.load_data(root, image_size=16, cache_dir=tmp_path / "cache")
    assert all(diskarray.is_disk(a) for a in data.images.values())
    x, y = next(iter(data.dataset("validation", batch_size=200)))
    assert x.shape == (len(data.labels("validation")), 16, 16, 3)
    assert np.array_equal(y.numpy(), data.labels("validation"))
    small = beauty.resize_images(data.images["validation"], 8)
    assert diskarray.is_disk(small) and small.shape == (len(y), 8, 8, 3)
    assert np.array_equal(small[:], beauty.resize_images(data.images["validation"][:], 8))
    extractor = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D()])
    on_disk = ft.cached_outputs(extractor, data.images["train"], 32, path=tmp_path / "f.npy")
    in_memory = ft.cached_outputs(extractor, data.images["train"][:], 32)
    assert diskarray.is_disk(on_disk) and np.allclose(on_disk[:], in_memory)
    assert np.allclose(in_memory, data.images["train"][:].mean(axis=(1, 2)) / 255.0, atol=1e-6)
    cache = beauty.FeatureCache(folder=tmp_path / "features")
    got = cache.get("k", lambda path: ft.cached_outputs(extractor, data.images["train"], 32, path=path), nbytes=1)
    assert diskarray.is_disk(got) and cache.nbytes == 0 and got.path.is_file()
    cache.clear()
    assert not got.path.exists()


def test_large_in_memory_arrays_are_batched_by_index_in_the_same_order(monkeypatch):
    x = np.random.default_rng(1).integers(0, 255, (300, 4, 4, 1), dtype=np.uint8)
    manifest = pd.DataFrame({"path": ["unused"] * 300, "label": np.arange(300) % 7})

    def batches():
        ds = pipeline.image_dataset(manifest, "label", (4, 4), 1, batch_size=64, shuffle=True, seed=3, images=x)
        return [(a.numpy(), b.numpy()) for a, b in ds]

    sliced = batches()
    monkeypatch.setattr(pipeline, "_SLICES_MAX_BYTES", 0)  # every array counts as large
    by_index = batches()
    assert len(sliced) == len(by_index) == 5
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(sliced, by_index))
