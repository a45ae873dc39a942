"""iMaterialist (Fashion) 2019 FGVC6 and Fashionpedia: instance masks of worn fashion items.

Real layouts (what :func:`load` reads; :func:`synthesize` writes the first one)::

    iMaterialist 2019 / 2020 (Kaggle, competition rules)
    <root>/train.csv                  ImageId,EncodedPixels,Height,Width,ClassId
    <root>/label_descriptions.json    {"info", "categories" (46), "attributes" (92)}
    <root>/train/<ImageId>.jpg        (2019: ImageId already ends in .jpg; 2020: bare id)

    Fashionpedia (CC BY 4.0, COCO JSON, same 46 categories)
    <root>/instances_attributes_train2020.json   images / annotations / categories / attributes
    <root>/instances_attributes_val2020.json
    <root>/train/<file_name>, <root>/test/<file_name>   (val images live in test/)

Categories are matched by *name* against :data:`CATEGORIES` (the 46 of iMaterialist 2019 and the
2020 Fashionpedia release), not by id: the ids of a ``label_descriptions.json`` or COCO file are
mapped through their names (:func:`category_mapping`), so an older ontology (Fashionpedia's own
sample has 48 categories: ``earmuffs`` = 14, ``shoe`` = 24) reads right. Segments of categories
whose names are not in the list are dropped with one counted warning naming them; the manifest's
``attrs["category_mapping"]`` holds the ids that were remapped and ``data check`` prints them.
An image whose real size differs from its annotated Height/Width with the same aspect ratio (a
resized copy) gets its masks scaled to it (a counted warning); any other size is an error naming
the image, in :func:`check` and :func:`load_example` alike.

``EncodedPixels`` is Kaggle run-length encoding (:mod:`kerasmt.rle`: "start length" pairs,
1-indexed, column-major). ``ClassId`` is ``"<category>"`` or ``"<category>_<attr>_<attr>..."``.
Both readers return the same *segment manifest*, one row per segment (instance mask):
``image_id, file, path, height, width, class_id, attributes, rle, area, source``.

The report's preprocessing (section 4.2) is here too: :func:`reduce_labels` (drop attributes, drop
the 18 garment parts/closures/decorations, keep the ``base`` 5 or ``full`` 11 classes with
remapped ids), :func:`holdout_split` (1,000 test images), :func:`letterbox_image` /
:func:`letterbox_mask` (512x512, aspect kept, zero padding, masks identically),
:func:`normalize` (COCO mean pixel) and :func:`augment_example` (flip on images and masks;
brightness, blur or noise on images only).
"""
from __future__ import annotations

import json
import math
import os
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from kerasmt.datasets.base import COMPLETE_MARKER, DatasetError, note, read_csv_checked, regular_file_problem, reuse_synthetic, synthetic_writer, warning  # noqa: F401  (COMPLETE_MARKER re-exported)
from kerasmt.datasets.base import check_distinct, copy_distinct
from kerasmt.rle import RLEError, check_fits, parse_rle, rle_decode, rle_encode, segmentation_to_rle

# ------------------------------------------------------------------------------------ ontology
#: the 46 iMaterialist 2019 / Fashionpedia categories; the list position is the category id
CATEGORIES: tuple[str, ...] = (
    "shirt, blouse", "top, t-shirt, sweatshirt", "sweater", "cardigan", "jacket", "vest", "pants",
    "shorts", "skirt", "coat", "dress", "jumpsuit", "cape", "glasses", "hat",
    "headband, head covering, hair accessory", "tie", "glove", "watch", "belt", "leg warmer",
    "tights, stockings", "sock", "shoe", "bag, wallet", "scarf", "umbrella", "hood", "collar",
    "lapel", "epaulette", "sleeve", "pocket", "neckline", "buckle", "zipper", "applique", "bead",
    "bow", "flower", "fringe", "ribbon", "rivet", "ruffle", "sequin", "tassel",
)
#: category id -> supercategory (report Table 4: 12 supercategories)
SUPERCATEGORIES: tuple[str, ...] = (
    *["upperbody"] * 6, *["lowerbody"] * 3, *["wholebody"] * 4, *["head"] * 3, "neck",
    *["arms and hands"] * 2, "waist", *["legs and feet"] * 4, *["others"] * 3,
    *["garment parts"] * 7, *["closures"] * 2, *["decorations"] * 10,
)
#: the 18 garment parts, closures and decorations the report drops (section 4.2.1; ``hood`` is
#: a garment part in label_descriptions.json but the report keeps it among the 28 "complete items")
DROPPED_PARTS: tuple[int, ...] = tuple(range(28, 46))
#: report Table 5: label set -> kept category ids; the position is the remapped class id
LABEL_SETS: dict[str, tuple[int, ...]] = {
    "base": (1, 4, 6, 10, 23),
    "full": (0, 1, 2, 4, 6, 8, 10, 16, 23, 24, 26),
}
#: short display names of the kept classes
SHORT_NAMES: dict[int, str] = {0: "shirt", 1: "top", 2: "sweater", 4: "jacket", 6: "pants", 8: "skirt",
                               10: "dress", 16: "tie", 23: "shoe", 24: "bag", 26: "umbrella"}
#: the 92 fine-grained attributes of the genuine iMaterialist 2019 label_descriptions.json, in id
#: order, as (supercategory, names) runs ("textile pattern" has two runs there). The reader drops
#: attributes (report 4.2.1), so only their ids matter to it.
ATTRIBUTE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("length", ("above-the-hip (length)", "hip (length)", "micro (length)", "mini (length)",
        "above-the-knee (length)", "knee (length)", "below the knee (length)", "midi", "maxi (length)",
        "floor (length)")),
    ("opening type", ("single breasted", "double breasted", "lace up", "wrapping", "zip-up",
        "fly (opening)", "buckled (opening)", "toggled (opening)", "no opening")),
    ("silhouette", ("asymmetrical", "symmetrical", "peplum", "circle", "flare", "fit and flare", "trumpet",
        "mermaid", "balloon", "bell", "bell bottom", "bootcut", "peg", "pencil", "straight", "a-line",
        "tent", "baggy", "wide leg", "high low", "curved (fit)", "tight (fit)", "regular (fit)",
        "loose (fit)", "oversized")),
    ("textile finishing, manufacturing techniques", ("burnout", "distressed", "washed", "embossed",
        "frayed", "printed", "ruched", "quilted", "pleat", "gathering", "smocking", "tiered", "cutout",
        "slit", "perforated", "lining", "no special manufacturing technique")),
    ("textile pattern", ("plain (pattern)", "abstract", "cartoon", "letters, numbers", "camouflage",
        "check", "dot", "fair isle", "floral", "geometric", "paisley", "stripe", "houndstooth (pattern)",
        "herringbone (pattern)", "chevron", "argyle")),
    ("animal", ("leopard", "snakeskin (pattern)", "cheetah", "peacock", "zebra", "giraffe")),
    ("textile pattern", ("toile de jouy", "plant")),
    ("waistline", ("empire waistline", "dropped waistline", "high waist", "normal waist", "low waist",
        "basque (wasitline)", "no waistline")),
)
N_ATTRIBUTES = sum(len(names) for _, names in ATTRIBUTE_GROUPS)
#: COCO mean pixel (RGB) the report subtracts (section 4.2.4)
MEAN_PIXEL: tuple[float, float, float] = (123.7, 116.8, 103.9)
#: the report's input size (section 4.2.2)
IMAGE_SIZE = 512
#: images the report held out as test set M_test (section 5.1)
N_TEST = 1000

CSV_FILE = "train.csv"
LABEL_FILE = "label_descriptions.json"
IMAGE_DIR = "train"
REQUIRED_COLUMNS: tuple[str, ...] = ("ImageId", "EncodedPixels", "Height", "Width", "ClassId")
#: Fashionpedia split -> (annotation file, image folder)
FASHIONPEDIA_FILES: dict[str, tuple[str, str]] = {
    "train": ("instances_attributes_train2020.json", "train"),
    "val": ("instances_attributes_val2020.json", "test"),
}
MANIFEST_COLUMNS = ("image_id", "file", "path", "height", "width", "class_id", "attributes", "rle", "area", "source")

DOWNLOAD_HELP = """iMaterialist (Fashion) 2019 at FGVC6 is on Kaggle (accept the competition rules first):
    kaggle competitions download -c imaterialist-fashion-2019-FGVC6
and unzip it so that train.csv, label_descriptions.json and train/ sit in one folder.
Fashionpedia (CC BY 4.0): https://fashionpedia.github.io/home/ (instances_attributes_*2020.json and
the train/ and test/ image folders). See data/fashion/README.md."""


def class_names(label_set: str = "full", short: bool = False) -> list[str]:
    """Names of a label set's classes in remapped-id order (report Table 5)."""
    ids = _label_set(label_set)
    return [SHORT_NAMES[i] if short else CATEGORIES[i] for i in ids]


def _label_set(label_set: str) -> tuple[int, ...]:
    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label_set {label_set!r}; allowed: {sorted(LABEL_SETS)}")
    return LABEL_SETS[label_set]


