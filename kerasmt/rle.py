"""Run-length encoding of binary masks: Kaggle's "start length" pairs and COCO counts.

Kaggle (iMaterialist 2019 ``train.csv``, column ``EncodedPixels``)::

    "start length start length ..."   1-indexed pixel numbers, column-major (top to bottom, then
                                       left to right; NumPy ``order="F"``), runs ascending and
                                       non-overlapping

COCO (Fashionpedia, pycocotools): ``{"size": [h, w], "counts": [...]}`` alternating run lengths
of 0s and 1s (starting with 0s), also column-major; ``counts`` may be the compressed string form.
Both describe the same runs, so one converts into the other without drawing the mask
(:func:`coco_to_rle`, :func:`rle_to_coco`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


class RLEError(ValueError):
    """A run-length string is malformed or does not fit its image; the message says why."""


def parse_rle(text: str) -> np.ndarray:
    """``"start length ..."`` -> int64 array ``(runs, 2)`` of (1-indexed start, length).

    Raises :class:`RLEError` for an odd number of values, a value that is not a positive
    integer, or runs that are not ascending and non-overlapping. An empty string is no runs.
    """
    if not isinstance(text, str):
        raise RLEError(f"expected a string of 'start length' pairs, got {type(text).__name__} {text!r}")
    tokens = text.split()
    if len(tokens) % 2:
        raise RLEError(f"odd number of values ({len(tokens)}); expected 'start length' pairs")
    try:
        values = np.array([int(t) for t in tokens], dtype=np.int64)
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("+-").isdigit())
        raise RLEError(f"value {bad!r} is not an integer; expected 'start length' pairs of positive integers") from None
    runs = values.reshape(-1, 2)
    if len(runs):
        if runs[:, 0].min() < 1:
            i = int(np.argmin(runs[:, 0]))
            raise RLEError(f"run {i + 1}: start {runs[i, 0]} < 1 (pixels are numbered from 1)")
        if runs[:, 1].min() < 1:
            i = int(np.argmin(runs[:, 1]))
            raise RLEError(f"run {i + 1}: length {runs[i, 1]} < 1")
        ends = runs[:, 0] + runs[:, 1]  # exclusive
        bad = np.flatnonzero(runs[1:, 0] < ends[:-1])
        if len(bad):
            i = int(bad[0]) + 1
            raise RLEError(
                f"run {i + 1} (start {runs[i, 0]}) overlaps or precedes run {i} "
                f"(pixels {runs[i - 1, 0]}..{ends[i - 1] - 1}); runs must be ascending and non-overlapping"
            )
    return runs


def check_fits(runs: np.ndarray, height: int, width: int) -> None:
    """Raise :class:`RLEError` when a run goes past the last pixel of a ``height x width`` image."""
    if height < 1 or width < 1:
        raise RLEError(f"image size {height}x{width} is not positive")
    total = int(height) * int(width)
    if len(runs):
        last = runs[-1, 0] + runs[-1, 1] - 1
        if last > total:
            raise RLEError(
                f"run {len(runs)} (start {runs[-1, 0]}, length {runs[-1, 1]}) ends at pixel {last}, past the "
                f"last pixel {total} of a {height}x{width} image"
            )


def rle_decode(text: str | np.ndarray, height: int, width: int) -> np.ndarray:
    """Kaggle RLE -> ``uint8`` mask ``(height, width)`` of 0/1 (column-major, 1-indexed runs)."""
    runs = parse_rle(text) if isinstance(text, str) else np.asarray(text, dtype=np.int64).reshape(-1, 2)
    check_fits(runs, height, width)
    flat = np.zeros(int(height) * int(width) + 1, dtype=np.int8)
    if len(runs):
        np.add.at(flat, runs[:, 0] - 1, 1)
        np.add.at(flat, runs[:, 0] - 1 + runs[:, 1], -1)
    mask = np.cumsum(flat[:-1], dtype=np.int8).astype(np.uint8)
    return mask.reshape((int(height), int(width)), order="F")


def rle_encode(mask: np.ndarray) -> str:
    """Binary mask ``(H, W)`` (any dtype; nonzero = 1) -> Kaggle RLE string ("" for an empty mask)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {mask.shape}")
    flat = np.concatenate([[0], (mask.reshape(-1, order="F") != 0).astype(np.int8), [0]])
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # 1-indexed run boundaries
    starts, ends = changes[0::2], changes[1::2]
    pairs = np.stack([starts, ends - starts], axis=1).reshape(-1)
    return " ".join(map(str, pairs.tolist()))


