"""Conventions shared by every dataset module.

A dataset module (``kerasmt.datasets.<name>``) exposes:

- ``load(root, split=...) -> pandas.DataFrame``: the *manifest*, one row per example, with an
  absolute ``path`` column (the image file) and one integer column per task label (``-1`` = missing).
  String label maps live in the module (e.g. ``fairface.LABELS``).
- ``synthesize(root, n=..., seed=...) -> Path``: writes a synthetic dataset in the real layout.
- ``check(root) -> list[str]``: every finding in a dataset folder. A plain ``str`` is an
  *error* (something ``load`` refuses or the study cannot use); a :class:`Finding` made by
  :func:`warning` is something ``load`` handles with a counted warning (a known quirk of the real
  data), one made by :func:`note` is information (e.g. a category mapping applied). The folder is
  valid when :func:`errors` of the list is empty; ``kerasmt data check --strict`` also refuses
  warnings.

Readers raise :class:`DatasetError` naming the file, row or column at fault, open regular files
only (:func:`regular_file_problem`: a FIFO in place of an image would block forever) and refuse a
dataset without a usable row.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
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


class Finding(str):
    """A ``check`` message with a severity: ``"error"``, ``"warning"`` or ``"note"``.

    It is a ``str`` (the message), so lists of findings print and compare like lists of strings;
    a plain ``str`` in a check's list counts as an error."""

    level: str = "error"

    def __new__(cls, message: str, level: str = "error") -> "Finding":
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        obj = super().__new__(cls, message)
        obj.level = level
        return obj

    def __reduce__(self):
        return (Finding, (str(self), self.level))


#: the severities of :class:`Finding`, most severe first
LEVELS: tuple[str, ...] = ("error", "warning", "note")


def warning(message: str) -> Finding:
    """A check finding that ``load`` handles with a counted warning (an error only with ``--strict``)."""
    return Finding(message, "warning")


def note(message: str) -> Finding:
    """A check finding that is information only (never fails a check)."""
    return Finding(message, "note")


def level_of(finding: str) -> str:
    """The severity of a check finding: a :class:`Finding`'s level, ``"error"`` for a plain str."""
    return getattr(finding, "level", "error")


def errors(findings: Iterable[str], strict: bool = False) -> list[str]:
    """The findings that make a dataset invalid: errors (and warnings when ``strict``)."""
    failing = {"error", "warning"} if strict else {"error"}
    return [f for f in findings if level_of(f) in failing]


def regular_file_problem(path: str | os.PathLike, what: str = "file") -> str | None:
    """Why ``path`` cannot be read as a data file (missing, a folder, a FIFO, a device, a socket),
    or None for a regular file (symbolic links are followed). Readers call it before opening a
    file so that a FIFO in place of an image is refused instead of blocking forever."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{path}: {what} not found"
    except OSError as exc:
        return f"{path}: {what} cannot be accessed ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")
    return f"{path}: {what} is {kind}, not a regular file"


def read_csv_for_check(csv: Path, columns: Sequence[str], problems: list[str],
                       read_kwargs: Mapping[str, Any] | None = None) -> pd.DataFrame | None:
    """For ``check`` functions: read ``csv`` like :func:`read_csv_checked`, appending to
    ``problems`` (instead of raising) when it is missing, not a regular file or unreadable (then
    None is returned), lacks some of ``columns`` or has no data row."""
    bad = regular_file_problem(csv, "label file")
    if bad:
        problems.append(f"{bad} (expected columns {list(columns)})")
        return None
    try:
        frame = pd.read_csv(csv, encoding="utf-8-sig", **(read_kwargs or {}))
    except Exception as exc:
        problems.append(f"{csv}: cannot be read as CSV ({exc})")
        return None
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        problems.append(
            f"{csv}: missing column(s) {absent}; expected columns {list(columns)}, found {list(frame.columns)}"
        )
    elif frame.empty:
        problems.append(f"{csv}: no data rows (only a header); expected one row per example")
    return frame


def decode_problem(path: str | os.PathLike) -> str | None:
    """Why the image at ``path`` is unusable (not a regular file, not an image by its header,
    truncated or corrupt), or None when :func:`kerasmt.images.open_image` decodes it completely
    (``check`` functions map it over a thread pool: PIL decodes without holding the GIL)."""
    from kerasmt.images import image_problem

    return image_problem(path)


def read_csv_checked(path: str | Path, required: Iterable[str], allow_empty: bool = False,
                     **read_kwargs: Any) -> pd.DataFrame:
    """Read a CSV and check it has the ``required`` columns and (unless ``allow_empty``) at least
    one data row; errors name the file and the columns. A UTF-8 byte-order mark (spreadsheets
    write one) is ignored; only regular files are opened. ``read_kwargs`` go to ``pd.read_csv``."""
    path = Path(path)
    required = list(required)
    bad = regular_file_problem(path)
    if bad:
        raise DatasetError(bad)
    try:
        frame = pd.read_csv(path, encoding=read_kwargs.pop("encoding", "utf-8-sig"), **read_kwargs)
    except Exception as exc:  # pandas raises several parser error types
        raise DatasetError(f"{path}: cannot be read as CSV ({exc})") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {missing}; expected columns {required}, "
            f"found {list(frame.columns)}"
        )
    if frame.empty and not allow_empty:
        raise DatasetError(f"{path}: no data rows (only a header); expected one row per example "
                           f"with columns {required}")
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


def copy_distinct(paths: Sequence[str | os.PathLike], distinct: int, workers: int = 2) -> None:
    """Fill ``paths[distinct:]`` with byte copies of ``paths[i % distinct]`` (already written).

    Synthesizers use it for ``distinct=K``: only K images are drawn and the rest are copies, so a
    dataset of real size (tens of thousands of full-size images) is written in seconds for scale
    and memory benchmarks. Every file is a real, separate file that must be read and decoded."""
    from concurrent.futures import ThreadPoolExecutor

    pool = [Path(p).read_bytes() for p in paths[:distinct]]

    def copy(i: int) -> None:
        Path(paths[i]).write_bytes(pool[i % distinct])

    with ThreadPoolExecutor(max(1, workers)) as executor:
        list(executor.map(copy, range(distinct, len(paths)), chunksize=256))


def check_distinct(distinct: int | None, n: int) -> int | None:
    """``distinct`` as used by the synthesizers: ``None`` (draw every image) or 1..n."""
    if distinct is None:
        return None
    if int(distinct) < 1:
        raise ValueError(f"distinct must be >= 1 (images drawn; the rest are copies) or None, got {distinct}")
    return min(int(distinct), max(int(n), 1))
