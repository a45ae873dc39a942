"""Photos in, instances at the photo's own resolution out (Matterport's ``model.detect``).

    from kerasmt.models import maskrcnn as mr
    model = keras.models.load_model("mask_rcnn.keras")      # a saved inference model
    [instances] = mr.detect(model, [photo])                 # photo: uint8 RGB (H, W, 3), any size
    instances[0]  # {"class_id": 4, "class_name": "pants", "score": 0.93,
                  #  "box": [x0, y0, x1, y1] (pixels of the photo), "mask": bool (H, W)}
    overlay = mr.draw_instances(photo, instances)

Each photo is letterboxed to the model's ``image_size`` (aspect kept, centred, zero padding: the
training geometry of :func:`kerasmt.datasets.fashion.letterbox_image`); the model's own
``MeanPixelNormalization`` layer applies the preprocessing its weights expect (config
``preprocessing``). Boxes and 28x28 masks are mapped back through the letterbox: the masks are
pasted directly at the photo's resolution (no 512 px intermediate).
"""
from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from kerasmt.models.maskrcnn.config import MaskRCNNConfig
from kerasmt.models.maskrcnn.inference import paste_masks
from kerasmt.models.maskrcnn.model import model_config

#: the report's post-processing (section 6.2.2): at most two instances of a class per image
REPORT_MAX_PER_CLASS = 2


def _as_rgb(image: Any, index: int) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"images[{index}]: expected an RGB photo (H, W, 3) (or grey (H, W), RGBA (H, W, 4)), "
                         f"got shape {a.shape}")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number) or a.size and (np.nanmin(a) < 0 or np.nanmax(a) > 255):
            raise ValueError(f"images[{index}]: expected uint8 values 0..255, got dtype {a.dtype}")
        a = np.asarray(np.round(a), np.uint8)
    return np.ascontiguousarray(a[..., :3])


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``(size, size, 3)`` uint8 canvas and the window ``(top, left, new_h, new_w)`` the photo
    occupies (the geometry of :func:`kerasmt.datasets.fashion.letterbox_geometry`)."""
    from kerasmt.datasets.fashion import letterbox_geometry, letterbox_image

    box = letterbox_geometry(image.shape[0], image.shape[1], size)
    return letterbox_image(image, size), (box.top, box.left, box.new_h, box.new_w)


def limit_per_class(instances: list[dict], max_per_class: int | None) -> list[dict]:
    """Keep at most ``max_per_class`` instances of each class, the highest scores (the report's
    post-processing with 2: "more than two shoes ... we ignore the ones that are not the two with
    the highest confidence"); order by score kept. ``None``: unchanged."""
    if max_per_class is None:
        return list(instances)
    if int(max_per_class) < 1:
        raise ValueError(f"max_per_class must be None or an int >= 1, got {max_per_class!r}")
    counts: dict[int, int] = {}
    out = []
    for inst in sorted(instances, key=lambda d: -d["score"]):
        c = counts.get(inst["class_id"], 0)
        if c < max_per_class:
            counts[inst["class_id"]] = c + 1
            out.append(inst)
    return out


def compiled_inference(model: keras.Model):
    """One ``tf.function`` per inference model with a fixed input signature ``(None, S, S, 3)``
    float32: traced once, reused for every batch size and call (no retracing). Kept on the model
    (so it lives as long as the model)."""
    fn = model.__dict__.get("_kerasmt_compiled")
    if fn is None:
        size = model.inputs[0].shape[1]
        spec = tf.TensorSpec((None, size, size, 3), tf.float32)
        fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        object.__setattr__(model, "_kerasmt_compiled", fn)  # outside Keras' attribute tracking
    return fn


def detect(model: keras.Model, images: Sequence[np.ndarray], *, class_names: Sequence[str] | None = None,
           max_per_class: int | None = None, min_score: float | None = None, threshold: float = 0.5,
           batch_size: int = 1) -> list[list[dict]]:
    """Instances of each photo (Matterport's ``detect``).

    ``model``: a :class:`~kerasmt.models.maskrcnn.model.MaskRCNN`, its ``inference_model``, or
    one loaded from ``.keras`` (its ``maskrcnn_config`` layer tells the image size, the
    preprocessing and the class names). ``images``: RGB uint8 photos of any sizes (a list of
    ``(H, W, 3)``; grey and RGBA are converted). ``class_names``: override the saved names
    (``len = num_classes - 1``). ``max_per_class``: keep the best so many per class
    (:data:`REPORT_MAX_PER_CLASS` = the report's post-processing). ``min_score``: drop lower
    scores (the model already applies ``detection_min_confidence``). ``threshold``: mask
    probability cut.

    Returns per photo a list (by score) of ``{"class_id": int (0-based, background excluded),
    "class_name": str, "score": float, "box": [x0, y0, x1, y1] (float pixels of the photo, x1/y1
    exclusive), "mask": bool (H, W)}``; instances whose mask vanishes at the photo's resolution
    are dropped.
    """
    config: MaskRCNNConfig = model_config(model)
    model = getattr(model, "inference_model", model)
    names = list(class_names) if class_names is not None else list(config.class_names)
    if names and len(names) != config.num_classes - 1:
        raise ValueError(f"class_names: {len(names)} names, the model has {config.num_classes - 1} classes "
                         f"(num_classes - 1, background excluded)")
    if isinstance(images, np.ndarray) and images.ndim in (2, 3) and images.dtype != object:
        raise ValueError(f"images: pass a list of photos (H, W, 3), got one array of shape {images.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    photos = [_as_rgb(im, i) for i, im in enumerate(images)]
    size = config.image_size
    fn = compiled_inference(model)
    results: list[list[dict]] = []
    for start in range(0, len(photos), batch_size):
        chunk = photos[start:start + batch_size]
        boxed = [letterbox(p, size) for p in chunk]
        batch = np.stack([b[0] for b in boxed]).astype(np.float32)
        out = fn(tf.convert_to_tensor(batch))
        dets, masks = out["detections"].numpy(), out["masks"].numpy()
        for photo, (_, window), det, mask in zip(chunk, boxed, dets, masks):
            results.append(_unmold(photo.shape[:2], window, size, det, mask, names, threshold, min_score,
                                   max_per_class))
    return results


def _unmold(shape, window, size, det, masks, names, threshold, min_score, max_per_class) -> list[dict]:
    """One image's detections (normalised letterbox boxes, 28x28 masks) -> instances of the photo."""
    height, width = int(shape[0]), int(shape[1])
    top, left, new_h, new_w = window
    keep = det[:, 4] > 0
    if min_score is not None:
        keep &= det[:, 5] >= float(min_score)
    det, masks = det[keep], masks[keep]
    if not len(det):
        return []
    # normalised letterbox coordinates -> letterbox pixels (Matterport: y * (S - 1), ends + 1)
    ys = det[:, [0, 2]] * (size - 1) + np.array([0.0, 1.0])
    xs = det[:, [1, 3]] * (size - 1) + np.array([0.0, 1.0])
    sy, sx = new_h / height, new_w / width
    y_full, x_full = (ys - top) / sy, (xs - left) / sx  # photo pixels, may reach into the padding
    y, x = np.clip(y_full, 0, height), np.clip(x_full, 0, width)
    inside = (y[:, 1] > y[:, 0]) & (x[:, 1] > x[:, 0])  # boxes wholly in the padding are dropped
    det, masks, y, x, y_full, x_full = det[inside], masks[inside], y[inside], x[inside], y_full[inside], x_full[inside]
    # the unclipped boxes, normalised to the photo (pixel centres p / (dim - 1), ends exclusive), so
    # that a mask keeps its shape where its box reaches into the padding
    norm = np.stack([y_full[:, 0] / max(height - 1, 1), x_full[:, 0] / max(width - 1, 1),
                     (y_full[:, 1] - 1) / max(height - 1, 1), (x_full[:, 1] - 1) / max(width - 1, 1)], axis=1)
    pasted = paste_masks(masks, norm, height, width, threshold)
    out = []
    for i in range(len(det)):
        if not pasted[i].any():
            continue
        cid = int(det[i, 4]) - 1
        out.append({"class_id": cid, "class_name": names[cid] if 0 <= cid < len(names) else f"class {cid}",
                    "score": float(det[i, 5]), "box": [float(x[i, 0]), float(y[i, 0]), float(x[i, 1]), float(y[i, 1])],
                    "mask": pasted[i]})
    return limit_per_class(out, max_per_class)


#: colours of the instance overlays (one per class, cycling)
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
                    [170, 110, 40], [128, 0, 0], [170, 255, 195], [128, 128, 0]], np.uint8)


