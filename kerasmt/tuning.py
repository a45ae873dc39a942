"""keras-tuner searches of the UTKFace study, with an explicit objective.

The report picked its CNN by eye from gender accuracy and age MAE on a second validation set
("one of the best balances"). Here the balance is explicit: every search minimises

    score = (1 - gender_accuracy) + age_mae / age_scale        (age_scale = 10 years)

so one year of age MAE weighs as much as 10 points of gender accuracy.

- :class:`ModelAHyperModel` / :func:`search_model_a`: Model A over the report's space (blocks
  {2, 3, 5}, dense layers 1-5, units {100, 150, 200, 300}, split point {1, 3, 4, 5}); each trial
  trains with early stopping on the validation split and is *scored on a separate ranking split*
  (the report's "Val 2"). ``algorithm="configs"`` replays a fixed list of configurations (the
  report's 24), ``"grid"``, ``"random"`` and ``"bayesian"`` use keras-tuner's oracles.
  ``executions_per_trial`` repeats each trial with seeds ``seed, seed + 1, ...`` and averages.
- :class:`HeadHyperModel` / :func:`hyperband_heads`: Model B's heads over learning rate and units
  with Hyperband, on cached backbone features (see :func:`kerasmt.models.transfer.head_model`),
  objective ``val_score``.
- :func:`trials_frame`: the trials as a DataFrame (hyperparameters, score, accuracy, MAE).

Tuner working folders go wherever ``directory`` says (the study uses ``OUT_DIR/tuning``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd

from kerasmt.models.transfer import HEAD_ORDERS, age_gender_heads
from kerasmt.models.vgg import compile_age_gender, model_a

#: the report's Model A search space (its Table 2 columns)
MODEL_A_SPACE: dict[str, tuple[int, ...]] = {
    "n_blocks": (2, 3, 5),
    "n_dense": (1, 2, 3, 4, 5),
    "units": (100, 150, 200, 300),
    "split_point": (1, 3, 4, 5),
}
#: years of age MAE that weigh as much as a gender error rate of 1.0 in the objective
AGE_SCALE = 10.0
ALGORITHMS = ("configs", "grid", "random", "bayesian")


def score(gender_accuracy: float, age_mae: float, age_scale: float = AGE_SCALE) -> float:
    """The search objective (lower is better): ``(1 - gender_accuracy) + age_mae / age_scale``."""
    return float((1.0 - gender_accuracy) + age_mae / age_scale)


class ScoreCallback(keras.callbacks.Callback):
    """Adds ``score`` and ``val_score`` (:func:`score`) to the epoch logs, so early stopping,
    checkpoints and keras-tuner can use them. Put it before the callbacks that read them."""

    def __init__(self, age_scale: float = AGE_SCALE):
        super().__init__()
        self.age_scale = float(age_scale)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        for prefix in ("", "val_"):
            acc, mae = logs.get(f"{prefix}gender_accuracy"), logs.get(f"{prefix}age_mae")
            if acc is not None and mae is not None:
                logs[f"{prefix}score"] = score(float(acc), float(mae), self.age_scale)


def effective_split(n_blocks: int, split_point: int) -> int:
    """A split point past the last block means "all blocks shared" (split at the dense layers)."""
    return min(int(split_point), int(n_blocks))


def _without_tuner_checkpoint(callbacks: Sequence[keras.callbacks.Callback] | None) -> list:
    # keras-tuner's SaveBestEpoch writes the weights after every epoch when the objective is
    # computed after fit (our case); trial models are not kept, so skip that cost. The class is not
    # in keras-tuner's public API, so it is recognised by name rather than imported from keras_tuner.src.
    def is_tuner_checkpoint(cb: keras.callbacks.Callback) -> bool:
        cls = type(cb)
        return cls.__name__ == "SaveBestEpoch" and cls.__module__.startswith("keras_tuner")

    return [cb for cb in (callbacks or []) if not is_tuner_checkpoint(cb)]


class _SeededBuilds:
    """Seeds each build of the same hyperparameters with ``seed``, ``seed + 1``, ... (one per
    execution of a trial), so repeated executions are independent but reproducible."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._counts: dict[tuple, int] = {}

    def reset_seeds(self) -> None:
        self._counts.clear()

    def _seed_build(self, hp: kt.HyperParameters) -> int:
        key = tuple(sorted((k, v) for k, v in hp.values.items() if not k.startswith("tuner/")))
        count = self._counts.get(key, 0)
        self._counts[key] = count + 1
        keras.utils.set_random_seed(self.seed + count)
        return self.seed + count


