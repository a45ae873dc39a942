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

JPEG files are decoded at a reduced DCT scale (``ratio`` 2/4/8) whenever the file is at least
twice the target size, which makes 224 px -> 32 px decoding several times faster at equal quality.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from kerasmt.datasets.base import DatasetError

AUTOTUNE = tf.data.AUTOTUNE
_CACHE_VERSION = "1"


def _as_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return (image_size, image_size)
    height, width = image_size
    return (int(height), int(width))


def _jpeg_scale_index(contents: tf.Tensor, target: tuple[int, int]) -> tf.Tensor:
    """Index into (1, 2, 4, 8) of the largest DCT downscale that keeps the JPEG >= 2x the target."""
    shape = tf.cast(tf.image.extract_jpeg_shape(contents), tf.float32)
    limit = tf.minimum(shape[0] / (2.0 * target[0]), shape[1] / (2.0 * target[1]))
    return tf.where(limit >= 8.0, 3, tf.where(limit >= 4.0, 2, tf.where(limit >= 2.0, 1, 0)))


def decode_image(
    contents: tf.Tensor,
    image_size: int | Sequence[int] = (32, 32),
    channels: int = 1,
    resize: str = "stretch",
) -> tf.Tensor:
    """Decode encoded image bytes to a ``uint8`` tensor of shape ``(H, W, channels)``.

    ``resize="stretch"`` resizes to the target size (the FairFace convention); ``"pad"`` keeps the
    aspect ratio and pads with zeros (letterbox). Any input size, colour or grey, PNG/JPEG/BMP/GIF.
    """
    size = _as_size(image_size)
    if resize not in {"stretch", "pad"}:
        raise ValueError(f"resize must be 'stretch' or 'pad', got {resize!r}")

    def _jpeg() -> tf.Tensor:
        def branch(ratio: int) -> Callable[[], tf.Tensor]:
            return lambda: tf.io.decode_jpeg(
                contents, channels=channels, ratio=ratio, dct_method="INTEGER_ACCURATE"
            )

        return tf.switch_case(
            _jpeg_scale_index(contents, size), branch_fns=[branch(r) for r in (1, 2, 4, 8)]
        )

    def _other() -> tf.Tensor:
        image = tf.io.decode_image(contents, channels=channels, expand_animations=False)
        return tf.ensure_shape(image, [None, None, channels])

    image = tf.cond(tf.io.is_jpeg(contents), _jpeg, _other)
    image = tf.ensure_shape(image, [None, None, channels])
    if resize == "stretch":
        image = tf.image.resize(image, size, method="bilinear", antialias=True)
    else:
        image = tf.image.resize_with_pad(image, size[0], size[1], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def check_files_exist(paths: Sequence[str]) -> None:
    """Raise :class:`DatasetError` listing every path that is not a file."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DatasetError(f"{len(missing)} image file(s) not found", problems=missing)


def _describe_decode_error(path: str, image_size, channels: int, resize: str) -> str:
    try:
        decode_image(tf.io.read_file(path), image_size, channels, resize)
    except Exception as exc:  # noqa: BLE001 - we only want the message
        message = str(getattr(exc, "message", exc)).strip().splitlines()[0]
        message = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*$", "", message)
        return f"{path}: cannot decode image ({type(exc).__name__}: {message})"
    return f"{path}: cannot decode image"


def decode_images(
    paths: Sequence[str],
    image_size: int | Sequence[int] = (32, 32),
    channels: int = 1,
    resize: str = "stretch",
    num_parallel_calls: int = AUTOTUNE,
) -> np.ndarray:
    """Decode image files in parallel into one ``uint8`` array ``(N, H, W, channels)``.

    Every file that is missing or cannot be decoded is listed (by path, with the reason) in one
    :class:`DatasetError`; nothing is silently dropped.
    """
    paths = [str(p) for p in paths]
    check_files_exist(paths)
    size = _as_size(image_size)
    out = np.zeros((len(paths), size[0], size[1], channels), dtype=np.uint8)
    if not paths:
        return out
    seen = np.zeros(len(paths), dtype=bool)
    ds = tf.data.Dataset.from_tensor_slices((paths, np.arange(len(paths), dtype=np.int64)))
    ds = ds.map(
        lambda p, i: (decode_image(tf.io.read_file(p), size, channels, resize), i),
        num_parallel_calls=num_parallel_calls,
        deterministic=False,
    )
    ds = ds.ignore_errors().batch(1024).prefetch(2)
    for images, index in ds.as_numpy_iterator():
        out[index] = images
        seen[index] = True
    if not seen.all():
        bad = [_describe_decode_error(paths[i], size, channels, resize) for i in np.flatnonzero(~seen)]
        raise DatasetError(f"{len(bad)} of {len(paths)} image(s) could not be decoded", problems=bad)
    return out


def _cache_key(paths: Sequence[str], size, channels: int, resize: str) -> str:
    digest = hashlib.sha1(f"v{_CACHE_VERSION}|{size}|{channels}|{resize}".encode())
    for p in paths:
        stat = os.stat(p)
        digest.update(f"{p}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
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


def load_images(
    paths: Sequence[str],
    image_size: int | Sequence[int] = (32, 32),
    channels: int = 1,
    resize: str = "stretch",
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """:func:`decode_images` with an optional on-disk ``.npy`` cache.

    The cache file name hashes the paths, their sizes and modification times and the decode
    settings, so a changed image or setting is decoded again.
    """
    paths = [str(p) for p in paths]
    if cache_dir is None:
        return decode_images(paths, image_size, channels, resize)
    check_files_exist(paths)
    size = _as_size(image_size)
    cache_path = Path(cache_dir) / f"images-{size[0]}x{size[1]}x{channels}-{_cache_key(paths, size, channels, resize)}.npy"
    return _npy_cached(cache_path, lambda: decode_images(paths, size, channels, resize))


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
        arrays[n] = column.to_numpy(dtype=np.float32 if kind == "f" else np.int32)
    return arrays[names[0]] if isinstance(labels, str) else arrays


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
) -> tf.data.Dataset:
    """Batches ``(images, labels)`` from a manifest, ready for ``model.fit``.

    Args:
        manifest: frame with a ``path`` column and integer label columns.
        labels: one column name (labels tensor), a list of names (dict ``{task: labels}``, the
            form multi-output models expect) or ``None`` (images only).
        image_size, channels, resize: decode settings (32x32 grayscale stretched by default).
        batch_size: batch size; ``shuffle`` reshuffles every epoch from ``seed``.
        cache: ``"memory"`` (decode once into uint8, see :func:`load_images`), ``None`` (stream)
            or a file prefix for tf.data's on-disk cache (stream once, then read the cache).
        cache_dir: with ``cache="memory"``, keep the decoded uint8 array as ``.npy`` there.
        augment: callable (e.g. a Keras preprocessing ``Sequential``) applied to float batches
            with ``training=True``; use it for the training set only.
        images: already decoded uint8 images for the manifest rows (skips decoding).
        target: ``"labels"`` (default) or ``"images"`` to yield ``(x, x)`` for autoencoders.
        drop_remainder: drop the last incomplete batch.
    """
    if target not in {"labels", "images"}:
        raise ValueError(f"target must be 'labels' or 'images', got {target!r}")
    if "path" not in manifest.columns and images is None:
        raise KeyError(f"manifest has no 'path' column; columns: {list(manifest.columns)}")
    size = _as_size(image_size)
    y = _label_arrays(manifest, labels)
    n = len(manifest)

    if images is not None or cache == "memory":
        if images is None:
            images = load_images(manifest["path"].tolist(), size, channels, resize, cache_dir)
        if len(images) != n:
            raise ValueError(f"images has {len(images)} rows but the manifest has {n}")
        ds = tf.data.Dataset.from_tensor_slices(images if y is None else (images, y))
        if shuffle:
            ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    else:
        paths = manifest["path"].astype(str).tolist()
        check_files_exist(paths)
        ds = tf.data.Dataset.from_tensor_slices(paths if y is None else (paths, y))

        def _load(path, *rest):
            image = decode_image(tf.io.read_file(path), size, channels, resize)
            image.set_shape((size[0], size[1], channels))
            return image if not rest else (image, rest[0])

        ds = ds.map(_load, num_parallel_calls=AUTOTUNE)
        if cache:
            ds = ds.cache(str(cache))
        if shuffle:
            ds = ds.shuffle(min(max(n, 1), 10_000), seed=seed, reshuffle_each_iteration=True)

    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def _finish(x, *rest):
        x = to_float(x)
        if augment is not None:
            x = augment(x, training=True)
        if target == "images":
            return x, x
        return x if not rest else (x, rest[0])

    ds = ds.map(_finish, num_parallel_calls=AUTOTUNE)
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
    rows = [None if r is None else [str(p) for p in r] for r in mask_paths]
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
    rows = [None if r is None else [str(p) for p in r] for r in mask_paths]
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
    With neither ``labels`` nor ``masks`` the dataset yields images only.
    """
    n = len(images)
    targets: dict[str, np.ndarray] = {}
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
