"""UTKFace (Zhang, Song & Qi, CVPR 2017; non-commercial research use): age, gender and race of
face crops, labelled in the file names.

Real layout (what :func:`load` reads and :func:`synthesize` writes): one flat folder of images
named ``[age]_[gender]_[race]_[date&time].jpg`` (in-the-wild set) or
``[age]_[gender]_[race]_[date&time].jpg.chip.jpg`` (aligned & cropped set, 200x200)::

    <root>/1_0_0_20161219140623097.jpg.chip.jpg
    <root>/26_1_3_20170119193407522.jpg.chip.jpg
    ...

- age: integer years, 0 to 116;
- gender: 0 = male, 1 = female;
- race: 0 = White, 1 = Black, 2 = Asian, 3 = Indian, 4 = Others;
- date&time: ``yyyymmddHHMMSSFFF``, when the image was collected.

A few real files have malformed names (three lack the race field); :func:`load` skips every such
file and warns once with the count and the names (:class:`MalformedNameWarning`).

The report used a fixed 5,000-image subset with 2 non-face images removed (4,998) and two splits
(:data:`SPLIT_SCHEMES`): ``search`` 4000/500/498 (train / early stopping / ranking of the grid)
and ``report_final`` 4499/499 (its held-out set was also its early-stopping set). ``final`` is our
protocol: the same 499 test images, with a separate 500-image early-stopping split.
:func:`make_splits` draws them with a seed; :func:`save_splits` / :func:`read_split` keep them as
CSV so runs compare.

The synthetic generator draws faces (the FairFace study's cartoon faces) whose look depends on a
continuous age, the gender and the race, saved under real UTKFace file names.
"""
from __future__ import annotations

import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from kerasmt.datasets.base import COMPLETE_MARKER, DatasetError, decode_problem, read_csv_checked, reuse_synthetic, synthetic_writer, warning
from kerasmt.datasets.base import check_distinct, copy_distinct
from kerasmt.datasets.fairface import render_face
from kerasmt.utils import progress

#: class names of the integer codes in the file names (list position = code)
LABELS: dict[str, list[str]] = {
    "gender": ["Male", "Female"],
    "race": ["White", "Black", "Asian", "Indian", "Others"],
}
#: the tasks the study trains (age in years is regressed; race is kept for the fairness table)
TASKS: tuple[str, ...] = ("age", "gender")
MAX_AGE = 116
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
#: ``age_gender_race_datetime.jpg`` with an optional ``.chip.jpg``
NAME_PATTERN = re.compile(r"^(?P<age>\d+)_(?P<gender>\d+)_(?P<race>\d+)_(?P<datetime>\d+)\.jpg(\.chip\.jpg)?$",
                          re.IGNORECASE)
EXPECTED_NAME = "[age]_[gender]_[race]_[date&time].jpg[.chip.jpg], e.g. 26_1_3_20170119193407522.jpg.chip.jpg"
#: the report's subset size and split sizes (its Table 1 and section 2.5), in draw order
REPORT_SUBSET = 5000
SPLIT_SCHEMES: dict[str, tuple[tuple[str, int], ...]] = {
    "search": (("train", 4000), ("val", 500), ("test", 498)),
    "report_final": (("test", 499), ("train", 4499)),
    "final": (("test", 499), ("val", 500), ("train", 3999)),
}
SPLIT_COLUMNS: tuple[str, ...] = ("file", "age", "gender", "race", "datetime")

