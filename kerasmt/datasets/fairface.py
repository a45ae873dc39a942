"""FairFace (Kärkkäinen & Joo, 2021; CC BY 4.0): race, gender and age-bucket labels of face crops.

Real layout (what :func:`load` reads and :func:`synthesize` writes)::

    <root>/fairface_label_train.csv     file,age,gender,race,service_test
    <root>/fairface_label_val.csv
    <root>/train/1.jpg ...              224x224 colour JPEGs
    <root>/val/1.jpg ...

``file`` is relative to ``<root>``. Labels are strings in the CSVs; the manifest carries them as
integer codes, in the order of :data:`LABELS` (the order the report used). An empty label cell is
read as ``-1`` (missing), the library-wide convention; any other unknown value is an error.

The CSVs circulate after a spreadsheet round trip, which turns age buckets into dates (``3-9`` ->
``03-Sep`` or ``9-Mar``, ``10-19`` -> ``Oct-19``), ``True`` into ``TRUE`` and adds a byte-order
mark or empty trailing rows: :func:`spreadsheet_fixes` maps such cells back (one counted
:class:`SpreadsheetWarning` per CSV in :func:`load`, a warning in :func:`check`). A CSV without a
data row is an error.

The synthetic generator draws cartoon faces whose race, gender and age are learnable from 32x32
grayscale thumbnails, but not trivially: skin tone overlaps between groups (and lighting changes
brightness), so race also rests on shape cues (eye opening, nose width and length, lip thickness,
hair texture and colour); gender on hair length, jaw shape, brows, beard and lipstick (weak for
children); age, drawn continuously inside its bucket, on head proportions, eye size, wrinkles,
grey hair and baldness. Backgrounds, lighting, pose, scale, pixel noise and JPEG quality vary.
"""
from __future__ import annotations

import math
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from kerasmt.datasets.base import COMPLETE_MARKER, DatasetError, decode_problem, read_csv_checked, read_csv_for_check, regular_file_problem, reuse_synthetic, synthetic_writer, warning  # noqa: F401  (COMPLETE_MARKER re-exported)
from kerasmt.utils import progress
from kerasmt.datasets.base import check_distinct, copy_distinct

#: task -> class names; the list position is the integer code used in manifests.
LABELS: dict[str, list[str]] = {
    "age": ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"],
    "gender": ["Male", "Female"],
    "race": [
        "Black",
        "Latino_Hispanic",
        "East Asian",
        "White",
        "Southeast Asian",
        "Middle Eastern",
        "Indian",
    ],
}
#: the label tasks, in the order the study trains them
TASKS: tuple[str, ...] = ("gender", "age", "race")
#: task -> number of classes
N_CLASSES: dict[str, int] = {task: len(LABELS[task]) for task in TASKS}
#: split -> label CSV file name (relative to the dataset root)
CSV_FILES: dict[str, str] = {"train": "fairface_label_train.csv", "val": "fairface_label_val.csv"}
#: columns every label CSV must have (``service_test`` is optional)
REQUIRED_COLUMNS: tuple[str, ...] = ("file", "age", "gender", "race")
#: marker written last by :func:`synthesize`; its absence means a half-written folder

#: label frequencies of the synthetic data (real FairFace: validation age counts, ~53 % male,
#: race shares of the full dataset)
SYNTHETIC_FREQUENCIES: dict[str, np.ndarray] = {
    "gender": np.array([0.53, 0.47]),
    "age": np.array([199, 1356, 1181, 3300, 2330, 1353, 796, 321, 118], dtype=float) / 10954.0,
    # Black, Latino_Hispanic, East Asian, White, Southeast Asian, Middle Eastern, Indian
    "race": np.array([0.14, 0.15, 0.14, 0.19, 0.12, 0.11, 0.14]) / 0.99,
}
#: age bucket -> [low, high) of the continuous age drawn for a synthetic face
_AGE_RANGES = [(0, 3), (3, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 60), (60, 70), (70, 90)]
_SPLIT_IDS = {"train": 1, "val": 2}


#: how the CSVs are read: every cell as text (empty cells stay NaN)
_READ = {"dtype": str}


def _read_options(csv: Path) -> dict:
    """:data:`_READ`, with ``sep=";"`` when the header is semicolon-separated (a spreadsheet's CSV
    export in locales whose decimal mark is a comma)."""
    try:
        with open(csv, "rb") as f:  # the readers have checked it is a regular file
            header = f.readline(4096).decode("utf-8-sig", errors="replace")
    except OSError:
        return dict(_READ)
    return {**_READ, "sep": ";"} if header.count(";") >= 3 and "," not in header else dict(_READ)


def _separator_fix(csv: Path, options: dict) -> list[str]:
    return [f"{csv}: line 1: fields separated by ';' (a spreadsheet export)"] if options.get("sep") == ";" else []
_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                             "nov", "dec"))}
_DATE_CELL = re.compile(r"^\s*(?:(?P<n1>\d{1,4})[-/ ](?P<m1>[A-Za-z]{3,9})|(?P<m2>[A-Za-z]{3,9})[-/ ](?P<n2>\d{1,4}))\s*$")


class SpreadsheetWarning(UserWarning):
    """Cells mangled by a spreadsheet round trip (age buckets turned into dates, ``TRUE``) were
    mapped back to their FairFace values."""


