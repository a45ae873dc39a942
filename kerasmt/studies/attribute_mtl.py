"""The attribute multi-task study (seed 000, Problem 2): the report's protocol and numbers, and the
steps the notebook runs.

Six traits of a person crop (gender, torso clothing type and colour, leg clothing type and colour,
luggage) from one ResNet v2 with six heads (:func:`kerasmt.models.resnet.simple_resnet_v2`,
518,190 parameters), trained with a masked cross-entropy that skips missing labels; then the
report's unbuilt idea, a segmentation decoder on the shared latent map trained jointly on the part
masks (:func:`kerasmt.models.segmentation.add_mask_decoder`)::

    from kerasmt.studies import attribute_mtl as study
    data = study.load_data("/data/attributes")        # or None: the synthetic dataset
    mtl = study.train("mtl", data, epochs=60, out_dir="runs/attr")
    seg = study.train("mtl_seg", data, epochs=60, out_dir="runs/attr")
    study.comparison_table({"mtl": mtl, "mtl_seg": seg}, data)

The report states neither optimiser, batch size nor epochs for this problem; the study uses Adam
(1e-3), batch 32 and a fixed number of epochs (the notebook's ``EPOCHS``), evaluating the final
weights on the test set. The default configuration is the report's: no class weights and no L2
penalty (``weight_decay=0``); class weights and L2 are an improvement trained as a second row.
Test accuracy is computed on labelled rows; macro-F1 is :data:`kerasmt.metrics.MACRO_F1_DEFINITION`
(the classes present in the truth or the predictions, what the report's classification reports
show as "macro avg"), in the tables and in the printed classification reports alike. The majority
baseline predicts the *training* split's most frequent class.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerasmt import pipeline
from kerasmt.augment import PairedAugmentation, augment_pair, report_augmentation
from kerasmt.datasets import person_attributes as pa
from kerasmt.distribute import build_in_scope
from kerasmt.metrics import (MACRO_F1_DEFINITION, accuracy_from_confusion, confusion, macro_f1, majority_accuracy,
                             majority_baseline_accuracy, mask_iou, present_classes)
from kerasmt.models.resnet import simple_resnet_v2
from kerasmt.models.segmentation import MASK_OUTPUT, add_mask_decoder, compile_joint
from kerasmt.training import fit
from kerasmt.utils import set_seed

TASKS = pa.TASKS
#: the two networks compared
MODELS: dict[str, str] = {
    "mtl": "simple_resnet_v2: six heads (the report's network)",
    "mtl_seg": "simple_resnet_v2 + segmentation decoder on the latent map, trained jointly",
}
#: test accuracies of the report's classification reports (196 test images)
REPORT_TEST_ACCURACY: dict[str, float] = {
    "gender": 0.58, "torso_type": 0.53, "torso_colour": 0.36, "leg_type": 0.73, "leg_colour": 0.53, "luggage": 0.57,
}
#: "macro avg" F1 of the report's classification reports
REPORT_TEST_MACRO_F1: dict[str, float] = {
    "gender": 0.57, "torso_type": 0.51, "torso_colour": 0.22, "leg_type": 0.71, "leg_colour": 0.19, "luggage": 0.48,
}
#: majority-class rate of the report's test set per task (largest "support" of its classification
#: reports / 196): its torso-type (0.53) and luggage (0.57) accuracies are below these
REPORT_TEST_MAJORITY: dict[str, float] = {
    "gender": 106 / 196, "torso_type": 121 / 196, "torso_colour": 51 / 196, "leg_type": 114 / 196,
    "leg_colour": 69 / 196, "luggage": 135 / 196,
}
#: L2 on the convolution kernels of the improved configuration (the report had none)
IMPROVED_WEIGHT_DECAY = 1e-4
#: the report's model summary totals
REPORT_PARAMS: dict[str, int] = {"total": 518_190, "trainable": 516_734, "non_trainable": 1_456}
#: the report's split sizes (validation = 10 % of the 520 training images)
REPORT_SPLIT: dict[str, int] = {"train": 468, "val": 52, "test": 196}
VAL_FRACTION = 0.1
#: the imbalanced colour tasks that get class weights
COLOUR_TASKS: tuple[str, ...] = ("torso_colour", "leg_colour")

#: the report's appendix, one layer a line: name, type, output shape, parameters, inputs
_APPENDIX = """
img InputLayer 100x60x3 0 -
conv2d_106 Conv2D 100x60x8 224 img
batch_normalization_94 BatchNormalization 100x60x8 32 conv2d_106
activation_94 Activation 100x60x8 0 batch_normalization_94
conv2d_107 Conv2D 100x60x8 72 activation_94
batch_normalization_95 BatchNormalization 100x60x8 32 conv2d_107
activation_95 Activation 100x60x8 0 batch_normalization_95
conv2d_108 Conv2D 100x60x8 584 activation_95
batch_normalization_96 BatchNormalization 100x60x8 32 conv2d_108
activation_96 Activation 100x60x8 0 batch_normalization_96
conv2d_110 Conv2D 100x60x32 288 activation_94
conv2d_109 Conv2D 100x60x32 288 activation_96
add_30 Add 100x60x32 0 conv2d_110,conv2d_109
batch_normalization_97 BatchNormalization 100x60x32 128 add_30
activation_97 Activation 100x60x32 0 batch_normalization_97
conv2d_111 Conv2D 100x60x8 264 activation_97
batch_normalization_98 BatchNormalization 100x60x8 32 conv2d_111
activation_98 Activation 100x60x8 0 batch_normalization_98
conv2d_112 Conv2D 100x60x8 584 activation_98
batch_normalization_99 BatchNormalization 100x60x8 32 conv2d_112
activation_99 Activation 100x60x8 0 batch_normalization_99
conv2d_113 Conv2D 100x60x32 288 activation_99
add_31 Add 100x60x32 0 add_30,conv2d_113
batch_normalization_100 BatchNormalization 100x60x32 128 add_31
activation_100 Activation 100x60x32 0 batch_normalization_100
conv2d_114 Conv2D 100x60x8 264 activation_100
batch_normalization_101 BatchNormalization 100x60x8 32 conv2d_114
activation_101 Activation 100x60x8 0 batch_normalization_101
conv2d_115 Conv2D 100x60x8 584 activation_101
batch_normalization_102 BatchNormalization 100x60x8 32 conv2d_115
activation_102 Activation 100x60x8 0 batch_normalization_102
conv2d_116 Conv2D 100x60x32 288 activation_102
add_32 Add 100x60x32 0 add_31,conv2d_116
batch_normalization_103 BatchNormalization 100x60x32 128 add_32
activation_103 Activation 100x60x32 0 batch_normalization_103
conv2d_117 Conv2D 50x30x16 528 activation_103
batch_normalization_104 BatchNormalization 50x30x16 64 conv2d_117
activation_104 Activation 50x30x16 0 batch_normalization_104
conv2d_118 Conv2D 50x30x16 2320 activation_104
batch_normalization_105 BatchNormalization 50x30x16 64 conv2d_118
activation_105 Activation 50x30x16 0 batch_normalization_105
conv2d_120 Conv2D 50x30x32 1056 add_32
conv2d_119 Conv2D 50x30x32 544 activation_105
add_33 Add 50x30x32 0 conv2d_120,conv2d_119
batch_normalization_106 BatchNormalization 50x30x32 128 add_33
activation_106 Activation 50x30x32 0 batch_normalization_106
conv2d_121 Conv2D 50x30x16 528 activation_106
batch_normalization_107 BatchNormalization 50x30x16 64 conv2d_121
activation_107 Activation 50x30x16 0 batch_normalization_107
conv2d_122 Conv2D 50x30x16 2320 activation_107
batch_normalization_108 BatchNormalization 50x30x16 64 conv2d_122
activation_108 Activation 50x30x16 0 batch_normalization_108
conv2d_123 Conv2D 50x30x32 544 activation_108
add_34 Add 50x30x32 0 add_33,conv2d_123
batch_normalization_109 BatchNormalization 50x30x32 128 add_34
activation_109 Activation 50x30x32 0 batch_normalization_109
conv2d_124 Conv2D 50x30x16 528 activation_109
batch_normalization_110 BatchNormalization 50x30x16 64 conv2d_124
activation_110 Activation 50x30x16 0 batch_normalization_110
conv2d_125 Conv2D 50x30x16 2320 activation_110
batch_normalization_111 BatchNormalization 50x30x16 64 conv2d_125
activation_111 Activation 50x30x16 0 batch_normalization_111
conv2d_126 Conv2D 50x30x32 544 activation_111
add_35 Add 50x30x32 0 add_34,conv2d_126
batch_normalization_112 BatchNormalization 50x30x32 128 add_35
activation_112 Activation 50x30x32 0 batch_normalization_112
conv2d_127 Conv2D 25x15x32 1056 activation_112
batch_normalization_113 BatchNormalization 25x15x32 128 conv2d_127
activation_113 Activation 25x15x32 0 batch_normalization_113
conv2d_128 Conv2D 25x15x32 9248 activation_113
batch_normalization_114 BatchNormalization 25x15x32 128 conv2d_128
activation_114 Activation 25x15x32 0 batch_normalization_114
conv2d_130 Conv2D 25x15x64 2112 add_35
conv2d_129 Conv2D 25x15x64 2112 activation_114
add_36 Add 25x15x64 0 conv2d_130,conv2d_129
batch_normalization_115 BatchNormalization 25x15x64 256 add_36
activation_115 Activation 25x15x64 0 batch_normalization_115
conv2d_131 Conv2D 25x15x32 2080 activation_115
batch_normalization_116 BatchNormalization 25x15x32 128 conv2d_131
activation_116 Activation 25x15x32 0 batch_normalization_116
conv2d_132 Conv2D 25x15x32 9248 activation_116
batch_normalization_117 BatchNormalization 25x15x32 128 conv2d_132
activation_117 Activation 25x15x32 0 batch_normalization_117
conv2d_133 Conv2D 25x15x64 2112 activation_117
add_37 Add 25x15x64 0 add_36,conv2d_133
batch_normalization_118 BatchNormalization 25x15x64 256 add_37
activation_118 Activation 25x15x64 0 batch_normalization_118
conv2d_134 Conv2D 25x15x32 2080 activation_118
batch_normalization_119 BatchNormalization 25x15x32 128 conv2d_134
activation_119 Activation 25x15x32 0 batch_normalization_119
conv2d_135 Conv2D 25x15x32 9248 activation_119
batch_normalization_120 BatchNormalization 25x15x32 128 conv2d_135
activation_120 Activation 25x15x32 0 batch_normalization_120
conv2d_136 Conv2D 25x15x64 2112 activation_120
add_38 Add 25x15x64 0 add_37,conv2d_136
batch_normalization_121 BatchNormalization 25x15x64 256 add_38
activation_121 Activation 25x15x64 0 batch_normalization_121
average_pooling2d_4 AveragePooling2D 6x3x64 0 activation_121
flatten_4 Flatten 1152 0 average_pooling2d_4
pre-gender-1 Dense 64 73792 flatten_4
pre-torso_type-1 Dense 64 73792 flatten_4
pre-torso_colour-1 Dense 64 73792 flatten_4
pre-leg_type-1 Dense 64 73792 flatten_4
pre-leg_colour-1 Dense 64 73792 flatten_4
pre-luggage-1 Dense 64 73792 flatten_4
pre-gender-2 Dense 32 2080 pre-gender-1
pre-torso_type-2 Dense 32 2080 pre-torso_type-1
pre-torso_colour-2 Dense 32 2080 pre-torso_colour-1
pre-leg_type-2 Dense 32 2080 pre-leg_type-1
pre-leg_colour-2 Dense 32 2080 pre-leg_colour-1
pre-luggage-2 Dense 32 2080 pre-luggage-1
pre-gender-3 Dense 16 528 pre-gender-2
pre-torso_type-3 Dense 16 528 pre-torso_type-2
pre-torso_colour-3 Dense 16 528 pre-torso_colour-2
pre-leg_type-3 Dense 16 528 pre-leg_type-2
pre-leg_colour-3 Dense 16 528 pre-leg_colour-2
pre-luggage-3 Dense 16 528 pre-luggage-2
gender Dense 2 34 pre-gender-3
torso_type Dense 2 34 pre-torso_type-3
torso_colour Dense 11 187 pre-torso_colour-3
leg_type Dense 2 34 pre-leg_type-3
leg_colour Dense 11 187 pre-leg_colour-3
luggage Dense 2 34 pre-luggage-3
"""


def report_appendix() -> pd.DataFrame:
    """The report's "simple_resnet_v2" summary as a frame (123 layers: name, type, output shape
    without batch, parameters, input layer names), in the report's order."""
    rows = []
    for line in _APPENDIX.strip().splitlines():
        name, kind, shape, params, inputs = line.split()
        rows.append({
            "name": name,
            "type": kind,
            "shape": tuple(int(v) for v in shape.split("x")),
            "params": int(params),
            "inputs": [] if inputs == "-" else inputs.split(","),
        })
    return pd.DataFrame(rows)