def draw_instances(image: np.ndarray, instances: Sequence[dict], alpha: float = 0.5,
                   labels: bool = True) -> np.ndarray:
    """uint8 RGB overlay of ``instances`` (from :func:`detect`) on the photo: each mask filled with
    its class colour at ``alpha``, its box outlined, and ``"name score"`` written at the box's
    top-left corner (``labels``)."""
    from PIL import Image, ImageDraw

    base = _as_rgb(image, 0)
    h, w = base.shape[:2]
    out = base.astype(np.float32)
    for i, inst in enumerate(instances):
        mask = np.asarray(inst["mask"], bool)
        if mask.shape != (h, w):
            raise ValueError(f"instances[{i}]: mask {mask.shape} does not match the image {(h, w)}")
        colour = PALETTE[int(inst["class_id"]) % len(PALETTE)].astype(np.float32)
        out[mask] = (1 - alpha) * out[mask] + alpha * colour
    pil = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    width = max(1, round(min(h, w) / 250))
    for inst in instances:
        colour = tuple(int(c) for c in PALETTE[int(inst["class_id"]) % len(PALETTE)])
        x0, y0, x1, y1 = inst["box"]
        draw.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], outline=colour, width=width)
        if labels:
            text = f"{inst.get('class_name', inst['class_id'])} {inst['score']:.2f}"
            tx, ty = x0 + 2, max(0, y0 - 12) if y0 >= 12 else y0 + 2
            bbox = draw.textbbox((tx, ty), text)
            draw.rectangle(bbox, fill=colour)
            draw.text((tx, ty), text, fill=(0, 0, 0) if sum(colour) > 380 else (255, 255, 255))
    return np.asarray(pil)
