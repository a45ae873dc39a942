"""Apply a saved kerasmt model to photos: ``kerasmt.predict`` and ``kerasmt predict``.

    table = kerasmt.predict("runs/fairface/models/multitask_gender_age_race.predict.keras", "photos/")

One row per image: ``image``, ``width``, ``height``, then per task of the model
(:mod:`kerasmt.modelinfo`): ``classes`` -> ``<task>`` (label) and ``<task>_prob``, or with ``top_k``
the columns ``<task>_top1`` .. and ``<task>_top1_prob`` ..; ``binary`` -> label and probability of that
label; ``regression`` -> the value (e.g. age in years); ``mask`` -> ``<task>_parts`` (the classes
covering at least 1% of the photo) and, with ``out_dir``, ``<task>_png`` (the class map at the
photo's resolution, pixel value = class index). Mask R-CNN models give ``instances`` (a list of
``{class_id, class_name, score, box, mask}``) and with ``out_dir`` a JSON file and an overlay PNG.

Images are decoded by :mod:`kerasmt.images` (EXIF orientation applied) as RGB; any size (the model resizes).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MASK_MIN_FRACTION = 0.01


class PredictError(ValueError):
    """Bad input to :func:`predict` (a missing file, an unreadable image, a model without info)."""


def image_files(sources: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Image files named by ``sources``: files as given, folders by their image files (sorted, not
    recursive). A missing path or a folder without images raises :class:`PredictError`."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    files: list[Path] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise PredictError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise PredictError(f"{path}: no such file or folder")
    return files


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A photo as uint8 RGB ``(H, W, 3)`` at its own size, decoded by :func:`kerasmt.images.read_image`
    (every format the datasets ship: EXIF rotation, CMYK, WebP, palette/alpha on white, 16-bit, grey)."""
    from kerasmt import images

    try:
        return images.read_image(path, None, 3)
    except images.ImageDecodeError as exc:
        raise PredictError(f"cannot decode image: {exc}") from exc


def load(model: Any) -> Any:
    """A keras model, or the model saved at a ``.keras`` path (after ``import kerasmt``)."""
    if isinstance(model, (str, os.PathLike)):
        import keras

        path = Path(model)
        if not path.is_file():
            raise PredictError(f"{path}: model file not found")
        return keras.models.load_model(path, compile=False)
    return model


def _is_maskrcnn(model: Any) -> bool:
    return any(type(layer).__name__ == "DetectionLayer" for layer in getattr(model, "layers", []))


def _unletterbox(probs: np.ndarray, height: int, width: int, resize: str) -> np.ndarray:
    """Per-pixel probabilities at the model's size -> class map at the photo's size (undoing the
    letterbox padding of ``resize="pad"``)."""
    import tensorflow as tf

    h, w = probs.shape[:2]
    if resize == "pad":  # the geometry of tf.image.resize_with_pad (RawImagePreprocess)
        ratio = max(width / w, height / h)
        fh, fw = height / ratio, width / ratio
        inner_h, inner_w = max(1, int(fh)), max(1, int(fw))
        top, left = max(0, int((h - fh) / 2)), max(0, int((w - fw) / 2))
        probs = probs[top:top + inner_h, left:left + inner_w]
    full = tf.image.resize(probs[None], (height, width), method="bilinear")[0].numpy()
    return np.argmax(full, axis=-1).astype(np.uint8)


def _task_columns(task: Mapping[str, Any], y: np.ndarray, row: dict, image: np.ndarray, info: Mapping,
                  stem: str, out_dir: Path | None) -> None:
    name, kind, labels = task["name"], task["kind"], task.get("labels") or []
    if kind == "classes":
        p = np.asarray(y, dtype=np.float64).reshape(-1)
        k = int(task.get("top_k") or 0)
        if k:
            for rank, i in enumerate(np.argsort(-p)[:k], 1):
                row[f"{name}_top{rank}"] = labels[i]
                row[f"{name}_top{rank}_prob"] = round(float(p[i]), 4)
        else:
            i = int(np.argmax(p))
            row[name], row[f"{name}_prob"] = labels[i], round(float(p[i]), 4)
    elif kind == "binary":
        p1 = float(np.asarray(y).reshape(-1)[0])
        i = int(p1 >= 0.5)
        row[name], row[f"{name}_prob"] = labels[i], round(p1 if i else 1.0 - p1, 4)
    elif kind == "regression":
        row[name] = round(float(np.asarray(y).reshape(-1)[0]), 2)
    elif kind == "mask":
        classes = _unletterbox(np.asarray(y, dtype=np.float32), image.shape[0], image.shape[1],
                               info.get("resize", "stretch"))
        counts = np.bincount(classes.reshape(-1), minlength=len(labels)) / classes.size
        row[f"{name}_parts"] = ", ".join(labels[i] for i in np.argsort(-counts)
                                         if counts[i] >= MASK_MIN_FRACTION and i > 0)
        if out_dir is not None:
            from PIL import Image

            png = out_dir / "masks" / f"{stem}_{name}.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(classes).save(png)
            row[f"{name}_png"] = str(png)


