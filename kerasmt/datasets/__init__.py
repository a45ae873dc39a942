"""Dataset readers and synthetic generators, one module per dataset (see :mod:`kerasmt.datasets.base`)."""
from __future__ import annotations

import importlib
from types import ModuleType

from kerasmt.datasets.base import DatasetError, read_csv_checked  # noqa: F401

#: study name -> dataset module implementing load / synthesize / check
STUDY_DATASETS: dict[str, str] = {
    "fairface": "kerasmt.datasets.fairface",
    "recommender": "kerasmt.datasets.movielens",
    "movielens": "kerasmt.datasets.movielens",
    "attribute_mtl": "kerasmt.datasets.person_attributes",
    "utkface": "kerasmt.datasets.utkface",
    "beauty": "kerasmt.datasets.folder_classes",
    "fashion": "kerasmt.datasets.fashion",
}


def for_study(study: str) -> ModuleType:
    """The dataset module of a study; unknown names list the known ones."""
    try:
        return importlib.import_module(STUDY_DATASETS[study])
    except KeyError:
        raise ValueError(
            f"unknown study {study!r}; known studies with datasets: {sorted(STUDY_DATASETS)}"
        ) from None


def __getattr__(name: str) -> ModuleType:
    if name in {m.rsplit(".", 1)[1] for m in STUDY_DATASETS.values()}:
        module = importlib.import_module(f"kerasmt.datasets.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'kerasmt.datasets' has no attribute {name!r}")
