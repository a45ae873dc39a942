"""MovieLens (GroupLens, University of Minnesota): movie ratings with genres.

Reads ``ml-latest-small`` (the report's dataset: 610 users, 9,742 movies, 100,836 ratings) and the
larger releases with the same CSV layout (``ml-latest``, ``ml-25m``, ``ml-32m``)::

    <root>/movies.csv     movieId,title,genres        genres pipe-separated, e.g. "Action|Sci-Fi",
                                                      or "(no genres listed)"
    <root>/ratings.csv    userId,movieId,rating,timestamp   rating on the half-star scale 0.5-5.0

``<root>`` may also be a folder holding exactly one release folder (``<root>/ml-latest-small/``),
which is what :func:`fetch` writes. The licence forbids redistribution: the data are downloaded
by the user (:func:`fetch`, ``kerasmt data fetch movielens DIR``), never committed.

:func:`load` returns the two frames (see its docstring for dtypes) after these treatments, each
announced by a :class:`MovieLensWarning` with its count (nothing is dropped silently):

- a missing column, an unreadable or non-numeric ``userId`` / ``movieId`` / ``rating`` /
  ``timestamp`` cell, an id outside int32 (read as int64 first, so nothing wraps onto another
  id), an empty rating or a rating outside [0.5, 5.0]: :class:`~kerasmt.datasets.base.DatasetError`
  naming the file, line and value (``bad_ratings="drop"`` drops those rows instead, with a
  warning); a file that is not UTF-8: :class:`DatasetError` naming the file, line and bytes;
- duplicate ``(userId, movieId)`` rows: the latest (largest timestamp, then last row) is kept
  (``duplicates="error"`` raises instead);
- duplicate ``movieId`` rows in movies.csv: the first is kept;
- ratings of movies that movies.csv does not list: dropped (``unknown_movies="error"`` raises);
- an empty ``genres`` cell: read as ``(no genres listed)``. Movies without genres stay in the
  catalogue (they can be recommended) but count towards no genre of the profiles.

:func:`synthesize` writes a synthetic stand-in in the same layout: user ids ``1..n_users``,
sparse increasing movie ids, titles ``"Name (Year)"``, pipe-separated genres with MovieLens-like
frequencies (and a few ``(no genres listed)``), Zipf-like popularity, at least 20 ratings per
user with a heavy-tailed activity, half-star ratings 0.5-5.0 (whole stars before 2003, as in the
real data) and timestamps. Users belong to latent segments with their own genre tastes and their
own favourite movies, so users cluster on their genre profiles and collaborative models beat
global popularity.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from kerasmt.datasets.base import COMPLETE_MARKER, DatasetError, reuse_synthetic, synthetic_writer  # noqa: F401  (COMPLETE_MARKER re-exported)
from kerasmt.datasets.base import warning as _warning

MOVIES_FILE = "movies.csv"
RATINGS_FILE = "ratings.csv"
MOVIES_COLUMNS: tuple[str, ...] = ("movieId", "title", "genres")
RATINGS_COLUMNS: tuple[str, ...] = ("userId", "movieId", "rating", "timestamp")
#: columns :func:`load` needs (``timestamp`` is optional: filled with 0 when absent)
REQUIRED_RATINGS_COLUMNS: tuple[str, ...] = ("userId", "movieId", "rating")
#: genre string of movies without genres (dropped from the profiles, as in the report)
NO_GENRES = "(no genres listed)"
#: the 19 genres of ml-latest-small (and ml-25m / ml-32m), in the report's (alphabetical) order
GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)
RATING_MIN, RATING_MAX = 0.5, 5.0
#: marker written last by :func:`synthesize`; its absence means a half-written folder

_BASE_URL = "https://files.grouplens.org/datasets/movielens/"
#: releases :func:`fetch` knows. ``md5`` is the checksum GroupLens publishes in ``<zip>.md5``
#: next to each archive. It is pinned only where it is stable and confirmed: ml-25m is a frozen
#: release (md5 6b51fb27..., the value GroupLens publishes and many projects pin). ml-latest and
#: ml-latest-small are re-issued from time to time under the same name, and ml-32m's value could
#: not be confirmed here, so for those :func:`fetch` downloads the ``.md5`` file from the same
#: HTTPS site and verifies the archive against it (a corrupted or truncated download fails
#: either way). The SHA-256 of every verified archive is written next to it
#: (``<zip>.sha256``) and printed, so a user can pin it with ``fetch(..., sha256=...)``.
VARIANTS: dict[str, dict[str, str | None]] = {
    "ml-latest-small": {"md5": None, "approx_mb": "1"},
    "ml-latest": {"md5": None, "approx_mb": "335"},
    "ml-25m": {"md5": "6b51fb2759a8657d3bfcbfc42b592ada", "approx_mb": "250"},
    "ml-32m": {"md5": None, "approx_mb": "239"},
}

DOWNLOAD_HELP = (
    "MovieLens is published by GroupLens at https://grouplens.org/datasets/movielens/ ; its licence "
    "forbids redistribution. `kerasmt data fetch movielens DIR` downloads ml-latest-small into "
    "DIR/ml-latest-small (checksum-verified); larger releases: "
    "kerasmt.datasets.movielens.fetch(DIR, 'ml-25m')."
)

#: dtypes of the fast reader: ids are read as int64 (a value beyond int32 must not wrap), checked
#: against :data:`ID_MIN`..:data:`ID_MAX`, then stored as int32
_RATING_DTYPES = {"userId": "int64", "movieId": "int64", "rating": "float32", "timestamp": "int64"}
#: the ids kerasmt stores (int32): an id outside this range is a bad value naming its line
ID_MIN, ID_MAX = -(2**31), 2**31 - 1
_MAX_LISTED = 20  # rows listed per kind of problem; the rest are counted
_READ_CHUNK = 2_000_000  # rows per chunk of the typed ratings reader


class MovieLens(NamedTuple):
    """The two tables of a MovieLens release (unpack as ``ratings, movies = load(root)``)."""

    ratings: pd.DataFrame
    movies: pd.DataFrame


class MovieLensWarning(UserWarning):
    """A documented treatment of bad input (duplicates, unknown movies, ...) was applied."""


# ------------------------------------------------------------------------------------ locating
def resolve_root(root: str | os.PathLike) -> Path:
    """The folder holding ``movies.csv``: ``root`` itself, or its only ``ml-*`` subfolder that
    holds one (the layout :func:`fetch` writes). Raises :class:`DatasetError` otherwise."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found (expected a MovieLens folder holding "
                           f"{MOVIES_FILE} and {RATINGS_FILE})")
    if (root / MOVIES_FILE).is_file() or (root / RATINGS_FILE).is_file():
        return root
    found = sorted(p for p in root.iterdir() if p.is_dir() and (p / MOVIES_FILE).is_file())
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise DatasetError(f"{root}: holds several MovieLens folders {[p.name for p in found]}; "
                           f"point at one of them")
    raise DatasetError(f"{root}: no {MOVIES_FILE} / {RATINGS_FILE} here nor in a subfolder; "
                       f"expected the layout of ml-latest-small (see data/movielens/README.md)")


