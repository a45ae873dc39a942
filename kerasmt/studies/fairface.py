"""The FairFace study (seed 002): the report's protocol, its numbers, and the steps the notebook runs.

The notebook ``notebooks/fairface.ipynb`` calls these functions one step per cell; everything here
is also usable on its own::

    from kerasmt.studies import fairface as study
    data = study.load_data("/data/fairface")          # or None for the synthetic dataset
    result = study.train_classifier("small_cnn", "gender", data, epochs=50, out_dir="runs/ff")
    result.accuracy["gender"], result.confusion["gender"]
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerasmt import pipeline
from kerasmt.datasets import fairface as ff
from kerasmt.distribute import build_in_scope
from kerasmt.metrics import accuracy_from_confusion, confusion, majority_accuracy
from kerasmt.models import classifiers
from kerasmt.models.vae import build_vae
from kerasmt.training import compile_classifier, fit, predict_classes
from kerasmt.utils import set_seed

#: The report's networks (single-task builders take ``n_classes``).
BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "dense": classifiers.dense_net,
    "small_cnn": classifiers.small_cnn,
    "own_cnn": classifiers.own_cnn,
}

#: Epochs the report trained each network for (task 1 gender ran 10 of its planned 50).
REPORT_EPOCHS: dict[str, dict[str, int] | int] = {
    "dense": {"gender": 10, "age": 50},
    "small_cnn": {"gender": 50, "age": 50},
    "own_cnn": {"gender": 10, "age": 10},
    "multitask": 10,
    "vae": 10,
}

#: Parameter counts printed in the report's model summaries.
REPORT_PARAMS: dict[str, int] = {
    "dense_gender": 1_625_902,
    "dense_age": 1_626_609,
    "small_cnn_gender": 785_342,
    "small_cnn_age": 786_049,
    "own_cnn_gender": 651_266,
    "own_cnn_age": 652_169,
    "multitask_gender_age": 106_315,
    "vae": 104_341,
    "vae_decoder": 45_569,
}

#: The report's validation accuracies (final epoch; "best" = best epoch where the report shows it).
REPORT_VAL_ACCURACY: dict[str, dict[str, float]] = {
    "dense": {"gender": 0.716, "age": 0.362},
    "small_cnn": {"gender": 0.782, "age": 0.373},
    "own_cnn": {"gender": 0.812, "age": 0.406},
    "multitask": {"gender": 0.793, "age": 0.412},
}
REPORT_BEST_VAL_ACCURACY: dict[str, dict[str, float]] = {"small_cnn": {"gender": 0.803, "age": 0.429}}
#: the report's gender "precision" (section 5.2): ``cm[0, 0] / cm[0].sum()`` with rows = true
#: labels, i.e. the recall of Male, not a precision
REPORT_GENDER_PRECISION: dict[str, float] = {"small_cnn": 0.7831}
#: parameter counts of the two multi-task networks: the report's (gender + age) and the extension
#: with the race head the report announced but never trained
MULTITASK_PARAMS: dict[str, int] = {"gender_age": 106_315, "gender_age_race": 147_922}

#: Age "accuracy" the report's text claims (top-left 2x2 block of the 9x9 confusion matrix)
#: beside the true validation accuracy of the same model (trace / sum; report sections 4.2.2,
#: 5.3, 6.4).
REPORT_AGE_ACCURACY_CLAIMED: dict[str, tuple[float, float]] = {
    "dense": (0.83, 0.362),
    "small_cnn": (0.8692, 0.373),
    "own_cnn": (0.826, 0.406),
}


@dataclass
class FairFaceData:
    """Train/validation (and optional held-out test) manifests and their decoded 32x32 grayscale
    uint8 images. ``test`` is split off the training images (:func:`load_data`'s
    ``test_fraction``) for runs that select on the validation split (early stopping)."""

    train: pd.DataFrame
    val: pd.DataFrame
    x_train: np.ndarray
    x_val: np.ndarray
    root: Path
    synthetic: bool
    test: pd.DataFrame | None = None
    x_test: np.ndarray | None = None

    @property
    def eval_split(self) -> str:
        """The split results are reported on: ``"test"`` when one was held out, else ``"val"``."""
        return "test" if self.test is not None and len(self.test) else "val"

    def split(self, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """``(manifest, images)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if name == "test" and self.test is None:
            raise ValueError("no test split: load_data(..., test_fraction=0.1) holds one out of train")
        if name not in {"train", "val", "test"}:
            raise ValueError(f"unknown split {name!r}; expected 'train', 'val' or 'test'")
        return getattr(self, name), getattr(self, f"x_{name}")

    def dataset(
        self,
        split: str,
        labels: str | Sequence[str] | None,
        batch_size: int = 32,
        shuffle: bool | None = None,
        seed: int = 0,
        target: str = "labels",
    ) -> tf.data.Dataset:
        """A batched dataset of one split (train shuffles by default, val and test do not)."""
        manifest, images = self.split(split)
        return pipeline.image_dataset(
            manifest,
            labels=labels,
            images=images,
            batch_size=batch_size,
            shuffle=(split == "train") if shuffle is None else shuffle,
            seed=seed,
            target=target,
            n_classes=ff.N_CLASSES,
        )

    def describe(self) -> pd.DataFrame:
        """Sizes and majority-class baselines per task and split."""
        rows = []
        splits = [("train", self.train), ("val", self.val)] + ([("test", self.test)] if self.test is not None else [])
        for split, manifest in splits:
            row = {"split": split, "images": len(manifest)}
            for task in ff.TASKS:
                row[f"majority_{task}"] = round(majority_accuracy(manifest[task].to_numpy()), 3)
            rows.append(row)
        return pd.DataFrame(rows).set_index("split")


