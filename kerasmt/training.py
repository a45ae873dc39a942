"""Compile and fit helpers: masked losses per task, and a ``fit`` that checkpoints, logs and resumes.

:func:`fit` writes, under ``run_dir``:

- ``models/<name>.keras``: the best model so far (by ``monitor``), a full ``.keras`` archive;
- ``logs/<name>.csv``: one row per epoch (CSVLogger, appended across resumed runs);
- ``backup/<name>/``: Keras ``BackupAndRestore`` state, so a fit interrupted at epoch k (killed
  kernel, pre-empted GPU) restarts at epoch k+1 when called again with the same arguments; it is
  deleted when the fit completes.

It returns a :class:`FitResult` whose ``history`` is the full per-epoch log (including epochs run
before an interruption), read back from the CSV.

Mixed precision and XLA (a study's ``MIXED_PRECISION`` and ``JIT_COMPILE``): :func:`configure`
sets the Keras dtype policy (``mixed_float16`` on a GPU, ``mixed_bfloat16`` on a CPU) for the
models built afterwards and the XLA option :func:`fit` applies; :func:`fit` makes every model's
output layers float32 (:func:`float32_outputs`); :func:`reset` restores float32 at the end.

With ``strategy=`` (a ``tf.distribute`` strategy or its name, see :mod:`kerasmt.distribute`) the
model must have been built and compiled in the strategy's scope (``distribute.build_in_scope``,
``compile_classifier(..., strategy=)``); the datasets' batch size is the global batch, split across
the replicas; in a multi-worker job only the chief writes under ``run_dir`` while the other
workers write the same files under ``run_dir/workertemp_<task>`` (removed when the fit completes,
kept for resuming when it is interrupted).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerasmt import distribute
from kerasmt.losses import MaskedSparseCategoricalCrossentropy
from kerasmt.metrics import MaskedSparseCategoricalAccuracy
from kerasmt.utils import RunFolderLocked, RunLock  # noqa: F401  (RunFolderLocked: part of fit's API)


# ------------------------------------------------------------------ mixed precision and XLA
#: JIT_COMPILE of the notebooks: ``None``/``"auto"`` lets Keras choose (XLA on a GPU, not on a
#: CPU), ``True``/``False`` force it for every model :func:`fit` trains
_JIT_COMPILE: bool | None = None
_POLICY_BEFORE: list[str] = []


def has_gpu() -> bool:
    """True when TensorFlow sees a GPU."""
    return bool(tf.config.list_physical_devices("GPU"))


def precision_policy(mixed_precision: bool | str | None) -> str:
    """The Keras dtype policy name for a ``MIXED_PRECISION`` setting: ``False``/``None``/
    ``"float32"`` -> ``"float32"``; ``True``/``"auto"`` -> ``"mixed_float16"`` on a GPU,
    ``"mixed_bfloat16"`` on a CPU; ``"mixed_float16"``/``"mixed_bfloat16"`` as given."""
    if mixed_precision in (False, None, "float32", "off", 0):
        return "float32"
    if mixed_precision in (True, "auto", "on", 1):
        return "mixed_float16" if has_gpu() else "mixed_bfloat16"
    if mixed_precision in ("mixed_float16", "mixed_bfloat16"):
        return str(mixed_precision)
    raise ValueError(f"MIXED_PRECISION must be True, False, 'auto', 'float32', 'mixed_float16' or "
                     f"'mixed_bfloat16', got {mixed_precision!r}")


def configure(mixed_precision: bool | str | None = False, jit_compile: bool | str | None = "auto") -> str:
    """Set the precision and XLA options of a study (its ``MIXED_PRECISION`` and ``JIT_COMPILE``
    parameters) for every model built and trained afterwards; returns the policy name.

    The Keras global dtype policy becomes :func:`precision_policy` of ``mixed_precision`` (models
    built afterwards compute in float16/bfloat16 with float32 variables; Keras wraps the optimizer
    of a ``mixed_float16`` model in a loss-scale optimizer at compile time), and :func:`fit` runs
    every model with float32 outputs (:func:`float32_outputs`) and with ``jit_compile`` unless it is
    ``"auto"``. Undo with :func:`reset` at the end of the study (or use :func:`precision`)."""
    global _JIT_COMPILE
    if jit_compile not in (None, "auto", True, False):
        raise ValueError(f"JIT_COMPILE must be True, False or 'auto', got {jit_compile!r}")
    policy = precision_policy(mixed_precision)
    _POLICY_BEFORE.append(keras.config.dtype_policy().name)
    keras.config.set_dtype_policy(policy)
    _JIT_COMPILE = None if jit_compile in (None, "auto") else bool(jit_compile)
    return policy


def reset() -> str:
    """Undo :func:`configure`: the dtype policy it replaced (float32 when unknown) and Keras' own
    JIT choice. Returns the policy now in force."""
    global _JIT_COMPILE
    _JIT_COMPILE = None
    policy = _POLICY_BEFORE[0] if _POLICY_BEFORE else "float32"  # the one before the first configure
    _POLICY_BEFORE.clear()
    keras.config.set_dtype_policy(policy)
    return policy


@contextlib.contextmanager
def precision(mixed_precision: bool | str | None = True, jit_compile: bool | str | None = "auto"):
    """``with precision(True): ...``: :func:`configure` inside the block, :func:`reset` after it
    (also on errors). Yields the policy name."""
    policy = configure(mixed_precision, jit_compile)
    try:
        yield policy
    finally:
        reset()


def _output_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found = []
    outputs = getattr(model, "outputs", None) if isinstance(model, keras.Model) else None
    if not outputs:  # a subclassed model (e.g. the VAE): the outputs of its nested functional models
        for layer in getattr(model, "layers", []):
            if isinstance(layer, keras.Model):
                found.extend(_output_layers(layer))
        return found
    for tensor in outputs:
        layer = tensor._keras_history.operation
        if isinstance(layer, keras.Model) and getattr(layer, "outputs", None):
            found.extend(_output_layers(layer))
        else:
            found.append(layer)
    return found


def float32_outputs(model: keras.Model) -> keras.Model:
    """Make the layers that produce ``model``'s outputs (the final Dense / activation of each
    head, inside nested models too) compute in float32, so that predictions and the losses on
    them are float32 under a mixed precision policy (their variables are float32 already).
    Returns the model (changed in place; a float32 model is left as it is)."""
    for layer in _output_layers(model):
        if layer.dtype_policy.compute_dtype != "float32":
            layer.dtype_policy = keras.DTypePolicy("float32")
    return model


def set_jit_compile(model: keras.Model, jit_compile: bool | str | None) -> keras.Model:
    """Set a compiled model's XLA option: ``True``/``False``, or ``None``/``"auto"`` (Keras'
    choice: XLA on a GPU only). Its compiled train/test/predict functions are rebuilt."""
    value = None if jit_compile in (None, "auto") else bool(jit_compile)
    if value is not None and getattr(model, "_jit_compile", None) != value:
        model.jit_compile = value
        model.train_function = model.test_function = model.predict_function = None
    return model


def compile_classifier(
    model: keras.Model,
    learning_rate: float = 1e-3,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    from_logits: bool = False,
    class_weights: Mapping[str, Sequence[float]] | Sequence[float] | None = None,
    loss_weights: Mapping[str, float] | None = None,
    strategy: str | tf.distribute.Strategy | None = None,
) -> keras.Model:
    """Compile a single- or multi-output classifier with masked sparse CE and masked accuracy.

    Labels are integers with ``-1`` for missing. For a multi-output model (outputs named after
    tasks) each output gets its own loss and ``accuracy`` metric, so the history has
    ``<task>_loss`` and ``<task>_accuracy``. The report's setting: Adam, learning rate 1e-3.
    ``strategy``: compile in that strategy's scope (the model must have been built in it too).
    """
    if isinstance(optimizer, str):
        optimizer = keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}})
    names = list(model.output_names)
    if len(names) == 1:
        weights = class_weights if not isinstance(class_weights, Mapping) else class_weights.get(names[0])
        loss: Any = MaskedSparseCategoricalCrossentropy(from_logits=from_logits, class_weights=weights)
        metrics: Any = [MaskedSparseCategoricalAccuracy(name="accuracy")]
    else:
        class_weights = class_weights or {}
        if not isinstance(class_weights, Mapping):
            raise ValueError("class_weights for a multi-output model must be a dict {task: weights}")
        unknown = set(class_weights) - set(names)
        if unknown:
            raise ValueError(f"class_weights names unknown outputs {sorted(unknown)}; outputs: {names}")
        loss = {
            n: MaskedSparseCategoricalCrossentropy(from_logits=from_logits, class_weights=class_weights.get(n))
            for n in names
        }
        metrics = {n: [MaskedSparseCategoricalAccuracy(name="accuracy")] for n in names}
    if strategy is None:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights)
        return model
    distribute.check_built_in_scope(model, strategy)
    with distribute.strategy_scope(strategy):
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights)
    return model


@dataclass
class FitResult:
    """What :func:`fit` produced: the trained model, the full history and where files went."""

    model: keras.Model
    history: pd.DataFrame
    checkpoint: Path | None
    log: Path

    def best(self, monitor: str = "val_loss", mode: str = "auto") -> pd.Series:
        """The history row of the best epoch by ``monitor``."""
        column = self.history[monitor]
        return self.history.loc[column.idxmax() if _mode(monitor, mode) == "max" else column.idxmin()]


def _mode(monitor: str, mode: str) -> str:
    if mode != "auto":
        return mode
    return "max" if any(k in monitor for k in ("acc", "auc", "f1", "precision", "recall")) else "min"


def read_history(log: str | os.PathLike) -> pd.DataFrame:
    """The per-epoch CSV log as a frame indexed by 1-based epoch (last row wins for an epoch)."""
    frame = pd.read_csv(log)
    frame["epoch"] = frame["epoch"].astype(int) + 1
    return frame.drop_duplicates("epoch", keep="last").set_index("epoch").sort_index()


class _StopAfter(keras.callbacks.Callback):
    """Raise KeyboardInterrupt at the end of a given epoch (used to test resuming)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epoch:
            raise KeyboardInterrupt(f"simulated interruption after epoch {epoch + 1}")