# -------------------------------------------------------------------------------------- reading
def _utf8_problem(path: Path) -> str | None:
    """``"<file>: line N: ..."`` for the first line of ``path`` that is not UTF-8, else None."""
    with open(path, "rb") as stream:
        for number, line in enumerate(stream, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = line[exc.start: exc.end + 8]
                return (f"{path}: line {number}: byte(s) {bad!r} at column {exc.start + 1} are not "
                        f"UTF-8; expected a UTF-8 CSV (MovieLens releases are UTF-8: re-encode the "
                        f"file, e.g. iconv -f latin1 -t utf-8)")
    return None


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` whose decoding error names the file, line and bytes (a bare
    ``UnicodeDecodeError`` names none of them)."""
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as exc:
        raise DatasetError(_utf8_problem(path) or f"{path}: not UTF-8 ({exc})") from exc


def _header(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        return list(_read_csv(path, nrows=0).columns)
    except DatasetError:
        raise
    except Exception as exc:  # empty file, binary garbage, ...
        raise DatasetError(f"{path}: cannot be read as CSV ({exc})") from exc


def _require(path: Path, found: Sequence[str], required: Sequence[str], expected: Sequence[str]) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing}; expected columns {list(expected)}, "
                           f"found {list(found)}")


def _at(where: str, i: int) -> str:
    """``line N`` (header = line 1) for a CSV file, ``row N`` (0-based position) for a frame."""
    return f"line {i + 2}" if str(where).endswith(".csv") else f"row {i}"


_EXPECTED = {"userId": f"an integer id in {ID_MIN}..{ID_MAX}", "movieId": f"an integer id in {ID_MIN}..{ID_MAX}",
             "rating": "a number", "timestamp": "an integer (seconds since 1970)"}


def _numeric_problems(frame: pd.DataFrame, column: str, where: str, integer: bool) -> tuple[np.ndarray, list[str]]:
    """(bad-row mask, messages) of a column that must hold numbers (integers if ``integer``;
    ids also within :data:`ID_MIN`..:data:`ID_MAX`, so that none wraps when stored as int32)."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = np.array(values.isna().to_numpy(), dtype=bool)
    if integer:
        finite = values.to_numpy(dtype=float, na_value=np.nan)
        bad |= ~np.isnan(finite) & (np.floor(finite) != finite)
        if column in ("userId", "movieId"):
            bad |= _out_of_id_range(values)
    messages = []
    rows = np.flatnonzero(bad)
    expected = _EXPECTED.get(column, "an integer" if integer else "a number")
    for i in rows[:_MAX_LISTED]:
        value = raw.iloc[i]
        if hasattr(value, "item"):
            value = value.item()  # np.int64(5) -> 5
        if str(where).endswith(".csv"):
            value = value if pd.isna(value) else str(value)  # the text of the file's cell
        kind = "empty value" if pd.isna(value) else f"bad value {value!r}"
        messages.append(f"{where}: {_at(where, i)}: column {column!r}: {kind}; expected {expected}")
    if len(rows) > _MAX_LISTED:
        messages.append(f"{where}: ... and {len(rows) - _MAX_LISTED} more line(s) with a bad {column!r}")
    return bad, messages


def _out_of_id_range(values: pd.Series | np.ndarray) -> np.ndarray:
    """Mask of ids outside int32 (exact for int64 / uint64 input; NaN counts as in range)."""
    v = np.asarray(values)
    if v.dtype.kind in "iu":
        if v.dtype.kind == "u":
            return v > ID_MAX
        return (v < ID_MIN) | (v > ID_MAX)
    v = pd.to_numeric(pd.Series(v), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return (v < ID_MIN) | (v > ID_MAX)


def _scale_problems(rating: np.ndarray, ok: np.ndarray, where: str) -> tuple[np.ndarray, list[str]]:
    with np.errstate(invalid="ignore"):
        bad = ok & ((rating < RATING_MIN) | (rating > RATING_MAX))
    rows = np.flatnonzero(bad)
    messages = [f"{where}: {_at(where, i)}: rating {rating[i]:g} outside the scale "
                f"[{RATING_MIN}, {RATING_MAX}]" for i in rows[:_MAX_LISTED]]
    if len(rows) > _MAX_LISTED:
        messages.append(f"{where}: ... and {len(rows) - _MAX_LISTED} more rating(s) outside "
                        f"[{RATING_MIN}, {RATING_MAX}]")
    return bad, messages


def _read_ratings_raw(path: Path) -> pd.DataFrame:
    """ratings.csv with the fast typed reader; on a malformed cell, the slow path that keeps
    the text so the bad cells can be named."""
    columns = _header(path)
    _require(path, columns, REQUIRED_RATINGS_COLUMNS, RATINGS_COLUMNS)
    use = [c for c in RATINGS_COLUMNS if c in columns]
    try:
        # chunks of 2 M rows: ids are parsed as int64 (nothing wraps), range-checked and stored
        # as int32 chunk by chunk, so 25 M ratings never exist as int64 columns all at once
        parts = []
        reader = _read_csv(path, usecols=use, dtype={c: _RATING_DTYPES[c] for c in use}, engine="c",
                           chunksize=_READ_CHUNK)
        try:
            for chunk in reader:
                if chunk[[c for c in use if c != "timestamp"]].isna().to_numpy().any():
                    raise ValueError("empty cells")
                for column in ("userId", "movieId"):
                    if _out_of_id_range(chunk[column].to_numpy()).any():
                        raise ValueError("id beyond int32")  # the slow path names the line
                    chunk[column] = chunk[column].astype(np.int32)
                parts.append(chunk)
        except UnicodeDecodeError as exc:
            raise DatasetError(_utf8_problem(path) or f"{path}: not UTF-8 ({exc})") from exc
        finally:
            reader.close()
        if not parts:
            return _read_csv(path, usecols=use, dtype={c: _RATING_DTYPES[c] for c in use})
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    except (ValueError, TypeError, OverflowError) as exc:
        if isinstance(exc, DatasetError):
            raise
        return _read_csv(path, usecols=use, dtype=str, keep_default_na=True)


def clean_movies(movies: pd.DataFrame, source: str = "movies") -> pd.DataFrame:
    """Validate a movies table (``movieId``, ``title``, ``genres``) and apply the documented
    treatments: empty genres -> ``(no genres listed)``; duplicate movieId -> first kept (warned
    with counts). Non-integer ids raise :class:`DatasetError` naming ``source`` and the line."""
    _require(Path(source), list(movies.columns), MOVIES_COLUMNS, MOVIES_COLUMNS)
    bad, problems = _numeric_problems(movies, "movieId", source, integer=True)
    if problems:  # also ids beyond int32, which would wrap onto other movies
        raise DatasetError(f"{source}: {int(bad.sum())} bad movieId value(s)", problems=problems)
    out = pd.DataFrame({
        "movieId": pd.to_numeric(movies["movieId"]).astype("int32").to_numpy(),
        "title": movies["title"].astype("string").fillna("").to_numpy(dtype=object),
        "genres": movies["genres"].astype("string").str.strip().to_numpy(dtype=object),
    })
    empty = out["genres"].isna() | (out["genres"] == "")
    if empty.any():
        warnings.warn(f"{source}: {int(empty.sum())} movie(s) with an empty genres cell read as "
                      f"{NO_GENRES!r}", MovieLensWarning, stacklevel=2)
        out.loc[empty, "genres"] = NO_GENRES
    dup = out["movieId"].duplicated(keep="first")
    if dup.any():
        warnings.warn(f"{source}: {int(dup.sum())} duplicate movieId row(s) (e.g. movieId "
                      f"{int(out.loc[dup, 'movieId'].iloc[0])}); the first row of each is kept",
                      MovieLensWarning, stacklevel=2)
        out = out.loc[~dup].reset_index(drop=True)
    return out


def clean_ratings(
    ratings: pd.DataFrame,
    movies: pd.DataFrame | None = None,
    source: str = "ratings",
    bad_ratings: str = "error",
    duplicates: str = "last",
    unknown_movies: str = "drop",
) -> pd.DataFrame:
    """Validate a ratings table and apply the documented treatments (see the module docstring).

    Returns ``userId`` int32, ``movieId`` int32, ``rating`` float32, ``timestamp`` int64 (0 when
    the input has none), in the input's row order minus the dropped rows. ``bad_ratings`` is
    ``"error"`` (default) or ``"drop"``; ``duplicates`` is ``"last"`` (keep the latest rating of a
    (user, movie) pair) or ``"error"``; ``unknown_movies`` (movieIds absent from ``movies``) is
    ``"drop"`` or ``"error"``. Errors are :class:`DatasetError` naming ``source`` and the
    place: ``line N`` when ``source`` is a CSV file (header = line 1), else ``row N`` (0-based
    position in the frame); every drop is warned with its count.
    """
    for name, value, allowed in (("bad_ratings", bad_ratings, ("error", "drop")),
                                 ("duplicates", duplicates, ("last", "error")),
                                 ("unknown_movies", unknown_movies, ("drop", "error"))):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    _require(Path(source), list(ratings.columns), REQUIRED_RATINGS_COLUMNS, RATINGS_COLUMNS)
    typed = all(ratings[c].dtype.kind in "iuf" for c in REQUIRED_RATINGS_COLUMNS)
    if typed and not ratings[list(REQUIRED_RATINGS_COLUMNS)].isna().to_numpy().any() and \
            ratings["userId"].dtype.kind in "iu" and ratings["movieId"].dtype.kind in "iu":
        user = ratings["userId"].to_numpy()
        movie = ratings["movieId"].to_numpy()
        rating = ratings["rating"].to_numpy(dtype=np.float64)
        bad = np.zeros(len(ratings), dtype=bool)
        problems: list[str] = []
        if user.dtype.itemsize > 4 or movie.dtype.itemsize > 4 or user.dtype.kind == "u" or movie.dtype.kind == "u":
            for column in ("userId", "movieId"):  # ids beyond int32 would wrap onto other ids
                if _out_of_id_range(ratings[column].to_numpy()).any():
                    b, p = _numeric_problems(ratings, column, source, integer=True)
                    bad |= b
                    problems += p
    else:
        bad = np.zeros(len(ratings), dtype=bool)
        problems = []
        for column in ("userId", "movieId", "rating"):
            b, p = _numeric_problems(ratings, column, source, integer=column != "rating")
            bad |= b
            problems += p
        user = pd.to_numeric(ratings["userId"], errors="coerce").to_numpy(dtype=np.float64, na_value=0)
        movie = pd.to_numeric(ratings["movieId"], errors="coerce").to_numpy(dtype=np.float64, na_value=0)
        rating = pd.to_numeric(ratings["rating"], errors="coerce").to_numpy(dtype=np.float64)
    scale_bad, scale_problems = _scale_problems(rating, ~bad, source)
    bad |= scale_bad
    problems += scale_problems
    if "timestamp" in ratings.columns and ratings["timestamp"].dtype.kind not in "iu":
        # a non-numeric or empty timestamp would otherwise read as 1970 and decide which
        # duplicate rating is "the latest": a bad row like a bad rating
        b, p = _numeric_problems(ratings, "timestamp", source, integer=False)
        bad |= b
        problems += p
    if bad.any():
        if bad_ratings == "error":
            raise DatasetError(f"{source}: {int(bad.sum())} bad rating row(s) (pass "
                               f"bad_ratings='drop' to drop them)", problems=problems)
        warnings.warn(f"{source}: dropped {int(bad.sum())} rating row(s) with a missing or "
                      f"non-numeric value (id, rating or timestamp), an id beyond int32 or a "
                      f"rating outside [{RATING_MIN}, {RATING_MAX}]",
                      MovieLensWarning, stacklevel=2)
    if "timestamp" in ratings.columns:
        ts = pd.to_numeric(ratings["timestamp"], errors="coerce").to_numpy(dtype=np.float64, na_value=0) \
            if ratings["timestamp"].dtype.kind not in "iu" else ratings["timestamp"].to_numpy()
        ts = ts.astype(np.int64)  # bad cells are dropped below (or raised above)
    else:
        ts = np.zeros(len(ratings), dtype=np.int64)
    keep = ~bad
    if keep.all():  # no boolean-mask copies of 25 M-row columns
        out = pd.DataFrame({"userId": user.astype(np.int32, copy=False), "movieId": movie.astype(np.int32, copy=False),
                            "rating": rating.astype(np.float32), "timestamp": ts}, copy=False)
    else:
        out = pd.DataFrame({
            "userId": user[keep].astype(np.int32),
            "movieId": movie[keep].astype(np.int32),
            "rating": rating[keep].astype(np.float32),
            "timestamp": ts[keep],
        })
    lines = np.flatnonzero(keep)  # input positions of the kept rows
    if movies is not None:
        known = np.isin(out["movieId"].to_numpy(), movies["movieId"].to_numpy())
        if not known.all():
            n_unknown = int((~known).sum())
            example = int(out["movieId"].to_numpy()[~known][0])
            if unknown_movies == "error":
                rows = np.flatnonzero(~known)
                raise DatasetError(
                    f"{source}: {n_unknown} rating(s) of movies not listed in the movies table",
                    problems=[f"{source}: {_at(source, lines[i])}: movieId {out['movieId'].iat[i]} not in the movies table"
                              for i in rows[:_MAX_LISTED]])
            warnings.warn(f"{source}: dropped {n_unknown} rating(s) of "
                          f"{len(np.unique(out['movieId'].to_numpy()[~known]))} movie(s) not listed "
                          f"in the movies table (e.g. movieId {example})", MovieLensWarning, stacklevel=2)
            out = out.loc[known].reset_index(drop=True)
            lines = lines[known]
    key = out["userId"].to_numpy().astype(np.int64) << 32 | (out["movieId"].to_numpy().astype(np.int64) & 0xFFFFFFFF)
    key.sort()  # duplicates found by sorting: no 25 M-entry hash table
    has_dup = bool((key[1:] == key[:-1]).any())
    del key
    if has_dup:
        key = out["userId"].to_numpy().astype(np.int64) << 32 | (out["movieId"].to_numpy().astype(np.int64) & 0xFFFFFFFF)
        # the latest rating of a pair wins: order by timestamp (stable: the last row breaks ties)
        order = np.argsort(out["timestamp"].to_numpy(), kind="stable")
        dup_sorted = pd.Series(key[order]).duplicated(keep="last").to_numpy()
        dup = np.zeros(len(out), dtype=bool)
        dup[order[dup_sorted]] = True
        if duplicates == "error":
            rows = np.flatnonzero(dup)
            raise DatasetError(
                f"{source}: {len(rows)} duplicate (userId, movieId) row(s)",
                problems=[f"{source}: {_at(source, lines[i])}: userId {out['userId'].iat[i]}, movieId "
                          f"{out['movieId'].iat[i]} rated more than once" for i in rows[:_MAX_LISTED]])
        warnings.warn(f"{source}: {int(dup.sum())} duplicate (userId, movieId) row(s); the latest "
                      f"rating of each pair is kept", MovieLensWarning, stacklevel=2)
        out = out.loc[~dup].reset_index(drop=True)
    return out


def load(
    root: str | os.PathLike,
    bad_ratings: str = "error",
    duplicates: str = "last",
    unknown_movies: str = "drop",
) -> MovieLens:
    """Read a MovieLens release folder and return ``MovieLens(ratings, movies)``.

    ``ratings``: ``userId`` int32, ``movieId`` int32, ``rating`` float32 (0.5-5.0),
    ``timestamp`` int64 (seconds since 1970; 0 when the file has no such column), file order.
    ``movies``: ``movieId`` int32, ``title`` and ``genres`` strings (pandas' default string
    dtype: ``str`` on pandas 3, ``object`` before; genres pipe-separated, ``(no genres listed)``
    for none), file order.

    Bad input raises :class:`DatasetError` naming the file and line, or gets the documented
    treatment (module docstring) announced by a :class:`MovieLensWarning` with counts; the
    keyword arguments are those of :func:`clean_ratings`. Reads ml-25m (25 M ratings) in about
    10 s and 0.6 GB.
    """
    folder = resolve_root(root)
    movies_csv, ratings_csv = folder / MOVIES_FILE, folder / RATINGS_FILE
    _require(movies_csv, _header(movies_csv), MOVIES_COLUMNS, MOVIES_COLUMNS)
    try:
        raw_movies = _read_csv(movies_csv, dtype={"title": str, "genres": str}, keep_default_na=False,
                               na_values={"movieId": [""]})
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"{movies_csv}: cannot be read as CSV ({exc})") from exc
    movies = clean_movies(raw_movies, source=str(movies_csv))
    raw = _read_ratings_raw(ratings_csv)
    ratings = clean_ratings(raw, movies, source=str(ratings_csv), bad_ratings=bad_ratings,
                            duplicates=duplicates, unknown_movies=unknown_movies)
    return MovieLens(ratings, movies)


def check(root: str | os.PathLike) -> list[str]:
    """Every finding in a MovieLens folder (empty list = valid).

    Errors (what :func:`load` refuses): missing files and columns, unreadable or non-UTF-8 CSVs,
    non-integer ids or ids beyond int32, empty or non-numeric ratings and timestamps, ratings
    outside [0.5, 5.0]. Warnings (:func:`~kerasmt.datasets.base.warning`: what ``load`` handles
    with a counted warning): duplicate movieIds, empty genres, duplicate (userId, movieId) rows
    and ratings of movies that movies.csv does not list. Each message
    names the file and line (header = line 1); each kind lists its first 20 lines and counts the
    rest. Movies with ``(no genres listed)`` are valid (they are the real data's convention).
    """
    try:
        folder = resolve_root(root)
    except DatasetError as exc:
        return [str(exc)]
    problems: list[str] = []
    movies_csv, ratings_csv = folder / MOVIES_FILE, folder / RATINGS_FILE
    movies: pd.DataFrame | None = None
    try:
        columns = _header(movies_csv)
        _require(movies_csv, columns, MOVIES_COLUMNS, MOVIES_COLUMNS)
        movies = _read_csv(movies_csv, dtype=str, keep_default_na=False)
    except DatasetError as exc:
        problems.append(str(exc))
    if movies is not None:
        bad, msgs = _numeric_problems(movies.replace({"movieId": {"": None}}), "movieId", str(movies_csv), True)
        problems += msgs
        ids = pd.to_numeric(movies["movieId"], errors="coerce")
        dup = ids.duplicated(keep="first").to_numpy() & ~bad
        for i in np.flatnonzero(dup)[:_MAX_LISTED]:
            problems.append(_warning(f"{movies_csv}: line {i + 2}: duplicate movieId {int(ids.iat[i])}"))
        if dup.sum() > _MAX_LISTED:
            problems.append(_warning(f"{movies_csv}: ... and {int(dup.sum()) - _MAX_LISTED} more duplicate movieId rows"))
        empty = np.flatnonzero(movies["genres"].str.strip().eq("").to_numpy())
        for i in empty[:_MAX_LISTED]:
            problems.append(_warning(f"{movies_csv}: line {i + 2}: column 'genres': empty value; expected "
                                     f"genres separated by '|' or {NO_GENRES!r}"))
        if len(empty) > _MAX_LISTED:
            problems.append(_warning(f"{movies_csv}: ... and {len(empty) - _MAX_LISTED} more empty genres"))
        movie_ids = ids[~bad].to_numpy()
    try:
        raw = _read_ratings_raw(ratings_csv)
    except DatasetError as exc:
        problems.append(str(exc))
        return problems
    bad = np.zeros(len(raw), dtype=bool)
    for column in ("userId", "movieId", "rating", "timestamp"):  # as load's clean_ratings
        if column not in raw.columns or (column == "timestamp" and raw[column].dtype.kind in "iu"):
            continue
        b, msgs = _numeric_problems(raw, column, str(ratings_csv), integer=column != "rating")
        bad |= b
        problems += msgs
    rating = pd.to_numeric(raw["rating"], errors="coerce").to_numpy(dtype=np.float64)
    problems += _scale_problems(rating, ~bad, str(ratings_csv))[1]
    user = pd.to_numeric(raw["userId"], errors="coerce").to_numpy(dtype=np.float64, na_value=0)
    movie = pd.to_numeric(raw["movieId"], errors="coerce").to_numpy(dtype=np.float64, na_value=0)
    ok = ~bad
    key = pd.Series(user[ok].astype(np.int64) << 32 | (movie[ok].astype(np.int64) & 0xFFFFFFFF))
    dup = np.flatnonzero(ok)[key.duplicated(keep="first").to_numpy()]
    for i in dup[:_MAX_LISTED]:
        problems.append(_warning(f"{ratings_csv}: line {i + 2}: userId {int(user[i])}, movieId {int(movie[i])} "
                                 f"rated more than once (load keeps the latest)"))
    if len(dup) > _MAX_LISTED:
        problems.append(_warning(f"{ratings_csv}: ... and {len(dup) - _MAX_LISTED} more duplicate (userId, movieId) rows"))
    if movies is not None:
        unknown = np.flatnonzero(ok & ~np.isin(movie, movie_ids))
        for i in unknown[:_MAX_LISTED]:
            problems.append(_warning(f"{ratings_csv}: line {i + 2}: movieId {int(movie[i])} is not listed in {movies_csv.name}"))
        if len(unknown) > _MAX_LISTED:
            problems.append(_warning(f"{ratings_csv}: ... and {len(unknown) - _MAX_LISTED} more ratings of unlisted movies"))
    return problems


# -------------------------------------------------------------------------------------- fetching
def _md5_from_text(text: str) -> str:
    import re

    match = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if not match:
        raise DatasetError(f"no md5 checksum found in {text[:200]!r}")
    return match.group(0).lower()


def _download(url: str, target: Path, timeout: float) -> None:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            from kerasmt.utils import progress

            size = int((getattr(response, "headers", None) or {}).get("Content-Length") or 0)
            blocks = iter(lambda: response.read(1 << 20), b"")
            for block in progress(blocks, f"download {target.name}", total=-(-size // (1 << 20)) or None, unit="MB"):
                out.write(block)
    except OSError as exc:  # URLError, HTTPError, timeouts are OSErrors
        raise DatasetError(f"{url}: download failed ({exc}); without network access, download it "
                           f"elsewhere, unzip it and point kerasmt at the folder holding movies.csv") from exc


def _digests(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def fetch(
    root: str | os.PathLike,
    variant: str = "ml-latest-small",
    sha256: str | None = None,
    timeout: float = 60.0,
    overwrite: bool = False,
) -> Path:
    """Download a MovieLens release over HTTPS into ``root/<variant>/`` and return that folder.

    The zip is verified before extraction: against ``sha256`` when given, else against the md5
    pinned in :data:`VARIANTS`, else against the ``<zip>.md5`` file GroupLens publishes next to
    the archive (see the comment on :data:`VARIANTS`). A mismatch raises :class:`DatasetError`
    and nothing is extracted. An existing complete folder is reused unless ``overwrite``.
    Tests never call this with the network: they serve a local zip through a patched
    ``urllib.request.urlopen``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown MovieLens variant {variant!r}; known: {sorted(VARIANTS)}")
    root = Path(root).expanduser().resolve()
    target = root / variant
    if (target / MOVIES_FILE).is_file() and (target / RATINGS_FILE).is_file() and not overwrite:
        return target
    root.mkdir(parents=True, exist_ok=True)
    url = f"{_BASE_URL}{variant}.zip"
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{variant}-download-") as tmp:
        archive = Path(tmp) / f"{variant}.zip"
        print(f"downloading {url} (about {VARIANTS[variant]['approx_mb']} MB) ...", flush=True)
        _download(url, archive, timeout)
        md5, sha = _digests(archive)
        if sha256 is not None:
            expected, actual, how = sha256.lower(), sha, "the sha256 passed to fetch()"
        elif VARIANTS[variant]["md5"]:
            expected, actual, how = str(VARIANTS[variant]["md5"]), md5, "the md5 pinned in kerasmt"
        else:
            md5_file = Path(tmp) / f"{variant}.zip.md5"
            _download(url + ".md5", md5_file, timeout)
            expected, actual = _md5_from_text(md5_file.read_text(errors="replace")), md5
            how = f"the md5 published at {url}.md5"
        if actual != expected:
            raise DatasetError(f"{url}: checksum mismatch against {how}: expected {expected}, got "
                               f"{actual}; the download is corrupt or the release changed (nothing "
                               f"was extracted)")
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            for name in names:
                parts = Path(name).parts
                if name.startswith("/") or ".." in parts:
                    raise DatasetError(f"{url}: unsafe path {name!r} in the archive")
            extract = Path(tmp) / "x"
            zf.extractall(extract)
        found = [p.parent for p in extract.rglob(MOVIES_FILE)]
        if len(found) != 1 or not (found[0] / RATINGS_FILE).is_file():
            raise DatasetError(f"{url}: the archive does not hold one folder with {MOVIES_FILE} and "
                               f"{RATINGS_FILE} (found {names[:10]})")
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(found[0]), str(target))
        (root / f"{variant}.zip.sha256").write_text(f"{sha}  {variant}.zip\n")
    print(f"verified against {how}; sha256 {sha}", flush=True)
    return target


# ------------------------------------------------------------------------------------ synthesis
#: genre frequencies of ml-latest-small (share of movies having the genre)
_GENRE_SHARE = np.array([0.19, 0.13, 0.062, 0.068, 0.39, 0.12, 0.045, 0.45, 0.081, 0.009,
                         0.10, 0.017, 0.034, 0.059, 0.16, 0.10, 0.19, 0.039, 0.017])
_ADJECTIVES = ("Silent", "Last", "Dark", "Broken", "Golden", "Lost", "Secret", "Wild", "Frozen",
               "Hidden", "Crimson", "Electric", "Lonely", "Burning", "Eternal", "Little", "Final",
               "Midnight", "Savage", "Blue", "Iron", "Sweet", "Strange", "Distant", "Hollow",
               "Shining", "Restless", "Quiet", "Royal", "Fallen")
_NOUNS = ("River", "Empire", "Garden", "Night", "Stranger", "Kingdom", "Heart", "Road", "City",
          "Promise", "Summer", "Machine", "Island", "Shadow", "Dream", "Mountain", "Letter",
          "Storm", "Detective", "Planet", "Voyage", "Circus", "Frontier", "Winter", "Game",
          "Ghost", "Station", "Mirror", "Harbor", "Legend", "Dragon", "Orchestra", "Witness",
          "Horizon", "Robot", "Valley")
_SEQUELS = ("", "", "", "", "", "", " II", " 2", " III", ": Reloaded", ": The Return")
_HALF_STARS_FROM = 1045526400  # 2003-02-18: MovieLens introduced half stars
_LAST_TIMESTAMP = 1537799250  # last rating of ml-latest-small (2018-09-24)
_FIRST_TIMESTAMP = 828124615  # first rating of ml-latest-small (1996-03-29)


def _largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    raw = shares / shares.sum() * total
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def _activity(n_users: int, n: int, cap: int, rng: np.random.Generator, minimum: int = 20) -> np.ndarray:
    """Ratings per user: at least ``minimum``, heavy-tailed (log-normal), summing to ``n``."""
    extra_total = n - minimum * n_users
    weights = rng.lognormal(0.0, 1.25, n_users)
    counts = minimum + _largest_remainder(weights, extra_total)
    for _ in range(50):  # move the excess of capped users onto the others
        over = counts > cap
        if not over.any():
            break
        excess = int((counts[over] - cap).sum())
        counts[over] = cap
        room = np.where(counts < cap, weights, 0.0)
        counts += _largest_remainder(room, excess)
    return counts


def default_sizes(n: int, n_users: int | None = None, n_movies: int | None = None) -> tuple[int, int]:
    """Users and movies of a synthetic MovieLens of ``n`` ratings, where not given: as many
    ratings per user as ml-latest-small (610 users for 100,836 ratings; ml-25m has about the
    same ratio) and a catalogue growing like the releases' (9,742 movies for 100 k ratings,
    about 62 k for 25 M)."""
    if n_users is None:
        n_users = max(1, int(round(n * 610 / 100_836)))
    if n_movies is None:
        n_movies = max(50, int(round(9742 * (n / 100_836) ** 0.34)))
    return int(n_users), int(n_movies)


def _design(rng: np.random.Generator, n_users: int, n_movies: int, n_segments: int) -> dict:
    """The first draws of :func:`synthesize_frames` (movies, segments, each user's segment), in
    their order, so that :func:`planted_segments` can replay them without drawing ratings."""
    n_genres = len(GENRES)

    # ---- movies: ids, genres, titles, popularity and quality
    movie_ids = np.cumsum(rng.geometric(0.15, n_movies)).astype(np.int32)
    n_of = rng.choice([1, 2, 3, 4, 5], size=n_movies, p=[0.33, 0.33, 0.21, 0.09, 0.04])
    keys = np.log(_GENRE_SHARE)[None, :] + rng.gumbel(size=(n_movies, n_genres))
    ranks = np.argsort(np.argsort(-keys, axis=1), axis=1)
    onehot = ranks < n_of[:, None]
    onehot[rng.random(n_movies) < 0.0035] = False  # (no genres listed), 34 of 9,742 in the real data
    years = np.clip(2018 - np.floor(rng.exponential(17.0, n_movies)), 1902, 2018).astype(int)
    adjective = rng.integers(0, len(_ADJECTIVES), n_movies)
    noun = rng.integers(0, len(_NOUNS), n_movies)
    sequel = rng.integers(0, len(_SEQUELS), n_movies)
    article = rng.random(n_movies) < 0.3
    titles = [f"{'The ' if a else ''}{_ADJECTIVES[i]} {_NOUNS[j]}{_SEQUELS[s]} ({y})"
              for a, i, j, s, y in zip(article, adjective, noun, sequel, years)]
    names = np.array(GENRES, dtype=object)
    genres = ["|".join(names[row]) if row.any() else NO_GENRES for row in onehot]
    movies = pd.DataFrame({"movieId": movie_ids, "title": titles, "genres": genres})
    # Zipf-like popularity (rank^-0.95), slightly favouring recent films
    popularity = (rng.permutation(n_movies) + 300.0) ** -2.2 * np.exp(0.01 * (years - 2018))
    quality = rng.normal(0.0, 0.35, n_movies) + 0.08 * np.log(popularity / popularity.mean())

    # ---- segments: genre tastes and favourite movies; users: segment, own tastes, activity
    share = rng.dirichlet(np.full(n_segments, 4.0))
    taste = rng.normal(0.0, 0.3, (n_segments, n_genres))
    for s in range(n_segments):
        picks = rng.permutation(n_genres)
        taste[s, picks[:3]] += 1.6  # loved genres
        taste[s, picks[3:6]] -= 1.6  # avoided genres
    favourite = rng.normal(0.0, 1.0, (n_segments, n_movies))
    segment = rng.choice(n_segments, size=n_users, p=share)
    return dict(n_genres=n_genres, movie_ids=movie_ids, onehot=onehot, years=years, movies=movies,
                popularity=popularity, quality=quality, taste=taste, favourite=favourite, segment=segment)


def planted_segments(n: int = 100_836, n_users: int | None = None, n_movies: int | None = None,
                     n_segments: int = 4, seed: int = 0) -> pd.Series:
    """The latent segment of every user (index userId) of the synthetic MovieLens that
    :func:`synthesize_frames` / :func:`synthesize` make with these arguments: the ground truth a
    clustering of the users can be scored against (adjusted Rand index)."""
    n_users, n_movies = default_sizes(n, n_users, n_movies)
    d = _design(np.random.default_rng(seed), n_users, n_movies, n_segments)
    return pd.Series(d["segment"], index=pd.Index(np.arange(1, n_users + 1), name="userId"), name="segment")


def synthesize_frames(
    n: int = 100_836,
    n_users: int | None = None,
    n_movies: int | None = None,
    n_segments: int = 4,
    seed: int = 0,
) -> MovieLens:
    """The synthetic ``MovieLens(ratings, movies)`` that :func:`synthesize` writes (in memory).

    ``n`` ratings exactly (each user at least 20, at most a third of the catalogue), user ids
    ``1..n_users``; sizes left at ``None`` follow :func:`default_sizes` (ml-latest-small's 610
    users and 9,742 movies for the default ``n``). Vectorised throughout: 25 M ratings / 162 k
    users / 60 k movies take about two minutes and 3 GB. See the module docstring for what the
    data look like.
    """
    n_users, n_movies = default_sizes(n, n_users, n_movies)
    if n_users < 1 or n_movies < 10:
        raise ValueError(f"need n_users >= 1 and n_movies >= 10, got {n_users}, {n_movies}")
    cap = max(20, n_movies // 3)
    if not 20 * n_users <= n <= cap * n_users:
        raise ValueError(f"n={n} ratings must lie in [20 * n_users, {cap} * n_users] = "
                         f"[{20 * n_users}, {cap * n_users}] (every MovieLens user has >= 20 ratings)")
    if n_segments < 1:
        raise ValueError(f"n_segments must be >= 1, got {n_segments}")
    rng = np.random.default_rng(seed)
    d = _design(rng, n_users, n_movies, n_segments)
    n_genres, movie_ids, onehot, years, movies = d["n_genres"], d["movie_ids"], d["onehot"], d["years"], d["movies"]
    popularity, quality, taste, favourite, segment = (d["popularity"], d["quality"], d["taste"],
                                                      d["favourite"], d["segment"])
    user_taste = taste[segment] + rng.normal(0.0, 0.45, (n_users, n_genres))
    counts = _activity(n_users, n, cap, rng)

    # ---- sampling movies per user without replacement: P(movie) ~ popularity x favourite of
    # the segment x genre taste. Movies sharing a genre combination share the taste factor, so
    # a draw picks a combination (per user) and then a movie inside it (per segment).
    combos, combo_of = np.unique(onehot, axis=0, return_inverse=True)
    combo_of = combo_of.reshape(-1)
    n_genres_of = np.maximum(combos.sum(axis=1), 1)
    order = np.argsort(combo_of, kind="stable")  # movies grouped by combination
    starts = np.searchsorted(combo_of[order], np.arange(len(combos)))
    within = popularity[None, order] * np.exp(favourite[:, order])  # (segments, movies)
    cum = np.cumsum(within, axis=1)
    before = np.concatenate([np.zeros((n_segments, 1)), cum], axis=1)[:, starts]  # mass before combo
    combo_mass = np.add.reduceat(within, starts, axis=1)  # (segments, combos)

    def draw(users: np.ndarray, k: np.ndarray) -> np.ndarray:
        """``k[i]`` movie indices (with replacement) for each user ``users[i]``."""
        out = np.empty(int(k.sum()), dtype=np.int64)
        pos = 0
        chunk = max(1, 4_000_000 // max(len(combos), 1))
        for lo in range(0, len(users), chunk):
            u, kk = users[lo: lo + chunk], k[lo: lo + chunk]
            weights = combo_mass[segment[u]] * np.exp(1.1 * (user_taste[u] @ combos.T) / n_genres_of)
            cdf = np.cumsum(weights, axis=1)
            cdf /= cdf[:, -1:]
            rows = np.repeat(np.arange(len(u)), kk)
            r = rng.random(len(rows))
            flat = (cdf + np.arange(len(u))[:, None]).ravel()
            combo = np.searchsorted(flat, rows + r, side="right") - rows * len(combos)
            combo = np.minimum(combo, len(combos) - 1)
            seg = segment[u][rows]
            target = before[seg, combo] + rng.random(len(rows)) * combo_mass[seg, combo]
            flat_cum = (cum + np.arange(n_segments)[:, None] * cum[:, -1:].max() * 2).ravel()
            offset = seg * cum[:, -1:].max() * 2
            idx = np.searchsorted(flat_cum, target + offset, side="right") - seg * n_movies
            idx = np.clip(idx, starts[combo], np.append(starts[1:], n_movies)[combo] - 1)
            out[pos: pos + len(rows)] = order[idx]
            pos += len(rows)
        return out

    # rounds of draws with replacement; duplicates dropped (first draw kept), each user trimmed to
    # their count; finished users leave the loop. After 8 rounds the few users still short (the
    # heaviest ones) draw uniformly among all movies.
    done_parts: list[np.ndarray] = []
    pending = np.empty(0, dtype=np.int64)
    todo = np.arange(n_users)
    factor = 1.25
    for round_ in range(200):
        if len(todo) == 0:
            break
        have_now = np.bincount(pending // n_movies, minlength=n_users)[todo]
        k = np.ceil((counts[todo] - have_now) * factor).astype(np.int64) + 2
        if round_ < 8:
            picked = draw(todo, k)
        else:
            picked = rng.integers(0, n_movies, int(k.sum()))
        cand = np.concatenate([pending, np.repeat(todo.astype(np.int64), k) * n_movies + picked])
        cand = cand[~pd.Series(cand).duplicated().to_numpy()]  # first occurrence kept
        user_of = cand // n_movies
        rank = pd.Series(user_of).groupby(user_of).cumcount().to_numpy()
        cand = cand[rank < counts[user_of]]
        user_of = cand // n_movies
        finished = np.bincount(user_of, minlength=n_users) >= counts
        mask = finished[user_of]
        done_parts.append(cand[mask])
        pending = cand[~mask]
        todo = todo[~finished[todo]]
        factor *= 1.5
    if len(todo):  # cannot happen with at most a third of the catalogue per user
        raise RuntimeError(f"synthesize: {len(todo)} users could not get their ratings")
    pairs = np.concatenate(done_parts)
    pairs.sort()
    user_idx, movie_idx = pairs // n_movies, pairs % n_movies

    # ---- ratings: user bias + movie quality + genre taste + noise, on the user's star scale
    start = rng.uniform(_FIRST_TIMESTAMP, _LAST_TIMESTAMP - 86400 * 30, n_users)
    span = np.minimum(rng.lognormal(np.log(86400 * 60), 2.0, n_users), _LAST_TIMESTAMP - start)
    half = (start >= _HALF_STARS_FROM) & (rng.random(n_users) < 0.7)
    bias = rng.normal(0.0, 0.45, n_users)
    fit = np.empty(len(pairs))
    taste_per_genre = onehot.astype(np.float64) / np.maximum(onehot.sum(axis=1), 1)[:, None]
    for lo in range(0, len(pairs), 1 << 21):  # mean taste of the user for the movie's genres
        u, m = user_idx[lo: lo + (1 << 21)], movie_idx[lo: lo + (1 << 21)]
        fit[lo: lo + len(u)] = np.einsum("ij,ij->i", user_taste[u], taste_per_genre[m])
    value = 3.4 + bias[user_idx] + quality[movie_idx] + 0.35 * fit + rng.normal(0.0, 0.75, len(pairs))
    step = np.where(half[user_idx], 2.0, 1.0)
    rating = np.clip(np.round(value * step) / step, np.where(half[user_idx], 0.5, 1.0), 5.0)
    timestamp = (start[user_idx] + rng.random(len(pairs)) ** 2 * span[user_idx]).astype(np.int64)
    ratings = pd.DataFrame({
        "userId": (user_idx + 1).astype(np.int32),
        "movieId": movie_ids[movie_idx],
        "rating": rating.astype(np.float32),
        "timestamp": timestamp,
    })
    return MovieLens(ratings, movies)


def synthesize(
    root: str | os.PathLike,
    n: int = 100_836,
    seed: int = 0,
    n_users: int | None = None,
    n_movies: int | None = None,
    n_segments: int = 4,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic MovieLens (``movies.csv``, ``ratings.csv``) under ``root``; return it.

    ``n`` is the number of ratings; the defaults are ml-latest-small's sizes, and users and
    movies left at ``None`` scale with ``n`` (:func:`default_sizes`). The same arguments give
    byte-identical files. The folder is written next to ``root`` and moved in place; a
    ``.complete`` marker (the parameters, JSON) is written last, and a complete folder with the
    same parameters is reused. Any other non-empty ``root`` is refused unless ``overwrite``.
    """
    root = Path(root).expanduser().resolve()
    n_users, n_movies = default_sizes(n, n_users, n_movies)
    params = {"n": int(n), "seed": int(seed), "n_users": int(n_users), "n_movies": int(n_movies),
              "n_segments": int(n_segments), "generator": 1}
    if reuse_synthetic(root, params, "MovieLens", overwrite, replaces="its CSVs"):
        return root
    ratings, movies = synthesize_frames(n=n, n_users=n_users, n_movies=n_movies,
                                        n_segments=n_segments, seed=seed)
    with synthetic_writer(root, params, entries=(MOVIES_FILE, RATINGS_FILE)) as tmp:
        movies.to_csv(tmp / MOVIES_FILE, index=False)
        ratings.to_csv(tmp / RATINGS_FILE, index=False, float_format="%.1f")
    return root


def synthetic_root(n: int = 100_836, n_users: int | None = None, n_movies: int | None = None,
                   seed: int = 0, n_segments: int = 4) -> Path:
    """The cached synthetic MovieLens ``cache_dir("synthetic", "movielens-...")``, synthesized on
    first use (reused afterwards)."""
    from kerasmt.utils import cache_dir

    n_users, n_movies = default_sizes(n, n_users, n_movies)
    root = cache_dir("synthetic", f"movielens-r{n}-u{n_users}-m{n_movies}-g{n_segments}-s{seed}")
    return synthesize(root, n=n, seed=seed, n_users=n_users, n_movies=n_movies, n_segments=n_segments)
