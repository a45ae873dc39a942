"""The UTKFace study (seed 003): age regression + gender from one network, the report's numbers,
and the steps ``notebooks/utkface.ipynb`` runs.

- Model A (:func:`kerasmt.models.vgg.model_a`): VGG-style CNN from scratch, split into an age and a
  gender branch; the report's 24-configuration search (its Table 2) redone with keras-tuner and an
  explicit objective (:func:`kerasmt.tuning.score`); the chosen CNN 10 trained over several seeds.
- Cross-stitch variant (:func:`kerasmt.models.vgg.model_a_cross_stitch`).
- Model B (:func:`kerasmt.models.transfer.transfer_model`): six ``keras.applications`` backbones,
  each with its own preprocessing (Table 3), head orders (Table 4), Hyperband over learning rate and
  units, fine-tuning of the last layers. The frozen phase trains the heads on cached backbone
  features (same result as training the whole model without augmentation, far cheaper).
- Beyond the report: a test split separate from the early-stopping split, mean ± std over seeds,
  baselines, and a fairness table (age MAE by age band, gender accuracy by race).

Everything is usable outside the notebook::

    from kerasmt.studies import utkface as study
    data = study.load_data("/data/UTKFace", image_size=128, out_dir="runs/utk")
    result = study.train_model_a(study.report_config(10), data, "runs/utk", seed=0, epochs=1000)
    result.test  # {"gender_accuracy": ..., "age_mae": ...}
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerasmt import diskarray, pipeline, tuning
from kerasmt.datasets import utkface as utk
from kerasmt.distribute import build_in_scope
from kerasmt.models import transfer
from kerasmt.models.cross_stitch import CrossStitch
from kerasmt.models.vgg import compile_age_gender, model_a, model_a_cross_stitch
from kerasmt.training import epoch_lines, fit
from kerasmt.utils import count_params, set_seed

# ------------------------------------------------------------------------------ report's numbers
#: Table 2: (CNN number, conv blocks, dense layers, units, split point, Val 2 gender accuracy, MAE)
REPORT_TABLE2: tuple[tuple[int, int, int, int, int, float, float], ...] = (
    (1, 3, 1, 100, 3, 0.8996, 6.321), (2, 3, 1, 300, 3, 0.8855, 6.661),
    (3, 3, 3, 100, 3, 0.8795, 6.082), (4, 3, 3, 300, 3, 0.8635, 6.137),
    (5, 5, 1, 100, 3, 0.8976, 5.664), (6, 5, 1, 300, 3, 0.9056, 5.868),
    (7, 5, 3, 100, 3, 0.8835, 6.238), (8, 5, 3, 300, 3, 0.8936, 5.946),
    (9, 5, 3, 100, 1, 0.8896, 6.031), (10, 5, 3, 300, 1, 0.9036, 5.715),
    (11, 5, 3, 100, 4, 0.9056, 6.262), (12, 5, 3, 300, 4, 0.8876, 6.103),
    (13, 3, 2, 200, 3, 0.8916, 5.91), (14, 3, 2, 200, 1, 0.9016, 6.18),
    (15, 3, 5, 200, 3, 0.8735, 6.228), (16, 5, 5, 200, 1, 0.8936, 6.196),
    (17, 5, 5, 200, 5, 0.8273, 5.955), (18, 2, 2, 150, 1, 0.8815, 6.377),
    (19, 5, 2, 100, 3, 0.9197, 6.143), (20, 5, 2, 300, 3, 0.8876, 5.851),
    (21, 5, 2, 200, 4, 0.8635, 6.299), (22, 5, 4, 200, 3, 0.8876, 5.943),
    (23, 3, 2, 200, 1, 0.8594, 6.703), (24, 3, 4, 100, 1, 0.8916, 5.96),
)
#: the configuration the report chose
REPORT_CHOSEN_CNN = 10
#: final results on the report's 499 held-out images (also its early-stopping set)
REPORT_MODEL_A: dict[str, float] = {"gender_accuracy": 0.9098, "age_mae": 5.949}
REPORT_MODEL_B: dict[str, float] = {"gender_accuracy": 0.8397, "age_mae": 5.639}
#: the best epoch in Model B's training log printed by the report (its claimed 83.97 % / 5.639 is
#: not an epoch of that log)
REPORT_MODEL_B_LOG_BEST: dict[str, float] = {"gender_accuracy": 0.8437, "age_mae": 5.658}
#: Table 3: 10-epoch comparison of the backbones (gender accuracy, age MAE)
REPORT_TABLE3: dict[str, tuple[float, float]] = {
    "EfficientNetB4": (0.52906, 15.1119),
    "VGG19": (0.75351, 11.8049),
    "VGG16": (0.77555, 11.9737),
    "InceptionV3": (0.79359, 9.2118),
    "ResNet50V2": (0.81363, 9.7123),
    "Xception": (0.83968, 9.4344),
}
#: Table 4: head orders on Xception (gender accuracy); keys as in transfer.HEAD_ORDERS
REPORT_TABLE4: dict[str, float] = {
    "dense-dense-dropout": 0.81882,
    "dense-bn-dropout": 0.81982,
    "bn-dense-dropout": 0.82182,
    "dense-dropout-bn": 0.82182,
    "dense-dropout-bn-dropout": 0.83083,
    "dense-bn": 0.82583,
    "dense-dropout": 0.83483,
}
#: age bands of the fairness table (lower edges; the last band is open)
AGE_BAND_EDGES: tuple[int, ...] = (0, 10, 20, 30, 40, 50, 60, 70)


def _fits(value: float, n: int, digits: int) -> bool:
    """Whether ``value`` (printed with ``digits`` decimals) is ``k / n`` for an integer ``k``."""
    return abs(round(round(value * n) / n, digits) - value) < 0.5 * 10 ** -digits + 1e-12


def report_consistency() -> pd.DataFrame:
    """The report's own inconsistencies, checked from its numbers: the accuracies of Table 3 are
    multiples of 1/499 and those of Table 4 of 1/999 (so the two tables were scored on different
    sets, 499 and 999 images, though both are said to use the same validation data), and Model B's
    claimed result is not an epoch of its printed log."""
    rows = []
    for name, (acc, _) in REPORT_TABLE3.items():
        rows.append({"table": "Table 3 (backbones)", "entry": name, "gender accuracy": acc,
                     "x 499": round(acc * 499, 2), "k/499": _fits(acc, 499, 5), "x 999": round(acc * 999, 2),
                     "k/999": _fits(acc, 999, 5)})
    for name, acc in REPORT_TABLE4.items():
        rows.append({"table": "Table 4 (head orders)", "entry": name, "gender accuracy": acc,
                     "x 499": round(acc * 499, 2), "k/499": _fits(acc, 499, 5), "x 999": round(acc * 999, 2),
                     "k/999": _fits(acc, 999, 5)})
    rows.append({"table": "Model B", "entry": f"claimed {REPORT_MODEL_B['gender_accuracy']:.2%} / {REPORT_MODEL_B['age_mae']}",
                 "gender accuracy": REPORT_MODEL_B["gender_accuracy"],
                 "note": f"not in its log; the log's best epoch: {REPORT_MODEL_B_LOG_BEST['gender_accuracy']:.2%} / "
                         f"{REPORT_MODEL_B_LOG_BEST['age_mae']}"})
    return pd.DataFrame(rows).set_index(["table", "entry"])


def ranking_sensitivity(table: pd.DataFrame | None = None, scales: Sequence[float] = tuple(range(1, 31)),
                        seed_noise: float | None = None) -> pd.DataFrame:
    """Which configuration the explicit objective ``(1 - accuracy) + MAE / scale`` picks for each
    ``scale`` (the report's Table 2 by default, or a :func:`search_table`), the runner-up and the
    winning margin in score points. ``seed_noise``: the standard deviation of the score between
    seeds of one configuration; a margin below it is marked a tie (the choice is then noise)."""
    from kerasmt import tuning

    frame = report_table2() if table is None else table
    key = "cnn" if "cnn" in frame.columns else None
    ids = frame[key].to_numpy() if key else frame.index.to_numpy()
    acc = frame["gender_accuracy"].astype(float).to_numpy()
    mae = frame["age_mae"].astype(float).to_numpy()
    rows = []
    for scale in scales:
        score = np.array([tuning.score(a, m, float(scale)) for a, m in zip(acc, mae)])
        order = np.argsort(score, kind="stable")
        margin = float(score[order[1]] - score[order[0]]) if len(order) > 1 else np.nan
        row = {"age_scale": scale, "winner": ids[order[0]], "runner_up": ids[order[1]] if len(order) > 1 else None,
               "margin": round(margin, 4)}
        if seed_noise is not None:
            row["tie (margin < seed noise)"] = bool(margin < seed_noise)
        rows.append(row)
    return pd.DataFrame(rows).set_index("age_scale")


def report_seed_noise() -> dict[str, float]:
    """The report's own estimate of seed noise: CNN 14 and CNN 23 are the same configuration
    trained twice; their accuracy, MAE and objective (scale 10) differences."""
    from kerasmt import tuning

    t = report_table2()
    a, b = t.loc[14], t.loc[23]
    return {"gender_accuracy": abs(float(a["gender_accuracy"] - b["gender_accuracy"])),
            "age_mae": abs(float(a["age_mae"] - b["age_mae"])),
            "score": abs(tuning.score(a["gender_accuracy"], a["age_mae"]) - tuning.score(b["gender_accuracy"], b["age_mae"]))}


def report_config(cnn: int) -> dict[str, int]:
    """Hyperparameters of the report's CNN ``cnn`` (1-24): n_blocks, n_dense, units, split_point."""
    for row in REPORT_TABLE2:
        if row[0] == int(cnn):
            return dict(zip(("n_blocks", "n_dense", "units", "split_point"), row[1:5]))
    raise ValueError(f"the report has no CNN {cnn}; CNNs are numbered 1-{len(REPORT_TABLE2)}")


def report_table2() -> pd.DataFrame:
    """The report's Table 2 with our explicit objective computed from its own numbers and the
    resulting rank (1 = best)."""
    frame = pd.DataFrame(REPORT_TABLE2, columns=["cnn", "n_blocks", "n_dense", "units", "split_point",
                                                 "gender_accuracy", "age_mae"]).set_index("cnn")
    frame["score"] = [round(tuning.score(a, m), 4) for a, m in zip(frame["gender_accuracy"], frame["age_mae"])]
    frame["rank"] = frame["score"].rank(method="min").astype(int)
    return frame


# ------------------------------------------------------------------------------------------ data
@dataclass
class UTKData:
    """The dataset of a run: full manifest, the seeded subset, its splits and decoded images.

    ``splits[scheme][split]`` is a manifest (columns of :func:`kerasmt.datasets.utkface.load`
    plus ``row``, the position in ``subset``); ``images_at(size)`` decodes the subset once per size.
    """

    root: Path
    synthetic: bool
    manifest: pd.DataFrame
    subset: pd.DataFrame
    splits: dict[str, dict[str, pd.DataFrame]]
    image_size: int
    skipped: list[str] = field(default_factory=list)
    split_files: dict[str, Path] = field(default_factory=dict)
    cache_dir: Path | None = None
    _images: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def images_at(self, size: int | None = None) -> np.ndarray:
        """uint8 RGB images of the subset at ``size`` x ``size`` (decoded on first use)."""
        size = int(size or self.image_size)
        if size not in self._images:
            self._images[size] = pipeline.load_images(self.subset["path"].tolist(), (size, size), 3,
                                                      cache_dir=self.cache_dir)
        return self._images[size]

    def frame(self, scheme: str, split: str) -> pd.DataFrame:
        try:
            return self.splits[scheme][split]
        except KeyError:
            raise KeyError(f"no split {scheme}/{split}; splits: "
                           f"{ {s: list(v) for s, v in self.splits.items()} }") from None

    def images(self, scheme: str, split: str, size: int | None = None) -> np.ndarray:
        # a NumPy array, or a lazy row view when the decoded subset lives on disk (> 1 GiB)
        return diskarray.take_rows(self.images_at(size), self.frame(scheme, split)["row"].to_numpy())

    def labels(self, scheme: str, split: str) -> dict[str, np.ndarray]:
        frame = self.frame(scheme, split)
        return {"age": frame["age"].to_numpy(np.float32), "gender": frame["gender"].to_numpy(np.int32)}

    def dataset(
        self,
        scheme: str,
        split: str,
        batch_size: int | None = 32,
        augment: Callable | None = None,
        shuffle: bool | None = None,
        seed: int = 0,
        size: int | None = None,
    ) -> tf.data.Dataset:
        """Batches ``(images in [0, 1], {"age", "gender"})`` of one split. The train split
        shuffles and drops its last incomplete batch (one graph trace instead of two); the others
        keep every image (``batch_size=None``: one batch for up to 256 images, else 128)."""
        size = int(size or self.image_size)
        frame = self.frame(scheme, split)
        if batch_size is None:
            batch_size = len(frame) if len(frame) <= 256 else 128
        train = split == "train"
        return pipeline.image_dataset(
            frame, ["age", "gender"], image_size=size, channels=3, batch_size=batch_size,
            shuffle=train if shuffle is None else shuffle, seed=seed, augment=augment,
            images=self.images(scheme, split, size), drop_remainder=train and len(frame) >= batch_size,
            n_classes={"gender": len(utk.LABELS["gender"])},
        )

    def mean_age(self, scheme: str = "final") -> float:
        """Mean age of the training split (the age output's initial bias)."""
        return float(self.frame(scheme, "train")["age"].mean())

    def describe(self) -> pd.DataFrame:
        """Images, mean age, share of women and of each race per split of every scheme."""
        rows = []
        for scheme, splits in self.splits.items():
            for split, frame in splits.items():
                row = {"scheme": scheme, "split": split, "images": len(frame),
                       "mean_age": round(float(frame["age"].mean()), 1),
                       "female_%": round(100 * float(frame["gender"].mean()), 1)}
                for code, race in enumerate(utk.LABELS["race"]):
                    row[f"{race}_%"] = round(100 * float((frame["race"] == code).mean()), 1)
                rows.append(row)
        return pd.DataFrame(rows).set_index(["scheme", "split"])


def load_data(
    data_dir: str | Path | None = None,
    subset: int | None = utk.REPORT_SUBSET,
    seed: int = 0,
    exclude: Sequence[str] = (),
    image_size: int = 128,
    n_synthetic: int = 5000,
    synthetic_image_size: int = 200,
    out_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> UTKData:
    """Read UTKFace from ``data_dir`` (or the synthetic set when ``None``), draw the seeded subset,
    cut the three split schemes and, with ``out_dir``, save them as CSV under ``out_dir/splits``
    (``subset.csv``, ``search_train.csv`` ...). Malformed file names are skipped with a warning
    (``data.skipped`` lists them)."""
    import warnings

    synthetic = data_dir is None
    root = utk.synthetic_root(n_synthetic, seed, synthetic_image_size) if synthetic else Path(data_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("always", utk.MalformedNameWarning)
        manifest = utk.load(root)
    picked = utk.subset(manifest, subset, seed=seed, exclude=exclude)
    picked["row"] = np.arange(len(picked))
    splits = {scheme: utk.make_splits(picked, scheme) for scheme in utk.SPLIT_SCHEMES}
    files: dict[str, Path] = {}
    if out_dir is not None:
        folder = Path(out_dir) / "splits"
        files["subset"] = utk.save_splits({"subset": picked}, folder)["subset"]
        for scheme, parts in splits.items():
            for split, path in utk.save_splits(parts, folder, prefix=f"{scheme}_").items():
                files[f"{scheme}_{split}"] = path
    data = UTKData(Path(root), synthetic, manifest, picked, splits, int(image_size),
                   list(manifest.attrs.get("skipped", [])), files, None if cache_dir is None else Path(cache_dir))
    data.images_at(image_size)
    return data


def baselines(data: UTKData, scheme: str = "final", split: str = "test") -> dict[str, float]:
    """What a model must beat on a split: the accuracy of always predicting the training split's
    majority gender and the MAE of always predicting its mean (and median) age."""
    train, test = data.frame(scheme, "train"), data.frame(scheme, split)
    majority = int(train["gender"].mean() >= 0.5)
    return {
        "majority_gender_accuracy": float((test["gender"] == majority).mean()),
        "mean_age_mae": float(np.abs(test["age"] - train["age"].mean()).mean()),
        "median_age_mae": float(np.abs(test["age"] - train["age"].median()).mean()),
    }


def augmentation(
    seed: int = 0, shift: float = 0.1, zoom: float = 0.2, rotation_degrees: float = 10.0, flip: bool = True
) -> keras.Sequential:
    """The report's augmentation as Keras preprocessing layers (training batches only):
    horizontal flip, shifts up to ``shift`` of the size, zoom *in* up to ``zoom``, rotation
    up to ±``rotation_degrees``. Edges are filled by reflection, as ImageDataGenerator's default
    'nearest' would roughly do."""
    steps: list[keras.layers.Layer] = []
    if flip:
        steps.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if shift:
        steps.append(keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 1))
    if zoom:
        steps.append(keras.layers.RandomZoom((-zoom, 0.0), fill_mode="reflect", seed=seed + 2))
    if rotation_degrees:
        steps.append(keras.layers.RandomRotation(rotation_degrees / 360.0, fill_mode="reflect", seed=seed + 3))
    return keras.Sequential(steps, name="augmentation")


# -------------------------------------------------------------------------------- architectures
def param_table(input_shape: Sequence[int] = (128, 128, 3), backbones: Sequence[str] = transfer.REPORT_BACKBONES) -> pd.DataFrame:
    """Parameter counts at ``input_shape`` (the report's 128x128x3): Model A as CNN 10 (split after
    block 1), CNN 17 (all blocks shared), CNN 1, CNN 18, the cross-stitch CNN 10 and Model B on
    each backbone (``weights=None``; the counts do not depend on the weights). The report prints
    no model summary, so there is nothing of its own to compare with."""
    rows = []
    for cnn in (10, 17, 1, 18):
        cfg = report_config(cnn)
        model = model_a(input_shape, **cfg)
        rows.append({"model": f"Model A, CNN {cnn}", "config": _config_text(cfg), "params": model.count_params(),
                     "trainable": count_params(model)["trainable"]})
        keras.backend.clear_session()
    model = model_a_cross_stitch(input_shape, **report_config(10))
    n_stitch = sum(isinstance(layer, CrossStitch) for layer in model.layers)
    rows.append({"model": "Model A + cross-stitch, CNN 10", "config": f"{_config_text(report_config(10))}, "
                 f"{n_stitch} cross-stitch units", "params": model.count_params(), "trainable": count_params(model)["trainable"]})
    for name in backbones:
        keras.backend.clear_session()
        model = transfer.transfer_model(input_shape, None, backbone=name)
        counts = transfer.count_params(model)
        rows.append({"model": f"Model B, {name}", "config": f"preprocess: keras.applications."
                     f"{transfer.backbone_spec(name).module}, frozen base {counts['backbone']:,}",
                     "params": counts["total"], "trainable": counts["trainable"]})
    keras.backend.clear_session()
    return pd.DataFrame(rows).set_index("model")


def _config_text(cfg: Mapping[str, int]) -> str:
    return (f"{cfg['n_blocks']} blocks, {cfg['n_dense']} x {cfg['units']} units, "
            f"split after block {min(cfg['split_point'], cfg['n_blocks'])}")


# ------------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    """A trained model, its history and its predictions and metrics on the test split."""

    name: str
    model: keras.Model
    history: pd.DataFrame
    test: dict[str, float]
    age_pred: np.ndarray
    gender_prob: np.ndarray
    seconds: float
    seed: int = 0
    checkpoint: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def params(self) -> int:
        return int(self.model.count_params())


def metrics_of(age: np.ndarray, gender: np.ndarray, age_pred: np.ndarray, gender_prob: np.ndarray) -> dict[str, float]:
    """Gender accuracy (threshold .5), age MAE and the search objective of predictions."""
    age_pred, gender_prob = np.asarray(age_pred).reshape(-1), np.asarray(gender_prob).reshape(-1)
    acc = float(np.mean((gender_prob >= 0.5).astype(int) == np.asarray(gender).reshape(-1)))
    mae = float(np.mean(np.abs(age_pred - np.asarray(age).reshape(-1))))
    return {"gender_accuracy": acc, "age_mae": mae, "score": tuning.score(acc, mae)}


def predict(model: keras.Model, inputs: Any) -> tuple[np.ndarray, np.ndarray]:
    """(age in years, probability of female) for every example of ``inputs``."""
    out = model.predict(inputs, verbose=0)
    return np.asarray(out["age"]).reshape(-1), np.asarray(out["gender"]).reshape(-1)


def save_predictor(model: keras.Model, out_dir: str | Path, name: str) -> Path:
    """Save ``model`` as a raw-image model (any-size RGB uint8 in, resized inside; outputs age in
    years and the probability of "Female"): ``<out_dir>/models/<name>.predict.keras``."""
    from kerasmt import modelinfo

    specs = [modelinfo.task_spec("age", "regression", unit="years"),
             modelinfo.task_spec("gender", "binary", utk.LABELS["gender"])]
    path = Path(out_dir) / "models" / f"{name}{modelinfo.SUFFIX}"
    return modelinfo.save_raw_image_model(model, path, specs, study="utkface", resize="stretch")


def train_age_gender(
    model: keras.Model,
    data: UTKData,
    out_dir: str | Path,
    name: str,
    epochs: int,
    scheme: str = "final",
    batch_size: int = 32,
    augment: Callable | None = None,
    patience: int = 50,
    min_delta: float = 0.1,
    seed: int = 0,
    size: int | None = None,
    verbose: int = 0,
    strategy: str | tf.distribute.Strategy | None = None,
) -> TrainResult:
    """Fit a compiled age/gender model on ``scheme``'s train split with early stopping on its val
    split (``val_loss``, ``min_delta``, ``patience``; best weights restored, checkpoint
    ``models/<name>.keras``), then predict its test split. ``strategy``: the ``tf.distribute``
    strategy the model was built in (``batch_size`` is then the global batch)."""
    train = data.dataset(scheme, "train", batch_size, augment=augment, seed=seed, size=size)
    val = data.dataset(scheme, "val", None, size=size)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=min_delta, patience=patience)
    start = time.perf_counter()
    result = fit(model, train, val, epochs=epochs, run_dir=out_dir, name=name, monitor="val_loss",
                 restore_best=True, callbacks=[tuning.ScoreCallback(), stop], verbose=verbose, strategy=strategy)
    seconds = time.perf_counter() - start
    save_predictor(model, out_dir, name)
    age_pred, gender_prob = predict(model, data.dataset(scheme, "test", None, size=size))
    labels = data.labels(scheme, "test")
    test = metrics_of(labels["age"], labels["gender"], age_pred, gender_prob)
    return TrainResult(name, model, result.history, test, age_pred, gender_prob, seconds, seed, result.checkpoint)


def train_model_a(
    config: Mapping[str, int],
    data: UTKData,
    out_dir: str | Path,
    seed: int = 0,
    epochs: int = 1000,
    cross_stitch: bool = False,
    base_filters: int = 64,
    bn_momentum: float = 0.99,
    learning_rate: float = 1e-4,
    batch_size: int = 32,
    augment: bool = True,
    patience: int = 50,
    loss_weights: Mapping[str, float] | None = None,
    stitch_lr_multiplier: float = 1.0,
    tag: str = "",
    verbose: int = 0,
    strategy: str | tf.distribute.Strategy | None = None,
) -> TrainResult:
    """Build (seeded), compile and train Model A (or its cross-stitch variant) on the final split.

    ``config`` holds n_blocks, n_dense, units, split_point (e.g. :func:`report_config`). The age
    output's bias starts at the training mean age. ``loss_weights`` default to 1:1 (the report's
    Model A); its cross-stitch code used ``{"gender": 100, "age": 1}``. ``stitch_lr_multiplier``:
    the cross-stitch alphas' learning-rate multiplier (:class:`kerasmt.models.CrossStitch`).
    ``tag`` is added to the run's name (files ``models/<name>.keras``). ``strategy``: a
    ``tf.distribute`` strategy or its name (:mod:`kerasmt.distribute`), built and trained in it."""
    set_seed(seed)
    builder = model_a_cross_stitch if cross_stitch else model_a
    name = f"{'cross_stitch' if cross_stitch else 'model_a'}{'_' + tag if tag else ''}_seed{seed}"
    cfg = dict(config)
    if cross_stitch:
        cfg["stitch_lr_multiplier"] = stitch_lr_multiplier
    cfg["split_point"] = tuning.effective_split(cfg["n_blocks"], cfg["split_point"])
    model = build_in_scope(
        lambda: compile_age_gender(
            builder((data.image_size, data.image_size, 3), **cfg, base_filters=base_filters,
                    age_bias=data.mean_age(), bn_momentum=bn_momentum, name=name),
            learning_rate, loss_weights=loss_weights),
        strategy)
    aug = augmentation(seed) if augment else None
    result = train_age_gender(model, data, out_dir, name, epochs, batch_size=batch_size, augment=aug,
                              patience=patience, seed=seed, verbose=verbose, strategy=strategy)
    result.extra["loss_weights"] = dict(loss_weights or {"age": 1.0, "gender": 1.0})
    return result


def over_seeds(train: Callable[[int], TrainResult], seeds: Sequence[int]) -> list[TrainResult]:
    """``[train(seed) for seed in seeds]``, clearing the Keras session in between."""
    results = []
    for seed in seeds:
        keras.backend.clear_session()
        results.append(train(int(seed)))
    return results


def seed_summary(results: Sequence[TrainResult]) -> dict[str, float]:
    """Mean and standard deviation (ddof=1; 0 for one seed) of the test metrics over seeds."""
    out: dict[str, float] = {"seeds": len(results)}
    for key in ("gender_accuracy", "age_mae"):
        values = np.array([r.test[key] for r in results], dtype=float)
        out[key] = float(values.mean())
        out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def pm(mean: float, std: float, digits: int = 3) -> str:
    """``"mean ± std"`` text."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def seed_comparison(runs: Mapping[str, Sequence[TrainResult]], reference: str) -> pd.DataFrame:
    """Each set of runs (``{name: runs over seeds}``) against ``reference``: mean ± std of gender
    accuracy and age MAE over seeds, the difference of the means, and a verdict per metric:
    ``"tie"`` when the difference is within the sum of the two standard deviations (the mean ±
    std intervals overlap; with one seed each, no spread is known and the verdict says so)."""
    ref = seed_summary(runs[reference])
    rows = []
    for name, results in runs.items():
        summ = seed_summary(results)
        row: dict[str, Any] = {"model": name, "seeds": int(summ["seeds"]),
                               "gender_accuracy": pm(summ["gender_accuracy"], summ["gender_accuracy_std"]),
                               "age_mae": pm(summ["age_mae"], summ["age_mae_std"], 2)}
        if name != reference:
            for key, better in (("gender_accuracy", 1), ("age_mae", -1)):
                diff = summ[key] - ref[key]
                noise = summ[f"{key}_std"] + ref[f"{key}_std"]
                row[f"{key} - {reference}"] = round(diff, 4)
                if min(summ["seeds"], ref["seeds"]) < 2:
                    row[f"{key} verdict"] = "one seed: no spread"
                else:
                    row[f"{key} verdict"] = "tie" if abs(diff) <= noise else (
                        "better" if diff * better > 0 else "worse")
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def seeds_table(results: Sequence[TrainResult]) -> pd.DataFrame:
    """One row per seed (test gender accuracy, age MAE, epochs, seconds) and a mean ± std row."""
    rows = [{"seed": r.seed, "gender_accuracy": round(r.test["gender_accuracy"], 4), "age_mae": round(r.test["age_mae"], 3),
             "epochs": len(r.history), "best_epoch": int(r.history["val_loss"].idxmin()), "seconds": round(r.seconds, 1)}
            for r in results]
    summary = seed_summary(results)
    rows.append({"seed": "mean ± std", "gender_accuracy": pm(summary["gender_accuracy"], summary["gender_accuracy_std"]),
                 "age_mae": pm(summary["age_mae"], summary["age_mae_std"], 2), "epochs": "", "best_epoch": "",
                 "seconds": round(sum(r.seconds for r in results), 1)})
    return pd.DataFrame(rows).set_index("seed")


# --------------------------------------------------------------------------------------- search
def run_search(
    data: UTKData,
    out_dir: str | Path,
    algorithm: str = "configs",
    cnns: Sequence[int] | None = None,
    max_trials: int | None = None,
    epochs: int = 1000,
    executions: int = 1,
    seed: int = 0,
    base_filters: int = 64,
    bn_momentum: float = 0.99,
    learning_rate: float = 1e-4,
    batch_size: int = 32,
    augment: bool = True,
    patience: int = 50,
) -> tuple[Any, pd.DataFrame]:
    """The Model A search on the ``search`` split (train / early stopping on val / scored on
    test = the report's Val 2). ``algorithm="configs"`` replays the report's CNNs ``cnns`` (all 24
    by default). Returns (tuner, :func:`search_table`). Tuner files: ``out_dir/tuning/model_a``."""
    aug = augmentation(seed) if augment else None
    train = data.dataset("search", "train", batch_size, augment=aug, seed=seed)
    val = data.dataset("search", "val", None)
    rank = data.dataset("search", "test", None)
    cnns = list(cnns) if cnns is not None else [row[0] for row in REPORT_TABLE2]
    configs = [report_config(c) for c in cnns] if algorithm == "configs" else None
    tuner = tuning.search_model_a(
        train, val, rank, Path(out_dir) / "tuning", (data.image_size, data.image_size, 3), epochs=epochs,
        algorithm=algorithm, configs=configs, max_trials=max_trials, executions_per_trial=executions, seed=seed,
        base_filters=base_filters, age_bias=data.mean_age("search"), bn_momentum=bn_momentum,
        learning_rate=learning_rate, patience=patience,
    )
    return tuner, search_table(tuner, cnns if algorithm == "configs" else None)


def search_table(tuner: Any, cnns: Sequence[int] | None = None) -> pd.DataFrame:
    """Trials like the report's Table 2: hyperparameters, our Val 2 gender accuracy, MAE, score and
    rank, and (for replayed report CNNs) the report's accuracy and MAE beside them."""
    frame = tuning.trials_frame(tuner)
    if frame.empty:
        return frame
    frame = frame.rename(columns={"epochs": "epochs_trained"})
    if "split_point" in frame:
        frame["split_point"] = [tuning.effective_split(b, s) for b, s in zip(frame["n_blocks"], frame["split_point"])]
    frame["rank"] = frame["score"].rank(method="min").astype("Int64")
    if cnns is not None:
        report = report_table2()
        numbers = list(cnns)[: len(frame)]
        frame.insert(0, "cnn", numbers)
        frame["report_accuracy"] = [report.loc[c, "gender_accuracy"] for c in numbers]
        frame["report_mae"] = [report.loc[c, "age_mae"] for c in numbers]
        frame["report_rank"] = [int(report.loc[c, "rank"]) for c in numbers]
    for col in ("gender_accuracy", "score"):
        frame[col] = frame[col].astype(float).round(4)
    frame["age_mae"] = frame["age_mae"].astype(float).round(3)
    if "params" in frame:
        frame["params"] = frame["params"].astype(int)
    if "epochs_trained" in frame:
        frame["epochs_trained"] = frame["epochs_trained"].astype(float).round(1)
    return frame.drop(columns=["status"])


def best_config(table: pd.DataFrame) -> dict[str, int]:
    """The hyperparameters of the best-scoring trial of a :func:`search_table`."""
    row = table.loc[table["score"].astype(float).idxmin()]
    return {k: int(row[k]) for k in tuning.MODEL_A_SPACE}


# -------------------------------------------------------------------------------------- Model B
@dataclass
class BackboneRun:
    """A Model B backbone with cached features of the final split and its head training."""

    name: str
    model: keras.Model
    features: dict[str, np.ndarray]
    history: pd.DataFrame
    val: dict[str, float]
    extract_seconds: float
    train_seconds: float


def feature_dataset(x: np.ndarray, y: Mapping[str, np.ndarray], batch_size: int = 32, shuffle: bool = False,
                    seed: int = 0) -> tf.data.Dataset:
    """Batches ``(features, {"age", "gender"})`` from cached features."""
    ds = tf.data.Dataset.from_tensor_slices((x, dict(y)))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _fit_heads(heads: keras.Model, data: UTKData, features: Mapping[str, np.ndarray], epochs: int, batch_size: int,
               seed: int, patience: int | None = None, name: str = "heads", verbose: int = 0) -> pd.DataFrame:
    """Train heads on cached features; with ``patience``, early stopping on ``val_score`` (the
    explicit objective, so that gender counts as much as age) with the best weights restored."""
    train = feature_dataset(features["train"], data.labels("final", "train"), batch_size, shuffle=True, seed=seed)
    val = feature_dataset(features["val"], data.labels("final", "val"), 256)
    callbacks: list = [tuning.ScoreCallback()]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_score", mode="min", patience=patience,
                                                       restore_best_weights=True))
    callbacks += epoch_lines(name, verbose)
    history = heads.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=verbose, shuffle=False)
    frame = pd.DataFrame(history.history)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
    return frame


