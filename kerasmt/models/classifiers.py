"""The FairFace report's networks (seed 002), with the report's configuration as defaults.

Parameter counts with the defaults (32x32x1 input) match the report exactly:

================  ===========  ===========
network           gender (2)   age (9)
================  ===========  ===========
``dense_net``     1,625,902    1,626,609
``small_cnn``     785,342      786,049
``own_cnn``       651,266      652,169
================  ===========  ===========

``multitask_cnn(tasks={"gender": 2, "age": 9})`` has 106,315 parameters (the report's task 4);
with race added (announced but never trained in the report) it has 147,922.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import keras
from keras import layers

from kerasmt.models._common import model_builder
from kerasmt.models.backbones import conv_pool_trunk, dense_trunk
from kerasmt.models.heads import dense_head, multitask_heads

FAIRFACE_INPUT = (32, 32, 1)


@model_builder()
def dense_net(
    input_shape: Sequence[int] = FAIRFACE_INPUT,
    weights: str | os.PathLike | None = None,
    name: str = "dense_net",
    *,
    n_classes: int,
    units: Sequence[int] = (1024, 512, 100),
    activations: Sequence[str] = ("tanh", "sigmoid", "relu"),
    task: str = "output",
) -> keras.Model:
    """Task 1: fully connected net, 1024 tanh -> 512 sigmoid -> 100 relu -> n softmax."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = dense_trunk(inputs, units, activations)
    outputs = layers.Dense(n_classes, activation="softmax", name=task)(x)
    return keras.Model(inputs, outputs, name=name)


@model_builder()
def small_cnn(
    input_shape: Sequence[int] = FAIRFACE_INPUT,
    weights: str | os.PathLike | None = None,
    name: str = "small_cnn",
    *,
    n_classes: int,
    filters: int = 40,
    kernel_size: int = 5,
    dense_units: int = 100,
    task: str = "output",
) -> keras.Model:
    """Task 2: Conv 40@5x5 valid relu -> MaxPool 2 -> Flatten -> Dense 100 relu -> n softmax."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.Conv2D(filters, kernel_size, padding="valid", activation="relu", name="conv_1")(inputs)
    x = layers.MaxPooling2D(2, name="pool_1")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense_1")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name=task)(x)
    return keras.Model(inputs, outputs, name=name)


@model_builder()
def own_cnn(
    input_shape: Sequence[int] = FAIRFACE_INPUT,
    weights: str | os.PathLike | None = None,
    name: str = "own_cnn",
    *,
    n_classes: int,
    filters: Sequence[int] = (32, 64, 128),
    dense_units: Sequence[int] = (256, 128),
    dropout: float = 0.5,
    task: str = "output",
) -> keras.Model:
    """Task 3: 3 x [Conv k@3x3 same relu -> BN -> MaxPool 2] (k = 32, 64, 128) -> Flatten ->
    Dense 256 relu -> Dropout .5 -> Dense 128 relu -> Dropout .5 -> n softmax."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = conv_pool_trunk(inputs, filters, kernel_size=3, padding="same", batch_norm=True)
    outputs = dense_head(x, n_classes, task, units=dense_units, dropout=dropout)
    return keras.Model(inputs, outputs, name=name)


@model_builder()
def multitask_cnn(
    input_shape: Sequence[int] = FAIRFACE_INPUT,
    weights: str | os.PathLike | None = None,
    name: str = "multitask_cnn",
    *,
    tasks: Mapping[str, int],
    filters: Sequence[int] = (16, 32, 64),
    head_units: Sequence[int] = (128, 64),
) -> keras.Model:
    """Task 4: shared Conv 16/32/64 @3x3 valid relu + MaxPool 2 trunk -> Flatten (256) -> per
    task Dense 128 relu -> Dense 64 relu -> softmax output named after the task.

    ``tasks`` maps task name -> number of classes, e.g. ``{"gender": 2, "age": 9, "race": 7}``;
    the model's outputs are a dict keyed by task, so labels are passed as ``{task: labels}``.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    features = conv_pool_trunk(inputs, filters, kernel_size=3, padding="valid")
    outputs = multitask_heads(features, tasks, units=head_units)
    return keras.Model(inputs, outputs, name=name)
