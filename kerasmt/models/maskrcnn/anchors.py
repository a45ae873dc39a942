"""RPN anchors (Matterport's ``generate_pyramid_anchors``), in pixels and normalised.

For each FPN level ``i`` (P2..P6, stride ``strides[i]``) one square side ``scales[i]`` and every
ratio ``r`` (width / height): height ``s / sqrt(r)``, width ``s * sqrt(r)``, centred on
``(y, x) = (row, col) * stride`` for every ``anchor_stride``-th feature cell. Order: level, row,
column, ratio (the order of the RPN's outputs, which are reshaped the same way).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def level_anchors(scale: float, ratios: Sequence[float], shape: tuple[int, int], feature_stride: int,
                  anchor_stride: int = 1) -> np.ndarray:
    """Anchors ``(rows * cols * len(ratios), 4)`` in pixels ``(y1, x1, y2, x2)`` of one level."""
    ratios = np.asarray(ratios, dtype=np.float64)
    heights = scale / np.sqrt(ratios)
    widths = scale * np.sqrt(ratios)
    ys = np.arange(0, shape[0], anchor_stride) * feature_stride
    xs = np.arange(0, shape[1], anchor_stride) * feature_stride
    cx, cy = np.meshgrid(xs, ys)  # (rows, cols)
    cy = np.repeat(cy.reshape(-1, 1), len(ratios), axis=1).reshape(-1)
    cx = np.repeat(cx.reshape(-1, 1), len(ratios), axis=1).reshape(-1)
    h = np.tile(heights, len(ys) * len(xs))
    w = np.tile(widths, len(ys) * len(xs))
    return np.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=1)


def generate_anchors(scales: Sequence[float], ratios: Sequence[float], feature_shapes: Sequence[tuple[int, int]],
                     feature_strides: Sequence[int], anchor_stride: int = 1) -> np.ndarray:
    """All levels' anchors in pixels, concatenated (level by level)."""
    if not (len(scales) == len(feature_shapes) == len(feature_strides)):
        raise ValueError(f"scales ({len(scales)}), feature_shapes ({len(feature_shapes)}) and feature_strides "
                         f"({len(feature_strides)}) must have one entry per pyramid level")
    return np.concatenate([level_anchors(s, ratios, shape, st, anchor_stride)
                           for s, shape, st in zip(scales, feature_shapes, feature_strides)], axis=0)


def norm_boxes(boxes: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Pixel boxes (``y2``, ``x2`` exclusive) -> normalised (Matterport: ``(y1, x1, y2 - 1, x2 - 1) / (size - 1)``)."""
    h, w = (size, size) if np.isscalar(size) else size
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float64)
    shift = np.array([0, 0, 1, 1], dtype=np.float64)
    return ((np.asarray(boxes, np.float64) - shift) / scale).astype(np.float32)


def denorm_boxes(boxes: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`norm_boxes`, rounded to integer pixels."""
    h, w = (size, size) if np.isscalar(size) else size
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float64)
    shift = np.array([0, 0, 1, 1], dtype=np.float64)
    return np.around(np.asarray(boxes, np.float64) * scale + shift).astype(np.int32)


def config_anchors(config, normalized: bool = True) -> np.ndarray:
    """The anchors of a :class:`~kerasmt.models.maskrcnn.config.MaskRCNNConfig` (normalised by default)."""
    anchors = generate_anchors(config.rpn_anchor_scales, config.rpn_anchor_ratios, config.feature_shapes(),
                               config.backbone_strides, config.rpn_anchor_stride)
    return norm_boxes(anchors, config.image_size) if normalized else anchors.astype(np.float32)
