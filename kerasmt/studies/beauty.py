"""The Beauty study (seed 004): transfer learning vs fine-tuning of InceptionV3 on 73 product
classes, regrouping of confusable classes, from-scratch baselines. The report's numbers and the
steps the notebook ``notebooks/beauty.ipynb`` runs::

    from kerasmt.studies import beauty as study
    data = study.load_data("/data/Beauty", image_size=299)        # or None: synthetic
    sweep = study.run_sweep(data, ["tl", "ft-1", "ft-6"], out_dir="runs/beauty")
    grouping = study.find_groups(study.best_result(sweep), data, n_groups=42)
    grouped = study.run_sweep(data.regroup(grouping), ["tl", "ft-7"], out_dir="runs/beauty", tag="grouped")

The report's protocol (chapter 4) is every function's default: InceptionV3 with ImageNet weights
at 299x299, the head GAP -> Dropout .2 -> Dense 512 relu -> softmax, RMSprop 2e-4, categorical
cross-entropy, batch 64 (validation 128), early stopping on val_loss with patience 3 and the best
val_loss checkpoint restored, up to 100 epochs, augmentation rotation 40 / shifts .2 / shear .2 /
zoom .2 / horizontal flip, every regime from fresh pretrained weights and a fresh head. Two
departures, both switchable: InceptionV3's own preprocessing ([-1, 1]) instead of the report's
1/255 rescaling (``preprocessing="rescale"`` restores it), and the backbone always runs with
``training=False`` (frozen BatchNorm statistics).

Speed-ups that keep the protocol's meaning: decoded images are cached (uint8: in memory, or in a
``.npy`` file read by batches when a split exceeds 1 GiB, so the real dataset runs in bounded memory) and
augmented on the fly by Keras preprocessing layers; TL can train the head on cached pooled features
(``cache_features``; exact without augmentation, a fixed pool of ``augment_copies`` augmented
copies otherwise); FT-k can likewise train the unfrozen blocks on cached activations of the frozen
part (``cache_boundary``: only for small images, the demo).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerasmt import diskarray, pipeline, regroup
from kerasmt.datasets import folder_classes as fc
from kerasmt.models import finetune as ft
from kerasmt.training import epoch_lines, fit
from kerasmt.utils import cache_dir as user_cache_dir
from kerasmt.utils import set_seed

#: the report's validation accuracies per regime (chapter 4.5, 5.3; appendix 8)
REPORT_SWEEP: dict[str, dict[str, float]] = {
    "full": {"tl": 0.2564, "ft-1": 0.3213, "ft-2": 0.3549, "ft-3": 0.3573, "ft-4": 0.3722, "ft-5": 0.3666,
             "ft-6": 0.3873, "ft-7": 0.3743, "ft-8": 0.3593, "ft-9": 0.3677},
    "grouped": {"tl": 0.3424, "ft-1": 0.4258, "ft-2": 0.4590, "ft-3": 0.4717, "ft-4": 0.4763, "ft-5": 0.4699,
                "ft-6": 0.4940, "ft-7": 0.5045, "ft-8": 0.4857, "ft-9": 0.4740},
}
#: the report's best regimes and their test accuracies (chapter 6.3)
REPORT_TEST: dict[str, dict[str, Any]] = {
    "full": {"best_regime": "ft-6", "val_accuracy": 0.3873, "accuracy": 0.3733, "n_classes": 73},
    "grouped": {"best_regime": "ft-7", "val_accuracy": 0.5045, "accuracy": 0.5003, "n_classes": 42},
}
#: validation accuracies of the networks trained from scratch (chapter 6.1)
REPORT_SCRATCH: dict[str, float] = {"InceptionV3": 0.2846, "ResNet50": 0.1450, "SimpleNet": 0.1504}
#: the report's split sizes and its epoch time for InceptionV3 TL on a K80 (CPU-bound input)
REPORT_SPLIT: dict[str, int] = {"train": 58_304, "validation": 7_288, "test": 7_288}
REPORT_EPOCH_SECONDS = 1450
REPORT_N_GROUPS = 42
#: the report's regimes: TL and FT-1..FT-9
REPORT_REGIMES: tuple[str, ...] = ("tl",) + tuple(f"ft-{k}" for k in range(1, 10))
SCRATCH_ARCHITECTURES: tuple[str, ...] = ("InceptionV3", "ResNet50", "SimpleNet")
TAGS = ("full", "grouped")


# ------------------------------------------------------------------------------------------ data
@dataclass
class BeautyData:
    """The three splits' manifests, their decoded uint8 images (NumPy arrays, or
    :class:`~kerasmt.diskarray.DiskArray` files read by rows for large splits) and the class names."""

    manifests: dict[str, pd.DataFrame]
    images: dict[str, Any]
    class_names: list[str]
    root: Path
    synthetic: bool
    image_size: int
    grouping: regroup.Grouping | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def labels(self, split: str) -> np.ndarray:
        """Integer labels of a split (group ids after :meth:`regroup`)."""
        return self.manifests[split]["label"].to_numpy(dtype=np.int64)

    def dataset(self, split: str, batch_size: int = 64, augment: Any = None, shuffle: bool | None = None,
                seed: int = 0, images: np.ndarray | None = None) -> tf.data.Dataset:
        """Batches ``(float images in [0, 1], labels)`` of a split from the decoded uint8 cache;
        ``augment`` (training only) is applied to each float batch; the training split shuffles
        every epoch unless ``shuffle=False``."""
        return pipeline.image_dataset(
            self.manifests[split], labels="label", images=self.images[split] if images is None else images,
            batch_size=batch_size, shuffle=(split == "train") if shuffle is None else shuffle, seed=seed,
            augment=augment, n_classes=self.n_classes,
        )

    def regroup(self, grouping: regroup.Grouping) -> "BeautyData":
        """The same images (no copy) relabelled to ``grouping``'s groups."""
        manifests = {s: regroup.apply_mapping(m, grouping) for s, m in self.manifests.items()}
        return replace(self, manifests=manifests, class_names=list(grouping.names), grouping=grouping)

    def counts(self) -> pd.DataFrame:
        """Images per class (rows) and split (columns), plus the total."""
        frame = pd.concat([m.assign(split=s) for s, m in self.manifests.items()], ignore_index=True)
        table = pd.crosstab(frame["class_name"], frame["split"]).reindex(columns=list(fc.SPLITS), fill_value=0)
        table = table.reindex(self.class_names, fill_value=0)
        table["total"] = table.sum(axis=1)
        return table

    def describe(self) -> pd.DataFrame:
        """Images, classes and the chance accuracy (1 / classes) per split, beside the report's sizes."""
        rows = []
        for split, manifest in self.manifests.items():
            rows.append({"split": split, "images": len(manifest), "classes": manifest["label"].nunique(),
                         "image shape": "x".join(map(str, self.images[split].shape[1:])),
                         "report images": REPORT_SPLIT[split]})
        return pd.DataFrame(rows).set_index("split")