#: label frequencies of the synthetic data (real UTKFace: 52 % male; race counts
#: 10078 / 4526 / 3434 / 3975 / 1692; age histogram by decade, a spike of babies and a long tail)
SYNTHETIC_FREQUENCIES: dict[str, np.ndarray] = {
    "gender": np.array([0.52, 0.48]),
    "race": np.array([10078, 4526, 3434, 3975, 1692], dtype=float) / 23705.0,
}
_AGE_BINS = np.array([1, 4, 10, 16, 20, 25, 30, 35, 40, 50, 60, 70, 80, 95], dtype=float)
_AGE_WEIGHTS = np.array([0.08, 0.04, 0.04, 0.04, 0.11, 0.16, 0.12, 0.08, 0.10, 0.10, 0.07, 0.04, 0.02])
_AGE_WEIGHTS = _AGE_WEIGHTS / _AGE_WEIGHTS.sum()
#: UTKFace race -> FairFace drawing classes (Black, Latino, East Asian, White, SE Asian, Middle
#: Eastern, Indian): Asian is East or Southeast Asian, Others is Latino or Middle Eastern
_RACE_TO_DRAWING = {0: (3,), 1: (0,), 2: (2, 4), 3: (6,), 4: (1, 5)}


class MalformedNameWarning(UserWarning):
    """Some image files were skipped because their names do not carry valid labels."""


@dataclass(frozen=True)
class FaceLabels:
    """Labels parsed from one UTKFace file name."""

    age: int
    gender: int
    race: int
    datetime: str


# --------------------------------------------------------------------------------------- reading
def parse_name(name: str) -> FaceLabels:
    """Labels of a UTKFace file name; raises ``ValueError`` saying what is wrong.

    >>> parse_name("26_1_3_20170119193407522.jpg.chip.jpg")
    FaceLabels(age=26, gender=1, race=3, datetime='20170119193407522')
    """
    match = NAME_PATTERN.match(name)
    if match is None:
        fields = name.split(".", 1)[0].split("_")
        hint = f"{len(fields)} '_'-separated field(s), expected 4" if len(fields) != 4 else "non-numeric field or wrong extension"
        raise ValueError(f"{name}: malformed name ({hint})")
    age, gender, race = int(match["age"]), int(match["gender"]), int(match["race"])
    if age > MAX_AGE:
        raise ValueError(f"{name}: age {age} out of range 0..{MAX_AGE}")
    if gender not in (0, 1):
        raise ValueError(f"{name}: gender {gender} not in {{0 = male, 1 = female}}")
    if not 0 <= race < len(LABELS["race"]):
        raise ValueError(f"{name}: race {race} not in 0..4 ({', '.join(LABELS['race'])})")
    return FaceLabels(age, gender, race, match["datetime"])


def _image_files(root: Path) -> list[str]:
    return sorted(
        entry.name
        for entry in os.scandir(root)
        if entry.is_file() and not entry.name.startswith(".") and entry.name.lower().endswith(IMAGE_SUFFIXES)
    )


