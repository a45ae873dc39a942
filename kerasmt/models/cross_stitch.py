"""Cross-stitch units (Misra, Shrivastava, Gupta & Hebert, CVPR 2016).

A cross-stitch unit sits between two task streams ``x_a`` and ``x_b`` of the same shape and
mixes them with a learned 2x2 matrix per channel ``c`` (per unit for dense features)::

    out_a[..., c] = alpha[c, 0, 0] * x_a[..., c] + alpha[c, 0, 1] * x_b[..., c]
    out_b[..., c] = alpha[c, 1, 0] * x_a[..., c] + alpha[c, 1, 1] * x_b[..., c]

``alpha`` starts at ``[[0.9, 0.1], [0.1, 0.9]]`` for every channel (the paper's
``(alpha_S, alpha_D) = (0.9, 0.1)``), so each stream starts as mostly itself. The report's layer
built a dense ``(2d x 2d)`` matrix over all flattened activations: after a 64-channel 64x64 conv
block d = 262,144, so (2d)^2 = 524,288^2, about 275 billion entries (:func:`report_matrix_entries`;
1.1 TB in float32, which is why it ran out of memory), and sliced the output wrongly; the
per-channel form here has ``4 * channels`` weights whatever the spatial size.

Misra et al. train the alphas with a much larger learning rate than the rest of the network
(a multiplier of 10^2 to 10^3). ``lr_multiplier`` does that under any optimiser whose step does
not depend on the gradient's scale (Adam, RMSprop: the report's Adam): the layer stores
``alpha / lr_multiplier`` and multiplies it back in ``call``, so one optimiser step moves the
effective ``alpha`` ``lr_multiplier`` times as far. :func:`alpha_table` reports how far they moved.
"""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="kerasmt")
class CrossStitch(keras.layers.Layer):
    """Per-channel 2x2 mixing of two task streams (Misra et al. 2016).

    Call it on ``[x_a, x_b]`` (same shape, channels last: ``(batch, H, W, C)`` after conv blocks,
    ``(batch, units)`` after dense layers); it returns ``[out_a, out_b]``.

    Args:
        self_weight: initial ``alpha_S`` (weight of a stream on itself), 0.9 in the paper.
        cross_weight: initial ``alpha_D`` (weight of the other stream), 0.1 in the paper.
        per_channel: one 2x2 matrix per channel (default); ``False`` shares a single 2x2
            matrix across channels.
        lr_multiplier: learning-rate multiplier of the alphas under Adam-like optimisers (the
            stored weight is ``alpha / lr_multiplier``; :attr:`mixing` is the effective alpha).
    """

    def __init__(self, self_weight: float = 0.9, cross_weight: float = 0.1, per_channel: bool = True,
                 lr_multiplier: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.self_weight = float(self_weight)
        self.cross_weight = float(cross_weight)
        self.per_channel = bool(per_channel)
        if not lr_multiplier > 0:
            raise ValueError(f"{self.name}: lr_multiplier must be > 0, got {lr_multiplier}")
        self.lr_multiplier = float(lr_multiplier)

    def build(self, input_shape: Sequence[Sequence[int | None]]) -> None:
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or not isinstance(
            input_shape[0], (list, tuple)
        ):
            raise ValueError(f"{self.name}: expects a list of two inputs [x_a, x_b], got shape {input_shape}")
        shape_a, shape_b = (tuple(s) for s in input_shape)
        if shape_a[1:] != shape_b[1:]:
            raise ValueError(
                f"{self.name}: the two streams must have the same shape, got {shape_a} and {shape_b}"
            )
        channels = shape_a[-1]
        if channels is None:
            raise ValueError(f"{self.name}: the channel (last) axis must be known, got shape {shape_a}")
        n = int(channels) if self.per_channel else 1
        init = np.array([[self.self_weight, self.cross_weight], [self.cross_weight, self.self_weight]], "float32")
        self.alpha = self.add_weight(
            name="alpha",
            shape=(n, 2, 2),
            initializer=keras.initializers.Constant(np.tile(init, (n, 1, 1)) / self.lr_multiplier),
            trainable=True,
        )

    @property
    def initial_mixing(self) -> np.ndarray:
        """The 2x2 matrix every channel starts at."""
        return np.array([[self.self_weight, self.cross_weight], [self.cross_weight, self.self_weight]], "float32")

    @property
    def mixing(self) -> np.ndarray:
        """The effective mixing weights ``(channels, 2, 2)`` (stored weight x ``lr_multiplier``)."""
        return ops.convert_to_numpy(self.alpha) * self.lr_multiplier

    def call(self, inputs):
        x_a, x_b = inputs
        alpha = ops.cast(self.alpha, x_a.dtype) * self.lr_multiplier
        # (n,) vectors broadcast over the channel axis (n = channels, or 1 when shared)
        out_a = alpha[:, 0, 0] * x_a + alpha[:, 0, 1] * x_b
        out_b = alpha[:, 1, 0] * x_a + alpha[:, 1, 1] * x_b
        return [out_a, out_b]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[0]), tuple(input_shape[1])]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(self_weight=self.self_weight, cross_weight=self.cross_weight, per_channel=self.per_channel,
                      lr_multiplier=self.lr_multiplier)
        return config


def report_matrix_entries(height: int = 64, width: int = 64, channels: int = 64) -> int:
    """Entries of the report's dense cross-stitch matrix after a ``height x width x channels``
    block: ``(2d)^2`` with ``d = height * width * channels`` (64x64x64: 274,877,906,944)."""
    d = int(height) * int(width) * int(channels)
    return (2 * d) ** 2


def alpha_table(model: keras.Model) -> "pandas.DataFrame":  # noqa: F821 - pandas imported lazily
    """Mean learned mixing weights of every :class:`CrossStitch` layer of ``model``, and how far
    they moved from their initial values.

    One row per layer: the channel means of the effective ``alpha`` (``a_to_a`` = weight of
    stream a on itself, ``b_to_a`` = weight of stream b in the output of stream a, ...), the
    number of channels, the alphas' learning-rate multiplier, and the mean and largest absolute
    change of any alpha from its initial value (``mean_moved``, ``max_moved``).
    """
    import pandas as pd

    columns = ["channels", "lr_multiplier", "a_to_a", "b_to_a", "a_to_b", "b_to_b", "mean_moved", "max_moved"]
    rows = []
    for layer in model.layers:
        if isinstance(layer, CrossStitch):
            alpha = layer.mixing
            moved = np.abs(alpha - layer.initial_mixing[None])
            rows.append(
                {
                    "layer": layer.name,
                    "channels": alpha.shape[0],
                    "lr_multiplier": layer.lr_multiplier,
                    "a_to_a": float(alpha[:, 0, 0].mean()),
                    "b_to_a": float(alpha[:, 0, 1].mean()),
                    "a_to_b": float(alpha[:, 1, 0].mean()),
                    "b_to_b": float(alpha[:, 1, 1].mean()),
                    "mean_moved": float(moved.mean()),
                    "max_moved": float(moved.max()),
                }
            )
    return pd.DataFrame(rows).set_index("layer")[columns] if rows else pd.DataFrame(columns=columns)