class ModelAHyperModel(_SeededBuilds, kt.HyperModel):
    """Model A over :data:`MODEL_A_SPACE`, trained with early stopping, scored on ``rank_data``.

    Args:
        input_shape: image shape, e.g. ``(128, 128, 3)``.
        rank_data: dataset of ``(images, {"age", "gender"})`` the trial is scored on (the report's
            Val 2); ``None`` scores on the validation data instead.
        space: the choices of each hyperparameter (default: the report's).
        base_filters, age_bias, bn_momentum, learning_rate: fixed for every trial (see
            :func:`kerasmt.models.vgg.model_a`, :func:`~kerasmt.models.vgg.compile_age_gender`).
        patience, min_delta: early stopping on ``val_loss`` with the best weights restored
            (the report: 50 and 0.1).
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (128, 128, 3),
        rank_data: Any = None,
        space: Mapping[str, Sequence[int]] = MODEL_A_SPACE,
        base_filters: int = 64,
        age_bias: float = 0.0,
        bn_momentum: float = 0.99,
        learning_rate: float = 1e-4,
        patience: int = 50,
        min_delta: float = 0.1,
        age_scale: float = AGE_SCALE,
        seed: int = 0,
        steps_per_execution: int = 1,
    ):
        _SeededBuilds.__init__(self, seed)
        kt.HyperModel.__init__(self, name="model_a")
        missing = set(MODEL_A_SPACE) - set(space)
        if missing:
            raise ValueError(f"space: missing hyperparameter(s) {sorted(missing)}; expected {list(MODEL_A_SPACE)}")
        self.input_shape = tuple(input_shape)
        self.rank_data = rank_data
        self.space = {k: tuple(int(v) for v in space[k]) for k in MODEL_A_SPACE}
        self.base_filters, self.age_bias, self.bn_momentum = base_filters, age_bias, bn_momentum
        self.learning_rate, self.patience, self.min_delta = learning_rate, patience, min_delta
        self.age_scale = age_scale
        self.steps_per_execution = steps_per_execution

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        for name, values in self.space.items():
            hp.Choice(name, list(values))

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        self.declare_hyperparameters(hp)
        self._seed_build(hp)
        n_blocks = hp.get("n_blocks")
        model = model_a(
            self.input_shape,
            n_blocks=n_blocks,
            n_dense=hp.get("n_dense"),
            units=hp.get("units"),
            split_point=effective_split(n_blocks, hp.get("split_point")),
            base_filters=self.base_filters,
            age_bias=self.age_bias,
            bn_momentum=self.bn_momentum,
        )
        return compile_age_gender(model, self.learning_rate, steps_per_execution=self.steps_per_execution)

    def fit(self, hp, model, *args, callbacks=None, verbose=0, **kwargs) -> dict[str, float]:
        """Train with early stopping, then return ``score``, ``gender_accuracy``, ``age_mae`` on
        the ranking split (plus ``epochs`` trained and ``params``)."""
        stop = keras.callbacks.EarlyStopping(
            monitor="val_loss", min_delta=self.min_delta, patience=self.patience, restore_best_weights=True
        )
        cbs = [ScoreCallback(self.age_scale), *_without_tuner_checkpoint(callbacks), stop]
        kwargs.setdefault("shuffle", False)  # datasets shuffle themselves
        history = model.fit(*args, callbacks=cbs, verbose=verbose, **kwargs)
        data = self.rank_data if self.rank_data is not None else kwargs.get("validation_data")
        if data is None:
            raise ValueError("ModelAHyperModel needs rank_data or validation_data to score a trial")
        result = model.evaluate(data, return_dict=True, verbose=0)
        acc, mae = float(result["gender_accuracy"]), float(result["age_mae"])
        return {
            "score": score(acc, mae, self.age_scale),
            "gender_accuracy": acc,
            "age_mae": mae,
            "epochs": float(len(history.history["loss"])),
            "params": float(model.count_params()),
        }


class _NoTensorBoardMixin:
    """keras-tuner imports ``tensorboard`` on every trial with the TensorFlow backend, even when no
    ``TensorBoard`` callback is used; tensorboard is not a dependency of kerasmt, so the import is
    only done when such a callback is present."""

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        if any(cb.__class__.__name__ == "TensorBoard" for cb in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)


class Tuner(_NoTensorBoardMixin, kt.Tuner):
    """``keras_tuner.Tuner`` without the unconditional tensorboard import."""


class GridSearch(_NoTensorBoardMixin, kt.GridSearch):
    """``keras_tuner.GridSearch`` without the unconditional tensorboard import."""


class RandomSearch(_NoTensorBoardMixin, kt.RandomSearch):
    """``keras_tuner.RandomSearch`` without the unconditional tensorboard import."""


class BayesianOptimization(_NoTensorBoardMixin, kt.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` without the unconditional tensorboard import."""