class EpochLine(keras.callbacks.Callback):
    """One compact line per epoch, no progress bar: ``name epoch 3/10 (2.1 s): loss 0.512
    accuracy 0.81 | val_loss 0.60 val_accuracy 0.78``. Readable in notebooks and CLI logs.

    Long fits stay readable: with more than ``max_lines`` epochs planned, every k-th epoch is
    printed (k = epochs / max_lines, rounded up), and the last epoch run always is."""

    def __init__(self, name: str | None = None, stream: Any = None, max_lines: int = 100):
        super().__init__()
        self.name, self.stream, self.max_lines = name, stream, int(max_lines)
        self._start = 0.0
        self._pending: str | None = None

    def _every(self) -> int:
        total = (self.params or {}).get("epochs") or 0
        return max(1, math.ceil(total / self.max_lines)) if self.max_lines > 0 else 1

    @staticmethod
    def _format(value: Any) -> str:
        try:
            value = float(value)
        except (TypeError, ValueError):
            return str(value)
        return f"{value:.4g}"

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        order = sorted(logs, key=lambda k: (k.removeprefix("val_") != "loss", not k.endswith("loss"), k))
        train = [f"{k} {self._format(logs[k])}" for k in order if not k.startswith("val_") and k != "learning_rate"]
        val = [f"{k} {self._format(logs[k])}" for k in order if k.startswith("val_")]
        total = (self.params or {}).get("epochs")
        head = f"{self.name + ' ' if self.name else ''}epoch {epoch + 1}{'/' + str(total) if total else ''}"
        line = f"{head} ({time.perf_counter() - self._start:.1f} s): " + " ".join(train)
        if val:
            line += " | " + " ".join(val)
        if (epoch + 1) % self._every() == 0 or (total and epoch + 1 >= total):
            self._pending = None
            print(line, file=self.stream or sys.stdout, flush=True)
        else:
            self._pending = line

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._pending is not None:  # stopped early between two printed epochs
            print(self._pending, file=self.stream or sys.stdout, flush=True)
            self._pending = None


