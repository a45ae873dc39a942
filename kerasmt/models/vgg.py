"""Model A of the UTKFace report (seed 003): a VGG-style multi-task CNN built from scratch.

The trunk is a stack of VGG blocks ``[Conv3x3 relu -> Conv3x3 relu -> BatchNorm -> MaxPool 2]``
with 64, 128, 256, 512, 512, ... filters. After ``split_point`` shared blocks it forks into an
age branch and a gender branch, each with its own remaining blocks, ``Flatten`` and ``n_dense`` x
``[Dense(units, relu, L2 1e-5) -> Dropout .2 -> BatchNorm]``, then ``age`` (Dense 1, linear, MSE
loss, MAE metric) and ``gender`` (Dense 1, sigmoid, binary cross-entropy, accuracy).
``split_point = n_blocks`` shares every conv block (the split is at the dense layers);
``split_point = 0`` gives two separate networks on one input.

The defaults are the report's chosen "CNN 10": 5 blocks, 3 dense layers of 300 units, split after
block 1, 128x128x3 input (parameter counts: :data:`PARAMS_128`). Inputs are RGB floats in [0, 1].

:func:`model_a_cross_stitch` is the same network with :class:`~kerasmt.models.cross_stitch.CrossStitch`
units after every branch conv block and every dense group (the report's "next step").
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import keras
from keras import layers, regularizers

from kerasmt.models._common import model_builder
from kerasmt.models.cross_stitch import CrossStitch

#: the report's input: 128x128 RGB
REPORT_INPUT: tuple[int, int, int] = (128, 128, 3)
#: task -> output layer; the models' outputs are a dict with these keys
TASKS: tuple[str, ...] = ("age", "gender")
#: one dense group of Model A's heads
MODEL_A_GROUP: tuple[str, ...] = ("dense", "dropout", "bn")
#: layer kinds a head ``order`` may list
HEAD_LAYER_KINDS: frozenset[str] = frozenset({"dense", "dropout", "bn"})
#: parameter counts of :func:`model_a` at 128x128x3 for a few configurations (computed with this
#: builder; the report prints no model summary), keyed (n_blocks, n_dense, units, split_point)
PARAMS_128: dict[tuple[int, int, int, int], int] = {}


def block_filters(n_blocks: int, base_filters: int = 64, max_filters: int | None = None) -> list[int]:
    """Filters per VGG block: ``base * 2**i`` for the first four blocks, then constant
    (the report's 64 -> 128 -> 256 -> 512 -> 512 ...). ``max_filters`` caps them."""
    if n_blocks < 1:
        raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
    if base_filters < 1:
        raise ValueError(f"base_filters must be >= 1, got {base_filters}")
    cap = max_filters if max_filters is not None else base_filters * 8
    return [min(base_filters * 2 ** min(i, 3), cap) for i in range(n_blocks)]


def vgg_block(
    x: keras.KerasTensor, filters: int, name: str, batch_norm: bool = True, bn_momentum: float = 0.99
) -> keras.KerasTensor:
    """``Conv3x3 relu -> Conv3x3 relu -> [BatchNorm] -> MaxPool 2`` (same padding), layers named
    ``<name>_conv1``, ``<name>_conv2``, ``<name>_bn``, ``<name>_pool``."""
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv2")(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    return layers.MaxPooling2D(2, strides=2, padding="same", name=f"{name}_pool")(x)


def head_order(n_dense: int, group: Sequence[str] = MODEL_A_GROUP) -> tuple[str, ...]:
    """``group`` repeated ``n_dense`` times (Model A: ``dense, dropout, bn`` per dense layer)."""
    if n_dense < 0:
        raise ValueError(f"n_dense must be >= 0, got {n_dense}")
    return tuple(group) * n_dense


def check_order(order: Sequence[str], argument: str = "order") -> tuple[str, ...]:
    """Validate a head layer order (kinds from :data:`HEAD_LAYER_KINDS`)."""
    order = tuple(order)
    bad = [kind for kind in order if kind not in HEAD_LAYER_KINDS]
    if bad:
        raise ValueError(f"{argument}: unknown layer kind(s) {bad}; allowed: {sorted(HEAD_LAYER_KINDS)}")
    return order


def dense_layers(
    x: keras.KerasTensor,
    order: Sequence[str],
    units: int,
    prefix: str,
    dropout: float = 0.2,
    l2: float = 1e-5,
    activation: str = "relu",
    bn_momentum: float = 0.99,
) -> keras.KerasTensor:
    """Apply head layers in ``order`` (``"dense"``, ``"dropout"``, ``"bn"``): Dense(units,
    activation, L2 ``l2``), Dropout(``dropout``), BatchNormalization. Layers are named
    ``<prefix>_<kind><k>`` where k counts that kind (``age_dense1``, ``age_dropout1`` ...)."""
    counts: dict[str, int] = {}
    for kind in check_order(order):
        counts[kind] = counts.get(kind, 0) + 1
        layer_name = f"{prefix}_{kind}{counts[kind]}"
        if kind == "dense":
            reg = regularizers.L2(l2) if l2 else None
            x = layers.Dense(units, activation=activation, kernel_regularizer=reg, name=layer_name)(x)
        elif kind == "dropout":
            x = layers.Dropout(dropout, name=layer_name)(x)
        else:
            x = layers.BatchNormalization(momentum=bn_momentum, name=layer_name)(x)
    return x


def age_gender_outputs(
    age_features: keras.KerasTensor, gender_features: keras.KerasTensor, age_bias: float = 0.0
) -> dict[str, keras.KerasTensor]:
    """``{"age": Dense(1, linear), "gender": Dense(1, sigmoid)}`` on the two branches; the age
    unit's bias starts at ``age_bias`` (e.g. the training mean age, instead of 0)."""
    bias = keras.initializers.Constant(float(age_bias)) if age_bias else "zeros"
    return {
        "age": layers.Dense(1, activation="linear", bias_initializer=bias, name="age")(age_features),
        "gender": layers.Dense(1, activation="sigmoid", name="gender")(gender_features),
    }


def _check_config(input_shape, n_blocks: int, split_point: int) -> tuple[int, ...]:
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    if not 0 <= split_point <= n_blocks:
        raise ValueError(f"split_point must be in [0, n_blocks={n_blocks}], got {split_point}")
    smallest = 2 ** (n_blocks - 1)
    if min(input_shape[:2]) < smallest:
        raise ValueError(
            f"input_shape {input_shape} is too small for {n_blocks} blocks (each halves the size); "
            f"use at least {smallest}x{smallest}"
        )
    return input_shape


@model_builder()
def model_a(
    input_shape: Sequence[int] = REPORT_INPUT,
    weights: str | os.PathLike | None = None,
    name: str = "model_a",
    *,
    n_blocks: int = 5,
    n_dense: int = 3,
    units: int = 300,
    split_point: int = 1,
    base_filters: int = 64,
    dropout: float = 0.2,
    l2: float = 1e-5,
    age_bias: float = 0.0,
    bn_momentum: float = 0.99,
) -> keras.Model:
    """Model A: VGG blocks shared up to ``split_point``, then separate age and gender branches.

    Args:
        input_shape: ``(H, W, 3)``; the report's 128x128x3.
        n_blocks: VGG blocks per path (report's search: 2, 3, 5; chosen 5).
        n_dense: dense groups ``Dense -> Dropout -> BN`` per branch (search 1-5; chosen 3).
        units: units per dense layer (search 100, 150, 200, 300; chosen 300).
        split_point: shared blocks before the fork (search 1, 3, 4, 5; chosen 1); ``n_blocks``
            shares the whole conv base, 0 shares nothing.
        base_filters: filters of the first block (64; later blocks double up to 8x). Smaller values
            give a narrower network for CPU demos.
        dropout, l2: dropout rate (.2) and L2 factor on dense kernels (1e-5).
        age_bias: initial bias of the age output (0 in the report; the training mean age saves
            the first epochs of climbing from 0 to ~33 years).
        bn_momentum: momentum of the BatchNorm moving statistics (Keras' 0.99, as in the report;
            0.9 lets them settle within the few hundred steps of a small demo run).

    Returns a model with input ``image`` and outputs ``{"age", "gender"}`` (see :func:`compile_age_gender`).
    """
    input_shape = _check_config(input_shape, n_blocks, split_point)
    filters = block_filters(n_blocks, base_filters)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i in range(split_point):
        x = vgg_block(x, filters[i], f"block{i + 1}", bn_momentum=bn_momentum)
    branches = {}
    for task in TASKS:
        y = x
        for i in range(split_point, n_blocks):
            y = vgg_block(y, filters[i], f"{task}_block{i + 1}", bn_momentum=bn_momentum)
        branches[task] = y
    if split_point == n_blocks:  # one shared flatten, the fork is at the dense layers
        flat = layers.Flatten(name="flatten")(x)
        branches = {task: flat for task in TASKS}
    else:
        branches = {task: layers.Flatten(name=f"{task}_flatten")(y) for task, y in branches.items()}
    order = head_order(n_dense)
    heads = {task: dense_layers(branches[task], order, units, task, dropout, l2, bn_momentum=bn_momentum)
             for task in TASKS}
    return keras.Model(inputs, age_gender_outputs(heads["age"], heads["gender"], age_bias), name=name)


@model_builder()
def model_a_cross_stitch(
    input_shape: Sequence[int] = REPORT_INPUT,
    weights: str | os.PathLike | None = None,
    name: str = "model_a_cross_stitch",
    *,
    n_blocks: int = 5,
    n_dense: int = 3,
    units: int = 300,
    split_point: int = 1,
    base_filters: int = 64,
    dropout: float = 0.2,
    l2: float = 1e-5,
    stitch_conv: bool = True,
    stitch_dense: bool = True,
    self_weight: float = 0.9,
    cross_weight: float = 0.1,
    age_bias: float = 0.0,
    bn_momentum: float = 0.99,
    stitch_lr_multiplier: float = 1.0,
) -> keras.Model:
    """Model A with :class:`CrossStitch` units between the age and gender branches.

    Same arguments and layers as :func:`model_a`, plus a cross-stitch unit after every branch conv
    block (``stitch_conv``, named ``stitch_block<k>``) and after every dense group
    (``stitch_dense``, named ``stitch_dense<k>``), initialised at
    ``[[self_weight, cross_weight], [cross_weight, self_weight]]`` per channel / unit. The report
    stitched only its dense layers (its layer could not fit conv maps in memory); ours costs
    ``4 x channels`` weights per unit. ``stitch_lr_multiplier``: learning-rate multiplier of the
    alphas (see :class:`CrossStitch`; Misra et al. use 10^2 to 10^3).
    """
    input_shape = _check_config(input_shape, n_blocks, split_point)
    if not (stitch_conv or stitch_dense):
        raise ValueError("stitch_conv and stitch_dense are both False: that is plain model_a()")
    filters = block_filters(n_blocks, base_filters)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i in range(split_point):
        x = vgg_block(x, filters[i], f"block{i + 1}", bn_momentum=bn_momentum)
    a = g = x
    for i in range(split_point, n_blocks):
        a = vgg_block(a, filters[i], f"age_block{i + 1}", bn_momentum=bn_momentum)
        g = vgg_block(g, filters[i], f"gender_block{i + 1}", bn_momentum=bn_momentum)
        if stitch_conv:
            a, g = CrossStitch(self_weight, cross_weight, lr_multiplier=stitch_lr_multiplier,
                               name=f"stitch_block{i + 1}")([a, g])
    if split_point == n_blocks:
        a = g = layers.Flatten(name="flatten")(x)
    else:
        a = layers.Flatten(name="age_flatten")(a)
        g = layers.Flatten(name="gender_flatten")(g)
    for k in range(1, n_dense + 1):
        a = dense_layers(a, MODEL_A_GROUP, units, f"age_g{k}", dropout, l2, bn_momentum=bn_momentum)
        g = dense_layers(g, MODEL_A_GROUP, units, f"gender_g{k}", dropout, l2, bn_momentum=bn_momentum)
        if stitch_dense:
            a, g = CrossStitch(self_weight, cross_weight, lr_multiplier=stitch_lr_multiplier,
                               name=f"stitch_dense{k}")([a, g])
    return keras.Model(inputs, age_gender_outputs(a, g, age_bias), name=name)


def compile_age_gender(
    model: keras.Model,
    learning_rate: float = 1e-4,
    loss_weights: Mapping[str, float] | None = None,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    steps_per_execution: int = 1,
) -> keras.Model:
    """Compile an age/gender model the report's way: Adam 1e-4; age: MSE loss + MAE metric;
    gender: binary cross-entropy + accuracy; loss weights 1:1.

    The history then has ``age_loss``, ``age_mae``, ``gender_loss``, ``gender_accuracy`` (and
    ``val_`` versions). Age labels are years (float), gender labels 0 = male, 1 = female.
    ``steps_per_execution > 1`` runs several batches per graph call (less Python overhead for
    small models such as heads on cached features).
    """
    names = set(getattr(model, "output_names", None) or [])
    if names != set(TASKS):
        raise ValueError(f"model {model.name!r} has outputs {sorted(names)}; expected {list(TASKS)}")
    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}})
    weights = {"age": 1.0, "gender": 1.0}
    if loss_weights:
        unknown = set(loss_weights) - set(TASKS)
        if unknown:
            raise ValueError(f"loss_weights names unknown outputs {sorted(unknown)}; outputs: {list(TASKS)}")
        weights.update({k: float(v) for k, v in loss_weights.items()})
    model.compile(
        optimizer=optimizer,
        loss={"age": keras.losses.MeanSquaredError(), "gender": keras.losses.BinaryCrossentropy()},
        loss_weights=weights,
        metrics={
            "age": [keras.metrics.MeanAbsoluteError(name="mae")],
            "gender": [keras.metrics.BinaryAccuracy(name="accuracy")],
        },
        steps_per_execution=int(steps_per_execution),
    )
    return model
