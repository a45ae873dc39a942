"""Two-stage training as in the report (section 4.3): the heads (FPN, RPN, box/class and mask
heads; backbone frozen) at a constant learning rate without augmentation, then all layers with
augmentation and a learning rate decaying from ``lr_all`` to ``lr_all_end``. As Matterport's
``compile``: SGD with momentum 0.9, gradients clipped by their global norm at 5.0 (Keras 2's
``clipnorm`` scaled all gradients by one global norm), and weight decay 1e-4 as an L2 loss on the
weights but not BatchNorm gamma/beta (:meth:`MaskRCNN.weight_decay_loss`, Appendix B), or Adam.
An epoch is ``steps_per_epoch`` batches (Matterport's STEPS_PER_EPOCH; the report's runs used
1,000 to 18,078) or one pass; with validation data the weights of the epoch with the lowest
validation loss over all stages are restored at the end (the report's "best epoch", Table 6).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerasmt.models.maskrcnn.model import MaskRCNN
from kerasmt.training import epoch_lines


@dataclass
class Stage:
    """One training stage: ``layers`` "heads" or "all", ``epochs``, learning rate from ``lr`` to
    ``lr_end`` (linear per step; ``None``: constant), ``augment`` (bool, or a dict of
    :func:`kerasmt.datasets.fashion.augment_example` keywords)."""

    layers: str
    epochs: int
    lr: float
    lr_end: float | None = None
    augment: bool | dict = False

    def __post_init__(self) -> None:
        if self.layers not in ("heads", "all"):
            raise ValueError(f"Stage.layers must be 'heads' or 'all', got {self.layers!r}")
        if self.epochs < 0 or self.lr <= 0:
            raise ValueError(f"Stage needs epochs >= 0 and lr > 0, got epochs={self.epochs}, lr={self.lr}")


#: the report's schedule (section 4.3; Full4: 30 epochs, best 28), epochs split as its runs did
REPORT_STAGES: tuple[Stage, ...] = (Stage("heads", 10, 5e-4, None, augment=False),
                                    Stage("all", 20, 1e-4, 1e-5, augment=True))


def make_optimizer(name: str, learning_rate, config, steps: int | None = None, lr_end: float | None = None):
    """``"sgd"`` (report: momentum 0.9) or ``"adam"``, both clipping gradients by their global norm
    (``config.gradient_clip_norm``). Weight decay is not the optimizer's: it is Matterport's L2 loss
    (:meth:`MaskRCNN.weight_decay_loss`)."""
    schedule = learning_rate
    if lr_end is not None and steps:
        schedule = keras.optimizers.schedules.PolynomialDecay(learning_rate, steps, lr_end, power=1.0)
    if name == "sgd":
        return keras.optimizers.SGD(schedule, momentum=config.learning_momentum,
                                    global_clipnorm=config.gradient_clip_norm)
    if name == "adam":
        return keras.optimizers.Adam(schedule, global_clipnorm=config.gradient_clip_norm)
    raise ValueError(f"optimizer must be 'sgd' (report) or 'adam', got {name!r}")


def train_stages(model: MaskRCNN, dataset: Callable[[bool | dict], tf.data.Dataset], stages=REPORT_STAGES,
                 val_dataset: tf.data.Dataset | None = None, optimizer: str = "sgd", steps_per_epoch: int | None = None,
                 verbose: int = 0, callbacks: list | None = None) -> pd.DataFrame:
    """Train ``model`` stage by stage; ``dataset(augment)`` returns the training batches of a stage.
    ``steps_per_epoch``: batches per epoch (the dataset repeats), default one pass.
    Returns the history (one row per epoch: ``stage``, ``epoch`` counted over all stages,
    ``seconds`` and the losses; ``val_*`` with ``val_dataset``). With ``val_dataset`` the weights of
    the epoch with the lowest ``val_loss`` are restored at the end; the history's ``best`` column
    marks it (``history.attrs["best_epoch"]``). One line per epoch ("stage 1 epoch 1/4 ...")
    unless ``verbose`` turns Keras' own output on."""
    frames = []
    epoch0 = 0
    best = _BestWeights() if val_dataset is not None else None
    for k, stage in enumerate(stages):
        stage = stage if isinstance(stage, Stage) else Stage(**stage)
        if stage.epochs == 0:
            continue
        ds = dataset(stage.augment)
        steps = steps_per_epoch or int(ds.cardinality().numpy())
        if steps <= 0:
            raise ValueError("the training dataset is empty or infinite: pass steps_per_epoch "
                             "(fewer images than the batch size are dropped: drop_remainder)")
        model.set_trainable(stage.layers)
        model.compile(optimizer=make_optimizer(optimizer, stage.lr, model.config, steps * stage.epochs, stage.lr_end),
                      jit_compile=False)
        start = time.perf_counter()
        timer = _EpochTimer()
        hist = model.fit(ds.repeat() if steps_per_epoch else ds, epochs=epoch0 + stage.epochs, initial_epoch=epoch0,
                         steps_per_epoch=steps_per_epoch, validation_data=val_dataset, verbose=verbose,
                         callbacks=[timer, *([best] if best else []), *(callbacks or []),
                                    *epoch_lines(f"stage {k + 1}", verbose)], shuffle=False)
        frame = pd.DataFrame(hist.history)
        frame.insert(0, "stage", f"{k + 1}: {stage.layers}")
        frame.insert(1, "epoch", np.arange(epoch0 + 1, epoch0 + 1 + len(frame)))
        frame["seconds"] = timer.seconds[: len(frame)] or [time.perf_counter() - start]
        frames.append(frame)
        epoch0 += stage.epochs
    model.set_trainable("all")
    history = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if best is not None and best.weights is not None:
        model.set_weights(best.weights)
        history["best"] = history["epoch"] == best.epoch
        history.attrs["best_epoch"] = best.epoch
    return history


class _BestWeights(keras.callbacks.Callback):
    """Keeps a copy of the weights of the epoch with the lowest ``val_loss`` (over all stages)."""

    def __init__(self):
        super().__init__()
        self.value = np.inf
        self.epoch: int | None = None
        self.weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss")
        if value is not None and np.isfinite(value) and value < self.value:
            self.value, self.epoch = float(value), int(epoch) + 1
            self.weights = [np.array(w) for w in self.model.get_weights()]


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._t = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t)
