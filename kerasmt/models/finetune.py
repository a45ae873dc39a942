"""Transfer learning (TL) and fine-tuning of the last k blocks (FT-k) of a pretrained backbone.

:func:`finetune_model` builds the Beauty report's network (chapter 3.3 / 4.1)::

    image in [0, 1] -> FinetunePreprocess -> backbone (include_top=False), called with training=False
      -> GlobalAveragePooling2D -> Dropout 0.2 -> Dense 512 relu -> Dense n_classes softmax

and sets the regime: ``"tl"`` (frozen backbone), ``"ft-k"`` (the last k blocks trainable) or
``"full"`` (everything trainable).

**Blocks, by layer name** (never by layer index, so the rule survives other Keras versions):

- InceptionV3: the 11 inception blocks end at the concatenations ``mixed0`` ... ``mixed10`` (the
  stem belongs to the ``mixed0`` block). FT-k makes every layer *after* ``mixed{10-k}``
  trainable: FT-1 = the layers after ``mixed9`` (block ``mixed10``), FT-2 = after ``mixed8``, ...
  These are exactly the report's ``unfreeze_cnn(first, 'end')`` cuts ``first`` = 280, 249, 229,
  197, 165, 133 for k = 1..6 in Keras' InceptionV3 layer list (0 = input layer).
- ResNet50/101/152 (and the V2 variants): the stem (``conv1_*``, ``pool1_*``) and the residual
  blocks ``conv2_block1`` ... ``conv5_block3``; FT-1 = ``conv5_block3`` (plus ``post_bn`` in V2),
  FT-2 = ``conv5_block2`` and ``conv5_block3``, ...
- EfficientNet B0-B7 / V2: the stem and the blocks ``block1a`` ... ``block7a`` (B0: ``block7a``,
  ``block6d``, ``block6c``, ...); the closing ``top_conv``/``top_bn`` belong to the last block.

"After the boundary" is computed from the graph: the frozen layers are exactly those needed to
compute the boundary layer's output (:func:`frozen_part`), everything else is trainable.

**BatchNormalization.** The backbone is always called with ``training=False``, so every
BatchNorm layer normalises with its (ImageNet) moving statistics and never updates them: frozen
blocks behave exactly as at inference time (the report's Keras 2 setup updated them, a known
pitfall). In unfrozen blocks the BatchNorm scale/offset stay frozen too unless
``train_batchnorm=True`` (common fine-tuning practice: small batches give noisy statistics).

**Preprocessing.** ``preprocessing="backbone"`` (default) feeds the backbone what it was trained
on: ``keras.applications.<module>.preprocess_input`` of the [0, 255] image ([-1, 1] for
InceptionV3). ``"rescale"`` feeds [0, 1] images unchanged: the report's ``rescale=1./255``, which
does not match InceptionV3's ImageNet weights.

**Caching.** With a frozen backbone and no augmentation the head sees the same features every
epoch: :func:`cached_outputs` of :func:`feature_model` computes them once and :func:`head_model`
trains the head on them (the same layers, so the full model is trained too).
:func:`split_at_boundary` does the same for FT-k: the frozen part's output is computed once and
only the trainable top runs per epoch.

**Training ingredients.** :func:`report_augmentation` (rotation 40, shifts .2, shear .2, zoom .2,
horizontal flip as one :class:`RandomAffine` map per image), :func:`compile_report` (RMSprop 2e-4,
cross-entropy, accuracy and top-5), :func:`scratch_model` (InceptionV3, ResNet50 or SimpleNet from
random weights, chapter 6).
"""
from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import keras
import numpy as np
from keras import layers

from kerasmt.models._common import model_builder
from kerasmt.utils import count_params  # noqa: F401  (part of this module's API: ft.count_params)

#: smallest input side of the backbones with ``include_top=False``
MIN_INPUT_SIZE: dict[str, int] = {"InceptionV3": 75, "Xception": 71, "InceptionResNetV2": 75}
#: the report's head: GAP -> Dropout 0.2 -> Dense 512 relu -> softmax
REPORT_HEAD_UNITS = 512
REPORT_HEAD_DROPOUT = 0.2
#: the report's optimiser: RMSprop, learning rate 2e-4
REPORT_LEARNING_RATE = 2e-4
#: the report's augmentation (ImageDataGenerator arguments)
REPORT_AUGMENTATION: dict[str, Any] = {
    "rotation_range": 40, "width_shift_range": 0.2, "height_shift_range": 0.2, "shear_range": 0.2,
    "zoom_range": 0.2, "horizontal_flip": True, "fill_mode": "nearest",
}
#: names of the head layers :func:`finetune_model` adds
HEAD_LAYERS: tuple[str, ...] = ("gap", "head_dropout", "head_dense", "predictions")


