"""Small ResNet v2 (pre-activation, bottleneck) built from scratch, with per-task dense heads.

:func:`simple_resnet_v2` reproduces the network of the attribute multi-task report (seed 000,
Problem 2, appendix "simple_resnet_v2"), itself the Keras CIFAR-10 ResNet v2 example shrunk to
8/16/32 bottleneck filters:

* input 100x60x3 -> stem Conv 3x3 (8) -> BN -> ReLU;
* 3 stages x 3 bottleneck blocks. A block is ``[BN -> ReLU ->] Conv 1x1 (f) -> BN -> ReLU ->
  Conv 3x3 (f) -> BN -> ReLU -> Conv 1x1 (out)`` added to the shortcut; the first block of a stage
  projects the shortcut with a Conv 1x1 (out) and, from stage 2 on, both paths use stride 2. The
  first block of stage 1 skips its leading BN -> ReLU (the stem provides it). Bottleneck filters
  ``f`` = 8/16/32, block outputs ``out`` = 32/32/64; feature maps 100x60 -> 50x30 -> 25x15;
* BN -> ReLU (the **latent** feature map, 25x15x64, layer ``"latent"``) -> AveragePooling 4
  (6x3x64) -> Flatten (1152);
* per task Dense 64 -> 32 -> 16 (ReLU, named ``pre-<task>-1..3`` as in the report) -> Dense
  ``n_classes`` **logits** named after the task.

With the report's six tasks the model has 518,190 parameters (516,734 trainable, 1,456
non-trainable BatchNorm statistics), every layer's type, output shape and parameter count as the
report's appendix lists them. Pair the logits with
``MaskedSparseCategoricalCrossentropy(from_logits=True)``.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import keras
from keras import layers

from kerasmt.models._common import model_builder

#: The report's tasks and class counts (gender, clothing types and luggage binary; 11 colours).
REPORT_TASKS: dict[str, int] = {
    "gender": 2,
    "torso_type": 2,
    "torso_colour": 11,
    "leg_type": 2,
    "leg_colour": 11,
    "luggage": 2,
}
#: The report's input: person crops letterboxed to 100x60 (height x width), RGB.
REPORT_INPUT: tuple[int, int, int] = (100, 60, 3)
#: Name of the shared latent feature map (input of the segmentation decoder).
LATENT_LAYER = "latent"


def _conv(filters: int, kernel_size: int, strides: int, name: str, weight_decay: float) -> layers.Conv2D:
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
        name=name,
    )


def resnet_v2_features(
    inputs: keras.KerasTensor,
    stem_filters: int = 8,
    filters: Sequence[int] = (8, 16, 32),
    out_filters: Sequence[int] = (32, 32, 64),
    blocks_per_stage: int = 3,
    weight_decay: float = 1e-4,
    bn_momentum: float = 0.99,
) -> keras.KerasTensor:
    """The pre-activation bottleneck ResNet v2 trunk; returns the final BN -> ReLU feature map
    (layer :data:`LATENT_LAYER`). Stage ``s`` has ``blocks_per_stage`` blocks with bottleneck
    width ``filters[s]`` and output width ``out_filters[s]``; stages after the first halve the
    resolution. Stage outputs (before the final BN) are the layers ``stage<s>_out``.
    ``bn_momentum`` is the BatchNormalization moving-average momentum (Keras' default 0.99)."""
    if len(filters) != len(out_filters) or not filters:
        raise ValueError(f"filters {list(filters)} and out_filters {list(out_filters)} must be non-empty and of equal length")
    if blocks_per_stage < 1:
        raise ValueError(f"blocks_per_stage must be >= 1, got {blocks_per_stage}")
    x = _conv(stem_filters, 3, 1, "stem_conv", weight_decay)(inputs)
    x = layers.BatchNormalization(momentum=bn_momentum, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for s, (f, out) in enumerate(zip(filters, out_filters), start=1):
        for b in range(1, blocks_per_stage + 1):
            p = f"stage{s}_block{b}"
            strides = 2 if (s > 1 and b == 1) else 1
            if s == 1 and b == 1:
                y = x  # the stem's BN -> ReLU is this block's pre-activation
            else:
                y = layers.BatchNormalization(momentum=bn_momentum, name=f"{p}_bn0")(x)
                y = layers.Activation("relu", name=f"{p}_relu0")(y)
            y = _conv(f, 1, strides, f"{p}_conv1", weight_decay)(y)
            y = layers.BatchNormalization(momentum=bn_momentum, name=f"{p}_bn1")(y)
            y = layers.Activation("relu", name=f"{p}_relu1")(y)
            y = _conv(f, 3, 1, f"{p}_conv2", weight_decay)(y)
            y = layers.BatchNormalization(momentum=bn_momentum, name=f"{p}_bn2")(y)
            y = layers.Activation("relu", name=f"{p}_relu2")(y)
            y = _conv(out, 1, 1, f"{p}_conv3", weight_decay)(y)
            if b == 1:
                shortcut = _conv(out, 1, strides, f"{p}_shortcut", weight_decay)(x)
            else:
                shortcut = x
            name = f"stage{s}_out" if b == blocks_per_stage else f"{p}_add"
            x = layers.Add(name=name)([shortcut, y])
    x = layers.BatchNormalization(momentum=bn_momentum, name="post_bn")(x)
    return layers.Activation("relu", name=LATENT_LAYER)(x)


def report_heads(
    features: keras.KerasTensor,
    tasks: Mapping[str, int],
    units: Sequence[int] = (64, 32, 16),
    activation: str = "relu",
) -> dict[str, keras.KerasTensor]:
    """Per task ``Dense(units[0]) -> ... -> Dense(n_classes)`` logits named after the task, the
    hidden layers named ``pre-<task>-<i>`` (the report's names)."""
    if not tasks:
        raise ValueError("tasks must name at least one task, e.g. {'gender': 2}")
    outputs = {}
    for task, n_classes in tasks.items():
        if int(n_classes) < 2:
            raise ValueError(f"task {task!r}: n_classes must be >= 2, got {n_classes}")
        x = features
        for i, n in enumerate(units, start=1):
            x = layers.Dense(n, activation=activation, name=f"pre-{task}-{i}")(x)
        outputs[task] = layers.Dense(int(n_classes), name=task)(x)
    return outputs


@model_builder()
def simple_resnet_v2(
    input_shape: Sequence[int] = REPORT_INPUT,
    weights: str | os.PathLike | None = None,
    name: str = "simple_resnet_v2",
    *,
    tasks: Mapping[str, int] | None = None,
    stem_filters: int = 8,
    filters: Sequence[int] = (8, 16, 32),
    out_filters: Sequence[int] = (32, 32, 64),
    blocks_per_stage: int = 3,
    pool_size: int = 4,
    head_units: Sequence[int] = (64, 32, 16),
    weight_decay: float = 1e-4,
    bn_momentum: float = 0.99,
) -> keras.Model:
    """The report's multi-task ResNet v2 (518,190 parameters with the defaults).

    Args:
        tasks: ``{task: n_classes}``; ``None`` = the report's six tasks (:data:`REPORT_TASKS`).
        input_shape: ``(height, width, channels)``, 100x60x3 in the report.
        stem_filters, filters, out_filters, blocks_per_stage: trunk shape (see
            :func:`resnet_v2_features`); the report's is depth 29 (3 stages x 3 blocks x 3 convs + 2).
        pool_size: average pooling of the latent map before flattening (25x15 -> 6x3).
        head_units: hidden Dense widths of every task head (64-32-16).
        weight_decay: L2 on the convolution kernels (1e-4, the Keras ResNet v2 example's value;
            it does not change the parameter count).
        bn_momentum: BatchNormalization momentum (the report used Keras' default, 0.99; 0.9 lets the
            moving statistics catch up within the few steps of a 468-image epoch).

    Returns a functional model whose outputs are a dict ``{task: logits}``; labels are passed as
    ``{task: int labels}`` with ``-1`` for missing.
    """
    tasks = dict(REPORT_TASKS if tasks is None else tasks)
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    inputs = keras.Input(shape=tuple(int(v) for v in input_shape), name="img")
    latent = resnet_v2_features(inputs, stem_filters, filters, out_filters, blocks_per_stage, weight_decay, bn_momentum)
    x = layers.AveragePooling2D(pool_size=pool_size, name="pool")(latent)
    x = layers.Flatten(name="flatten")(x)
    outputs = report_heads(x, tasks, head_units)
    return keras.Model(inputs, outputs, name=name)


def layer_table(model: keras.Model) -> list[tuple[str, tuple, int]]:
    """``(layer type, output shape without batch, parameter count)`` for every layer, in the
    model's layer order (what a model summary lists)."""
    rows = []
    for layer in model.layers:
        shape = layer.output.shape if not isinstance(layer.output, (list, tuple)) else layer.output[0].shape
        rows.append((type(layer).__name__, tuple(shape[1:]), int(layer.count_params())))
    return rows
