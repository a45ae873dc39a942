"""Load weights by layer name (Matterport's ``load_weights(by_name=True, exclude=[...])``) from
a Keras 2 HDF5 weights file (Matterport's ``mask_rcnn_coco.h5``), a ``.keras`` archive, or a
Keras 3 ``.weights.h5`` read through a model of the architecture that wrote it.

Matterport's COCO file loads into the FPN, RPN and heads (same layer names); the class-specific
layers (:data:`CLASS_SPECIFIC`) are excluded when the number of classes differs, as the report
did. Its ResNet backbone uses Caffe-style names (``res2a_branch2a``, ``bn2a_branch2a``): with
``name_map=matterport_to_keras_resnet`` they map onto the keras.applications ResNet layers
(``conv2_block1_1_conv``, ``conv2_block1_1_bn``).
"""
from __future__ import annotations

import os
import re
import zipfile
from typing import Callable, Iterable

import keras
import numpy as np

#: layers whose shapes depend on the number of classes (Matterport excludes them for a new dataset)
CLASS_SPECIFIC: tuple[str, ...] = ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask")


def _h5():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py ships with keras
        raise ImportError("reading weights files needs h5py (pip install h5py)") from exc
    return h5py


def _named_weights(model: keras.Model) -> dict[str, list[np.ndarray]]:
    return {layer.name: layer.get_weights() for layer in _layers_with_weights(model)}


def read_weights_by_name(path: str | os.PathLike, template: keras.Model | None = None) -> dict[str, list[np.ndarray]]:
    """``{layer name: [arrays in the layer's weight order]}`` of a weights file.

    Keras 2 HDF5 files (Matterport's) store layer names; a ``.keras`` archive is loaded as a model
    (its custom layers must be registered, as kerasmt's are). A Keras 3 ``.weights.h5`` stores no
    layer names, only the writing model's structure: pass ``template``, a model of that
    architecture, to read it (``template.load_weights(path)``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path} not found")
    if path.endswith(".keras"):
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path}: not a .keras archive (zip)")
        return _named_weights(keras.models.load_model(path, compile=False))
    h5py = _h5()
    out: dict[str, list[np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in root.attrs:  # Keras 2 / tf.keras HDF5
            for name in root.attrs["layer_names"]:
                name = name.decode() if isinstance(name, bytes) else str(name)
                group = root[name]
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
                if names:
                    out[name] = [np.asarray(group[n]) for n in names]
            return out
    if template is None:
        raise ValueError(f"{path} is a Keras 3 weights file: it has no layer names. Pass template= (a model of the "
                         f"architecture that saved it), or use the .keras file of that model")
    template.load_weights(path)
    return _named_weights(template)


def _layers_with_weights(model: keras.Model, seen: set | None = None) -> Iterable[keras.layers.Layer]:
    """Layers with weights of ``model`` and its nested models, each once."""
    seen = set() if seen is None else seen
    for layer in model.layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, keras.Model):
            yield from _layers_with_weights(layer, seen)
        elif layer.weights:
            yield layer


def matterport_to_keras_resnet(name: str) -> str:
    """Matterport's ResNet layer name -> keras.applications ResNet (v1) layer name
    (``conv1`` -> ``conv1_conv``, ``bn_conv1`` -> ``conv1_bn``, ``res4b21_branch2c`` ->
    ``conv4_block22_3_conv``); other names unchanged."""
    if name == "conv1":
        return "conv1_conv"
    if name == "bn_conv1":
        return "conv1_bn"
    m = re.fullmatch(r"(res|bn)(\d)([a-z])(\d*)_branch(1|2a|2b|2c)", name)
    if not m:
        return name
    kind, stage, letter, number, branch = m.groups()
    block = (int(number) + 1) if number else (ord(letter) - ord("a") + 1)
    index = {"1": 0, "2a": 1, "2b": 2, "2c": 3}[branch]
    return f"conv{stage}_block{block}_{index}_{'conv' if kind == 'res' else 'bn'}"


def load_weights_by_name(model: keras.Model, path: str | os.PathLike, exclude: Iterable[str] = (),
                         name_map: Callable[[str], str] | None = None, skip_mismatch: bool = True,
                         template: keras.Model | None = None) -> dict:
    """Copy the weights of every layer of ``model`` (nested models included) whose name is in the
    file ``path`` (after ``name_map`` on the file's names) and not in ``exclude`` (names or
    regular expressions). Layers whose weight shapes differ are skipped (``skip_mismatch``) or
    raise. ``template``: see :func:`read_weights_by_name`. Returns ``{"loaded": [...],
    "shape_mismatch": [...], "not_in_file": [...], "excluded": [...], "unused": [...]}``."""
    stored = read_weights_by_name(path, template)
    if name_map is not None:
        stored = {name_map(k): v for k, v in stored.items()}
    patterns = [re.compile(e) for e in exclude]
    report: dict[str, list[str]] = {"loaded": [], "shape_mismatch": [], "not_in_file": [], "excluded": []}
    used = set()
    for layer in _layers_with_weights(model):
        if any(p.fullmatch(layer.name) for p in patterns):
            report["excluded"].append(layer.name)
            continue
        arrays = stored.get(layer.name)
        if arrays is None:
            report["not_in_file"].append(layer.name)
            continue
        used.add(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if len(arrays) != len(shapes) or any(tuple(a.shape) != s for a, s in zip(arrays, shapes)):
            message = (f"layer {layer.name}: file has shapes {[a.shape for a in arrays]}, model expects {shapes}")
            if not skip_mismatch:
                raise ValueError(message + " (exclude it, or skip_mismatch=True)")
            report["shape_mismatch"].append(layer.name)
            continue
        layer.set_weights(arrays)
        report["loaded"].append(layer.name)
    report["unused"] = sorted(set(stored) - used)
    return report
