"""Multi-label image classifier: which fashion classes does an image contain?

The baseline the fashion report did not build: the report scored its segmentation models on
multi-label classification (EMR, OA, JSS) but never trained a plain classifier for it::

    image in [0, 1] -> MeanPixelNormalization -> backbone (ResNet50 from keras.applications, or the
    light ResNet of :mod:`kerasmt.models.refinenet`) -> global average pooling -> Dropout
    -> Dense(n_classes, sigmoid) "labels"

trained with binary cross-entropy, one independent sigmoid per class. A class is predicted when
its probability is at least ``threshold`` (0.5).
"""
from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np
from keras import layers

from kerasmt.models._common import model_builder
from kerasmt.models.refinenet import MeanPixelNormalization, encoder_features


@model_builder(imagenet=True)
def multilabel_classifier(
    input_shape: Sequence[int | None] = (512, 512, 3),
    weights: str | os.PathLike | None = "imagenet",
    name: str = "multilabel",
    *,
    n_classes: int = 11,
    backbone: str = "ResNet50",
    dropout: float = 0.2,
    trainable_backbone: bool = True,
) -> keras.Model:
    """Backbone + GAP + ``Dense(n_classes, sigmoid)``; output ``"labels"`` ``(batch, n_classes)``.

    Args:
        n_classes: classes (the report's ``full`` set: 11).
        input_shape: ``(H, W, 3)`` RGB in [0, 1], sides multiples of 32 or None (report: 512).
        backbone: ``"ResNet50"``/``"ResNet101"``/``"ResNet152"`` (keras.applications, BGR caffe
            input after the COCO mean is subtracted) or ``"light"`` (small ResNet, CPU demos).
        weights: ``"imagenet"`` (the backbone's), ``None`` (random; tests and offline demos) or a
            weights file of the whole model or of the backbone alone.
        dropout: dropout before the classifier.
        trainable_backbone: ``False`` freezes the backbone (its BatchNorm then stays in
            inference mode as well).
    """
    from kerasmt.models.refinenet import _check_input_shape

    shape = _check_input_shape(input_shape)
    inputs = keras.Input(shape=shape, name="image")
    features, bgr = encoder_features(backbone, shape, weights, name="backbone")
    features.trainable = bool(trainable_backbone)
    x = MeanPixelNormalization(bgr=bgr, name="normalize")(inputs)
    bn_training = backbone == "light" and trainable_backbone
    x = features(x, training=None if bn_training else False)[-1]
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="sigmoid", dtype="float32", name="labels")(x)
    return keras.Model(inputs, outputs, name=name)


def compile_multilabel(
    model: keras.Model, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3
) -> keras.Model:
    """Adam + binary cross-entropy, with binary accuracy (per-entry, i.e. OA) as metric."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy(name="oa")])
    return model


def predict_labels(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Sigmoid outputs ``(n, k)`` -> 0/1 predictions."""
    return (np.asarray(probabilities) >= threshold).astype(np.int32)
