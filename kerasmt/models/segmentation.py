"""Segmentation decoder on a shared latent feature map, for joint classification + segmentation.

The attribute report planned (but never built) "a decoder on the latent features that predicts the
semantic mask", hoping the shared trunk would learn where the torso, legs and luggage are. Here:

* :func:`mask_decoder`: ``[Conv 3x3 -> BN -> ReLU -> UpSampling x2]`` blocks from the latent map up
  to the image size, then a 1x1 convolution to ``n_classes`` per-pixel **logits** (optionally
  concatenating trunk feature maps of matching size, U-Net style skips). Upsampling is nearest
  neighbour followed by the next 3x3 convolution: the bilinear resize's gradient doubled the
  training step time on CPU;
* :func:`add_mask_decoder`: a model with every output of a classifier plus ``"mask"``, the decoder
  reading the classifier's latent layer (``"latent"`` of :func:`kerasmt.models.resnet.simple_resnet_v2`:
  25x15x64 -> 50x30 -> 100x60x9 with the defaults, 24,497 extra parameters);
* :func:`compile_joint`: masked cross-entropy per task (logits, optional class weights) and
  :class:`kerasmt.losses.MaskedSegmentationLoss` (cross-entropy + Dice over labelled pixels) for the
  mask, so images without a mask (label maps of -1) add no segmentation loss.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import keras
from keras import layers

from kerasmt.losses import MaskedSegmentationLoss, MaskedSparseCategoricalCrossentropy
from kerasmt.metrics import MaskedMeanIoU, MaskedSparseCategoricalAccuracy

MASK_OUTPUT = "mask"


def mask_decoder(
    features: keras.KerasTensor,
    n_classes: int = 9,
    output_size: Sequence[int] = (100, 60),
    filters: Sequence[int] = (32, 16, 8),
    skips: Sequence[keras.KerasTensor] = (),
    name: str = MASK_OUTPUT,
) -> keras.KerasTensor:
    """Per-pixel class logits ``(output_size..., n_classes)`` from a feature map.

    Block ``i`` is Conv 3x3 (``filters[i]``, no bias) -> BN -> ReLU, followed by a nearest x2
    upsampling while the map is at most half the output size; a final bilinear resize covers sizes
    that are not a power-of-two multiple. After each upsampling, every tensor of ``skips`` with the same
    spatial size is concatenated. Layers are named ``<name>_...``, the output ``name``.
    """
    height, width = (int(v) for v in output_size)
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2 (parts + background), got {n_classes}")
    if not filters:
        raise ValueError("filters must list at least one block width")
    x = features
    used: set[int] = set()

    def _concat_skips(x, level):
        size = tuple(x.shape[1:3])
        chosen = [k for k, s in enumerate(skips) if k not in used and tuple(s.shape[1:3]) == size]
        used.update(chosen)
        matches = [skips[k] for k in chosen]
        if matches:
            x = layers.Concatenate(name=f"{name}_skip{level}")([x, *matches])
        return x

    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
        h, w = x.shape[1], x.shape[2]
        if h is not None and 2 * h <= height and 2 * w <= width:
            x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up{i}")(x)
            x = _concat_skips(x, i)
    if tuple(x.shape[1:3]) != (height, width):
        x = layers.Resizing(height, width, interpolation="bilinear", name=f"{name}_resize")(x)
    return layers.Conv2D(n_classes, 1, name=name)(x)


def add_mask_decoder(
    model: keras.Model,
    n_classes: int = 9,
    feature_layer: str = "latent",
    filters: Sequence[int] = (32, 16, 8),
    skip_layers: Sequence[str] = (),
    output_name: str = MASK_OUTPUT,
    name: str | None = None,
) -> keras.Model:
    """A model transformer (not a builder: it takes a built model): ``model``'s outputs plus a
    segmentation output ``output_name`` (logits at the input's height x width) decoded from the layer ``feature_layer``; the trunk and heads are
    shared (same layers, same weights). ``skip_layers`` names trunk layers to concatenate on the
    way up (none by default: the decoder sees only the latent map, as the report planned)."""
    if output_name in model.output_names:
        raise ValueError(f"model already has an output named {output_name!r}")
    try:
        features = model.get_layer(feature_layer).output
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {feature_layer!r} to decode from") from None
    skips = [model.get_layer(s).output for s in skip_layers]
    size = model.inputs[0].shape[1:3]
    mask = mask_decoder(features, n_classes, size, filters, skips, name=output_name)
    outputs = model.output if isinstance(model.output, dict) else dict(zip(model.output_names, model.outputs))
    outputs = {**outputs, output_name: mask}
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=name or f"{model.name}_seg")


def compile_joint(
    model: keras.Model,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
    class_weights: Mapping[str, Sequence[float]] | None = None,
    mask_output: str = MASK_OUTPUT,
    mask_loss_weight: float = 1.0,
    dice_weight: float = 1.0,
    task_loss_weight: float = 1.0,
) -> keras.Model:
    """Compile a model with class-logit outputs and (optionally) a mask-logit output.

    Every class output gets ``MaskedSparseCategoricalCrossentropy(from_logits=True)`` (with its
    ``class_weights`` entry, if any) and masked accuracy, all with weight ``task_loss_weight``
    (equal weights, as in the report); ``mask_output`` gets
    ``MaskedSegmentationLoss(ce_weight=1, dice_weight=dice_weight)`` weighted by
    ``mask_loss_weight`` and a masked mean-IoU metric. Adam with ``learning_rate`` (a float or a
    Keras learning-rate schedule).
    """
    names = list(model.output_names)
    class_weights = dict(class_weights or {})
    unknown = set(class_weights) - set(names)
    if unknown:
        raise ValueError(f"class_weights names unknown outputs {sorted(unknown)}; outputs: {names}")
    losses, metrics, weights = {}, {}, {}
    for n in names:
        if n == mask_output:
            n_classes = int(model.get_layer(n).output.shape[-1])
            losses[n] = MaskedSegmentationLoss(from_logits=True, dice_weight=dice_weight)
            metrics[n] = [MaskedMeanIoU(n_classes, name="mean_iou")]
            weights[n] = float(mask_loss_weight)
        else:
            losses[n] = MaskedSparseCategoricalCrossentropy(from_logits=True, class_weights=class_weights.get(n))
            metrics[n] = [MaskedSparseCategoricalAccuracy(name="accuracy")]
            weights[n] = float(task_loss_weight)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=losses, metrics=metrics, loss_weights=weights)
    return model