def scan(root: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
    """Parse every image name in ``root``: (manifest of the valid ones, one message per skipped file).

    See :func:`load` for the manifest's columns. Non-image files (CSV, README, hidden files) are
    ignored; images whose names do not parse are listed in the second value.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found (expected a folder of {EXPECTED_NAME} images)")
    rows, skipped = [], []
    for entry in os.scandir(root):  # an image name that is not a regular file (a FIFO would block a decoder)
        if not entry.name.startswith(".") and entry.name.lower().endswith(IMAGE_SUFFIXES) and not entry.is_file():
            skipped.append(f"{entry.name}: not a regular file (a folder, FIFO or device)")
    skipped.sort()
    for name in _image_files(root):
        try:
            labels = parse_name(name)
        except ValueError as exc:
            skipped.append(str(exc))
            continue
        rows.append((str(root / name), name, float(labels.age), labels.gender, labels.race, labels.datetime))
    frame = pd.DataFrame(rows, columns=["path", "file", "age", "gender", "race", "datetime"])
    frame = frame.astype({"path": str, "file": str, "age": "float64", "gender": "int64", "race": "int64",
                          "datetime": str})
    return frame, skipped


def load(root: str | os.PathLike, warn: bool = True) -> pd.DataFrame:
    """Manifest of a UTKFace folder, one row per correctly named image (sorted by file name).

    Columns: ``path`` (absolute), ``file`` (name), ``age`` (years, float64 so the pipeline keeps
    it float32 for regression), ``gender`` and ``race`` (int64 codes, :data:`LABELS`) and
    ``datetime`` (string). Files with malformed names are skipped with one
    :class:`MalformedNameWarning` giving their count and names (``warn=False`` silences it); the
    messages are also in ``manifest.attrs["skipped"]``. Raises :class:`DatasetError` when the
    folder is missing or holds no correctly named image (naming a subfolder that has some).
    """
    root = Path(root).expanduser().resolve()
    frame, skipped = scan(root)
    if frame.empty:
        subfolders = [p.name for p in sorted(root.iterdir()) if p.is_dir() and _image_files(p)]
        hint = f"; images found in subfolder(s) {subfolders}: point the reader at one of them" if subfolders else ""
        raise DatasetError(
            f"{root}: no image named {EXPECTED_NAME} ({len(skipped)} malformed name(s) skipped){hint}",
            problems=skipped,
        )
    if skipped and warn:
        shown = "; ".join(skipped[:5]) + (f"; ... and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        warnings.warn(
            f"{root}: skipped {len(skipped)} of {len(skipped) + len(frame)} image file(s) with malformed "
            f"names (expected {EXPECTED_NAME}): {shown}",
            MalformedNameWarning,
            stacklevel=2,
        )
    frame.attrs["skipped"] = skipped
    return frame


def check(root: str | os.PathLike, decode: bool = True) -> list[str]:
    """Every finding in a UTKFace folder (see :mod:`kerasmt.datasets.base`). Errors: a missing
    folder, no correctly named image and, with ``decode``, each image PIL cannot decode. Each
    malformed file name (with the reason) is a warning, as :func:`load` skips it with a counted
    warning (the real dataset has three)."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        return [f"{root}: dataset folder not found"]
    frame, skipped = scan(root)
    problems: list[str] = [warning(f"{root}: {message}; expected {EXPECTED_NAME} (load skips it)")
                           for message in skipped]
    if frame.empty:
        subfolders = [p.name for p in sorted(root.iterdir()) if p.is_dir() and _image_files(p)]
        hint = f"; images found in subfolder(s) {subfolders}: point the reader at one of them" if subfolders else ""
        problems.append(f"{root}: no image named {EXPECTED_NAME}{hint}")
    if decode and len(frame):
        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            errors = list(pool.map(decode_problem, frame["path"], chunksize=64))
        problems += [f"{path}: image cannot be decoded ({err})" for path, err in zip(frame["path"], errors) if err]
    return problems


def label_names(manifest: pd.DataFrame, task: str) -> pd.Series:
    """Class names of a coded column (``gender`` or ``race``), aligned with the manifest."""
    if task not in LABELS:
        raise ValueError(f"task {task!r} has no class names; coded tasks: {sorted(LABELS)}")
    return pd.Series(np.array(LABELS[task], dtype=object)[manifest[task].to_numpy()], index=manifest.index, name=task)


# ---------------------------------------------------------------------------------------- splits
def subset(
    manifest: pd.DataFrame, n: int | None = REPORT_SUBSET, seed: int = 0, exclude: Iterable[str] = ()
) -> pd.DataFrame:
    """A seeded random subset of ``n`` rows (all rows when ``n`` is None or larger), in random
    order, minus the files named in ``exclude`` (the report drew 5,000 and removed 2 non-faces).

    Every name in ``exclude`` must be in the subset, else ``ValueError`` names the unknown ones.
    """
    n_rows = len(manifest) if n is None else min(int(n), len(manifest))
    order = np.random.default_rng(seed).permutation(len(manifest))[:n_rows]
    picked = manifest.iloc[order].reset_index(drop=True)
    exclude = list(exclude)
    if exclude:
        unknown = sorted(set(exclude) - set(picked["file"]))
        if unknown:
            raise ValueError(f"exclude: file(s) not in the subset: {unknown}")
        picked = picked[~picked["file"].isin(exclude)].reset_index(drop=True)
    return picked


def split_sizes(scheme: str, n: int) -> dict[str, int]:
    """Split sizes of a scheme for ``n`` images: the report's sizes (:data:`SPLIT_SCHEMES`, which
    sum to 4,998) scaled to ``n`` by largest remainder, so ``n = 4998`` gives them exactly."""
    if scheme not in SPLIT_SCHEMES:
        raise ValueError(f"unknown split scheme {scheme!r}; schemes: {sorted(SPLIT_SCHEMES)}")
    names = [name for name, _ in SPLIT_SCHEMES[scheme]]
    sizes = np.array([size for _, size in SPLIT_SCHEMES[scheme]], dtype=float)
    share = sizes / sizes.sum() * n
    counts = np.floor(share).astype(int)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: n - int(counts.sum())]] += 1
    return dict(zip(names, counts.tolist()))