def _heads_metrics(heads: keras.Model, data: UTKData, features: np.ndarray, split: str) -> dict[str, float]:
    age_pred, gender_prob = predict(heads, features)
    labels = data.labels("final", split)
    return metrics_of(labels["age"], labels["gender"], age_pred, gender_prob)


def compare_backbones(
    data: UTKData,
    backbones: Sequence[str] = transfer.REPORT_BACKBONES,
    weights: str | None = "imagenet",
    size: int = 128,
    epochs: int = 10,
    learning_rate: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
    verbose: int = 0,
) -> tuple[pd.DataFrame, dict[str, BackboneRun]]:
    """The report's Table 3: each backbone frozen, the default heads (Dense -> Dropout) trained
    ``epochs`` epochs (the report: 10) on cached features of the final train split, scored on its
    val split. Returns (table with the report's numbers beside ours, {backbone: run}). One line
    per epoch ("<backbone> heads epoch ...") unless ``verbose`` turns Keras' own output on."""
    runs: dict[str, BackboneRun] = {}
    rows = []
    for name in backbones:
        keras.backend.clear_session()
        set_seed(seed)
        model = transfer.transfer_model((size, size, 3), weights, backbone=name, age_bias=data.mean_age())
        start = time.perf_counter()
        features = {split: transfer.extract_features(model, data.images("final", split, size))
                    for split in ("train", "val", "test")}
        extract = time.perf_counter() - start
        heads = compile_age_gender(transfer.head_model(model), learning_rate)
        start = time.perf_counter()
        history = _fit_heads(heads, data, features, epochs, batch_size, seed, name=f"{name} heads", verbose=verbose)
        seconds = time.perf_counter() - start
        val = _heads_metrics(heads, data, features["val"], "val")
        runs[name] = BackboneRun(name, model, features, history, val, extract, seconds)
        report = REPORT_TABLE3.get(name, (np.nan, np.nan))
        rows.append({"backbone": name, "preprocess": transfer.backbone_spec(name).module,
                     "features": features["train"].shape[1], "gender_accuracy": round(val["gender_accuracy"], 4),
                     "age_mae": round(val["age_mae"], 3), "score": round(val["score"], 4),
                     "report_gender": report[0], "report_mae": report[1],
                     "extract_s": round(extract, 1), "train_s": round(seconds, 1)})
    table = pd.DataFrame(rows).set_index("backbone").sort_values("score")
    return table, runs


