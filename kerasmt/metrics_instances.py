"""Multi-label, instance-segmentation and combination metrics of the fashion report (section 2.3, 5.2).

Multi-label classification (one 0/1 vector of ``k`` classes per image; ``Y`` true, ``Z`` predicted):

- EMR (1):  share of images whose predicted label set equals the true one exactly;
- OA (2):   Hamming accuracy, correct entries / (n * k), true negatives included (Table 2: 80 %);
- JSS (3):  mean over images of |Y ∩ Z| / |Y ∪ Z| (an image with both sets empty counts 1).

Instance segmentation (masks matched at mask IoU >= 0.5, same class, greedily by score: Matterport's
``compute_matches``, the code the report used, with its duplicate-detection bug fixed, see
:func:`match_instances`):

- precision (6), recall (7) and F1 (8) per image, averaged over images;
- AP@50 (9) per image: area under the interpolated precision-recall curve; mAP (10) = mean over
  images (the report's "mAP", a per-image mAP@50); :func:`coco_map50` gives pycocotools' COCO mask
  AP beside it: AP@50 and AP@[.5:.95], averaged over classes (pooled over images), and per class.

Combination scores (section 5.2): Classification = (3 EMR + OA + 2 JSS) / 6 (15);
Segmentation = (mAP + F1) / 2 (17); Speed = seconds per image / 10 (18);
TO = Classification(M_test) + Segmentation - Speed (19); TTO = 1.5 Classification(C) + TO (21).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

# ---------------------------------------------------------------------------------- multi-label
def _binary_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.atleast_2d(np.asarray(y_true))
    p = np.atleast_2d(np.asarray(y_pred))
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} and y_pred {p.shape}; expected equal (images, classes)")
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.size and not np.isin(a, (0, 1)).all():
            raise ValueError(f"{name} must hold 0/1 label memberships; threshold scores first")
    return t.astype(bool), p.astype(bool)


def exact_match_ratio(y_true, y_pred) -> float:
    """EMR (1): share of images whose predicted label set equals the true one."""
    t, p = _binary_pair(y_true, y_pred)
    return float(np.mean(np.all(t == p, axis=1))) if len(t) else float("nan")


def hamming_accuracy(y_true, y_pred) -> float:
    """OA (2): correct label memberships over ``n * k`` (true negatives count as correct)."""
    t, p = _binary_pair(y_true, y_pred)
    return float(np.mean(t == p)) if t.size else float("nan")


def jaccard_score(y_true, y_pred, empty: float = 1.0) -> float:
    """JSS (3): mean over images of ``|Y ∩ Z| / |Y ∪ Z|``; ``empty`` for an image where both are empty."""
    t, p = _binary_pair(y_true, y_pred)
    if not len(t):
        return float("nan")
    inter = np.sum(t & p, axis=1)
    union = np.sum(t | p, axis=1)
    per_image = np.where(union > 0, inter / np.maximum(union, 1), empty)
    return float(np.mean(per_image))


def per_class_accuracy(y_true, y_pred) -> np.ndarray:
    """Accuracy of each class column (report Appendix E); their mean is OA."""
    t, p = _binary_pair(y_true, y_pred)
    return np.mean(t == p, axis=0)


def multilabel_scores(y_true, y_pred) -> dict[str, float]:
    """``{"emr", "oa", "jss"}`` of 0/1 matrices ``(images, classes)``."""
    return {"emr": exact_match_ratio(y_true, y_pred), "oa": hamming_accuracy(y_true, y_pred),
            "jss": jaccard_score(y_true, y_pred)}


def labels_to_multi_hot(labels: Sequence[Sequence[int]], n_classes: int) -> np.ndarray:
    """Per-image class lists (e.g. the labels of detected instances) -> 0/1 ``(n, n_classes)``;
    a class is present if any instance has it."""
    out = np.zeros((len(labels), n_classes), dtype=np.int32)
    for i, row in enumerate(labels):
        row = np.asarray(row, dtype=np.int64)
        if row.size and (row.min() < 0 or row.max() >= n_classes):
            raise ValueError(f"image {i}: class ids {row.tolist()} outside 0..{n_classes - 1}")
        out[i, row] = 1
    return out


# ------------------------------------------------------------------------------------ instances
@dataclass
class Instances:
    """Instance masks of one image: ``masks`` bool ``(k, H, W)``, ``labels`` int ``(k,)`` and
    ``scores`` float ``(k,)`` (1.0 for ground truth)."""

    masks: np.ndarray
    labels: np.ndarray
    scores: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.masks = np.asarray(self.masks, dtype=bool)
        if self.masks.ndim != 3:
            raise ValueError(f"masks must be (k, H, W), got shape {self.masks.shape}")
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.scores = np.ones(len(self.labels)) if self.scores is None else np.asarray(self.scores, float).reshape(-1)
        if not len(self.masks) == len(self.labels) == len(self.scores):
            raise ValueError(f"{len(self.masks)} masks, {len(self.labels)} labels and {len(self.scores)} scores; "
                             f"expected equal")

    def __len__(self) -> int:
        return len(self.labels)


class CompactInstances(Sequence):
    """Instances of many images held as run-length codes (pycocotools RLE) and decoded one image
    at a time on access: a test set's masks in a few MB instead of ``k * H * W`` bytes per image.
    A drop-in for a list of :class:`Instances` (``len``, indexing, iteration, ``append``); decoding
    gives back the exact masks."""

    def __init__(self, items: Iterable[Instances] = ()):
        self._items: list[tuple[tuple[int, int], list[dict], np.ndarray, np.ndarray]] = []
        for item in items:
            self.append(item)

    def append(self, instances: Instances) -> None:
        """Encode and keep the instances of one more image."""
        from pycocotools import mask as mask_utils

        shape = tuple(int(v) for v in instances.masks.shape[1:])
        rles = mask_utils.encode(np.asfortranarray(instances.masks.transpose(1, 2, 0).astype(np.uint8))) \
            if len(instances) else []
        self._items.append((shape, list(rles), instances.labels.copy(), instances.scores.copy()))

    def __len__(self) -> int:
        return len(self._items)

    def labels(self) -> list[np.ndarray]:
        """Each image's instance labels, without decoding a mask."""
        return [item[2] for item in self._items]

    def _decode(self, i: int) -> Instances:
        from pycocotools import mask as mask_utils

        shape, rles, labels, scores = self._items[i]
        masks = mask_utils.decode(rles).transpose(2, 0, 1) if rles else np.zeros((0, *shape), bool)
        return Instances(masks, labels, scores)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._decode(j) for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(f"image {i} out of range for {len(self)} images")
        return self._decode(int(i) % len(self))

    def __iter__(self) -> Iterator[Instances]:
        return (self._decode(i) for i in range(len(self)))