# --------------------------------------------------------------------------- backbones, blocks
def _constructor(backbone: str) -> Callable[..., keras.Model]:
    constructor = getattr(keras.applications, backbone, None)
    if constructor is None or not callable(constructor) or not backbone[:1].isupper():
        known = sorted(n for n in dir(keras.applications) if n[:1].isupper())
        raise ValueError(f"backbone {backbone!r} is not a keras.applications model; known: {known}")
    return constructor


def preprocess_function(backbone: str) -> Callable:
    """``keras.applications.<module>.preprocess_input`` of a backbone (InceptionV3 ->
    ``inception_v3``: [0, 255] -> [-1, 1])."""
    module = _constructor(backbone).__module__.rsplit(".", 1)[-1]
    try:
        return importlib.import_module(f"keras.applications.{module}").preprocess_input
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"backbone {backbone!r}: no keras.applications.{module}.preprocess_input") from exc


def _family(backbone: str) -> str:
    if backbone == "InceptionV3":
        return "inception_v3"
    if re.fullmatch(r"ResNet(50|101|152)(V2)?", backbone):
        return "resnet"
    if backbone.startswith("EfficientNet"):
        return "efficientnet"
    raise ValueError(f"no block rule for backbone {backbone!r}; FT-k is defined for InceptionV3, "
                     f"ResNet50/101/152(V2) and EfficientNet*")


@dataclass(frozen=True)
class Block:
    """One block of a backbone: its name, its layers (in model order) and its output layer."""

    name: str
    layers: tuple[str, ...]

    @property
    def end(self) -> str:
        return self.layers[-1]


def backbone_blocks(base: keras.Model, backbone: str | None = None) -> list[Block]:
    """The blocks of a backbone model, first to last, each with its layer names (the input layer
    excluded). Layers after the last block (pooling) join the last block.

    ``backbone`` (a ``keras.applications`` name) is guessed from ``base.name`` when omitted."""
    backbone = backbone or _guess_backbone(base)
    family = _family(backbone)
    names = [layer.name for layer in base.layers if not isinstance(layer, layers.InputLayer)]
    groups: list[tuple[str, list[str]]] = []
    if family == "inception_v3":
        current: list[str] = []
        ends = {f"mixed{i}" for i in range(11)}
        for name in names:
            current.append(name)
            if name in ends:
                groups.append((name, current))
                current = []
        if len(groups) != 11:
            raise ValueError(f"{base.name}: found {len(groups)} of the 11 'mixedK' block outputs; "
                             f"is it a keras.applications InceptionV3?")
        if current:
            groups[-1][1].extend(current)
    else:
        pattern = re.compile(r"^(conv\d+_block\d+)_" if family == "resnet" else r"^(block\d+[a-z])_")
        stem: list[str] = []
        for name in names:
            match = pattern.match(name)
            if match:
                key = match.group(1)
                if not groups or groups[-1][0] != key:
                    groups.append((key, []))
                groups[-1][1].append(name)
            elif groups:
                groups[-1][1].append(name)  # post_bn / top_conv / pooling: part of the last block
            else:
                stem.append(name)
        if not groups:
            raise ValueError(f"{base.name}: no layer named like {pattern.pattern!r}")
        groups.insert(0, ("stem", stem))
        # a block's output is its last layer in model order; keep blocks contiguous
    return [Block(name, tuple(members)) for name, members in groups]


def _guess_backbone(base: keras.Model) -> str:
    name = base.name.lower()
    if name.startswith("inception_v3"):
        return "InceptionV3"
    match = re.match(r"resnet(50|101|152)(v2)?", name)
    if match:
        return f"ResNet{match.group(1)}{'V2' if match.group(2) else ''}"
    match = re.match(r"efficientnet(v2)?-?(\w+)", name)
    if match:
        return "EfficientNet" + ("V2" if match.group(1) else "") + match.group(2).upper()
    raise ValueError(f"cannot tell the backbone of model {base.name!r}; pass backbone=")