def load_data(
    data_dir: str | Path | None = None,
    n_train: int = 6000,
    n_val: int = 1200,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    synthetic_image_size: int = 224,
    test_fraction: float = 0.0,
) -> FairFaceData:
    """Read FairFace from ``data_dir`` (or the synthetic dataset when ``None``) and decode every
    image once to 32x32 grayscale uint8.

    ``limit`` keeps a seeded random subset of each split (smoke runs). ``cache_dir`` stores the
    decoded arrays as ``.npy`` so the next run skips decoding (useful for the real 97k images).
    ``test_fraction`` holds a seeded share of the training images out as a test split, to report
    on when early stopping or a best epoch is selected on the validation split (0: none, the
    report's protocol, which reports the validation split).
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    synthetic = data_dir is None
    root = ff.synthetic_root(n_train, n_val, seed, synthetic_image_size) if synthetic else Path(data_dir)
    train, val = ff.load(root, "train"), ff.load(root, "val")
    if limit:
        train = train.sample(n=min(limit, len(train)), random_state=seed).reset_index(drop=True)
        val = val.sample(n=min(max(limit // 4, 16), len(val)), random_state=seed).reset_index(drop=True)
    test = None
    if test_fraction > 0:
        order = np.random.default_rng(seed).permutation(len(train))
        n_test = max(1, int(round(test_fraction * len(train))))
        test = train.iloc[np.sort(order[:n_test])].reset_index(drop=True)
        train = train.iloc[np.sort(order[n_test:])].reset_index(drop=True)
    x_train = pipeline.load_images(train["path"].tolist(), (32, 32), 1, cache_dir=cache_dir)
    x_val = pipeline.load_images(val["path"].tolist(), (32, 32), 1, cache_dir=cache_dir)
    x_test = None if test is None else pipeline.load_images(test["path"].tolist(), (32, 32), 1, cache_dir=cache_dir)
    return FairFaceData(train, val, x_train, x_val, Path(root), synthetic, test, x_test)


def epochs_for(network: str, task: str | None = None, max_epochs: int | None = None) -> int:
    """The report's epoch count for a network (and task), optionally capped."""
    epochs = REPORT_EPOCHS[network]
    if isinstance(epochs, Mapping):
        epochs = epochs[task]
    return int(min(epochs, max_epochs) if max_epochs else epochs)