def make_splits(subset_frame: pd.DataFrame, scheme: str = "final") -> dict[str, pd.DataFrame]:
    """Cut a (shuffled) subset into the splits of ``scheme`` (``"search"``, ``"final"`` or
    ``"report_final"``), in order: {split name: manifest}.

    Splits are consecutive slices of the subset in the scheme's draw order, so ``final`` and
    ``report_final`` share their test images, which lie inside the ``search`` training part:
    the final test images never ranked a search trial or stopped one early.
    """
    sizes = split_sizes(scheme, len(subset_frame))
    out: dict[str, pd.DataFrame] = {}
    start = 0
    for name, _ in SPLIT_SCHEMES[scheme]:
        out[name] = subset_frame.iloc[start:start + sizes[name]].reset_index(drop=True)
        start += sizes[name]
    return {name: out[name] for name in ("train", "val", "test") if name in out}


def save_splits(splits: Mapping[str, pd.DataFrame], folder: str | os.PathLike, prefix: str = "") -> dict[str, Path]:
    """Write each split as ``<folder>/<prefix><split>.csv`` (columns :data:`SPLIT_COLUMNS`, file
    names relative to the dataset root); returns {split: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in splits.items():
        path = folder / f"{prefix}{name}.csv"
        frame.loc[:, list(SPLIT_COLUMNS)].to_csv(path, index=False, lineterminator="\n")
        paths[name] = path
    return paths


def read_split(csv: str | os.PathLike, root: str | os.PathLike, check_files: bool = True) -> pd.DataFrame:
    """Manifest of a split CSV written by :func:`save_splits`, with paths under ``root``.

    Labels are re-checked against the file names (a CSV from another dataset version fails);
    errors name the CSV, its line (header = line 1) and what was expected.
    """
    csv = Path(csv)
    root = Path(root).expanduser().resolve()
    frame = read_csv_checked(csv, SPLIT_COLUMNS, dtype=str, keep_default_na=False)
    problems = []
    values: dict[str, list[int]] = {c: [] for c in ("age", "gender", "race")}
    expected = {"age": f"an integer age 0..{MAX_AGE}", "gender": "0 (male) or 1 (female)",
                "race": f"an integer race code 0..{len(LABELS['race']) - 1}"}
    for i, row in enumerate(frame.itertuples(index=False)):
        where = f"{csv}: line {i + 2}"
        numbers = {}
        for column in values:
            text = str(getattr(row, column)).strip()
            try:
                number = float(text)  # save_splits writes ages as 26.0
                if not number.is_integer():
                    raise ValueError(text)
                numbers[column] = int(number)
            except (ValueError, OverflowError):
                problems.append(f"{where}: column {column!r}: bad value {text!r}; expected {expected[column]}")
        if len(numbers) < len(values):
            continue
        for column in values:
            values[column].append(numbers[column])
        try:
            labels = parse_name(row.file)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if (labels.age, labels.gender, labels.race) != (numbers["age"], numbers["gender"], numbers["race"]):
            problems.append(f"{where}: labels {numbers['age']}/{numbers['gender']}/{numbers['race']} disagree "
                            f"with the file name {row.file}")
    if problems:
        raise DatasetError(f"{csv}: {len(problems)} bad row(s)", problems=problems)
    out = pd.DataFrame(
        {
            "path": [str(root / f) for f in frame["file"]],
            "file": frame["file"].to_numpy(),
            "age": np.asarray(values["age"], dtype="float64"),
            "gender": np.asarray(values["gender"], dtype="int64"),
            "race": np.asarray(values["race"], dtype="int64"),
            "datetime": frame["datetime"].astype(str).str.zfill(17).to_numpy(),
        }
    )
    if check_files:
        missing = [f"{csv}: line {i + 2}: {p}" for i, p in enumerate(out["path"]) if not os.path.isfile(p)]
        if missing:
            raise DatasetError(f"{csv}: {len(missing)} listed image(s) not found under {root}", problems=missing)
    return out


# ------------------------------------------------------------------------------------ synthesis
def sample_labels(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` synthetic label sets: ``age_years`` (continuous, UTKFace-like histogram: babies,
    a peak at 20-35, a tail to 95), ``age`` (integer years in the file name), ``gender`` and
    ``race`` (codes with :data:`SYNTHETIC_FREQUENCIES`, exact proportions by largest remainder)."""
    out: dict[str, np.ndarray] = {}
    for task in ("gender", "race"):
        share = SYNTHETIC_FREQUENCIES[task] * n
        counts = np.floor(share).astype(np.int64)
        order = np.argsort(-(share - counts), kind="stable")
        counts[order[: n - int(counts.sum())]] += 1
        out[task] = rng.permutation(np.repeat(np.arange(len(counts), dtype=np.int64), counts))
    bins = rng.choice(len(_AGE_WEIGHTS), size=n, p=_AGE_WEIGHTS)
    years = _AGE_BINS[bins] + rng.random(n) * (_AGE_BINS[bins + 1] - _AGE_BINS[bins])
    out["age_years"] = years
    out["age"] = np.clip(np.floor(years), 1, MAX_AGE).astype(np.int64)
    return out