def compare_heads(
    data: UTKData,
    run: BackboneRun,
    orders: Mapping[str, Sequence[str]] = transfer.HEAD_ORDERS,
    epochs: int = 10,
    units: int = 256,
    learning_rate: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
    verbose: int = 0,
) -> pd.DataFrame:
    """The report's Table 4: head layer orders on one backbone's cached features, scored on the
    final val split, with the report's gender accuracy beside ours (one line per epoch, as in
    :func:`compare_backbones`)."""
    rows = []
    dim = run.features["train"].shape[1]
    for key, order in orders.items():
        keras.backend.clear_session()
        set_seed(seed)
        heads = transfer.age_gender_heads(dim, order, units, age_bias=data.mean_age())
        compile_age_gender(heads, learning_rate)
        _fit_heads(heads, data, run.features, epochs, batch_size, seed, name=f"{key} heads", verbose=verbose)
        val = _heads_metrics(heads, data, run.features["val"], "val")
        rows.append({"head": " -> ".join(order) + " -> output", "order": key,
                     "gender_accuracy": round(val["gender_accuracy"], 4), "age_mae": round(val["age_mae"], 3),
                     "score": round(val["score"], 4), "report_gender": REPORT_TABLE4.get(key, np.nan)})
    return pd.DataFrame(rows).set_index("head")