def load_data(
    data_dir: str | os.PathLike | None = None,
    image_size: int = 299,
    n_per_class: int = 30,
    seed: int = 0,
    synthetic_image_size: int = 96,
    cache_dir: str | os.PathLike | None = None,
) -> BeautyData:
    """Read a folder-per-class dataset (raw ``boxes_*`` folders split 80/10/10 in memory, or a
    ``train/validation/test`` split root; see :mod:`kerasmt.datasets.folder_classes`), or the
    synthetic one when ``data_dir`` is None, and decode every image once to ``image_size`` RGB
    uint8. A split whose decoded images exceed 1 GiB (:func:`kerasmt.diskarray.in_memory_limit`;
    the real dataset at 299 px: 19.5 GB) is decoded once into a ``.npy`` file under ``cache_dir``
    (default: the user cache) and read from it by batches, so memory stays bounded; smaller
    splits stay in memory (``cache_dir`` then keeps them as ``.npy`` between runs too)."""
    synthetic = data_dir is None
    root = fc.synthetic_root(n_per_class, seed, synthetic_image_size) if synthetic else Path(data_dir)
    everything = fc.load(root, split=None)
    names = fc.class_names(everything)
    manifests = {s: everything[everything["split"] == s].reset_index(drop=True) for s in fc.SPLITS}
    empty = [s for s, m in manifests.items() if m.empty]
    if empty:
        raise fc.DatasetError(f"{root}: no image in split(s) {empty}: the study needs images in "
                              f"{', '.join(fc.SPLITS)} (too few images per class for the 80/10/10 split?)")
    images = {s: pipeline.load_images(m["path"].tolist(), image_size, 3, cache_dir=cache_dir)
              for s, m in manifests.items()}
    return BeautyData(manifests, images, names, Path(root), synthetic, int(image_size))


def class_grid(data: BeautyData, ncols: int = 10, cell: float = 1.5):
    """One training image per class with its name (report figure 2.1), names at 8 pt."""
    from kerasmt import plots

    manifest = data.manifests["train"]
    first = manifest.groupby("label", sort=True).head(1)
    images = data.images["train"][first.index.to_numpy()]
    titles = [n.replace("_", "\n", 1)[:30] for n in first["class_name"]]
    return plots.image_grid(images, titles, ncols=ncols, cell=cell)


def plot_counts(data: BeautyData):
    """Images per class and split as stacked bars."""
    import matplotlib.pyplot as plt

    table = data.counts()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.13 * len(table) + 2), 3.4), dpi=100)
    bottom = np.zeros(len(table))
    for split in fc.SPLITS:
        ax.bar(range(len(table)), table[split], bottom=bottom, label=split, width=0.85)
        bottom += table[split].to_numpy()
    ax.set_xticks(range(len(table)))
    ax.set_xticklabels(table.index, rotation=90, fontsize=6)
    ax.set_ylabel("images")
    ax.legend(fontsize=8, ncol=3)
    ax.set_title("images per class and split (first 80 % / next 10 % / last 10 % of the sorted files)")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------- weights