def _timestamps(n: int, seed: int) -> list[str]:
    """``n`` distinct ``yyyymmddHHMMSSFFF`` strings (the datetime field of the names)."""
    rng = np.random.default_rng([seed, 7])
    start = datetime(2016, 12, 1, 8, 0, 0)
    steps = np.cumsum(rng.integers(1, 20_000, size=n))  # milliseconds, strictly increasing
    out = []
    for ms in steps:
        t = start + timedelta(milliseconds=int(ms))
        out.append(t.strftime("%Y%m%d%H%M%S") + f"{t.microsecond // 1000:03d}")
    return out


def render(age: float, gender: int, race: int, size: int, seed_seq: Sequence[int]) -> bytes:
    """JPEG bytes of one synthetic face with UTKFace labels (continuous ``age`` in years, gender
    and race codes of :data:`LABELS`), drawn by :func:`kerasmt.datasets.fairface.render_face`;
    UTKFace's race groups map onto its drawing classes (Asian: East or Southeast Asian, Others:
    Latino or Middle Eastern, chosen with ``seed_seq``). Deterministic in ``seed_seq``."""
    if race not in _RACE_TO_DRAWING:
        raise ValueError(f"race must be a UTKFace code 0..4 ({', '.join(LABELS['race'])}), got {race}")
    rng = np.random.default_rng([*seed_seq, 99])
    drawing_race = int(rng.choice(_RACE_TO_DRAWING[race]))
    return render_face(int(gender), float(age), drawing_race, size, seed_seq)