def run_hyperband(
    data: UTKData,
    run: BackboneRun,
    head: Sequence[str],
    out_dir: str | Path,
    max_epochs: int = 30,
    factor: int = 3,
    batch_size: int = 32,
    seed: int = 0,
) -> tuple[Any, pd.DataFrame, dict[str, Any]]:
    """Hyperband over the heads' learning rate and units on cached features (objective
    ``val_score``). Returns (tuner, trials table, best {"learning_rate", "units"})."""
    tuner = tuning.hyperband_heads(
        run.features["train"], data.labels("final", "train"), run.features["val"], data.labels("final", "val"),
        Path(out_dir) / "tuning", head=head, max_epochs=max_epochs, factor=factor, batch_size=batch_size, seed=seed,
        age_bias=data.mean_age(),
    )
    table = tuning.trials_frame(tuner)
    for col in ("val_score", "val_gender_accuracy", "val_age_mae"):
        if col in table:
            table[col] = table[col].astype(float).round(4)
    table["learning_rate"] = table["learning_rate"].astype(float).map(lambda v: float(f"{v:.3g}"))
    keep = [c for c in ("learning_rate", "units", "epochs_budget", "val_score", "val_gender_accuracy", "val_age_mae")
            if c in table]
    best = tuner.get_best_hyperparameters(1)[0].values
    return tuner, table[keep], {"learning_rate": float(best["learning_rate"]), "units": int(best["units"])}