def pretrain_standin(
    backbone: str = "InceptionV3",
    image_size: int = 75,
    n_images: int = 1500,
    epochs: int = 2,
    seed: int = 0,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    folder: str | os.PathLike | None = None,
    verbose: int = 0,
) -> Path:
    """Offline stand-in for ImageNet weights: train ``backbone`` (random init) for ``epochs`` on
    ``n_images`` synthetic product photos to predict their shape and colour
    (:func:`kerasmt.datasets.folder_classes.source_task`: generic product features, not the Beauty
    classes), recalibrate its BatchNorm statistics on them and save the backbone's weights.

    Cached: the file (``<cache>/pretrained/<backbone>-...weights.h5``) is reused when it exists.
    Adam ``learning_rate``, BatchNorm momentum 0.9 (short run). Returns the weights file.
    """
    key = f"{backbone}-px{image_size}-n{n_images}-e{epochs}-s{seed}-b{batch_size}-lr{learning_rate:g}-v1"
    folder = Path(folder) if folder is not None else user_cache_dir("pretrained")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"standin-{key}.weights.h5"
    if path.is_file():
        return path
    set_seed(seed)
    images, targets = fc.source_task(n_images, image_size, seed)
    x = images.astype(np.float32) / 255.0
    base = ft._constructor(backbone)(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    ft.set_batchnorm_momentum(base, 0.9)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    pre = ft.FinetunePreprocess(backbone, "backbone", name="preprocess")
    pooled = keras.layers.GlobalAveragePooling2D()(base(pre(inputs)))
    outputs = {"shape": keras.layers.Dense(len(fc.SHAPES), activation="softmax", name="shape")(pooled),
               "hue": keras.layers.Dense(8, activation="softmax", name="hue")(pooled)}
    model = keras.Model(inputs, outputs, name="standin_pretraining")
    model.compile(keras.optimizers.Adam(learning_rate), loss={"shape": "sparse_categorical_crossentropy",
                                                              "hue": "sparse_categorical_crossentropy"},
                  jit_compile=False)
    model.fit(x, targets, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose,
              callbacks=epoch_lines("pretraining", verbose))
    ft.recalibrate_batchnorm(base, pre(x[: min(len(x), 512)]), momentum_after=0.99)
    tmp = path.with_name(path.name.replace(".weights.h5", f".tmp{os.getpid()}.weights.h5"))
    base.save_weights(str(tmp))
    os.replace(tmp, path)
    return path


def resolve_weights(weights: str | None, data: BeautyData, backbone: str = "InceptionV3", seed: int = 0,
                    pretrain_images: int = 1500, pretrain_epochs: int = 2) -> tuple[str | None, str]:
    """The backbone weights to use and a sentence saying what they are.

    ``"auto"``: ImageNet for real data, the synthetic stand-in (:func:`pretrain_standin`) for the
    synthetic data (no network needed); ``"imagenet"``; ``"synthetic"``; ``None`` (random: TL is
    then meaningless); or a local weights file (e.g. Keras' cached ImageNet ``*_notop.h5``)."""
    if weights == "auto":
        weights = "synthetic" if data.synthetic else "imagenet"
    if weights == "synthetic":
        path = pretrain_standin(backbone, data.image_size, pretrain_images, pretrain_epochs, seed)
        return str(path), (f"synthetic stand-in: {backbone} pretrained from scratch for {pretrain_epochs} epochs "
                           f"on {pretrain_images} synthetic product photos (shape and colour labels), {path.name}")
    if weights == "imagenet":
        return "imagenet", f"{backbone} ImageNet weights (keras.applications)"
    if weights is None:
        return None, f"random {backbone} weights (no pretraining: TL only measures random features)"
    if not os.path.isfile(str(weights)):
        raise ValueError(f"WEIGHTS: file {weights} not found (expected 'auto', 'imagenet', 'synthetic', None "
                         f"or a local weights file)")
    return str(weights), f"local weights file {weights}"


# ---------------------------------------------------------------------------------- training
@dataclass
class RegimeResult:
    """One trained network and its validation results."""

    name: str
    regime: str
    n_classes: int
    history: pd.DataFrame
    y_val: np.ndarray
    val_proba: np.ndarray
    seconds: float
    trainable_params: int
    checkpoint: Path | None = None
    model: keras.Model | None = field(default=None, repr=False)
    mode: str = "images"
    augmentation: str = "online"

    @property
    def val_pred(self) -> np.ndarray:
        return np.argmax(self.val_proba, axis=1)

    @property
    def val_accuracy(self) -> float:
        return float(np.mean(self.val_pred == self.y_val))

    @property
    def val_top5(self) -> float:
        return top_k_accuracy(self.y_val, self.val_proba, 5)

    @property
    def epochs(self) -> int:
        return int(len(self.history))

    @property
    def best_epoch(self) -> int:
        return int(self.history["val_loss"].idxmin()) if "val_loss" in self.history else self.epochs

    def confusion(self) -> np.ndarray:
        from kerasmt.metrics import confusion

        return confusion(self.y_val, self.val_pred, self.n_classes)


def top_k(proba: np.ndarray, k: int = 5) -> np.ndarray:
    """Indices of the ``k`` highest probabilities per row, highest first; equal probabilities are
    ranked by class index (a stable sort), so ties never depend on the platform or the run."""
    proba = np.asarray(proba)
    k = min(int(k), proba.shape[1])
    return np.argsort(-proba, axis=1, kind="stable")[:, :k]


def top_k_accuracy(y_true: np.ndarray, proba: np.ndarray, k: int = 5) -> float:
    """Share of rows whose true label is among the ``k`` highest probabilities (ties ranked by
    class index, see :func:`top_k`)."""
    y_true = np.asarray(y_true)
    return float(np.mean(np.any(top_k(proba, k) == y_true[:, None], axis=1)))


class FeatureCache:
    """Cached backbone outputs (pooled features, FT boundary activations) keyed by the weights,
    preprocessing, images and the cut, so the grouped sweep reuses the full sweep's work.

    Arrays larger than :func:`kerasmt.diskarray.in_memory_limit` (1 GiB) are written to ``.npy``
    files in a temporary folder under ``folder`` (default: the user cache) and read by rows;
    :meth:`clear` deletes them."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self._store: dict[str, Any] = {}
        self._folder = Path(folder) if folder is not None else None
        self._tmp: Path | None = None

    def path_for(self, key: str) -> Path:
        """A fresh ``.npy`` path in this cache's temporary folder for ``key``."""
        if self._tmp is None:
            import tempfile

            parent = self._folder or user_cache_dir("features")
            parent.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(prefix=f"features-{os.getpid()}-", dir=parent))
        return self._tmp / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.npy"

    def get(self, key: str, compute, nbytes: int = 0) -> Any:
        """The array cached under ``key``, else ``compute(path)``; ``path`` is a ``.npy`` file to
        write when ``nbytes`` (the expected size) exceeds the in-memory limit, else ``None``."""
        if key not in self._store:
            path = self.path_for(key) if nbytes > diskarray.in_memory_limit() else None
            self._store[key] = compute(path)
        return self._store[key]

    def clear(self) -> None:
        import shutil

        self._store.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __del__(self) -> None:
        if getattr(self, "_tmp", None) is not None:
            import shutil

            shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def nbytes(self) -> int:
        """Bytes held in memory (arrays on disk count 0)."""
        return int(sum(a.nbytes for a in self._store.values() if not diskarray.is_disk(a)))