@dataclass
class ClassifierResult:
    """A trained network and its validation results, per task."""

    name: str
    network: str
    tasks: list[str]
    model: keras.Model
    history: pd.DataFrame
    y_true: dict[str, np.ndarray]
    y_pred: dict[str, np.ndarray]
    confusion: dict[str, np.ndarray]
    accuracy: dict[str, float]
    best_val_accuracy: dict[str, float]
    seconds: float
    checkpoint: Path | None = None
    extra: dict = field(default_factory=dict)
    weights: str = "final epoch"
    split: str = "val"

    @property
    def params(self) -> int:
        return int(self.model.count_params())

    def metric(self, task: str, metric: str = "accuracy") -> str:
        """History column of a task's metric (multi-output models prefix the task)."""
        return f"{task}_{metric}" if len(self.tasks) > 1 else metric


def train_classifier(
    network: str,
    tasks: str | Sequence[str],
    data: FairFaceData,
    epochs: int,
    out_dir: str | Path,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    early_stopping: int | None = None,
    verbose: int = 0,
    strategy: str | tf.distribute.Strategy | None = None,
) -> ClassifierResult:
    """Build, train and evaluate one of the report's networks on the validation split.

    ``network`` is ``"dense"``, ``"small_cnn"``, ``"own_cnn"`` (one task) or ``"multitask"``
    (a list of tasks). The report's protocol is a fixed number of epochs and the final weights;
    ``early_stopping`` (patience) switches to early stopping with the best (lowest val_loss)
    weights restored. The weights reported are the weights saved as ``models/<name>.keras``
    (``result.weights`` says which), evaluated on ``data.eval_split`` (the held-out test split
    when there is one, else validation). Accuracy is computed from the confusion matrix as
    trace / sum. ``strategy``: a
    ``tf.distribute`` strategy or its name (:func:`kerasmt.distribute.get_strategy`); the model is
    built in its scope and ``batch_size`` is the global batch, split across its replicas.
    """
    task_list = [tasks] if isinstance(tasks, str) else list(tasks)
    set_seed(seed)
    if network == "multitask":
        labels: str | list[str] = task_list

        def build() -> keras.Model:
            return classifiers.multitask_cnn(tasks={t: ff.N_CLASSES[t] for t in task_list},
                                             name="multitask_" + "_".join(task_list))
    else:
        if len(task_list) != 1:
            raise ValueError(f"network {network!r} is single-task; got tasks {task_list}")
        labels = task_list[0]

        def build() -> keras.Model:
            return BUILDERS[network](n_classes=ff.N_CLASSES[task_list[0]], task=task_list[0],
                                     name=f"{network}_{task_list[0]}")
    model = build_in_scope(lambda: compile_classifier(build(), learning_rate=learning_rate), strategy)
    train_ds = data.dataset("train", labels, batch_size=batch_size, seed=seed)
    val_ds = data.dataset("val", labels, batch_size=256)
    start = time.perf_counter()
    result = fit(
        model,
        train_ds,
        val_ds,
        epochs=epochs,
        run_dir=out_dir,
        name=model.name,
        checkpoint=bool(early_stopping),
        early_stopping=early_stopping,
        restore_best=bool(early_stopping),
        verbose=verbose,
        strategy=strategy,
    )
    seconds = time.perf_counter() - start
    history = result.history
    if early_stopping:
        best_epoch = int(history["val_loss"].idxmin())
        weights = f"best val_loss epoch {best_epoch} of {len(history)} (early stopping)"
    else:
        weights = f"final epoch {len(history)}"
    checkpoint = Path(out_dir) / "models" / f"{model.name}.keras"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    model.save(checkpoint)  # the weights that are reported below
    save_predictor(model, task_list, out_dir)
    split = data.eval_split
    eval_ds = data.dataset(split, labels, batch_size=256)
    predictions = predict_classes(model, eval_ds, task_list if len(task_list) > 1 else None)
    if len(task_list) == 1:
        predictions = {task_list[0]: next(iter(predictions.values()))}
    y_true = {t: data.split(split)[0][t].to_numpy() for t in task_list}
    cms = {t: confusion(y_true[t], predictions[t], ff.N_CLASSES[t]) for t in task_list}
    best = {}
    for t in task_list:
        column = f"val_{t}_accuracy" if len(task_list) > 1 else "val_accuracy"
        best[t] = float(history[column].max())
    return ClassifierResult(
        name=model.name,
        network=network,
        tasks=task_list,
        model=model,
        history=history,
        y_true=y_true,
        y_pred=predictions,
        confusion=cms,
        accuracy={t: accuracy_from_confusion(cms[t]) for t in task_list},
        best_val_accuracy=best,
        seconds=seconds,
        checkpoint=checkpoint,
        weights=weights,
        split=split,
    )