def ontology() -> pd.DataFrame:
    """The 46 categories with supercategory, whether the report drops them, and their base/full ids."""
    rows = []
    for cid, name in enumerate(CATEGORIES):
        rows.append({
            "id": cid, "name": name, "supercategory": SUPERCATEGORIES[cid],
            "dropped_part": cid in DROPPED_PARTS,
            "base": LABEL_SETS["base"].index(cid) if cid in LABEL_SETS["base"] else None,
            "full": LABEL_SETS["full"].index(cid) if cid in LABEL_SETS["full"] else None,
        })
    frame = pd.DataFrame(rows).set_index("id")
    for column in ("base", "full"):
        frame[column] = frame[column].astype("Int64")
    return frame


#: where the genuine label_descriptions.json files a category under another supercategory than the
#: report's Table 4 (coat, dress, jumpsuit, cape and sleeve are "upperbody" there)
_LABEL_FILE_SUPERCATEGORIES: dict[int, str] = {9: "upperbody", 10: "upperbody", 11: "upperbody", 12: "upperbody",
                                               31: "upperbody"}


def label_descriptions() -> dict:
    """The content of ``label_descriptions.json`` (46 categories, 92 attributes), as in the genuine
    iMaterialist 2019 file (ids, names, supercategories and levels)."""
    attributes = []
    for group, names in ATTRIBUTE_GROUPS:
        for name in names:
            attributes.append({"id": len(attributes), "name": name, "supercategory": group,
                               "level": 2 if group == "animal" else 1})  # animal: a kind of textile pattern
    categories = [
        {"id": i, "name": name, "supercategory": _LABEL_FILE_SUPERCATEGORIES.get(i, SUPERCATEGORIES[i]), "level": 2}
        for i, name in enumerate(CATEGORIES)
    ]
    return {
        "info": {"year": 2019, "version": "1.0",
                 "description": "The 2019 FGVC^6 iMaterialist Competition - Fashion track dataset."},
        "categories": categories,
        "attributes": attributes,
    }


# --------------------------------------------------------------------------------------- reading
def _normal_name(name: Any) -> str:
    return " ".join(str(name).lower().split())


_CATEGORY_IDS: dict[str, int] = {_normal_name(name): i for i, name in enumerate(CATEGORIES)}


@dataclass(frozen=True)
class CategoryMapping:
    """How a file's category ids map onto :data:`CATEGORIES` (matched by name).

    ``ids``: file id -> our id for every category whose name is in the list; ``unknown``: file id
    -> name of the categories that are not (their segments are dropped); ``source``: the file."""

    ids: Mapping[int, int]
    unknown: Mapping[int, str]
    names: Mapping[int, str]
    source: str = ""

    @property
    def remapped(self) -> dict[int, int]:
        """The file ids whose id in :data:`CATEGORIES` differs (file id -> our id)."""
        return {k: v for k, v in self.ids.items() if k != v}

    def describe(self) -> str:
        """One line: which ids were remapped (by name) and which names are unknown."""
        parts = []
        if self.remapped:
            shown = ", ".join(f"{k} {self.names[k]!r} -> {v}" for k, v in sorted(self.remapped.items()))
            parts.append(f"{len(self.remapped)} category id(s) differ from the 46-category list and were "
                         f"mapped by name: {shown}")
        if self.unknown:
            parts.append(f"{len(self.unknown)} category name(s) not in the 46-category list: "
                         + ", ".join(f"{k} {v!r}" for k, v in sorted(self.unknown.items())))
        return f"{self.source}: " + "; ".join(parts) if parts else f"{self.source}: category ids as in the 46-category list"


def category_mapping(categories: Mapping[int, str], source: str = "") -> CategoryMapping:
    """Map a file's ``{id: name}`` categories onto :data:`CATEGORIES` by name (case and spacing
    ignored). Raises :class:`DatasetError` when two file ids carry the same known name."""
    ids: dict[int, int] = {}
    unknown: dict[int, str] = {}
    owner: dict[int, int] = {}
    for cid, name in categories.items():
        ours = _CATEGORY_IDS.get(_normal_name(name))
        if ours is None:
            unknown[cid] = str(name)
            continue
        if ours in owner:
            raise DatasetError(f"{source}: categories {owner[ours]} and {cid} are both named {name!r}")
        owner[ours] = cid
        ids[cid] = ours
    return CategoryMapping(ids, unknown, dict(categories), source)


def _warn_unknown_categories(mapping: CategoryMapping, counts: Mapping[int, int], where: Path) -> None:
    """One counted warning for the segments dropped because their category name is unknown."""
    if counts:
        total = sum(counts.values())
        shown = ", ".join(f"{mapping.unknown[k]!r} (id {k}): {n}" for k, n in sorted(counts.items()))
        warnings.warn(f"{where}: dropped {total} segment(s) of {len(counts)} categor(ies) not in the "
                      f"46-category list: {shown}", stacklevel=3)


def _read_categories(path: Path) -> dict[int, str]:
    """``{id: name}`` of a label_descriptions.json / COCO ``categories`` list."""
    bad = regular_file_problem(path)
    if bad:
        raise DatasetError(bad)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot be read as JSON ({exc})") from exc
    cats = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(cats, list) or not cats:
        raise DatasetError(f"{path}: no 'categories' list; expected {{'categories': [{{'id': 0, 'name': ...}}, ...]}}")
    out = {}
    for i, cat in enumerate(cats):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise DatasetError(f"{path}: categories[{i}] needs 'id' and 'name', got {cat!r}")
        out[int(cat["id"])] = str(cat["name"])
    return out


