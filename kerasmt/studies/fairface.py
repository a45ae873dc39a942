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
    """Train/validation manifests and their decoded 32x32 grayscale uint8 images."""

    train: pd.DataFrame
    val: pd.DataFrame
    x_train: np.ndarray
    x_val: np.ndarray
    root: Path
    synthetic: bool

    def dataset(
        self,
        split: str,
        labels: str | Sequence[str] | None,
        batch_size: int = 32,
        shuffle: bool | None = None,
        seed: int = 0,
        target: str = "labels",
    ) -> tf.data.Dataset:
        """A batched dataset of one split (train shuffles by default, val does not)."""
        manifest, images = (self.train, self.x_train) if split == "train" else (self.val, self.x_val)
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
        for split, manifest in (("train", self.train), ("val", self.val)):
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
) -> FairFaceData:
    """Read FairFace from ``data_dir`` (or the synthetic dataset when ``None``) and decode every
    image once to 32x32 grayscale uint8.

    ``limit`` keeps a seeded random subset of each split (smoke runs). ``cache_dir`` stores the
    decoded arrays as ``.npy`` so the next run skips decoding (useful for the real 97k images).
    """
    synthetic = data_dir is None
    root = ff.synthetic_root(n_train, n_val, seed, synthetic_image_size) if synthetic else Path(data_dir)
    train, val = ff.load(root, "train"), ff.load(root, "val")
    if limit:
        train = train.sample(n=min(limit, len(train)), random_state=seed).reset_index(drop=True)
        val = val.sample(n=min(max(limit // 4, 16), len(val)), random_state=seed).reset_index(drop=True)
    x_train = pipeline.load_images(train["path"].tolist(), (32, 32), 1, cache_dir=cache_dir)
    x_val = pipeline.load_images(val["path"].tolist(), (32, 32), 1, cache_dir=cache_dir)
    return FairFaceData(train, val, x_train, x_val, Path(root), synthetic)


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
    ``early_stopping`` (patience) switches to early stopping with the best weights restored.
    Accuracy is computed from the confusion matrix as trace / sum. ``strategy``: a
    ``tf.distribute`` strategy or its name (:func:`kerasmt.distribute.get_strategy`); the model is
    built in its scope and ``batch_size`` is the global batch, split across its replicas.
    """
    task_list = [tasks] if isinstance(tasks, str) else list(tasks)
    set_seed(seed)
    if network == "multitask":
        labels: str | list[str] = task_list

        def build() -> keras.Model:
            return classifiers.multitask_cnn({t: ff.N_CLASSES[t] for t in task_list},
                                             name="multitask_" + "_".join(task_list))
    else:
        if len(task_list) != 1:
            raise ValueError(f"network {network!r} is single-task; got tasks {task_list}")
        labels = task_list[0]

        def build() -> keras.Model:
            return BUILDERS[network](ff.N_CLASSES[task_list[0]], task=task_list[0], name=f"{network}_{task_list[0]}")
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
        early_stopping=early_stopping,
        restore_best=bool(early_stopping),
        verbose=verbose,
        strategy=strategy,
    )
    seconds = time.perf_counter() - start
    predictions = predict_classes(model, val_ds, task_list if len(task_list) > 1 else None)
    if len(task_list) == 1:
        predictions = {task_list[0]: next(iter(predictions.values()))}
    y_true = {t: data.val[t].to_numpy() for t in task_list}
    cms = {t: confusion(y_true[t], predictions[t], ff.N_CLASSES[t]) for t in task_list}
    history = result.history
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
        checkpoint=result.checkpoint,
    )


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
    """Our validation accuracies beside the report's, per network and task, with the majority
    baseline of the validation split."""
    rows = []
    for key, res in results.items():
        for task in res.tasks:
            report = REPORT_VAL_ACCURACY.get(res.network, {}).get(task)
            rows.append(
                {
                    "network": res.network,
                    "task": task,
                    "params": res.params,
                    "epochs": len(res.history),
                    "val_accuracy": round(res.accuracy[task], 3),
                    "best_epoch_val_accuracy": round(res.best_val_accuracy[task], 3),
                    "majority_baseline": round(majority_accuracy(data.val[task].to_numpy()), 3),
                    "report_val_accuracy": report,
                }
            )
    return pd.DataFrame(rows)


def metrics_summary(
    results: Mapping[str, ClassifierResult], vae: VAEResult | None, data: FairFaceData
) -> dict:
    """The study's ``metrics.json``: parameter counts, validation accuracies, VAE losses."""
    params = {name: res.params for name, res in results.items()}
    val_accuracy = {name: {t: res.accuracy[t] for t in res.tasks} for name, res in results.items()}
    metrics: dict = {
        "data": {"synthetic": data.synthetic, "train": len(data.train), "val": len(data.val)},
        "params": params,
        "val_accuracy": val_accuracy,
        "best_epoch_val_accuracy": {n: r.best_val_accuracy for n, r in results.items()},
        "majority_baseline": {t: majority_accuracy(data.val[t].to_numpy()) for t in ff.TASKS},
        "train_seconds": {n: r.seconds for n, r in results.items()},
    }
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
        "dense_gender": classifiers.dense_net(2),
        "dense_age": classifiers.dense_net(9),
        "small_cnn_gender": classifiers.small_cnn(2),
        "small_cnn_age": classifiers.small_cnn(9),
        "own_cnn_gender": classifiers.own_cnn(2),
        "own_cnn_age": classifiers.own_cnn(9),
        "multitask_gender_age": classifiers.multitask_cnn({"gender": 2, "age": 9}),
        "multitask_gender_age_race": classifiers.multitask_cnn(dict(ff.N_CLASSES)),
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
    return fig


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
