"""Feature extractors ("trunks") as functions on Keras tensors, so builders can share them.

Each trunk takes a symbolic input tensor and returns the feature tensor; builders in
:mod:`kerasmt.models.classifiers` put heads on top. Layer names get a ``prefix`` so several trunks
can live in one model.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers


def dense_trunk(
    x: keras.KerasTensor,
    units: Sequence[int] = (1024, 512, 100),
    activations: Sequence[str] = ("tanh", "sigmoid", "relu"),
    prefix: str = "",
) -> keras.KerasTensor:
    """Flatten -> Dense layers (the report's task-1 network: 1024 tanh, 512 sigmoid, 100 relu)."""
    if len(units) != len(activations):
        raise ValueError(f"units {list(units)} and activations {list(activations)} differ in length")
    x = layers.Flatten(name=f"{prefix}flatten")(x)
    for i, (n, act) in enumerate(zip(units, activations), start=1):
        x = layers.Dense(n, activation=act, name=f"{prefix}dense_{i}")(x)
    return x


def conv_pool_trunk(
    x: keras.KerasTensor,
    filters: Sequence[int] = (16, 32, 64),
    kernel_size: int = 3,
    padding: str = "valid",
    batch_norm: bool = False,
    activation: str = "relu",
    pool_size: int = 2,
    prefix: str = "",
) -> keras.KerasTensor:
    """Repeated ``Conv2D -> [BatchNorm] -> MaxPool`` blocks, then Flatten.

    With the defaults this is the report's multi-task / VAE encoder trunk (16/32/64 @3x3 valid:
    32x32 -> 2x2x64 -> 256 features). ``filters=(32, 64, 128), padding="same", batch_norm=True`` is
    the report's "own CNN" (task 3).
    """
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, kernel_size, padding=padding, activation=activation, name=f"{prefix}conv_{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{prefix}bn_{i}")(x)
        x = layers.MaxPooling2D(pool_size, name=f"{prefix}pool_{i}")(x)
    return layers.Flatten(name=f"{prefix}flatten")(x)