def _inbound(layer: keras.layers.Layer) -> list[str]:
    """Names of the layers feeding ``layer`` (first call)."""
    if not layer._inbound_nodes:
        return []
    return [t._keras_history.operation.name for t in layer._inbound_nodes[0].input_tensors]


def compare_with_appendix(model: keras.Model) -> pd.DataFrame:
    """Layer-by-layer comparison of ``model`` with the report's appendix.

    Trunk layers (the report's names are Keras' automatic ones) are paired in order; head layers
    (``pre-<task>-<i>`` and the task outputs) by name. For each pair: type, output shape, parameter
    count and whether the inputs are the paired layers of the report's inputs.
    """
    report = report_appendix()
    ours = {layer.name: layer for layer in model.layers}
    head_names = set(report["name"][report["name"].str.startswith("pre-") | report["name"].isin(TASKS)])
    trunk = [layer for layer in model.layers if layer.name not in head_names]
    pairs: dict[str, str] = {}
    for i, name in enumerate(report["name"]):
        if name in head_names:
            pairs[name] = name if name in ours else ""
        else:
            k = int((~report["name"][:i].isin(head_names)).sum())
            pairs[name] = trunk[k].name if k < len(trunk) else ""
    rows = []
    for row in report.itertuples(index=False):
        layer = ours.get(pairs[row.name])
        if layer is None:
            rows.append({"report": row.name, "ours": "", "type": row.type, "shape": row.shape, "params": row.params,
                         "match": False})
            continue
        shape = tuple(layer.output.shape[1:])
        inputs_ok = _inbound(layer) == [pairs.get(n, "") for n in row.inputs]
        match = type(layer).__name__ == row.type and shape == row.shape and layer.count_params() == row.params and inputs_ok
        rows.append({"report": row.name, "ours": layer.name, "type": type(layer).__name__, "shape": shape,
                     "params": int(layer.count_params()), "match": bool(match)})
    return pd.DataFrame(rows)