def _images_key(images: Any) -> str:
    rows = np.arange(0, len(images), max(1, len(images) // 64))
    return hashlib.sha1(np.asarray(images[rows]).tobytes()).hexdigest()[:12] + f"-{tuple(images.shape)}"


def _array_dataset(x: Any, y: np.ndarray, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches of rows of ``x`` (NumPy or :class:`~kerasmt.diskarray.DiskArray`) and labels ``y``,
    gathered by index (never copied into the graph)."""
    return diskarray.rows_dataset((x, y.astype(np.int32)), batch_size, shuffle, seed).prefetch(tf.data.AUTOTUNE)


def predict_proba(model: keras.Model, dataset: tf.data.Dataset) -> np.ndarray:
    """Class probabilities of every element of a batched ``(x, y)`` or ``x`` dataset, in order,
    each exactly once (eager calls: no graph tracing for a one-off pass)."""
    out = []
    for batch in dataset:
        x = batch[0] if isinstance(batch, tuple) else batch
        out.append(np.asarray(model(x, training=False)))
    return np.concatenate(out, axis=0) if out else np.zeros((0, int(model.output_shape[-1])), np.float32)


def save_predictor(model: keras.Model, data: BeautyData, checkpoint: str | Path) -> Path:
    """Save ``model`` next to its ``checkpoint`` as a raw-image model (any-size RGB uint8 in, resized
    and the backbone's preprocess_input inside; top-5 class names out): ``<name>.predict.keras``."""
    from kerasmt import modelinfo

    specs = [modelinfo.task_spec("class", "classes", data.class_names, top_k=5)]
    return modelinfo.save_raw_image_model(model, modelinfo.predict_path(checkpoint), specs, study="beauty",
                                          resize="stretch")


def train_regime(
    data: BeautyData,
    regime: str,
    out_dir: str | os.PathLike,
    *,
    tag: str = "full",
    backbone: str = "InceptionV3",
    weights: str | None = "imagenet",
    preprocessing: str = "backbone",
    epochs: int = 100,
    patience: int | None = 3,
    batch_size: int = 64,
    eval_batch_size: int = 128,
    learning_rate: float = ft.REPORT_LEARNING_RATE,
    augment: bool = True,
    cache_features: bool = False,
    cache_boundary: bool = False,
    augment_copies: int | None = None,
    max_cache_gb: float = 4.0,
    head_init: RegimeResult | None = None,
    train_batchnorm: bool = False,
    cache: FeatureCache | None = None,
    save: bool = True,
    seed: int = 0,
    verbose: int = 0,
) -> RegimeResult:
    """Train one regime (``"tl"``, ``"ft-k"``, ``"full"``) from fresh ``weights`` and evaluate it on
    the validation split with the best (lowest val_loss) weights restored.

    Three ways to feed it, all with the same model, optimiser and early stopping:

    - images (default, the report's protocol): online augmentation of the cached uint8 images
      every epoch;
    - ``cache_features`` (TL): the head trains on cached pooled features of the clean images plus
      ``augment_copies`` augmented copies, computed before caching (default ``None``: one copy
      when ``augment``; 0 trains without any augmentation and says so in a warning);
    - ``cache_boundary`` (FT-k): the unfrozen blocks and the head train on cached activations of
      the frozen part (same copies); refused when the cache would exceed ``max_cache_gb``.

    The result's ``augmentation`` says which augmentation the training saw ("online", "N cached
    copies", or "none").

    ``head_init``: start the head from another result's trained head (e.g. FT from the TL head;
    the report started every regime from a random head). Writes ``out_dir/logs/<tag>_<regime>.csv``
    and, with ``save``, the full network as ``out_dir/models/<tag>_<regime>.keras``.
    """
    k = ft.parse_regime(regime)
    regime = ft.regime_name(k)
    name = f"{tag}_{regime.replace('-', '')}"
    out_dir = Path(out_dir)
    set_seed(seed)
    size = data.image_size
    model = ft.finetune_model((size, size, 3), weights, name, n_classes=data.n_classes, backbone=backbone, regime=regime,
                              preprocessing=preprocessing, train_batchnorm=train_batchnorm)
    if head_init is not None and head_init.model is not None:
        for layer_name in ("head_dense", "predictions"):
            model.get_layer(layer_name).set_weights(head_init.model.get_layer(layer_name).get_weights())
    augmentation = ft.report_augmentation(seed=seed) if augment else None
    copies = (1 if augment_copies is None else int(augment_copies)) if augment else 0
    y_train, y_val = data.labels("train"), data.labels("validation")
    start = time.perf_counter()
    cut = k if isinstance(k, int) else None
    use_cache = (cut == 0 and cache_features) or (cut is not None and cut > 0 and cache_boundary)
    if not augment:
        augmented = "none"
    elif use_cache:
        augmented = f"{copies} cached augmented cop{'y' if copies == 1 else 'ies'}" if copies else "none"
        if not copies:
            warnings.warn(f"{name}: training on cached activations with augment_copies=0 uses no augmentation "
                          f"at all (augment=True only acts on images); set augment_copies >= 1", stacklevel=2)
    else:
        augmented = "online"
    cache = cache if cache is not None else FeatureCache()
    if use_cache:
        bottom, top = ft.split_at_boundary(model, cut, backbone)
        shape = ft.boundary_shape(model, cut, backbone)
        n_rows = (1 + copies) * len(y_train) + len(y_val)
        gb = n_rows * int(np.prod(shape)) * 4 / 1e9
        if gb > max_cache_gb:
            raise MemoryError(f"caching {regime} activations {shape} for {n_rows} images needs {gb:.1f} GB "
                              f"(> max_cache_gb={max_cache_gb}); use cache_boundary=False")
        wkey = f"{backbone}|{weights}|{preprocessing}|{size}|cut{cut}"
        tr_key = f"{wkey}|train|{_images_key(data.images['train'])}|c{copies}|s{seed}"
        va_key = f"{wkey}|val|{_images_key(data.images['validation'])}"
        row_bytes = int(np.prod(shape)) * 4
        x_tr = cache.get(tr_key, lambda path: ft.cached_outputs(bottom, data.images["train"], eval_batch_size,
                                                                 augmentation, copies, seed, path=path),
                         nbytes=(1 + copies) * len(y_train) * row_bytes)
        x_va = cache.get(va_key, lambda path: ft.cached_outputs(bottom, data.images["validation"], eval_batch_size,
                                                                 path=path), nbytes=len(y_val) * row_bytes)
        trainee = top
        train_ds = _array_dataset(x_tr, np.tile(y_train, 1 + copies), batch_size, True, seed)
        val_ds = _array_dataset(x_va, y_val, eval_batch_size, False, seed)
        mode = "cached features" if cut == 0 else f"cached {ft.boundary_layer(ft.base_of(model), cut, backbone)} outputs"
    else:
        trainee = model
        train_ds = data.dataset("train", batch_size, augment=augmentation, seed=seed)
        val_ds = data.dataset("validation", eval_batch_size)
        mode = "images"
    ft.compile_report(trainee, learning_rate)
    # resumable backups only for training on images (long runs); cached runs are quick to redo
    result = fit(trainee, train_ds, val_ds, epochs=epochs, run_dir=out_dir, name=name, monitor="val_loss",
                 early_stopping=patience, restore_best=True, backup=not use_cache, verbose=verbose)
    proba = predict_proba(trainee, val_ds)
    seconds = time.perf_counter() - start
    if len(proba) != len(y_val):
        raise RuntimeError(f"{name}: {len(proba)} validation predictions for {len(y_val)} images")
    checkpoint: Path | None = out_dir / "models" / f"{name}.keras"
    if save:
        model.save(checkpoint)  # the full network (its head/top were trained in place)
        save_predictor(model, data, checkpoint)
    else:
        if checkpoint.exists():  # the best-epoch checkpoint of what was trained (maybe only the top)
            checkpoint.unlink()
        checkpoint = None
    return RegimeResult(name, regime, data.n_classes, result.history, y_val, proba, seconds,
                        ft.count_params(model)["trainable"], checkpoint, model, mode, augmented)


def run_sweep(
    data: BeautyData,
    regimes: Sequence[str | int],
    out_dir: str | os.PathLike,
    *,
    tag: str = "full",
    epochs: int = 100,
    tl_epochs: int | None = None,
    learning_rate: float = ft.REPORT_LEARNING_RATE,
    ft_learning_rate: float | None = None,
    head_from_tl: bool = False,
    keep_models: str = "best",
    progress: bool = True,
    **kwargs: Any,
) -> dict[str, RegimeResult]:
    """Train every regime (e.g. ``["tl", "ft-1", ..., "ft-9"]``) with :func:`train_regime`, each
    from fresh weights, and return ``{regime: result}``.

    ``epochs`` caps every run (``tl_epochs`` the TL run, e.g. longer when it trains on cached
    features); ``learning_rate`` is RMSprop's for every regime unless ``ft_learning_rate`` sets the
    FT regimes' (the report: 2e-4 for all). ``head_from_tl``: FT regimes start from the TL regime's trained head (TL runs
    first; the report started every regime from a random head). ``keep_models``: ``"best"`` keeps
    only the best regime's ``.keras`` file and model in memory, ``"all"`` keeps every one. Prints
    one line per regime."""
    names = list(dict.fromkeys(ft.regime_name(ft.parse_regime(r)) for r in regimes))
    if keep_models not in {"best", "all"}:
        raise ValueError(f"keep_models must be 'best' or 'all', got {keep_models!r}")
    if head_from_tl and "tl" in names:
        names = ["tl"] + [n for n in names if n != "tl"]
    results: dict[str, RegimeResult] = {}
    for regime in names:
        init = results.get("tl") if head_from_tl and regime != "tl" else None
        cap = tl_epochs if regime == "tl" and tl_epochs else epochs
        rate = ft_learning_rate if regime != "tl" and ft_learning_rate else learning_rate
        res = train_regime(data, regime, out_dir, tag=tag, epochs=cap, learning_rate=rate, head_init=init,
                           save=keep_models == "all", **kwargs)
        results[regime] = res
        if progress:
            print(f"{tag:>7} {regime:>5}: val accuracy {res.val_accuracy:.3f}, top-5 {res.val_top5:.3f}, "
                  f"{res.epochs} epochs (best {res.best_epoch}), {res.trainable_params:,} trainable, "
                  f"{res.mode}, augmentation: {res.augmentation}, {res.seconds:.0f} s", flush=True)
    if keep_models == "best" and results:
        best = best_result(results)
        best.checkpoint = Path(out_dir) / "models" / f"{best.name}.keras"
        best.model.save(best.checkpoint)
        save_predictor(best.model, data, best.checkpoint)
        for res in results.values():
            if res is not best:
                res.model = None
    return results


def best_result(results: Mapping[str, RegimeResult]) -> RegimeResult:
    """The regime with the highest validation accuracy (the report's choice), ties to the earlier."""
    return max(results.values(), key=lambda r: r.val_accuracy)


@dataclass
class TestResult:
    """A model's results on the test split."""

    name: str
    regime: str
    y_true: np.ndarray
    proba: np.ndarray
    class_names: list[str]

    @property
    def y_pred(self) -> np.ndarray:
        return np.argmax(self.proba, axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.y_pred == self.y_true))

    @property
    def top5(self) -> float:
        return top_k_accuracy(self.y_true, self.proba, 5)

    def per_class_f1(self, digits: int | None = 3) -> pd.DataFrame:
        """Precision, recall, F1 and support per class (sklearn, zero_division=0), F1 ascending
        (ties by class order); rounded to ``digits`` for display (``None``: unrounded)."""
        from sklearn.metrics import precision_recall_fscore_support

        labels = np.arange(len(self.class_names))
        p, r, f, s = precision_recall_fscore_support(self.y_true, self.y_pred, labels=labels, zero_division=0)
        table = pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": s}, index=self.class_names)
        table = table.sort_values("f1", kind="stable")
        return table if digits is None else table.round(digits)

    @property
    def macro_f1(self) -> float:
        """Macro-F1 as everywhere in kerasmt (:func:`kerasmt.metrics.macro_f1`: mean F1 over the
        classes present in the truth or the predictions), from unrounded per-class values."""
        from kerasmt.metrics import macro_f1

        return macro_f1(self.y_true, self.y_pred)

    def confusion(self) -> np.ndarray:
        from kerasmt.metrics import confusion

        return confusion(self.y_true, self.y_pred, len(self.class_names))


def evaluate_test(result: RegimeResult, data: BeautyData, batch_size: int = 128) -> TestResult:
    """Predict the test split once (every image exactly once) with a result's model."""
    if result.model is None:
        if result.checkpoint is None:
            raise ValueError(f"{result.name}: no model in memory and no checkpoint to load")
        result.model = keras.models.load_model(result.checkpoint)
    ds = data.dataset("test", batch_size)
    proba = predict_proba(result.model, ds)
    y = data.labels("test")
    if len(proba) != len(y):
        raise RuntimeError(f"{result.name}: {len(proba)} test predictions for {len(y)} images")
    return TestResult(result.name, result.regime, y, proba, list(data.class_names))


# --------------------------------------------------------------------------------- regrouping
def default_n_groups(n_classes: int) -> int:
    """The grouped class count for ``n_classes`` classes: the report's 42 groups of 73 classes,
    and the same share (rounded, at least 2 and at most ``n_classes``) for any other dataset."""
    if n_classes == len(fc.CLASSES):
        return REPORT_N_GROUPS
    return int(min(n_classes, max(2, round(n_classes * REPORT_N_GROUPS / len(fc.CLASSES)))))


def find_groups(result: RegimeResult, data: BeautyData, n_groups: int | None = None, soft: bool = True,
                method: str = regroup.LINKAGE_METHOD) -> regroup.Grouping:
    """Groups of confusable classes from a result's validation predictions: agglomerative
    clustering (:func:`kerasmt.regroup.derive_groups`) of the symmetrised confusion rates of the
    soft confusion matrix (summed probabilities; ``soft=False``: argmax counts, as the report).
    ``n_groups`` None: :func:`default_n_groups` of the loaded classes (42 on the report's 73)."""
    n_groups = min(int(default_n_groups(data.n_classes) if n_groups is None else n_groups), data.n_classes)
    matrix = (regroup.soft_confusion(result.y_val, result.val_proba, data.n_classes) if soft
              else result.confusion())
    return regroup.derive_groups(matrix, n_groups, data.class_names, method=method)


def load_group_mapping(path: str | os.PathLike, data: BeautyData) -> regroup.Grouping:
    """A hand-written grouping from a JSON file (``{group: [classes]}`` or ``{class: group}``)."""
    mapping = json.loads(Path(path).read_text())
    return regroup.groups_from_mapping(mapping, data.class_names)


def grouping_agreement(grouping: regroup.Grouping, data: BeautyData) -> dict[str, float]:
    """Adjusted Rand index of a grouping against the synthetic design's groups (data written by
    :func:`~kerasmt.datasets.folder_classes.synthesize`) and against the report's 16 printed groups
    (the classes it left alone as singletons); 1 = the same partition, about 0 = unrelated."""
    out: dict[str, float] = {}
    names = grouping.classes
    if data.synthetic or (data.root / fc.COMPLETE_MARKER).is_file():  # drawn by fc.synthesize
        designed = fc.synthetic_groups_mapping(names)
        out["ari_vs_designed"] = regroup.adjusted_rand(grouping, [designed[c] for c in names])
    known = set(fc.CLASSES)
    if set(names) <= known:
        report = regroup.groups_from_mapping(fc.REPORT_GROUPS, names)
        out["ari_vs_report_groups"] = regroup.adjusted_rand(grouping, report)
    return out


# ------------------------------------------------------------------------------ from scratch
def resize_images(images: Any, size: int, chunk: int = 256) -> Any:
    """uint8 images resized to ``size`` x ``size`` (antialiased bilinear): a NumPy array for one
    in memory; for a :class:`~kerasmt.diskarray.DiskArray` a resized ``.npy`` beside it, built
    chunk by chunk once and reused."""
    if images.shape[1] == size and images.shape[2] == size:
        return images

    def resize(x: np.ndarray) -> np.ndarray:
        return tf.cast(tf.clip_by_value(tf.round(tf.image.resize(x, (size, size), antialias=True)), 0, 255),
                       tf.uint8).numpy()

    if not diskarray.is_disk(images):
        return resize(np.asarray(images))
    base = images.path
    tag = "all" if images._index is None else hashlib.sha1(images._index.tobytes()).hexdigest()[:12]
    target = base.with_name(f"{base.stem}-resized{size}-{tag}.npy")
    return diskarray.cached(target, lambda p: diskarray.save_chunks(
        p, (resize(x) for x in images.iter_chunks(chunk)), len(images)))


def train_scratch(
    data: BeautyData,
    architecture: str,
    out_dir: str | os.PathLike,
    *,
    image_size: int | None = None,
    epochs: int = 100,
    patience: int | None = 3,
    batch_size: int = 64,
    eval_batch_size: int = 128,
    learning_rate: float = ft.REPORT_LEARNING_RATE,
    preprocessing: str = "backbone",
    augment: bool = True,
    limit_per_class: int | None = None,
    bn_momentum: float | None = None,
    seed: int = 0,
    verbose: int = 0,
) -> RegimeResult:
    """Train InceptionV3, ResNet50 (``keras.applications``, ``weights=None``, their own top) or
    SimpleNet from random weights with the report's optimiser, augmentation and early stopping.

    ``image_size`` resizes the cached images (default: the data's size; InceptionV3 needs >= 75);
    ``limit_per_class`` trains on the first images of each class only; ``bn_momentum`` overrides
    the BatchNorm momentum (short demo runs: 0.9). Saves ``models/scratch_<name>.keras``."""
    set_seed(seed)
    size = int(image_size or data.image_size)
    if architecture == "InceptionV3":
        size = max(size, ft.MIN_INPUT_SIZE["InceptionV3"])
    name = f"scratch_{architecture.lower()}"
    model = ft.scratch_model((size, size, 3), name=name, architecture=architecture, n_classes=data.n_classes,
                             preprocessing=preprocessing)
    if bn_momentum is not None:
        ft.set_batchnorm_momentum(model, bn_momentum)

    def resized(split: str) -> Any:
        return resize_images(data.images[split], size)

    x_train, train_manifest = resized("train"), data.manifests["train"]
    if limit_per_class:
        keep = train_manifest.groupby("label", sort=False).head(int(limit_per_class)).index.to_numpy()
        x_train, train_manifest = diskarray.take_rows(x_train, keep), train_manifest.loc[keep].reset_index(drop=True)
    augmentation = ft.report_augmentation(seed=seed) if augment else None
    train_ds = pipeline.image_dataset(train_manifest, "label", images=x_train, batch_size=batch_size, shuffle=True,
                                      seed=seed, augment=augmentation)
    val_ds = data.dataset("validation", eval_batch_size, images=resized("validation"))
    ft.compile_report(model, learning_rate)
    start = time.perf_counter()
    result = fit(model, train_ds, val_ds, epochs=epochs, run_dir=out_dir, name=name, monitor="val_loss",
                 early_stopping=patience, restore_best=True, verbose=verbose)
    proba = predict_proba(model, val_ds)
    seconds = time.perf_counter() - start
    y_val = data.labels("validation")
    return RegimeResult(name, architecture, data.n_classes, result.history, y_val, proba, seconds,
                        ft.count_params(model)["trainable"], result.checkpoint, model, f"images {size}px")


# ------------------------------------------------------------------------------ tables, plots
def sweep_table(results: Mapping[str, RegimeResult], tag: str = "full") -> pd.DataFrame:
    """One row per regime: trainable parameters, epochs run, best epoch, validation accuracy and
    top-5, training seconds, what it trained on and with which augmentation, and the report's
    validation accuracy."""
    report = REPORT_SWEEP.get(tag, {})
    rows = []
    for regime, res in results.items():
        rows.append({"regime": regime, "trainable params": res.trainable_params, "epochs": res.epochs,
                     "best epoch": res.best_epoch, "val accuracy": round(res.val_accuracy, 4),
                     "val top-5": round(res.val_top5, 4), "seconds": round(res.seconds, 1),
                     "trained on": res.mode, "augmentation": res.augmentation,
                     "report val accuracy": report.get(regime)})
    return pd.DataFrame(rows).set_index("regime")


def plot_histories(results: Mapping[str, RegimeResult], title: str = "", ncols: int = 5):
    """Training and validation accuracy (upper panel) and loss (lower panel) per epoch, one column
    per regime (report figure 4.2 and appendix 8); dotted: the best val_loss epoch."""
    import matplotlib.pyplot as plt

    from kerasmt.plots import integer_epochs, readable

    n = len(results)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(2 * nrows, ncols, figsize=(3.0 * ncols, 4.6 * nrows), squeeze=False, dpi=100)
    for i, (regime, res) in enumerate(results.items()):
        h = res.history
        top, bottom = axes[2 * (i // ncols), i % ncols], axes[2 * (i // ncols) + 1, i % ncols]
        for ax, metric in ((top, "accuracy"), (bottom, "loss")):
            if metric in h:
                ax.plot(h.index, h[metric], marker=".", label="training")
            if f"val_{metric}" in h:
                ax.plot(h.index, h[f"val_{metric}"], marker=".", label="validation")
            ax.axvline(res.best_epoch, color="grey", lw=0.8, ls=":")
            ax.grid(alpha=0.3)
            integer_epochs(ax)
            ax.set_ylabel(metric)
        top.set_title(f"{regime} (val acc {res.val_accuracy:.3f})")
        bottom.set_xlabel("epoch")
    for i in range(n, nrows * ncols):
        axes[2 * (i // ncols), i % ncols].axis("off")
        axes[2 * (i // ncols) + 1, i % ncols].axis("off")
    axes[0, 0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return readable(fig)


def _k(regime: str) -> int:
    k = ft.parse_regime(regime)
    return 10 if k == "full" else int(k)


def _gapped(values: Mapping[int, float]) -> tuple[list[int], list[float]]:
    """x = 0..max k with NaN where no run exists, so a line joins only runs of adjacent k."""
    xs = list(range(0, max(values) + 1)) if values else []
    return xs, [values.get(x, np.nan) for x in xs]


def plot_accuracy_vs_k(sweeps: Mapping[str, Mapping[str, RegimeResult]], report: bool = True,
                       scratch: Mapping[str, RegimeResult] | None = None):
    """Validation accuracy (left) and best validation loss (right) against the number of
    fine-tuned blocks (0 = TL), ours (solid) and the report's accuracies (dashed), one line per
    label set (report figures 4.2, 5.4 and 6.1); from-scratch networks as horizontal marks. Lines
    join only adjacent numbers of blocks: a regime that was not run leaves a gap."""
    import matplotlib.pyplot as plt

    from kerasmt.plots import readable

    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(11.0, 3.8), dpi=100)
    colours = {"full": "tab:blue", "grouped": "tab:orange"}
    for tag, results in sweeps.items():
        if not results:
            continue
        n = next(iter(results.values())).n_classes
        xs, ys = _gapped({_k(r): res.val_accuracy for r, res in results.items()})
        ax.plot(xs, ys, marker="o", color=colours.get(tag), label=f"ours, {tag} ({n} classes)")
        losses = {_k(r): float(res.history["val_loss"].min()) for r, res in results.items() if "val_loss" in res.history}
        if losses:
            xs, ys = _gapped(losses)
            ax_loss.plot(xs, ys, marker="o", color=colours.get(tag), label=f"ours, {tag} ({n} classes)")
        if report and tag in REPORT_SWEEP:
            xs, ys = _gapped({_k(r): v for r, v in REPORT_SWEEP[tag].items()})
            ax.plot(xs, ys, ls="--", marker="x", color=colours.get(tag), alpha=0.6,
                    label=f"report, {tag} ({REPORT_TEST[tag]['n_classes']} classes)")
    for i, (arch, res) in enumerate((scratch or {}).items()):
        ax.axhline(res.val_accuracy, color=f"C{i + 2}", lw=0.9, ls=":", label=f"ours, {arch} from scratch")
    for a in (ax, ax_loss):
        a.set_xticks(range(0, 11))
        a.set_xticklabels(["TL"] + [f"FT-{k}" for k in range(1, 10)] + ["full"], fontsize=8)
        a.set_xlim(-0.5, 10.5)
        a.grid(alpha=0.3)
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    ax.set_title("accuracy vs fine-tuned blocks")
    ax_loss.set_ylabel("validation loss (best epoch)")
    ax_loss.set_title("loss vs fine-tuned blocks (the report shows no loss values)")
    if ax_loss.lines:
        ax_loss.legend(fontsize=8)
    fig.tight_layout()
    return readable(fig)


def scratch_table(scratch: Mapping[str, RegimeResult], best_full: RegimeResult | None = None) -> pd.DataFrame:
    """From-scratch networks beside the best TL/FT model: parameters, epochs, validation accuracy
    and top-5, with the report's accuracies (the report's three networks are always listed)."""
    rows = []
    for arch in list(dict.fromkeys([*SCRATCH_ARCHITECTURES, *scratch])):
        res = scratch.get(arch)
        if res is None:  # not trained in this run: the report's number alone
            rows.append({"network": f"{arch} (from scratch)", "trained on": "not run",
                         "report val accuracy": REPORT_SCRATCH.get(arch)})
            continue
        rows.append({"network": f"{arch} (from scratch)", "trainable params": res.trainable_params,
                     "epochs": res.epochs, "val accuracy": round(res.val_accuracy, 4),
                     "val top-5": round(res.val_top5, 4), "trained on": res.mode,
                     "report val accuracy": REPORT_SCRATCH.get(arch)})
    if best_full is not None:
        rows.append({"network": f"InceptionV3 {best_full.regime} (pretrained)", "trainable params": best_full.trainable_params,
                     "epochs": best_full.epochs, "val accuracy": round(best_full.val_accuracy, 4),
                     "val top-5": round(best_full.val_top5, 4), "trained on": best_full.mode,
                     "report val accuracy": REPORT_TEST["full"]["val_accuracy"]})
    columns = ["network", "trainable params", "epochs", "val accuracy", "val top-5", "trained on", "report val accuracy"]
    table = pd.DataFrame(rows).reindex(columns=columns).set_index("network")
    return table.astype({"trainable params": "Int64", "epochs": "Int64"})


def comparison_table(sweeps: Mapping[str, Mapping[str, RegimeResult]], tests: Mapping[str, TestResult]) -> pd.DataFrame:
    """The report's headline numbers beside ours: classes, TL validation accuracy, best regime,
    its validation and test accuracy, test top-5, per label set."""
    rows = []
    for tag, results in sweeps.items():
        if not results:
            continue
        best = best_result(results)
        test = tests.get(tag)
        rep = REPORT_TEST[tag]
        rows.append({"label set": tag, "who": "ours", "classes": best.n_classes,
                     "TL val": round(results["tl"].val_accuracy, 4) if "tl" in results else None,
                     "best regime": best.regime, "best val": round(best.val_accuracy, 4),
                     "test": None if test is None else round(test.accuracy, 4),
                     "test top-5": None if test is None else round(test.top5, 4)})
        rows.append({"label set": tag, "who": "report", "classes": rep["n_classes"],
                     "TL val": REPORT_SWEEP[tag].get("tl"), "best regime": rep["best_regime"],
                     "best val": rep["val_accuracy"], "test": rep["accuracy"], "test top-5": None})
    return pd.DataFrame(rows).set_index(["label set", "who"])


def problem_images(test: TestResult, n: int = 10) -> np.ndarray:
    """Indices of the ``n`` test images the model gets most wrong: misclassified, lowest probability
    of the true class first (ties by index), at most one per true class so that the gallery spans
    classes (the report's problem images 7.1-7.5 came from five classes)."""
    wrong = np.flatnonzero(test.y_pred != test.y_true)
    p_true = test.proba[wrong, test.y_true[wrong]]
    ranked = wrong[np.lexsort((wrong, p_true))]
    out, seen = [], set()
    for i in ranked:
        c = int(test.y_true[i])
        if c not in seen:
            seen.add(c)
            out.append(int(i))
        if len(out) == n:
            break
    return np.array(out, dtype=np.int64)


def plot_problem_images(test: TestResult, data: BeautyData, n: int = 10, ncols: int = 5):
    """Gallery of :func:`problem_images` (report figures 7.1-7.5): each image with its true class,
    the predicted class and the probability given to the true one."""
    from kerasmt import plots

    idx = problem_images(test, n)
    images = data.images["test"][idx]
    short = [c.replace("_", " ")[:22] for c in test.class_names]
    titles = [f"true: {short[test.y_true[i]]}\npred: {short[test.y_pred[i]]}\np(true) {test.proba[i, test.y_true[i]]:.2f}"
              for i in idx]
    fig = plots.image_grid(images, titles, ncols=ncols, cell=2.2,
                           suptitle=f"{test.name}: the {len(idx)} test images it gets most wrong (one per class)")
    return fig


def group_test_accuracy(test: TestResult, grouping: regroup.Grouping) -> float:
    """Test accuracy of a fine-class model counted per group (a sibling class counts as correct): on
    the test split, not the validation split whose confusions chose the groups."""
    return regroup.group_accuracy(test.confusion(), grouping)


def metrics_summary(
    data: BeautyData,
    sweeps: Mapping[str, Mapping[str, RegimeResult]],
    tests: Mapping[str, TestResult],
    grouping: regroup.Grouping | None,
    scratch: Mapping[str, RegimeResult] | None = None,
    weights_note: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """The study's ``metrics.json``: ``sweep`` {full|grouped: {regime: {val_accuracy, val_top5}}},
    ``test`` {full|grouped: {best_regime, accuracy, top5, macro_f1}}, ``groups`` (the mapping
    found), ``scratch``, ``report`` and a flat ``summary``."""
    metrics: dict[str, Any] = {
        "data": {"synthetic": data.synthetic, "image_size": data.image_size, "classes": data.n_classes,
                 **{s: len(m) for s, m in data.manifests.items()}},
        "weights": weights_note,
        "sweep": {tag: {r: {"val_accuracy": res.val_accuracy, "val_top5": res.val_top5, "epochs": res.epochs,
                            "seconds": res.seconds} for r, res in results.items()}
                  for tag, results in sweeps.items()},
        "test": {tag: {"best_regime": t.regime, "accuracy": t.accuracy, "top5": t.top5, "macro_f1": t.macro_f1,
                       "n_classes": len(t.class_names)} for tag, t in tests.items()},
        "augmentation": {tag: {r: res.augmentation for r, res in results.items()} for tag, results in sweeps.items()},
        "groups": grouping.to_json() if grouping is not None else None,
        "scratch": {a: {"val_accuracy": r.val_accuracy, "val_top5": r.val_top5, "epochs": r.epochs}
                    for a, r in (scratch or {}).items()},
        "report": {"sweep": REPORT_SWEEP, "test": REPORT_TEST, "scratch": REPORT_SCRATCH},
    }
    if extra:
        metrics.update(extra)
    summary: dict[str, Any] = {"classes": data.n_classes}
    full = sweeps.get("full") or {}
    if "tl" in full:
        summary["tl_val_acc"] = round(full["tl"].val_accuracy, 4)
    if full:
        best = best_result(full)
        summary["best_regime"] = best.regime
        summary["best_val_acc"] = round(best.val_accuracy, 4)
    if "full" in tests:
        summary["test_acc"] = round(tests["full"].accuracy, 4)
        summary["test_top5"] = round(tests["full"].top5, 4)
    if grouping is not None:
        summary["groups"] = grouping.n_groups
    grouped = sweeps.get("grouped") or {}
    if grouped:
        summary["grouped_best_val_acc"] = round(best_result(grouped).val_accuracy, 4)
    if "grouped" in tests:
        summary["grouped_test_acc"] = round(tests["grouped"].accuracy, 4)
    if "full" in tests and grouping is not None:
        metrics["test"]["full"]["group_accuracy"] = group_test_accuracy(tests["full"], grouping)
        summary["full_model_group_test_acc"] = round(metrics["test"]["full"]["group_accuracy"], 4)
    for arch, res in (scratch or {}).items():
        summary[f"scratch_{arch.lower()}_val_acc"] = round(res.val_accuracy, 4)
    metrics["summary"] = summary
    return metrics