def _parse_class_id(text: Any) -> tuple[int, tuple[int, ...]]:
    """``"10_3_22"`` -> (10, (3, 22)); raises ValueError with a readable reason."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        raise ValueError("empty value")
    parts = str(text).strip().split("_")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"{text!r} is not '<category>' or '<category>_<attribute>_...' with integer ids") from None
    return values[0], tuple(values[1:])


def _native(value: Any) -> Any:
    """NumPy scalars as plain Python values (for readable messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _imaterialist_problems(frame: pd.DataFrame, csv: Path, categories: Mapping[int, str]) -> tuple[list[str], dict]:
    """Validate every row; returns (problems, parsed columns)."""
    problems: list[str] = []
    n = len(frame)
    class_ids = np.full(n, -1, dtype=np.int64)
    attributes: list[tuple[int, ...]] = [()] * n
    heights = pd.to_numeric(frame["Height"], errors="coerce").to_numpy()
    widths = pd.to_numeric(frame["Width"], errors="coerce").to_numpy()
    areas = np.zeros(n, dtype=np.int64)
    empty = np.zeros(n, dtype=bool)
    image_ids = frame["ImageId"].astype("string").str.strip()
    for i in range(n):
        where = f"{csv}: line {i + 2} (ImageId {image_ids.iloc[i]})"
        if pd.isna(image_ids.iloc[i]) or image_ids.iloc[i] == "":
            problems.append(f"{csv}: line {i + 2}: column 'ImageId': empty value")
            continue
        h, w = heights[i], widths[i]
        size_ok = True
        for column, value in (("Height", h), ("Width", w)):
            if not (np.isfinite(value) and value >= 1 and float(value).is_integer()):
                problems.append(f"{where}: column {column!r}: bad value {_native(frame[column].iloc[i])!r}; "
                                f"expected a positive integer")
                size_ok = False
        try:
            cid, attrs = _parse_class_id(frame["ClassId"].iloc[i])
            if cid not in categories:
                raise ValueError(f"unknown category id {cid}; label_descriptions.json has ids "
                                 f"{min(categories)}..{max(categories)}")
            class_ids[i], attributes[i] = cid, attrs
        except ValueError as exc:
            problems.append(f"{where}: column 'ClassId': {exc}")
        rle = frame["EncodedPixels"].iloc[i]
        if rle is None or (isinstance(rle, float) and math.isnan(rle)) or str(rle).strip() == "":
            empty[i] = True
            continue
        try:
            runs = parse_rle(str(rle))
            if size_ok:
                check_fits(runs, int(h), int(w))
            areas[i] = int(runs[:, 1].sum()) if len(runs) else 0
            empty[i] = areas[i] == 0
        except RLEError as exc:
            problems.append(f"{where}: column 'EncodedPixels': {exc}")
    # one size per image
    sizes = pd.DataFrame({"id": image_ids, "h": heights, "w": widths}).dropna()
    spread = sizes.groupby("id")[["h", "w"]].nunique()
    for image_id in spread.index[(spread["h"] > 1) | (spread["w"] > 1)]:
        lines = (np.flatnonzero((image_ids == image_id).fillna(False).to_numpy()) + 2).tolist()
        problems.append(f"{csv}: ImageId {image_id}: rows disagree on Height/Width (lines {lines[:10]})")
    return problems, {"class_id": class_ids, "attributes": attributes, "area": areas, "empty": empty,
                      "height": heights, "width": widths, "image_id": image_ids}


def _warn_dropped(what: str, lines: Sequence[int], where: Path) -> None:
    if len(lines):
        shown = ", ".join(map(str, lines[:10])) + (" ..." if len(lines) > 10 else "")
        warnings.warn(f"{where}: dropped {len(lines)} {what} (lines {shown})", stacklevel=3)


def load_imaterialist(root: str | os.PathLike, check_files: bool = True) -> pd.DataFrame:
    """Segment manifest of iMaterialist 2019 (``train.csv`` + ``label_descriptions.json``).

    Every row is validated; all problems (bad RLE, a run past the image, an unknown or malformed
    ``ClassId``, bad sizes, rows of one image disagreeing on its size, missing image files) are
    raised together in one :class:`DatasetError`, each naming the CSV line (header = line 1),
    the ImageId and the column. Rows with an empty ``EncodedPixels`` and exact duplicate rows are
    dropped with one counted warning each.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found (expected {CSV_FILE}, {LABEL_FILE} and {IMAGE_DIR}/)")
    labels = root / LABEL_FILE
    categories = _read_categories(labels) if os.path.lexists(labels) else dict(enumerate(CATEGORIES))
    mapping = category_mapping(categories, str(labels if os.path.lexists(labels) else CSV_FILE))
    csv = root / CSV_FILE
    frame = read_csv_checked(csv, REQUIRED_COLUMNS)
    problems, parsed = _imaterialist_problems(frame, csv, categories)
    if problems:
        raise DatasetError(f"{csv}: {len(problems)} problem(s)", problems=problems)
    lines = np.arange(len(frame)) + 2
    duplicate = frame.duplicated(keep="first").to_numpy()
    _warn_dropped("row(s) with an empty EncodedPixels", lines[parsed["empty"]].tolist(), csv)
    _warn_dropped("duplicate row(s)", lines[duplicate & ~parsed["empty"]].tolist(), csv)
    keep = ~parsed["empty"] & ~duplicate
    unknown = np.isin(parsed["class_id"], list(mapping.unknown)) & keep
    _warn_unknown_categories(mapping, pd.Series(parsed["class_id"][unknown]).value_counts().to_dict(), csv)
    keep &= ~unknown
    class_ids = np.array([mapping.ids.get(int(c), -1) for c in parsed["class_id"]], dtype=np.int64)
    image_ids = np.array([image_stem(i) for i in parsed["image_id"].astype(str)], dtype=object)
    files = np.array([f"{IMAGE_DIR}/{image_file_name(i)}" for i in parsed["image_id"].astype(str)], dtype=object)
    out = pd.DataFrame({
        "image_id": image_ids,
        "file": files,
        "path": [str(root / f) for f in files],
        "height": parsed["height"].astype(np.int64),
        "width": parsed["width"].astype(np.int64),
        "class_id": class_ids,
        "attributes": parsed["attributes"],
        "rle": frame["EncodedPixels"].astype(str).str.strip().to_numpy(dtype=object),
        "area": parsed["area"],
        "source": [f"{CSV_FILE}:{line}" for line in lines],
    })[keep].reset_index(drop=True)
    if out.empty:
        raise DatasetError(f"{csv}: no usable segment ({len(frame)} row(s): {int(parsed['empty'].sum())} with an "
                           f"empty EncodedPixels, {int(unknown.sum())} of categories not in the 46-category list)")
    out.attrs["category_mapping"] = mapping
    if check_files:
        _check_image_files(out, csv)
    return out


#: image file endings an ``ImageId`` may already carry (iMaterialist 2019: ``<hash>.jpg``)
_IMAGE_ENDINGS: tuple[str, ...] = (".jpg", ".jpeg", ".png")


def image_file_name(image_id: str) -> str:
    """The file of an ``ImageId`` in ``train/``: 2019 ids already end in ``.jpg`` (kept), 2020
    ids are bare (``.jpg`` appended)."""
    image_id = str(image_id).strip()
    return image_id if image_id.lower().endswith(_IMAGE_ENDINGS) else f"{image_id}.jpg"


def image_stem(image_id: str) -> str:
    """An ``ImageId`` without its image ending, so 2019 and 2020 ids of an image agree."""
    image_id = str(image_id).strip()
    return image_id.rsplit(".", 1)[0] if image_id.lower().endswith(_IMAGE_ENDINGS) else image_id


def _check_image_files(manifest: pd.DataFrame, listed_in: Path) -> None:
    first = manifest.drop_duplicates("image_id")
    bad = [(row, regular_file_problem(row.path, "image")) for row in first.itertuples()]
    bad = [(row, why) for row, why in bad if why]
    if bad:
        absent = sum(not os.path.lexists(row.path) for row, _ in bad)
        raise DatasetError(
            f"{listed_in}: {len(bad)} of {len(first)} listed image(s) not found"
            + (f" or not regular files ({len(bad) - absent} of them)" if absent < len(bad) else ""),
            problems=[f"{row.source}: ImageId {row.image_id}: {row.path}" + ("" if not os.path.lexists(row.path) else f" ({why.rsplit(': ', 1)[-1]})")
                      for row, why in bad],
        )


def load_coco(annotations: str | os.PathLike, image_dir: str | os.PathLike, check_files: bool = True) -> pd.DataFrame:
    """Segment manifest of a COCO-style instance file (Fashionpedia), same columns as
    :func:`load_imaterialist`; masks are converted to Kaggle RLE (``rle``).

    Errors (raised together, naming ``annotations[i]`` and its id): unknown image or category
    ids, malformed segmentations, masks that do not fit their image. Annotations with an empty
    segmentation are dropped with one counted warning.
    """
    annotations, image_dir = Path(annotations), Path(image_dir)
    bad = regular_file_problem(annotations, "annotation file")
    if bad:
        raise DatasetError(bad)
    try:
        data = json.loads(annotations.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{annotations}: cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{annotations}: expected a COCO instances file (a JSON object), got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{annotations}: missing list {key!r}; expected a COCO instances file")
    categories = {}
    for i, c in enumerate(data["categories"]):
        try:
            categories[int(c["id"])] = str(c["name"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{annotations}: categories[{i}] needs an integer 'id' and a 'name', got {c!r}") from exc
    mapping = category_mapping(categories, str(annotations))
    unknown_counts: dict[int, int] = {}
    images = {}
    problems: list[str] = []
    for i, img in enumerate(data["images"]):
        try:
            images[int(img["id"])] = (str(img["file_name"]), int(img["height"]), int(img["width"]))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{annotations}: images[{i}]: needs id, file_name, height, width ({exc})")
    rows, empty = [], []
    for i, ann in enumerate(data["annotations"]):
        where = f"{annotations}: annotations[{i}] (id {ann.get('id')})"
        image_id = ann.get("image_id")
        if image_id not in images:
            problems.append(f"{where}: unknown image_id {image_id!r}")
            continue
        cid = ann.get("category_id")
        if cid not in categories:
            problems.append(f"{where}: unknown category_id {cid!r}; categories have ids "
                            f"{min(categories)}..{max(categories)}")
            continue
        if cid in mapping.unknown:
            unknown_counts[cid] = unknown_counts.get(cid, 0) + 1
            continue
        file_name, h, w = images[image_id]
        seg = ann.get("segmentation")
        if not seg:
            empty.append(i)
            continue
        try:
            rle = segmentation_to_rle(seg, h, w)
        except RLEError as exc:
            problems.append(f"{where}: segmentation: {exc}")
            continue
        if not rle:
            empty.append(i)
            continue
        runs = parse_rle(rle)
        rows.append({
            "image_id": str(image_id), "file": file_name, "path": str(image_dir / file_name),
            "height": h, "width": w, "class_id": mapping.ids[cid],
            "attributes": tuple(int(a) for a in ann.get("attribute_ids", []) or ()),
            "rle": rle, "area": int(runs[:, 1].sum()), "source": f"{annotations.name}:annotations[{i}]",
        })
    if problems:
        raise DatasetError(f"{annotations}: {len(problems)} problem(s)", problems=problems)
    if empty:
        warnings.warn(f"{annotations}: dropped {len(empty)} annotation(s) with an empty segmentation "
                      f"(indices {empty[:10]}{' ...' if len(empty) > 10 else ''})", stacklevel=2)
    _warn_unknown_categories(mapping, unknown_counts, annotations)
    out = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    for column in ("height", "width", "class_id", "area"):
        out[column] = out[column].astype(np.int64)
    if out.empty:
        raise DatasetError(f"{annotations}: no usable annotation ({len(data['annotations'])} annotation(s), "
                           f"{len(data['images'])} image(s): {len(empty)} with an empty segmentation, "
                           f"{sum(unknown_counts.values())} of categories not in the 46-category list)")
    out.attrs["category_mapping"] = mapping
    if check_files:
        _check_image_files(out, annotations)
    return out


def detect_format(root: str | os.PathLike) -> str:
    """``"imaterialist"`` (train.csv) or ``"fashionpedia"`` (instances_attributes_*.json)."""
    root = Path(root)
    if os.path.lexists(root / CSV_FILE):  # not only regular files: the reader then says what it is
        return "imaterialist"
    if any(os.path.lexists(root / f) for f, _ in FASHIONPEDIA_FILES.values()):
        return "fashionpedia"
    raise DatasetError(
        f"{root}: neither an iMaterialist 2019 folder ({CSV_FILE}) nor a Fashionpedia folder "
        f"({', '.join(f for f, _ in FASHIONPEDIA_FILES.values())})"
    )


def load(root: str | os.PathLike, split: str = "train", check_files: bool = True) -> pd.DataFrame:
    """Segment manifest of an iMaterialist 2019 or Fashionpedia folder (detected from its files).

    iMaterialist has annotations for ``split="train"`` only (the report's test set is held out
    from it, :func:`holdout_split`); Fashionpedia has ``"train"`` and ``"val"``.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found\n{DOWNLOAD_HELP}")
    kind = detect_format(root)
    if kind == "imaterialist":
        if split != "train":
            raise ValueError(f"iMaterialist 2019 has annotations for split 'train' only, got {split!r}")
        return load_imaterialist(root, check_files)
    if split not in FASHIONPEDIA_FILES:
        raise ValueError(f"unknown Fashionpedia split {split!r}; allowed: {sorted(FASHIONPEDIA_FILES)}")
    name, folder = FASHIONPEDIA_FILES[split]
    return load_coco(root / name, root / folder, check_files)


def _oriented_size(path: str) -> tuple[int, int]:
    """``(height, width)`` of an image as decoders show it (EXIF orientations 5-8 swap the sides);
    reads the header only. Raises :class:`DatasetError` for a file that is not a regular file."""
    from PIL import Image

    bad = regular_file_problem(path, "image")
    if bad:
        raise DatasetError(bad)
    with Image.open(path) as img:
        w, h = img.size
        try:
            orientation = img.getexif().get(0x0112, 1)
        except Exception:  # noqa: BLE001 - a broken EXIF block: no orientation
            orientation = 1
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def size_mismatch(real: tuple[int, int], annotated: tuple[int, int]) -> str | None:
    """How an image's real ``(height, width)`` relates to its annotated one: None (equal),
    ``"scaled"`` (the same aspect ratio up to rounding: a resized copy, masks are scaled with it)
    or ``"different"`` (masks cannot be placed on it)."""
    (h, w), (ah, aw) = real, annotated
    if (h, w) == (ah, aw):
        return None
    # a resize by some factor f rounds each side by at most 1 pixel: |h - f ah| <= 1, |w - f aw| <= 1
    low = max((h - 1) / ah, (w - 1) / aw)
    high = min((h + 1) / ah, (w + 1) / aw)
    return "scaled" if low <= high else "different"


def _size_message(path: str, real: tuple[int, int], annotated: tuple[int, int], source: str, kind: str) -> str:
    text = f"{path}: image is {real[0]}x{real[1]} (HxW) but {source} says {annotated[0]}x{annotated[1]}"
    if kind == "scaled":
        return text + "; same aspect ratio (a resized copy): its masks are scaled to the image"
    return text + "; a different aspect ratio: the masks cannot be placed on this image (not the annotated image?)"


def check(root: str | os.PathLike, decode: bool = True) -> list[str]:
    """Every finding in a dataset folder (see :mod:`kerasmt.datasets.base`).

    Errors: everything :func:`load` refuses (each problem it lists), images that cannot be decoded
    or are not regular files and images whose size differs from the annotations with another
    aspect ratio. Warnings: what :func:`load` drops or changes with a counted warning (empty or
    duplicate rows, categories not in the 46-category list) and, with ``decode``, images that are
    resized copies of the annotated size (masks are scaled). A note gives the category ids that
    were mapped by name when they differ from the 46-category list.
    """
    root = Path(root).expanduser().resolve()
    try:
        kind = detect_format(root) if root.is_dir() else None
    except DatasetError as exc:
        return [str(exc)]
    splits = ["train"] if kind != "fashionpedia" else \
        [s for s, (name, _) in FASHIONPEDIA_FILES.items() if os.path.lexists(root / name)]
    findings: list[str] = []
    manifests = []
    for split in splits:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                part = load(root, split=split, check_files=True)
        except DatasetError as exc:
            findings += exc.problems or [str(exc)]
            continue
        findings += [warning(str(w.message)) for w in caught if issubclass(w.category, UserWarning)]
        mapping = part.attrs.get("category_mapping")
        if mapping is not None and (mapping.remapped or mapping.unknown):
            findings.append(note(mapping.describe()))
        manifests.append(part)
    if not decode or not manifests:
        return findings
    manifest = pd.concat(manifests, ignore_index=True)
    from kerasmt.images import probe_image

    first = manifest.drop_duplicates("path")

    def _probe(row) -> str | None:
        bad = regular_file_problem(row.path, "image")
        if bad:
            return bad
        error, size = probe_image(row.path)  # every format, decoded upright (EXIF orientation applied)
        if error:
            return f"{row.path}: cannot decode image ({error})"
        real = (size[1], size[0])
        kind = size_mismatch(real, (row.height, row.width))
        if kind is None:
            return None
        message = _size_message(row.path, real, (row.height, row.width), row.source, kind)
        return warning(message) if kind == "scaled" else message

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        findings += [p for p in pool.map(_probe, first.itertuples()) if p]
    return findings


# -------------------------------------------------------------------------------- label reduction
def reduce_labels(segments: pd.DataFrame, label_set: str = "full") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The report's label reduction (section 4.2.1) and the counts after each step.

    1. drop attributes (``attributes`` emptied; counts unchanged);
    2. drop the 18 garment parts, closures and decorations (:data:`DROPPED_PARTS`);
    3. keep the ``label_set`` classes (:data:`LABEL_SETS`, report Table 5) and add ``label``, the
       remapped id (0..k-1), and ``category``. Images left without a segment drop out.

    Returns ``(segments, steps)`` where ``steps`` has ``images`` and ``segments`` per step.
    """
    keep_ids = _label_set(label_set)
    steps = [("all", segments)]
    no_attrs = segments.assign(attributes=[()] * len(segments))
    steps.append(("drop attributes", no_attrs))
    no_parts = no_attrs[~no_attrs["class_id"].isin(DROPPED_PARTS)]
    steps.append(("drop 18 garment parts", no_parts))
    kept = no_parts[no_parts["class_id"].isin(keep_ids)].copy()
    remap = {cid: i for i, cid in enumerate(keep_ids)}
    kept["label"] = kept["class_id"].map(remap).astype(np.int64)
    kept["category"] = kept["class_id"].map(lambda c: CATEGORIES[c])
    steps.append((f"keep {label_set} set ({len(keep_ids)} classes)", kept))
    table = pd.DataFrame(
        [{"step": name, "images": int(frame["image_id"].nunique()), "segments": len(frame)} for name, frame in steps]
    ).set_index("step")
    return kept.reset_index(drop=True), table


def segment_counts(segments: pd.DataFrame) -> pd.Series:
    """Segments per category (all 46, zeros included), indexed by category name (report Figure 12)."""
    counts = np.bincount(segments["class_id"].to_numpy(dtype=np.int64), minlength=len(CATEGORIES))
    return pd.Series(counts[: len(CATEGORIES)], index=pd.Index(CATEGORIES, name="category"), name="segments")


def image_table(segments: pd.DataFrame) -> pd.DataFrame:
    """One row per image of a reduced manifest: ``image_id, file, path, height, width,
    n_segments, labels`` (sorted tuple of the remapped class ids present), in first-seen order."""
    if "label" not in segments.columns:
        raise KeyError("image_table needs a reduced manifest (column 'label'); call reduce_labels first")
    grouped = segments.groupby("image_id", sort=False)
    first = grouped.first()
    out = pd.DataFrame({
        "image_id": first.index.astype(str),
        "file": first["file"].to_numpy(),
        "path": first["path"].to_numpy(),
        "height": first["height"].to_numpy(dtype=np.int64),
        "width": first["width"].to_numpy(dtype=np.int64),
        "n_segments": grouped.size().to_numpy(dtype=np.int64),
        "labels": grouped["label"].agg(lambda s: tuple(sorted(set(int(v) for v in s)))).to_numpy(),
    })
    return out.reset_index(drop=True)


def multi_hot(images: pd.DataFrame, n_classes: int) -> np.ndarray:
    """``(n_images, n_classes)`` 0/1 matrix of the classes present per image (column ``labels``)."""
    out = np.zeros((len(images), n_classes), dtype=np.int32)
    for i, labels in enumerate(images["labels"]):
        out[i, list(labels)] = 1
    return out


def holdout_split(images: pd.DataFrame, n_test: int = N_TEST, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The report's hold-out: ``n_test`` random images as test set M_test, the rest for training."""
    if not 0 < n_test < len(images):
        raise ValueError(f"n_test must be between 1 and {len(images) - 1} (the dataset has {len(images)} images), got {n_test}")
    order = np.random.default_rng(seed).permutation(len(images))
    test = np.sort(order[:n_test])
    train = np.sort(order[n_test:])
    return images.iloc[train].reset_index(drop=True), images.iloc[test].reset_index(drop=True)


# ---------------------------------------------------------------------------------- preprocessing
@dataclass(frozen=True)
class Letterbox:
    """Where an image lands in the square canvas: scaled to ``new_h x new_w`` at ``(top, left)``."""

    size: int
    height: int
    width: int
    new_h: int
    new_w: int
    top: int
    left: int

    @property
    def scale(self) -> float:
        return self.new_h / self.height


def letterbox_geometry(height: int, width: int, size: int = IMAGE_SIZE) -> Letterbox:
    """Fit ``height x width`` into ``size x size`` keeping the aspect ratio, centred (the same
    geometry as ``tf.image.resize_with_pad`` and :func:`kerasmt.pipeline.decode_image` with
    ``resize="pad"``)."""
    ratio = max(width / size, height / size)
    new_h = max(1, int(height / ratio))
    new_w = max(1, int(width / ratio))
    return Letterbox(int(size), int(height), int(width), new_h, new_w, (size - new_h) // 2, (size - new_w) // 2)


def letterbox_image(image: Any, size: int = IMAGE_SIZE, source_size: tuple[int, int] | None = None) -> np.ndarray:
    """RGB image (PIL image or uint8 array) -> ``uint8 (size, size, 3)``, aspect kept, zero padding.

    ``source_size`` ``(height, width)``: the size the geometry is computed from when ``image`` was
    decoded smaller (JPEG draft mode), so that masks of the original size stay aligned."""
    from PIL import Image

    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    img = img.convert("RGB")
    h, w = source_size if source_size is not None else (img.height, img.width)
    box = letterbox_geometry(h, w, size)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    resized = img.resize((box.new_w, box.new_h), Image.BILINEAR, reducing_gap=2.0)
    out[box.top:box.top + box.new_h, box.left:box.left + box.new_w] = np.asarray(resized)
    return out


def letterbox_mask(mask: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Binary or label mask ``(H, W)`` -> ``(size, size)`` with the geometry of
    :func:`letterbox_image` (nearest neighbour, zero padding), so masks stay aligned."""
    from PIL import Image

    mask = np.asarray(mask)
    box = letterbox_geometry(mask.shape[0], mask.shape[1], size)
    out = np.zeros((size, size), dtype=mask.dtype)
    resized = Image.fromarray(mask.astype(np.uint8)).resize((box.new_w, box.new_h), Image.NEAREST)
    out[box.top:box.top + box.new_h, box.left:box.left + box.new_w] = np.asarray(resized).astype(mask.dtype)
    return out


def normalize(images: np.ndarray, mean: Sequence[float] = MEAN_PIXEL) -> np.ndarray:
    """Mean-pixel normalisation (report 4.2.4): ``float32(images) - mean`` (RGB, 0..255 scale)."""
    return np.asarray(images, dtype=np.float32) - np.asarray(mean, dtype=np.float32)


def _open_rgb(path: str, size: int):
    from kerasmt.images import open_image

    # every format, upright; a JPEG much larger than size is decoded at a reduced DCT scale;
    # errors (truncated, not an image) name the file
    return open_image(path, "RGB", draft_size=(size, size))


@dataclass
class Example:
    """One letterboxed image with its instances: ``image`` uint8 (S, S, 3), ``masks`` bool
    (k, S, S), ``labels`` int (k,)."""

    image: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    dropped: int = 0
    rescaled: bool = False  # the image is a resized copy of its annotated size; masks were scaled


def load_example(image: pd.Series | Mapping, segments: pd.DataFrame, size: int = IMAGE_SIZE) -> Example:
    """Decode one image and its (reduced) segments, letterboxed to ``size``. Masks are decoded at
    the original size and resized with the image's geometry; a mask that vanishes is dropped
    (counted in ``Example.dropped``)."""
    annotated = (int(image["height"]), int(image["width"]))
    real = _oriented_size(image["path"])
    kind = size_mismatch(real, annotated)
    if kind == "different":
        raise DatasetError(_size_message(image["path"], real, annotated, "the annotation", kind))
    img = _open_rgb(image["path"], size)
    x = letterbox_image(img, size, source_size=annotated)  # a resized copy: masks scale with it
    masks, labels = [], []
    dropped = 0
    for rle, label in zip(segments["rle"], segments["label"]):
        m = letterbox_mask(rle_decode(rle, int(image["height"]), int(image["width"])), size)
        if m.any():
            masks.append(m.astype(bool))
            labels.append(int(label))
        else:
            dropped += 1
    masks_arr = np.stack(masks) if masks else np.zeros((0, size, size), dtype=bool)
    return Example(x, masks_arr, np.asarray(labels, dtype=np.int64), dropped, rescaled=kind == "scaled")


def semantic_map(masks: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Instance masks ``(k, H, W)`` -> ``uint8`` label map: 0 = background, ``label + 1`` inside a
    mask; where masks overlap, the smaller one is on top (a shoe over trousers, a tie over a shirt)."""
    masks = np.asarray(masks, dtype=bool)
    out = np.zeros(masks.shape[1:], dtype=np.uint8)
    order = np.argsort(-masks.reshape(len(masks), -1).sum(axis=1), kind="stable")
    for k in order:
        out[masks[k]] = int(labels[k]) + 1
    return out


@dataclass
class Decoded:
    """Letterboxed images of an image table, their semantic maps and instances."""

    images: np.ndarray  # uint8 (N, S, S, 3)
    semantic: np.ndarray  # uint8 (N, S, S); 0 = background, label + 1
    masks: list[np.ndarray]  # per image bool (k, S, S)
    labels: list[np.ndarray]  # per image int (k,)
    dropped: int  # segments that vanished at this size


def decode_examples(images: pd.DataFrame, segments: pd.DataFrame, size: int = IMAGE_SIZE,
                    keep_instances: bool = True, workers: int | None = None) -> Decoded:
    """:func:`load_example` for every row of ``images`` (threads), stacked; ``keep_instances=False``
    keeps only images and semantic maps (less memory for training sets)."""
    by_image = {k: v for k, v in segments.groupby("image_id", sort=False)}
    rows = [images.iloc[i] for i in range(len(images))]

    def _one(row):
        ex = load_example(row, by_image[row["image_id"]], size)
        return ex, semantic_map(ex.masks, ex.labels)

    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(_one, rows))
    x = np.zeros((len(rows), size, size, 3), dtype=np.uint8)
    sem = np.zeros((len(rows), size, size), dtype=np.uint8)
    masks, labels, dropped, rescaled = [], [], 0, []
    for i, (ex, s) in enumerate(results):
        x[i], sem[i] = ex.image, s
        dropped += ex.dropped
        if ex.rescaled:
            rescaled.append(str(rows[i]["path"]))
        if keep_instances:
            masks.append(ex.masks)
            labels.append(ex.labels)
    if dropped:
        warnings.warn(f"{dropped} segment(s) vanished when letterboxing to {size}px and were dropped", stacklevel=2)
    if rescaled:
        warnings.warn(f"{len(rescaled)} image(s) are resized copies of their annotated Height/Width (same aspect "
                      f"ratio); their masks were scaled to them: {', '.join(rescaled[:5])}"
                      f"{' ...' if len(rescaled) > 5 else ''}", stacklevel=2)
    return Decoded(x, sem, masks, labels, dropped)


# ----------------------------------------------------------------------------------- augmentation
#: the report's augmentation scheme (section 4.2.5)
AUGMENTATION: dict[str, float] = {
    "flip_p": 0.5,  # horizontal flip, images and masks
    "brightness_p": 0.5, "brightness": 40.0,  # add U(-40, 40) to all pixels (0..255 scale)
    "blur_or_noise_p": 0.5, "blur_sigma": 1.0, "noise_std": 0.05 * 255,  # one of blur / noise
}


def augment_example(image, mask, seed, flip_p: float = 0.5, brightness_p: float = 0.5,
                    blur_or_noise_p: float = 0.5, brightness: float = 40.0, blur_sigma: float = 1.0,
                    noise_std: float = 0.05 * 255, force: str | None = None):
    """The report's augmentation of one example with TensorFlow ops (usable in ``tf.data``).

    ``image``: float ``(H, W, 3)`` on the 0..255 scale; ``mask``: ``(H, W)`` label map (flipped
    with the image, never changed otherwise); ``seed``: a stateless seed pair (int32/int64 ``[2]``).
    With probability ``flip_p`` flip left-right; with ``brightness_p`` add one value from
    U(-brightness, brightness); with ``blur_or_noise_p`` either Gaussian blur (sigma from
    U(0, blur_sigma)) or additive Gaussian noise (std from U(0, noise_std), one value per pixel shared by
    the channels), half-half. The result
    is clipped to 0..255. ``force`` (``"flip"``, ``"brightness"``, ``"blur"``, ``"noise"``) applies
    exactly that one transform (for illustrations).
    """
    import tensorflow as tf

    image = tf.convert_to_tensor(image, tf.float32)
    mask = tf.convert_to_tensor(mask)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=8)
    u = lambda k, lo=0.0, hi=1.0: tf.random.stateless_uniform([], seeds[k], lo, hi)  # noqa: E731
    if force is not None and force not in {"flip", "brightness", "blur", "noise"}:
        raise ValueError(f"force must be None, 'flip', 'brightness', 'blur' or 'noise', got {force!r}")
    do_flip = tf.constant(force == "flip") if force else u(0) < flip_p
    do_bright = tf.constant(force == "brightness") if force else u(1) < brightness_p
    do_other = tf.constant(force in ("blur", "noise")) if force else u(2) < blur_or_noise_p
    use_blur = tf.constant(force == "blur") if force in ("blur", "noise") else u(3) < 0.5

    image = tf.cond(do_flip, lambda: tf.reverse(image, [1]), lambda: image)
    mask = tf.cond(do_flip, lambda: tf.reverse(mask, [1]), lambda: mask)
    delta = u(4, -brightness, brightness)
    image = tf.cond(do_bright, lambda: image + delta, lambda: image)

    def _blur():
        sigma = tf.maximum(u(5, 0.0, blur_sigma) if not force else tf.constant(blur_sigma), 1e-3)
        t = tf.range(-2.0, 3.0)
        k = tf.exp(-0.5 * tf.square(t / sigma))
        k = k / tf.reduce_sum(k)
        x = image[None]
        kx = tf.tile(tf.reshape(k, [1, 5, 1, 1]), [1, 1, 3, 1])
        ky = tf.tile(tf.reshape(k, [5, 1, 1, 1]), [1, 1, 3, 1])
        x = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC")
        x = tf.nn.depthwise_conv2d(x, kx, [1, 1, 1, 1], "VALID")
        x = tf.nn.depthwise_conv2d(x, ky, [1, 1, 1, 1], "VALID")
        return x[0]

    def _noise():
        std = u(6, 0.0, noise_std) if not force else tf.constant(noise_std)
        # per pixel, the same value on the 3 channels (imgaug's AdditiveGaussianNoise default, the
        # report's "sampled once per pixel")
        shape = tf.concat([tf.shape(image)[:-1], [1]], axis=0)
        return image + tf.random.stateless_normal(shape, seeds[7]) * std

    image = tf.cond(do_other, lambda: tf.cond(use_blur, _blur, _noise), lambda: image)
    return tf.clip_by_value(image, 0.0, 255.0), mask


# -------------------------------------------------------------------------------------- synthesis
#: class frequencies of the synthetic people (roughly the report's Appendix E test-set counts)
_PALETTE_SKIN = [(241, 194, 160), (224, 172, 130), (198, 134, 96), (160, 105, 70), (110, 72, 50), (80, 52, 38)]
_PALETTES: dict[str, list[tuple[int, int, int]]] = {
    "shirt": [(245, 245, 240), (200, 220, 245), (240, 210, 220), (220, 235, 210), (250, 240, 200)],
    "top": [(230, 60, 60), (60, 160, 80), (250, 250, 250), (40, 40, 45), (250, 200, 40), (90, 90, 220), (240, 130, 180)],
    "sweater": [(150, 40, 40), (200, 120, 40), (120, 90, 60), (100, 30, 80), (60, 90, 60), (180, 160, 120)],
    "jacket": [(30, 30, 35), (40, 50, 80), (90, 60, 40), (85, 90, 60), (110, 110, 115), (60, 40, 30)],
    "pants": [(40, 70, 130), (30, 40, 70), (25, 25, 30), (170, 150, 110), (90, 90, 95), (70, 100, 150)],
    "skirt": [(200, 40, 80), (30, 30, 30), (230, 200, 160), (60, 60, 140), (150, 200, 220), (120, 20, 40)],
    "dress": [(200, 30, 50), (20, 20, 25), (70, 130, 200), (240, 180, 200), (250, 250, 250), (60, 140, 90), (240, 200, 60)],
    "tie": [(170, 20, 30), (20, 30, 90), (60, 60, 60), (120, 20, 80)],
    "shoe": [(20, 20, 20), (245, 245, 245), (100, 60, 30), (160, 30, 30), (50, 50, 120)],
    "bag": [(120, 70, 30), (20, 20, 20), (170, 30, 40), (200, 170, 120), (90, 60, 90)],
    "umbrella": [(20, 20, 20), (200, 30, 30), (40, 90, 180), (240, 200, 40)],
    "other": [(200, 200, 200), (40, 40, 40), (150, 100, 60), (220, 180, 60), (90, 60, 130)],
}


def _rgb(rng: np.random.Generator, palette: str) -> tuple[int, int, int]:
    base = np.array(_PALETTES[palette][int(rng.integers(len(_PALETTES[palette])))], float)
    return tuple(int(v) for v in np.clip(base + rng.normal(0, 12, 3), 0, 255))


class _Canvas:
    """Draws shapes into per-item masks (full-image ``L`` images) and remembers z-order."""

    def __init__(self, width: int, height: int):
        from PIL import Image

        self.w, self.h = width, height
        self.items: list[dict] = []
        self._Image = Image

    def new(self, class_id: int, color, *, occludes: bool = True, texture: str | None = None,
            person: int = 0, attributes: Sequence[int] = ()) -> dict:
        from PIL import ImageDraw

        mask = self._Image.new("L", (self.w, self.h), 0)
        item = {"class_id": class_id, "mask": mask, "draw": ImageDraw.Draw(mask), "color": color,
                "occludes": occludes, "texture": texture, "person": person, "attributes": tuple(attributes)}
        self.items.append(item)
        return item


def _person(canvas: _Canvas, rng: np.random.Generator, cx: float, top: float, P: float, index: int) -> None:
    """Draw one person (skin + garments) into ``canvas``; ``P`` is the person height in pixels."""
    skin = _PALETTE_SKIN[int(rng.integers(len(_PALETTE_SKIN)))]
    sh_y, waist_y, hip_y = top + 0.17 * P, top + 0.44 * P, top + 0.52 * P
    knee_y, ankle_y = top + 0.72 * P, top + 0.93 * P
    sh_w, waist_w, hip_w = 0.13 * P, 0.095 * P, 0.115 * P
    arm_w, leg_w = 0.045 * P, 0.06 * P
    head_r = 0.06 * P
    head_c = (cx, top + 0.075 * P)
    pose = rng.uniform(-0.05, 0.08)  # arms away from the body
    hand_y = top + 0.53 * P
    arms = [
        [(cx + s * sh_w, sh_y), (cx + s * (sh_w + pose * P + 0.03 * P), (sh_y + hand_y) / 2),
         (cx + s * (sh_w + 0.02 * P + pose * P * 1.5), hand_y)] for s in (-1, 1)
    ]
    leg_gap = rng.uniform(0.012, 0.03) * P
    legs = [
        [(cx + s * (leg_gap + leg_w / 2), hip_y), (cx + s * (leg_gap + leg_w / 2 + 0.01 * P), ankle_y)] for s in (-1, 1)
    ]

    def poly_arm(draw, arm, width, end_frac=1.0):
        (x0, y0), (x1, y1), (x2, y2) = arm
        pts = [(x0, y0), (x1, y1), (x2, y2)]
        if end_frac < 1.0:  # cut the arm (short sleeve)
            t = end_frac * 2
            if t <= 1:
                pts = [(x0, y0), (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)]
            else:
                t -= 1
                pts = [(x0, y0), (x1, y1), (x1 + (x2 - x1) * t, y1 + (y2 - y1) * t)]
        draw.line(pts, fill=255, width=int(width), joint="curve")
        r = width / 2
        for x, y in pts:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)

    def poly_leg(draw, leg, width, y_end):
        (x0, y0), (x1, y1) = leg
        t = (y_end - y0) / (y1 - y0)
        draw.polygon([(x0 - width / 2, y0), (x0 + width / 2, y0),
                      (x0 + (x1 - x0) * t + width / 2 * 0.9, y_end), (x0 + (x1 - x0) * t - width / 2 * 0.9, y_end)], fill=255)

    # body (skin): head, neck, arms, torso, legs; not an annotated item (class -1)
    body = canvas.new(-1, skin, person=index)
    d = body["draw"]
    d.ellipse([head_c[0] - head_r * 0.85, head_c[1] - head_r, head_c[0] + head_r * 0.85, head_c[1] + head_r], fill=255)
    d.rectangle([cx - 0.025 * P, head_c[1], cx + 0.025 * P, sh_y + 0.02 * P], fill=255)
    for arm in arms:
        poly_arm(d, arm, arm_w * 0.9)
    d.polygon([(cx - sh_w, sh_y), (cx + sh_w, sh_y), (cx + hip_w, hip_y), (cx - hip_w, hip_y)], fill=255)
    for leg in legs:
        poly_leg(d, leg, leg_w * 0.85, ankle_y)
    hair_color = rng.choice([[30, 20, 15], [80, 50, 30], [200, 170, 90], [15, 15, 15]])
    hair = canvas.new(-1, tuple(int(v) for v in hair_color), person=index)
    hair["draw"].pieslice([head_c[0] - head_r * 0.95, head_c[1] - head_r * 1.1, head_c[0] + head_r * 0.95,
                           head_c[1] + head_r * 0.9], 180, 360, fill=255)

    def attrs() -> tuple[int, ...]:
        if rng.random() >= 0.12:
            return ()
        return tuple(sorted(rng.choice(N_ATTRIBUTES, size=int(rng.integers(1, 4)), replace=False).tolist()))

    def sleeve_parts(arm_list, width, frac):
        for arm in arm_list:
            part = canvas.new(31, None, occludes=False, person=index)
            poly_arm(part["draw"], arm, width, frac)

    # lower body
    dress = rng.random() < 0.4
    lower = None
    if dress:
        color = _rgb(rng, "dress")
        item = canvas.new(10, color, texture=rng.choice(["plain", "dots", "floral"]), person=index, attributes=attrs())
        hem_y = knee_y + rng.uniform(-0.04, 0.1) * P
        flare = rng.uniform(0.04, 0.1) * P
        item["draw"].polygon([(cx - sh_w * 0.85, sh_y), (cx + sh_w * 0.85, sh_y), (cx + waist_w, waist_y),
                              (cx + hip_w + flare, hem_y), (cx - hip_w - flare, hem_y), (cx - waist_w, waist_y)], fill=255)
        sleeve = rng.choice([0.0, 0.3])
        if sleeve:
            for arm in arms:
                poly_arm(item["draw"], arm, arm_w, sleeve)
            sleeve_parts(arms, arm_w, sleeve)
        neck = canvas.new(33, None, occludes=False, person=index)
        neck["draw"].ellipse([cx - 0.04 * P, sh_y - 0.015 * P, cx + 0.04 * P, sh_y + 0.03 * P], fill=255)
    else:
        r = rng.random()
        lower = "pants" if r < 0.55 else "skirt" if r < 0.8 else "shorts"
        cid = {"pants": 6, "skirt": 8, "shorts": 7}[lower]
        item = canvas.new(cid, _rgb(rng, "pants" if lower != "skirt" else "skirt"), person=index, attributes=attrs())
        if lower == "skirt":
            hem_y = knee_y + rng.uniform(-0.08, 0.06) * P
            flare = rng.uniform(0.02, 0.08) * P
            item["draw"].polygon([(cx - waist_w, waist_y), (cx + waist_w, waist_y), (cx + hip_w + flare, hem_y),
                                  (cx - hip_w - flare, hem_y)], fill=255)
        else:
            end = ankle_y - 0.01 * P if lower == "pants" else top + 0.64 * P
            item["draw"].polygon([(cx - waist_w, waist_y), (cx + waist_w, waist_y), (cx + hip_w, hip_y),
                                  (cx - hip_w, hip_y)], fill=255)
            for leg in legs:
                poly_leg(item["draw"], leg, leg_w * (1.05 if lower == "pants" else 1.2), end)
            if rng.random() < 0.3:  # a pocket (garment part, overlaps the trousers)
                pocket = canvas.new(32, None, occludes=False, person=index)
                s = rng.choice([-1, 1])
                xa, xb = sorted((cx + s * 0.03 * P, cx + s * 0.09 * P))
                pocket["draw"].rectangle([xa, hip_y - 0.02 * P, xb, hip_y + 0.03 * P], fill=255)
        if rng.random() < 0.2:  # belt (dropped class)
            belt = canvas.new(19, _rgb(rng, "other"), person=index)
            belt["draw"].rectangle([cx - waist_w * 1.05, waist_y - 0.012 * P, cx + waist_w * 1.05,
                                    waist_y + 0.012 * P], fill=255)

    # upper body (over the lower body when no dress)
    shirt = False
    if not dress:
        r = rng.random()
        upper = "top" if r < 0.5 else "shirt" if r < 0.78 else "sweater"
        cid = {"top": 1, "shirt": 0, "sweater": 2}[upper]
        texture = {"top": rng.choice(["plain", "logo"]), "shirt": rng.choice(["plain", "stripes"]), "sweater": "knit"}[upper]
        item = canvas.new(cid, _rgb(rng, upper), texture=texture, person=index, attributes=attrs())
        hem = hip_y + (0.02 * P if upper != "top" else 0.0)
        item["draw"].polygon([(cx - sh_w * 1.02, sh_y - 0.01 * P), (cx + sh_w * 1.02, sh_y - 0.01 * P),
                              (cx + hip_w * 1.03, hem), (cx - hip_w * 1.03, hem)], fill=255)
        frac = 0.35 if upper == "top" else 0.97
        for arm in arms:
            poly_arm(item["draw"], arm, arm_w * 1.15, frac)
        sleeve_parts(arms, arm_w * 1.15, frac)
        neck = canvas.new(33, None, occludes=False, person=index)
        neck["draw"].ellipse([cx - 0.035 * P, sh_y - 0.02 * P, cx + 0.035 * P, sh_y + 0.02 * P], fill=255)
        if upper == "shirt":
            shirt = True
            collar = canvas.new(28, None, occludes=False, person=index)  # collar: a garment part
            collar["draw"].polygon([(cx - 0.045 * P, sh_y - 0.02 * P), (cx, sh_y + 0.03 * P), (cx + 0.045 * P, sh_y - 0.02 * P),
                                    (cx, sh_y + 0.005 * P)], fill=255)
    if rng.random() < (0.3 if not dress else 0.2):
        outer = 4 if rng.random() < 0.85 else 3  # jacket or (dropped) cardigan
        item = canvas.new(outer, _rgb(rng, "jacket"), person=index, attributes=attrs())
        gap = rng.uniform(0.015, 0.04) * P
        length = hip_y + rng.uniform(0.0, 0.08) * P
        for s in (-1, 1):
            item["draw"].polygon([(cx + s * gap, sh_y + 0.02 * P), (cx + s * sh_w * 1.1, sh_y - 0.015 * P),
                                  (cx + s * hip_w * 1.12, length), (cx + s * gap, length)], fill=255)
        for arm in arms:
            poly_arm(item["draw"], arm, arm_w * 1.3, 0.98)
        sleeve_parts(arms, arm_w * 1.3, 0.98)
        if rng.random() < 0.4:
            zipper = canvas.new(35, None, occludes=False, person=index)
            zipper["draw"].line([(cx - gap, sh_y + 0.03 * P), (cx - gap, length)], fill=255, width=max(1, int(0.006 * P)))
    if shirt and rng.random() < 0.35:
        tie = canvas.new(16, _rgb(rng, "tie"), person=index)
        tie["draw"].polygon([(cx - 0.012 * P, sh_y + 0.01 * P), (cx + 0.012 * P, sh_y + 0.01 * P),
                             (cx + 0.022 * P, sh_y + 0.2 * P), (cx, sh_y + 0.23 * P), (cx - 0.022 * P, sh_y + 0.2 * P)], fill=255)

    # shoes: two instances
    if rng.random() < 0.96:
        color = _rgb(rng, "shoe")
        for s, leg in zip((-1, 1), legs):
            (x0, y0), (x1, y1) = leg
            shoe = canvas.new(23, color, person=index)
            shoe["draw"].ellipse([x1 - 0.035 * P + s * 0.012 * P, y1 - 0.02 * P, x1 + 0.035 * P + s * 0.012 * P,
                                  y1 + 0.028 * P], fill=255)
    # accessories
    if rng.random() < 0.18:
        s = rng.choice([-1, 1])
        hx, hy = arms[0 if s < 0 else 1][2]
        bag = canvas.new(24, _rgb(rng, "bag"), person=index)
        bw, bh = rng.uniform(0.07, 0.11) * P, rng.uniform(0.06, 0.1) * P
        bag["draw"].rounded_rectangle([hx - bw / 2, hy + 0.01 * P, hx + bw / 2, hy + 0.01 * P + bh],
                                      radius=int(0.01 * P) + 1, fill=255)
        bag["draw"].arc([hx - bw / 3, hy - 0.03 * P, hx + bw / 3, hy + 0.03 * P], 180, 360, fill=255,
                        width=max(1, int(0.008 * P)))
    if rng.random() < 0.05:
        umb = canvas.new(26, _rgb(rng, "umbrella"), person=index)
        ux, uy, ur = cx + rng.uniform(-0.05, 0.05) * P, top - 0.02 * P, rng.uniform(0.16, 0.22) * P
        umb["draw"].pieslice([ux - ur, uy - ur * 0.6, ux + ur, uy + ur * 0.6], 180, 360, fill=255)
        umb["draw"].line([(ux, uy), (ux, uy + 0.25 * P)], fill=255, width=max(1, int(0.008 * P)))
    if rng.random() < 0.2:  # hat (dropped class)
        hat = canvas.new(14, _rgb(rng, "other"), person=index)
        hat["draw"].pieslice([head_c[0] - head_r, head_c[1] - head_r * 1.3, head_c[0] + head_r, head_c[1] + head_r * 0.2],
                             180, 360, fill=255)
        hat["draw"].rectangle([head_c[0] - head_r * 1.3, head_c[1] - head_r * 0.5, head_c[0] + head_r * 1.3,
                               head_c[1] - head_r * 0.35], fill=255)
    if rng.random() < 0.15:  # glasses (dropped class)
        glasses = canvas.new(13, (20, 20, 20), person=index)
        for s in (-1, 1):
            gx = head_c[0] + s * 0.3 * head_r
            glasses["draw"].ellipse([gx - 0.25 * head_r, head_c[1] - 0.2 * head_r, gx + 0.25 * head_r,
                                     head_c[1] + 0.15 * head_r], fill=255)


