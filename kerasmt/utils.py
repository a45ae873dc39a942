"""Small helpers shared by the library, the notebooks and the CLI (no TensorFlow at import time)."""
from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np

SMOKE_ENV = "KERASMT_SMOKE"
RUNS_ENV = "KERASMT_RUNS_DIR"
CACHE_ENV = "KERASMT_CACHE"


def set_seed(seed: int = 0, deterministic_ops: bool = False) -> None:
    """Seed Python, NumPy and the Keras backend so that a run gives the same numbers twice.

    ``deterministic_ops=True`` also asks TensorFlow for deterministic kernels (slower).
    """
    random.seed(seed)
    np.random.seed(seed)
    import keras  # local: keep the module importable without TensorFlow

    keras.utils.set_random_seed(seed)
    if deterministic_ops:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def env_smoke() -> bool:
    """True when the environment asks for smoke sizes (``KERASMT_SMOKE=1``), as CI does."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def cache_dir(*parts: str) -> Path:
    """Per-user cache folder (``$KERASMT_CACHE`` or ``~/.cache/kerasmt``), created on demand."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "kerasmt")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_out_dir(out_dir: str | os.PathLike | None, study: str) -> Path:
    """Where a study writes models and metrics: the argument, else ``$KERASMT_RUNS_DIR/<study>``,
    else ``./runs/<study>``. The folder and its ``models/`` subfolder are created."""
    if out_dir:
        path = Path(out_dir)
    elif os.environ.get(RUNS_ENV):
        path = Path(os.environ[RUNS_ENV]) / study
    else:
        path = Path("runs") / study
    (path / "models").mkdir(parents=True, exist_ok=True)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_metrics(metrics: Mapping[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write ``metrics.json`` (NumPy scalars and arrays converted, NaN -> null) and return its path."""
    path = Path(out_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(metrics), indent=2, sort_keys=True) + "\n")
    return path


def count_params(model: Any) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts of a Keras model."""
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    total = int(model.count_params())
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def quiet_tensorflow() -> None:
    """Hide TensorFlow's Python-side INFO/WARNING log lines (e.g. ``tf.function`` retracing
    notices when a notebook trains several models in a row); errors still show."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