def save_predictor(model: keras.Model, tasks: Sequence[str], out_dir: str | Path) -> Path:
    """Save ``model`` as a raw-image model (any-size RGB uint8 in, 32x32 grey stretched inside, the
    tasks' label names stored): ``<out_dir>/models/<name>.predict.keras``, for ``kerasmt predict``."""
    from kerasmt import modelinfo

    specs = [modelinfo.task_spec(t, "classes", ff.LABELS[t]) for t in tasks]
    path = Path(out_dir) / "models" / f"{model.name}{modelinfo.SUFFIX}"
    return modelinfo.save_raw_image_model(model, path, specs, study="fairface", resize="stretch")


@dataclass
class VAEResult:
    """A trained VAE with its history and validation latent codes."""

    model: keras.Model
    history: pd.DataFrame
    z_mean: np.ndarray
    seconds: float
    checkpoint: Path | None


def train_vae(
    data: FairFaceData,
    epochs: int,
    out_dir: str | Path,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    latent_dim: int = 10,
    beta: float = 0.1,
    seed: int = 0,
    verbose: int = 0,
    strategy: str | tf.distribute.Strategy | None = None,
) -> VAEResult:
    """Train the report's VAE (task 5) with the corrected sampling and per-image loss
    (``strategy``: as in :func:`train_classifier`)."""
    set_seed(seed)

    def build() -> keras.Model:
        vae = build_vae(latent_dim=latent_dim, beta=beta, seed=seed)
        vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
        return vae
    vae = build_in_scope(build, strategy)
    train_ds = data.dataset("train", None, batch_size=batch_size, seed=seed)
    val_ds = data.dataset("val", None, batch_size=256)
    start = time.perf_counter()
    result = fit(vae, train_ds, val_ds, epochs=epochs, run_dir=out_dir, name="vae", verbose=verbose, strategy=strategy)
    seconds = time.perf_counter() - start
    z_mean, _ = vae.encode(data.x_val.astype("float32") / 255.0)
    return VAEResult(vae, result.history, z_mean, seconds, result.checkpoint)


def comparison_table(results: Mapping[str, ClassifierResult], data: FairFaceData) -> pd.DataFrame:
    """Our accuracies beside the report's, per network and task: ``accuracy`` of the saved weights
    (``weights`` says which epoch) on ``split``; the highest per-epoch validation accuracy (chosen
    on the validation split itself, so optimistic); the majority baseline (the training split's
    majority class scored on the same split) and the report's final-epoch validation accuracy."""
    from kerasmt.metrics import majority_baseline_accuracy

    rows = []
    for key, res in results.items():
        for task in res.tasks:
            report = REPORT_VAL_ACCURACY.get(res.network, {}).get(task) if key != "multitask_race" else None
            manifest = data.split(res.split)[0]
            rows.append(
                {
                    "model": key,
                    "task": task,
                    "params": res.params,
                    "epochs": len(res.history),
                    "weights": res.weights,
                    "split": res.split,
                    "accuracy": round(res.accuracy[task], 3),
                    "max_val_accuracy_over_epochs (optimistic)": round(res.best_val_accuracy[task], 3),
                    "majority_baseline": round(majority_baseline_accuracy(data.train[task].to_numpy(),
                                                                          manifest[task].to_numpy()), 3),
                    "report_val_accuracy": report,
                }
            )
    return pd.DataFrame(rows)


def group_accuracy_table(results: Mapping[str, ClassifierResult], data: FairFaceData, by: str = "race") -> pd.DataFrame:
    """Accuracy of every model and task per group of ``by`` (``"race"``, ``"gender"`` or
    ``"age"``) on the split each result was evaluated on, with the images per group in the last
    row; a task is not broken down by itself."""
    if by not in ff.TASKS:
        raise ValueError(f"by must be one of {list(ff.TASKS)}, got {by!r}")
    names = ff.LABELS[by]
    rows = {}
    counts = None
    for key, res in results.items():
        manifest = data.split(res.split)[0]
        groups = manifest[by].to_numpy()
        counts = pd.Series(np.bincount(groups[groups >= 0], minlength=len(names)), index=names)
        for task in res.tasks:
            if task == by:
                continue
            correct = res.y_pred[task] == res.y_true[task]
            labelled = res.y_true[task] >= 0
            rows[(key, task)] = {name: (float(correct[(groups == g) & labelled].mean())
                                        if np.any((groups == g) & labelled) else np.nan)
                                 for g, name in enumerate(names)}
    table = pd.DataFrame.from_dict(rows, orient="index").round(3)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["model", "task"])
    if counts is not None:
        table.loc[("images", by), :] = counts.to_numpy()
    table.columns.name = by
    return table