def epoch_lines(name: str | None, verbose: int | str = 0, progress: bool | None = None) -> list[keras.callbacks.Callback]:
    """``[EpochLine(name)]`` when one line per epoch is wanted, else ``[]``: ``progress``, by default
    whenever Keras' own output is off (``verbose`` 0). Every ``model.fit`` of the library uses it."""
    return [EpochLine(name)] if (progress if progress is not None else verbose == 0) else []


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that writes to a temporary file and renames it over the checkpoint,
    so that a kill during the save never leaves a torn ``.keras`` file."""

    def _save_model(self, epoch: int, batch: Any, logs: Mapping[str, Any] | None) -> None:
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        path = Path(filepath)
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = ".weights.h5" if self.save_weights_only else path.suffix
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
        try:
            if self.save_weights_only:
                self.model.save_weights(str(tmp), overwrite=True)
            else:
                self.model.save(str(tmp), overwrite=True)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore(double_checkpoint=True)`` whose weights and metadata are written to
    temporary files and renamed into place: a kill during a backup leaves the previous one whole."""

    def __init__(self, backup_dir: str, double_checkpoint: bool = True, **kwargs: Any):
        import inspect

        if "double_checkpoint" in inspect.signature(keras.callbacks.BackupAndRestore).parameters:
            super().__init__(backup_dir, double_checkpoint=double_checkpoint, **kwargs)
        else:  # Keras < 3.6: keep the previous backup ourselves (check_backup falls back to it)
            super().__init__(backup_dir, **kwargs)
            self.double_checkpoint = double_checkpoint
            self._prev_weights_path = f"{self._weights_path}.bkp"
            self._prev_training_metadata_path = f"{self._training_metadata_path}.bkp"

    def _save_model(self) -> None:
        folder = Path(self.backup_dir)
        folder.mkdir(parents=True, exist_ok=True)
        weights, meta = Path(self._weights_path), Path(self._training_metadata_path)
        if self.double_checkpoint and weights.exists():
            shutil.copyfile(weights, self._prev_weights_path)
            if meta.exists():
                shutil.copyfile(meta, self._prev_training_metadata_path)
        tmp = folder / f".latest.{os.getpid()}.tmp.weights.h5"
        tmp_meta = folder / f".training_metadata.{os.getpid()}.tmp.json"
        self.model.save_weights(str(tmp), overwrite=True)
        tmp_meta.write_text(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))
        os.replace(tmp, weights)  # both files are complete before either replaces its backup
        os.replace(tmp_meta, meta)