def max_blocks(base: keras.Model, backbone: str | None = None) -> int:
    """Largest k for FT-k (the number of blocks; FT-max = the whole backbone)."""
    return len(backbone_blocks(base, backbone))


def boundary_layer(base: keras.Model, k: int, backbone: str | None = None) -> str | None:
    """Name of the last frozen block's output layer under FT-k (``mixed{10-k}`` for InceptionV3),
    ``None`` when everything is trainable (k = number of blocks)."""
    blocks = backbone_blocks(base, backbone)
    if not 0 <= k <= len(blocks):
        raise ValueError(f"k must be in 0..{len(blocks)} for {base.name} ({len(blocks)} blocks), got {k}")
    if k == len(blocks):
        return None
    return blocks[len(blocks) - 1 - k].end


def frozen_part(base: keras.Model, boundary: str) -> keras.Model:
    """The sub-model ``base.input -> base.get_layer(boundary).output``: every layer needed to
    compute the boundary (its graph ancestors), sharing weights with ``base``."""
    return keras.Model(base.input, base.get_layer(boundary).output, name=f"{base.name}_to_{boundary}")


def trainable_layer_names(base: keras.Model, k: int, backbone: str | None = None) -> list[str]:
    """Layers of ``base`` (model order, input layer excluded) that FT-k makes trainable: all
    layers that are not needed to compute the boundary output (see :func:`boundary_layer`)."""
    names = [layer.name for layer in base.layers if not isinstance(layer, layers.InputLayer)]
    if k == 0:
        return []
    boundary = boundary_layer(base, k, backbone)
    if boundary is None:
        return names
    frozen = {layer.name for layer in frozen_part(base, boundary).layers}
    return [n for n in names if n not in frozen]


def parse_regime(regime: str | int) -> int | str:
    """``"tl"`` -> 0, ``"ft-6"`` / ``"ft6"`` / ``6`` -> 6, ``"full"`` -> ``"full"``."""
    if isinstance(regime, (int, np.integer)):
        if regime < 0:
            raise ValueError(f"regime k must be >= 0, got {regime}")
        return int(regime)
    text = str(regime).strip().lower()
    if text == "tl":
        return 0
    if text == "full":
        return "full"
    match = re.fullmatch(r"ft-?(\d+)", text)
    if not match:
        raise ValueError(f"regime must be 'tl', 'ft-K' (K >= 1) or 'full', got {regime!r}")
    return int(match.group(1))


def regime_name(k: int | str) -> str:
    """0 -> ``"tl"``, 6 -> ``"ft-6"``, ``"full"`` -> ``"full"``."""
    if k == "full":
        return "full"
    return "tl" if int(k) == 0 else f"ft-{int(k)}"