def gender_metrics(results: Mapping[str, ClassifierResult]) -> pd.DataFrame:
    """Per model with a gender output: accuracy, Male recall (what the report printed as
    "precision": ``cm[0, 0] / cm[0].sum()``), the true precision and recall of both classes and
    macro-F1, with the report's "precision" where it gave one."""
    from kerasmt.metrics import macro_f1

    rows = []
    for key, res in results.items():
        if "gender" not in res.tasks:
            continue
        cm = res.confusion["gender"].astype(float)
        male_recall = cm[0, 0] / cm[0].sum() if cm[0].sum() else np.nan
        rows.append({
            "model": key, "accuracy": res.accuracy["gender"],
            "report's 'precision' formula (= Male recall)": male_recall,
            "Male precision": cm[0, 0] / cm[:, 0].sum() if cm[:, 0].sum() else np.nan,
            "Male recall": male_recall,
            "Female precision": cm[1, 1] / cm[:, 1].sum() if cm[:, 1].sum() else np.nan,
            "Female recall": cm[1, 1] / cm[1].sum() if cm[1].sum() else np.nan,
            "macro-F1": macro_f1(res.y_true["gender"], res.y_pred["gender"]),
            "report 'precision'": REPORT_GENDER_PRECISION.get(res.network) if key != "multitask_race" else None,
        })
    return pd.DataFrame(rows).set_index("model").round(4)


def vae_loss_identity(batch: int = 4, seed: int = 0) -> dict[str, float]:
    """The report's VAE reconstruction loss, ``mse(flatten(batch), flatten(reconstruction)) * 1024``
    over the whole flattened batch, against ours, the per-image summed squared error averaged over
    the batch, on random 32x32 images: the two are equal (1024 = pixels per image)."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 32, 32, 1))
    r = rng.random((batch, 32, 32, 1))
    report = float(np.mean((x.reshape(-1) - r.reshape(-1)) ** 2) * 32 * 32)
    ours = float(np.mean(np.sum((x - r) ** 2, axis=(1, 2, 3))))
    return {"report (batch-flattened MSE x 1024)": report, "ours (per-image sum, batch mean)": ours}


def metrics_summary(
    results: Mapping[str, ClassifierResult], vae: VAEResult | None, data: FairFaceData
) -> dict:
    """The study's ``metrics.json``: parameter counts, validation accuracies, VAE losses."""
    from kerasmt.metrics import majority_baseline_accuracy

    params = {name: res.params for name, res in results.items()}
    accuracy = {name: {t: res.accuracy[t] for t in res.tasks} for name, res in results.items()}
    split = data.eval_split
    metrics: dict = {
        "data": {"synthetic": data.synthetic, "train": len(data.train), "val": len(data.val),
                 "test": 0 if data.test is None else len(data.test)},
        "params": params,
        "multitask_params": {"gender_age (the report's)": params.get("multitask", MULTITASK_PARAMS["gender_age"]),
                             "gender_age_race (extension)": params.get("multitask_race",
                                                                       MULTITASK_PARAMS["gender_age_race"])},
        "split": split,
        "accuracy": accuracy,
        "weights": {n: r.weights for n, r in results.items()},
        "max_val_accuracy_over_epochs": {n: r.best_val_accuracy for n, r in results.items()},
        "majority_baseline": {t: majority_baseline_accuracy(data.train[t].to_numpy(), data.split(split)[0][t].to_numpy())
                              for t in ff.TASKS},
        "train_seconds": {n: r.seconds for n, r in results.items()},
    }
    if split == "val":
        metrics["val_accuracy"] = accuracy  # the name earlier runs used
    if vae is not None:
        last = vae.history.iloc[-1]
        params["vae"] = int(vae.model.count_params())
        metrics["vae"] = {k: float(last[k]) for k in last.index if "loss" in k}
    summary = {}
    for name, res in results.items():
        for t in res.tasks:
            summary[f"{name}.{t}"] = round(res.accuracy[t], 3)
    metrics["summary"] = summary
    return metrics