def train_model_b(
    data: UTKData,
    run: BackboneRun,
    out_dir: str | Path,
    head: Sequence[str] = transfer.HEAD_ORDERS["dense-dropout"],
    units: int = 256,
    learning_rate: float = 1e-4,
    head_epochs: int = 30,
    fine_tune_layers: int = 2,
    fine_tune_epochs: int = 50,
    fine_tune_lr_factor: float = 0.1,
    patience: int = 50,
    batch_size: int = 32,
    augment: bool = True,
    seed: int = 0,
    verbose: int = 0,
) -> TrainResult:
    """The final Model B: the chosen backbone (its weights reused from ``run``) with the chosen head,
    (1) heads trained on cached features (``head_epochs``, best val_loss kept), then (2) the last
    ``fine_tune_layers`` weighted backbone layers unfrozen and the whole model trained on augmented
    images at ``learning_rate * fine_tune_lr_factor`` with early stopping on ``val_loss``. The
    weights kept are those with the better validation score (:func:`kerasmt.tuning.score`) of the
    two phases' best (``extra["kept"]`` says which); test metrics at the end. The history has the two phases one after the other (column
    ``phase``)."""
    keras.backend.clear_session()
    set_seed(seed)
    size = run.model.input_shape[1]
    model = transfer.transfer_model((size, size, 3), None, "model_b", backbone=run.name, head=head, units=units,
                                    age_bias=data.mean_age())
    transfer.base_of(model).set_weights(transfer.base_of(run.model).get_weights())
    heads = compile_age_gender(transfer.head_model(model), learning_rate)
    start = time.perf_counter()
    phase1 = _fit_heads(heads, data, run.features, head_epochs, batch_size, seed, patience=patience,
                        verbose=verbose)
    phase1["phase"] = "heads (cached features)"
    heads_val = _heads_metrics(heads, data, run.features["val"], "val")
    heads_weights = model.get_weights()
    unfrozen = transfer.unfreeze_last(model, fine_tune_layers)
    compile_age_gender(model, learning_rate * fine_tune_lr_factor)
    result = train_age_gender(model, data, out_dir, "model_b", fine_tune_epochs, batch_size=batch_size,
                              augment=augmentation(seed) if augment else None, patience=patience, seed=seed,
                              size=size, verbose=verbose)
    kept = "fine-tuning"
    age_val, gender_val = predict(model, data.dataset("final", "val", None, size=size))
    labels = data.labels("final", "val")
    tuned_val = metrics_of(labels["age"], labels["gender"], age_val, gender_val)
    if tuned_val["score"] > heads_val["score"]:  # fine-tuning did not help: undo it
        kept = "heads"
        model.set_weights(heads_weights)
        transfer.unfreeze_last(model, 0)
        model.save(result.checkpoint)
        save_predictor(model, out_dir, "model_b")
        result.age_pred, result.gender_prob = predict(model, data.dataset("final", "test", None, size=size))
        labels = data.labels("final", "test")
        result.test = metrics_of(labels["age"], labels["gender"], result.age_pred, result.gender_prob)
    phase2 = result.history.copy()
    phase2["phase"] = f"fine-tuning last {len(unfrozen)} layers"
    phase2.index = phase2.index + len(phase1)
    result.history = pd.concat([phase1, phase2])
    result.history.index.name = "epoch"
    result.seconds = time.perf_counter() - start
    result.extra = {"unfrozen": unfrozen, "backbone": run.name, "head": list(head), "units": units,
                    "learning_rate": learning_rate, "head_epochs": len(phase1), "size": size, "kept": kept,
                    "val_score_heads": heads_val["score"], "val_score_fine_tuned": tuned_val["score"]}
    return result


