"""Conventions shared by every dataset module.

A dataset module (``kerasmt.datasets.<name>``) exposes:

- ``load(root, split=...) -> pandas.DataFrame``: the *manifest*, one row per example, with an
  absolute ``path`` column (the image file) and one integer column per task label (``-1`` = missing).
  String label maps live in the module (e.g. ``fairface.LABELS``).
- ``synthesize(root, n=..., seed=...) -> Path``: writes a synthetic dataset in the real layout.
- ``check(root) -> list[str]``: every problem found in a dataset folder (empty list = valid).

Readers raise :class:`DatasetError` naming the file, row or column at fault.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd


class DatasetError(ValueError):
    """A dataset file or folder is not what the reader expects; the message says where and why."""

    def __init__(self, message: str, problems: Sequence[str] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            shown = "\n  - ".join(self.problems[:20])
            more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
            message = f"{message}\n  - {shown}{more}"
        super().__init__(message)


def read_csv_checked(path: str | Path, required: Iterable[str]) -> pd.DataFrame:
    """Read a CSV and check it has the ``required`` columns; errors name the file and the columns."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # pandas raises several parser error types
        raise DatasetError(f"{path}: cannot be read as CSV ({exc})") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {missing}; expected columns {list(required)}, "
            f"found {list(frame.columns)}"
        )
    return frame
