"""RefineNet (Lin et al., CVPR 2017) for semantic segmentation, with instances recovered afterwards.

``refinenet(n_classes=11)`` builds the 4-cascaded RefineNet the fashion report tried (Appendix G:
ResNet-101 encoder, 512 channels on the 1/32 path and 256 elsewhere, four-stage chained residual
pooling, batch norm in fusion and pooling)::

    image in [0, 1] -> MeanPixelNormalization (x 255 - COCO mean; BGR for keras.applications ResNets)
      -> encoder: feature maps at 1/4, 1/8, 1/16, 1/32 (ResNet50/101/152 from keras.applications,
         or the small "light" ResNet below for CPU demos)
      -> 1x1 conv per level ("resnet_map")
      -> RefineNet-4 (1/32) -> RefineNet-3 (+1/16) -> RefineNet-2 (+1/8) -> RefineNet-1 (+1/4), each:
           2 RCUs per input path -> multi-resolution fusion (3x3 conv + BN per path, bilinear
           upsampling to the finest path, sum) -> chained residual pooling (ReLU, then
           [5x5 max-pool stride 1 -> 3x3 conv -> BN] x stages, each added to the sum) -> 1 RCU
      -> 2 RCUs -> 1x1 conv to background + n classes -> bilinear x4 -> per-pixel softmax

RCU (residual conv unit) = ReLU -> 3x3 conv -> ReLU -> 3x3 conv, plus the input. The network is
fully convolutional: build it with ``input_shape=(None, None, 3)`` to train at one size (a
multiple of 32) and predict at another.

:func:`instances_from_semantic` turns a predicted map into instances (connected components per
class, with a minimum area) so RefineNet can be scored with the instance metrics of
:mod:`kerasmt.metrics_instances`.
"""
from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np
from keras import layers, ops

import kerasmt.losses_segmentation  # noqa: F401  (registers the loss, so saved models load after this import)
from kerasmt.models._common import check_weights, model_builder

#: COCO mean pixel (RGB), subtracted by the report (section 4.2.4)
MEAN_PIXEL: tuple[float, float, float] = (123.7, 116.8, 103.9)
#: keras.applications encoders (caffe-style: BGR, mean subtracted) and their feature-layer prefixes
RESNET_ENCODERS: tuple[str, ...] = ("ResNet50", "ResNet101", "ResNet152")
#: widths of the light encoder's four stages
LIGHT_WIDTHS: tuple[int, int, int, int] = (16, 32, 64, 128)


@keras.saving.register_keras_serializable(package="kerasmt")
class MeanPixelNormalization(layers.Layer):
    """``x * input_scale - mean`` per channel, optionally reordered RGB -> BGR afterwards
    (keras.applications ResNets were trained on BGR caffe-style input)."""

    def __init__(self, mean: Sequence[float] = MEAN_PIXEL, input_scale: float = 255.0, bgr: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(m) for m in mean]
        self.input_scale = float(input_scale)
        self.bgr = bool(bgr)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype) * self.input_scale - ops.convert_to_tensor(self.mean, self.compute_dtype)
        return ops.flip(x, axis=-1) if self.bgr else x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(mean=self.mean, input_scale=self.input_scale, bgr=self.bgr)
        return config


@keras.saving.register_keras_serializable(package="kerasmt")
class BilinearUpsampling(layers.Layer):
    """Bilinear upsampling by ``factor`` (a power of 2) with ``keras.ops`` only, for inputs of any
    (also unknown) size: each x2 step blends every pixel with its neighbour 3:1 along each axis
    (half-pixel centres, edge pixels replicated), exactly ``tf.image.resize(..., "bilinear")`` for
    x2. ``UpSampling2D(interpolation="bilinear")`` needs static sizes once traced with ``None``."""

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        factor = int(factor)
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"factor must be a power of 2, got {factor}")
        self.factor = factor

    @staticmethod
    def _double(x, axis: int):
        if axis == 1:
            prev = ops.concatenate([x[:, :1], x[:, :-1]], axis=1)
            nxt = ops.concatenate([x[:, 1:], x[:, -1:]], axis=1)
        else:
            prev = ops.concatenate([x[:, :, :1], x[:, :, :-1]], axis=2)
            nxt = ops.concatenate([x[:, :, 1:], x[:, :, -1:]], axis=2)
        y = ops.stack([0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt], axis=axis + 1)
        shape = ops.shape(x)
        new = [shape[0], shape[1], shape[2], shape[3]]
        new[axis] = shape[axis] * 2
        return ops.reshape(y, new)

    def call(self, inputs):
        x = inputs
        factor = self.factor
        while factor > 1:
            x = self._double(self._double(x, 1), 2)
            factor //= 2
        return x

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else h * self.factor, None if w is None else w * self.factor, c)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(factor=self.factor)
        return config


