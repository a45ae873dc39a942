"""Cross-stitch units (Misra, Shrivastava, Gupta & Hebert, CVPR 2016).

A cross-stitch unit sits between two task streams ``x_a`` and ``x_b`` of the same shape and
mixes them with a learned 2x2 matrix per channel ``c`` (per unit for dense features)::

    out_a[..., c] = alpha[c, 0, 0] * x_a[..., c] + alpha[c, 0, 1] * x_b[..., c]
    out_b[..., c] = alpha[c, 1, 0] * x_a[..., c] + alpha[c, 1, 1] * x_b[..., c]

``alpha`` starts at ``[[0.9, 0.1], [0.1, 0.9]]`` for every channel (the paper's
``(alpha_S, alpha_D) = (0.9, 0.1)``), so each stream starts as mostly itself. The report's layer
built a dense ``(2d x 2d)`` matrix over all flattened activations (68 billion entries after a
64-channel 64x64 conv block, which is why it ran out of memory) and sliced the output wrongly; the
per-channel form here has ``4 * channels`` weights whatever the spatial size.
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
    """

    def __init__(self, self_weight: float = 0.9, cross_weight: float = 0.1, per_channel: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.self_weight = float(self_weight)
        self.cross_weight = float(cross_weight)
        self.per_channel = bool(per_channel)

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
            initializer=keras.initializers.Constant(np.tile(init, (n, 1, 1))),
            trainable=True,
        )

    def call(self, inputs):
        x_a, x_b = inputs
        alpha = ops.cast(self.alpha, x_a.dtype)
        # (n,) vectors broadcast over the channel axis (n = channels, or 1 when shared)
        out_a = alpha[:, 0, 0] * x_a + alpha[:, 0, 1] * x_b
        out_b = alpha[:, 1, 0] * x_a + alpha[:, 1, 1] * x_b
        return [out_a, out_b]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[0]), tuple(input_shape[1])]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(self_weight=self.self_weight, cross_weight=self.cross_weight, per_channel=self.per_channel)
        return config


def alpha_table(model: keras.Model) -> "pandas.DataFrame":  # noqa: F821 - pandas imported lazily
    """Mean learned mixing weights of every :class:`CrossStitch` layer of ``model``.

    One row per layer: the channel means of ``alpha`` (``a_to_a`` = weight of stream a on itself,
    ``b_to_a`` = weight of stream b in the output of stream a, ...) and the number of channels.
    """
    import pandas as pd

    rows = []
    for layer in model.layers:
        if isinstance(layer, CrossStitch):
            alpha = ops.convert_to_numpy(layer.alpha)
            rows.append(
                {
                    "layer": layer.name,
                    "channels": alpha.shape[0],
                    "a_to_a": float(alpha[:, 0, 0].mean()),
                    "b_to_a": float(alpha[:, 0, 1].mean()),
                    "a_to_b": float(alpha[:, 1, 0].mean()),
                    "b_to_b": float(alpha[:, 1, 1].mean()),
                }
            )
    return pd.DataFrame(rows).set_index("layer") if rows else pd.DataFrame(
        columns=["channels", "a_to_a", "b_to_a", "a_to_b", "b_to_b"]
    )