# ------------------------------------------------------------------------------------- model
@keras.saving.register_keras_serializable(package="kerasmt")
class FinetunePreprocess(layers.Layer):
    """Map [0, 1] images to a backbone's input: ``mode="backbone"`` applies the backbone's
    ``preprocess_input`` to ``255 * x``; ``mode="rescale"`` passes [0, 1] through (the report)."""

    def __init__(self, backbone: str = "InceptionV3", mode: str = "backbone", **kwargs: Any):
        super().__init__(**kwargs)
        if mode not in {"backbone", "rescale"}:
            raise ValueError(f"preprocessing mode must be 'backbone' or 'rescale', got {mode!r}")
        self.backbone = str(backbone)
        self.mode = mode
        self._fn = preprocess_function(self.backbone) if mode == "backbone" else None

    def call(self, inputs):
        if self._fn is None:
            return inputs
        return self._fn(inputs * 255.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(backbone=self.backbone, mode=self.mode)
        return config


@model_builder(imagenet=True)
def finetune_model(
    input_shape: Sequence[int] = (299, 299, 3),
    weights: str | os.PathLike | None = "imagenet",
    name: str | None = None,
    *,
    n_classes: int,
    backbone: str = "InceptionV3",
    regime: str | int = "tl",
    units: int = REPORT_HEAD_UNITS,
    dropout: float = REPORT_HEAD_DROPOUT,
    preprocessing: str = "backbone",
    train_batchnorm: bool = False,
) -> keras.Model:
    """The report's transfer-learning network with fresh backbone weights, set to ``regime``.

    Args:
        n_classes: softmax outputs (73 for Beauty, 42 for the grouped set).
        backbone: a ``keras.applications`` name; FT-k needs InceptionV3 (the report's),
            ResNet50/101/152(V2) or EfficientNet*.
        input_shape: ``(H, W, 3)``; the report used 299x299 (InceptionV3's minimum is 75).
        weights: ``"imagenet"`` (downloaded by Keras once), ``None`` (random) or a local weights
            file of the whole model or of the backbone without top (``.weights.h5`` / ``.h5`` /
            ``.keras``). Every call loads them afresh, so each regime starts from the same
            pretrained weights.
        regime: ``"tl"``, ``"ft-k"`` or ``"full"`` (see :func:`unfreeze_blocks`).
        units, dropout: the head's Dense units and dropout rate (report: 512, 0.2).
        preprocessing: ``"backbone"`` (correct for ImageNet weights) or ``"rescale"`` (report).
        train_batchnorm: let BatchNorm scale/offset of unfrozen blocks train (default frozen).
    The backbone is the nested model ``model.get_layer(backbone_name)``; see :func:`base_of`.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {input_shape}")
    minimum = MIN_INPUT_SIZE.get(backbone, 32)
    if min(input_shape[:2]) < minimum:
        raise ValueError(f"input_shape {input_shape} is too small for {backbone}: at least {minimum}x{minimum}")
    k = parse_regime(regime)
    inputs = keras.Input(shape=input_shape, name="image")
    x = FinetunePreprocess(backbone, preprocessing, name="preprocess")(inputs)
    base = _constructor(backbone)(include_top=False, weights=weights, input_shape=input_shape)
    features = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="gap")(features)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(units, activation="relu", name="head_dense")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=name or f"{backbone.lower()}_{regime_name(k)}")
    unfreeze_blocks(model, k, backbone=backbone, train_batchnorm=train_batchnorm)
    return model


def base_of(model: keras.Model) -> keras.Model:
    """The backbone (the one nested ``keras.Model``) of a :func:`finetune_model` or a
    :func:`kerasmt.models.transfer.transfer_model`."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(f"model {model.name!r} has {len(nested)} nested models; expected one backbone")
    return nested[0]


def unfreeze_blocks(
    model: keras.Model,
    k: int | str,
    backbone: str | None = None,
    train_batchnorm: bool = False,
) -> list[str]:
    """Set the backbone of ``model`` (a :func:`finetune_model` or a bare backbone) to regime
    FT-k: the layers of the last ``k`` blocks trainable, all others frozen; ``k=0`` is TL and
    ``"full"`` (or k = number of blocks) makes the whole backbone trainable. BatchNorm layers stay
    frozen unless ``train_batchnorm``. Returns the names of the layers set trainable. The head
    layers are left trainable. Recompile the model afterwards.
    """
    base = base_of(model) if any(isinstance(layer, keras.Model) for layer in model.layers) else model
    k = parse_regime(k) if isinstance(k, str) else int(k)
    if k == "full":
        k = max_blocks(base, backbone)
    names = set(trainable_layer_names(base, int(k), backbone))
    base.trainable = True
    opened: list[str] = []
    for layer in base.layers:
        on = layer.name in names and (train_batchnorm or not isinstance(layer, layers.BatchNormalization))
        layer.trainable = on
        if on:
            opened.append(layer.name)
    if not opened:
        base.trainable = False
    return opened


# ----------------------------------------------------------------------- cached-feature training
def feature_model(model: keras.Model) -> keras.Model:
    """Image -> pooled backbone features (``gap`` output) of a :func:`finetune_model`."""
    return keras.Model(model.input, model.get_layer("gap").output, name=f"{model.name}_features")


def head_model(model: keras.Model) -> keras.Model:
    """Pooled features -> class probabilities: the head of a :func:`finetune_model` as a model of
    its own, sharing its layers (training it trains ``model``'s head)."""
    dim = model.get_layer("gap").output.shape[-1]
    inputs = keras.Input(shape=(int(dim),), name="features")
    x = model.get_layer("head_dropout")(inputs)
    x = model.get_layer("head_dense")(x)
    outputs = model.get_layer("predictions")(x)
    return keras.Model(inputs, outputs, name=f"{model.name}_head")


def split_at_boundary(model: keras.Model, k: int, backbone: str | None = None) -> tuple[keras.Model, keras.Model]:
    """``(bottom, top)`` of a :func:`finetune_model` under FT-k: ``bottom`` maps images to the
    boundary activations (the frozen part, run with ``training=False``), ``top`` maps those to
    class probabilities through the trainable blocks and the head. Both share ``model``'s layers,
    so training ``top`` on cached ``bottom`` outputs trains ``model`` (exactly, without
    augmentation; with a fixed pool of augmented copies otherwise). ``k = 0`` cuts at the pooled
    features (like :func:`feature_model` / :func:`head_model`)."""
    if k == 0:
        return feature_model(model), head_model(model)
    base = base_of(model)
    boundary = boundary_layer(base, int(k), backbone)
    if boundary is None:
        raise ValueError("FT with every block trainable has no frozen part to cache")
    inner_bottom = frozen_part(base, boundary)
    inner_top = keras.Model(base.get_layer(boundary).output, base.output, name=f"{base.name}_from_{boundary}")
    image = keras.Input(shape=model.input_shape[1:], name="image")
    x = model.get_layer("preprocess")(image)
    bottom = keras.Model(image, inner_bottom(x, training=False), name=f"{model.name}_bottom")
    act = keras.Input(shape=inner_bottom.output.shape[1:], name="boundary")
    x = inner_top(act, training=False)
    for name in HEAD_LAYERS:
        x = model.get_layer(name)(x)
    top = keras.Model(act, x, name=f"{model.name}_top")
    return bottom, top


def boundary_shape(model: keras.Model, k: int, backbone: str | None = None) -> tuple[int, ...]:
    """Shape of one cached activation under FT-k (the pooled feature size for k = 0)."""
    if k == 0:
        return tuple(int(s) for s in model.get_layer("gap").output.shape[1:])
    base = base_of(model)
    boundary = boundary_layer(base, int(k), backbone)
    if boundary is None:
        raise ValueError("FT with every block trainable has no frozen part to cache")
    return tuple(int(s) for s in base.get_layer(boundary).output.shape[1:])


def cached_outputs(
    extractor: keras.Model,
    images: Any,
    batch_size: int = 64,
    augment: Callable | None = None,
    copies: int = 0,
    seed: int = 0,
    path: str | os.PathLike | None = None,
) -> Any:
    """Outputs of ``extractor`` (e.g. :func:`feature_model` or the ``bottom`` of
    :func:`split_at_boundary`) for uint8 images ``(N, H, W, C)`` (a NumPy array or a
    :class:`kerasmt.diskarray.DiskArray`): the clean images, then ``copies`` passes through
    ``augment`` (a preprocessing layer taking [0, 1] float batches), so the result has
    ``(1 + copies) * N`` rows in that order.

    ``path``: write the outputs batch by batch into that ``.npy`` file and return it as a
    :class:`~kerasmt.diskarray.DiskArray` (bottleneck features of a large dataset never held
    whole in memory); ``None`` returns a NumPy array."""
    import tensorflow as tf

    from kerasmt import diskarray

    if copies and augment is None:
        raise ValueError("copies > 0 needs an augment callable")
    predict = tf.function(lambda x: extractor(x, training=False), reduce_retracing=True)

    def batches():
        for copy in range(1 + int(copies)):
            ds = diskarray.rows_dataset(images, batch_size)
            ds = ds.map(lambda x: tf.cast(x, tf.float32) / 255.0)
            if copy:
                keras.utils.set_random_seed(seed + copy)
                ds = ds.map(lambda x: augment(x, training=True))
            for batch in ds.prefetch(2):
                yield np.asarray(predict(batch), dtype=np.float32)

    if path is not None:
        return diskarray.save_chunks(path, batches(), (1 + int(copies)) * len(images))
    outputs = list(batches())
    if not outputs:
        return np.zeros((0,) + tuple(int(s) for s in extractor.output.shape[1:]), np.float32)
    return np.concatenate(outputs, axis=0)


# ------------------------------------------------------------------------- training ingredients
@keras.saving.register_keras_serializable(package="kerasmt")
class RandomAffine(layers.Layer):
    """One random affine map per image combining rotation, shifts, shear, zoom and a horizontal
    flip, resampled once (as ``ImageDataGenerator.apply_transform`` does): the report's
    augmentation at a quarter of the cost of chaining four Keras resampling layers.

    Per image: rotation angle uniform in +-``rotation`` degrees, shifts uniform in
    +-``width_shift`` / +-``height_shift`` of the width / height, shear factor (tangent) uniform in
    +-``shear`` along x, zoom factors uniform in [1 - zoom, 1 + zoom] independently per axis, flip
    with probability 1/2; all about the image centre. Float image batches ``(B, H, W, C)``;
    ``training=False`` returns the input unchanged.
    """

    def __init__(self, rotation: float = 40.0, width_shift: float = 0.2, height_shift: float = 0.2,
                 shear: float = 0.2, zoom: float = 0.2, horizontal_flip: bool = True, fill_mode: str = "nearest",
                 interpolation: str = "bilinear", seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        for name, value in (("rotation", rotation), ("width_shift", width_shift), ("height_shift", height_shift),
                            ("shear", shear), ("zoom", zoom)):
            if value < 0:
                raise ValueError(f"RandomAffine: {name} must be >= 0, got {value}")
        if zoom >= 1:
            raise ValueError(f"RandomAffine: zoom must be < 1, got {zoom}")
        self.rotation, self.width_shift, self.height_shift = float(rotation), float(width_shift), float(height_shift)
        self.shear, self.zoom, self.horizontal_flip = float(shear), float(zoom), bool(horizontal_flip)
        self.fill_mode, self.interpolation, self.seed = fill_mode, interpolation, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        from keras import ops

        if not training:
            return images
        shape = ops.shape(images)
        batch = shape[0]
        h = ops.cast(shape[1], "float32")
        w = ops.cast(shape[2], "float32")

        def uniform(low, high):
            return keras.random.uniform((batch,), low, high, seed=self.seed_generator)

        theta = uniform(-self.rotation, self.rotation) * (np.pi / 180.0)
        tx = uniform(-self.width_shift, self.width_shift) * w
        ty = uniform(-self.height_shift, self.height_shift) * h
        shear = uniform(-self.shear, self.shear)
        zx = uniform(1.0 - self.zoom, 1.0 + self.zoom)
        zy = uniform(1.0 - self.zoom, 1.0 + self.zoom)
        flip = ops.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0) if self.horizontal_flip else ops.ones_like(zx)
        cos, sin = ops.cos(theta), ops.sin(theta)
        # output pixel p -> input pixel c + R(theta) Shear(s) Zoom(zx, zy) Flip (p - c) + t
        m00, m01 = cos * zx * flip, (cos * shear - sin) * zy
        m10, m11 = sin * zx * flip, (sin * shear + cos) * zy
        cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
        a2 = cx - m00 * cx - m01 * cy + tx
        b2 = cy - m10 * cx - m11 * cy + ty
        zeros = ops.zeros_like(m00)
        transform = ops.stack([m00, m01, a2, m10, m11, b2, zeros, zeros], axis=1)
        return ops.image.affine_transform(images, transform, interpolation=self.interpolation,
                                          fill_mode=self.fill_mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(rotation=self.rotation, width_shift=self.width_shift, height_shift=self.height_shift,
                      shear=self.shear, zoom=self.zoom, horizontal_flip=self.horizontal_flip,
                      fill_mode=self.fill_mode, interpolation=self.interpolation, seed=self.seed)
        return config


def report_augmentation(
    seed: int | None = None,
    rotation: float = 40.0,
    shift: float = 0.2,
    shear: float = 0.2,
    zoom: float = 0.2,
    horizontal_flip: bool = True,
    fill_mode: str = "nearest",
    fused: bool = True,
) -> keras.Sequential:
    """The report's ``ImageDataGenerator`` augmentation for float batches in [0, 1]: rotation
    +-40 degrees, width/height shifts +-20 %, shear 0.2, zoom +-20 %, horizontal flip,
    ``fill_mode="nearest"``.

    ``fused=True`` (default): one :class:`RandomAffine` map per image, like the generator's own
    combined transform. ``fused=False``: Keras' layers chained (``RandomFlip``, ``RandomRotation``,
    ``RandomTranslation``, ``RandomShear`` (Keras >= 3.6; skipped with a warning before),
    ``RandomZoom``): four resamplings instead of one. The shear is a factor (tangent of the angle)
    along x in [-0.2, 0.2], as Keras 2.1's generator read ``shear_range=0.2`` (radians; later
    versions read degrees, i.e. almost no shear).
    """
    if fused:
        return keras.Sequential([RandomAffine(rotation, shift, shift, shear, zoom, horizontal_flip, fill_mode,
                                              seed=seed, name="affine")], name="report_augmentation")
    step = lambda i: None if seed is None else int(seed) + i  # noqa: E731 - one seed per layer
    steps: list[layers.Layer] = []
    if horizontal_flip:
        steps.append(layers.RandomFlip("horizontal", seed=step(0), name="flip"))
    if rotation:
        steps.append(layers.RandomRotation(rotation / 360.0, fill_mode=fill_mode, seed=step(1), name="rotation"))
    if shift:
        steps.append(layers.RandomTranslation(shift, shift, fill_mode=fill_mode, seed=step(2), name="shift"))
    if shear:
        if hasattr(layers, "RandomShear"):
            steps.append(layers.RandomShear(x_factor=shear, y_factor=0.0, fill_mode=fill_mode, seed=step(3), name="shear"))
        else:  # pragma: no cover - Keras < 3.6
            import warnings

            warnings.warn("keras.layers.RandomShear not available in this Keras; augmentation without shear", stacklevel=2)
    if zoom:
        steps.append(layers.RandomZoom(zoom, zoom, fill_mode=fill_mode, seed=step(4), name="zoom"))
    return keras.Sequential(steps, name="report_augmentation")


def compile_report(model: keras.Model, learning_rate: float = REPORT_LEARNING_RATE, top_k: int = 5) -> keras.Model:
    """Compile with the report's settings: RMSprop(``learning_rate``), categorical cross-entropy on
    integer labels, metrics ``accuracy`` and ``top{top_k}`` (SparseTopKCategoricalAccuracy).
    ``jit_compile=False``: XLA compilation of these large graphs costs more than it saves on CPU."""
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                 keras.metrics.SparseTopKCategoricalAccuracy(k=top_k, name=f"top{top_k}")],
        jit_compile=False,
    )
    return model