def _maskrcnn_rows(model: Any, images: Sequence[np.ndarray], names: Sequence[str], out_dir: Path | None,
                   class_names: Sequence[str] | None) -> list[dict]:
    from kerasmt.models import maskrcnn

    detect = getattr(maskrcnn, "detect", None)
    draw = getattr(maskrcnn, "draw_instances", None)
    if detect is None:
        raise PredictError("this is a Mask R-CNN model: predicting with it needs kerasmt.models.maskrcnn.detect, "
                           "which this kerasmt version does not have yet")
    rows = []
    for image, name in zip(images, names):
        instances = detect(model, [image], class_names=class_names)[0]
        row = {"image": name, "height": image.shape[0], "width": image.shape[1], "instances": len(instances),
               "classes": ", ".join(str(i["class_name"]) for i in instances)}
        if out_dir is not None:
            from PIL import Image

            stem = Path(name).stem
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{stem}_instances.json").write_text(json.dumps([
                {**{k: v for k, v in i.items() if k != "mask"},
                 "mask_rle": _rle(np.asarray(i["mask"], dtype=bool))} for i in instances], default=float, indent=1))
            if draw is not None:
                Image.fromarray(np.asarray(draw(image, instances), dtype=np.uint8)).save(out_dir / f"{stem}_overlay.png")
            row["json"] = str(out_dir / f"{stem}_instances.json")
        rows.append(row)
    return rows


def _rle(mask: np.ndarray) -> dict:
    from kerasmt.rle import rle_encode

    return {"size": list(mask.shape), "rle": rle_encode(mask)}  # Kaggle iMaterialist column-major runs


def predict(model: Any, images: Any, out_dir: str | os.PathLike | None = None,
            class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Apply a raw-image model (or the ``.keras`` path of one) to images; one row per image.

    Args:
        model: a model saved by a study as ``models/<name>.predict.keras`` (or loaded from one), or a
            Mask R-CNN inference model.
        images: an image file, a folder (its image files), a list of those, or a list of uint8 RGB
            arrays ``(H, W, 3)`` of any size.
        out_dir: where mask PNGs (and Mask R-CNN JSON / overlays) go; ``None``: not written.
        class_names: Mask R-CNN class names (index = class id), when the model does not store them.
    """
    model = load(model)
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    if isinstance(images, (list, tuple)) and images and all(isinstance(i, np.ndarray) for i in images):
        arrays, names = [np.asarray(i) for i in images], [f"image_{i}" for i in range(len(images))]
    else:
        files = image_files(images)
        arrays, names = [read_image(f) for f in files], [str(f) for f in files]
    for name, a in zip(names, arrays):
        if a.ndim != 3 or a.shape[-1] != 3:
            raise PredictError(f"{name}: expected an RGB image (H, W, 3), got shape {a.shape}")
    out = Path(out_dir) if out_dir is not None else None
    if _is_maskrcnn(model):
        return pd.DataFrame(_maskrcnn_rows(model, arrays, names, out, class_names))
    from kerasmt.modelinfo import model_info

    info = model_info(model)
    if info is None:
        raise PredictError(f"model {getattr(model, 'name', model)!r} carries no kerasmt model info: use the "
                           "raw-image model a study saves as models/<name>.predict.keras (not the training "
                           "checkpoint models/<name>.keras)")
    rows = []
    for name, image in zip(names, arrays):
        outputs = model(np.asarray(image, dtype=np.uint8)[None], training=False)
        row: dict[str, Any] = {"image": name, "height": image.shape[0], "width": image.shape[1]}
        for task in info["tasks"]:
            y = np.asarray(outputs[task["name"]])[0]
            _task_columns(task, y, row, image, info, Path(name).stem, out)
        rows.append(row)
    return pd.DataFrame(rows)