def _backup_state(weights: Path, meta: Path) -> tuple[int | None, str | None]:
    """(epoch, None) when the backup pair loads; (None, reason) when it does not."""
    import h5py

    if not weights.is_file():
        return None, f"{weights.name} is missing"
    try:
        with h5py.File(weights, "r"):
            pass
    except OSError as exc:
        return None, f"{weights} is unreadable ({str(exc).splitlines()[0]})"
    try:
        epoch = int(json.loads(meta.read_text())["epoch"]) if meta.is_file() else 0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{meta} is unreadable ({exc})"
    return epoch, None


def check_backup(backup_dir: str | os.PathLike) -> bool:
    """Make an interrupted fit's backup usable before resuming: a torn ``latest.weights.h5`` (a
    kill during its write) is replaced by the previous epoch's backup, or, without a readable
    one, the backup is removed so the fit starts again from epoch 1. Warns saying which; returns
    whether a usable backup remains."""
    folder = Path(backup_dir)
    if not folder.is_dir():
        return False
    weights, meta = folder / "latest.weights.h5", folder / "training_metadata.json"
    epoch, problem = _backup_state(weights, meta)
    if problem is None:
        return True
    prev_weights, prev_meta = Path(f"{weights}.bkp"), Path(f"{meta}.bkp")
    prev_epoch, prev_problem = _backup_state(prev_weights, prev_meta) if prev_weights.exists() else (None, "none kept")
    if prev_problem is None:
        os.replace(prev_weights, weights)
        if prev_meta.exists():
            os.replace(prev_meta, meta)
        elif meta.exists():
            meta.unlink()
        warnings.warn(f"backup of the interrupted fit in {folder}: {problem}; resuming from the previous "
                      f"backup instead (after epoch {prev_epoch})", RuntimeWarning, stacklevel=3)
        return True
    shutil.rmtree(folder, ignore_errors=True)
    warnings.warn(f"backup of the interrupted fit in {folder}: {problem}, and no readable earlier backup "
                  f"({prev_problem}); the fit starts again from epoch 1", RuntimeWarning, stacklevel=3)
    return False