# ------------------------------------------------------------------------------ results, plots
def results_table(rows: Mapping[str, Mapping[str, Any]], base: Mapping[str, float]) -> pd.DataFrame:
    """Test results per model (``{name: seed_summary or test dict, plus report numbers}``) with the
    baselines as the last rows."""
    out = []
    for name, row in rows.items():
        acc, mae = row["gender_accuracy"], row["age_mae"]
        out.append({
            "model": name,
            "seeds": int(row.get("seeds", 1)),
            "gender_accuracy": pm(acc, row["gender_accuracy_std"]) if row.get("seeds", 1) > 1 else round(acc, 4),
            "age_mae": pm(mae, row["age_mae_std"], 2) if row.get("seeds", 1) > 1 else round(mae, 3),
            "report_gender_accuracy": row.get("report_gender_accuracy", np.nan),
            "report_age_mae": row.get("report_age_mae", np.nan),
        })
    out.append({"model": "baseline: majority gender / mean age", "seeds": 0,
                "gender_accuracy": round(base["majority_gender_accuracy"], 4), "age_mae": round(base["mean_age_mae"], 3),
                "report_gender_accuracy": np.nan, "report_age_mae": np.nan})
    return pd.DataFrame(out).set_index("model")


def age_band(age: np.ndarray, edges: Sequence[int] = AGE_BAND_EDGES) -> pd.Categorical:
    """Age bands ``0-9``, ``10-19``, ..., ``70+`` (ordered categories)."""
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])] + [f"{edges[-1]}+"]
    codes = np.searchsorted(np.asarray(edges), np.asarray(age, dtype=float), side="right") - 1
    return pd.Categorical.from_codes(np.clip(codes, 0, len(labels) - 1), categories=labels, ordered=True)


