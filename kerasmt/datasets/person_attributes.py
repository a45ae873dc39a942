"""Person attributes with part masks (the course dataset of the attribute multi-task report, seed
000 Problem 2): six soft-biometric traits per person crop, and eight binary part masks.

Real layout (what :func:`load` reads and :func:`synthesize` writes)::

    <root>/Train_Data/Train.csv        filename,gender,tortyp,torcol,legtyp,legcol,luggage[,other columns]
    <root>/Train_Data/Originals/<filename>            person crops (PNG), any size
    <root>/Train_Data/Binary_Maps/<stem>_<part>.png   one binary mask per part, same size as the crop
    <root>/Test_Data/Test.csv          same columns
    <root>/Test_Data/Originals/<filename>             (no masks for the test set)

``<stem>`` is ``filename`` without its extension and ``<part>`` one of :data:`PARTS` (hair, legs,
luggage, shoes, torso, skin_arms, skin_face, skin_legs). The real set has 520 training and 196
test images; it is not public (see ``data/attribute_mtl/README.md``).

Labels are integer codes, ``-1`` = missing ("unknown", frequent for the colours). The CSV columns
map to task names as :data:`CSV_COLUMNS` says. Class names (:data:`LABELS`) are not in the CSVs;
the colour order is the alphabetical list of the 11 colours, which agrees with every colour the
report names for a code (8 = red, 0 = black); clothing types 0 = long, 1 = short and luggage
0 = no, 1 = yes follow the report's text; gender 0 = male, 1 = female is an assumption.

Masks become one ``int8`` label map per image (:func:`kerasmt.pipeline.load_masks`): 0 =
background (the "1 - sum(parts)" channel), ``k`` = ``PARTS[k - 1]``; :func:`merge_skin` folds the
three skin parts into one. Images and masks are letterboxed together to 100x60 (height x width).

The synthetic generator draws people in the same layout whose torso/leg clothing type and colour,
gender cues (hair length, shoulder width, skirts) and luggage (backpack, handbag, suitcase) follow
the labels, with exact part masks, the report's class imbalance and a realistic missing-label
rate in the training set (the report's test set has no missing labels; neither has ours).
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from kerasmt.datasets.base import COMPLETE_MARKER, DatasetError, read_csv_checked, read_csv_for_check, reuse_synthetic, synthetic_writer  # noqa: F401  (COMPLETE_MARKER re-exported)
from kerasmt.utils import progress

#: the traits, in the report's order
TASKS: tuple[str, ...] = ("gender", "torso_type", "torso_colour", "leg_type", "leg_colour", "luggage")
#: CSV column -> task name
CSV_COLUMNS: dict[str, str] = {
    "gender": "gender",
    "tortyp": "torso_type",
    "torcol": "torso_colour",
    "legtyp": "leg_type",
    "legcol": "leg_colour",
    "luggage": "luggage",
}
#: task name -> CSV column
TASK_COLUMNS: dict[str, str] = {task: column for column, task in CSV_COLUMNS.items()}
#: the 11 clothing colours; the list position is the code
COLOURS: list[str] = ["black", "blue", "brown", "green", "grey", "orange", "pink", "purple", "red", "white", "yellow"]
#: task -> class names (position = integer code)
LABELS: dict[str, list[str]] = {
    "gender": ["male", "female"],
    "torso_type": ["long", "short"],
    "torso_colour": COLOURS,
    "leg_type": ["long", "short"],
    "leg_colour": COLOURS,
    "luggage": ["no", "yes"],
}
#: task -> number of classes
N_CLASSES: dict[str, int] = {task: len(LABELS[task]) for task in TASKS}
#: the eight part masks, in file-name order; label map code k = PARTS[k - 1], 0 = background
PARTS: tuple[str, ...] = ("hair", "legs", "luggage", "shoes", "torso", "skin_arms", "skin_face", "skin_legs")
#: label map classes (9: background + parts)
MASK_CLASSES: tuple[str, ...] = ("background",) + PARTS
#: label map classes after :func:`merge_skin` (7)
MASK_CLASSES_MERGED: tuple[str, ...] = ("background", "hair", "legs", "luggage", "shoes", "torso", "skin")
#: manifest column of each part's mask file
MASK_COLUMNS: tuple[str, ...] = tuple(f"mask_{part}" for part in PARTS)
#: split -> (folder, CSV name)
SPLITS: dict[str, tuple[str, str]] = {"train": ("Train_Data", "Train.csv"), "test": ("Test_Data", "Test.csv")}
IMAGES_DIR = "Originals"
MASKS_DIR = "Binary_Maps"
#: the report's input size (height, width): images and masks are letterboxed to it
IMAGE_SIZE: tuple[int, int] = (100, 60)
#: marker written last by :func:`synthesize`
#: version of the synthetic generator (part of the cache folder name and the marker)
GENERATOR_VERSION = 2

#: class frequencies of the synthetic data: the report's test-set supports (classification
#: reports), with classes it never saw raised to a small count so every class exists
SYNTHETIC_COUNTS: dict[str, list[int]] = {
    "gender": [106, 90],
    "torso_type": [75, 121],
    "torso_colour": [51, 23, 12, 9, 21, 5, 7, 5, 19, 35, 9],
    "leg_type": [114, 82],
    "leg_colour": [69, 63, 8, 7, 27, 2, 6, 2, 2, 13, 2],
    "luggage": [135, 61],
}
#: share of missing (-1) labels per task in the synthetic training split ("unknown" colours are
#: frequent in the real set); the synthetic test split, like the report's, has none
SYNTHETIC_MISSING: dict[str, float] = {
    "gender": 0.02,
    "torso_type": 0.03,
    "torso_colour": 0.22,
    "leg_type": 0.03,
    "leg_colour": 0.12,
    "luggage": 0.01,
}

DOWNLOAD_HELP = """The person-attribute dataset (course material of the report) is not public and kerasmt
cannot download it. Put it in this layout and run `kerasmt run attribute_mtl --data DIR`:

    DIR/Train_Data/Train.csv, DIR/Train_Data/Originals/*.png, DIR/Train_Data/Binary_Maps/<stem>_<part>.png
    DIR/Test_Data/Test.csv,  DIR/Test_Data/Originals/*.png

See data/attribute_mtl/README.md. Without it the study runs on a synthetic dataset in this layout."""


# --------------------------------------------------------------------------------------- reading
def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed splits: {sorted(SPLITS)}")
    return split


def _where(csv: Path, i: int, filename: object = None) -> str:
    name = "" if filename is None or (isinstance(filename, float) and np.isnan(filename)) else f", file {filename!r}"
    return f"{csv}: line {i + 2} (data row {i + 1}{name})"


def _parse_labels(frame: pd.DataFrame, csv: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Integer codes per task (empty cell -> -1) and one message per bad cell."""
    codes: dict[str, np.ndarray] = {}
    problems: list[str] = []
    filenames = frame["filename"] if "filename" in frame.columns else pd.Series([None] * len(frame))
    for column, task in CSV_COLUMNS.items():
        if column not in frame.columns:
            continue
        raw = frame[column]
        numeric = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        empty = raw.isna().to_numpy() | (raw.astype("string").str.strip() == "").fillna(True).to_numpy()
        n = N_CLASSES[task]
        code = np.full(len(frame), -1, dtype=np.int64)
        for i in range(len(frame)):
            if empty[i]:
                continue
            value = numeric[i]
            if np.isnan(value) or value != np.floor(value):
                problems.append(
                    f"{_where(csv, i, filenames.iloc[i])}: column {column!r} ({task}): bad value "
                    f"{raw.iloc[i]!r}; expected an integer code 0..{n - 1} or -1 (missing)"
                )
            elif not -1 <= value <= n - 1:
                problems.append(
                    f"{_where(csv, i, filenames.iloc[i])}: column {column!r} ({task}): value {int(value)} "
                    f"out of range; expected 0..{n - 1} ({', '.join(LABELS[task])}) or -1 (missing)"
                )
            else:
                code[i] = int(value)
        codes[task] = code
    return codes, problems


def _filename_problems(frame: pd.DataFrame, csv: Path) -> list[str]:
    problems = []
    names = frame["filename"].astype("string").str.strip()
    for i in np.flatnonzero(names.isna().to_numpy() | (names == "").fillna(True).to_numpy()):
        problems.append(f"{_where(csv, i)}: column 'filename': empty value; expected an image file name such as '0001.png'")
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if pd.isna(name) or name == "":
            continue
        if name in first:
            problems.append(f"{_where(csv, i, name)}: duplicate filename (first listed at line {first[name] + 2})")
        else:
            first[name] = i
    return problems


def _image_path(folder: Path, filename: str) -> Path:
    """``Originals/<filename>``; a name without extension also matches ``<filename>.png``."""
    path = folder / IMAGES_DIR / filename
    if not path.exists() and not Path(filename).suffix and (folder / IMAGES_DIR / f"{filename}.png").exists():
        return folder / IMAGES_DIR / f"{filename}.png"
    return path


def mask_files(folder: str | os.PathLike, filename: str) -> list[Path]:
    """The eight mask paths of an image: ``<folder>/Binary_Maps/<stem>_<part>.png`` (PARTS order)."""
    stem = Path(filename).stem
    return [Path(folder) / MASKS_DIR / f"{stem}_{part}.png" for part in PARTS]


def load(
    root: str | os.PathLike,
    split: str = "train",
    check_files: bool = True,
    masks: bool | None = None,
    missing_masks: str = "error",
) -> pd.DataFrame:
    """Manifest of one split (``"train"`` or ``"test"``).

    Columns: ``path`` (absolute image path), ``filename`` (as in the CSV), the six tasks
    (:data:`TASKS`, int64 codes, ``-1`` = missing or empty cell), ``has_mask`` (bool), one
    ``mask_<part>`` column per part (absolute paths, ``None`` without masks) and any other CSV
    columns unchanged.

    Args:
        root: the folder holding ``Train_Data/`` and ``Test_Data/``.
        check_files: report every listed image that does not exist.
        masks: read the part masks; ``None`` = required for ``train``, used for ``test`` only when
            ``Test_Data/Binary_Maps`` exists (the report's test set has none).
        missing_masks: ``"error"`` (default): any missing mask file is a :class:`DatasetError`
            listing them all; ``"skip"``: such images keep their labels but get ``has_mask=False``
            (no segmentation loss), with one warning counting them.

    Raises :class:`DatasetError` naming the CSV, its line (header = line 1), the file and the
    column of every bad value (non-integer, out of range), empty or duplicate file names, and
    missing files.
    """
    _check_split(split)
    if missing_masks not in {"error", "skip"}:
        raise ValueError(f"missing_masks must be 'error' or 'skip', got {missing_masks!r}")
    root = Path(root).expanduser().resolve()
    folder_name, csv_name = SPLITS[split]
    folder = root / folder_name
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found (expected Train_Data/ and Test_Data/ in it)")
    csv = folder / csv_name
    frame = read_csv_checked(csv, ["filename", *CSV_COLUMNS])
    codes, problems = _parse_labels(frame, csv)
    problems = _filename_problems(frame, csv) + problems
    if problems:
        raise DatasetError(f"{csv}: {len(problems)} bad value(s)", problems=problems)
    filenames = frame["filename"].astype("string").str.strip().astype(str).tolist()
    out = pd.DataFrame({"path": [str(_image_path(folder, f)) for f in filenames], "filename": filenames})
    for task in TASKS:
        out[task] = codes[task]
    if check_files:
        missing = [f"line {i + 2}: {p}" for i, p in enumerate(out["path"]) if not os.path.isfile(p)]
        if missing:
            raise DatasetError(f"{csv}: {len(missing)} of {len(out)} listed image file(s) not found in {folder / IMAGES_DIR}",
                               problems=missing)
    use_masks = (split == "train" or (folder / MASKS_DIR).is_dir()) if masks is None else bool(masks)
    has_mask = np.zeros(len(out), dtype=bool)
    mask_cols: dict[str, list] = {c: [None] * len(out) for c in MASK_COLUMNS}
    if use_masks:
        absent: list[str] = []
        for i, filename in enumerate(filenames):
            files = mask_files(folder, filename)
            lost = [f for f in files if not f.is_file()]
            if lost:
                absent += [f"{_where(csv, i, filename)}: mask file not found: {f}" for f in lost]
                continue
            has_mask[i] = True
            for column, f in zip(MASK_COLUMNS, files):
                mask_cols[column][i] = str(f)
        if absent and missing_masks == "error":
            raise DatasetError(
                f"{folder / MASKS_DIR}: {len(absent)} mask file(s) not found (expected <stem>_<part>.png for the "
                f"parts {list(PARTS)}; load(..., missing_masks='skip') trains those images without masks)",
                problems=absent,
            )
        if absent:
            n_rows = int((~has_mask).sum())
            warnings.warn(
                f"{csv}: {n_rows} of {len(out)} image(s) have missing mask files ({len(absent)} files); "
                f"they are kept without masks (no segmentation loss)",
                stacklevel=2,
            )
        if check_files:
            rows = [(i, [out["path"].iloc[i]] + [mask_cols[c][i] for c in MASK_COLUMNS])
                    for i in np.flatnonzero(has_mask)]
            flat = [f for _, files in rows for f in files]
            with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
                sizes = dict(zip(flat, pool.map(_header_size, flat, chunksize=64)))
            wrong = [
                f"{_where(csv, i, filenames[i])}: {_size_problem(Path(f), sizes[f], sizes[files[0]])}"
                for i, files in rows for f in files[1:]
                if sizes[f] is not None and sizes[files[0]] is not None and sizes[f] != sizes[files[0]]
            ]
            if wrong:
                raise DatasetError(f"{folder / MASKS_DIR}: {len(wrong)} mask(s) of another size than their image "
                                   f"(masks are not resized: a part mask must match its image pixel for pixel)",
                                   problems=wrong)
    out["has_mask"] = has_mask
    for column in MASK_COLUMNS:
        out[column] = pd.Series(mask_cols[column], dtype=object)
    for column in frame.columns:
        if column not in CSV_COLUMNS and column != "filename" and column not in out.columns:
            out[column] = frame[column].to_numpy()
    return out


def mask_paths(manifest: pd.DataFrame) -> list[list[str] | None]:
    """Per row, the part mask files (PARTS order), or ``None`` for rows without masks; the
    argument :func:`kerasmt.pipeline.load_masks` takes."""
    if "has_mask" not in manifest.columns:
        return [None] * len(manifest)
    files = manifest[list(MASK_COLUMNS)].to_numpy(dtype=object)
    return [list(map(str, row)) if ok else None for ok, row in zip(manifest["has_mask"].to_numpy(), files)]


def merge_skin(label_maps: np.ndarray) -> np.ndarray:
    """Fold skin_arms, skin_face and skin_legs into one "skin" class: 9-class label maps
    (:data:`MASK_CLASSES`) -> 7-class ones (:data:`MASK_CLASSES_MERGED`); -1 stays -1."""
    lut = np.array([0, 1, 2, 3, 4, 5, 6, 6, 6, -1], dtype=np.int8)  # index -1 -> last entry
    label_maps = np.asarray(label_maps)
    return lut[label_maps.astype(np.int64)]


def _header_size(path: str) -> tuple[int, int] | None:
    """Upright ``(width, height)`` from an image's header (no decoding; an EXIF orientation that
    rotates by 90 degrees swaps them, as the decoder's ``exif_transpose`` does), None if it cannot
    be read (the decode check reports those)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - UnidentifiedImageError, OSError, ...
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _size_problem(mask: Path, msize: tuple[int, int], size: tuple[int, int]) -> str:
    return (f"mask {mask.name} is {msize[0]}x{msize[1]} (WxH) but the image is {size[0]}x{size[1]}; "
            f"masks must have their image's size")


def _pil_problem(path: str) -> tuple[str | None, tuple[int, int] | None]:
    from kerasmt.images import probe_image

    return probe_image(path)  # (problem, (width, height)) of the decoded, upright image


def check(root: str | os.PathLike, decode: bool = True) -> list[str]:
    """Every problem found in a dataset folder; an empty list means it is valid.

    Reports missing or unreadable CSVs and columns, bad label values, empty or duplicate file
    names, missing images, missing training masks and, with ``decode``, images or masks that
    cannot be decoded and masks whose size differs from their image's. Each message names the CSV
    line and file.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        return [f"{root}: dataset folder not found"]
    problems: list[str] = []
    for split, (folder_name, csv_name) in SPLITS.items():
        folder = root / folder_name
        csv = folder / csv_name
        frame = read_csv_for_check(csv, ["filename", *CSV_COLUMNS], problems)
        if frame is None:
            continue
        problems += _parse_labels(frame, csv)[1]
        if "filename" not in frame.columns:
            continue
        problems += _filename_problems(frame, csv)
        want_masks = split == "train" or (folder / MASKS_DIR).is_dir()
        jobs: list[tuple[int, str, list[Path]]] = []
        for i, name in enumerate(frame["filename"].astype("string").str.strip()):
            if pd.isna(name) or name == "":
                continue
            image = _image_path(folder, str(name))
            if not image.is_file():
                problems.append(f"{_where(csv, i, name)}: image file not found: {image}")
                continue
            masks = mask_files(folder, str(name)) if want_masks else []
            for f in masks:
                if not f.is_file():
                    problems.append(f"{_where(csv, i, name)}: mask file not found: {f}")
            jobs.append((i, str(name), [image] + [f for f in masks if f.is_file()]))
        if decode and jobs:
            files = [str(f) for _, _, fs in jobs for f in fs]
            with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
                results = dict(zip(files, pool.map(_pil_problem, files, chunksize=64)))
            for i, name, fs in jobs:
                error, size = results[str(fs[0])]
                if error:
                    problems.append(f"{_where(csv, i, name)}: image cannot be decoded: {fs[0]} ({error})")
                for f in fs[1:]:
                    merror, msize = results[str(f)]
                    if merror:
                        problems.append(f"{_where(csv, i, name)}: mask cannot be decoded: {f} ({merror})")
                    elif size is not None and msize != size:
                        problems.append(f"{_where(csv, i, name)}: {_size_problem(f, msize, size)}")
    return problems


def class_counts(manifest: pd.DataFrame, task: str) -> pd.Series:
    """Labelled examples per class of ``task`` (all classes, zeros included), indexed by name."""
    if task not in LABELS:
        raise ValueError(f"unknown task {task!r}; allowed tasks: {list(TASKS)}")
    codes = manifest[task].to_numpy(dtype=np.int64)
    counts = np.bincount(codes[codes >= 0], minlength=N_CLASSES[task])[: N_CLASSES[task]]
    return pd.Series(counts.astype(np.int64), index=pd.Index(LABELS[task], name=task), name="count")


def missing_counts(manifest: pd.DataFrame) -> pd.Series:
    """Number of missing (-1) labels per task."""
    return pd.Series({task: int((manifest[task].to_numpy() < 0).sum()) for task in TASKS}, name="missing")


def majority_baseline(manifest: pd.DataFrame, task: str) -> float:
    """Accuracy of always predicting the most frequent class (labelled rows only)."""
    counts = class_counts(manifest, task)
    total = int(counts.sum())
    return float(counts.max() / total) if total else float("nan")


# ------------------------------------------------------------------------------------ synthesis
#: base RGB of each colour code
_RGB = {
    0: (28, 28, 32), 1: (38, 72, 175), 2: (112, 72, 40), 3: (42, 132, 62), 4: (128, 128, 128),
    5: (240, 135, 30), 6: (238, 150, 190), 7: (118, 50, 140), 8: (198, 28, 36), 9: (236, 236, 232),
    10: (236, 214, 52),
}
_HAIR = [(22, 18, 16), (48, 32, 22), (95, 62, 35), (196, 160, 95), (150, 150, 150)]
_SKIN = [(242, 208, 184), (224, 180, 150), (196, 146, 110), (160, 112, 80), (112, 76, 56), (84, 56, 42)]
_PART = {part: k + 1 for k, part in enumerate(PARTS)}


def sample_labels(n: int, rng: np.random.Generator, missing: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """``n`` label rows with the report's class proportions (largest-remainder rounding of
    :data:`SYNTHETIC_COUNTS`, shuffled per task) and ``round(rate * n)`` missing labels per task
    (``missing``: task -> rate; ``None`` = none)."""
    out = {}
    for task in TASKS:
        share = np.asarray(SYNTHETIC_COUNTS[task], float)
        share = share / share.sum() * n
        counts = np.floor(share).astype(np.int64)
        order = np.argsort(-(share - counts), kind="stable")
        counts[order[: n - int(counts.sum())]] += 1
        codes = rng.permutation(np.repeat(np.arange(N_CLASSES[task], dtype=np.int64), counts))
        rate = (missing or {}).get(task, 0.0)
        k = int(round(rate * n))
        if k:
            codes[rng.choice(n, size=k, replace=False)] = -1
        out[task] = codes
    return out


def _jitter(rgb, rng: np.random.Generator, spread: float = 12.0, light: tuple[float, float] = (0.78, 1.12)):
    value = np.asarray(rgb, float) * rng.uniform(*light) + rng.normal(0, spread, 3)
    return tuple(int(v) for v in np.clip(value, 0, 255))


class _Painter:
    """Draws each shape on the RGB image and, with its part code, on the label map."""

    def __init__(self, width: int, height: int):
        from PIL import Image, ImageDraw

        self.rgb = Image.new("RGB", (width, height))
        self.lab = Image.new("L", (width, height))
        self.d = ImageDraw.Draw(self.rgb)
        self.m = ImageDraw.Draw(self.lab)

    def polygon(self, points, colour, part: str | None):
        self.d.polygon(points, fill=colour)
        if part:
            self.m.polygon(points, fill=_PART[part])

    def ellipse(self, box, colour, part: str | None):
        self.d.ellipse(box, fill=colour)
        if part:
            self.m.ellipse(box, fill=_PART[part])

    def rectangle(self, box, colour, part: str | None):
        self.d.rectangle(box, fill=colour)
        if part:
            self.m.rectangle(box, fill=_PART[part])

    def line(self, points, colour, width: int, part: str | None):
        self.d.line(points, fill=colour, width=width)
        if part:
            self.m.line(points, fill=_PART[part], width=width)


def _background(p: _Painter, w: int, h: int, rng: np.random.Generator) -> None:
    """Wall, floor with tile lines and a few objects (pillars, bins, doors): surveillance-like."""
    wall = _jitter(rng.uniform(70, 200, 3), rng, 10, (0.8, 1.1))
    floor = _jitter(rng.uniform(60, 180, 3), rng, 10, (0.7, 1.0))
    horizon = int(h * rng.uniform(0.45, 0.75))
    p.rectangle([0, 0, w, horizon], wall, None)
    p.rectangle([0, horizon, w, h], floor, None)
    tile = tuple(int(c * 0.8) for c in floor)
    for k in range(int(rng.integers(0, 5))):
        y = horizon + (h - horizon) * (k + 1) / 5
        p.line([(0, y), (w, y + rng.normal(0, 3))], tile, 1, None)
    for _ in range(int(rng.integers(0, 4))):  # doors, windows, pillars: muted, on the wall
        x0 = rng.uniform(-0.2, 1.0) * w
        bw = rng.uniform(0.15, 0.5) * w
        y0 = rng.uniform(0.0, 0.5) * horizon
        colour = 0.6 * np.asarray(wall, float) + 0.4 * rng.uniform(30, 220, 3)
        p.rectangle([x0, y0, x0 + bw, horizon], _jitter(colour, rng, 8), None)


def _stripes(rgb: np.ndarray, region: np.ndarray, colour, rng: np.random.Generator) -> None:
    """Paint horizontal stripes of ``colour`` over ``region`` (a patterned, "unknown"-colour garment)."""
    period = int(rng.integers(3, 7))
    rows = (np.arange(rgb.shape[0]) // max(1, period // 2)) % 2 == 0
    rgb[region & rows[:, None]] = colour


def _person(labels: dict[str, int], pose: int, rng: np.random.Generator):
    """Draw one person crop; returns ``(RGB uint8 array, label map uint8 array)``."""
    luggage = labels["luggage"] == 1 if labels["luggage"] >= 0 else bool(rng.random() < 0.3)
    bag_kind = int(rng.integers(3)) if luggage else -1  # 0 backpack, 1 handbag, 2 suitcase
    bag_side = 1 if rng.random() < 0.5 else -1
    carried = bag_kind in (1, 2)  # the crop includes a bag carried beside the body: a wider crop
    h = int(rng.integers(110, 171))
    w = int(round(h * (rng.uniform(0.5, 0.7) if carried else rng.uniform(0.38, 0.64))))
    p = _Painter(w, h)
    _background(p, w, h, rng)

    female = labels["gender"] == 1 if labels["gender"] >= 0 else bool(rng.random() < 0.46)
    top = h * rng.uniform(0.01, 0.06)
    feet = h * rng.uniform(0.955, 0.995)
    P = feet - top
    y = lambda f: top + f * P  # noqa: E731 - height fraction -> pixel row
    cx = w / 2 + rng.normal(0, 0.03 * w) - (bag_side * 0.08 * w if carried else 0.0)
    side = pose == 2
    back = pose == 1
    shoulder = P * (0.205 if female else 0.275) * rng.uniform(0.92, 1.08) * (0.62 if side else 1.0)
    waist = shoulder * (0.78 if female else 0.86) * rng.uniform(0.95, 1.05)
    hips = shoulder * (0.92 if female else 0.84) * rng.uniform(0.95, 1.05) * (0.8 if side else 1.0)
    arm_w = P * 0.052
    leg_w = hips * 0.5
    skin = _jitter(_SKIN[int(rng.integers(len(_SKIN)))], rng, 6, (0.92, 1.06))
    hair = _jitter(_HAIR[int(rng.integers(len(_HAIR)))], rng, 6, (0.9, 1.1))
    long_hair = rng.random() < (0.85 if female else 0.1)

    def colour_of(code: int):
        return _jitter(_RGB[code] if code >= 0 else _RGB[int(rng.integers(11))], rng)

    torso_code, leg_code = labels["torso_colour"], labels["leg_colour"]
    torso_rgb, leg_rgb = colour_of(torso_code), colour_of(leg_code)
    short_sleeves = labels["torso_type"] == 1 if labels["torso_type"] >= 0 else bool(rng.random() < 0.6)
    short_legs = labels["leg_type"] == 1 if labels["leg_type"] >= 0 else bool(rng.random() < 0.4)
    bag_rgb = colour_of(int(rng.choice([c for c in (0, 1, 2, 3, 5, 7, 8, 10) if c != torso_code])))

    head_rx, head_ry = P * 0.052, P * 0.066
    head_cy = y(0.07)
    # long hair hangs behind the shoulders (drawn first, the body covers it)
    if long_hair and not back:
        hair_end = y(rng.uniform(0.24, 0.34))
        p.polygon([(cx - head_rx * 1.25, head_cy), (cx + head_rx * 1.25, head_cy),
                   (cx + head_rx * 1.45, hair_end), (cx - head_rx * 1.45, hair_end)], hair, "hair")
    # suitcase stands on the floor beside the legs, behind an arm
    if bag_kind == 2:
        bx = cx + bag_side * (hips / 2 + P * rng.uniform(0.06, 0.12))
        bw, bh = P * rng.uniform(0.16, 0.22), P * rng.uniform(0.25, 0.35)
        p.rectangle([bx - bw / 2, feet - bh, bx + bw / 2, feet], bag_rgb, "luggage")
        p.line([(bx, feet - bh), (bx, feet - bh - P * 0.12)], bag_rgb, max(1, int(P * 0.012)), "luggage")
    # legs: trousers / shorts / skirt, skin below, shoes
    hip_y, ankle_y = y(0.49), y(0.945)
    crotch_y = y(0.58)
    hem_y = y(rng.uniform(0.60, 0.68))
    legs_polys = []
    for s in (-1, 1):
        if side and s == 1:
            continue
        x_in, x_out = cx + s * 0.02 * hips, cx + s * hips / 2
        foot_out = cx + s * (hips / 2 - 0.15 * leg_w) + rng.normal(0, 0.02 * P)
        foot_in = foot_out - s * leg_w * 0.75
        legs_polys.append([(x_in, crotch_y), (x_in, hip_y), (x_out, hip_y), (foot_out, ankle_y), (foot_in, ankle_y)])
    for poly in legs_polys:
        p.polygon(poly, skin if short_legs else leg_rgb, "skin_legs" if short_legs else "legs")
    skirt = short_legs and female and rng.random() < 0.65
    if skirt:
        p.polygon([(cx - hips / 2, hip_y), (cx + hips / 2, hip_y), (cx + hips * 0.68, hem_y),
                   (cx - hips * 0.68, hem_y)], leg_rgb, "legs")
    else:
        if short_legs:  # shorts: the top of each leg down to the hem
            def at(a, b, yy):  # x on the segment a-b at row yy
                return a[0] + (yy - a[1]) / (b[1] - a[1]) * (b[0] - a[0])

            for x_in_c, _, (x_out, _), foot_o, foot_i in legs_polys:
                outer = at((x_out, hip_y), foot_o, hem_y)
                inner = at(x_in_c, foot_i, hem_y)
                p.polygon([(x_in_c[0], hip_y), (x_out, hip_y), (outer, hem_y), (inner, hem_y), x_in_c], leg_rgb, "legs")
        p.rectangle([cx - hips / 2, hip_y, cx + hips / 2, crotch_y], leg_rgb, "legs")
    shoe_rgb = _jitter([(20, 20, 20), (90, 55, 30), (230, 230, 230)][int(rng.integers(3))], rng, 8)
    for poly in legs_polys:
        fx = (poly[3][0] + poly[4][0]) / 2
        p.ellipse([fx - leg_w * 0.55, ankle_y - P * 0.012, fx + leg_w * 0.55, feet], shoe_rgb, "shoes")
    # backpack behind the body (front view: only its sides and straps show)
    if bag_kind == 0 and not back:
        p.rectangle([cx - shoulder * 0.95, y(0.13), cx + shoulder * 0.95, y(0.44)], bag_rgb, "luggage")
    # torso and arms
    neck_y = y(0.145)
    shoulder_y = y(0.165)
    torso_end = y(rng.uniform(0.49, 0.53))
    p.polygon([(cx - shoulder / 2, shoulder_y), (cx + shoulder / 2, shoulder_y),
               (cx + waist / 2, y(0.38)), (cx + hips / 2, torso_end), (cx - hips / 2, torso_end),
               (cx - waist / 2, y(0.38))], torso_rgb, "torso")
    p.rectangle([cx - P * 0.018, neck_y, cx + P * 0.018, shoulder_y + 1], skin, "skin_face")
    sleeve_end = y(rng.uniform(0.24, 0.28)) if short_sleeves else y(0.45)
    wrist_y = y(0.46)
    for s in (-1, 1):
        if side and s == -1:
            continue
        x0 = cx + s * (shoulder / 2 + arm_w * 0.1)
        x1 = x0 + s * P * rng.uniform(0.0, 0.035)
        arm = [(x0 - arm_w / 2, shoulder_y), (x0 + arm_w / 2, shoulder_y), (x1 + arm_w / 2, wrist_y),
               (x1 - arm_w / 2, wrist_y)]
        p.polygon(arm, skin, "skin_arms")
        t = (sleeve_end - shoulder_y) / (wrist_y - shoulder_y)
        xs = x0 + (x1 - x0) * t
        p.polygon([arm[0], arm[1], (xs + arm_w * 0.55, sleeve_end), (xs - arm_w * 0.55, sleeve_end)], torso_rgb, "torso")
        p.ellipse([x1 - arm_w * 0.55, wrist_y - arm_w * 0.2, x1 + arm_w * 0.55, wrist_y + arm_w * 1.2], skin, "skin_arms")
        if bag_kind == 1 and s == bag_side:  # handbag hanging from this hand / shoulder
            bw, bh = P * rng.uniform(0.15, 0.2), P * rng.uniform(0.12, 0.16)
            bx = x1 + s * bw * 0.25
            p.line([(x0, shoulder_y + 2), (bx, wrist_y)], bag_rgb, max(1, int(P * 0.01)), "luggage")
            p.rectangle([bx - bw / 2, wrist_y, bx + bw / 2, wrist_y + bh], bag_rgb, "luggage")
    if bag_kind == 0:
        if back:  # the backpack covers the back
            p.rectangle([cx - shoulder * 0.4, y(0.19), cx + shoulder * 0.4, y(0.43)], bag_rgb, "luggage")
        else:  # straps over the shoulders
            for s in (-1, 1):
                p.line([(cx + s * shoulder * 0.3, shoulder_y), (cx + s * shoulder * 0.3, y(0.33))], bag_rgb,
                       max(1, int(P * 0.018)), "luggage")
    # long hair falls over the shoulders in front
    if long_hair and not back:
        strand_end = y(rng.uniform(0.27, 0.36))
        for s in (-1, 1):
            p.polygon([(cx + s * head_rx * 0.6, head_cy), (cx + s * head_rx * 1.3, head_cy),
                       (cx + s * head_rx * 1.6, strand_end), (cx + s * head_rx * 0.75, strand_end)], hair, "hair")
    # head: face (front / side) or hair (back), hair cap
    head_box = [cx - head_rx, head_cy - head_ry, cx + head_rx, head_cy + head_ry]
    if back:
        p.ellipse(head_box, hair, "hair")
        if long_hair:
            p.polygon([(cx - head_rx * 1.2, head_cy), (cx + head_rx * 1.2, head_cy),
                       (cx + head_rx * 1.35, y(rng.uniform(0.24, 0.32))),
                       (cx - head_rx * 1.35, y(rng.uniform(0.24, 0.32)))], hair, "hair")
    else:
        p.ellipse(head_box, skin, "skin_face")
        cap = head_cy - head_ry * rng.uniform(0.05, 0.35)
        p.ellipse([cx - head_rx * 1.08, head_cy - head_ry * 1.1, cx + head_rx * 1.08, 2 * cap - (head_cy - head_ry * 1.1)],
                  hair, "hair")
    rgb = np.asarray(p.rgb, dtype=np.uint8).copy()
    lab = np.asarray(p.lab, dtype=np.uint8).copy()
    # patterned garments: the annotators' "unknown" colour
    if torso_code < 0 and rng.random() < 0.7:
        _stripes(rgb, lab == _PART["torso"], colour_of(-1), rng)
    if leg_code < 0 and rng.random() < 0.6:
        _stripes(rgb, lab == _PART["legs"], colour_of(-1), rng)
    return rgb, lab


def _camera(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting gain and gradient, colour cast, blur and sensor noise (RGB only; masks stay exact)."""
    from PIL import Image, ImageFilter

    x = rgb.astype(np.float32)
    h, w = x.shape[:2]
    g = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None]
    x *= 1.0 + rng.uniform(-0.15, 0.15) * g
    x *= (rng.uniform(0.72, 1.2) * (1 + rng.normal(0, 0.04, 3))).astype(np.float32)
    np.clip(x, 0, 255, out=x)
    img = Image.fromarray(x.astype(np.uint8)).filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.9))))
    x = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(2, 7), (h, w, 3)).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def render(labels: dict[str, int], seed: Sequence[int] | int, pose: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic person for ``labels`` (``{task: code}``, -1 allowed): ``(RGB uint8 (H, W, 3),
    label map uint8 (H, W))`` with label codes 0 = background, ``k`` = ``PARTS[k - 1]``.
    Deterministic in ``seed``; ``pose`` 0 front, 1 back, 2 side (``None``: drawn)."""
    rng = np.random.default_rng(seed)
    if pose is None:
        pose = int(rng.choice(3, p=[0.55, 0.3, 0.15]))
    rgb, lab = _person(labels, pose, rng)
    return _camera(rgb, rng), lab


def _write_split(root: Path, split: str, n: int, seed: int, workers: int) -> None:
    from PIL import Image

    folder_name, csv_name = SPLITS[split]
    folder = root / folder_name
    split_id = 1 if split == "train" else 2
    rng = np.random.default_rng([seed, split_id, 0])
    labels = sample_labels(n, rng, SYNTHETIC_MISSING if split == "train" else None)
    poses = rng.choice(3, size=n, p=[0.55, 0.3, 0.15])
    (folder / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    write_masks = split == "train"
    if write_masks:
        (folder / MASKS_DIR).mkdir(parents=True, exist_ok=True)
    filenames = [f"{i + 1:04d}.png" for i in range(n)]

    def job(i: int) -> None:
        row = {task: int(labels[task][i]) for task in TASKS}
        rgb, lab = render(row, [seed, split_id, 1, i], pose=int(poses[i]))
        Image.fromarray(rgb, "RGB").save(folder / IMAGES_DIR / filenames[i], optimize=False)
        if write_masks:
            for part, path in zip(PARTS, mask_files(folder, filenames[i])):
                Image.fromarray(np.where(lab == _PART[part], 255, 0).astype(np.uint8), "L").save(path)

    if workers > 1 and n > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(progress(pool.map(job, range(n), chunksize=16), "synthetic person attributes", total=n,
                          unit="images"))
    else:
        for i in progress(range(n), "synthetic person attributes", unit="images"):
            job(i)
    frame = pd.DataFrame({"filename": filenames})
    for column, task in CSV_COLUMNS.items():
        frame[column] = labels[task]
    frame["pose"] = poses  # an extra column, as the real CSVs have
    frame.to_csv(folder / csv_name, index=False, lineterminator="\n")


def synthesize(
    root: str | os.PathLike,
    n_train: int = 520,
    n_test: int = 196,
    seed: int = 0,
    overwrite: bool = False,
    workers: int | None = None,
) -> Path:
    """Write a synthetic person-attribute dataset in the real layout under ``root``; returns it.

    ``n_train`` images with masks in ``Train_Data/`` (labels with the report's class imbalance and
    missing labels), ``n_test`` without masks in ``Test_Data/``. Byte-identical for the same
    arguments (one seed per image). A complete folder with the same parameters is reused; another
    non-empty ``root`` is refused unless ``overwrite``.
    """
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test must be >= 0, got {n_train}, {n_test}")
    root = Path(root).expanduser().resolve()
    params = {"n_train": int(n_train), "n_test": int(n_test), "seed": int(seed), "generator": GENERATOR_VERSION}
    if reuse_synthetic(root, params, "person-attribute dataset", overwrite,
                       replaces="Train_Data/ and Test_Data/"):
        return root
    workers = min(4, os.cpu_count() or 1) if workers is None else int(workers)
    with synthetic_writer(root, params, entries=[folder for folder, _ in SPLITS.values()]) as tmp:
        _write_split(tmp, "train", n_train, seed, workers)
        _write_split(tmp, "test", n_test, seed, workers)
    return root


def synthetic_root(n_train: int = 520, n_test: int = 196, seed: int = 0) -> Path:
    """The cached synthetic dataset ``cache_dir("synthetic", "person_attributes-...")``, written on
    first use."""
    from kerasmt.utils import cache_dir

    root = cache_dir("synthetic", f"person_attributes-g{GENERATOR_VERSION}-n{n_train}-{n_test}-s{seed}")
    return synthesize(root, n_train=n_train, n_test=n_test, seed=seed)
