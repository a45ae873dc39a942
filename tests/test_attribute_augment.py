"""Joint image + mask augmentation and the image/mask tf.data pipeline."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasmt import pipeline
from kerasmt.augment import PairedAugmentation, augment_pair, report_augmentation


def _marked_batch(n=6, rows=slice(20, 24), cols=slice(10, 14)):
    """Images with one bright square and label maps with class 3 on the same pixels."""
    x = np.zeros((n, 100, 60, 3), "float32")
    m = np.zeros((n, 100, 60), "int32")
    x[:, rows, cols, 0] = 1.0
    m[:, rows, cols] = 3
    return x, m


def test_horizontal_flip_moves_a_known_pixel_identically():
    keras.utils.set_random_seed(0)
    x, m = _marked_batch(16)
    aug = PairedAugmentation(rotation_degrees=0, width_shift=0, height_shift=0, zoom=0, horizontal_flip=True, seed=0)
    xi, mi = (np.asarray(v) for v in augment_pair(aug, x, m))
    flipped = xi[:, 20, 59 - 10, 0] == 1.0
    assert 0 < flipped.sum() < 16  # some images flipped, some not
    for i in range(16):
        if flipped[i]:
            assert mi[i, 20, 49] == 3 and mi[i, 20, 10] == 0 and xi[i, 20, 10, 0] == 0
        else:
            assert mi[i, 20, 10] == 3 and xi[i, 20, 10, 0] == 1.0
        np.testing.assert_array_equal(xi[i, ..., 0] == 1.0, mi[i] == 3)


def test_rotation_shift_zoom_move_image_and_mask_together():
    keras.utils.set_random_seed(1)
    x, m = _marked_batch(8, slice(40, 48), slice(24, 32))  # central 8x8 square: never cut by the border
    aug = PairedAugmentation(rotation_degrees=25, width_shift=0.15, height_shift=0.15, zoom=0.2, seed=5)
    xi, mi = (np.asarray(v) for v in augment_pair(aug, x, m))
    moved = 0
    for i in range(len(x)):
        ys, xs = np.nonzero(xi[i, ..., 0] > 0.5)
        ym, xm = np.nonzero(mi[i] == 3)
        assert len(ys) and len(ym)
        assert abs(ys.mean() - ym.mean()) < 1.0 and abs(xs.mean() - xm.mean()) < 1.0
        moved += abs(ym.mean() - 43.5) + abs(xm.mean() - 27.5) > 2
        assert set(np.unique(mi[i])) <= {-1, 0, 3}  # nearest interpolation: no new label values
    assert moved >= 3
    assert (mi == -1).any()  # pixels moved in from outside are unlabelled


def test_report_augmentation_is_small_and_identity_without_training():
    aug = report_augmentation(seed=0)
    assert (aug.rotation_degrees, aug.width_shift, aug.height_shift, aug.zoom, aug.horizontal_flip) == (3.0, 0.01, 0.01, 0.01, True)
    x, m = _marked_batch(2)
    xi, mi = augment_pair(aug, x, m, training=False)
    np.testing.assert_array_equal(np.asarray(xi), x)
    np.testing.assert_array_equal(np.asarray(mi), m)
    again = PairedAugmentation.from_config(aug.get_config())
    assert again.get_config() == aug.get_config()
    with pytest.raises(ValueError, match="rotation_degrees"):
        PairedAugmentation(rotation_degrees=-1)
    out = aug(x, training=True)  # images alone work as well
    assert tuple(out.shape) == x.shape


def test_segmentation_dataset_targets_and_unlabelled_rows():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (10, 100, 60, 3), dtype=np.uint8)
    masks = rng.integers(0, 9, (10, 100, 60)).astype(np.int8)
    masks[7:] = -1  # three images without masks
    labels = {"gender": rng.integers(-1, 2, 10), "luggage": rng.integers(0, 2, 10)}
    ds = pipeline.segmentation_dataset(images, labels, masks, batch_size=4, augment=report_augmentation(0))
    batches = list(ds.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.dtype == np.float32 and x.max() <= 1.0 and set(y) == {"gender", "luggage", "mask"}
    assert y["mask"].dtype == np.int32 and y["mask"].shape == (4, 100, 60)
    np.testing.assert_array_equal(y["gender"], labels["gender"][:4])
    assert (batches[-1][1]["mask"] == -1).all()  # rows without masks stay unlabelled after augmentation
    plain = list(pipeline.segmentation_dataset(images, labels, masks, batch_size=10).as_numpy_iterator())[0]
    np.testing.assert_array_equal(plain[1]["mask"], masks.astype(np.int32))
    only_images = next(iter(pipeline.segmentation_dataset(images, batch_size=3)))
    assert tuple(only_images.shape) == (3, 100, 60, 3)
    with pytest.raises(ValueError, match="masks have shape"):
        pipeline.segmentation_dataset(images, labels, masks[:, :50])