def _texture(region: np.ndarray, kind: str | None, color, rng: np.random.Generator) -> np.ndarray:
    """RGB fill of one item: its colour with shading and a class-typical texture."""
    h, w = region.shape
    base = np.empty((h, w, 3), np.float32)
    base[:] = color
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "knit":  # sweaters: horizontal ribs
        base *= (0.88 + 0.12 * (np.sin(yy * 1.3) > 0))[..., None]
    elif kind == "stripes":  # shirts: thin vertical stripes
        base *= (0.85 + 0.15 * (np.sin(xx * 0.9) > 0.6))[..., None]
    elif kind == "dots":
        base *= (1.0 - 0.3 * ((np.sin(xx * 0.7) * np.sin(yy * 0.7)) > 0.8))[..., None]
    elif kind == "floral":
        base += (40 * (np.sin(xx * 0.35 + np.cos(yy * 0.3) * 3) > 0.85))[..., None]
    return base


def _render(seed_seq: Sequence[int], height: int, width: int, n_people: int) -> tuple[bytes, list[dict]]:
    """JPEG bytes and visible instance masks of one synthetic image (deterministic in ``seed_seq``)."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(list(seed_seq))
    canvas = _Canvas(width, height)
    if n_people == 1:
        P = height * rng.uniform(0.78, 0.9)
        _person(canvas, rng, width * rng.uniform(0.4, 0.6), height * rng.uniform(0.04, 0.1), P, 0)
    else:
        for k in range(n_people):
            P = height * rng.uniform(0.7, 0.85)
            _person(canvas, rng, width * (0.27 + 0.46 * k) + rng.normal(0, 0.02 * width), height * rng.uniform(0.05, 0.12), P, k)

    # background: gradient, a few non-garment shapes, floor
    c0, c1 = rng.uniform(60, 235, 3), rng.uniform(60, 235, 3)
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    img = (c0 * (1 - t) + c1 * t).repeat(width, axis=1).astype(np.float32)
    bg = Image.new("L", (width, height), 0)
    from PIL import ImageDraw

    bd = ImageDraw.Draw(bg)
    for _ in range(int(rng.integers(1, 5))):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        bd.rectangle([x0, y0, x0 + rng.uniform(20, 120), y0 + rng.uniform(20, 160)], fill=int(rng.integers(1, 255)))
    shade = np.asarray(bg, np.float32)[..., None] / 255.0
    img = img * (1 - 0.35 * (shade > 0)) + rng.uniform(40, 220, 3) * 0.35 * (shade > 0)

    # paint items in z-order
    arrays = [np.asarray(it["mask"]) > 127 for it in canvas.items]
    for item, m in zip(canvas.items, arrays):
        if item["color"] is None or not m.any():
            continue
        ys, xs = np.nonzero(m)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        fill = _texture(m[y0:y1, x0:x1], item["texture"], item["color"], rng)
        # soft vertical shading inside the item
        fill *= np.linspace(1.08, 0.9, y1 - y0, dtype=np.float32)[:, None, None]
        region = img[y0:y1, x0:x1]
        sel = m[y0:y1, x0:x1]
        region[sel] = fill[sel]
        if item["texture"] == "logo":
            cy, cxx = (y0 + y1) // 2 - (y1 - y0) // 6, (x0 + x1) // 2
            r = max(2, (x1 - x0) // 10)
            yy, xx = np.ogrid[:height, :width]
            disc = ((yy - cy) ** 2 + (xx - cxx) ** 2 <= r * r) & m
            img[disc] = 255 - np.asarray(item["color"], np.float32)
    img += rng.normal(0, rng.uniform(2, 7), img.shape).astype(np.float32)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.3:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    buf = BytesIO()
    out.save(buf, format="JPEG", quality=int(rng.integers(80, 95)))

    # visible masks: an item loses the pixels of occluding items painted after it (a tie does not
    # cut its shirt; garment parts cut nothing and overlap their garment)
    segments = []
    ties: dict[int, np.ndarray] = {}
    for item, m in zip(canvas.items, arrays):
        if item["class_id"] == 16:
            ties[item["person"]] = ties.get(item["person"], np.zeros_like(m)) | m
    above = np.zeros((height, width), dtype=bool)
    for item, m in reversed(list(zip(canvas.items, arrays))):
        blocked = above
        if item["class_id"] in (0, 1, 2) and item["person"] in ties:  # a shirt keeps the pixels under its tie
            blocked = above & ~ties[item["person"]]
        visible = m & ~blocked
        if item["occludes"]:
            above |= m
        if item["class_id"] < 0 or visible.sum() < 4:
            continue
        segments.append({"class_id": item["class_id"], "mask": visible, "attributes": item["attributes"]})
    return buf.getvalue(), segments[::-1]


def _class_id_text(class_id: int, attributes: Iterable[int]) -> str:
    return "_".join(str(v) for v in (class_id, *attributes))


def _render_job(job: tuple[str, tuple[int, ...], int, int, int]) -> list[dict]:
    path, seed_seq, height, width, n_people = job
    data, segments = _render(seed_seq, height, width, n_people)
    Path(path).write_bytes(data)
    return [{"EncodedPixels": rle_encode(s["mask"]), "Height": height, "Width": width,
             "ClassId": _class_id_text(s["class_id"], s["attributes"])} for s in segments]


def synthesize(root: str | os.PathLike, n: int = 240, seed: int = 0, overwrite: bool = False,
               workers: int | None = None, distinct: int | None = None, image_scale: float = 1.0) -> Path:
    """Write a synthetic iMaterialist 2019 folder (``train.csv``, ``label_descriptions.json``,
    ``train/<ImageId>.jpg``) with ``n`` images and return ``root``.

    Each image shows one person (two in landscape images) on a cluttered background, wearing
    garments of the 11 ``full`` classes and some others (shorts, cardigan, belt, hat, glasses);
    instance masks overlap where the real annotations do (garment parts such as sleeves, necklines,
    collars, pockets and zippers on their garment; a tie on its shirt); every shoe is its own
    instance; about 12 % of garments (4 % of segments) carry attributes. Class is learnable from shape, position,
    texture and colour. Image sizes vary (portrait 300-420 x 200-330 px, some landscape), so
    letterboxing matters. Byte-identical for equal arguments; a complete folder made with the same
    arguments is reused; another non-empty folder is refused unless ``overwrite``.

    For scale and memory benchmarks: ``image_scale`` multiplies the image sides (2.5: 750-1050 x
    500-825 px, the real photos' 512-1024 px); ``distinct=K`` draws only K images and fills the
    rest with byte copies under new image ids (with the copied image's segments), so the real
    45,195 images are written in minutes.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    if not 0.25 <= float(image_scale) <= 4.0:
        raise ValueError(f"image_scale must be in [0.25, 4], got {image_scale}")
    root = Path(root).expanduser().resolve()
    params = {"n": int(n), "seed": int(seed), "generator": 1}
    distinct = check_distinct(distinct, n)
    if distinct is not None:
        params["distinct"] = distinct
    if float(image_scale) != 1.0:
        params["image_scale"] = float(image_scale)
    if reuse_synthetic(root, params, "fashion dataset", overwrite):
        return root
    rng = np.random.default_rng([int(seed), 7])
    jobs, ids = [], []
    with synthetic_writer(root, params) as tmp:
        (tmp / IMAGE_DIR).mkdir()
        for i in range(n):
            landscape = rng.random() < 0.15
            h, w = (int(rng.integers(260, 330)), int(rng.integers(380, 460))) if landscape else \
                (int(rng.integers(300, 421)), int(rng.integers(200, 331)))
            if image_scale != 1.0:
                h, w = int(round(h * image_scale)), int(round(w * image_scale))
            image_id = uuid.UUID(bytes=rng.bytes(16)).hex
            ids.append(image_id)
            jobs.append((str(tmp / IMAGE_DIR / f"{image_id}.jpg"), (int(seed), 1, i), h, w, 2 if landscape else 1))
        drawn = n if distinct is None else distinct
        workers = workers or 1
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                rows = list(pool.map(_render_job, jobs[:drawn]))
        else:
            rows = [_render_job(job) for job in jobs[:drawn]]
        if drawn < n:  # image i is a copy of image i % drawn (same size, same segments)
            copy_distinct([job[0] for job in jobs], drawn, max(2, workers))
            rows = [rows[i % drawn] for i in range(n)]
        records = [dict(ImageId=image_id, **r) for image_id, rs in zip(ids, rows) for r in rs]
        frame = pd.DataFrame(records, columns=list(REQUIRED_COLUMNS))
        frame.to_csv(tmp / CSV_FILE, index=False, lineterminator="\n")
        (tmp / LABEL_FILE).write_text(json.dumps(label_descriptions(), indent=1) + "\n")
    return root


def synthetic_root(n: int = 240, seed: int = 0) -> Path:
    """The cached synthetic dataset ``cache_dir("synthetic", "fashion-n<n>-s<seed>")``, written on first use."""
    from kerasmt.utils import cache_dir

    return synthesize(cache_dir("synthetic", f"fashion-n{n}-s{seed}"), n=n, seed=seed)