def _undo_date(text: str) -> str | None:
    """The age bucket a spreadsheet turned into a date (``03-Sep`` / ``9-Mar`` -> ``3-9``,
    ``Oct-19`` / ``19-Oct`` -> ``10-19``, ``Feb-00`` -> ``0-2``), or None if ``text`` is none."""
    match = _DATE_CELL.match(text)
    if match is None:
        return None
    month = _MONTHS.get((match["m1"] or match["m2"])[:3].lower())
    if month is None:
        return None
    number = int(match["n1"] or match["n2"]) % 100  # a year as 2019 or 19
    found = {c for c in (f"{number}-{month}", f"{month}-{number}") if c in LABELS["age"]}
    return found.pop() if len(found) == 1 else None


def spreadsheet_fixes(frame: pd.DataFrame, csv: Path) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Undo a spreadsheet round trip on a label CSV read as text.

    Returns ``(frame, fixes, problems)``: a copy with age buckets turned into dates mapped back
    (:func:`_undo_date`), ``service_test`` as booleans (``True``/``TRUE``/``true`` and the same for
    False) and rows whose every cell is empty removed; one message per fixed cell or dropped row
    (``fixes``); one per ``service_test`` cell that is not a boolean (``problems``)."""
    frame = frame.copy()
    fixes: list[str] = []
    problems: list[str] = []
    blank = frame.isna().all(axis=1).to_numpy()
    for i in np.flatnonzero(blank):
        fixes.append(f"{csv}: line {i + 2}: empty row dropped")
    if "age" in frame.columns:
        ages = frame["age"]
        for i, value in enumerate(ages):
            if isinstance(value, str) and value.strip() not in LABELS["age"]:
                bucket = _undo_date(value)
                if bucket is not None:
                    fixes.append(f"{csv}: line {i + 2}: age {value!r} read as {bucket!r}")
                    ages.iat[i] = bucket
        frame["age"] = ages
    if "service_test" in frame.columns:
        flags = []
        for i, value in enumerate(frame["service_test"]):
            if not isinstance(value, str):
                flags.append(pd.NA)
                continue
            text = value.strip()
            if text.lower() not in ("true", "false"):
                if not blank[i]:
                    problems.append(f"{csv}: line {i + 2} (data row {i + 1}): column 'service_test': bad value "
                                    f"{value!r}; expected True or False")
                flags.append(pd.NA)
                continue
            if text not in ("True", "False"):
                fixes.append(f"{csv}: line {i + 2}: service_test {value!r} read as {text.lower() == 'true'}")
            flags.append(text.lower() == "true")
        column = pd.Series(flags, index=frame.index, dtype="boolean")
        frame["service_test"] = column.astype(bool) if not column.isna().any() else column
    frame = frame[~blank]
    return frame, fixes, problems


def _describe_fixes(csv: Path, fixes: Sequence[str]) -> str:
    shown = "; ".join(f.split(": ", 1)[1] for f in fixes[:5]) + (f"; ... and {len(fixes) - 5} more" if len(fixes) > 5 else "")
    return (f"{csv}: {len(fixes)} cell(s) or row(s) changed by a spreadsheet round trip were mapped back "
            f"({shown})")


# --------------------------------------------------------------------------------------- reading
def _check_split(split: str) -> str:
    if split not in CSV_FILES:
        raise ValueError(f"unknown split {split!r}; allowed splits: {sorted(CSV_FILES)}")
    return split


def _label_problems(
    frame: pd.DataFrame, csv: Path, columns: Sequence[str] = ("gender", "age", "race")
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Integer codes per label column (``-1`` = empty cell), and one message per bad cell.

    The mapping is vectorised; Python only loops over the bad cells to word their messages.
    Line numbers count the header as line 1 (one CSV line per record)."""
    codes: dict[str, np.ndarray] = {}
    problems: list[str] = []
    for task in columns:
        if task not in frame.columns:
            continue
        raw = frame[task]
        missing = raw.isna().to_numpy()
        text = raw.astype("string").str.strip()
        cat = pd.Categorical(text, categories=LABELS[task])
        code = np.asarray(cat.codes, dtype=np.int64)
        bad = np.flatnonzero((code < 0) & ~missing)
        for i in bad:
            line = int(frame.index[i]) + 2  # the index is the CSV's data row (rows may have been dropped)
            problems.append(
                f"{csv}: line {line} (data row {line - 1}): column {task!r}: bad value "
                f"{raw.iloc[i]!r}; allowed values: {LABELS[task]} (or empty = missing)"
            )
        codes[task] = code
    return codes, problems


def _file_problems(frame: pd.DataFrame, csv: Path) -> list[str]:
    text = frame["file"].astype("string").str.strip()
    bad = np.flatnonzero((text.isna() | (text == "")).fillna(True).to_numpy(dtype=bool))
    return [
        f"{csv}: line {int(frame.index[i]) + 2} (data row {int(frame.index[i]) + 1}): column 'file': empty value; "
        f"expected a path relative to the dataset root such as 'train/1.jpg'"
        for i in bad
    ]