def param_table(models: Mapping[str, keras.Model] | None = None) -> pd.DataFrame:
    """Total / trainable / non-trainable parameters of the networks beside the report's."""
    models = dict(models or {})
    if not models:
        base = simple_resnet_v2()
        models = {"mtl": base, "mtl_seg": add_mask_decoder(base)}
    rows = {}
    for name, model in models.items():
        non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
        rows[name] = {"total": int(model.count_params()), "trainable": int(model.count_params()) - non_trainable,
                      "non_trainable": non_trainable}
    rows["report"] = dict(REPORT_PARAMS)
    return pd.DataFrame(rows).T


# ------------------------------------------------------------------------------------------ data
def validation_split(n: int, fraction: float = VAL_FRACTION, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random ``(train, validation)`` row indices; ``round(fraction * n)`` rows (at least one
    when ``n > 1``) go to validation (520 -> 468 / 52, the report's split)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    n_val = int(round(fraction * n))
    if fraction > 0 and n > 1:
        n_val = max(1, n_val)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass
class AttributeData:
    """Manifests, decoded 100x60 RGB ``uint8`` images and ``int8`` mask label maps of the three
    splits (label maps are -1 where an image has no mask: every test image)."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    x_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    m_train: np.ndarray
    m_val: np.ndarray
    m_test: np.ndarray
    mask_classes: tuple[str, ...]
    root: Path
    synthetic: bool

    def split(self, name: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """``(manifest, images, label maps)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in {"train", "val", "test"}:
            raise ValueError(f"unknown split {name!r}; expected 'train', 'val' or 'test'")
        return getattr(self, name), getattr(self, f"x_{name}"), getattr(self, f"m_{name}")

    def labels(self, name: str) -> dict[str, np.ndarray]:
        """``{task: int32 labels}`` of a split (-1 = missing)."""
        manifest = self.split(name)[0]
        return {task: manifest[task].to_numpy(dtype=np.int32) for task in TASKS}

    def dataset(
        self,
        name: str,
        batch_size: int = 32,
        masks: bool = False,
        augment: PairedAugmentation | None = None,
        shuffle: bool | None = None,
        seed: int = 0,
    ) -> tf.data.Dataset:
        """Batches ``(images, {task: labels[, "mask": label maps]})`` of a split; the training
        split shuffles by default."""
        manifest, x, m = self.split(name)
        return pipeline.segmentation_dataset(
            x, self.labels(name), m if masks else None, batch_size=batch_size,
            shuffle=(name == "train") if shuffle is None else shuffle, seed=seed, augment=augment,
            mask_output=MASK_OUTPUT, n_classes=pa.N_CLASSES, n_mask_classes=len(self.mask_classes),
        )

    def describe(self) -> pd.DataFrame:
        """Per split: images, images with masks, missing labels and majority baseline per task."""
        rows = []
        for name in ("train", "val", "test"):
            manifest, _, m = self.split(name)
            row: dict = {"images": len(manifest), "with_mask": int((m.reshape(len(m), -1)[:, 0] >= 0).sum()) if len(m) else 0}
            for task in TASKS:
                row[f"missing {task}"] = int((manifest[task] < 0).sum())
            for task in TASKS:
                row[f"majority {task}"] = round(majority_accuracy(manifest[task].to_numpy()), 3)
            rows.append(pd.Series(row, name=name))
        return pd.DataFrame(rows).T


def load_data(
    data_dir: str | Path | None = None,
    n_train: int = 520,
    n_test: int = 196,
    seed: int = 0,
    val_fraction: float = VAL_FRACTION,
    merge_skin: bool = False,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    missing_masks: str = "error",
) -> AttributeData:
    """Read the dataset (``data_dir``, or the cached synthetic one when ``None``), split 10 % of the
    training images off for validation (seeded), and decode every image and mask once,
    letterboxed to 100x60.

    ``merge_skin`` folds the three skin parts into one (7 mask classes instead of 9). ``limit``
    keeps a seeded subset of ``limit`` training and ``limit // 2`` test images (smoke runs).
    ``cache_dir`` keeps the decoded arrays as ``.npy`` files. ``missing_masks="skip"`` trains
    images whose mask files are missing without masks (see :func:`kerasmt.datasets.person_attributes.load`).
    """
    synthetic = data_dir is None
    root = pa.synthetic_root(n_train, n_test, seed) if synthetic else Path(data_dir)
    full = pa.load(root, "train", missing_masks=missing_masks)
    test = pa.load(root, "test")
    if limit:
        full = full.sample(n=min(limit, len(full)), random_state=seed).sort_index().reset_index(drop=True)
        test = test.sample(n=min(max(limit // 2, 8), len(test)), random_state=seed).sort_index().reset_index(drop=True)
    x_full = pipeline.load_images(full["path"].tolist(), pa.IMAGE_SIZE, 3, resize="pad", cache_dir=cache_dir)
    x_test = pipeline.load_images(test["path"].tolist(), pa.IMAGE_SIZE, 3, resize="pad", cache_dir=cache_dir)
    m_full = pipeline.load_masks(pa.mask_paths(full), pa.IMAGE_SIZE, resize="pad", cache_dir=cache_dir)
    m_test = pipeline.load_masks(pa.mask_paths(test), pa.IMAGE_SIZE, resize="pad", cache_dir=cache_dir)
    classes = pa.MASK_CLASSES
    if merge_skin:
        m_full, m_test, classes = pa.merge_skin(m_full), pa.merge_skin(m_test), pa.MASK_CLASSES_MERGED
    tr, va = validation_split(len(full), val_fraction, seed)
    return AttributeData(
        train=full.iloc[tr].reset_index(drop=True), val=full.iloc[va].reset_index(drop=True), test=test,
        x_train=x_full[tr], x_val=x_full[va], x_test=x_test, m_train=m_full[tr], m_val=m_full[va], m_test=m_test,
        mask_classes=tuple(classes), root=Path(root), synthetic=synthetic,
    )


def class_weights(
    manifest: pd.DataFrame, tasks: Sequence[str] = COLOUR_TASKS, cap: float = 10.0
) -> dict[str, list[float]]:
    """"Balanced" class weights ``n / (k * count_c)`` per task over labelled rows, clipped to
    ``[1 / cap, cap]``; a class absent from ``manifest`` gets 1 (it never occurs in a batch)."""
    out = {}
    for task in tasks:
        codes = manifest[task].to_numpy()
        codes = codes[codes >= 0]
        k = pa.N_CLASSES[task]
        counts = np.bincount(codes, minlength=k)[:k].astype(float)
        weights = np.where(counts > 0, len(codes) / (k * np.maximum(counts, 1)), 1.0)
        out[task] = [round(float(w), 4) for w in np.clip(weights, 1.0 / cap, cap)]
    return out


def class_weight_table(weights: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """Class weights as a frame (rows: class names, columns: tasks)."""
    return pd.DataFrame({task: pd.Series(w, index=pa.LABELS[task]) for task, w in weights.items()})


# -------------------------------------------------------------------------------------- training
def build_model(
    kind: str,
    n_mask_classes: int = 9,
    decoder_filters: Sequence[int] = (32, 16, 8),
    bn_momentum: float = 0.99,
    weight_decay: float = 0.0,
) -> keras.Model:
    """``"mtl"``: the report's network; ``"mtl_seg"``: the same with a segmentation decoder on its
    latent map (output ``"mask"``, ``n_mask_classes`` logits per pixel). ``weight_decay``: L2 on
    the convolution kernels (0, the report's; :data:`IMPROVED_WEIGHT_DECAY` in the improved run)."""
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; expected one of {list(MODELS)}")
    model = simple_resnet_v2(tasks=pa.N_CLASSES, bn_momentum=bn_momentum, weight_decay=weight_decay)
    if kind == "mtl_seg":
        model = add_mask_decoder(model, n_mask_classes, filters=decoder_filters, name="simple_resnet_v2_seg")
    return model


def learning_rate_schedule(
    learning_rate: float, schedule: str, n_train: int, batch_size: int, epochs: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """``"constant"``: ``learning_rate``; ``"cosine"``: linear warm-up from ``learning_rate / 10``
    over the first epoch, then cosine decay to 0 at the end of ``epochs``."""
    if schedule == "constant":
        return float(learning_rate)
    if schedule != "cosine":
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {schedule!r}")
    steps = max(1, -(-n_train // batch_size))
    warmup = steps if epochs > 1 else 0
    return keras.optimizers.schedules.CosineDecay(
        learning_rate / 10.0, decay_steps=max(1, steps * epochs - warmup), alpha=0.0,
        warmup_target=float(learning_rate), warmup_steps=warmup,
    )


@dataclass
class AttributeResult:
    """A trained network and its test-set results per task (and validation masks for ``mtl_seg``)."""

    name: str
    model: keras.Model
    history: pd.DataFrame
    seconds: float
    y_true: dict[str, np.ndarray]
    y_pred: dict[str, np.ndarray]
    confidence: dict[str, np.ndarray]
    confusion: dict[str, np.ndarray]
    accuracy: dict[str, float]
    macro_f1: dict[str, float]
    model_path: Path | None = None
    mask_iou: pd.Series | None = None
    val_masks: np.ndarray | None = None
    test_masks: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def params(self) -> int:
        return int(self.model.count_params())

    def classification_report(self, task: str) -> str:
        """scikit-learn's classification report of a task on the test set (labelled rows), over the
        classes present in the truth or the predictions, so its "macro avg" F1 is the table's
        (:data:`kerasmt.metrics.MACRO_F1_DEFINITION`)."""
        from sklearn.metrics import classification_report

        keep = self.y_true[task] >= 0
        labels = present_classes(self.y_true[task], self.y_pred[task])
        return classification_report(
            self.y_true[task][keep], self.y_pred[task][keep], labels=labels,
            target_names=[pa.LABELS[task][c] for c in labels], zero_division=0,
        )


def _predict(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    outputs = model.predict(pipeline.segmentation_dataset(images, batch_size=batch_size), verbose=0)
    if not isinstance(outputs, dict):
        outputs = dict(zip(model.output_names, outputs if isinstance(outputs, (list, tuple)) else [outputs]))
    return {k: np.asarray(v) for k, v in outputs.items()}


def evaluate(name: str, model: keras.Model, data: AttributeData, history: pd.DataFrame | None = None,
             seconds: float = 0.0, model_path: Path | None = None) -> AttributeResult:
    """Test-set predictions, accuracy, macro-F1 and confusion per task; for a model with a mask
    output also the predicted label maps of the validation and test images and the per-class IoU
    on the validation split (the test set has no masks)."""
    out = _predict(model, data.x_test)
    y_true = data.labels("test")
    y_pred, conf, cms, acc, f1 = {}, {}, {}, {}, {}
    for task in TASKS:
        logits = out[task]
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        y_pred[task] = probs.argmax(axis=1)
        conf[task] = probs.max(axis=1)
        cms[task] = confusion(y_true[task], y_pred[task], pa.N_CLASSES[task])
        acc[task] = accuracy_from_confusion(cms[task])
        f1[task] = macro_f1(y_true[task], y_pred[task])
    result = AttributeResult(name, model, history if history is not None else pd.DataFrame(), seconds, y_true,
                             y_pred, conf, cms, acc, f1, model_path)
    if MASK_OUTPUT in model.output_names:
        result.test_masks = out[MASK_OUTPUT].argmax(axis=-1).astype(np.int8)
        result.val_masks = _predict(model, data.x_val)[MASK_OUTPUT].argmax(axis=-1).astype(np.int8)
        iou = mask_iou(data.m_val, result.val_masks, len(data.mask_classes))
        result.mask_iou = pd.Series(iou, index=pd.Index(data.mask_classes, name="part"), name="IoU")
    return result


def train(
    kind: str,
    data: AttributeData,
    epochs: int,
    out_dir: str | Path,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    weights: Mapping[str, Sequence[float]] | None = None,
    weight_decay: float = 0.0,
    name: str | None = None,
    augment: bool = True,
    mask_loss_weight: float = 1.0,
    dice_weight: float = 1.0,
    bn_momentum: float = 0.99,
    lr_schedule: str = "constant",
    early_stopping: int | None = None,
    verbose: int = 0,
    strategy: str | tf.distribute.Strategy | None = None,
) -> AttributeResult:
    """Build, train and evaluate ``"mtl"`` or ``"mtl_seg"``.

    Equal loss weights for the six tasks (the report's), masked cross-entropy from logits with
    the given class ``weights`` (``{task: per-class weights}``; ``None``, the report's: unweighted),
    L2 ``weight_decay`` on the convolution kernels (0, the report's), the report's augmentation (image
    and mask together) when ``augment``; ``mtl_seg`` adds the mask loss (cross-entropy +
    ``dice_weight`` x Dice, weighted ``mask_loss_weight``) on the training images' masks. Fixed
    ``epochs`` and the final weights, unless ``early_stopping`` (patience on the validation loss,
    best weights restored). ``lr_schedule="cosine"`` warms the learning rate up from a tenth over the
    first epoch and decays it to zero by the last (for short CPU runs); ``"constant"`` keeps it.
    The trained model is saved as ``<out_dir>/models/<name or kind>.keras``. ``strategy``: a
    ``tf.distribute`` strategy or its name (:mod:`kerasmt.distribute`); ``batch_size`` is global.
    """
    set_seed(seed)
    model = build_in_scope(
        lambda: compile_joint(
            build_model(kind, len(data.mask_classes), bn_momentum=bn_momentum, weight_decay=weight_decay),
            learning_rate_schedule(learning_rate, lr_schedule, len(data.train), batch_size, epochs),
            class_weights=weights, mask_loss_weight=mask_loss_weight, dice_weight=dice_weight),
        strategy)
    with_masks = kind == "mtl_seg"
    aug = report_augmentation(seed) if augment else None
    train_ds = data.dataset("train", batch_size, masks=with_masks, augment=aug, seed=seed)
    val_ds = data.dataset("val", 64, masks=with_masks) if len(data.val) else None
    start = time.perf_counter()
    name = name or kind
    fitted = fit(model, train_ds, val_ds, epochs=epochs, run_dir=out_dir, name=name, checkpoint=bool(early_stopping),
                 early_stopping=early_stopping, restore_best=bool(early_stopping), verbose=verbose,
                 strategy=strategy)
    seconds = time.perf_counter() - start
    path = Path(out_dir) / "models" / f"{name}.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    save_predictor(model, data, out_dir, name)
    result = evaluate(name, model, data, fitted.history, seconds, path)
    result.extra["config"] = {"class_weights": weights is not None, "weight_decay": float(weight_decay),
                              "augment": bool(augment)}
    return result


def save_predictor(model: keras.Model, data: AttributeData, out_dir: str | Path, name: str) -> Path:
    """Save ``model`` as a raw-image model (any-size RGB uint8 in, letterboxed inside as in training;
    the six attributes' and the part masks' probabilities out, label names stored):
    ``<out_dir>/models/<name>.predict.keras``."""
    from kerasmt import modelinfo
    from kerasmt.models.segmentation import MASK_OUTPUT

    specs = [modelinfo.task_spec(t, "classes", pa.LABELS[t], from_logits=True) for t in TASKS]
    if MASK_OUTPUT in model.output_names:
        specs.append(modelinfo.task_spec(MASK_OUTPUT, "mask", data.mask_classes, from_logits=True))
    path = Path(out_dir) / "models" / f"{name}{modelinfo.SUFFIX}"
    return modelinfo.save_raw_image_model(model, path, specs, study="attribute_mtl", resize="pad")


# ------------------------------------------------------------------------------------ evaluation
def majority_baselines(data: AttributeData) -> dict[str, float]:
    """Test accuracy of predicting the training split's majority class, per task."""
    return {t: majority_baseline_accuracy(data.train[t].to_numpy(), data.test[t].to_numpy()) for t in TASKS}


def comparison_table(results: Mapping[str, AttributeResult], data: AttributeData) -> pd.DataFrame:
    """Per task: the majority baseline (the training split's majority class, scored on test), the
    report's accuracy and macro-F1 beside the majority rate of the report's own test set (and
    whether the report's accuracy is below it), and ours per network. Macro-F1 everywhere is
    :data:`kerasmt.metrics.MACRO_F1_DEFINITION`."""
    rows = []
    baselines = majority_baselines(data)
    for task in TASKS:
        row = {"task": task, "majority (train class)": round(baselines[task], 3),
               "report acc": REPORT_TEST_ACCURACY[task],
               "report majority rate": round(REPORT_TEST_MAJORITY[task], 3),
               "report below majority": REPORT_TEST_ACCURACY[task] < REPORT_TEST_MAJORITY[task],
               "report macro-F1": REPORT_TEST_MACRO_F1[task]}
        for name, res in results.items():
            row[f"{name} acc"] = round(res.accuracy[task], 3)
            row[f"{name} macro-F1"] = round(res.macro_f1[task], 3)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("task")
    means = table.drop(columns=["report below majority"]).mean(numeric_only=True).round(3)
    table.loc["mean"] = means
    table.loc["mean", "report below majority"] = int(table["report below majority"].iloc[:-1].sum())
    table.attrs["macro_f1"] = MACRO_F1_DEFINITION
    return table


def metrics_summary(results: Mapping[str, AttributeResult], data: AttributeData, **extra) -> dict:
    """The study's ``metrics.json``: parameters, test accuracy and macro-F1 per network and task,
    majority baselines, the report's accuracies, validation mask IoU per part and a flat
    ``summary`` for ``kerasmt demo``."""
    majority = majority_baselines(data)
    metrics: dict = {
        "data": {"synthetic": data.synthetic, "train": len(data.train), "val": len(data.val), "test": len(data.test),
                 "mask_classes": list(data.mask_classes)},
        "params": {name: res.params for name, res in results.items()},
        "test": {name: {t: {"accuracy": res.accuracy[t], "macro_f1": res.macro_f1[t]} for t in TASKS}
                 for name, res in results.items()},
        "majority_baseline": majority,
        "majority_baseline_definition": "the training split's majority class, scored on the test split",
        "macro_f1_definition": MACRO_F1_DEFINITION,
        "configs": {name: res.extra.get("config") for name, res in results.items()},
        "report_test_accuracy": dict(REPORT_TEST_ACCURACY),
        "report_test_majority_rate": dict(REPORT_TEST_MAJORITY),
        "train_seconds": {name: res.seconds for name, res in results.items()},
        "epochs": {name: len(res.history) for name, res in results.items()},
        **extra,
    }
    seg = next((r for r in results.values() if r.mask_iou is not None), None)
    if seg is not None:
        metrics["mask_iou"] = {str(k): (None if np.isnan(v) else float(v)) for k, v in seg.mask_iou.items()}
        metrics["mask_iou_split"] = "val"
    summary: dict = {"params": results["mtl"].params if "mtl" in results else None,
                     "majority.mean_acc": round(float(np.mean(list(majority.values()))), 3)}
    for name, res in results.items():
        summary[f"{name}.mean_acc"] = round(float(np.mean(list(res.accuracy.values()))), 3)
        summary[f"{name}.mean_macro_f1"] = round(float(np.mean(list(res.macro_f1.values()))), 3)
    if seg is not None:
        summary["mask_miou"] = round(float(np.nanmean(seg.mask_iou.to_numpy())), 3)
    metrics["summary"] = summary
    return metrics


# ----------------------------------------------------------------------------------------- plots
#: display colour of each mask class (background, hair, legs, luggage, shoes, torso, skin_arms,
#: skin_face, skin_legs); unlabelled pixels (-1) are drawn dark grey
MASK_PALETTE = np.array(
    [[0, 0, 0], [140, 80, 20], [40, 70, 220], [230, 40, 210], [210, 210, 210], [220, 40, 40],
     [255, 205, 150], [255, 150, 70], [180, 130, 90]], dtype=np.uint8)
_MERGED_PALETTE = MASK_PALETTE[[0, 1, 2, 3, 4, 5, 6]]


def mask_to_rgb(label_maps: np.ndarray, classes: Sequence[str] = pa.MASK_CLASSES) -> np.ndarray:
    """Label maps ``(..., H, W)`` -> ``uint8`` RGB with :data:`MASK_PALETTE` colours."""
    palette = MASK_PALETTE if len(classes) == len(MASK_PALETTE) else _MERGED_PALETTE[: len(classes)]
    label_maps = np.asarray(label_maps).astype(np.int64)
    rgb = palette[np.clip(label_maps, 0, len(palette) - 1)]
    rgb[label_maps < 0] = 60
    return rgb


def _legend(fig, classes: Sequence[str]) -> None:
    import matplotlib.patches as mpatches

    palette = MASK_PALETTE if len(classes) == len(MASK_PALETTE) else _MERGED_PALETTE[: len(classes)]
    handles = [mpatches.Patch(color=palette[i] / 255.0, label=c) for i, c in enumerate(classes)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(classes), 9), fontsize=8, frameon=False)


def _readable(fig):
    from kerasmt.plots import readable

    return readable(fig)


def _short(task: str, code: int) -> str:
    return "?" if code < 0 else pa.LABELS[task][int(code)]


def plot_missing(data: AttributeData):
    """Missing (-1) labels per task and split (grouped bars)."""
    import matplotlib.pyplot as plt

    frame = pd.DataFrame({name: pa.missing_counts(data.split(name)[0]) for name in ("train", "val", "test")})
    fig, ax = plt.subplots(figsize=(7, 2.6))
    frame.plot.bar(ax=ax, rot=20)
    ax.set_ylabel("missing labels (-1)")
    ax.set_title("missing labels per task")
    for container in ax.containers:
        ax.bar_label(container, fontsize=8)
    fig.tight_layout()
    return _readable(fig)


def plot_samples(data: AttributeData, n: int = 8, split: str = "train"):
    """The first ``n`` images of a split with their labels, and their part masks below."""
    import matplotlib.pyplot as plt

    manifest, x, m = data.split(split)
    n = min(n, len(x))
    fig, axes = plt.subplots(2, n, figsize=(1.35 * n, 5.6), squeeze=False, dpi=100)
    for i in range(n):
        row = manifest.iloc[i]
        axes[0, i].imshow(x[i])
        axes[0, i].set_title("\n".join(_short(t, row[t]) for t in TASKS), fontsize=8)
        axes[1, i].imshow(mask_to_rgb(m[i], data.mask_classes))
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"{split} images (labels: {', '.join(TASKS)}) and part masks", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    _legend(fig, data.mask_classes)
    return _readable(fig)


def plot_augmentation(data: AttributeData, augmentations: Mapping[str, PairedAugmentation], n: int = 5, seed: int = 0):
    """Training images and masks, then each augmentation applied to both (same random draw)."""
    import matplotlib.pyplot as plt

    keras.utils.set_random_seed(seed)
    x = data.x_train[:n].astype("float32") / 255.0
    m = data.m_train[:n]
    rows = [("original", x, m)]
    for name, aug in augmentations.items():
        xi, mi = augment_pair(aug, x, m)
        rows.append((name, np.clip(np.asarray(xi), 0, 1), np.asarray(mi)))
    fig, axes = plt.subplots(2 * len(rows), n, figsize=(1.1 * n, 1.75 * 2 * len(rows)), squeeze=False)
    for r, (name, images, masks) in enumerate(rows):
        for i in range(n):
            axes[2 * r, i].imshow(images[i])
            axes[2 * r + 1, i].imshow(mask_to_rgb(masks[i], data.mask_classes))
        axes[2 * r, 0].set_ylabel(name, fontsize=8)
        axes[2 * r + 1, 0].set_ylabel("mask", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _readable(fig)


def plot_confusions(result: AttributeResult, normalize: bool = False):
    """Test confusion matrices of the six tasks (2 x 3 panels), accuracy in each title."""
    import matplotlib.pyplot as plt

    from kerasmt import plots

    fig, axes = plt.subplots(2, 3, figsize=(13, 8.2), gridspec_kw={"width_ratios": [1, 2.2, 1]})
    order = ["gender", "torso_colour", "torso_type", "luggage", "leg_colour", "leg_type"]
    for ax, task in zip(axes.flat, order):
        plots.plot_confusion_matrix(result.confusion[task], pa.LABELS[task], normalize=normalize, ax=ax,
                                    title=f"{task} (acc {result.accuracy[task]:.2f})")
    fig.suptitle(f"{result.name}: test confusion matrices")
    fig.tight_layout()
    return _readable(fig)


def bad_cases(result: AttributeResult, task: str, n: int = 2) -> np.ndarray:
    """Indices of the ``n`` most confident wrong test predictions of ``task``."""
    wrong = np.flatnonzero((result.y_true[task] >= 0) & (result.y_pred[task] != result.y_true[task]))
    return wrong[np.argsort(-result.confidence[task][wrong], kind="stable")][:n]


def plot_bad_cases(result: AttributeResult, data: AttributeData, n: int = 2, tasks: Sequence[str] = TASKS):
    """For each task its ``n`` most confident mistakes: the image and predicted vs actual value of
    all six traits (mistakes marked ``x``), like the report's bad-case tables."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(tasks), 2 * n, figsize=(4.6 * n, 2.0 * len(tasks)),
                             gridspec_kw={"width_ratios": [0.6, 1.9] * n}, squeeze=False, dpi=100)
    for r, task in enumerate(tasks):
        idx = bad_cases(result, task, n)
        for c in range(n):
            img_ax, txt_ax = axes[r, 2 * c], axes[r, 2 * c + 1]
            img_ax.axis("off")
            txt_ax.axis("off")
            if c >= len(idx):
                continue
            i = int(idx[c])
            img_ax.imshow(data.x_test[i])
            img_ax.set_title(f"{task}\ntest #{i}", fontsize=8)
            lines = ["trait        pred / actual"]
            for t in TASKS:
                p, y = int(result.y_pred[t][i]), int(result.y_true[t][i])
                mark = "x" if (y >= 0 and p != y) else " "
                lines.append(f"{mark} {t[:12]:<12} {_short(t, p)[:6]} / {_short(t, y)[:6]}")
            txt_ax.text(0.0, 0.5, "\n".join(lines), family="monospace", fontsize=8, va="center")
    fig.suptitle(f"{result.name}: most confident mistakes per task", fontsize=10)
    fig.tight_layout()
    return _readable(fig)


def plot_masks(result: AttributeResult, data: AttributeData, n: int = 8):
    """Validation images with true and predicted masks, and test images with predicted masks."""
    import matplotlib.pyplot as plt

    if result.val_masks is None:
        raise ValueError(f"{result.name} has no mask output")
    n = min(n, len(data.x_val))
    k = min(n, len(data.x_test))
    fig, axes = plt.subplots(5, n, figsize=(1.05 * n, 8.6), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(data.x_val[i])
        axes[1, i].imshow(mask_to_rgb(data.m_val[i], data.mask_classes))
        axes[2, i].imshow(mask_to_rgb(result.val_masks[i], data.mask_classes))
    for i in range(k):
        axes[3, i].imshow(data.x_test[i])
        axes[4, i].imshow(mask_to_rgb(result.test_masks[i], data.mask_classes))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for r, label in enumerate(["val image", "true mask", "predicted", "test image", "predicted"]):
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _legend(fig, data.mask_classes)
    return _readable(fig)


def plot_iou(result: AttributeResult):
    """Validation IoU per mask class (bars), mean IoU in the title."""
    import matplotlib.pyplot as plt

    if result.mask_iou is None:
        raise ValueError(f"{result.name} has no mask output")
    iou = result.mask_iou
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.bar(range(len(iou)), iou.fillna(0).to_numpy(), color=mask_to_rgb(np.arange(len(iou)), list(iou.index)) / 255.0,
           edgecolor="k")
    ax.set_xticks(range(len(iou)))
    ax.set_xticklabels(iou.index, rotation=30, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU (validation)")
    ax.set_title(f"{result.name}: per-part IoU, mean {np.nanmean(iou.to_numpy()):.3f}")
    fig.tight_layout()
    return _readable(fig)


def plot_curves(result: AttributeResult, ncols: int = 4):
    """Training and validation curves (:func:`kerasmt.plots.plot_history`) in a grid of ``ncols``
    columns: total and per-task losses (and, for ``mtl_seg``, the mask loss) first, then per-task
    accuracies, then the mask mean IoU; integer epoch ticks."""
    from kerasmt.plots import plot_history

    return plot_history(result.history, metrics=("loss", "accuracy", "mean_iou"), tasks=[*TASKS, MASK_OUTPUT],
                        ncols=ncols, title=f"{result.name}: training curves ({len(result.history)} epochs)")


def difference_table(results: Mapping[str, AttributeResult], a: str, b: str, n_boot: int = 2000,
                     seed: int = 0) -> pd.DataFrame:
    """Per task: test accuracy of network ``a`` minus ``b`` with a paired bootstrap 95 % interval
    over the test images; a difference whose interval contains 0 is a tie."""
    from kerasmt.metrics import paired_bootstrap

    rows = []
    for task in TASKS:
        y = results[a].y_true[task]
        keep = y >= 0
        ca = (results[a].y_pred[task] == y)[keep]
        cb = (results[b].y_pred[task] == y)[keep]
        d = paired_bootstrap(ca, cb, n_boot, seed)
        rows.append({"task": task, f"{a} - {b}": round(d["difference"], 3), "95% low": round(d["low"], 3),
                     "95% high": round(d["high"], 3),
                     "verdict": {"tie": "tie", "a": f"{a} better", "b": f"{b} better"}[d["verdict"]]})
    return pd.DataFrame(rows).set_index("task")


def learning_check(results: Mapping[str, AttributeResult], data: AttributeData, margin: float = 0.05) -> pd.DataFrame:
    """Per task and network: test accuracy minus the majority baseline, and whether it beats the
    baseline by at least ``margin``; macro-F1 beside the majority predictor's macro-F1."""
    rows = []
    baselines = majority_baselines(data)
    for task in TASKS:
        y = data.test[task].to_numpy()
        base = baselines[task]
        labelled = y[y >= 0]
        train = data.train[task].to_numpy()
        train = train[train >= 0]
        guess = np.bincount(train).argmax() if train.size else 0
        base_f1 = macro_f1(labelled, np.full_like(labelled, guess)) if labelled.size else np.nan
        row = {"task": task, "majority acc": round(base, 3), "majority macro-F1": round(base_f1, 3)}
        for name, res in results.items():
            row[f"{name} acc - majority"] = round(res.accuracy[task] - base, 3)
            row[f"{name} beats by {margin:.0%}"] = bool(res.accuracy[task] - base >= margin)
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")
