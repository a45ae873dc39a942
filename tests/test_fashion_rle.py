"""Kaggle RLE ("start length", 1-indexed, column-major) and COCO run-length conversions."""
from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from kerasmt.rle import (
    RLEError,
    coco_string_to_counts,
    coco_to_rle,
    parse_rle,
    rle_area,
    rle_decode,
    rle_encode,
    rle_to_coco,
    segmentation_to_rle,
)


def test_hand_written_example_is_column_major_and_one_indexed():
    # 3x2 image; pixels are numbered down the columns: (0,0)=1 (1,0)=2 (2,0)=3 (0,1)=4 ...
    mask = np.array([[0, 1],
                     [1, 1],
                     [0, 0]], dtype=np.uint8)
    assert rle_encode(mask) == "2 1 4 2"
    np.testing.assert_array_equal(rle_decode("2 1 4 2", 3, 2), mask)
    # a row-major (C order) reading would have given "2 3" - make sure we are not doing that
    assert not np.array_equal(rle_decode("2 3", 3, 2), mask)
    assert rle_area("2 1 4 2") == 3


def test_first_and_last_pixel_and_empty_and_full():
    first = np.zeros((4, 5), np.uint8)
    first[0, 0] = 1
    assert rle_encode(first) == "1 1"
    last = np.zeros((4, 5), np.uint8)
    last[-1, -1] = 1
    assert rle_encode(last) == "20 1"
    assert rle_encode(np.zeros((4, 5))) == ""
    assert rle_encode(np.ones((4, 5))) == "1 20"
    np.testing.assert_array_equal(rle_decode("", 4, 5), np.zeros((4, 5)))
    np.testing.assert_array_equal(rle_decode("1 20", 4, 5), np.ones((4, 5)))


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_random_masks(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        h, w = rng.integers(1, 60, 2)
        density = rng.random()
        mask = (rng.random((h, w)) < density).astype(np.uint8)
        text = rle_encode(mask)
        np.testing.assert_array_equal(rle_decode(text, h, w), mask)
        assert rle_area(text) == mask.sum()
        # runs are ascending, positive and never touch (every run is maximal)
        runs = parse_rle(text)
        if len(runs) > 1:
            assert (runs[1:, 0] > runs[:-1, 0] + runs[:-1, 1]).all()


@pytest.mark.parametrize("seed", range(3))
def test_coco_conversions_agree_with_pycocotools(seed):
    rng = np.random.default_rng(seed)
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        coco = mask_utils.encode(np.asfortranarray(mask))
        # compressed COCO string -> Kaggle RLE without drawing the mask
        assert coco_to_rle(coco["counts"], h, w) == rle_encode(mask)
        # Kaggle -> uncompressed COCO counts -> pycocotools decodes the same mask
        back = mask_utils.frPyObjects(rle_to_coco(rle_encode(mask), h, w), h, w)
        np.testing.assert_array_equal(mask_utils.decode(back), mask)
        assert sum(coco_string_to_counts(coco["counts"])) == h * w


def test_polygon_segmentation_is_rasterised_by_pycocotools():
    # a 4x4 square polygon in a 10x10 image
    poly = [[2.0, 2.0, 6.0, 2.0, 6.0, 6.0, 2.0, 6.0]]
    rle = segmentation_to_rle(poly, 10, 10)
    mask = rle_decode(rle, 10, 10)
    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(poly, 10, 10)))
    np.testing.assert_array_equal(mask, expected)
    assert 12 <= mask.sum() <= 25
    with pytest.raises(RLEError, match="size"):
        segmentation_to_rle({"size": [5, 5], "counts": [25]}, 10, 10)


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 2 3", "odd number"),
        ("1 x", "not an integer"),
        ("0 3", "start 0 < 1"),
        ("1 0", "length 0 < 1"),
        ("5 3 6 1", "overlaps or precedes"),
        ("9 1 2 1", "overlaps or precedes"),
    ],
)
def test_malformed_rle_is_rejected_with_the_reason(text, message):
    with pytest.raises(RLEError, match=message):
        parse_rle(text)


def test_run_past_the_image_is_rejected():
    with pytest.raises(RLEError, match="past the last pixel 6 of a 3x2 image"):
        rle_decode("5 3", 3, 2)
    rle_decode("5 2", 3, 2)  # ends exactly on the last pixel: fine