def load(root: str | os.PathLike, split: str = "train", check_files: bool = True) -> pd.DataFrame:
    """Manifest of one FairFace split.

    Returns a DataFrame with columns ``path`` (absolute image path), ``file`` (as in the CSV),
    ``gender``, ``age``, ``race`` (int64 codes in :data:`LABELS` order, ``-1`` for an empty cell)
    and ``service_test`` when the CSV has it. Raises :class:`DatasetError` naming the CSV, the CSV
    line (header = line 1) and the bad value with the allowed values; with ``check_files`` every
    listed image that does not exist is reported. ``split`` is ``"train"`` or ``"val"``.
    """
    _check_split(split)
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found (expected the FairFace root holding "
                           f"{CSV_FILES[split]} and {split}/)")
    csv = root / CSV_FILES[split]
    options = _read_options(csv) if os.path.isfile(csv) else dict(_READ)
    frame = read_csv_checked(csv, REQUIRED_COLUMNS, **options)
    frame, fixes, flag_problems = spreadsheet_fixes(frame, csv)
    fixes = _separator_fix(csv, options) + fixes
    if frame.empty:
        raise DatasetError(f"{csv}: no data rows (only empty rows); expected one row per image")
    codes, problems = _label_problems(frame, csv)
    problems = _file_problems(frame, csv) + problems + flag_problems
    if problems:
        raise DatasetError(f"{csv}: {len(problems)} bad value(s)", problems=problems)
    if fixes:
        warnings.warn(_describe_fixes(csv, fixes), SpreadsheetWarning, stacklevel=2)
    lines = frame.index.to_numpy() + 2
    files = frame["file"].astype("string").str.strip()
    paths = (str(root) + os.sep) + files
    out = pd.DataFrame(
        {
            "path": paths.astype(str).to_numpy(dtype=object),
            "file": frame["file"].to_numpy(),
            "gender": codes["gender"],
            "age": codes["age"],
            "race": codes["race"],
        }
    )
    out["path"] = out["path"].astype(str)
    if "service_test" in frame.columns:
        out["service_test"] = frame["service_test"].to_numpy()
    if check_files:
        bad = [(i, regular_file_problem(p, "image")) for i, p in enumerate(out["path"])]
        bad = [(i, why) for i, why in bad if why]
        if bad:
            raise DatasetError(
                f"{csv}: {len(bad)} of {len(out)} listed image file(s) not found or not regular files under {root}",
                problems=[f"line {lines[i]} (data row {lines[i] - 1}): {why}" for i, why in bad],
            )
    return out


def check(root: str | os.PathLike, decode: bool = True) -> list[str]:
    """Every problem found in a FairFace folder; an empty list means the folder is valid.

    Errors: missing or unreadable CSVs, missing columns, CSVs without a data row, bad label values
    (``csv: line L (data row R): column 'c': bad value ...``), empty file entries, missing image
    files (or ones that are not regular files), duplicate file entries (within and across splits)
    and, with ``decode``, images that PIL cannot open or decode (garbage or truncated bytes). Each
    message names the CSV and its line (header = line 1). Cells mangled by a spreadsheet round
    trip, which :func:`load` maps back, are one warning per CSV.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        return [f"{root}: dataset folder not found"]
    problems: list[str] = []
    seen: dict[str, str] = {}  # file -> "csv line L" of its first listing
    for split, name in CSV_FILES.items():
        csv = root / name
        options = _read_options(csv) if os.path.isfile(csv) else dict(_READ)
        frame = read_csv_for_check(csv, REQUIRED_COLUMNS, problems, options)
        if frame is None:
            continue
        frame, fixes, flag_problems = spreadsheet_fixes(frame, csv)
        fixes = _separator_fix(csv, options) + fixes
        if fixes:
            problems.append(warning(_describe_fixes(csv, fixes)))
        if frame.empty and fixes:
            problems.append(f"{csv}: no data rows (only empty rows); expected one row per image")
        problems += _label_problems(frame, csv)[1] + flag_problems
        if "file" not in frame.columns:
            continue
        problems += _file_problems(frame, csv)
        files = frame["file"].astype("string").str.strip()
        to_decode: list[tuple[int, str]] = []
        for i, rel in zip(frame.index, files):
            if pd.isna(rel) or rel == "":
                continue
            where = f"{csv}: line {i + 2} (data row {i + 1})"
            if rel in seen:
                problems.append(f"{where}: duplicate file entry {rel!r} (first listed at {seen[rel]})")
                continue
            seen[rel] = f"{name} line {i + 2}"
            path = root / rel
            bad = regular_file_problem(path, "image file")
            if bad:
                problems.append(f"{where}: image file not found: {path}" if not os.path.lexists(path) else f"{where}: {bad}")
            elif decode:
                to_decode.append((i, str(path)))
        if to_decode:
            workers = min(8, os.cpu_count() or 1)
            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(decode_problem, [p for _, p in to_decode], chunksize=64))
            for (i, path), err in zip(to_decode, results):
                if err is not None:
                    problems.append(
                        f"{csv}: line {i + 2} (data row {i + 1}): image cannot be decoded: {path} ({err})"
                    )
    return problems


def class_counts(manifest: pd.DataFrame, task: str) -> pd.Series:
    """Examples per class of ``task``, indexed by the class names (all classes, zeros included;
    missing labels ``-1`` are not counted)."""
    if task not in LABELS:
        raise ValueError(f"unknown task {task!r}; allowed tasks: {list(TASKS)}")
    if task not in manifest.columns:
        raise ValueError(f"manifest has no column {task!r}; columns: {list(manifest.columns)}")
    codes = manifest[task].to_numpy(dtype=np.int64)
    counts = np.bincount(codes[codes >= 0], minlength=N_CLASSES[task])[: N_CLASSES[task]]
    return pd.Series(counts.astype(np.int64), index=pd.Index(LABELS[task], name=task), name="count")


def majority_baseline(manifest: pd.DataFrame, task: str) -> float:
    """Accuracy of always predicting the most frequent class of ``task`` (labelled rows only)."""
    counts = class_counts(manifest, task)
    total = int(counts.sum())
    return float(counts.max() / total) if total else float("nan")


# ------------------------------------------------------------------------------------ synthesis
def sample_labels(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` label triples with FairFace-like frequencies (:data:`SYNTHETIC_FREQUENCIES`).

    Each task gets its class counts by largest-remainder rounding of ``n * frequency`` (so even a
    small split has the real proportions), shuffled independently of the other tasks. Returns
    ``{"gender", "age", "race"}`` -> int64 codes and ``"age_years"`` -> float ages drawn uniformly
    inside each age bucket. Uses only ``rng``, so labels can be studied without drawing faces.
    """
    out = {}
    for task in ("gender", "age", "race"):
        share = SYNTHETIC_FREQUENCIES[task] * n
        counts = np.floor(share).astype(np.int64)
        order = np.argsort(-(share - counts), kind="stable")
        counts[order[: n - int(counts.sum())]] += 1
        out[task] = rng.permutation(np.repeat(np.arange(N_CLASSES[task], dtype=np.int64), counts))
    lo = np.array([r[0] for r in _AGE_RANGES], dtype=float)[out["age"]]
    hi = np.array([r[1] for r in _AGE_RANGES], dtype=float)[out["age"]]
    u = rng.random(n)
    # the open-ended bucket thins out with age
    u = np.where(out["age"] == len(_AGE_RANGES) - 1, u**2, u)
    out["age_years"] = lo + u * (hi - lo)
    return out


