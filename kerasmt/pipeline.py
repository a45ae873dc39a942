"""Manifest -> ``tf.data.Dataset``: parallel decode, grayscale/resize, uint8 cache, float32 batches.

A *manifest* is a ``pandas.DataFrame`` with a ``path`` column (image files) and one integer column
per task (``-1`` = missing), as returned by every ``kerasmt.datasets.<name>.load``.

Two ways to feed a model:

- ``cache="memory"`` (default): every image is decoded once, in parallel, into one ``uint8`` array
  (optionally stored as ``.npy`` under ``cache_dir`` so the next run skips decoding); batches are
  cut from it and converted to ``float32`` in [0, 1] on the fly. 97k FairFace images at 32x32x1 are
  100 MB as uint8 (the report's float64 arrays: 800 MB). Unreadable files are reported by name.
- ``cache=None`` or ``cache="<file prefix>"``: images are streamed from disk (tf.data's own file
  cache when a prefix is given), for datasets that do not fit in memory.

Every format real datasets ship decodes (:mod:`kerasmt.images`: JPEG incl. CMYK and EXIF
orientation, PNG incl. palette transparency and 16-bit, WebP incl. RGBA, GIF, BMP, TIFF). Plain
JPEGs (grey or YCbCr, upright, no EXIF rotation) take TensorFlow's decoder at a reduced DCT scale
(``ratio`` 2/4/8, the largest that keeps the image at least the target size, as PIL's ``draft``),
which runs in parallel outside Python's GIL; every other file takes PIL
(:func:`kerasmt.images.read_image`). A header scan (a few kB per file) routes each file once.

Labels are validated once here, at the data boundary (:func:`validate_labels`): a class label
outside ``-1 .. n_classes - 1`` is an error naming the task, the value and the row, so the losses
need no checks (under XLA an out-of-range label silently turns every loss into NaN).

Errors at training time name the file: a file that fails to decode while streaming raises an
:class:`~kerasmt.images.ImageDecodeError` (inside TensorFlow's error) with its path and the
expected formats; file names that are not valid UTF-8 are carried as bytes.
"""
from __future__ import annotations

import hashlib
import os
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from kerasmt import diskarray
from kerasmt import images as _images
from kerasmt.datasets.base import DatasetError
from kerasmt.utils import cache_dir as user_cache_dir

AUTOTUNE = tf.data.AUTOTUNE
#: in-memory image arrays above this size are batched by index (``diskarray.rows_dataset``) rather
#: than sliced into the graph and a shuffle buffer (each of which would hold another copy)
_SLICES_MAX_BYTES = 64 << 20
_CACHE_VERSION = "2"
_RATIOS = (1, 2, 4, 8)
_NO_PLAN = (0, 0, 0)
#: images of one size and DCT scale decoded as a batch by :func:`decode_images`: one tf.data
#: element per batch, the resize and the rounding once per batch (per image, the three cost about
#: as much CPU as the decoding itself)
_GROUP_MIN = 64
_GROUP_BATCH = 256


def _as_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)):
        return (int(image_size), int(image_size))
    height, width = image_size
    return (int(height), int(width))


def _check_resize(resize: str) -> None:
    if resize not in {"stretch", "pad"}:
        raise ValueError(f"resize must be 'stretch' or 'pad', got {resize!r}")


