"""Mask R-CNN configuration: the fashion report's Appendix B values (Matterport's ``Config``) as defaults.

Every field keeps Matterport's meaning; the upper-case name it had in the report's Appendix B is
given in the comment. Fields without an Appendix B entry (marked "kerasmt") are architecture
sizes Matterport hard-codes (its values are the defaults) or switches for CPU-sized runs.

    cfg = MaskRCNNConfig()                                        # the report's run (Full set, 512 px)
    cfg = MaskRCNNConfig(backbone="light", image_size=128, ...)   # a CPU-sized run
    cfg.replace(detection_max_instances=10)                       # the report's inference setting
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

#: values of MaskRCNNConfig.preprocessing
PREPROCESSING: tuple[str, ...] = ("auto", "matterport", "caffe", "rgb")
#: backbones :func:`kerasmt.models.maskrcnn.model.build_backbone` knows
BACKBONES: tuple[str, ...] = ("resnet50", "resnet101", "light")
#: the five losses, in Matterport's names (Appendix B LOSS_WEIGHTS)
LOSS_NAMES: tuple[str, ...] = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
                               "mrcnn_mask_loss")


def _default_loss_weights() -> dict[str, float]:
    return {name: 1.0 for name in LOSS_NAMES}


@dataclass(frozen=True)
class MaskRCNNConfig:
    """Hyper-parameters of :func:`kerasmt.models.maskrcnn.build_maskrcnn` (report Appendix B).

    Boxes are ``(y1, x1, y2, x2)``; inside the networks they are normalised to [0, 1] with
    Matterport's convention (pixel centres: ``y / (size - 1)``, exclusive ends minus one pixel).
    """

    name: str = "fashion"                                     # NAME
    num_classes: int = 12                                     # NUM_CLASSES incl. background: the Full set's 11 + 1
    #                                                           (Appendix B prints 6: a Base-set run, 5 + 1)
    backbone: str = "resnet101"                               # BACKBONE ("resnet50", "resnet101", "light")
    backbone_strides: tuple[int, ...] = (4, 8, 16, 32, 64)    # BACKBONE_STRIDES (P2..P6)
    image_size: int = 512                                     # IMAGE_MIN_DIM = IMAGE_MAX_DIM, square (letterbox)
    mean_pixel: tuple[float, float, float] = (123.7, 116.8, 103.9)  # MEAN_PIXEL (RGB)
    preprocessing: str = "auto"                               # kerasmt: what the weights were trained on:
    #   "matterport": RGB minus MEAN_PIXEL (Matterport's mask_rcnn_coco.h5), "caffe": BGR minus the mean
    #   (keras.applications ImageNet ResNets), "rgb": RGB minus the mean (the light backbone), "auto":
    #   caffe for the ResNets, rgb for the light backbone
    class_names: tuple[str, ...] = ()                         # kerasmt: names of classes 1..NUM_CLASSES-1
    #                                                           (saved with the inference model for detect)
    images_per_gpu: int = 2                                   # IMAGES_PER_GPU = BATCH_SIZE
    # --- region proposal network
    rpn_anchor_scales: tuple[float, ...] = (16, 32, 64, 128, 256)  # RPN_ANCHOR_SCALES (report; default 32..512)
    rpn_anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)    # RPN_ANCHOR_RATIOS (height / width = 1 / ratio)
    rpn_anchor_stride: int = 1                                # RPN_ANCHOR_STRIDE
    rpn_nms_threshold: float = 0.7                            # RPN_NMS_THRESHOLD
    rpn_train_anchors_per_image: int = 256                    # RPN_TRAIN_ANCHORS_PER_IMAGE
    rpn_bbox_std_dev: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)  # RPN_BBOX_STD_DEV
    pre_nms_limit: int = 6000                                 # PRE_NMS_LIMIT
    post_nms_rois_training: int = 2000                        # POST_NMS_ROIS_TRAINING
    post_nms_rois_inference: int = 1000                       # POST_NMS_ROIS_INFERENCE
    rpn_channels: int = 512                                   # kerasmt: RPN shared conv (Matterport: 512)
    # --- heads
    top_down_pyramid_size: int = 256                          # TOP_DOWN_PYRAMID_SIZE (FPN channels)
    pool_size: int = 7                                        # POOL_SIZE
    mask_pool_size: int = 14                                  # MASK_POOL_SIZE
    mask_shape: tuple[int, int] = (28, 28)                    # MASK_SHAPE
    fpn_classif_fc_layers_size: int = 1024                    # FPN_CLASSIF_FC_LAYERS_SIZE
    mask_head_channels: int = 256                             # kerasmt: mask head convs (Matterport: 256)
    train_rois_per_image: int = 200                           # TRAIN_ROIS_PER_IMAGE
    roi_positive_ratio: float = 0.33                          # ROI_POSITIVE_RATIO
    bbox_std_dev: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)  # BBOX_STD_DEV
    max_gt_instances: int = 100                               # MAX_GT_INSTANCES
    use_mini_mask: bool = True                                # USE_MINI_MASK
    mini_mask_shape: tuple[int, int] = (56, 56)               # MINI_MASK_SHAPE
    use_rpn_rois: bool = True                                 # USE_RPN_ROIS (False is not supported)
    add_gt_to_proposals: bool = False                         # kerasmt: also sample the ground-truth boxes
    #                                                           as RoIs (Detectron does; Matterport does not)
    # --- detection (inference)
    detection_max_instances: int = 100                        # DETECTION_MAX_INSTANCES (report's inference: 10)
    detection_min_confidence: float = 0.7                     # DETECTION_MIN_CONFIDENCE
    detection_nms_threshold: float = 0.3                      # DETECTION_NMS_THRESHOLD
    # --- training
    learning_rate: float = 0.001                              # LEARNING_RATE
    learning_momentum: float = 0.9                            # LEARNING_MOMENTUM
    weight_decay: float = 0.0001                              # WEIGHT_DECAY
    gradient_clip_norm: float = 5.0                           # GRADIENT_CLIP_NORM
    train_bn: bool = False                                    # TRAIN_BN (False: BN layers frozen, inference mode)
    loss_weights: Mapping[str, float] = field(default_factory=_default_loss_weights)  # LOSS_WEIGHTS
    steps_per_epoch: int = 16846                              # STEPS_PER_EPOCH
    validation_steps: int = 4212                              # VALIDATION_STEPS
    # --- light backbone (kerasmt, CPU runs)
    light_widths: tuple[int, int, int, int] = (16, 32, 64, 128)  # stage widths of the light ResNet

    def __post_init__(self) -> None:
        for name in ("backbone_strides", "mean_pixel", "rpn_anchor_scales", "rpn_anchor_ratios", "rpn_bbox_std_dev",
                     "mask_shape", "bbox_std_dev", "mini_mask_shape", "light_widths", "class_names"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ValueError(f"MaskRCNNConfig.{name} must be a sequence of numbers, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "loss_weights", {**_default_loss_weights(), **dict(self.loss_weights)})
        self.validate()

    # ------------------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that is out of range and what was expected."""
        def bad(name: str, expected: str) -> None:
            raise ValueError(f"MaskRCNNConfig.{name} = {getattr(self, name)!r}: expected {expected}")

        if self.backbone not in BACKBONES:
            bad("backbone", f"one of {BACKBONES}")
        if self.num_classes < 2:
            bad("num_classes", "an int >= 2 (background + at least one class)")
        if self.preprocessing not in PREPROCESSING:
            bad("preprocessing", f"one of {PREPROCESSING}")
        if self.class_names and len(self.class_names) != self.num_classes - 1:
            bad("class_names", f"{self.num_classes - 1} names (num_classes - 1, background excluded) or ()")
        if len(self.backbone_strides) != 5 or list(self.backbone_strides) != [4, 8, 16, 32, 64]:
            bad("backbone_strides", "(4, 8, 16, 32, 64): the strides of FPN levels P2..P6")
        if self.image_size < 64 or self.image_size % 64:
            bad("image_size", "a multiple of 64 (>= 64), so that P6 (stride 64) tiles the image")
        if len(self.mean_pixel) != 3:
            bad("mean_pixel", "3 values (R, G, B)")
        if len(self.rpn_anchor_scales) != 5 or any(s <= 0 for s in self.rpn_anchor_scales):
            bad("rpn_anchor_scales", "5 positive sides in pixels, one per level P2..P6")
        if not self.rpn_anchor_ratios or any(r <= 0 for r in self.rpn_anchor_ratios):
            bad("rpn_anchor_ratios", "positive width/height ratios")
        if self.rpn_anchor_stride < 1:
            bad("rpn_anchor_stride", "an int >= 1")
        for name in ("rpn_nms_threshold", "detection_nms_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                bad(name, "an IoU threshold in (0, 1]")
        if not 0.0 <= self.detection_min_confidence < 1.0:
            bad("detection_min_confidence", "a probability in [0, 1)")
        if not 0.0 < self.roi_positive_ratio <= 1.0:
            bad("roi_positive_ratio", "a fraction in (0, 1]")
        for name in ("rpn_train_anchors_per_image", "pre_nms_limit", "post_nms_rois_training",
                     "post_nms_rois_inference", "train_rois_per_image", "max_gt_instances",
                     "detection_max_instances", "images_per_gpu", "pool_size", "mask_pool_size",
                     "top_down_pyramid_size", "fpn_classif_fc_layers_size", "mask_head_channels", "rpn_channels"):
            if int(getattr(self, name)) < 1:
                bad(name, "an int >= 1")
        if self.post_nms_rois_training > self.pre_nms_limit or self.post_nms_rois_inference > self.pre_nms_limit:
            bad("pre_nms_limit", "at least post_nms_rois_training and post_nms_rois_inference")
        if self.train_rois_per_image > self.post_nms_rois_training + (self.max_gt_instances if self.add_gt_to_proposals else 0):
            bad("train_rois_per_image", "at most post_nms_rois_training (RoIs are sampled from the proposals)")
        if len(self.mask_shape) != 2 or tuple(self.mask_shape) != (2 * self.mask_pool_size,) * 2:
            bad("mask_shape", f"(2 * mask_pool_size,) * 2 = {(2 * self.mask_pool_size,) * 2}: the head upsamples x2 once")
        if len(self.mini_mask_shape) != 2 or min(self.mini_mask_shape) < 2:
            bad("mini_mask_shape", "(height, width), both >= 2")
        for name in ("rpn_bbox_std_dev", "bbox_std_dev"):
            v = getattr(self, name)
            if len(v) != 4 or any(s <= 0 for s in v):
                bad(name, "4 positive values (dy, dx, dh, dw)")
        if not self.use_rpn_rois:
            bad("use_rpn_rois", "True (training on random RoIs is not implemented)")
        unknown = set(self.loss_weights) - set(LOSS_NAMES)
        if unknown:
            bad("loss_weights", f"keys among {LOSS_NAMES}, got unknown {sorted(unknown)}")
        if len(self.light_widths) != 4:
            bad("light_widths", "4 stage widths")
        if self.learning_rate <= 0 or self.gradient_clip_norm <= 0:
            bad("learning_rate" if self.learning_rate <= 0 else "gradient_clip_norm", "a positive number")

    # ------------------------------------------------------------------------------ helpers
    def resolved_preprocessing(self) -> str:
        """``"matterport"``, ``"caffe"`` or ``"rgb"`` (``"auto"`` resolved by the backbone)."""
        if self.preprocessing != "auto":
            return self.preprocessing
        return "rgb" if self.backbone == "light" else "caffe"

    @property
    def bgr(self) -> bool:
        """Whether the backbone is fed BGR (caffe-style) input."""
        return self.resolved_preprocessing() == "caffe"

    def class_name(self, class_id: int) -> str:
        """Name of 0-based class ``class_id`` (background excluded), or ``"class <id>"``."""
        return self.class_names[class_id] if 0 <= class_id < len(self.class_names) else f"class {class_id}"

    @property
    def anchors_per_location(self) -> int:
        return len(self.rpn_anchor_ratios)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """IMAGE_SHAPE: ``(image_size, image_size, 3)``."""
        return (self.image_size, self.image_size, 3)

    @property
    def batch_size(self) -> int:
        """BATCH_SIZE = IMAGES_PER_GPU x GPU_COUNT (one device here)."""
        return self.images_per_gpu

    def feature_shapes(self) -> list[tuple[int, int]]:
        """Spatial sizes of P2..P6 for :attr:`image_size`."""
        return [(-(-self.image_size // s), -(-self.image_size // s)) for s in self.backbone_strides]

    def replace(self, **changes: Any) -> "MaskRCNNConfig":
        """A copy with ``changes`` (validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"MaskRCNNConfig has no field(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists for tuples); ``MaskRCNNConfig.from_dict`` reads it back."""
        out = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "MaskRCNNConfig":
        values = {k: v for k, v in values.items()}
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"MaskRCNNConfig has no field(s) {sorted(unknown)}")
        return cls(**dict(values))

    def table(self):
        """The configuration as Appendix B prints it (upper-case names, one row each)."""
        import pandas as pd

        rows = {k.upper(): (v if not isinstance(v, (list, tuple, dict)) else str(v)) for k, v in self.to_dict().items()}
        rows["IMAGE_SHAPE"] = str(list(self.image_shape))
        rows["BATCH_SIZE"] = self.batch_size
        return pd.DataFrame({"value": pd.Series(rows, dtype=object)}).sort_index()


#: Appendix B as printed (upper-case Matterport names); ``MaskRCNNConfig()`` matches it except NUM_CLASSES
#: (12 for the Full set instead of the printed Base-set 6).
APPENDIX_B: dict[str, Any] = {
    "BACKBONE": "resnet101", "BACKBONE_STRIDES": [4, 8, 16, 32, 64], "BATCH_SIZE": 2,
    "BBOX_STD_DEV": [0.1, 0.1, 0.2, 0.2], "DETECTION_MAX_INSTANCES": 100, "DETECTION_MIN_CONFIDENCE": 0.7,
    "DETECTION_NMS_THRESHOLD": 0.3, "FPN_CLASSIF_FC_LAYERS_SIZE": 1024, "GRADIENT_CLIP_NORM": 5.0,
    "IMAGES_PER_GPU": 2, "IMAGE_MAX_DIM": 512, "IMAGE_MIN_DIM": 512, "IMAGE_SHAPE": [512, 512, 3],
    "LEARNING_MOMENTUM": 0.9, "LEARNING_RATE": 0.001, "MASK_POOL_SIZE": 14, "MASK_SHAPE": [28, 28],
    "MAX_GT_INSTANCES": 100, "MEAN_PIXEL": [123.7, 116.8, 103.9], "MINI_MASK_SHAPE": [56, 56], "NAME": "fashion",
    "NUM_CLASSES": 6, "POOL_SIZE": 7, "POST_NMS_ROIS_INFERENCE": 1000, "POST_NMS_ROIS_TRAINING": 2000,
    "PRE_NMS_LIMIT": 6000, "ROI_POSITIVE_RATIO": 0.33, "RPN_ANCHOR_RATIOS": [0.5, 1, 2],
    "RPN_ANCHOR_SCALES": [16, 32, 64, 128, 256], "RPN_ANCHOR_STRIDE": 1, "RPN_BBOX_STD_DEV": [0.1, 0.1, 0.2, 0.2],
    "RPN_NMS_THRESHOLD": 0.7, "RPN_TRAIN_ANCHORS_PER_IMAGE": 256, "STEPS_PER_EPOCH": 16846,
    "TOP_DOWN_PYRAMID_SIZE": 256, "TRAIN_BN": False, "TRAIN_ROIS_PER_IMAGE": 200, "USE_MINI_MASK": True,
    "USE_RPN_ROIS": True, "VALIDATION_STEPS": 4212, "WEIGHT_DECAY": 0.0001,
    "LOSS_WEIGHTS": {name: 1.0 for name in LOSS_NAMES},
}


def appendix_b_check(config: MaskRCNNConfig | None = None) -> "Any":
    """Appendix B beside ``config`` (default: ``MaskRCNNConfig()``): one row per printed value."""
    import pandas as pd

    config = config or MaskRCNNConfig()
    ours = config.to_dict()
    ours.update(IMAGE_SHAPE=list(config.image_shape), BATCH_SIZE=config.batch_size, IMAGE_MAX_DIM=config.image_size,
                IMAGE_MIN_DIM=config.image_size)
    ours = {k.upper(): v for k, v in ours.items()}
    rows = []
    for key, printed in APPENDIX_B.items():
        value = ours.get(key)
        same = (list(value) == list(printed)) if isinstance(printed, list) and value is not None else value == printed
        rows.append({"setting": key, "Appendix B": str(printed), "kerasmt": str(value), "same": bool(same)})
    return pd.DataFrame(rows).set_index("setting")