def _check_input_shape(input_shape: Sequence[int | None]) -> tuple:
    shape = tuple(None if s is None else int(s) for s in input_shape)
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {input_shape}")
    for side in shape[:2]:
        if side is not None and (side < 32 or side % 32):
            raise ValueError(f"input_shape {input_shape}: sides must be multiples of 32 (>= 32) or None")
    return shape


#: momentum of the BatchNormalization layers built here (Keras default 0.99 lags behind the weights
#: for the few hundred steps of a CPU demo; 0.9 is the common ResNet setting)
BN_MOMENTUM = 0.9


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def _light_block(x, filters: int, stride: int, name: str):
    """Basic ResNet block (two 3x3 convs, BN, projection shortcut when the shape changes)."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = _bn(name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = _bn(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = _bn(name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


@model_builder()
def light_resnet(input_shape: Sequence[int | None] = (None, None, 3), weights: str | os.PathLike | None = None,
                 name: str = "light_resnet", *, widths: Sequence[int] = LIGHT_WIDTHS,
                 blocks: Sequence[int] = (1, 1, 1, 1)) -> keras.Model:
    """A small ResNet (basic blocks) returning feature maps at 1/4, 1/8, 1/16 and 1/32 of the
    input: a CPU-friendly stand-in for ResNet-101 (no pretrained weights exist for it)."""
    inputs = keras.Input(shape=tuple(input_shape), name=f"{name}_input")
    x = layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name=f"{name}_stem_conv1")(inputs)
    x = _bn(name=f"{name}_stem_bn1")(x)
    x = layers.ReLU(name=f"{name}_stem_relu1")(x)
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name=f"{name}_stem_conv2")(x)
    x = _bn(name=f"{name}_stem_bn2")(x)
    x = layers.ReLU(name=f"{name}_stem_relu2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_stem_pool")(x)
    outputs = []
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        for b in range(n):
            x = _light_block(x, w, 2 if (b == 0 and stage > 0) else 1, f"{name}_s{stage + 2}b{b + 1}")
        outputs.append(x)
    return keras.Model(inputs, outputs, name=name)


def resnet_features(encoder: str = "ResNet101", input_shape: Sequence[int | None] = (None, None, 3),
                    weights: str | os.PathLike | None = "imagenet") -> keras.Model:
    """A keras.applications ResNet (``include_top=False``) as a model returning its last block
    outputs of stages 2..5 (1/4 .. 1/32). ``weights``: "imagenet", None or a weights file."""
    if encoder not in RESNET_ENCODERS:
        raise ValueError(f"encoder {encoder!r}: expected one of {RESNET_ENCODERS} or 'light'")
    check_weights(weights, "resnet_features", imagenet=True)
    base = getattr(keras.applications, encoder)(include_top=False, weights=weights, input_shape=tuple(input_shape))
    names = [layer.name for layer in base.layers]
    outputs = []
    for stage in (2, 3, 4, 5):
        last = [n for n in names if n.startswith(f"conv{stage}_block") and n.endswith("_out")][-1]
        outputs.append(base.get_layer(last).output)
    return keras.Model(base.input, outputs, name=f"{encoder.lower()}_features")


def encoder_features(encoder: str, input_shape, weights, name: str = "encoder",
                     light_widths: Sequence[int] = LIGHT_WIDTHS) -> tuple[keras.Model, bool]:
    """(feature model, whether its input is BGR caffe-style) for ``"light"`` or a ResNet name."""
    if encoder == "light":
        return light_resnet(input_shape, weights, name, widths=light_widths), False
    return resnet_features(encoder, input_shape, weights), True


def _conv(filters: int, kernel: int, name: str, bias: bool = True, initializer: str = "he_normal"):
    return layers.Conv2D(filters, kernel, padding="same", use_bias=bias, kernel_initializer=initializer, name=name)


def rcu(x, filters: int, name: str):
    """Residual conv unit: ReLU -> 3x3 conv -> ReLU -> 3x3 conv, plus the input.

    The second convolution starts at zero ("zero-init residual", Goyal et al. 2017), so every RCU
    starts as the identity: the decoder's ~20 chained, unnormalised RCUs then cannot blow the
    logits up at initialisation, which saturates the softmax into all-background output."""
    y = layers.ReLU(name=f"{name}_relu1")(x)
    y = _conv(filters, 3, f"{name}_conv1")(y)
    y = layers.ReLU(name=f"{name}_relu2")(y)
    y = _conv(filters, 3, f"{name}_conv2", initializer="zeros")(y)
    return layers.Add(name=f"{name}_sum")([y, x])


def chained_residual_pooling(x, filters: int, stages: int, name: str, batch_norm: bool = True):
    """ReLU, then ``stages`` x [5x5 max-pool (stride 1) -> 3x3 conv (-> BN)] chained, every stage's
    output added to the running sum (captures background context from large regions)."""
    x = layers.ReLU(name=f"{name}_relu")(x)
    total, path = x, x
    for i in range(1, stages + 1):
        path = layers.MaxPooling2D(5, strides=1, padding="same", name=f"{name}_pool{i}")(path)
        path = _conv(filters, 3, f"{name}_conv{i}", bias=not batch_norm)(path)
        if batch_norm:
            path = _bn(name=f"{name}_bn{i}")(path)
        total = layers.Add(name=f"{name}_sum{i}")([total, path])
    return total


def refine_block(paths: Sequence, filters: int, name: str, crp_stages: int = 4, batch_norm: bool = True):
    """One RefineNet block on 1 or 2 input paths (coarse first): 2 RCUs per path, multi-resolution
    fusion to the finest path, chained residual pooling, output RCU."""
    adapted = []
    for k, x in enumerate(paths):
        c = int(x.shape[-1])
        tag = "l" if (len(paths) > 1 and k == 0) else "h"
        x = rcu(x, c, f"{name}_rcu_{tag}1")
        x = rcu(x, c, f"{name}_rcu_{tag}2")
        adapted.append(x)
    if len(adapted) == 1:
        fused = adapted[0]
        if int(fused.shape[-1]) != filters:
            fused = _conv(filters, 1, f"{name}_adapt")(fused)
    else:
        coarse, fine = adapted
        lo = _conv(filters, 3, f"{name}_mrf_conv_lo", bias=not batch_norm)(coarse)
        hi = _conv(filters, 3, f"{name}_mrf_conv_hi", bias=not batch_norm)(fine)
        if batch_norm:
            lo = _bn(name=f"{name}_mrf_bn_lo")(lo)
            hi = _bn(name=f"{name}_mrf_bn_hi")(hi)
        lo = BilinearUpsampling(2, name=f"{name}_mrf_up")(lo)
        fused = layers.Add(name=f"{name}_mrf_sum")([lo, hi])
    x = chained_residual_pooling(fused, filters, crp_stages, f"{name}_crp", batch_norm)
    return rcu(x, filters, f"{name}_rcu_o1")


@model_builder(imagenet=True)
def refinenet(
    input_shape: Sequence[int | None] = (512, 512, 3),
    weights: str | os.PathLike | None = "imagenet",
    name: str = "refinenet",
    *,
    n_classes: int = 11,
    encoder: str = "ResNet101",
    features: int | Sequence[int] = (512, 256, 256, 256),
    crp_stages: int = 4,
    batch_norm: bool = True,
    dropout: float = 0.0,
    trainable_encoder: bool = True,
    encoder_batchnorm_training: bool | None = None,
    light_widths: Sequence[int] = LIGHT_WIDTHS,
) -> keras.Model:
    """4-cascaded RefineNet with a per-pixel softmax over background + ``n_classes``.

    Args:
        n_classes: fashion classes (report: 11, the ``full`` set); the output has ``n_classes + 1``
            channels, channel 0 = background, channel ``c + 1`` = class ``c``.
        input_shape: ``(H, W, 3)`` with sides multiples of 32, or ``(None, None, 3)``. Images are
            RGB floats in [0, 1]. Report: 512 (its RefineNet runs: 384).
        encoder: ``"ResNet101"`` (report), ``"ResNet50"``, ``"ResNet152"`` (keras.applications) or
            ``"light"`` (:func:`light_resnet`, for CPU demos; no pretrained weights).
        weights: ``"imagenet"`` (the encoder's, downloaded by Keras), ``None`` or a weights file of
            the whole model or of the encoder alone.
        features: channels of the RefineNet-4..1 blocks (one int for all); report 512, 256, 256, 256.
        crp_stages: pooling stages of chained residual pooling (report's implementation: 4).
        batch_norm: BN after the fusion and pooling convolutions (report's implementation).
        dropout: dropout before the classifier.
        trainable_encoder: ``False`` freezes the encoder.
        encoder_batchnorm_training: run the encoder's BN in training mode; default: only for the
            light encoder trained from scratch (pretrained ResNets keep their statistics, as
            Matterport's and RefineNet's training did).
        light_widths: stage widths of the light encoder.
    """
    shape = _check_input_shape(input_shape)
    widths = [int(features)] * 4 if isinstance(features, int) else [int(f) for f in features]
    if len(widths) != 4:
        raise ValueError(f"features must be one int or 4 ints (RefineNet-4..1), got {features}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    inputs = keras.Input(shape=shape, name="image")
    backbone, bgr = encoder_features(encoder, shape, weights, name="encoder", light_widths=light_widths)
    backbone.trainable = bool(trainable_encoder)
    x = MeanPixelNormalization(bgr=bgr, name="normalize")(inputs)
    bn_training = (encoder == "light") if encoder_batchnorm_training is None else encoder_batchnorm_training
    feats = backbone(x, training=None if bn_training else False)
    # coarse to fine: 1/32, 1/16, 1/8, 1/4
    maps = [
        _conv(widths[i], 1, f"resnet_map{i + 1}")(f) for i, f in enumerate(reversed(list(feats)))
    ]
    y = refine_block([maps[0]], widths[0], "rb_4", crp_stages, batch_norm)
    for i, level in enumerate((3, 2, 1), start=1):
        y = refine_block([y, maps[i]], widths[i], f"rb_{level}", crp_stages, batch_norm)
    y = rcu(y, widths[3], "rf_rcu_o1")
    y = rcu(y, widths[3], "rf_rcu_o2")
    if dropout:
        y = layers.Dropout(dropout, name="rf_dropout")(y)
    y = layers.Conv2D(n_classes + 1, 1, name="rf_pred")(y)
    y = BilinearUpsampling(4, name="rf_up")(y)
    outputs = layers.Activation("softmax", dtype="float32", name="mask")(y)
    return keras.Model(inputs, outputs, name=name)


def instances_from_semantic(probabilities: np.ndarray, min_area: int = 1, min_score: float = 0.0,
                            connectivity: int = 2):
    """Instances of one image from a semantic prediction, by connected components per class.

    ``probabilities``: softmax output ``(H, W, 1 + n_classes)`` (or an integer label map
    ``(H, W)``, 0 = background, ``c + 1`` = class ``c``). Every connected region of a class
    (``connectivity`` 2 = 8-neighbourhood) with at least ``min_area`` pixels becomes one instance
    of that class; its score is the mean probability of the class over the region (1.0 for label
    maps), and regions scoring below ``min_score`` are dropped (like a detector's confidence
    threshold). Returns :class:`kerasmt.metrics_instances.Instances` (labels 0..n_classes-1).
    """
    from scipy import ndimage

    from kerasmt.metrics_instances import Instances

    probabilities = np.asarray(probabilities)
    if probabilities.ndim == 3:
        label_map = np.argmax(probabilities, axis=-1)
        n_channels = probabilities.shape[-1]
    elif probabilities.ndim == 2:
        label_map = probabilities.astype(np.int64)
        n_channels = int(label_map.max()) + 1
    else:
        raise ValueError(f"expected (H, W, C) probabilities or an (H, W) label map, got shape {probabilities.shape}")
    structure = ndimage.generate_binary_structure(2, connectivity)
    masks, labels, scores = [], [], []
    for c in range(1, n_channels):
        region = label_map == c
        if not region.any():
            continue
        components, n = ndimage.label(region, structure=structure)
        areas = np.bincount(components.reshape(-1), minlength=n + 1)
        if probabilities.ndim == 3:
            means = ndimage.mean(probabilities[..., c], labels=components, index=np.arange(1, n + 1))
        else:
            means = np.ones(n)
        for k in range(1, n + 1):
            if areas[k] >= min_area and means[k - 1] >= min_score:
                masks.append(components == k)
                labels.append(c - 1)
                scores.append(float(means[k - 1]))
    h, w = label_map.shape
    return Instances(np.stack(masks) if masks else np.zeros((0, h, w), bool), np.asarray(labels, np.int64),
                     np.asarray(scores, float))