def param_table() -> pd.DataFrame:
    """Parameter counts of every network built with the report's defaults, beside the report's."""
    built = {
        "dense_gender": classifiers.dense_net(n_classes=2),
        "dense_age": classifiers.dense_net(n_classes=9),
        "small_cnn_gender": classifiers.small_cnn(n_classes=2),
        "small_cnn_age": classifiers.small_cnn(n_classes=9),
        "own_cnn_gender": classifiers.own_cnn(n_classes=2),
        "own_cnn_age": classifiers.own_cnn(n_classes=9),
        "multitask_gender_age": classifiers.multitask_cnn(tasks={"gender": 2, "age": 9}),  # the report's
        "multitask_gender_age_race": classifiers.multitask_cnn(tasks=dict(ff.N_CLASSES)),
    }
    vae = build_vae()
    counts = {name: int(model.count_params()) for name, model in built.items()}
    counts["vae"] = int(vae.count_params())
    counts["vae_decoder"] = int(vae.decoder.count_params())
    table = pd.DataFrame({"params": pd.Series(counts)})
    table["report"] = pd.Series(REPORT_PARAMS).reindex(table.index).astype("Int64")
    table["match"] = table["params"].eq(table["report"]).where(table["report"].notna(), other=pd.NA)
    return table


def captions(manifest: pd.DataFrame, indices: Sequence[int], predictions: Mapping[str, np.ndarray] | None = None) -> list[str]:
    """Short per-image captions "gender / age / race", with "pred vs true" when predictions given."""
    short = {"gender": lambda s: s[0], "age": str, "race": lambda s: s.replace("_Hispanic", "").replace("Southeast", "SE")}
    out = []
    for i in indices:
        row = manifest.iloc[int(i)]
        parts = []
        for task in ff.TASKS:
            true = short[task](ff.LABELS[task][int(row[task])])
            if predictions is not None and task in predictions:
                pred = short[task](ff.LABELS[task][int(predictions[task][int(i)])])
                parts.append(true if pred == true else f"{pred}≠{true}")
            else:
                parts.append(true)
        out.append("\n".join([" / ".join(parts[:2]), parts[2]]))
    return out


def plot_confusions(result: ClassifierResult, normalize: bool = False):
    """Confusion matrices of a result, one panel per task, accuracy (trace / sum) in the title."""
    import matplotlib.pyplot as plt

    from kerasmt import plots

    widths = [max(3.5, 0.45 * ff.N_CLASSES[t] + 1.5) for t in result.tasks]
    fig, axes = plt.subplots(1, len(result.tasks), figsize=(sum(widths), max(widths) * 0.85), squeeze=False)
    for ax, task in zip(axes[0], result.tasks):
        plots.plot_confusion_matrix(
            result.confusion[task],
            ff.LABELS[task],
            title=f"{result.name}: {task} (accuracy {result.accuracy[task]:.3f})",
            normalize=normalize,
            ax=ax,
        )
    fig.tight_layout()
    return plots.readable(fig)


def age_accuracy_check(results: Mapping[str, ClassifierResult]) -> pd.DataFrame:
    """The report's age-accuracy formula (top-left 2x2 block) against trace / sum, for the report's
    models and ours."""
    from kerasmt.metrics import report_top_left_accuracy

    rows = []
    for network, (claimed, true) in REPORT_AGE_ACCURACY_CLAIMED.items():
        ours = next((r for r in results.values() if r.network == network and "age" in r.tasks), None)
        rows.append(
            {
                "network": network,
                "report_claimed (2x2 block)": claimed,
                "report_true (trace/sum)": true,
                "ours_2x2_block_formula": None if ours is None else round(report_top_left_accuracy(ours.confusion["age"]), 3),
                "ours_trace_over_sum": None if ours is None else round(ours.accuracy["age"], 3),
            }
        )
    return pd.DataFrame(rows).set_index("network")