def mask_iou_matrix(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """IoU of every predicted mask ``(p, H, W)`` with every true mask ``(t, H, W)`` -> ``(p, t)``."""
    pred = np.asarray(pred, dtype=bool)
    true = np.asarray(true, dtype=bool)
    if len(pred) == 0 or len(true) == 0:
        return np.zeros((len(pred), len(true)))
    if pred.shape[1:] != true.shape[1:]:
        raise ValueError(f"predicted masks are {pred.shape[1:]} but true masks {true.shape[1:]}")
    a = pred.reshape(len(pred), -1).astype(np.float32)
    b = true.reshape(len(true), -1).astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


@dataclass
class Match:
    """Greedy matching of one image: ``pred_match[i]`` = index of the true mask matched to
    prediction ``i`` (in score order) or -1; ``true_match[j]`` likewise; ``order`` = prediction
    indices by descending score."""

    pred_match: np.ndarray
    true_match: np.ndarray
    order: np.ndarray
    iou: np.ndarray

    @property
    def tp(self) -> int:
        return int(np.sum(self.pred_match > -1))

    @property
    def fp(self) -> int:
        return int(np.sum(self.pred_match == -1))

    @property
    def fn(self) -> int:
        return int(np.sum(self.true_match == -1))


def match_instances(pred: Instances, true: Instances, iou_threshold: float = 0.5) -> Match:
    """Match predictions to ground truth: predictions by descending score; each takes the unmatched
    true mask of the same class with the highest IoU, if that IoU is >= ``iou_threshold``.

    This is Matterport's ``utils.compute_matches`` (the report's code) with its duplicate-detection
    bug fixed: Matterport skips an already matched true mask with ``if gt_match[j] > 0``, but
    ``gt_match`` holds the matching prediction's index, so the true mask matched by the
    top-scoring prediction (index 0) looked unmatched and a duplicate detection of it counted as
    a second true positive. Here a matched true mask is skipped whatever its prediction's index
    (``true_match[j] > -1``): each true mask matches at most once, the duplicate is a false positive."""
    order = np.argsort(-pred.scores, kind="stable")
    iou = mask_iou_matrix(pred.masks[order], true.masks)
    pred_match = np.full(len(order), -1, dtype=np.int64)
    true_match = np.full(len(true), -1, dtype=np.int64)
    for i in range(len(order)):
        for j in np.argsort(-iou[i], kind="stable"):
            if true_match[j] > -1:
                continue
            if iou[i, j] < iou_threshold:
                break
            if pred.labels[order[i]] == true.labels[j]:
                true_match[j] = i
                pred_match[i] = j
                break
    return Match(pred_match, true_match, order, iou)


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision (6), recall (7) and their harmonic mean; no prediction and no truth is a perfect
    (1, 1, 1), otherwise an undefined ratio counts 0."""
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def average_precision(match: Match, n_true: int) -> float:
    """AP@IoU (9) of one image from its :class:`Match` (Matterport's ``compute_ap``): precision
    made monotone from the right, summed over the recall steps. ``nan`` for an image without true
    masks (no recall is defined), whatever was predicted."""
    if n_true == 0:
        return float("nan")
    hits = np.cumsum(match.pred_match > -1)
    precisions = hits / (np.arange(len(hits)) + 1) if len(hits) else np.zeros(0)
    recalls = hits / n_true if len(hits) else np.zeros(0)
    precisions = np.concatenate([[0.0], precisions, [0.0]])
    recalls = np.concatenate([[0.0], recalls, [1.0]])
    for i in range(len(precisions) - 2, -1, -1):
        precisions[i] = max(precisions[i], precisions[i + 1])
    steps = np.flatnonzero(recalls[:-1] != recalls[1:]) + 1
    return float(np.sum((recalls[steps] - recalls[steps - 1]) * precisions[steps]))


def evaluate_instances(predictions: Sequence[Instances], truths: Sequence[Instances],
                       iou_threshold: float = 0.5) -> dict:
    """The report's segmentation metrics over a test set.

    Returns ``map50`` (mean per-image AP@50 over images with ground truth, eq. 10), ``f1``,
    ``precision``, ``recall`` (per-image values averaged over images, eq. 8), the pooled counts
    ``tp``, ``fp``, ``fn`` with ``micro_f1``, and the per-image arrays ``ap`` and ``f1_per_image``.
    """
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} images")
    aps, ps, rs, fs = [], [], [], []
    tp = fp = fn = 0
    for pred, true in zip(predictions, truths):
        m = match_instances(pred, true, iou_threshold)
        p, r, f = precision_recall_f1(m.tp, m.fp, m.fn)
        ps.append(p)
        rs.append(r)
        fs.append(f)
        aps.append(average_precision(m, len(true)))
        tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
    aps_arr = np.asarray(aps, dtype=float)
    return {
        "map50": float(np.nanmean(aps_arr)) if np.isfinite(aps_arr).any() else float("nan"),
        "f1": float(np.mean(fs)) if fs else float("nan"),
        "precision": float(np.mean(ps)) if ps else float("nan"),
        "recall": float(np.mean(rs)) if rs else float("nan"),
        "tp": tp, "fp": fp, "fn": fn,
        "micro_f1": precision_recall_f1(tp, fp, fn)[2],
        "ap": aps_arr,
        "f1_per_image": np.asarray(fs),
    }


def coco_map50(predictions: Sequence[Instances], truths: Sequence[Instances], n_classes: int | None = None) -> dict:
    """COCO-style mask AP with pycocotools (``COCOeval(iouType="segm")``): ``map50`` (AP at IoU
    0.5, 101-point interpolation, averaged over classes that have ground truth, up to 100
    detections per image), ``map`` (AP@[.5:.95]) and per class (index = 0-based label)
    ``per_class_ap`` (AP@[.5:.95]) and ``per_class_ap50`` (``nan`` for classes without ground truth).
    Returns zeros when nothing was predicted."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} images")
    labels = [int(v) for t in truths for v in t.labels] + [int(v) for p in predictions for v in p.labels]
    n_classes = n_classes or (max(labels) + 1 if labels else 1)

    def _encode(mask: np.ndarray) -> dict:
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        return rle

    images, annotations, results = [], [], []
    for i, (pred, true) in enumerate(zip(predictions, truths)):
        h, w = true.masks.shape[1:] if len(true) else pred.masks.shape[1:]
        images.append({"id": i + 1, "height": int(h), "width": int(w)})
        for m, label in zip(true.masks, true.labels):
            rle = _encode(m)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label) + 1,
                                "segmentation": rle, "area": float(m.sum()),
                                "bbox": list(map(float, mask_utils.toBbox(rle))), "iscrowd": 0})
        for m, label, score in zip(pred.masks, pred.labels, pred.scores):
            results.append({"image_id": i + 1, "category_id": int(label) + 1, "segmentation": _encode(m),
                            "score": float(score)})
    if not results or not annotations:
        per_class = np.full(n_classes, np.nan)
        for a in annotations:
            per_class[int(a["category_id"]) - 1] = 0.0
        return {"map50": 0.0, "map": 0.0, "per_class_ap": per_class, "per_class_ap50": per_class.copy()}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": c + 1, "name": str(c)} for c in range(n_classes)]}
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # (IoU thresholds, recall points, classes, areas, max detections)
    per_class_ap, per_class_ap50 = np.full(n_classes, np.nan), np.full(n_classes, np.nan)
    has_truth = {int(a["category_id"]) - 1 for a in annotations}
    for c in range(n_classes):
        p = precision[:, :, c, 0, -1]
        if c in has_truth:
            per_class_ap[c] = float(np.mean(np.maximum(p, 0.0)))
            per_class_ap50[c] = float(np.mean(np.maximum(p[0], 0.0)))
    return {"map50": float(max(ev.stats[1], 0.0)), "map": float(max(ev.stats[0], 0.0)),
            "per_class_ap": per_class_ap, "per_class_ap50": per_class_ap50}


