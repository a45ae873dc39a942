"""The UTKFace Model A search as a distributed keras-tuner search (``kerasmt tune utkface``).

:mod:`kerasmt.distributed_tuning` is a generic launcher: it finds this search by its registered
name ``utkface`` (the entry point ``kerasmt.studies.utkface_search:search``). ``search.project_name``
and ``search.prepare`` tell the launcher the keras-tuner project and how to write the synthetic
dataset once before the processes start.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kerasmt.distributed_tuning import TuneRequest


def search_sizes(smoke: bool) -> dict[str, Any]:
    """Dataset, model and training sizes of the search: the report's, or the notebook's smoke sizes."""
    if smoke:  # as the UTKFace notebook's SMOKE switch
        return dict(n_synthetic=160, synthetic_image_size=48, subset=200, image_size=32, base_filters=4,
                    bn_momentum=0.9, epochs=1, patience=50, batch_size=32)
    return dict(n_synthetic=5000, synthetic_image_size=200, subset=5000, image_size=128, base_filters=64,
                bn_momentum=0.99, epochs=1000, patience=50, batch_size=32)


def prepare(request: "TuneRequest") -> str | None:
    if request.data_dir:
        return request.data_dir
    from kerasmt.datasets import utkface as utk

    sizes = search_sizes(request.smoke)
    return str(utk.synthetic_root(sizes["n_synthetic"], request.seed, sizes["synthetic_image_size"]))


def search(request: "TuneRequest") -> Any:
    """The UTKFace Model A search (:func:`kerasmt.tuning.search_model_a`) on the study's
    ``search`` split, as ``study.run_search`` does it: trials train on its training part with
    augmentation, stop early on its validation part and are scored on its third part.

    ``algorithm`` ``"configs"`` (default) replays the report's CNNs 1, 2, ... (``max_trials`` of
    them, all 24 by default); ``"grid"``, ``"random"``, ``"bayesian"`` explore the report's space.
    The report's sizes (5,000 images at 128x128, 1,000-epoch cap, patience 50), or the notebook's
    smoke sizes with ``smoke``. The chief loads no images (it never trains).
    """
    from kerasmt import tuning
    from kerasmt.studies import utkface as study

    sizes = search_sizes(request.smoke)
    algorithm = request.algorithm or "configs"
    epochs = int(request.epochs or sizes["epochs"])
    size = sizes["image_size"]
    configs = [study.report_config(row[0]) for row in study.REPORT_TABLE2] if algorithm == "configs" else None
    if request.role == "chief":
        train = validation = rank = None
        age_bias = 0.0  # the chief builds the hypermodel only to declare the search space
    else:
        data = study.load_data(request.data_dir, sizes["subset"], seed=request.seed, image_size=size,
                               n_synthetic=sizes["n_synthetic"], synthetic_image_size=sizes["synthetic_image_size"])
        augment = study.augmentation(request.seed)
        train = data.dataset("search", "train", sizes["batch_size"], augment=augment, seed=request.seed)
        validation, rank = data.dataset("search", "val", None), data.dataset("search", "test", None)
        age_bias = data.mean_age("search")
    return tuning.search_model_a(
        train, validation, rank, request.directory, (size, size, 3), epochs=epochs, algorithm=algorithm,
        configs=configs, max_trials=request.max_trials, seed=request.seed, overwrite=False,
        verbose=request.verbose, base_filters=sizes["base_filters"], age_bias=age_bias,
        bn_momentum=sizes["bn_momentum"], patience=sizes["patience"],
    )


search.project_name = "model_a"  # type: ignore[attr-defined]
search.prepare = prepare  # type: ignore[attr-defined]
