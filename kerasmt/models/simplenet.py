"""SimpleNet (Hasanpour, Rouhani, Fayyaz & Sabokrou 2016, "Lets keep it simple, Using simple
architectures to outperform deeper and more complex architectures", arXiv:1608.06037).

The paper's 13-layer CIFAR network (the authors' Caffe model; their PyTorch port calls it
``simplenet_cifar_5m``)::

    conv3x3  64 | conv3x3 128 | conv3x3 128 | conv3x3 128 | maxpool 2
    conv3x3 128 | conv3x3 128 | conv3x3 256 | maxpool 2
    conv3x3 256 | conv3x3 256 | maxpool 2
    conv3x3 512 | conv1x1 2048 | conv1x1 256 | maxpool 2
    conv3x3 256 | global max pooling | dense (softmax)

Every convolution is "same"-padded with a bias, followed by BatchNormalization and ReLU. For
CIFAR-10 (32x32x3, 10 classes) the convolution and dense kernels hold 5,484,736 weights: the
"5.48M parameters" of the paper; Keras' count with biases and BatchNorm scale/offset is 5,498,378
trainable (5,507,466 with the BatchNorm moving statistics). The Beauty report trained it from scratch
(a Keras port, reference [15] of the report) and reached 0.1504 validation accuracy.
"""
from __future__ import annotations

import os
from typing import Sequence

import keras
from keras import layers

from kerasmt.models._common import model_builder

#: (filters, kernel size) of the 13 convolutions, "pool" = 2x2 max pooling (stride 2)
SIMPLENET_CONFIG: tuple = (
    (64, 3), (128, 3), (128, 3), (128, 3), "pool",
    (128, 3), (128, 3), (256, 3), "pool",
    (256, 3), (256, 3), "pool",
    (512, 3), (2048, 1), (256, 1), "pool",
    (256, 3),
)
#: the paper's parameter count for CIFAR-10 (conv + dense kernels), and our exact figure for it
PAPER_PARAMS_CIFAR10 = 5.48e6
KERNEL_WEIGHTS_CIFAR10 = 5_484_736


@model_builder()
def simplenet(
    input_shape: Sequence[int] = (32, 32, 3),
    weights: str | os.PathLike | None = None,
    name: str = "simplenet",
    *,
    n_classes: int = 10,
    dropout: float = 0.0,
    bn_momentum: float = 0.95,
) -> keras.Model:
    """SimpleNet for images in [0, 1] (BatchNorm after the first convolution normalises them).

    Args:
        n_classes: softmax outputs (the paper: 10 for CIFAR-10).
        input_shape: ``(H, W, C)``; at least 16x16 (four 2x2 poolings).
        dropout: rate of the dropout after each pooling and before the classifier (the authors'
            CIFAR configuration: 0.0).
        bn_momentum: BatchNorm moving-average momentum (Caffe/PyTorch momentum 0.05 = Keras 0.95).
    Initialisation: Xavier-uniform with the ReLU gain (the authors' port), zero biases.
    """
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3 or min(input_shape[:2]) < 16:
        raise ValueError(f"input_shape must be (H, W, C) with H, W >= 16, got {input_shape}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    init = keras.initializers.VarianceScaling(scale=2.0, mode="fan_avg", distribution="uniform")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    conv_i = pool_i = 0
    for item in SIMPLENET_CONFIG:
        if item == "pool":
            pool_i += 1
            x = layers.MaxPooling2D(2, strides=2, name=f"pool{pool_i}")(x)
            if dropout:
                x = layers.Dropout(dropout, name=f"dropout{pool_i}")(x)
            continue
        filters, kernel = item
        conv_i += 1
        x = layers.Conv2D(filters, kernel, padding="same", kernel_initializer=init, name=f"conv{conv_i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, epsilon=1e-5, name=f"bn{conv_i}")(x)
        x = layers.ReLU(name=f"relu{conv_i}")(x)
    x = layers.GlobalMaxPooling2D(name="global_max_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout_final")(x)
    outputs = layers.Dense(n_classes, activation="softmax", kernel_initializer="glorot_uniform", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def kernel_weight_count(model: keras.Model) -> int:
    """Number of convolution and dense kernel weights (no biases, no BatchNorm): how the SimpleNet
    paper counts parameters."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.Dense)):
            total += _prod(layer.kernel.shape)
    return total


def _prod(shape) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out