class Hyperband(_NoTensorBoardMixin, kt.Hyperband):
    """``keras_tuner.Hyperband`` without the unconditional tensorboard import."""


class ConfigListOracle(kt.Oracle):
    """An oracle that proposes a fixed list of configurations in order (e.g. the report's 24),
    then stops."""

    def __init__(self, configs: Sequence[Mapping[str, Any]], objective="score", **kwargs):
        kwargs.setdefault("max_trials", len(configs))
        super().__init__(objective=kt.Objective(objective, "min") if isinstance(objective, str) else objective,
                         **kwargs)
        self.configs = [dict(c) for c in configs]
        self._next = 0

    def populate_space(self, trial_id: str) -> dict:
        if self._next >= len(self.configs):
            return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
        values = self.space_defaults()
        values.update(self.configs[self._next])
        self._next += 1
        return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}

    def space_defaults(self) -> dict:
        return {hp.name: hp.default for hp in self.hyperparameters.space}

    def get_state(self) -> dict:
        state = super().get_state()
        state.update(configs=self.configs, next=self._next)
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.configs, self._next = state["configs"], state["next"]


def model_a_tuner(
    hypermodel: ModelAHyperModel,
    directory: str | os.PathLike,
    algorithm: str = "configs",
    configs: Sequence[Mapping[str, int]] | None = None,
    max_trials: int | None = None,
    executions_per_trial: int = 1,
    seed: int = 0,
    project_name: str = "model_a",
    overwrite: bool = True,
) -> kt.Tuner:
    """A keras-tuner ``Tuner`` for :class:`ModelAHyperModel` minimising ``score``.

    ``algorithm``: ``"configs"`` (the listed ``configs`` in order, ``max_trials`` of them),
    ``"grid"``, ``"random"`` or ``"bayesian"`` over the hypermodel's space (``max_trials``
    required for random and bayesian). The tuner's files go to ``directory/project_name``.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    objective = kt.Objective("score", "min")
    common = dict(directory=str(directory), project_name=project_name, overwrite=overwrite)
    if algorithm == "configs":
        if not configs:
            raise ValueError("algorithm='configs' needs configs (a list of hyperparameter dicts)")
        unknown = {k for c in configs for k in c} - set(hypermodel.space)
        if unknown:
            raise ValueError(f"configs: unknown hyperparameter(s) {sorted(unknown)}; expected {list(hypermodel.space)}")
        configs = list(configs)[: max_trials or len(configs)]
        oracle = ConfigListOracle(configs, objective=objective, seed=seed)
        return Tuner(oracle=oracle, hypermodel=hypermodel, executions_per_trial=executions_per_trial, **common)
    if algorithm in ("random", "bayesian") and not max_trials:
        raise ValueError(f"algorithm={algorithm!r} needs max_trials")
    cls = {"grid": GridSearch, "random": RandomSearch, "bayesian": BayesianOptimization}[algorithm]
    return cls(hypermodel=hypermodel, objective=objective, max_trials=max_trials, seed=seed,
               executions_per_trial=executions_per_trial, **common)


def search_model_a(
    train: Any,
    validation: Any,
    rank: Any,
    directory: str | os.PathLike,
    input_shape: Sequence[int] = (128, 128, 3),
    epochs: int = 1000,
    algorithm: str = "configs",
    configs: Sequence[Mapping[str, int]] | None = None,
    max_trials: int | None = None,
    executions_per_trial: int = 1,
    seed: int = 0,
    project_name: str = "model_a",
    overwrite: bool = True,
    verbose: int = 0,
    **hypermodel_kwargs: Any,
) -> kt.Tuner:
    """Run the Model A search and return the tuner (see :func:`trials_frame` for the table).

    ``train`` / ``validation`` train each trial (early stopping on ``validation``), ``rank``
    scores it. ``epochs`` is the cap (the report: 1000 with patience 50). The tuner's files go
    to ``directory/project_name``; ``overwrite=False`` resumes a search found there (keras-tuner
    skips the finished trials). Remaining keyword arguments go to :class:`ModelAHyperModel`.
    """
    hypermodel = ModelAHyperModel(input_shape, rank_data=rank, seed=seed, **hypermodel_kwargs)
    tuner = model_a_tuner(hypermodel, directory, algorithm, configs, max_trials, executions_per_trial, seed,
                          project_name=project_name, overwrite=overwrite)
    hypermodel.reset_seeds()
    tuner.search(train, validation_data=validation, epochs=epochs, verbose=verbose)
    return tuner


class HeadHyperModel(_SeededBuilds, kt.HyperModel):
    """Model B's heads (:func:`kerasmt.models.transfer.age_gender_heads`) on cached features,
    over ``learning_rate`` (log-uniform) and ``units``; reports ``val_score`` every epoch."""

    def __init__(
        self,
        feature_dim: int,
        head: Sequence[str] = HEAD_ORDERS["dense-dropout"],
        learning_rates: tuple[float, float] = (1e-4, 2e-3),
        units: Sequence[int] = (64, 128, 256, 512),
        dropout: float = 0.5,
        age_bias: float = 0.0,
        age_scale: float = AGE_SCALE,
        seed: int = 0,
        steps_per_execution: int = 1,
    ):
        _SeededBuilds.__init__(self, seed)
        kt.HyperModel.__init__(self, name="heads")
        self.feature_dim, self.head, self.dropout, self.age_bias = int(feature_dim), tuple(head), dropout, age_bias
        self.learning_rates, self.units, self.age_scale = learning_rates, tuple(units), age_scale
        self.steps_per_execution = steps_per_execution

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        hp.Float("learning_rate", self.learning_rates[0], self.learning_rates[1], sampling="log")
        hp.Choice("units", list(self.units))

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        self.declare_hyperparameters(hp)
        self._seed_build(hp)
        model = age_gender_heads(self.feature_dim, self.head, hp.get("units"), self.dropout, age_bias=self.age_bias)
        return compile_age_gender(model, hp.get("learning_rate"), steps_per_execution=self.steps_per_execution)

    def fit(self, hp, model, *args, callbacks=None, verbose=0, **kwargs):
        return model.fit(*args, callbacks=[ScoreCallback(self.age_scale), *(callbacks or [])], verbose=verbose, **kwargs)


def hyperband_heads(
    x_train: np.ndarray,
    y_train: Mapping[str, np.ndarray],
    x_val: np.ndarray,
    y_val: Mapping[str, np.ndarray],
    directory: str | os.PathLike,
    head: Sequence[str] = HEAD_ORDERS["dense-dropout"],
    max_epochs: int = 30,
    factor: int = 3,
    hyperband_iterations: int = 1,
    batch_size: int = 32,
    seed: int = 0,
    project_name: str = "model_b_heads",
    overwrite: bool = True,
    verbose: int = 0,
    **hypermodel_kwargs: Any,
) -> kt.Tuner:
    """Hyperband over Model B's head learning rate and units on cached features (objective
    ``val_score``, minimised); returns the tuner. Its files go to ``directory/project_name``."""
    hypermodel = HeadHyperModel(x_train.shape[1], head, seed=seed, **hypermodel_kwargs)
    tuner = Hyperband(
        hypermodel=hypermodel,
        objective=kt.Objective("val_score", "min"),
        max_epochs=max_epochs,
        factor=factor,
        hyperband_iterations=hyperband_iterations,
        seed=seed,
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
    )
    hypermodel.reset_seeds()
    tuner.search(x_train, dict(y_train), validation_data=(x_val, dict(y_val)), batch_size=batch_size,
                 verbose=verbose)
    return tuner


def trials_frame(tuner: kt.Tuner) -> pd.DataFrame:
    """One row per trial, in the order they ran: ``trial`` (1-based), the hyperparameters
    (Hyperband's bookkeeping ``tuner/epochs`` as ``epochs_budget``), every metric the trial
    reported (``score`` first) and ``status``."""
    rows = []
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    for i, trial in enumerate(trials, start=1):
        row: dict[str, Any] = {"trial": i}
        for name, value in trial.hyperparameters.values.items():
            if name == "tuner/epochs":
                row["epochs_budget"] = value
            elif not name.startswith("tuner/"):
                row[name] = value
        for name in trial.metrics.metrics:
            row[name] = trial.metrics.get_last_value(name)
        row["status"] = str(trial.status)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    objective = tuner.oracle.objective.name
    metric_cols = [c for c in (objective, "gender_accuracy", "age_mae", "val_gender_accuracy", "val_age_mae")
                   if c in frame.columns]
    others = [c for c in frame.columns if c not in metric_cols and c != "status"]
    return frame[others + metric_cols + ["status"]].set_index("trial")
