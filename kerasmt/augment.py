"""Augmentation as Keras preprocessing layers that move images and segmentation masks together.

:class:`PairedAugmentation` chains Keras 3's geometric image layers (``RandomFlip``,
``RandomRotation``, ``RandomTranslation``, ``RandomZoom``). Called on a dict
``{"images": x, "segmentation_masks": m}`` each layer draws **one** random transform per image and
applies it to both: bilinear interpolation for the image, nearest for the mask (so labels stay
labels). Called on a plain image batch it augments the images alone.

The attribute report's ``ImageDataGenerator`` settings are the defaults: rotation ±3°, width and
height shifts ±1 %, zoom ±1 %, horizontal flip. A horizontal flip is label-safe for the
person-attribute tasks (no trait or mask part is left/right specific) and the mask is flipped with
the image. Pixels moved in from outside are filled with ``fill_value`` (0: black, like the
letterbox padding of :func:`kerasmt.pipeline.decode_image` with ``resize="pad"``).
"""
from __future__ import annotations

from typing import Any

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="kerasmt")
class PairedAugmentation(layers.Layer):
    """Random flip / rotation / shift / zoom applied identically to images and their masks.

    Args:
        rotation_degrees: maximum rotation either way, in degrees (report: 3).
        width_shift, height_shift: maximum shift as a fraction of the width / height (report: 0.01).
        zoom: maximum zoom in or out as a fraction, independently in height and width (report: 0.01).
        horizontal_flip: flip left-right with probability 1/2 (report: True).
        fill_mode, fill_value: how pixels from outside the image are filled (``"constant"``, 0).
        seed: seeds the layers' random generators (``None``: drawn from the global Keras seed).

    ``call(data, training=True)`` takes an image batch ``(B, H, W, C)`` or a dict with ``"images"``
    and optionally ``"segmentation_masks"`` ``(B, H, W, 1)`` (float label values); it returns the
    same structure. With ``training=False`` the input is returned unchanged.
    """

    def __init__(
        self,
        rotation_degrees: float = 3.0,
        width_shift: float = 0.01,
        height_shift: float = 0.01,
        zoom: float = 0.01,
        horizontal_flip: bool = True,
        fill_mode: str = "constant",
        fill_value: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rotation_degrees = float(rotation_degrees)
        self.width_shift = float(width_shift)
        self.height_shift = float(height_shift)
        self.zoom = float(zoom)
        self.horizontal_flip = bool(horizontal_flip)
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self.seed = seed
        for name, value in (("rotation_degrees", self.rotation_degrees), ("width_shift", self.width_shift),
                            ("height_shift", self.height_shift), ("zoom", self.zoom)):
            if value < 0:
                raise ValueError(f"PairedAugmentation: {name} must be >= 0, got {value}")
        fill = {"fill_mode": fill_mode, "fill_value": self.fill_value}
        step = lambda k: None if seed is None else int(seed) + k  # noqa: E731 - one seed per layer
        self.steps: list[layers.Layer] = []
        if self.horizontal_flip:
            self.steps.append(layers.RandomFlip("horizontal", seed=step(0), name="flip"))
        if self.rotation_degrees:
            self.steps.append(layers.RandomRotation(self.rotation_degrees / 360.0, seed=step(1), name="rotation", **fill))
        if self.width_shift or self.height_shift:
            self.steps.append(layers.RandomTranslation(self.height_shift, self.width_shift, seed=step(2),
                                                       name="shift", **fill))
        if self.zoom:
            self.steps.append(layers.RandomZoom(self.zoom, self.zoom, seed=step(3), name="zoom", **fill))

    def build(self, input_shape: Any) -> None:
        shape = input_shape.get("images") if isinstance(input_shape, dict) else input_shape
        for step in self.steps:
            if not step.built:
                step.build(shape)
        self.built = True

    def call(self, data: Any, training: bool = True) -> Any:
        if not training:
            return data
        if isinstance(data, dict):
            if "images" not in data:
                raise KeyError(f"PairedAugmentation: a dict input needs an 'images' key; got {sorted(data)}")
            out = dict(data)
            for step in self.steps:
                out = step(dict(out), training=True)
            return out
        x = data
        for step in self.steps:
            x = step(x, training=True)
        return x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            rotation_degrees=self.rotation_degrees,
            width_shift=self.width_shift,
            height_shift=self.height_shift,
            zoom=self.zoom,
            horizontal_flip=self.horizontal_flip,
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
            seed=self.seed,
        )
        return config


def report_augmentation(seed: int | None = None) -> PairedAugmentation:
    """The attribute report's augmentation (``ImageDataGenerator(rotation_range=3,
    width_shift_range=0.01, height_shift_range=0.01, zoom_range=0.01, horizontal_flip=True)``)."""
    return PairedAugmentation(3.0, 0.01, 0.01, 0.01, True, seed=seed, name="report_augmentation")


def augment_pair(
    augmentation: Any, images: Any, masks: Any, training: bool = True
) -> tuple[Any, Any]:
    """Apply ``augmentation`` to an image batch ``(B, H, W, C)`` and integer label maps
    ``(B, H, W)`` together; returns ``(images, label maps)``. Label maps are shifted by +1 while
    transformed, so pixels filled from outside come back as -1 (unlabelled)."""
    from keras import ops

    masks = ops.convert_to_tensor(masks)
    data = {"images": ops.convert_to_tensor(images, dtype="float32"),
            "segmentation_masks": ops.cast(masks + 1, "float32")[..., None]}
    data = augmentation(data, training=training)
    labels = ops.cast(ops.round(data["segmentation_masks"][..., 0]), "int32") - 1
    return data["images"], labels