def rle_area(text: str) -> int:
    """Number of pixels a Kaggle RLE string covers."""
    runs = parse_rle(text)
    return int(runs[:, 1].sum()) if len(runs) else 0


# ---------------------------------------------------------------------------------------- COCO
def coco_string_to_counts(text: str | bytes) -> list[int]:
    """Decode COCO's compressed ``counts`` string (pycocotools' ``rleFrString``) to run lengths."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            if p >= len(data):
                raise RLEError("truncated COCO counts string")
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(int(x))
    return counts


def coco_to_rle(counts: Sequence[int] | str | bytes, height: int, width: int) -> str:
    """COCO run lengths (0s first; list or compressed string) -> Kaggle RLE string."""
    if isinstance(counts, (str, bytes)):
        counts = coco_string_to_counts(counts)
    counts = np.asarray(counts, dtype=np.int64)
    if (counts < 0).any():
        raise RLEError("COCO counts must be >= 0")
    if counts.sum() != int(height) * int(width):
        raise RLEError(f"COCO counts cover {int(counts.sum())} pixels; a {height}x{width} image has {height * width}")
    ends = np.cumsum(counts)
    starts = ends - counts
    ones = np.arange(len(counts)) % 2 == 1
    keep = ones & (counts > 0)
    pairs = np.stack([starts[keep] + 1, counts[keep]], axis=1).reshape(-1)
    return " ".join(map(str, pairs.tolist()))


def rle_to_coco(text: str, height: int, width: int) -> dict:
    """Kaggle RLE -> uncompressed COCO RLE ``{"size": [h, w], "counts": [...]}`` (pycocotools'
    ``mask.frPyObjects`` compresses it)."""
    runs = parse_rle(text)
    check_fits(runs, height, width)
    total = int(height) * int(width)
    counts: list[int] = []
    pos = 0
    for start, length in runs.tolist():
        counts += [start - 1 - pos, length]
        pos = start - 1 + length
    counts.append(total - pos)
    return {"size": [int(height), int(width)], "counts": counts}


def segmentation_to_rle(segmentation: object, height: int, width: int) -> str:
    """A COCO annotation's ``segmentation`` (polygons, uncompressed or compressed RLE) -> Kaggle RLE.

    RLEs convert arithmetically; polygons are rasterised by pycocotools (``frPyObjects``)."""
    if isinstance(segmentation, Mapping):
        counts = segmentation.get("counts")
        size = segmentation.get("size")
        if counts is None or size is None:
            raise RLEError(f"COCO RLE needs 'counts' and 'size', got keys {sorted(segmentation)}")
        if [int(s) for s in size] != [int(height), int(width)]:
            raise RLEError(f"COCO RLE size {list(size)} differs from the image size {[height, width]}")
        return coco_to_rle(counts, height, width)
    if isinstance(segmentation, (list, tuple)):
        polygons = [list(map(float, p)) for p in segmentation]
        if not polygons or any(len(p) < 6 or len(p) % 2 for p in polygons):
            raise RLEError("COCO polygons must be lists of at least 3 (x, y) pairs")
        from pycocotools import mask as mask_utils

        rles = mask_utils.frPyObjects(polygons, int(height), int(width))
        merged = mask_utils.merge(rles) if len(rles) > 1 else rles[0]
        return coco_to_rle(merged["counts"], height, width)
    raise RLEError(f"unsupported COCO segmentation of type {type(segmentation).__name__}")