# race -> (skin RGB, eye opening (height/width), nose width (x face width), nose length (x face
# height), lip thickness (x face height), face width (x face height), brow thickness, P(curly hair))
_RACE = {
    0: ((92, 62, 46), 0.56, 0.33, 0.19, 0.085, 0.76, 1.0, 0.88),  # Black
    1: ((186, 140, 108), 0.52, 0.25, 0.21, 0.058, 0.75, 1.0, 0.25),  # Latino_Hispanic
    2: ((226, 192, 160), 0.30, 0.25, 0.17, 0.050, 0.81, 0.8, 0.02),  # East Asian
    3: ((236, 204, 184), 0.56, 0.18, 0.24, 0.040, 0.72, 0.9, 0.12),  # White
    4: ((170, 124, 88), 0.40, 0.29, 0.18, 0.062, 0.79, 0.9, 0.06),  # Southeast Asian
    5: ((202, 158, 124), 0.54, 0.20, 0.27, 0.050, 0.70, 1.5, 0.30),  # Middle Eastern
    6: ((140, 96, 70), 0.55, 0.25, 0.24, 0.060, 0.73, 1.4, 0.12),  # Indian
}
_DARK_HAIR = [(28, 22, 18), (40, 30, 22), (20, 18, 18), (55, 38, 26)]
_LIGHT_HAIR = [(205, 170, 110), (150, 105, 60), (110, 75, 45), (160, 80, 40), (70, 50, 35)]


def _face_params(gender: int, age: float, race: int, rng: np.random.Generator) -> dict:
    """Continuous drawing parameters of one face (all randomness from ``rng``)."""
    skin, eye_h, nose_w, nose_l, lip, face_w, brow, p_curly = _RACE[race]
    male = gender == 0
    adult = age >= 16
    j = lambda s: float(rng.normal(0.0, s))  # noqa: E731 - jitter helper
    look = age * math.exp(j(0.08))  # apparent age: some people look older or younger
    kid = float(np.clip((20.0 - look) / 20.0, 0.0, 1.0))  # 1 = newborn, 0 = adult
    old = float(np.clip((look - 22.0) / 45.0, 0.0, 1.0))  # 0 until 22, 1 at 67

    tone = np.array(skin, float) * (1.0 + j(0.08)) + rng.normal(0, 5, 3)
    tone *= min(1.0, 250.0 / tone.max())  # keep the hue when brightening
    p: dict = {
        "skin": tuple(np.clip(tone, 25, 250)),
        "eye_h": max(0.18, eye_h + j(0.08)),
        "nose_w": max(0.12, nose_w + j(0.035)) * (1 - 0.15 * kid),
        "nose_l": max(0.10, nose_l + j(0.025)) * (1 - 0.35 * kid),
        "lip": max(0.02, lip + j(0.012)),
        "face_w": face_w + j(0.03) + 0.12 * kid + (0.035 if male and adult else 0.0) + 0.05 * old,
        "jaw": float(np.clip((0.55 if male else 0.25) * (1 - kid) + 0.15 * old + j(0.12), 0, 1)),
        "brow": max(0.3, brow * (1.25 if male else 0.8) * (1 - 0.5 * kid) + j(0.2)),
        "head": 1.0 - 0.10 * kid + j(0.04),  # smaller framed heads for small children
        "eye_y": -0.03 + 0.11 * kid + j(0.015),  # eyes sit lower in a child's face
        "eye_size": (1.0 + 0.55 * kid) * (1 + j(0.07)),
        "eye_sep": 0.21 + j(0.015),
        "wrinkles": float(np.clip(old * 1.1 + j(0.06), 0, 1)),
        "bags": float(np.clip((look - 33) / 30 + j(0.08), 0, 1)),
        "grey": float(np.clip((look - 33.0) / 28.0 + j(0.12), 0, 1)) * (0.3 if rng.random() < 0.25 else 1.0),
        "age": age,
        "male": male,
        "kid": kid,
    }
    # hair
    if race == 3 and rng.random() < 0.55:
        hair = _LIGHT_HAIR[rng.integers(len(_LIGHT_HAIR))]
    elif race in (1, 5) and rng.random() < 0.3:
        hair = _LIGHT_HAIR[2 + rng.integers(3)]
    else:
        hair = _DARK_HAIR[rng.integers(len(_DARK_HAIR))]
    g = p["grey"] if (adult or age > 30) else 0.0
    hair = np.array(hair, float) * (1 - g) + np.array([200, 200, 198]) * g
    p["hair"] = tuple(np.clip(hair + rng.normal(0, 8, 3), 0, 255))
    p["curly"] = rng.random() < p_curly
    if male:
        p["long"] = rng.random() < (0.06 if adult else 0.12)
        p["hair_len"] = 0.55 + j(0.15) if p["long"] else 0.0
        p["bald"] = float(np.clip((look - 30) / 40 + j(0.2), 0, 1)) if adult else 0.0
        p_beard = {5: 0.55, 6: 0.45}.get(race, 0.3)
        p["beard"] = adult and age >= 18 and rng.random() < p_beard
        p["moustache"] = p["beard"] or (adult and rng.random() < 0.15)
        p["lipstick"] = False
        p["earrings"] = False
    else:
        p["long"] = rng.random() < (0.85 if age >= 6 else 0.5 if age >= 2 else 0.15)
        p["hair_len"] = float(np.clip(0.75 + j(0.25), 0.3, 1.3)) if p["long"] else 0.0
        p["bald"] = 0.0
        p["beard"] = p["moustache"] = False
        p["lipstick"] = age >= 15 and rng.random() < 0.45
        p["earrings"] = age >= 5 and rng.random() < 0.25
    p["bangs"] = rng.random() < {2: 0.45, 4: 0.3}.get(race, 0.12) * (1.3 if not male else 0.7)
    p["baby_hair"] = age < 2.5
    p["hairline"] = j(0.06)
    if race == 3 and rng.random() < 0.5:
        p["iris"] = tuple(rng.choice([[90, 130, 170], [100, 140, 110], [120, 150, 180]]))
    else:
        p["iris"] = (60 + j(10), 40 + j(8), 28 + j(6))
    return p


