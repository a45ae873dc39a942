"""Shared test settings: smoke sizes, a private cache and runs folder, no GPU, quiet TF."""
from __future__ import annotations

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _private_dirs(tmp_path_factory):
    """Synthetic datasets and decoded caches go to a per-session folder, never to ~/.cache."""
    cache = tmp_path_factory.mktemp("kerasmt-cache")
    runs = tmp_path_factory.mktemp("kerasmt-runs")
    old = {k: os.environ.get(k) for k in ("KERASMT_CACHE", "KERASMT_RUNS_DIR")}
    os.environ["KERASMT_CACHE"] = str(cache)
    os.environ["KERASMT_RUNS_DIR"] = str(runs)
    yield
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
