"""Model B of the UTKFace report: transfer learning from any ``keras.applications`` backbone.

``transfer_model((128, 128, 3), backbone="Xception")`` builds::

    image in [0, 1] -> BackbonePreprocess (x 255, then the backbone's own preprocess_input)
      -> frozen backbone (include_top=False, global average pooling), called with training=False
      -> per task: head layers in ``head`` order -> age (linear) / gender (sigmoid)

Each backbone gets its *own* preprocessing: VGG16/VGG19/ResNet50 ("caffe": BGR, ImageNet mean
subtracted), Xception/InceptionV3/ResNet50V2/MobileNetV2 ("tf": [-1, 1]), EfficientNet (none:
the network rescales [0, 255] inputs itself). The report fed every backbone the same [0, 1]
images, which is why its EfficientNetB4 sat at chance (52.9 % gender accuracy, Table 3).

:func:`unfreeze_last` then makes the last ``n`` weighted layers of the backbone trainable for
fine-tuning (BatchNorm layers stay frozen and, since the backbone is called with
``training=False``, in inference mode).
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import keras
from keras import layers

from kerasmt.models._common import model_builder
from kerasmt.models.finetune import base_of  # noqa: F401  (also this module's API: the backbone of a transfer_model)
from kerasmt.models.vgg import TASKS, age_gender_outputs, check_order, dense_layers
from kerasmt.utils import count_params as _count_params

#: the six backbones the report compared (its Table 3), in the report's order
REPORT_BACKBONES: tuple[str, ...] = ("VGG16", "VGG19", "Xception", "ResNet50V2", "EfficientNetB4", "InceptionV3")
#: the report's Table 4 head orders (layers before the output), best last: Dense -> Dropout
HEAD_ORDERS: dict[str, tuple[str, ...]] = {
    "dense-dense-dropout": ("dense", "dense", "dropout"),
    "dense-bn-dropout": ("dense", "bn", "dropout"),
    "bn-dense-dropout": ("bn", "dense", "dropout"),
    "dense-dropout-bn": ("dense", "dropout", "bn"),
    "dense-dropout-bn-dropout": ("dense", "dropout", "bn", "dropout"),
    "dense-bn": ("dense", "bn"),
    "dense-dropout": ("dense", "dropout"),
}
#: smallest input side each backbone accepts with ``include_top=False`` (others: 32)
MIN_INPUT_SIZE: dict[str, int] = {"Xception": 71, "InceptionV3": 75, "InceptionResNetV2": 75}


@dataclass(frozen=True)
class Backbone:
    """A ``keras.applications`` constructor and the module holding its ``preprocess_input``."""

    name: str
    constructor: Callable[..., keras.Model]
    module: str

    @property
    def preprocess_input(self) -> Callable:
        return importlib.import_module(f"keras.applications.{self.module}").preprocess_input

    @property
    def min_size(self) -> int:
        return MIN_INPUT_SIZE.get(self.name, 32)


def backbone_spec(name: str) -> Backbone:
    """The :class:`Backbone` of a ``keras.applications`` model name (e.g. ``"ResNet50V2"``)."""
    constructor = getattr(keras.applications, name, None)
    if constructor is None or not callable(constructor) or not name[:1].isupper():
        known = sorted(n for n in dir(keras.applications) if n[:1].isupper())
        raise ValueError(f"backbone {name!r} is not a keras.applications model; known: {known}")
    module = constructor.__module__.rsplit(".", 1)[-1]  # keras.src.applications.resnet_v2 -> resnet_v2
    try:
        importlib.import_module(f"keras.applications.{module}").preprocess_input  # noqa: B018
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"backbone {name!r}: no keras.applications.{module}.preprocess_input") from exc
    return Backbone(name, constructor, module)


@keras.saving.register_keras_serializable(package="kerasmt")
class BackbonePreprocess(layers.Layer):
    """Scale [0, 1] images to [0, 255] (``input_scale``) and apply a backbone's own
    ``preprocess_input`` (``keras.applications.<module>.preprocess_input``)."""

    def __init__(self, backbone: str, input_scale: float = 255.0, **kwargs):
        super().__init__(**kwargs)
        self.backbone = str(backbone)
        self.input_scale = float(input_scale)
        self._preprocess = backbone_spec(self.backbone).preprocess_input

    def call(self, inputs):
        return self._preprocess(inputs * self.input_scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(backbone=self.backbone, input_scale=self.input_scale)
        return config


@model_builder(imagenet=True)
def transfer_model(
    input_shape: Sequence[int] = (128, 128, 3),
    weights: str | os.PathLike | None = "imagenet",
    name: str | None = None,
    *,
    backbone: str = "Xception",
    head: Sequence[str] = HEAD_ORDERS["dense-dropout"],
    units: int = 256,
    dropout: float = 0.5,
    l2: float = 0.0,
    pooling: str = "avg",
    trainable_base: bool = False,
    age_bias: float = 0.0,
) -> keras.Model:
    """Model B: a ``keras.applications`` backbone with separate age and gender heads.

    Args:
        backbone: any ``keras.applications`` model name; the report's six are
            :data:`REPORT_BACKBONES` (its pick: Xception).
        input_shape: ``(H, W, 3)``, at least the backbone's minimum (:data:`MIN_INPUT_SIZE`).
            Images are RGB floats in [0, 1]; the model applies the backbone's own preprocessing.
        weights: ``"imagenet"`` (downloaded by Keras on first use), ``None`` (random: no
            network needed, for tests and offline demos) or the path of a local weights file.
        head: layer order of each task head before its output (Table 4's best, Dense -> Dropout,
            by default; see :data:`HEAD_ORDERS`).
        units, dropout, l2: dense units, dropout rate and L2 of the head (the report tuned units
            and learning rate with Hyperband and does not state them; 256 and .5 are ours).
        pooling: ``"avg"`` or ``"max"`` global pooling of the backbone's last feature map.
        trainable_base: ``False`` freezes the backbone (feature extraction); use
            :func:`unfreeze_last` for fine-tuning. The backbone is always called with
            ``training=False`` so its BatchNorm layers stay in inference mode.
        age_bias: initial bias of the age output (e.g. the training mean age).
    """
    spec = backbone_spec(backbone)
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise ValueError(f"input_shape must be (height, width, 3) for {backbone}, got {input_shape}")
    if min(input_shape[:2]) < spec.min_size:
        raise ValueError(f"input_shape {input_shape} is too small for {backbone}: it needs at least "
                         f"{spec.min_size}x{spec.min_size}")
    head = check_order(head, "head")
    inputs = keras.Input(shape=input_shape, name="image")
    x = BackbonePreprocess(backbone, name="preprocess")(inputs)
    base = spec.constructor(include_top=False, weights=weights, input_shape=input_shape, pooling=pooling)
    base.trainable = bool(trainable_base)
    features = base(x, training=False)
    outputs = _heads(features, head, units, dropout, l2, age_bias)
    return keras.Model(inputs, outputs, name=name or f"model_b_{backbone.lower()}")


def _heads(features, head, units, dropout, l2, age_bias) -> dict:
    branches = {task: dense_layers(features, head, units, task, dropout, l2) for task in TASKS}
    return age_gender_outputs(branches["age"], branches["gender"], age_bias)


def age_gender_heads(
    feature_dim: int,
    head: Sequence[str] = HEAD_ORDERS["dense-dropout"],
    units: int = 256,
    dropout: float = 0.5,
    l2: float = 0.0,
    age_bias: float = 0.0,
    name: str = "heads",
) -> keras.Model:
    """The heads of :func:`transfer_model` alone, on pooled backbone features of size
    ``feature_dim`` (same layers and names): for head searches on cached features."""
    inputs = keras.Input(shape=(int(feature_dim),), name="features")
    return keras.Model(inputs, _heads(inputs, check_order(head, "head"), units, dropout, l2, age_bias), name=name)


def feature_model(model: keras.Model) -> keras.Model:
    """Image -> pooled backbone features of a :func:`transfer_model` (shares its layers)."""
    inputs = keras.Input(shape=model.input_shape[1:], name="image")
    x = model.get_layer("preprocess")(inputs)
    return keras.Model(inputs, base_of(model)(x, training=False), name=f"{model.name}_features")


def head_model(model: keras.Model) -> keras.Model:
    """Pooled features -> ``{"age", "gender"}``: the heads of a :func:`transfer_model` as a model
    of their own, sharing their layers (and weights) with ``model``. With a frozen backbone and no
    augmentation, training it on cached features (:func:`extract_features`) is the same as
    training ``model`` on images, at a fraction of the cost."""
    base = base_of(model)
    inputs = keras.Input(shape=base.output.shape[1:], name="features")
    outputs = {}
    for task in TASKS:
        x = inputs
        for layer in model.layers:  # the head is a chain, in creation order
            if layer.name.startswith(f"{task}_"):
                x = layer(x)
        outputs[task] = model.get_layer(task)(x)
    return keras.Model(inputs, outputs, name=f"{model.name}_heads")


def extract_features(model: keras.Model, images, batch_size: int = 64):
    """Pooled backbone features of ``images`` (uint8 [0, 255] or float [0, 1] array, a
    :class:`kerasmt.diskarray.DiskArray`, or a dataset
    of image batches) under a :func:`transfer_model` (or its :func:`feature_model`)."""
    import numpy as np
    import tensorflow as tf

    from kerasmt import diskarray

    extractor = model if model.name.endswith("_features") else feature_model(model)
    if isinstance(images, np.ndarray) or diskarray.is_disk(images):
        ds = diskarray.rows_dataset(images, batch_size)  # rows gathered by index, never copied into the graph
        if images.dtype == np.uint8:
            ds = ds.map(lambda x: tf.cast(x, tf.float32) / 255.0)
        images = ds
    return extractor.predict(images, verbose=0)


def unfreeze_last(model: keras.Model, n: int, train_batchnorm: bool = False) -> list[str]:
    """Make the last ``n`` layers *with weights* of the backbone trainable (the rest frozen) and
    return their names. BatchNorm layers are skipped (left frozen) unless ``train_batchnorm``.
    Recompile the model afterwards. ``n = 0`` freezes the whole backbone again."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    base = base_of(model)
    base.trainable = True
    for layer in base.layers:
        layer.trainable = False
    unfrozen: list[str] = []
    for layer in reversed(base.layers):
        if len(unfrozen) >= n:
            break
        if not layer.weights:
            continue
        if isinstance(layer, layers.BatchNormalization) and not train_batchnorm:
            continue
        layer.trainable = True
        unfrozen.append(layer.name)
    if not unfrozen:
        base.trainable = False
    return unfrozen[::-1]


def count_params(model: keras.Model) -> dict[str, int]:
    """Total, trainable, non-trainable and backbone parameter counts of a :func:`transfer_model`."""
    return {**_count_params(model), "backbone": int(base_of(model).count_params())}