def fit(
    model: keras.Model,
    train: Any,
    validation: Any = None,
    epochs: int = 10,
    run_dir: str | os.PathLike = "runs",
    name: str | None = None,
    monitor: str = "val_loss",
    mode: str = "auto",
    early_stopping: int | None = None,
    restore_best: bool = False,
    checkpoint: bool = True,
    backup: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = 0,
    strategy: str | tf.distribute.Strategy | None = None,
    progress: bool | None = None,
    **fit_kwargs: Any,
) -> FitResult:
    """``model.fit`` with a best-model ``.keras`` checkpoint, CSV log and resumable backups.

    Args:
        model: a compiled model.
        train, validation: datasets (or arrays) as ``keras.Model.fit`` takes them.
        epochs: total number of epochs (also when resuming).
        run_dir: folder for ``models/``, ``logs/`` and ``backup/``.
        name: file stem; defaults to ``model.name``.
        monitor, mode: what "best" means (``val_loss``, min by default; ``loss`` without validation).
        early_stopping: patience in epochs, or ``None`` for the fixed-epoch protocol of the reports.
        restore_best: load the best checkpoint's weights at the end (always with early stopping).
        checkpoint: write ``models/<name>.keras`` on every improvement of ``monitor``.
        backup: keep ``BackupAndRestore`` state so an interrupted call resumes.
        callbacks: extra callbacks.
        verbose: Keras' own output (0: none; the epoch lines below are more compact).
        progress: print one line per epoch (:class:`EpochLine`); default: when ``verbose`` is 0.
        strategy: ``tf.distribute`` strategy (or name) the model was built in; ``None``: as
            without distribution. Batch sizes are global; in-memory datasets are sharded by
            element; in a multi-worker job non-chief workers write to ``run_dir/workertemp_*``.

    The returned ``checkpoint`` and ``log`` are the chief's paths under ``run_dir`` (on a non-chief
    worker the history is read from its own copy of the log, which is identical).

    One fit per run folder at a time: the folder is locked (:class:`kerasmt.utils.RunLock`) and a
    second process gets :class:`kerasmt.utils.RunFolderLocked` naming the first. The checkpoint
    and backups are written atomically; a torn backup is handled by :func:`check_backup`.
    """
    run_dir = Path(run_dir)
    name = name or model.name
    if validation is None and monitor.startswith("val_"):
        monitor = monitor[4:]
    mode = _mode(monitor, mode)
    write_dir = run_dir
    if strategy is not None and distribute.is_distributed(strategy):
        distribute.check_built_in_scope(model, strategy)
        train = distribute.shard_by_data(train) if isinstance(train, tf.data.Dataset) else train
        if isinstance(validation, tf.data.Dataset):
            validation = distribute.shard_by_data(validation)
        write_dir = distribute.worker_dir(run_dir, strategy)
    lock = RunLock(write_dir, purpose=f"kerasmt.training.fit {name}").acquire()
    try:
        return _fit_locked(model, train, validation, epochs, run_dir, write_dir, name, monitor, mode, early_stopping,
                           restore_best, checkpoint, backup, callbacks, verbose, progress, fit_kwargs)
    finally:
        lock.release()