def set_batchnorm_momentum(model: keras.Model, momentum: float) -> int:
    """Set the moving-average momentum of every BatchNorm layer (nested models included); returns
    how many were changed. Keras' 0.99 needs hundreds of steps before inference-mode statistics
    are usable: short runs (demos) can use e.g. 0.9."""
    count = 0
    for layer in _all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = float(momentum)
            count += 1
    return count


def recalibrate_batchnorm(model: keras.Model, inputs: np.ndarray, momentum_after: float | None = None) -> None:
    """Set every BatchNorm layer's moving mean/variance to the statistics of ``inputs`` (one
    batch, the model's own input format) by one training-mode forward pass with momentum 0; the
    weights are unchanged. ``momentum_after``: momentum to leave the layers with (default: the one
    they had)."""
    norms = [layer for layer in _all_layers(model) if isinstance(layer, layers.BatchNormalization)]
    before = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        model(inputs, training=True)
    finally:
        for layer, m in zip(norms, before):
            layer.momentum = m if momentum_after is None else float(momentum_after)


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


@model_builder()
def scratch_model(
    input_shape: Sequence[int] = (299, 299, 3),
    weights: str | os.PathLike | None = None,
    name: str | None = None,
    *,
    architecture: str,
    n_classes: int,
    preprocessing: str = "backbone",
) -> keras.Model:
    """A network trained from random weights (report chapter 6.1): ``"InceptionV3"`` or
    ``"ResNet50"`` (``keras.applications`` with ``weights=None, include_top=True``, their own
    top) or ``"SimpleNet"`` (:func:`kerasmt.models.simplenet.simplenet`). Input: images in [0, 1];
    the Keras applications get their own ``preprocess_input`` (``preprocessing="backbone"``) or
    the [0, 1] images (``"rescale"``, the report); SimpleNet always gets [0, 1]."""
    input_shape = tuple(int(s) for s in input_shape)
    label = name or f"scratch_{architecture.lower()}"
    if architecture == "SimpleNet":
        from kerasmt.models.simplenet import simplenet

        return simplenet(input_shape, name=label, n_classes=n_classes)
    if architecture not in {"InceptionV3", "ResNet50"}:
        raise ValueError(f"architecture must be 'InceptionV3', 'ResNet50' or 'SimpleNet', got {architecture!r}")
    minimum = MIN_INPUT_SIZE.get(architecture, 32)
    if min(input_shape[:2]) < minimum:
        raise ValueError(f"input_shape {input_shape} is too small for {architecture}: at least {minimum}x{minimum}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = FinetunePreprocess(architecture, preprocessing, name="preprocess")(inputs)
    net = _constructor(architecture)(include_top=True, weights=None, input_shape=input_shape, classes=n_classes)
    return keras.Model(inputs, net(x), name=label)
