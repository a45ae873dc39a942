"""kerasmt: Keras 3 / TensorFlow building blocks and reference notebooks for multi-task studies.

Submodules are imported lazily so that ``import kerasmt`` (and the CLI) stay fast:
``kerasmt.models``, ``kerasmt.losses``, ``kerasmt.metrics``, ``kerasmt.pipeline``,
``kerasmt.training``, ``kerasmt.plots`` and ``kerasmt.datasets`` load on first use.

After ``import kerasmt``, ``keras.models.load_model`` loads every model a study saves (see
:mod:`kerasmt.saving`), and ``kerasmt.predict(model_or_path, images)`` applies a saved model to
image files (see :mod:`kerasmt.prediction`).
"""
from __future__ import annotations

import importlib
from typing import Any

from kerasmt.utils import (  # noqa: F401  (light, no TensorFlow import)
    env_smoke,
    resolve_out_dir,
    save_metrics,
    set_seed,
    smoke_sizes,
)

from kerasmt import saving as _saving

__version__ = "0.1.0"

_saving.install()

_SUBMODULES = {
    "augment",
    "datasets",
    "distribute",
    "distributed_tuning",
    "losses",
    "losses_segmentation",
    "metrics",
    "metrics_instances",
    "modelinfo",
    "models",
    "pipeline",
    "plots",
    "prediction",
    "regroup",
    "rle",
    "runner",
    "saving",
    "studies",
    "training",
    "tuning",
    "utils",
}


def predict(model: Any, images: Any, **kwargs: Any) -> Any:
    """Apply a saved kerasmt model to images: see :func:`kerasmt.prediction.predict`."""
    from kerasmt.prediction import predict as _predict

    return _predict(model, images, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"kerasmt.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'kerasmt' has no attribute {name!r}")


__all__ = sorted(_SUBMODULES | {"env_smoke", "predict", "resolve_out_dir", "save_metrics", "set_seed", "smoke_sizes",
                                 "__version__"})