def _fit_locked(model: keras.Model, train: Any, validation: Any, epochs: int, run_dir: Path, write_dir: Path,
                name: str, monitor: str, mode: str, early_stopping: int | None, restore_best: bool,
                checkpoint: bool, backup: bool, callbacks: Sequence[keras.callbacks.Callback],
                verbose: int | str, progress: bool | None, fit_kwargs: dict[str, Any]) -> FitResult:
    log = write_dir / "logs" / f"{name}.csv"
    log.parent.mkdir(parents=True, exist_ok=True)
    backup_dir = write_dir / "backup" / name
    resuming = backup and backup_dir.exists() and log.is_file() and check_backup(backup_dir)
    if not resuming and log.exists():
        log.unlink()  # a fresh fit starts a fresh log
    if not resuming and backup_dir.exists():  # a backup without its log cannot be resumed consistently
        warnings.warn(f"{backup_dir}: a backup without its log {log}; the fit starts again from epoch 1",
                      RuntimeWarning, stacklevel=3)
        shutil.rmtree(backup_dir, ignore_errors=True)

    cbs: list[keras.callbacks.Callback] = []
    if backup:
        cbs.append(AtomicBackupAndRestore(str(backup_dir), delete_checkpoint=True))
    cbs.append(keras.callbacks.CSVLogger(str(log), append=True))
    ckpt_path = None
    if checkpoint or restore_best or early_stopping:
        ckpt_path = write_dir / "models" / f"{name}.keras"
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        ckpt = AtomicModelCheckpoint(str(ckpt_path), monitor=monitor, mode=mode, save_best_only=True)
        if resuming:
            previous = read_history(log)
            if monitor in previous and len(previous):
                ckpt.best = float(previous[monitor].max() if mode == "max" else previous[monitor].min())
        cbs.append(ckpt)
    if early_stopping:
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=int(early_stopping)))
    cbs.extend(callbacks)
    cbs.extend(epoch_lines(name, verbose, progress))

    if isinstance(train, tf.data.Dataset):
        fit_kwargs.setdefault("shuffle", False)  # datasets shuffle themselves
    if keras.config.dtype_policy().name != "float32" or any(
            getattr(o, "dtype", "float32") != "float32" for o in (getattr(model, "outputs", None) or [])):
        float32_outputs(model)  # mixed precision: float32 predictions and losses
    set_jit_compile(model, _JIT_COMPILE)
    model.fit(train, validation_data=validation, epochs=epochs, callbacks=cbs, verbose=verbose, **fit_kwargs)
    shutil.rmtree(backup_dir, ignore_errors=True)
    if backup_dir.parent.exists() and not any(backup_dir.parent.iterdir()):
        backup_dir.parent.rmdir()
    if (restore_best or early_stopping) and ckpt_path is not None and ckpt_path.exists():
        model.load_weights(str(ckpt_path))
    history = read_history(log)
    if write_dir != run_dir:  # a non-chief worker: its copies are not needed once the fit completed
        shutil.rmtree(write_dir, ignore_errors=True)
        log = run_dir / "logs" / f"{name}.csv"
        ckpt_path = None if ckpt_path is None else run_dir / "models" / f"{name}.keras"
    return FitResult(model=model, history=history, checkpoint=ckpt_path, log=log)


def predict_classes(model: keras.Model, dataset: Any, tasks: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``argmax`` predictions per output, as ``{task: int array}`` (one key per output name)."""
    probabilities = model.predict(dataset, verbose=0)
    names = list(tasks or model.output_names)
    if isinstance(probabilities, dict):
        return {n: np.argmax(probabilities[n], axis=-1) for n in names}
    if isinstance(probabilities, (list, tuple)):
        return {n: np.argmax(p, axis=-1) for n, p in zip(names, probabilities)}
    return {names[0]: np.argmax(probabilities, axis=-1)}


def final_and_best(history: pd.DataFrame, column: str) -> tuple[float, float]:
    """(last-epoch value, best value) of a history column (max for accuracies, min otherwise)."""
    values = history[column].astype(float)
    best = values.max() if _mode(column, "auto") == "max" else values.min()
    last = values.iloc[-1]
    return float(last), float(best) if not math.isnan(best) else float("nan")
