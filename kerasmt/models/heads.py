"""Task heads: a stack of Dense layers per task on shared features."""
from __future__ import annotations

from typing import Mapping, Sequence

import keras
from keras import layers


def dense_head(
    x: keras.KerasTensor,
    n_outputs: int,
    name: str,
    units: Sequence[int] = (128, 64),
    activation: str = "relu",
    output_activation: str | None = "softmax",
    dropout: float = 0.0,
) -> keras.KerasTensor:
    """``Dense(units[0]) -> [Dropout] -> ... -> Dense(n_outputs)`` named ``name`` (the task).

    ``output_activation=None`` gives logits (pair with a ``from_logits=True`` loss).
    """
    for i, n in enumerate(units, start=1):
        x = layers.Dense(n, activation=activation, name=f"{name}_dense_{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_dropout_{i}")(x)
    return layers.Dense(n_outputs, activation=output_activation, name=name)(x)


def multitask_heads(
    x: keras.KerasTensor,
    tasks: Mapping[str, int],
    units: Sequence[int] = (128, 64),
    activation: str = "relu",
    output_activation: str | None = "softmax",
    dropout: float = 0.0,
) -> dict[str, keras.KerasTensor]:
    """One :func:`dense_head` per task (``{task: n_classes}``), outputs named after the tasks."""
    if not tasks:
        raise ValueError("tasks must name at least one task, e.g. {'gender': 2}")
    return {
        task: dense_head(x, n, task, units, activation, output_activation, dropout)
        for task, n in tasks.items()
    }