def fairness_tables(frame: pd.DataFrame, predictions: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(age MAE by age band, gender accuracy by race) on a split for each model
    (``{model: (age_pred, gender_prob)}``), with the number of images per group."""
    band = pd.Series(age_band(frame["age"].to_numpy()))
    race = pd.Series(pd.Categorical.from_codes(frame["race"].to_numpy(), categories=utk.LABELS["race"]))
    by_age = pd.DataFrame({"images": band.value_counts(sort=False)})
    by_race = pd.DataFrame({"images": race.value_counts(sort=False)})
    truth_age, truth_gender = frame["age"].to_numpy(), frame["gender"].to_numpy()
    for name, (age_pred, gender_prob) in predictions.items():
        err = pd.Series(np.abs(np.asarray(age_pred).reshape(-1) - truth_age))
        by_age[f"{name} MAE"] = err.groupby(band, observed=False).mean().round(2)
        hit = pd.Series(((np.asarray(gender_prob).reshape(-1) >= 0.5).astype(int) == truth_gender).astype(float))
        by_race[f"{name} gender acc"] = hit.groupby(race, observed=False).mean().round(3)
        by_race[f"{name} MAE"] = err.groupby(race, observed=False).mean().round(2)
    by_age.index.name, by_race.index.name = "age band", "race"
    return by_age, by_race


def plot_age_by_gender(manifest: pd.DataFrame, title: str = ""):
    """The report's Figure 2: age distribution of each gender (and race counts)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [2, 1]})
    bins = np.arange(0, max(101, int(manifest["age"].max()) + 5), 5)
    for code, name in enumerate(utk.LABELS["gender"]):
        ages = manifest.loc[manifest["gender"] == code, "age"]
        axes[0].hist(ages, bins=bins, alpha=0.55, label=f"{name} (n={len(ages)}, mean {ages.mean():.1f})")
    axes[0].set_xlabel("age (years)")
    axes[0].set_ylabel("images")
    axes[0].legend(fontsize=8)
    axes[0].set_title("age distribution by gender")
    counts = pd.crosstab(utk.label_names(manifest, "race"), utk.label_names(manifest, "gender"))
    counts = counts.reindex(utk.LABELS["race"]).fillna(0)
    counts.plot.bar(ax=axes[1], rot=30, fontsize=8)
    axes[1].set_title("images by race and gender")
    axes[1].set_xlabel("")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_augmentation(image: np.ndarray, aug: keras.Sequential, n: int = 7, seed: int = 0):
    """One image and ``n`` augmented versions of it."""
    from kerasmt import plots

    tf.random.set_seed(seed)
    x = np.repeat(image[None].astype("float32") / 255.0, n, axis=0)
    out = np.clip(keras.ops.convert_to_numpy(aug(x, training=True)), 0, 1)
    images = np.concatenate([x[:1], out])
    return plots.image_grid(images, ["original"] + [f"augmented {i + 1}" for i in range(n)], ncols=n + 1, cell=1.4)


def plot_curves(result: TrainResult, title: str = ""):
    """Training and validation loss, gender accuracy and age MAE per epoch (report Figures 4-5)."""
    from kerasmt import plots

    return plots.plot_history(result.history, metrics=("loss", "accuracy", "mae"), tasks=("gender", "age"),
                              title=title or result.name)


def plot_age_scatter(frame: pd.DataFrame, predictions: Mapping[str, tuple[np.ndarray, np.ndarray]]):
    """Predicted against true age for each model, with the identity line."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(predictions), figsize=(3.4 * len(predictions), 3.2), squeeze=False)
    truth = frame["age"].to_numpy()
    top = max(truth.max(), max(float(np.max(p[0])) for p in predictions.values())) + 2
    for ax, (name, (age_pred, _)) in zip(axes[0], predictions.items()):
        ax.scatter(truth, age_pred, s=6, alpha=0.5)
        ax.plot([0, top], [0, top], color="grey", lw=1)
        ax.set_title(f"{name}: MAE {np.mean(np.abs(age_pred - truth)):.2f}", fontsize=9)
        ax.set_xlabel("true age")
        ax.set_ylabel("predicted age")
    fig.tight_layout()
    return fig


def plot_predictions(images: np.ndarray, frame: pd.DataFrame, age_pred: np.ndarray, gender_prob: np.ndarray,
                     n: int = 8, title: str = ""):
    """The ``n`` best and ``n`` worst test predictions (by the search objective per image), captioned
    "true age / gender" and "predicted age / gender" (report Figures 10-11)."""
    from kerasmt import plots

    truth_age, truth_gender = frame["age"].to_numpy(), frame["gender"].to_numpy()
    wrong = ((np.asarray(gender_prob) >= 0.5).astype(int) != truth_gender).astype(float)
    error = wrong + np.abs(np.asarray(age_pred) - truth_age) / tuning.AGE_SCALE
    order = np.argsort(error, kind="stable")
    picks = np.concatenate([order[:n], order[::-1][:n]])
    short = ["M", "F"]
    titles = [f"true {truth_age[i]:.0f} {short[truth_gender[i]]}\npred {age_pred[i]:.0f} "
              f"{short[int(gender_prob[i] >= 0.5)]}" for i in picks]
    return plots.image_grid(images[picks], titles, ncols=n, cell=1.25,
                            suptitle=title or f"top row: {n} best, bottom row: {n} worst predictions")


def metrics_summary(
    data: UTKData,
    base: Mapping[str, float],
    model_a_results: Sequence[TrainResult],
    cross_stitch_results: Sequence[TrainResult],
    model_b: TrainResult | None,
    search: pd.DataFrame,
    backbones: pd.DataFrame | None = None,
    heads: pd.DataFrame | None = None,
    params: pd.DataFrame | None = None,
    fairness: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The study's ``metrics.json``: ``model_a``, ``cross_stitch`` (mean over seeds, with ``_std``
    and ``per_seed``), ``model_b`` -> gender_accuracy / age_mae on the final test split;
    ``search`` (a list of trials), baselines, data sizes, the report's numbers and a flat
    ``summary`` for ``kerasmt demo``."""
    def per_seed(results):
        return [{"seed": r.seed, **{k: r.test[k] for k in ("gender_accuracy", "age_mae")}, "epochs": len(r.history)}
                for r in results]

    metrics: dict[str, Any] = {
        "data": {"synthetic": data.synthetic, "images": len(data.manifest), "skipped_malformed": len(data.skipped),
                 "subset": len(data.subset), "image_size": data.image_size,
                 "splits": {s: {k: len(v) for k, v in parts.items()} for s, parts in data.splits.items()}},
        "baselines": dict(base),
        "model_a": {**seed_summary(model_a_results), "per_seed": per_seed(model_a_results)},
        "cross_stitch": {**seed_summary(cross_stitch_results), "per_seed": per_seed(cross_stitch_results)},
        "search": search.reset_index().to_dict(orient="records"),
        "report": {"model_a": REPORT_MODEL_A, "model_b": REPORT_MODEL_B,
                   "table3": {k: {"gender_accuracy": v[0], "age_mae": v[1]} for k, v in REPORT_TABLE3.items()}},
    }
    if model_b is not None:
        metrics["model_b"] = {"gender_accuracy": model_b.test["gender_accuracy"], "age_mae": model_b.test["age_mae"],
                              **{k: v for k, v in model_b.extra.items()}}
    if backbones is not None:
        metrics["backbones"] = backbones.reset_index().to_dict(orient="records")
    if heads is not None:
        metrics["head_orders"] = heads.reset_index().to_dict(orient="records")
    if params is not None:
        metrics["params"] = {k: int(v) for k, v in params["params"].items()}
    if fairness is not None:
        metrics["fairness"] = {"age_band": fairness[0].reset_index().to_dict(orient="records"),
                               "race": fairness[1].reset_index().to_dict(orient="records")}
    if extra:
        metrics.update(extra)
    summary = {
        "model_a.gender_accuracy": round(metrics["model_a"]["gender_accuracy"], 4),
        "model_a.age_mae": round(metrics["model_a"]["age_mae"], 3),
        "cross_stitch.gender_accuracy": round(metrics["cross_stitch"]["gender_accuracy"], 4),
        "cross_stitch.age_mae": round(metrics["cross_stitch"]["age_mae"], 3),
    }
    if model_b is not None:
        summary["model_b.gender_accuracy"] = round(model_b.test["gender_accuracy"], 4)
        summary["model_b.age_mae"] = round(model_b.test["age_mae"], 3)
    summary["baseline.majority_gender"] = round(base["majority_gender_accuracy"], 4)
    summary["baseline.mean_age_mae"] = round(base["mean_age_mae"], 3)
    metrics["summary"] = summary
    return metrics