# ----------------------------------------------------------------------------- JPEG fast path
def _exif_orientation(block: bytes) -> int:
    """Orientation tag of an APP1 ``Exif\0\0`` payload (1 when absent or unreadable)."""
    tiff = block[6:]
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if tiff[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(end + "I", tiff[4:8])
        (count,) = struct.unpack(end + "H", tiff[ifd:ifd + 2])
        for k in range(count):
            entry = tiff[ifd + 2 + 12 * k: ifd + 14 + 12 * k]
            tag, kind = struct.unpack(end + "HH", entry[:4])
            if tag == 0x0112:
                return int(struct.unpack(end + "H", entry[8:10])[0]) if kind == 3 else 1
    except struct.error:
        return 1
    return 1


def _tables_ok(marker: int, segment: bytes) -> bool:
    """Whether a DHT (Huffman) or DQT (quantisation) segment is well formed."""
    j = 0
    while j < len(segment):
        if marker == 0xC4:  # DHT: class/id byte, 16 code counts, the symbols
            if j + 17 > len(segment) or segment[j] >> 4 > 1 or segment[j] & 15 > 3:
                return False
            count = sum(segment[j + 1:j + 17])
            if count > 256:
                return False
            j += 17 + count
        else:  # DQT: precision/id byte, 64 one- or two-byte values
            if segment[j] >> 4 > 1 or segment[j] & 15 > 3:
                return False
            j += 1 + 64 * (1 + (segment[j] >> 4))
    return j == len(segment)


def jpeg_fast_ratio(path: str | bytes, target: tuple[int, int]) -> int:
    """DCT scale (1, 2, 4 or 8) at which TensorFlow's decoder may read ``path``, or 0 when the
    file must go through PIL (:func:`jpeg_fast_plan`)."""
    return jpeg_fast_plan(path, target)[0]


def jpeg_fast_plan(path: str | bytes, target: tuple[int, int]) -> tuple[int, int, int]:
    """``(ratio, height, width)``: the image's size from its frame header and the DCT scale
    (1, 2, 4 or 8) at which TensorFlow's decoder may read ``path``, or ``(0, 0, 0)`` when the
    file must go through PIL: not a JPEG, CMYK/YCCK (4 components), not 8-bit baseline or
    progressive Huffman, EXIF-rotated, a header (markers, Huffman and quantisation tables, frame
    and scan headers) that does not parse, or no end-of-image marker (a truncated file): PIL then
    decodes it or names it in its error. The scale is the largest that keeps the decoded image at
    least ``target`` ``(height, width)`` (PIL's ``draft`` rule)."""
    try:  # os-level calls: a third less time than a buffered file object on small files
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return _NO_PLAN
    try:
        head = os.read(fd, 65536)
        if len(head) == 65536:
            os.lseek(fd, -2, os.SEEK_END)
            tail = os.read(fd, 2)
        else:
            tail = head[-2:]
    except OSError:
        return _NO_PLAN
    finally:
        os.close(fd)
    if head[:3] != b"\xff\xd8\xff" or tail != b"\xff\xd9":
        return _NO_PLAN
    ratio = height = width = 0
    i = 2
    while i + 4 <= len(head):
        if head[i] != 0xFF:
            return _NO_PLAN
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        (length,) = struct.unpack(">H", head[i + 2:i + 4])
        segment = head[i + 4:i + 2 + length]
        if length < 2 or len(segment) != length - 2:
            return _NO_PLAN
        if marker == 0xE1 and segment[:6] == b"Exif\x00\x00" and _exif_orientation(segment) != 1:
            return _NO_PLAN
        if marker in (0xC4, 0xDB) and not _tables_ok(marker, segment):
            return _NO_PLAN
        if marker in (0xC0, 0xC1, 0xC2):
            if ratio or len(segment) < 6 or segment[0] != 8 or segment[5] not in (1, 3) \
                    or len(segment) != 6 + 3 * segment[5]:
                return _NO_PLAN
            height, width = struct.unpack(">HH", segment[1:5])
            if not height or not width:
                return _NO_PLAN
            scale = min(width // max(target[1], 1), height // max(target[0], 1))
            ratio = max(r for r in _RATIOS if r <= max(scale, 1))
        elif 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return _NO_PLAN  # lossless, hierarchical or arithmetic-coded
        if marker == 0xDA:  # start of scan: the header is complete
            ok = len(segment) >= 1 and 1 <= segment[0] <= 4 and length == 6 + 2 * segment[0]
            return (ratio, height, width) if ok and ratio else _NO_PLAN
        i += 2 + length
    return _NO_PLAN


def _fast_ratios(paths: Sequence[str | bytes], target: tuple[int, int]) -> np.ndarray:
    return _fast_plans(paths, target)[:, 0]


def _fast_plans(paths: Sequence[str | bytes], target: tuple[int, int]) -> np.ndarray:
    """``(N, 3)`` int array of :func:`jpeg_fast_plan` rows."""
    plans = np.zeros((len(paths), 3), dtype=np.int32)
    for i, p in enumerate(paths):
        plans[i] = jpeg_fast_plan(p, target)
    return plans


def _decode_jpeg(contents: tf.Tensor, ratio: int, channels: int) -> tf.Tensor:
    return tf.io.decode_jpeg(contents, channels=channels, ratio=ratio, dct_method="INTEGER_ACCURATE")


def _resize_round(image: tf.Tensor, size, resize: str) -> tf.Tensor:
    """Decoded image(s) (``(H, W, C)`` or a batch) -> ``size``, antialiased bilinear, uint8."""
    if resize == "stretch":
        image = tf.image.resize(image, size, method="bilinear", antialias=True)
    else:
        image = tf.image.resize_with_pad(image, size[0], size[1], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` float32 matrix of TensorFlow's antialiased bilinear resize along one axis
    (``tf.image.resize(antialias=True)``: a triangle kernel widened by the downscale factor,
    pixel centres at ``i + 0.5``, each row normalised)."""
    scale = n_out / n_in
    width = max(1.0 / scale, 1.0)
    centres = (np.arange(n_out) + 0.5) / scale
    weights = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in)[None, :] + 0.5 - centres[:, None]) / width)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _resize_batch_stretch(images: tf.Tensor, in_size: tuple[int, int], size) -> tf.Tensor:
    """A uint8 batch ``(B, h, w, C)`` of one size -> ``(B, *size, C)`` uint8, antialiased bilinear
    as two matrix products of :func:`resize_weights` (~6x faster than ``tf.image.resize`` on
    small images; float rounding makes a few pixels differ from it by one level)."""
    rows = tf.constant(resize_weights(in_size[0], size[0]))
    cols = tf.constant(resize_weights(in_size[1], size[1]))
    # plain 2-D products only (TensorFlow 2.21's oneDNN batched matmul with broadcast operands
    # returned wrong values and crashed on some of these shapes)
    b, c = tf.shape(images)[0], images.shape[-1]
    h, w = in_size
    x = tf.reshape(tf.transpose(tf.cast(images, tf.float32), [0, 3, 1, 2]), [-1, w])  # (B*C*h, w)
    x = tf.reshape(tf.linalg.matmul(x, cols, transpose_b=True), [-1, h, size[1]])  # (B*C, h, W)
    x = tf.reshape(tf.transpose(x, [0, 2, 1]), [-1, h])  # (B*C*W, h)
    x = tf.reshape(tf.linalg.matmul(x, rows, transpose_b=True), [b, c, size[1], size[0]])  # (B, C, W, H)
    return tf.cast(tf.clip_by_value(tf.round(tf.transpose(x, [0, 3, 2, 1])), 0.0, 255.0), tf.uint8)


def _tf_jpeg(contents: tf.Tensor, ratio: tf.Tensor, size, channels: int, resize: str) -> tf.Tensor:
    index = tf.where(ratio >= 8, 3, tf.where(ratio >= 4, 2, tf.where(ratio >= 2, 1, 0)))
    image = tf.switch_case(index, branch_fns=[lambda r=r: _decode_jpeg(contents, r, channels) for r in _RATIOS])
    return _resize_round(tf.ensure_shape(image, [None, None, channels]), size, resize)


def _as_bytes(value) -> bytes:
    """A ``tf.string`` scalar as ``tf.numpy_function`` passes it (bytes, or a 0-d array)."""
    if isinstance(value, np.ndarray):
        value = value.item()
    return value if isinstance(value, bytes) else bytes(value)


def _pil_tf(path: tf.Tensor, size, channels: int, resize: str) -> tf.Tensor:
    """:func:`kerasmt.images.read_image` inside a graph (errors name the file)."""
    def read(p) -> np.ndarray:
        return _images.read_image(os.fsdecode(_as_bytes(p)), size, channels, resize)

    image = tf.numpy_function(read, [path], tf.uint8, stateful=False)
    return tf.ensure_shape(image, (size[0], size[1], channels))


def read_image_tf(path: tf.Tensor, ratio: tf.Tensor, image_size, channels: int = 1,
                  resize: str = "stretch") -> tf.Tensor:
    """One image file in a tf.data pipeline: TensorFlow's JPEG decoder when ``ratio`` > 0 (from
    :func:`jpeg_fast_ratio`), else PIL. ``path`` is a ``tf.string`` (bytes of the file name)."""
    size = _as_size(image_size)
    _check_resize(resize)
    image = tf.cond(ratio > 0, lambda: _tf_jpeg(tf.io.read_file(path), ratio, size, channels, resize),
                    lambda: _pil_tf(path, size, channels, resize))
    return tf.ensure_shape(image, (size[0], size[1], channels))


def stream_images(paths: Sequence, image_size: int | Sequence[int] = (32, 32), channels: int = 1,
                  resize: str = "stretch", extras: tuple = (), shuffle: bool = False,
                  seed: int = 0) -> tf.data.Dataset:
    """``tf.data`` elements ``(uint8 image, *extras)`` decoded from ``paths`` on the fly, in
    order (``extras``: arrays with one row per path, e.g. labels, passed through), or shuffled
    every iteration from ``seed`` (file names are shuffled, before decoding: no image buffer).

    Plain, complete JPEGs (:func:`jpeg_fast_ratio`) take TensorFlow's decoder, every other file
    PIL, so a truncated or unreadable file stops the pipeline with an
    :class:`~kerasmt.images.ImageDecodeError` naming it and the expected formats (inside
    TensorFlow's ``InvalidArgumentError``), not with a bare ``IteratorGetNext`` error.
    """
    paths = _fs_paths(paths)
    size = _as_size(image_size)
    _check_resize(resize)
    ratios = _fast_ratios(paths, size)
    ds = tf.data.Dataset.from_tensor_slices((_tf_paths(paths), ratios, *extras))
    if shuffle:
        ds = ds.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)

    @tf.autograph.experimental.do_not_convert
    def _load(path, ratio, *rest):
        image = read_image_tf(path, ratio, size, channels, resize)
        return (image, *rest) if rest else image

    return ds.map(_load, num_parallel_calls=AUTOTUNE)


def decode_image(
    contents: tf.Tensor,
    image_size: int | Sequence[int] = (32, 32),
    channels: int = 1,
    resize: str = "stretch",
) -> tf.Tensor:
    """Decode encoded image bytes to a ``uint8`` tensor of shape ``(H, W, channels)``.

    ``resize="stretch"`` resizes to the target size (the FairFace convention); ``"pad"`` keeps the
    aspect ratio and pads with zeros (letterbox). Any input size and every format of
    :mod:`kerasmt.images` (WebP, CMYK, EXIF orientation, transparency on white, 16-bit, ...).
    """
    size = _as_size(image_size)
    _check_resize(resize)

    def decode(b) -> np.ndarray:
        return _images.decode_bytes(_as_bytes(b), size, channels, resize, name="<encoded image bytes>")

    image = tf.numpy_function(decode, [contents], tf.uint8, stateful=False)
    return tf.ensure_shape(image, (size[0], size[1], channels))


def _fs_paths(paths: Sequence) -> list[str]:
    return [_images.as_path(p) for p in paths]


def _tf_paths(paths: Sequence[str]) -> np.ndarray:
    """File names as bytes for ``tf.string`` (non-UTF-8 names, held as surrogates, survive)."""
    return np.array([os.fsencode(p) for p in paths], dtype=object)


def check_files_exist(paths: Sequence[str]) -> None:
    """Raise :class:`DatasetError` listing every path that is not a file."""
    missing = [_images.show_path(p) for p in paths if not os.path.isfile(p)]
    if missing:
        raise DatasetError(f"{len(missing)} image file(s) not found", problems=missing)


def _describe_decode_error(path: str, image_size, channels: int, resize: str) -> str:
    try:
        _images.read_image(path, image_size, channels, resize)
    except _images.ImageDecodeError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - we only want the message
        return f"{_images.show_path(path)}: cannot decode image ({type(exc).__name__}: {exc})"
    # PIL reads it: TensorFlow's JPEG decoder refused a file that PIL accepts
    return f"{_images.show_path(path)}: cannot decode image with TensorFlow's JPEG decoder"


def _pil_decode_into(out: np.ndarray, index: Sequence[int], paths: Sequence[str], size, channels: int,
                     resize: str, workers: int | None = None) -> list[str]:
    """PIL-decode ``paths[i]`` into ``out[i]`` for ``i`` in ``index`` (threads: PIL decodes and
    resizes without the GIL); returns the error messages (each naming its file)."""
    def one(i: int) -> str | None:
        try:
            out[i] = _images.read_image(paths[i], size, channels, resize)
        except _images.ImageDecodeError as exc:
            return str(exc)
        return None

    if not len(index):
        return []
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        return [m for m in pool.map(one, index, chunksize=32) if m]


def _decode_batch(files: tf.Tensor, ratio: int, shape: tuple[int, int, int]) -> tf.Tensor:
    """A batch of JPEG file names of one size and DCT scale -> ``(B, *shape)`` uint8, decoded one
    after the other inside one graph call (``tf.map_fn``): a tf.data element per image cost about
    0.04 ms of CPU per image, a quarter of a small JPEG's own decode."""
    return tf.map_fn(lambda f: tf.ensure_shape(_decode_jpeg(tf.io.read_file(f), ratio, shape[2]), shape), files,
                     fn_output_signature=tf.TensorSpec(shape, tf.uint8), parallel_iterations=1)


#: traced batch decoders by (DCT scale, decoded shape, output size, resize): tracing one cost
#: ~45 ms, paid once per process instead of on every :func:`decode_images` call
_BATCH_DECODERS: dict[tuple, Callable] = {}


def _batch_decoder(ratio: int, shape: tuple[int, int, int], size: tuple[int, int], resize: str) -> Callable:
    """``tf.function``: file names ``(B,)`` of one size and DCT scale -> ``(B, *size, C)`` uint8
    (:func:`_decode_batch`, then ``"stretch"``: :func:`_resize_batch_stretch`, within one level of
    the per-image values; ``"pad"``: TensorFlow's resize, the same values)."""
    key = (ratio, shape, size, resize)
    if key not in _BATCH_DECODERS:
        if len(_BATCH_DECODERS) >= 64:  # photos of many sizes: keep the cache bounded
            _BATCH_DECODERS.clear()

        def decode(files: tf.Tensor) -> tf.Tensor:
            images = _decode_batch(files, ratio, shape)
            if resize == "stretch":
                return _resize_batch_stretch(images, shape[:2], size)
            return _resize_round(images, size, resize)

        _BATCH_DECODERS[key] = tf.function(decode, input_signature=[tf.TensorSpec([None], tf.string)],
                                           autograph=False)
    return _BATCH_DECODERS[key]


def _per_image_dataset(paths: Sequence[str], index: np.ndarray, plans: np.ndarray, size, channels: int,
                       resize: str, num_parallel_calls: int) -> tf.data.Dataset:
    """tf.data pipeline of ``(uint8 batch, row indices)`` decoding ``paths[index]`` one tf.data
    element per image; a file TensorFlow refuses is left out (``ignore_errors``)."""
    index = np.asarray(sorted(index), np.int64)
    ds = tf.data.Dataset.from_tensor_slices((_tf_paths([paths[i] for i in index]), plans[index, 0], index))
    ds = ds.map(tf.autograph.experimental.do_not_convert(
        lambda p, r, i: (_tf_jpeg(tf.io.read_file(p), r, size, channels, resize), i)),
        num_parallel_calls=num_parallel_calls, deterministic=False)
    return ds.ignore_errors().batch(1024).prefetch(2)


def _jpeg_datasets(paths: Sequence[str], fast: np.ndarray, plans: np.ndarray, size, channels: int,
                   resize: str, num_parallel_calls: int) -> tuple[list[tf.data.Dataset], np.ndarray]:
    """tf.data pipelines of ``(uint8 batch, row indices)`` decoding ``paths[fast]`` with
    TensorFlow: groups of at least :data:`_GROUP_MIN` images of one size and DCT scale are decoded
    by batches of :data:`_GROUP_BATCH` (:func:`_decode_batch`) and resized by batches (``"pad"``:
    TensorFlow's resize, the same values as per image; ``"stretch"``: :func:`_resize_batch_stretch`,
    within one level of them); the rest per image. A batch holding a file TensorFlow refuses is left
    out whole (``ignore_errors``), a file of the rest alone: the caller decodes the batches' missing
    rows again one by one. Returns the pipelines and the rows decoded per image."""
    keys = plans[fast]
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, key in zip(fast, map(tuple, keys)):
        groups.setdefault(key, []).append(int(i))
    datasets, rest = [], []
    # one batch per core, fixed: with tf.data's autotuning on, one run in three decoded a group on
    # one core of two (FairFace, 6,000 images: 0.69 s instead of 0.49 s, the CPU time the same)
    batch_calls = (os.cpu_count() or 1) if num_parallel_calls == AUTOTUNE else num_parallel_calls
    fixed = tf.data.Options()
    fixed.autotune.enabled = False
    for (ratio, height, width), index in groups.items():
        if len(index) < _GROUP_MIN:
            rest += index
            continue
        shape = (-(-height // ratio), -(-width // ratio), channels)  # libjpeg rounds the scaled size up
        decode = _batch_decoder(int(ratio), shape, tuple(size), resize)
        ds = tf.data.Dataset.from_tensor_slices((_tf_paths([paths[i] for i in index]), np.asarray(index, np.int64)))
        ds = ds.batch(_GROUP_BATCH).map(tf.autograph.experimental.do_not_convert(lambda p, i, f=decode: (f(p), i)),
                                        num_parallel_calls=batch_calls, deterministic=False)
        datasets.append(ds.ignore_errors().prefetch(2).with_options(fixed))
    single = np.asarray(sorted(rest), np.int64)
    if len(single):
        datasets.append(_per_image_dataset(paths, single, plans, size, channels, resize, num_parallel_calls))
    return datasets, single


def decode_images(
    paths: Sequence[str],
    image_size: int | Sequence[int] = (32, 32),
    channels: int = 1,
    resize: str = "stretch",
    num_parallel_calls: int = AUTOTUNE,
    backend: str = "auto",
) -> np.ndarray:
    """Decode image files in parallel into one ``uint8`` array ``(N, H, W, channels)``.

    ``backend="auto"``: plain JPEGs go through TensorFlow's decoder (tf.data, parallel,
    DCT-domain downscaling), every other file through PIL (:mod:`kerasmt.images`) in a thread
    pool; ``"pil"``: every file through PIL (draft-mode JPEG downscaling). Every file that is
    missing or cannot be decoded is listed (by path, with the reason) in one
    :class:`DatasetError`; nothing is silently dropped.
    """
    if backend not in {"auto", "pil"}:
        raise ValueError(f"backend must be 'auto' or 'pil', got {backend!r}")
    paths = _fs_paths(paths)
    _check_resize(resize)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    check_files_exist(paths)
    size = _as_size(image_size)
    out = np.zeros((len(paths), size[0], size[1], channels), dtype=np.uint8)
    if not paths:
        return out
    plans = _fast_plans(paths, size) if backend == "auto" else np.zeros((len(paths), 3), np.int32)
    ratios = plans[:, 0]
    fast = np.flatnonzero(ratios > 0)
    bad: list[str] = []
    if len(fast):
        seen = np.zeros(len(paths), dtype=bool)

        def take(datasets: list[tf.data.Dataset]) -> None:
            for ds in datasets:
                for batch, index in ds.as_numpy_iterator():
                    out[index] = batch
                    seen[index] = True

        datasets, single = _jpeg_datasets(paths, fast, plans, size, channels, resize, num_parallel_calls)
        take(datasets)
        # a batch left out for a file TensorFlow refused: its files again, one by one
        retry = np.setdiff1d(fast[~seen[fast]], single)
        if len(retry):
            take([_per_image_dataset(paths, retry, plans, size, channels, resize, num_parallel_calls)])
        failed = fast[~seen[fast]]
        # TensorFlow refused them: PIL decodes them or names the reason
        bad += _pil_decode_into(out, failed, paths, size, channels, resize)
    bad += _pil_decode_into(out, np.flatnonzero(ratios == 0), paths, size, channels, resize)
    if bad:
        raise DatasetError(f"{len(bad)} of {len(paths)} image(s) could not be decoded", problems=bad)
    return out


def _cache_key(paths: Sequence[str], size, channels: int, resize: str) -> str:
    digest = hashlib.sha1(f"v{_CACHE_VERSION}|{size}|{channels}|{resize}".encode())
    for p in paths:
        stat = os.stat(p)
        digest.update(os.fsencode(p) + f"|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def _npy_cached(cache_path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``np.load(cache_path)`` if it exists, else ``compute()`` saved there atomically (a per-process
    temporary file renamed into place, so concurrent writers never leave a torn file)."""
    if cache_path.is_file():
        return np.load(cache_path)
    array = compute()
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_name(f".{cache_path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, cache_path)
    return array


def decode_images_to_disk(
    paths: Sequence[str],
    path: str | os.PathLike,
    image_size: int | Sequence[int] = (32, 32),
    channels: int = 1,
    resize: str = "stretch",
    backend: str = "auto",
    chunk_bytes: int = 128 << 20,
) -> diskarray.DiskArray:
    """:func:`decode_images` chunk by chunk (about ``chunk_bytes`` of decoded images each) into a
    ``.npy`` file at ``path``, so memory holds one chunk whatever the number of images; returns
    it as a :class:`~kerasmt.diskarray.DiskArray`. Undecodable files are listed as by
    :func:`decode_images` (per chunk); nothing is left at ``path`` then."""
    paths = _fs_paths(paths)
    check_files_exist(paths)
    size = _as_size(image_size)
    step = max(1, chunk_bytes // max(1, size[0] * size[1] * channels))

    def chunks():
        for start in range(0, len(paths), step):
            part = paths[start:start + step]
            yield np.arange(start, start + len(part)), decode_images(part, size, channels, resize, backend=backend)

    return diskarray.create(path, (len(paths), size[0], size[1], channels), np.uint8, chunks())


def load_images(
    paths: Sequence[str],
    image_size: int | Sequence[int] = (32, 32),
    channels: int = 1,
    resize: str = "stretch",
    cache_dir: str | os.PathLike | None = None,
    backend: str = "auto",
    in_memory: bool | None = None,
) -> np.ndarray | diskarray.DiskArray:
    """:func:`decode_images` with an optional on-disk ``.npy`` cache.

    The cache file name hashes the paths, their sizes and modification times and the decode
    settings, so a changed image or setting is decoded again.

    ``in_memory``: ``True`` returns a NumPy array; ``False`` decodes into the ``.npy`` cache (under
    ``cache_dir``, default the user cache ``images/`` folder) and returns it as a
    :class:`~kerasmt.diskarray.DiskArray` read by rows (memory bounded whatever the number of
    images); ``None`` (default) picks memory when the decoded array is at most
    :func:`kerasmt.diskarray.in_memory_limit` (1 GiB).
    """
    paths = _fs_paths(paths)
    size = _as_size(image_size)
    if in_memory is None:
        in_memory = len(paths) * size[0] * size[1] * channels <= diskarray.in_memory_limit()
    if in_memory and cache_dir is None:
        return decode_images(paths, image_size, channels, resize, backend=backend)
    check_files_exist(paths)
    folder = Path(cache_dir) if cache_dir is not None else user_cache_dir("images")
    cache_path = folder / f"images-{size[0]}x{size[1]}x{channels}-{_cache_key(paths, size, channels, resize)}.npy"
    if in_memory:
        return _npy_cached(cache_path, lambda: decode_images(paths, size, channels, resize, backend=backend))
    return diskarray.cached(cache_path, lambda p: decode_images_to_disk(paths, p, size, channels, resize,
                                                                         backend=backend))


def _label_arrays(manifest: pd.DataFrame, labels: str | Sequence[str] | None):
    if labels is None:
        return None
    names = [labels] if isinstance(labels, str) else list(labels)
    missing = [n for n in names if n not in manifest.columns]
    if missing:
        raise KeyError(f"manifest has no label column(s) {missing}; columns: {list(manifest.columns)}")
    arrays = {}
    for n in names:
        column = manifest[n]
        kind = column.dtype.kind
        if kind not in "biuf":
            raise TypeError(f"label column {n!r} has dtype {column.dtype}; expected integer codes or floats")
        # integer codes (-1 = missing) -> int32; continuous targets (e.g. age in years) -> float32
        if kind in "iu" and len(column) and (column.min() < np.iinfo(np.int32).min or column.max() > np.iinfo(np.int32).max):
            raise DatasetError(f"label column {n!r}: value(s) beyond the int32 range (e.g. "
                               f"{column[(column < np.iinfo(np.int32).min) | (column > np.iinfo(np.int32).max)].iloc[0]}); "
                               f"expected class codes -1 .. n_classes - 1")
        arrays[n] = column.to_numpy(dtype=np.float32 if kind == "f" else np.int32)
    return arrays[names[0]] if isinstance(labels, str) else arrays


def validate_labels(
    labels: Mapping[str, np.ndarray] | np.ndarray,
    n_classes: int | Mapping[str, int | None] | None,
    source: str = "labels",
    task: str = "label",
) -> None:
    """Raise :class:`DatasetError` when a class label is outside ``-1 .. n_classes - 1``.

    ``labels``: one array (task name ``task``) or ``{task: array}``; ``n_classes``: one count
    for every task, ``{task: count}`` (tasks without a count, or with ``None``, are skipped: e.g.
    regression targets) or ``None`` (nothing to check). ``-1`` means missing. The message names
    the task, the bad values, how many rows carry them and the first rows, and ``source`` (a file
    or split). Checking here, once, keeps the losses free of checks: under XLA a label >=
    ``n_classes`` silently turns every loss into NaN, and the masked accuracy counts it wrong.
    """
    if n_classes is None:
        return
    arrays = labels if isinstance(labels, Mapping) else {task: labels}
    counts = n_classes if isinstance(n_classes, Mapping) else {name: n_classes for name in arrays}
    problems = []
    for name, values in arrays.items():
        n = counts.get(name)
        if n is None:
            continue
        values = np.asarray(values)
        if values.dtype.kind == "f":
            if not np.all(np.isfinite(values) & (values == np.round(values))):
                problems.append(f"task {name!r}: labels must be whole numbers (class codes), "
                                f"found e.g. {values[~(np.isfinite(values) & (values == np.round(values)))][:3].tolist()}")
                continue
        elif values.dtype.kind not in "biu":
            problems.append(f"task {name!r}: labels must be integer class codes, got dtype {values.dtype}")
            continue
        flat = values.reshape(len(values), -1) if values.ndim > 1 else values.reshape(-1, 1)
        bad_rows = np.flatnonzero(((flat < -1) | (flat >= int(n))).any(axis=1))
        if len(bad_rows):
            bad_values = np.unique(flat[bad_rows][(flat[bad_rows] < -1) | (flat[bad_rows] >= int(n))])
            shown = ", ".join(str(int(v)) for v in bad_values[:10]) + (" ..." if len(bad_values) > 10 else "")
            problems.append(
                f"task {name!r}: label value(s) {shown} out of range for {int(n)} classes (expected -1 = "
                f"missing or 0..{int(n) - 1}) in {len(bad_rows)} row(s), first rows {bad_rows[:5].tolist()}"
            )
    if problems:
        raise DatasetError(f"{source}: labels out of range", problems=problems)


def to_float(images: tf.Tensor) -> tf.Tensor:
    """``uint8`` [0, 255] -> ``float32`` [0, 1]."""
    return tf.cast(images, tf.float32) / 255.0


def image_dataset(
    manifest: pd.DataFrame,
    labels: str | Sequence[str] | None = None,
    image_size: int | Sequence[int] = (32, 32),
    channels: int = 1,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    cache: str | None = "memory",
    cache_dir: str | os.PathLike | None = None,
    augment: Callable | None = None,
    resize: str = "stretch",
    images: np.ndarray | None = None,
    target: str = "labels",
    drop_remainder: bool = False,
    n_classes: int | Mapping[str, int | None] | None = None,
) -> tf.data.Dataset:
    """Batches ``(images, labels)`` from a manifest, ready for ``model.fit``.

    Args:
        manifest: frame with a ``path`` column and integer label columns.
        labels: one column name (labels tensor), a list of names (dict ``{task: labels}``, the
            form multi-output models expect) or ``None`` (images only).
        image_size, channels, resize: decode settings (32x32 grayscale stretched by default).
        batch_size: batch size; ``shuffle`` reshuffles every epoch from ``seed``.
        cache: ``"memory"`` (decode once into uint8, see :func:`load_images`), ``"disk"``
            (decode once into a ``.npy`` file read by rows when it exceeds 1 GiB, else memory),
            ``None`` (stream) or a file prefix for tf.data's on-disk cache.
        cache_dir: with ``cache="memory"``, keep the decoded uint8 array as ``.npy`` there.
        augment: callable (e.g. a Keras preprocessing ``Sequential``) applied to float batches
            with ``training=True``; use it for the training set only.
        images: already decoded uint8 images for the manifest rows (skips decoding): a NumPy
            array or a :class:`~kerasmt.diskarray.DiskArray` (read by batches of rows).
        target: ``"labels"`` (default) or ``"images"`` to yield ``(x, x)`` for autoencoders.
        drop_remainder: drop the last incomplete batch.
        n_classes: class count per task (one int for all, or ``{task: count}``): labels outside
            ``-1 .. count - 1`` raise a :class:`DatasetError` naming the task and value
            (:func:`validate_labels`), here, before any training step.
    """
    if target not in {"labels", "images"}:
        raise ValueError(f"target must be 'labels' or 'images', got {target!r}")
    if "path" not in manifest.columns and images is None:
        raise KeyError(f"manifest has no 'path' column; columns: {list(manifest.columns)}")
    size = _as_size(image_size)
    if labels is not None:  # on the manifest's own values, before any cast to int32
        names = [labels] if isinstance(labels, str) else list(labels)
        validate_labels({c: manifest[c].to_numpy() for c in names if c in manifest.columns}, n_classes,
                        source="manifest")
    y = _label_arrays(manifest, labels)
    n = len(manifest)

    if images is not None or cache in ("memory", "disk"):
        if images is None:
            images = load_images(manifest["path"].tolist(), size, channels, resize, cache_dir,
                                 in_memory=True if cache == "memory" else None)
        if len(images) != n:
            raise ValueError(f"images has {len(images)} rows but the manifest has {n}")
    by_index = images is not None and (diskarray.is_disk(images) or images.nbytes > _SLICES_MAX_BYTES)
    if by_index:
        # decoded images on disk, or a large array in memory: shuffle indices and gather each
        # batch's rows (no copy of the array into the graph or the shuffle buffer; the same order
        # as shuffling the slices with the same seed)
        ds = diskarray.rows_dataset(images if y is None else (images, y), batch_size, shuffle, seed, drop_remainder)
    elif images is not None:
        ds = tf.data.Dataset.from_tensor_slices(images if y is None else (images, y))
        if shuffle:
            ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    else:
        paths = _fs_paths(manifest["path"].tolist())
        check_files_exist(paths)
        extras = () if y is None else (y,)
        if cache:  # decode once into tf.data's file cache, then shuffle the cached images
            ds = stream_images(paths, size, channels, resize, extras).cache(str(cache))
            if shuffle:
                ds = ds.shuffle(min(max(n, 1), 10_000), seed=seed, reshuffle_each_iteration=True)
        else:
            ds = stream_images(paths, size, channels, resize, extras, shuffle=shuffle, seed=seed)

    if not by_index:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def _finish(x, *rest):
        x = to_float(x)
        if augment is not None:
            x = augment(x, training=True)
        if target == "images":
            return x, x
        return x if not rest else (x, rest[0])

    # without augment, _finish has no control flow for AutoGraph to convert (converting it cost
    # ~50 ms per dataset); a user's augment callable keeps AutoGraph
    finish = _finish if augment is not None else tf.autograph.experimental.do_not_convert(_finish)
    ds = ds.map(finish, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def labels_of(manifest: pd.DataFrame, tasks: Sequence[str]) -> dict[str, np.ndarray]:
    """Label arrays of a manifest, ``{task: array}`` (int32 codes, float32 for float columns)."""
    return _label_arrays(manifest, list(tasks))


# ------------------------------------------------------------------------ segmentation masks
#: value of an unlabelled pixel in label maps (every pixel of an image without a mask)
MASK_MISSING = -1


def decode_mask(
    contents: tf.Tensor,
    image_size: int | Sequence[int] = (32, 32),
    resize: str = "pad",
) -> tf.Tensor:
    """Decode one binary part mask (PNG/BMP/GIF/JPEG bytes) to a ``float32`` coverage map
    ``(H, W)`` in [0, 1], resized exactly as :func:`decode_image` resizes its image (``"pad"``:
    aspect kept, zero = background padding; ``"stretch"``).

    Masks coded 0/255 (any value > 1 counts as 255-scaled, threshold 128) and 0/1 are both
    understood; colour masks are read as grey. Threshold the coverage at 0.5 for a binary mask.
    """
    size = _as_size(image_size)
    if resize not in {"stretch", "pad"}:
        raise ValueError(f"resize must be 'stretch' or 'pad', got {resize!r}")
    mask = tf.io.decode_image(contents, channels=1, expand_animations=False)
    mask = tf.ensure_shape(mask, [None, None, 1])
    scale = tf.where(tf.reduce_max(mask) > 1, 255.0, 1.0)
    binary = tf.cast(tf.cast(mask, tf.float32) >= 0.5 * scale, tf.float32)
    if resize == "stretch":
        out = tf.image.resize(binary, size, method="bilinear", antialias=True)
    else:
        out = tf.image.resize_with_pad(binary, size[0], size[1], method="bilinear", antialias=True)
    return tf.clip_by_value(out[..., 0], 0.0, 1.0)


def masks_to_labels(coverage: tf.Tensor, threshold: float = 0.5) -> tf.Tensor:
    """Part coverages ``(..., H, W, P)`` -> ``uint8`` label map ``(..., H, W)``: 0 = background
    (no part covers ``threshold`` of the pixel), ``k`` = part ``k - 1`` (the most covering one;
    ties go to the earlier part)."""
    best = tf.cast(tf.argmax(coverage, axis=-1, output_type=tf.int32) + 1, tf.uint8)
    covered = tf.reduce_max(coverage, axis=-1) >= threshold
    return tf.where(covered, best, tf.zeros_like(best))


def _describe_mask_error(path: str, size, resize: str) -> str:
    try:
        decode_mask(tf.io.read_file(path), size, resize)
    except Exception as exc:  # noqa: BLE001 - we only want the message
        message = str(getattr(exc, "message", exc)).strip().splitlines()[0]
        message = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*$", "", message)
        return f"{path}: cannot decode mask ({type(exc).__name__}: {message})"
    return f"{path}: cannot decode mask"


def decode_masks(
    mask_paths: Sequence[Sequence[str] | None],
    image_size: int | Sequence[int] = (32, 32),
    resize: str = "pad",
    threshold: float = 0.5,
    num_parallel_calls: int = AUTOTUNE,
) -> np.ndarray:
    """Decode per-part binary masks into one ``int8`` label-map array ``(N, H, W)``.

    ``mask_paths[i]`` lists the part mask files of image ``i`` (same order for every image) or is
    ``None`` for an image without masks, whose label map is all :data:`MASK_MISSING` (-1).
    Labels: 0 = background, ``k`` = part ``k - 1`` (see :func:`masks_to_labels`). Every missing or
    undecodable file is listed by path in one :class:`DatasetError`.
    """
    size = _as_size(image_size)
    rows = [None if r is None else _fs_paths(r) for r in mask_paths]
    out = np.full((len(rows), size[0], size[1]), MASK_MISSING, dtype=np.int8)
    have = [i for i, r in enumerate(rows) if r is not None]
    if not have:
        return out
    n_parts = {len(rows[i]) for i in have}
    if len(n_parts) != 1 or 0 in n_parts:
        raise ValueError(f"every image must list the same number (>= 1) of mask files; got {sorted(n_parts)}")
    if max(n_parts) > 254:
        raise ValueError("at most 254 parts fit a uint8 label map")
    flat = [p for i in have for p in rows[i]]
    check_files_exist(flat)
    paths = np.array([rows[i] for i in have], dtype=object).astype(str)
    seen = np.zeros(len(have), dtype=bool)

    def _load(files, index):
        coverage = tf.map_fn(
            lambda f: decode_mask(tf.io.read_file(f), size, resize),
            files,
            fn_output_signature=tf.TensorSpec((size[0], size[1]), tf.float32),
        )
        return masks_to_labels(tf.transpose(coverage, (1, 2, 0)), threshold), index

    ds = tf.data.Dataset.from_tensor_slices((paths, np.arange(len(have), dtype=np.int64)))
    ds = ds.map(_load, num_parallel_calls=num_parallel_calls, deterministic=False)
    ds = ds.ignore_errors().batch(256).prefetch(2)
    index_of = np.asarray(have)
    for labels, index in ds.as_numpy_iterator():
        out[index_of[index]] = labels.astype(np.int8)
        seen[index] = True
    if not seen.all():
        bad = []
        for j in np.flatnonzero(~seen):
            bad += [_describe_mask_error(p, size, resize) for p in rows[have[j]]]
        raise DatasetError(f"{int((~seen).sum())} of {len(have)} image(s) have masks that could not be decoded", problems=bad)
    return out


def load_masks(
    mask_paths: Sequence[Sequence[str] | None],
    image_size: int | Sequence[int] = (32, 32),
    resize: str = "pad",
    threshold: float = 0.5,
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """:func:`decode_masks` with an optional on-disk ``.npy`` cache (keyed like
    :func:`load_images`: paths, sizes, modification times and settings)."""
    if cache_dir is None:
        return decode_masks(mask_paths, image_size, resize, threshold)
    rows = [None if r is None else _fs_paths(r) for r in mask_paths]
    flat = [p for r in rows if r is not None for p in r]
    check_files_exist(flat)
    size = _as_size(image_size)
    layout = "|".join("-" if r is None else str(len(r)) for r in rows)
    key = _cache_key(flat, size, 0, f"mask-{resize}-{threshold}-{hashlib.sha1(layout.encode()).hexdigest()}")
    cache_path = Path(cache_dir) / f"masks-{size[0]}x{size[1]}-{key}.npy"
    return _npy_cached(cache_path, lambda: decode_masks(rows, size, resize, threshold))


def one_hot_masks(label_maps: np.ndarray, n_classes: int) -> np.ndarray:
    """Label maps ``(..., H, W)`` -> ``float32`` one-hot ``(..., H, W, n_classes)``; unlabelled
    pixels (-1) are all zeros. With background = class 0 this is the "parts + background channel"
    form, background = 1 - sum(parts)."""
    label_maps = np.asarray(label_maps)
    out = np.zeros(label_maps.shape + (n_classes,), dtype=np.float32)
    valid = label_maps >= 0
    out[valid, label_maps[valid].astype(np.int64)] = 1.0
    return out


def segmentation_dataset(
    images: np.ndarray,
    labels: dict[str, np.ndarray] | None = None,
    masks: np.ndarray | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    augment: Callable | None = None,
    mask_output: str = "mask",
    drop_remainder: bool = False,
    n_classes: int | Mapping[str, int | None] | None = None,
    n_mask_classes: int | None = None,
) -> tf.data.Dataset:
    """Batches ``(images, {task: labels, ..., mask_output: label maps})`` for a model with class
    outputs and a segmentation output.

    Args:
        images: decoded ``uint8`` images ``(N, H, W, C)`` (e.g. from :func:`load_images`).
        labels: ``{task: int array (N,)}`` with ``-1`` = missing (``None``: no class targets).
        masks: ``int8`` label maps ``(N, H, W)`` from :func:`load_masks`, ``-1`` where unlabelled
            (all of an image without a mask), so a masked segmentation loss gives those rows 0
            weight (``None``: no mask target).
        batch_size, shuffle, seed, drop_remainder: batching; ``shuffle`` reshuffles every epoch.
        augment: a Keras image preprocessing layer (or callable) taking
            ``{"images": x, "segmentation_masks": m}`` and returning the same keys, applied with
            ``training=True`` to float batches so image and mask get the same random transform
            (see :class:`kerasmt.augment.PairedAugmentation`). Label maps travel as ``label + 1``,
            so pixels moved in from outside the image (filled with 0) become unlabelled (-1).
        n_classes, n_mask_classes: class counts of the label tasks and of the label maps; values
            outside ``-1 .. count - 1`` raise a :class:`DatasetError` (:func:`validate_labels`).
    With neither ``labels`` nor ``masks`` the dataset yields images only.
    """
    n = len(images)
    targets: dict[str, np.ndarray] = {}
    validate_labels(dict(labels or {}), n_classes, source="labels")
    for task, values in (labels or {}).items():
        values = np.asarray(values)
        if len(values) != n:
            raise ValueError(f"labels[{task!r}] has {len(values)} rows but images has {n}")
        targets[task] = values.astype(np.int32)
    if masks is not None:
        masks = np.asarray(masks)
        if masks.shape != images.shape[:3]:
            raise ValueError(f"masks have shape {masks.shape}; expected {images.shape[:3]} (one label map per image)")
        if mask_output in targets:
            raise ValueError(f"mask_output {mask_output!r} collides with a label name")
        if n_mask_classes is not None:
            validate_labels({mask_output: masks}, {mask_output: n_mask_classes}, source="masks")
        targets[mask_output] = masks.astype(np.int8)
    ds = tf.data.Dataset.from_tensor_slices((images, targets) if targets else images)
    if shuffle:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def _finish(x, y=None):
        x = to_float(x)
        m = None
        if y is not None and mask_output in y:
            y = dict(y)
            m = tf.cast(y[mask_output], tf.int32)
        if augment is not None:
            data = {"images": x}
            if m is not None:
                data["segmentation_masks"] = tf.cast(m + 1, tf.float32)[..., None]
            data = augment(data, training=True)
            x = data["images"]
            if m is not None:
                m = tf.cast(tf.round(data["segmentation_masks"][..., 0]), tf.int32) - 1
        if y is None:
            return x
        if m is not None:
            y[mask_output] = m
        return x, y

    ds = ds.map(_finish, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