# ------------------------------------------------------------------------------------- semantic
def pixel_confusion(true_maps: np.ndarray, pred_maps: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix (rows = true, columns = predicted) of label maps (0 = background)."""
    t = np.asarray(true_maps, dtype=np.int64).reshape(-1)
    p = np.asarray(pred_maps, dtype=np.int64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"true maps hold {t.size} pixels and predicted maps {p.size}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def semantic_scores(true_maps: np.ndarray, pred_maps: np.ndarray, n_classes: int) -> dict:
    """Pixel accuracy, per-class IoU (``nan`` for a class absent from truth and prediction) and
    mean IoU over the present classes, with and without background (class 0)."""
    return semantic_scores_from_confusion(pixel_confusion(true_maps, pred_maps, n_classes))


def semantic_scores_from_confusion(cm: np.ndarray) -> dict:
    """:func:`semantic_scores` of a pixel confusion matrix (e.g. summed over batches of maps)."""
    cm = np.asarray(cm)
    inter = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return {
        "pixel_accuracy": float(inter.sum() / max(cm.sum(), 1)),
        "iou": iou,
        "mean_iou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "mean_iou_foreground": float(np.nanmean(iou[1:])) if np.isfinite(iou[1:]).any() else float("nan"),
        "confusion": cm,
    }


# ----------------------------------------------------------------------------------- combination
def classification_score(emr: float, oa: float, jss: float) -> float:
    """Classification score (15): ``(3 EMR + OA + 2 JSS) / 6``."""
    return (3 * emr + oa + 2 * jss) / 6


def segmentation_score(map50: float, f1: float) -> float:
    """Segmentation score (17): ``(mAP + F1) / 2``."""
    return (map50 + f1) / 2


def speed_score(seconds_per_image: float) -> float:
    """Speed score (18): average inference seconds per image / 10."""
    return seconds_per_image / 10


def trade_off(classification: float, segmentation: float, speed: float) -> float:
    """TO (19): Classification(M_test) + Segmentation - Speed."""
    return classification + segmentation - speed


def total_trade_off(classification_client: float, to: float) -> float:
    """TTO (21): 1.5 Classification(C) + TO(M_test)."""
    return 1.5 * classification_client + to


def combination_scores(test: Mapping[str, float], seconds_per_image: float,
                       client: Mapping[str, float] | None = None) -> dict[str, float | str]:
    """Report Table 10 from Table 8/9-style numbers.

    ``test``: ``emr, oa, jss`` (fractions) and ``map50, f1`` on M_test (missing -> nan);
    ``client``: ``emr, oa, jss`` on the client set C. Without a client set the test-set
    classification stands in for Class_C (``class_c_source`` says which was used).
    """
    class_m = classification_score(test["emr"], test["oa"], test["jss"])
    client_given = client is not None
    class_c = classification_score(client["emr"], client["oa"], client["jss"]) if client_given else class_m
    seg = segmentation_score(test.get("map50", float("nan")), test.get("f1", float("nan")))
    speed = speed_score(seconds_per_image)
    to = trade_off(class_m, seg, speed)
    return {"class_c": class_c, "class_m": class_m, "segmentation": seg, "speed": speed, "to": to,
            "tto": total_trade_off(class_c, to), "class_c_source": "client" if client_given else "test"}
