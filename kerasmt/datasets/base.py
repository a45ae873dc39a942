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

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pandas as pd

#: File a synthetic generator writes last (its parameters as JSON): its presence means "complete".
COMPLETE_MARKER = ".complete"


class DatasetError(ValueError):
    """A dataset file or folder is not what the reader expects; the message says where and why."""

    def __init__(self, message: str, problems: Sequence[str] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            shown = "\n  - ".join(self.problems[:20])
            more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
            message = f"{message}\n  - {shown}{more}"
        super().__init__(message)


def read_csv_for_check(csv: Path, columns: Sequence[str], problems: list[str]) -> pd.DataFrame | None:
    """For ``check`` functions: read ``csv``, appending to ``problems`` (instead of raising) when
    it is missing or unreadable (then None is returned) or lacks some of ``columns``."""
    if not csv.is_file():
        problems.append(f"{csv}: label file not found (expected columns {list(columns)})")
        return None
    try:
        frame = pd.read_csv(csv)
    except Exception as exc:
        problems.append(f"{csv}: cannot be read as CSV ({exc})")
        return None
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        problems.append(
            f"{csv}: missing column(s) {absent}; expected columns {list(columns)}, found {list(frame.columns)}"
        )
    return frame


def decode_problem(path: str | os.PathLike) -> str | None:
    """Why PIL cannot decode the image at ``path`` (``"ErrorType: message"``), or None if it can
    (``check`` functions map it over a thread pool: PIL decodes without holding the GIL)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError (truncated), ...
        return f"{type(exc).__name__}: {exc}"
    return None


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


# ----------------------------------------------------------------------- synthetic dataset folders
def reuse_synthetic(root: Path, params: Mapping[str, Any], what: str, overwrite: bool, replaces: str = "it") -> bool:
    """Whether ``root`` already holds the complete synthetic ``what`` made with ``params``.

    Without ``overwrite``, a folder made with other parameters, or a non-empty folder without the
    :data:`COMPLETE_MARKER`, is refused with a :class:`DatasetError` (``replaces`` says what
    ``overwrite=True`` would replace). With ``overwrite`` the answer is always False.
    """
    marker = root / COMPLETE_MARKER
    if overwrite:
        return False
    if marker.is_file():
        try:
            found = json.loads(marker.read_text())
        except ValueError:
            found = None
        if found == json.loads(json.dumps(dict(params))):
            return True
        raise DatasetError(f"{root}: holds a synthetic {what} made with {found}, not {dict(params)}; "
                           f"pass overwrite=True or use another folder")
    if root.is_dir() and any(root.iterdir()):
        raise DatasetError(f"{root}: folder is not empty and is not a complete synthetic {what} (no "
                           f"{COMPLETE_MARKER} marker); pass overwrite=True to replace {replaces}")
    return False


@contextlib.contextmanager
def synthetic_writer(root: Path, params: Mapping[str, Any], entries: Sequence[str] | None = None) -> Iterator[Path]:
    """Write a synthetic dataset into a temporary sibling folder, then move it into ``root``.

    Yields the temporary folder. On success the :data:`COMPLETE_MARKER` (``params`` as JSON) is
    written and the dataset published: a missing or empty ``root`` is replaced by a rename; a
    non-empty one has only ``entries`` (its top-level names) replaced, or is removed first when
    ``entries`` is None (the whole folder is the dataset). If another process published the same
    dataset first, its copy is kept. On any error the temporary folder is removed.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        (tmp / COMPLETE_MARKER).write_text(json.dumps(dict(params), sort_keys=True) + "\n")
        if root.is_dir() and any(root.iterdir()):
            if entries is not None:  # replace our entries only, keep the user's other files
                for name in (COMPLETE_MARKER, *entries):
                    target = root / name
                    if target.is_dir():
                        shutil.rmtree(target)
                    elif target.exists():
                        target.unlink()
                for name in (*entries, COMPLETE_MARKER):
                    os.replace(tmp / name, root / name)
                tmp.rmdir()
                return
            shutil.rmtree(root)
        if root.is_dir():
            root.rmdir()
        try:
            os.rename(tmp, root)
        except OSError:
            marker = root / COMPLETE_MARKER
            if marker.is_file() and json.loads(marker.read_text()) == json.loads(json.dumps(dict(params))):
                shutil.rmtree(tmp, ignore_errors=True)  # another process finished the same folder first
                return
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
