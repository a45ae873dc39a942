"""Saved models that take raw images and carry their label names.

A study trains on preprocessed batches (e.g. 32x32 grey in [0, 1]) for speed; for use on new photos
it saves a *raw-image model*: the trained network wrapped as

    uint8 image (any size, RGB) -> RawImagePreprocess -> trained network -> ModelInfo -> {task: output}

:class:`RawImagePreprocess` repeats :func:`kerasmt.pipeline.decode_image`'s steps (grey conversion,
stretch or letterbox resize with antialiasing, rounding to uint8 levels) and scales to [0, 1]; a
backbone's ``preprocess_input`` is already inside the trained networks. Logit outputs get a softmax,
so every classification output is a probability. :class:`ModelInfo` stores the study, the tasks and
their label names in the model's config, so they round-trip through ``.keras`` files::

    model = raw_image_model(trained, tasks=[task_spec("race", "classes", labels)], study="fairface")
    model.save("race.predict.keras")
    keras.models.load_model("race.predict.keras").predict(uint8_batch)   # {"race": (N, 7)}
    model_info(model)                                                     # {"study": ..., "tasks": [...]}

Task kinds: ``"classes"`` (probabilities over ``labels``), ``"binary"`` (probability of
``labels[1]``), ``"regression"`` (a value in ``unit``) and ``"mask"`` (per-pixel probabilities over
``labels`` at the model's resolution; :mod:`kerasmt.prediction` maps them back to the photo).
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import tensorflow as tf

KINDS = ("classes", "binary", "regression", "mask")
RESIZE_MODES = ("stretch", "pad")
INFO_LAYER = "kerasmt_info"
#: suffix of the raw-image models the studies save next to their training checkpoints
SUFFIX = ".predict.keras"


@keras.saving.register_keras_serializable(package="kerasmt")
class RawImagePreprocess(keras.layers.Layer):
    """Raw images (uint8 or float in [0, 255], any size, RGB or grey) -> the training input:
    ``image_size`` by ``resize`` ("stretch" or "pad" = letterbox), ``channels`` (1 = grey), rounded
    to uint8 levels as the training pipeline stores them, scaled to [0, 1]."""

    def __init__(self, image_size: Sequence[int], channels: int = 3, resize: str = "stretch", **kwargs: Any):
        super().__init__(**kwargs)
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        if int(channels) not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.channels = int(channels)
        self.resize = resize

    def call(self, images: Any) -> Any:
        x = tf.cast(images, tf.float32)
        if x.shape[-1] == 1 and self.channels == 3:
            x = tf.image.grayscale_to_rgb(x)
        elif x.shape[-1] != 1 and self.channels == 1:
            x = tf.round(tf.image.rgb_to_grayscale(x[..., :3]))  # decoders give integer grey levels
        h, w = self.image_size
        if self.resize == "stretch":
            x = tf.image.resize(x, (h, w), method="bilinear", antialias=True)
        else:
            x = tf.image.resize_with_pad(x, h, w, method="bilinear", antialias=True)
        return tf.clip_by_value(tf.round(x), 0.0, 255.0) / 255.0

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        return (input_shape[0], *self.image_size, self.channels)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(image_size=list(self.image_size), channels=self.channels, resize=self.resize)
        return config


@keras.saving.register_keras_serializable(package="kerasmt")
class ModelInfo(keras.layers.Layer):
    """Identity on the model's output dict; its config holds the study, the tasks and their labels."""

    def __init__(self, info: Mapping[str, Any], **kwargs: Any):
        kwargs.setdefault("name", INFO_LAYER)
        super().__init__(**kwargs)
        self.info = check_info(info)

    def call(self, outputs: Any) -> Any:
        return dict(outputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(info=copy.deepcopy(self.info))
        return config


def task_spec(name: str, kind: str, labels: Sequence[str] | None = None, *, from_logits: bool = False,
              unit: str | None = None, top_k: int | None = None) -> dict[str, Any]:
    """One output of a raw-image model (see the module docstring for the kinds). ``from_logits``: the
    trained output is logits (a softmax is added); ``top_k``: report the k most likely classes."""
    spec: dict[str, Any] = {"name": str(name), "kind": kind, "labels": [str(v) for v in labels or []]}
    if from_logits:
        spec["from_logits"] = True
    if unit:
        spec["unit"] = str(unit)
    if top_k:
        spec["top_k"] = int(top_k)
    return spec


def check_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a model-info dict (``study``, ``tasks``, ``resize``); errors name the bad entry."""
    info = copy.deepcopy(dict(info))
    tasks = info.get("tasks")
    if not tasks:
        raise ValueError("model info needs a non-empty 'tasks' list")
    for t in tasks:
        if t.get("kind") not in KINDS:
            raise ValueError(f"task {t.get('name')!r}: kind must be one of {KINDS}, got {t.get('kind')!r}")
        if t["kind"] in ("classes", "binary", "mask") and len(t.get("labels") or []) < 2:
            raise ValueError(f"task {t['name']!r} ({t['kind']}) needs at least two label names")
    return info


def _named_outputs(model: keras.Model, outputs: Any) -> dict[str, Any]:
    if isinstance(outputs, Mapping):
        return dict(outputs)
    if isinstance(outputs, (list, tuple)):
        return dict(zip(model.output_names, outputs))
    return {model.output_names[0]: outputs}


def raw_image_model(model: keras.Model, tasks: Sequence[Mapping[str, Any]], study: str,
                    resize: str = "stretch", name: str | None = None, **extra: Any) -> keras.Model:
    """Wrap a trained single-input image model so it takes raw uint8 RGB images of any size.

    ``tasks`` (see :func:`task_spec`) name the outputs to keep, in order; each must be an output of
    ``model`` (a single-output model's output takes the one task's name). The input size and channels
    are read from ``model``; ``resize`` is how the study resized its training images. ``extra``
    entries (JSON-serialisable) are stored in the model info too.
    """
    shape = model.inputs[0].shape
    size, channels = (int(shape[1]), int(shape[2])), int(shape[3])
    raw = keras.Input((None, None, 3), dtype="uint8", name="image")
    x = RawImagePreprocess(size, channels, resize, name="raw_image_preprocess")(raw)
    outputs = _named_outputs(model, model(x))
    if len(outputs) == 1 and len(tasks) == 1:
        outputs = {tasks[0]["name"]: next(iter(outputs.values()))}
    kept = {}
    for t in tasks:
        if t["name"] not in outputs:
            raise ValueError(f"{model.name}: no output {t['name']!r}; outputs: {sorted(outputs)}")
        y = outputs[t["name"]]
        if t.get("from_logits"):
            y = keras.layers.Softmax(name=f"{t['name']}_probabilities")(y)
        kept[t["name"]] = y
    info = {"study": study, "model": model.name, "image_size": list(size), "channels": channels,
            "resize": resize, "tasks": [dict(t) for t in tasks], **extra}
    named = ModelInfo(info)(kept)
    return keras.Model(raw, named, name=name or f"{model.name}_raw")


def save_raw_image_model(model: keras.Model, path: str | os.PathLike, tasks: Sequence[Mapping[str, Any]],
                         study: str, resize: str = "stretch", **extra: Any) -> Path:
    """:func:`raw_image_model` saved (uncompiled) to ``path`` (``.keras``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw_image_model(model, tasks, study, resize, **extra).save(path)
    return path


def predict_path(checkpoint: str | os.PathLike) -> Path:
    """``models/<name>.keras`` -> ``models/<name>.predict.keras`` (where the raw-image model goes)."""
    checkpoint = Path(checkpoint)
    stem = checkpoint.name[: -len(".keras")] if checkpoint.name.endswith(".keras") else checkpoint.name
    return checkpoint.with_name(stem + SUFFIX)


def model_info(model: keras.Model) -> dict[str, Any] | None:
    """The stored study / tasks / labels of a raw-image model (None for other models)."""
    for layer in model.layers:
        if isinstance(layer, ModelInfo):
            return copy.deepcopy(layer.info)
    return None
