"""Arrays that live on disk: decoded images, bottleneck features and evaluation arrays that grow
with the dataset, read by rows so that resident memory stays bounded whatever their size.

A :class:`DiskArray` is a read-only view of a ``.npy`` file (any dtype, C order). Rows are read
with ``os.preadv`` into fresh NumPy buffers, never through a memory map: pages of a memory map
that have been touched count towards the process's resident set (a 19.5 GB Beauty cache read once
per epoch would show up as 19.5 GB of RSS), while ``pread`` leaves them in the kernel's page cache
only, which the kernel reclaims freely. It supports what the studies do with arrays: ``len``,
``shape``, ``dtype``, ``nbytes``, integer, slice and index-array indexing (which return NumPy
arrays), and :meth:`DiskArray.rows` (a lazy subset that is itself a :class:`DiskArray`).

:func:`create` writes such a file chunk by chunk (a temporary file renamed into place when
complete, so an interrupted build never leaves a torn cache), and :func:`rows_dataset` turns one
or more arrays (in memory or on disk) into batches for ``tf.data``: shuffled index batches whose
rows are read in parallel by ``tf.numpy_function``, so only a few batches are ever in memory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

#: decoded arrays larger than this are kept on disk (a :class:`DiskArray`) rather than in memory;
#: override with the environment variable ``KERASMT_IN_MEMORY_MB``
IN_MEMORY_BYTES = 1 << 30


def in_memory_limit() -> int:
    """Bytes up to which decoded arrays stay in memory (``$KERASMT_IN_MEMORY_MB`` or 1 GiB)."""
    value = os.environ.get("KERASMT_IN_MEMORY_MB", "").strip()
    if not value:
        return IN_MEMORY_BYTES
    try:
        return int(float(value) * (1 << 20))
    except ValueError:
        raise ValueError(f"KERASMT_IN_MEMORY_MB must be a number of megabytes, got {value!r}") from None


class DiskArray:
    """Read-only row access to a ``.npy`` file without loading or memory-mapping it.

    ``index`` (optional) restricts the view to those rows of the file, in that order.
    """

    def __init__(self, path: str | os.PathLike, index: np.ndarray | None = None):
        self.path = Path(path)
        mm = np.load(self.path, mmap_mode="r")
        if not mm.flags.c_contiguous:
            raise ValueError(f"{self.path}: expected a C-ordered .npy file")
        self._file_shape = tuple(mm.shape)
        self.dtype = mm.dtype
        self._offset = int(mm.offset)
        del mm
        if not self._file_shape:
            raise ValueError(f"{self.path}: a 0-d array has no rows")
        self._row_bytes = int(np.prod(self._file_shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._index = None if index is None else np.asarray(index, dtype=np.int64)
        if self._index is not None and len(self._index) and (
                self._index.min() < 0 or self._index.max() >= self._file_shape[0]):
            raise IndexError(f"{self.path}: row index out of range 0..{self._file_shape[0] - 1}")
        self._fd: int | None = None

    # -- array protocol ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        n = self._file_shape[0] if self._index is None else len(self._index)
        return (n,) + self._file_shape[1:]

    @property
    def ndim(self) -> int:
        return len(self._file_shape)

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self._row_bytes

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"DiskArray({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype=None, copy=None):
        out = self.take(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fd"] = None
        return state

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return self._fd

    def rows(self, index: Sequence[int] | np.ndarray) -> "DiskArray":
        """A lazy view of the rows ``index`` (nothing is read)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64)
        n = len(self)
        if len(index) and (index.min() < -n or index.max() >= n):
            raise IndexError(f"row index out of range for {len(self)} rows")
        index = np.where(index < 0, index + n, index)
        base = index if self._index is None else self._index[index]
        return DiskArray(self.path, base)

    def take(self, index: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows ``index`` as a NumPy array (read in runs of consecutive file rows)."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        n = len(self)
        if len(index) and (index.min() < -n or index.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        index = np.where(index < 0, index + n, index)
        file_rows = index if self._index is None else self._index[index]
        out = np.empty((len(file_rows),) + self._file_shape[1:], dtype=self.dtype)
        if not len(file_rows):
            return out
        order = np.argsort(file_rows, kind="stable")
        sorted_rows = file_rows[order]
        flat = out.reshape(len(out), -1).view(np.uint8).reshape(len(out), self._row_bytes)
        fd = self._file()
        # runs of consecutive rows in the file -> one read each (into a buffer, then scattered)
        breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
        for run in np.split(np.arange(len(sorted_rows)), breaks):
            first, count = int(sorted_rows[run[0]]), len(run)
            targets = order[run]
            at = self._offset + first * self._row_bytes
            start = int(targets[0])
            if count == 1 or np.all(np.diff(targets) == 1):  # in order: read straight into `out`
                _read_exact(fd, memoryview(flat[start:start + count]).cast("B"), at, self.path)
            else:
                chunk = np.empty((count, self._row_bytes), dtype=np.uint8)
                _read_exact(fd, memoryview(chunk).cast("B"), at, self.path)
                flat[targets] = chunk
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            rows = self[key[0]]
            return rows[(slice(None),) + key[1:]] if not np.isscalar(key[0]) else rows[key[1:]]
        if isinstance(key, (int, np.integer)):
            return self.take([int(key)])[0]
        if isinstance(key, slice):
            return self.take(np.arange(len(self))[key])
        return self.take(np.asarray(key) if np.asarray(key).dtype != bool else np.flatnonzero(key))

    def iter_chunks(self, rows: int = 1024) -> Iterable[np.ndarray]:
        """The array in consecutive chunks of ``rows`` rows."""
        for start in range(0, len(self), rows):
            yield self.take(np.arange(start, min(start + rows, len(self))))


def _read_exact(fd: int, buffer: memoryview, offset: int, path: Path) -> None:
    done = 0
    while done < len(buffer):
        got = os.preadv(fd, [buffer[done:]], offset + done)
        if got <= 0:
            raise OSError(f"{path}: file ended {len(buffer) - done} bytes early (truncated cache?)")
        done += got


class Writer:
    """Writes rows of a ``.npy`` file of ``shape``/``dtype`` in any order (``pwrite``, no memory
    map); :meth:`close` renames the temporary file into place and returns the
    :class:`DiskArray`. Rows never written are zeros; ``written`` says which were."""

    def __init__(self, path: str | os.PathLike, shape: Sequence[int], dtype: Any):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp.npy")
        header = np.lib.format.open_memmap(self._tmp, mode="w+", dtype=self.dtype, shape=self.shape)
        self._offset = int(header.offset)
        del header  # the file now has its full (sparse) size; rows are written with pwrite
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.written = np.zeros(self.shape[0], dtype=bool)
        self._fd: int | None = os.open(self._tmp, os.O_WRONLY)

    def write(self, index: Sequence[int] | np.ndarray, rows: np.ndarray) -> None:
        """Write ``rows`` at row positions ``index``."""
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape != (len(index),) + self.shape[1:]:
            raise ValueError(f"{self.path}: chunk of shape {rows.shape} for {len(index)} rows of {self.shape[1:]}")
        if len(index) and (index.min() < 0 or index.max() >= self.shape[0]):
            raise IndexError(f"{self.path}: row index out of range 0..{self.shape[0] - 1}")
        order = np.argsort(index, kind="stable")
        index, rows = index[order], rows[order]
        flat = rows.reshape(len(rows), -1).view(np.uint8).reshape(len(rows), self._row_bytes)
        breaks = np.flatnonzero(np.diff(index) != 1) + 1
        for run in np.split(np.arange(len(index)), breaks):
            if not len(run):
                continue
            view = memoryview(np.ascontiguousarray(flat[run[0]:run[-1] + 1])).cast("B")
            done, at = 0, self._offset + int(index[run[0]]) * self._row_bytes
            while done < len(view):
                done += os.pwrite(self._fd, view[done:], at + done)
        self.written[index] = True

    def close(self) -> DiskArray:
        """Finish the file (fsync, rename into place) and open it for reading."""
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        os.replace(self._tmp, self.path)
        out = DiskArray(self.path)
        out.written = self.written
        return out

    def abort(self) -> None:
        """Drop the temporary file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._tmp.unlink(missing_ok=True)


def create(
    path: str | os.PathLike,
    shape: Sequence[int],
    dtype: Any,
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
) -> DiskArray:
    """Write a ``.npy`` file of ``shape``/``dtype`` from ``(row indices, rows)`` chunks (any order)
    and return it as a :class:`DiskArray`. Written to a temporary file renamed into place when
    complete (an interrupted build leaves no torn cache); rows never written are zeros. The
    returned array's ``written`` attribute says which rows the chunks covered."""
    writer = Writer(path, shape, dtype)
    try:
        for index, rows in chunks:
            writer.write(index, rows)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def cached(path: str | os.PathLike, build: Callable[[Path], DiskArray | None]) -> DiskArray:
    """``DiskArray(path)`` if the file exists, else ``build(path)`` (which writes it)."""
    path = Path(path)
    if not path.is_file():
        build(path)
    return DiskArray(path)


def is_disk(array: Any) -> bool:
    """True for a :class:`DiskArray`."""
    return isinstance(array, DiskArray)


def take_rows(array: Any, index: Sequence[int] | np.ndarray) -> Any:
    """``array[index]`` for a NumPy array (a copy), a lazy row view for a :class:`DiskArray`."""
    if isinstance(array, DiskArray):
        return array.rows(index)
    return np.asarray(array)[np.asarray(index)]


def rows_dataset(
    arrays: Any,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    drop_remainder: bool = False,
    unbatch: bool = False,
):
    """Batches of the rows of ``arrays`` (one array, a tuple or a dict of arrays with the same
    length; each a NumPy array or a :class:`DiskArray`) as a ``tf.data.Dataset``.

    Only row indices are shuffled and batched; each batch's rows are then read (in parallel, in
    order) with ``tf.numpy_function``. In-memory arrays are gathered from NumPy (never embedded in
    the graph), disk arrays read with ``pread``, so memory holds a few batches whatever the size.
    ``unbatch=True`` yields single rows (for per-example maps; read in batches all the same).
    """
    import tensorflow as tf

    flat = tf.nest.flatten(arrays)
    if not flat:
        raise ValueError("rows_dataset needs at least one array")
    n = len(flat[0])
    for a in flat:
        if len(a) != n:
            raise ValueError(f"arrays have different lengths: {[len(a) for a in flat]}")
    dtypes = [tf.as_dtype(np.dtype(a.dtype)) for a in flat]
    shapes = [tuple(a.shape[1:]) for a in flat]

    def read(index: np.ndarray):
        return tuple(a.take(index) if isinstance(a, DiskArray) else np.asarray(a[index]) for a in flat)

    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def _read(index):
        out = tf.numpy_function(read, [index], dtypes, stateful=False)
        batch = batch_size if drop_remainder else None
        for tensor, shape in zip(out, shapes):
            tensor.set_shape((batch,) + shape)
        return tf.nest.pack_sequence_as(arrays, list(out))

    ds = ds.map(_read, num_parallel_calls=tf.data.AUTOTUNE)
    if unbatch:
        ds = ds.unbatch()
    return ds


def save_chunks(path: str | os.PathLike, chunks: Iterable[np.ndarray], n: int) -> DiskArray:
    """Write consecutive chunks (same trailing shape and dtype) of an array of ``n`` rows as a
    ``.npy`` file and return it as a :class:`DiskArray`."""
    path = Path(path)
    iterator = iter(chunks)
    first = next(iterator, None)
    if first is None:
        if n:
            raise ValueError(f"{path}: no chunks for {n} rows")
        return create(path, (0,), np.float32, [])
    first = np.asarray(first)

    def numbered():
        start = 0
        for chunk in _chain(first, iterator):
            chunk = np.asarray(chunk)
            yield np.arange(start, start + len(chunk)), chunk
            start += len(chunk)
        if start != n:
            raise ValueError(f"{path}: chunks gave {start} rows, expected {n}")

    return create(path, (n,) + first.shape[1:], first.dtype, numbered())


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]):
    yield first
    yield from rest


def describe(arrays: Mapping[str, Any]) -> str:
    """One line per array: in memory or on disk, shape and size in MB."""
    lines = []
    for name, a in arrays.items():
        where = f"on disk ({a.path.name})" if isinstance(a, DiskArray) else "in memory"
        lines.append(f"{name}: {tuple(a.shape)} {np.dtype(a.dtype).name}, {a.nbytes / 1e6:.1f} MB {where}")
    return "\n".join(lines)