def _shade(rgb, f: float, add=(0, 0, 0)) -> tuple[int, int, int]:
    """``rgb * f + add``, clipped to 0..255, as an int triple (PIL fill colour)."""
    return tuple(int(min(255.0, max(0.0, c * f + a))) for c, a in zip(rgb, add))


def _outline(cx, cy, a, b, jaw, n=48):
    """Face outline: an ellipse whose lower half narrows into a chin (``jaw`` 1 = square jaw)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    s = np.sin(t)
    x = np.cos(t)
    taper = np.where(s > 0, 1 - (0.42 - 0.30 * jaw) * s**2, 1.0)
    return [(cx + a * xi * ti, cy + b * si) for xi, si, ti in zip(x, s, taper)]


def _draw_background(draw, size: int, rng: np.random.Generator) -> None:
    """Plain, striped, blobby or 'indoor' (rectangles) background of a random tone."""
    base = rng.uniform(25, 235) + rng.normal(0, 25, 3)
    bg = tuple(int(c) for c in np.clip(base, 0, 255))
    draw.rectangle([0, 0, size, size], fill=bg)
    kind = rng.integers(4)
    if kind == 1:  # stripes
        step = int(rng.uniform(0.06, 0.2) * size)
        col = _shade(bg, rng.uniform(0.6, 1.4))
        width = max(1, int(step * rng.uniform(0.2, 0.6)))
        slope = rng.uniform(-1, 1) * size
        for x in range(-size, 2 * size, max(step, 2)):
            draw.line([(x, 0), (x + slope, size)], fill=col, width=width)
    elif kind == 2:  # blobs
        for _ in range(int(rng.integers(3, 9))):
            cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0.05, 0.3) * size
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_shade(bg, rng.uniform(0.5, 1.5)))
    elif kind == 3:  # a few rectangles (indoor scene)
        for _ in range(int(rng.integers(2, 5))):
            x0, y0 = rng.uniform(0, size, 2)
            draw.rectangle([x0, y0, x0 + rng.uniform(0.1, 0.6) * size, y0 + rng.uniform(0.1, 0.6) * size],
                           fill=_shade(bg, rng.uniform(0.5, 1.5)))


def _draw_face(p: dict, size: int, rng: np.random.Generator):
    """Draw one face on a canvas ``1.25 * size`` wide; returns the PIL image (RGB)."""
    from PIL import Image, ImageDraw

    C = int(round(size * 1.25))
    img = Image.new("RGB", (C, C))
    d = ImageDraw.Draw(img)
    _draw_background(d, C, rng)
    u = size / 224.0  # line widths scale with the image
    lw = lambda w: max(1, int(round(w * u)))  # noqa: E731

    H = 0.62 * size * p["head"]  # face height
    W = H * p["face_w"]
    a, b = W / 2, H / 2
    cx, cy = C / 2, C / 2 - 0.02 * size
    skin, hair = p["skin"], p["hair"]
    dark_skin = _shade(skin, 0.78)
    hair_i = tuple(int(c) for c in hair)

    # clothes / shoulders and neck
    cloth = tuple(int(c) for c in rng.uniform(20, 235, 3))
    sh_y = cy + b * 1.05
    d.ellipse([cx - 1.25 * W, sh_y, cx + 1.25 * W, sh_y + 1.6 * H], fill=cloth)
    d.rectangle([cx - 0.26 * W, cy + 0.6 * b, cx + 0.26 * W, sh_y + 0.25 * H], fill=dark_skin)

    # hair behind the head: long hair falls to the shoulders, curly hair gives volume
    vol = (0.16 if p["curly"] else 0.07) * W * (1 - p["bald"]) * (0.3 if p["baby_hair"] else 1)
    if p["long"] and not p["baby_hair"]:
        L = b * (0.6 + p["hair_len"] * 1.1)
        d.rounded_rectangle([cx - a - vol - 0.05 * W, cy - b * 0.4, cx + a + vol + 0.05 * W, cy + L],
                            radius=int(0.25 * W), fill=hair_i)
    if p["bald"] < 0.85:
        d.ellipse([cx - a - vol, cy - b - vol * 1.1, cx + a + vol, cy + b * 0.15], fill=hair_i)
        if p["curly"] and not p["baby_hair"]:  # bumpy silhouette
            n = 22
            r = 0.07 * W
            for k in range(n):
                t = np.pi + np.pi * k / (n - 1)
                x = cx + (a + vol * 0.7) * math.cos(t)
                y = cy - 0.35 * b + (b * 0.65 + vol * 0.9) * math.sin(t)
                d.ellipse([x - r, y - r, x + r, y + r], fill=_shade(hair, 0.85 + 0.3 * rng.random()))

    # ears
    ey0 = cy + p["eye_y"] * H
    for sx in (-1, 1):
        ex = cx + sx * a * 0.98
        d.ellipse([ex - 0.07 * W, ey0 - 0.06 * H, ex + 0.07 * W, ey0 + 0.12 * H], fill=dark_skin)
        if p["earrings"]:
            r = 0.025 * W
            d.ellipse([ex - r, ey0 + 0.13 * H - r, ex + r, ey0 + 0.13 * H + r], fill=(230, 210, 120))

    # face
    d.polygon(_outline(cx, cy, a, b, p["jaw"]), fill=tuple(int(c) for c in skin))

    # hair on top of the head (hairline), bangs, receding hairline
    if p["bald"] < 0.85 and not p["baby_hair"]:
        h = (0.18 if p["bangs"] else 0.55) + 0.4 * p["bald"] + p["hairline"]
        th = math.degrees(math.asin(min(0.97, max(0.05, h))))
        d.chord([cx - a * 1.02, cy - b * 1.02, cx + a * 1.02, cy + b * 1.02], 180 + th, 360 - th, fill=hair_i)
        if not p["curly"]:
            strand = _shade(hair, 1.25, (12, 12, 12))
            for k in range(6):
                x = cx + (k - 2.5) * 0.14 * W
                d.line([(x, cy - b * 0.98), (x + 0.05 * W, cy - b * 0.62)], fill=strand, width=lw(2))
    elif p["baby_hair"]:
        for k in range(int(rng.integers(3, 9))):
            x = cx + rng.uniform(-0.3, 0.3) * W
            d.arc([x - 0.1 * W, cy - b * 1.02, x + 0.1 * W, cy - b * 0.8], 180, 330, fill=hair_i, width=lw(2))

    # beard and moustache
    mouth_y = cy + (0.58 - 0.08 * p["kid"]) * b
    if p["beard"]:
        pts = [(x, y) for x, y in _outline(cx, cy, a * 0.98, b * 1.01, p["jaw"]) if y > cy + 0.18 * b]
        pts.sort(key=lambda q: q[0])
        top = [(cx + 0.45 * a, mouth_y - 0.05 * H), (cx - 0.45 * a, mouth_y - 0.05 * H)]
        d.polygon(pts + top, fill=_shade(hair, 0.9, (10, 10, 10)))
        d.ellipse([cx - 0.22 * W, mouth_y - 0.045 * H, cx + 0.22 * W, mouth_y + 0.05 * H],
                  fill=tuple(int(c) for c in skin))
    if p["moustache"]:
        d.polygon([(cx - 0.22 * W, mouth_y - 0.01 * H), (cx, mouth_y - 0.07 * H),
                   (cx + 0.22 * W, mouth_y - 0.01 * H), (cx, mouth_y - 0.035 * H)], fill=hair_i)

    # eyes, eyebrows
    eye_y = cy + p["eye_y"] * H
    ew = 0.17 * W * p["eye_size"] * (1 - 0.12 * p["kid"])
    eh = ew * p["eye_h"] * (1 + 0.2 * p["kid"])
    for sx in (-1, 1):
        ex = cx + sx * p["eye_sep"] * W
        if p["bags"] > 0.1:  # puffy lower lids, drawn under the eye
            d.chord([ex - ew * 0.55, eye_y - eh * 0.2, ex + ew * 0.55, eye_y + eh * (0.9 + 1.2 * p["bags"])],
                    20, 160, fill=_shade(skin, 0.8 - 0.15 * p["bags"]))
        d.ellipse([ex - ew / 2, eye_y - eh / 2, ex + ew / 2, eye_y + eh / 2], fill=(235, 232, 225))
        ir = min(eh * 0.55, ew * 0.3)
        d.ellipse([ex - ir, eye_y - ir, ex + ir, eye_y + ir], fill=tuple(int(c) for c in p["iris"]))
        pr = ir * 0.45
        d.ellipse([ex - pr, eye_y - pr, ex + pr, eye_y + pr], fill=(10, 10, 10))
        lid = lw(3 if (not p["male"] and p["age"] > 12) else 1.5)
        d.arc([ex - ew / 2, eye_y - eh / 2, ex + ew / 2, eye_y + eh / 2], 190, 350, fill=(25, 20, 20), width=lid)
        by = eye_y - eh / 2 - 0.05 * H - 0.02 * H * p["kid"]
        bt = lw(4.5 * p["brow"])
        brow_col = _shade(hair, 0.8) if p["grey"] < 0.6 else _shade(hair, 0.7)
        d.line([(ex - sx * ew * 0.55, by + 0.01 * H), (ex + sx * ew * 0.6, by - 0.004 * H * sx * sx)],
               fill=brow_col, width=bt)

    # nose
    nl = p["nose_l"] * H
    nw = p["nose_w"] * W
    ny = eye_y + nl
    d.line([(cx + 0.02 * W, eye_y + 0.05 * H), (cx + 0.04 * W, ny - 0.02 * H)], fill=_shade(skin, 0.8), width=lw(2))
    d.arc([cx - nw / 2, ny - 0.05 * H, cx + nw / 2, ny + 0.03 * H], 10, 170, fill=_shade(skin, 0.6), width=lw(3))
    for sx in (-1, 1):
        nx = cx + sx * nw * 0.25
        r = nw * 0.12
        d.ellipse([nx - r, ny - r * 0.6, nx + r, ny + r * 0.6], fill=_shade(skin, 0.45))

    # mouth
    mw = (0.36 + 0.05 * (1 - p["kid"])) * W * (1 + float(rng.normal(0, 0.06)))
    mt = p["lip"] * H
    if p["lipstick"]:
        lip_col = tuple(int(c) for c in rng.choice([[170, 30, 45], [120, 20, 40], [200, 70, 90]]))
    else:
        lip_col = _shade(skin, 0.72, (25, -5, -5))
    mouth_y = max(mouth_y, ny + 0.07 * H)
    d.ellipse([cx - mw / 2, mouth_y - mt, cx + mw / 2, mouth_y + mt], fill=lip_col)
    d.line([(cx - mw / 2, mouth_y), (cx + mw / 2, mouth_y)], fill=_shade(lip_col, 0.5), width=lw(1.5))

    # wrinkles: forehead, crow's feet, nasolabial folds
    wr = p["wrinkles"]
    if wr > 0.03:
        col = _shade(skin, 0.66 - 0.3 * wr)
        width = lw(2 + 3 * wr)
        n_lines = 0 if p["bangs"] else int(1 + 3.5 * wr)
        for k in range(n_lines):
            y = cy - 0.52 * b + k * 0.07 * b
            d.arc([cx - 0.3 * W, y, cx + 0.3 * W, y + 0.08 * H], 200, 340, fill=col, width=width)
        for sx in (-1, 1):
            x0 = cx + sx * (p["eye_sep"] * W + ew * 0.55)
            for k in range(int(1 + 3 * wr)):
                d.line([(x0, eye_y), (x0 + sx * 0.07 * W, eye_y - 0.04 * H + k * 0.035 * H)], fill=col, width=width)
            d.arc([cx + sx * 0.1 * W - 0.12 * W, ny - 0.02 * H, cx + sx * 0.1 * W + 0.12 * W, mouth_y + 0.1 * H],
                  (100 if sx < 0 else -80), (200 if sx < 0 else 20), fill=col, width=width)
    return img


_NOISE: dict[int, np.ndarray] = {}


def _noise_field(size: int) -> np.ndarray:
    """A fixed (seeded) Gaussian luminance noise field, twice the image size; images crop it at a
    random offset (cheaper than fresh noise per image, and still deterministic)."""
    field = _NOISE.get(size)
    if field is None:
        field = np.random.default_rng(20240229).standard_normal((2 * size, 2 * size, 1), dtype=np.float32)
        _NOISE[size] = field
    return field


def render_face(gender: int, age: float, race: int, size: int, seed_seq: Sequence[int]) -> bytes:
    """JPEG bytes of one synthetic ``size`` x ``size`` RGB face, deterministic in ``seed_seq``.

    ``gender`` 0 = male, 1 = female; ``age`` in years (continuous); ``race`` a FairFace code
    (position in ``LABELS["race"]``). The look depends on all three (see the module docstring);
    other face datasets (e.g. :mod:`kerasmt.datasets.utkface`) draw their synthetic images with it.
    """
    from PIL import Image

    if gender not in (0, 1):
        raise ValueError(f"gender must be 0 (male) or 1 (female), got {gender}")
    if race not in _RACE:
        raise ValueError(f"race must be a FairFace code 0..{len(_RACE) - 1} ({', '.join(LABELS['race'])}), got {race}")
    rng = np.random.default_rng(seed_seq)
    p = _face_params(gender, age, race, rng)
    canvas = _draw_face(p, size, rng)
    C = canvas.size[0]
    # pose: rotation, scale and shift (inverse affine map output -> canvas)
    ang = math.radians(rng.normal(0, 7))
    s = 1.0 / float(np.clip(rng.normal(1.0, 0.07), 0.85, 1.15))
    tx, ty = rng.normal(0, 0.04 * size, 2)
    c, si = math.cos(ang) * s, math.sin(ang) * s
    ox, oy = size / 2 + tx, size / 2 + ty
    coeffs = (c, si, C / 2 - c * ox - si * oy, -si, c, C / 2 + si * ox - c * oy)
    img = canvas.transform((size, size), Image.AFFINE, coeffs, resample=Image.BILINEAR)
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    # lighting gradient, exposure, colour cast, pixel noise
    x = np.asarray(img, dtype=np.float32)
    g = np.linspace(-1, 1, size, dtype=np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    strength = rng.uniform(0.0, 0.3)
    light = 1.0 + strength * (math.cos(theta) * g[None, :] + math.sin(theta) * g[:, None])
    gain = (rng.normal(1.0, 0.09) * (1 + rng.normal(0, 0.04, 3))).astype(np.float32)
    x *= light[..., None]
    x *= gain
    field = _noise_field(size)
    ox, oy = (int(v) for v in rng.integers(0, size, 2))
    x += field[oy:oy + size, ox:ox + size] * np.float32(rng.uniform(2, 9))
    x += rng.normal(0, 8)
    np.clip(x, 0, 255, out=x)
    img = Image.fromarray(x.astype(np.uint8), "RGB")
    buf = BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(55, 96)))
    return buf.getvalue()


def _render(labels: tuple[int, float, int], size: int, seed_seq: Sequence) -> bytes:
    """``render_face(*labels, size, seed_seq)`` (the former private name, kept as an alias)."""
    gender, age, race = labels
    return render_face(int(gender), float(age), int(race), size, seed_seq)


#: fewer images than this are drawn in-process even when ``workers > 1`` (pool start-up costs more)
_MIN_PARALLEL = 256


def _render_job(job: tuple[str, int, float, int, int, tuple[int, ...]]) -> None:
    """Render one image to its file (top level, so that process pools can pickle it)."""
    path, gender, age, race, size, seed_seq = job
    Path(path).write_bytes(render_face(gender, age, race, size, seed_seq))


def _write_split(root: Path, split: str, n: int, seed: int, image_size: int, workers: int,
                 distinct: int | None = None) -> None:
    rng = np.random.default_rng([seed, _SPLIT_IDS[split], 0])
    labels = sample_labels(n, rng)
    service = rng.random(n) < 0.5
    drawn = n if distinct is None else min(n, distinct)
    if drawn < n:  # image i is a copy of image i % drawn, with its labels
        labels = {k: v[np.arange(n) % drawn] for k, v in labels.items()}
    (root / split).mkdir(parents=True, exist_ok=True)
    files = [f"{split}/{i + 1}.jpg" for i in range(n)]
    jobs = [
        (str(root / files[i]), int(labels["gender"][i]), float(labels["age_years"][i]),
         int(labels["race"][i]), int(image_size), (int(seed), _SPLIT_IDS[split], 1, i))
        for i in range(drawn)
    ]
    if workers > 1 and drawn >= _MIN_PARALLEL:
        # drawing is GIL-bound Python, so use processes; "spawn" is safe in a parent that
        # already runs TensorFlow threads (fork is not)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            list(progress(pool.map(_render_job, jobs, chunksize=max(1, min(256, n // (4 * workers)))),
                          f"synthetic FairFace {split}", total=n, unit="images"))
    else:
        for job in progress(jobs, f"synthetic FairFace {split}", unit="images"):
            _render_job(job)
    if drawn < n:
        copy_distinct([root / f for f in files], drawn, max(2, workers))
    frame = pd.DataFrame(
        {
            "file": files,
            "age": np.array(LABELS["age"], dtype=object)[labels["age"]],
            "gender": np.array(LABELS["gender"], dtype=object)[labels["gender"]],
            "race": np.array(LABELS["race"], dtype=object)[labels["race"]],
            "service_test": service,
        }
    )
    frame.to_csv(root / CSV_FILES[split], index=False, lineterminator="\n")


def synthesize(
    root: str | os.PathLike,
    n_train: int = 6000,
    n_val: int = 1200,
    seed: int = 0,
    image_size: int = 224,
    overwrite: bool = False,
    workers: int | None = None,
    distinct: int | None = None,
) -> Path:
    """Write a synthetic FairFace in the real layout under ``root`` and return ``root``.

    Both label CSVs (``file,age,gender,race,service_test``) and JPEG faces ``train/1.jpg`` ...,
    ``val/1.jpg`` ... of ``image_size`` pixels. The result is byte-identical for the same
    arguments (each image has its own seed, so ``workers`` does not change it; ``workers > 1``
    draws in that many spawned processes, worth it only for thousands of images; the default
    draws 7,200 faces of 224 px in about 20 s on one core). The folder is
    built next to ``root`` and moved in place; a ``.complete`` marker (the parameters, JSON) is
    written last. An existing complete folder with the same parameters is reused unless
    ``overwrite``; any other non-empty ``root`` is refused unless ``overwrite`` (then its CSVs,
    ``train/``, ``val/`` and marker are replaced). ``distinct=K`` draws only K faces per split and
    fills the rest with byte copies (with their labels): the real 97,698 images at 224 px in
    about a minute, for scale and memory benchmarks.
    """
    if n_train < 0 or n_val < 0:
        raise ValueError(f"n_train and n_val must be >= 0, got {n_train}, {n_val}")
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 pixels, got {image_size}")
    root = Path(root).expanduser().resolve()
    params = {"n_train": int(n_train), "n_val": int(n_val), "seed": int(seed),
              "image_size": int(image_size), "generator": 1}
    distinct = check_distinct(distinct, max(n_train, n_val))
    if distinct is not None:
        params["distinct"] = distinct
    if reuse_synthetic(root, params, "FairFace", overwrite, replaces="its CSVs, train/ and val/"):
        return root
    if workers is None:
        workers = 1
    with synthetic_writer(root, params, entries=(*CSV_FILES.values(), "train", "val")) as tmp:
        _write_split(tmp, "train", n_train, seed, image_size, workers, distinct)
        _write_split(tmp, "val", n_val, seed, image_size, workers, distinct)
    return root


def synthetic_root(n_train: int = 6000, n_val: int = 1200, seed: int = 0, image_size: int = 224) -> Path:
    """The cached synthetic FairFace ``cache_dir("synthetic", "fairface-...")``, synthesized on
    first use (reused afterwards)."""
    from kerasmt.utils import cache_dir

    root = cache_dir("synthetic", f"fairface-n{n_train}-{n_val}-s{seed}-px{image_size}")
    return synthesize(root, n_train=n_train, n_val=n_val, seed=seed, image_size=image_size)
