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


def _decode(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _keras2_groups(root) -> dict[str, list[np.ndarray]]:
    """Layers of a Keras 2 HDF5 weights group (``layer_names`` / ``weight_names`` attributes).

    A nested model (Matterport's ``rpn_model``) is one top-level group whose weight names start
    with its *inner* layers' names (``rpn_conv_shared/kernel:0``): it is split into those layers,
    each recorded as ``"rpn_model/rpn_conv_shared"`` in :data:`NESTED_SOURCE` of the result. A
    wrapper layer (``TimeDistributed``) has one inner prefix and keeps the group's name."""
    out: dict[str, list[np.ndarray]] = {}
    sources: dict[str, str] = {}
    for name in (_decode(n) for n in root.attrs["layer_names"]):
        group = root[name]
        names = [_decode(n) for n in group.attrs.get("weight_names", [])]
        if not names:
            continue
        prefixes: dict[str, list[str]] = {}
        for n in names:
            prefixes.setdefault(n.split("/")[0] if "/" in n else name, []).append(n)
        if len(prefixes) > 1 and name not in prefixes:  # a nested model: one entry per inner layer
            for inner, inner_names in prefixes.items():
                out[inner] = [np.asarray(group[n]) for n in inner_names]
                sources[inner] = f"{name}/{inner}"
        else:
            out[name] = [np.asarray(group[n]) for n in names]
            sources[name] = name
    out[NESTED_SOURCE] = sources  # type: ignore[assignment]
    return out


#: key of :func:`read_weights_by_name`'s result mapping each layer to its group path in the file
NESTED_SOURCE = "__source__"


def read_weights_by_name(path: str | os.PathLike, template: keras.Model | None = None) -> dict[str, list[np.ndarray]]:
    """``{layer name: [arrays in the layer's weight order]}`` of a weights file.

    Keras 2 HDF5 files (Matterport's) store layer names; layers of a nested model group (its
    ``rpn_model``) come out under their own names. A ``.keras`` archive is loaded as a model
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
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in root.attrs:  # Keras 2 / tf.keras HDF5
            out = _keras2_groups(root)
            out.pop(NESTED_SOURCE)
            return out
    if template is None:
        raise ValueError(f"{path} is a Keras 3 weights file: it has no layer names. Pass template= (a model of the "
                         f"architecture that saved it), or use the .keras file of that model")
    template.load_weights(path)
    return _named_weights(template)


def weights_origin(path: str | os.PathLike) -> str | None:
    """``"matterport"`` for a Keras 2 HDF5 file in Matterport's layout (its ``rpn_model`` group or
    its Caffe ResNet names, e.g. ``mask_rcnn_coco.h5``: trained on RGB minus the mean pixel),
    else ``None``."""
    path = os.fspath(path)
    if path.endswith(".keras") or not os.path.isfile(path):
        return None
    h5py = _h5()
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            names = {_decode(n) for n in root.attrs.get("layer_names", [])}
    except OSError:
        return None
    return "matterport" if ("rpn_model" in names or "res2a_branch2a" in names or "bn_conv1" in names) else None


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


#: the parts of a Mask R-CNN by layer name: the rest is the backbone
PARTS: tuple[tuple[str, str], ...] = (("fpn_", "fpn"), ("rpn_", "rpn"), ("mrcnn_", "heads"))


def layer_part(name: str) -> str:
    """``"fpn"``, ``"rpn"``, ``"heads"`` or ``"backbone"`` for a Mask R-CNN layer name."""
    for prefix, part in PARTS:
        if name.startswith(prefix):
            return part
    return "backbone"


def load_weights_by_name(model: keras.Model, path: str | os.PathLike, exclude: Iterable[str] = (),
                         name_map: Callable[[str], str] | None = None, skip_mismatch: bool = True,
                         template: keras.Model | None = None, require: Iterable[str] = ()) -> dict:
    """Copy the weights of every layer of ``model`` (nested models included) whose name is in the
    file ``path`` (after ``name_map`` on the file's names; a nested model group of a Keras 2 file,
    Matterport's ``rpn_model``, is read layer by layer) and not in ``exclude`` (names or regular
    expressions). Layers whose weight shapes differ are skipped (``skip_mismatch``) or raise.
    ``template``: see :func:`read_weights_by_name`. ``require``: parts (``"backbone"``, ``"fpn"``,
    ``"rpn"``, ``"heads"``, see :func:`layer_part`) whose layers must all load: a missing or
    mismatched one raises ``ValueError`` naming them.

    Returns ``{"loaded", "shape_mismatch", "not_in_file", "excluded", "unused"}`` (layer names)
    and ``"layers"``: one row per model layer ``{layer, part, status, reason}`` with status
    ``loaded`` / ``skipped`` (excluded, or a shape mismatch with both shapes) / ``missing``
    (see :func:`load_report_table`)."""
    stored = read_weights_by_name(path, template)
    sources = {k: k for k in stored}
    if not path_is_keras(path) and _is_keras2(path):
        with _h5().File(os.fspath(path), "r") as f:
            sources = _keras2_groups(f["model_weights"] if "model_weights" in f else f)[NESTED_SOURCE]
    if name_map is not None:
        sources = {name_map(k): v for k, v in sources.items()}
        stored = {name_map(k): v for k, v in stored.items()}
    patterns = [re.compile(e) for e in exclude]
    report: dict[str, list] = {"loaded": [], "shape_mismatch": [], "not_in_file": [], "excluded": [], "layers": []}
    used = set()

    def row(layer, status, reason):
        report["layers"].append({"layer": layer.name, "part": layer_part(layer.name), "status": status,
                                 "reason": reason, "file": sources.get(layer.name, "")})

    for layer in _layers_with_weights(model):
        if any(p.fullmatch(layer.name) for p in patterns):
            report["excluded"].append(layer.name)
            row(layer, "skipped", "excluded (class-specific)" if layer.name in CLASS_SPECIFIC else "excluded")
            continue
        arrays = stored.get(layer.name)
        if arrays is None:
            report["not_in_file"].append(layer.name)
            row(layer, "missing", "not in the file")
            continue
        used.add(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if len(arrays) != len(shapes) or any(tuple(a.shape) != s for a, s in zip(arrays, shapes)):
            message = (f"layer {layer.name}: file has shapes {[tuple(a.shape) for a in arrays]}, model expects {shapes}")
            if not skip_mismatch:
                raise ValueError(message + " (exclude it, or skip_mismatch=True)")
            report["shape_mismatch"].append(layer.name)
            reason = "shape mismatch" + (" (class count, expected)" if layer.name in CLASS_SPECIFIC else "")
            row(layer, "skipped", f"{reason}: file {[tuple(a.shape) for a in arrays]}, model {shapes}")
            continue
        layer.set_weights(arrays)
        report["loaded"].append(layer.name)
        row(layer, "loaded", "")
    report["unused"] = sorted(set(stored) - used)
    required = set(require)
    unknown = required - {"backbone", "fpn", "rpn", "heads"}
    if unknown:
        raise ValueError(f"require: unknown parts {sorted(unknown)}; expected among backbone, fpn, rpn, heads")
    bad = [r for r in report["layers"] if r["part"] in required and r["status"] != "loaded"]
    if bad:
        listed = ", ".join(f"{r['layer']} ({r['part']}: {r['reason']})" for r in bad[:12])
        raise ValueError(f"{os.fspath(path)}: {len(bad)} layer(s) of the required parts {sorted(required)} did not "
                         f"load: {listed}{' ...' if len(bad) > 12 else ''}")
    return report


def path_is_keras(path: str | os.PathLike) -> bool:
    return os.fspath(path).endswith(".keras")


def _is_keras2(path: str | os.PathLike) -> bool:
    try:
        with _h5().File(os.fspath(path), "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            return "layer_names" in root.attrs
    except OSError:
        return False


def load_report_table(report: dict):
    """The per-layer rows of a :func:`load_weights_by_name` report as a DataFrame, and a summary
    per part and status (``load_report_table(r)[1]``)."""
    import pandas as pd

    rows = pd.DataFrame(report["layers"], columns=["layer", "part", "status", "reason", "file"])
    summary = rows.pivot_table(index="part", columns="status", values="layer", aggfunc="count", fill_value=0)
    return rows, summary


def format_load_report(report: dict, show_loaded: bool = False, max_lines: int | None = None) -> str:
    """A printable layer report: counts per part and status, then every skipped or missing layer
    with its reason (and every loaded one with ``show_loaded``), at most ``max_lines`` of them."""
    rows, summary = load_report_table(report)
    lines = ["layers per part and status:", summary.to_string(), ""]
    shown = rows if show_loaded else rows[rows["status"] != "loaded"]
    if max_lines is not None and len(shown) > max_lines:
        lines.append(f"(first {max_lines} of {len(shown)} layers listed)")
        shown = shown.iloc[:max_lines]
    for r in shown.itertuples():
        src = f" <- {r.file}" if r.file and r.file != r.layer else ""
        lines.append(f"{r.status:8s} {r.part:8s} {r.layer}{src}{': ' + r.reason if r.reason else ''}")
    if report.get("unused"):
        lines.append(f"in the file but not in the model ({len(report['unused'])}): {', '.join(report['unused'][:10])}"
                     f"{' ...' if len(report['unused']) > 10 else ''}")
    return "\n".join(lines)


def load_coco_weights(model: keras.Model, path: str | os.PathLike) -> dict:
    """Load Matterport's COCO weights (``mask_rcnn_coco.h5``) as the report did: every layer by
    name (backbone names mapped by :func:`matterport_to_keras_resnet`), the class-specific layers
    skipped when the class count differs; every backbone, FPN and RPN layer must load.

    Matterport trained on RGB minus the mean pixel: ``model`` must be built with
    ``preprocessing="matterport"`` (:class:`~kerasmt.models.maskrcnn.config.MaskRCNNConfig`), else
    ``ValueError``. The backbone's BatchNorm epsilon is set to Matterport's 1e-3 (keras.applications
    uses 1.001e-5)."""
    config = getattr(model, "config", None)
    if config is not None and config.resolved_preprocessing() != "matterport":
        raise ValueError(f"{os.fspath(path)}: Matterport's COCO weights were trained on RGB minus the mean pixel; "
                         f"build the model with preprocessing='matterport' (it has {config.preprocessing!r} -> "
                         f"{config.resolved_preprocessing()!r})")
    report = load_weights_by_name(model, path, exclude=(), name_map=matterport_to_keras_resnet, skip_mismatch=True,
                                  require=("backbone", "fpn", "rpn"))
    backbone = getattr(model, "backbone", None)
    if backbone is not None:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.epsilon = 1e-3
    return report