def synthesize(
    root: str | os.PathLike,
    n: int = 2000,
    seed: int = 0,
    image_size: int = 200,
    n_malformed: int = 3,
    overwrite: bool = False,
    workers: int | None = None,
    distinct: int | None = None,
) -> Path:
    """Write a synthetic UTKFace under ``root`` (flat folder, real file names) and return ``root``.

    ``n`` faces named ``age_gender_race_datetime.jpg.chip.jpg`` of ``image_size`` pixels (200
    like the aligned & cropped set), plus ``n_malformed`` faces whose names lack the race field
    like the three broken names of the real dataset. Age (continuous when drawn, integer in the
    name), gender and race are learnable from the pictures. Byte-identical for equal arguments;
    built next to ``root`` and moved in place, with a ``.complete`` marker written last. A complete
    folder made with the same arguments is reused; anything else in ``root`` is refused unless
    ``overwrite``. ``distinct=K`` draws only K of the ``n`` faces and fills the rest with byte
    copies (named with the copied faces' labels): the real 23,708 images in seconds, for scale
    and memory benchmarks.
    """
    if n < 1 or n_malformed < 0:
        raise ValueError(f"n must be >= 1 and n_malformed >= 0, got n={n}, n_malformed={n_malformed}")
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 pixels, got {image_size}")
    root = Path(root).expanduser().resolve()
    params = {"n": int(n), "seed": int(seed), "image_size": int(image_size), "n_malformed": int(n_malformed),
              "generator": "utkface-1"}
    distinct = check_distinct(distinct, n)
    if distinct is not None:
        params["distinct"] = distinct
    if reuse_synthetic(root, params, "UTKFace", overwrite, replaces="its images"):
        return root
    rng = np.random.default_rng([seed, 0])
    total = n + n_malformed
    labels = sample_labels(total, rng)
    drawn = n if distinct is None else distinct
    if drawn < n:  # face i < n is a copy of face i % drawn, with its labels; malformed ones drawn
        source = np.concatenate([np.arange(n) % drawn, np.arange(n, total)])
        labels = {k: v[source] for k, v in labels.items()}
    stamps = _timestamps(total, seed)
    names = []
    for i in range(total):
        age, gender, race = int(labels["age"][i]), int(labels["gender"][i]), int(labels["race"][i])
        if i < n:
            names.append(f"{age}_{gender}_{race}_{stamps[i]}.jpg.chip.jpg")
        else:  # like 39_1_20170116174525125.jpg.chip.jpg in the real data: the race field is missing
            names.append(f"{age}_{gender}_{stamps[i]}.jpg.chip.jpg")
    if root.is_dir():  # overwrite: another synthesis's images would mix with these ones
        for name in [COMPLETE_MARKER, *_image_files(root)]:
            (root / name).unlink(missing_ok=True)
    workers = workers or min(4, os.cpu_count() or 1)
    with synthetic_writer(root, params, entries=names) as tmp:

        def job(i: int) -> None:
            data = render(labels["age_years"][i], int(labels["gender"][i]), int(labels["race"][i]), image_size,
                          [seed, 1, i])
            (tmp / names[i]).write_bytes(data)

        todo = [*range(drawn), *range(n, total)]
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(progress(pool.map(job, todo, chunksize=32), "synthetic UTKFace", total=len(todo),
                              unit="images"))
        else:
            for i in progress(todo, "synthetic UTKFace", unit="images"):
                job(i)
        if drawn < n:
            copy_distinct([tmp / name for name in names[:n]], drawn, workers)
    return root


def synthetic_root(n: int = 2000, seed: int = 0, image_size: int = 200) -> Path:
    """The cached synthetic UTKFace ``cache_dir("synthetic", "utkface-...")``, synthesized on first
    use and reused afterwards."""
    from kerasmt.utils import cache_dir

    root = cache_dir("synthetic", f"utkface-n{n}-s{seed}-px{image_size}")
    return synthesize(root, n=n, seed=seed, image_size=image_size)
