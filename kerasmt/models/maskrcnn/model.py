"""Mask R-CNN (He et al. 2017) with a ResNet-FPN backbone, in the Keras 3 functional API.

The layout and layer names follow Matterport's implementation (the report's code), so its
weights files load by name into the FPN, RPN and heads (:func:`kerasmt.models.maskrcnn.weights.load_weights_by_name`)::

    image (float RGB 0..255, image_size x image_size) -> MeanPixelNormalization (COCO mean; BGR for
      keras.applications ResNets) -> backbone C2..C5 (ResNet50/101, or the light ResNet)
      -> FPN (fpn_c{l}p{l} 1x1, top-down x2 upsampling + add, fpn_p{l} 3x3; P6 = max-pool of P5)
      -> RPN on P2..P6 (shared 3x3 conv, 2 scores + 4 deltas per anchor) -> ProposalLayer (NMS)
      training:  -> DetectionTargetLayer (RoI sampling, targets)
      both:      -> classifier head: PyramidRoIAlign 7x7 -> conv 7x7 (fc) -> BN -> conv 1x1 (fc) -> BN
                    -> class logits (K) + box deltas (K x 4)
      inference: -> DetectionLayer (score threshold, per-class NMS, max detections)
      both:      -> mask head: PyramidRoIAlign 14x14 -> 4 x (3x3 conv, BN, ReLU) -> 2x2 deconv
                    -> 1x1 conv, K mask logits 28x28 (inference: sigmoid, the detected class's channel)

:class:`MaskRCNN` holds both graphs (shared layers) and trains with the five losses in its own
``train_step``; its ``inference_model`` is a plain functional model that round-trips through
``.keras``: ``{"detections": (B, M, 6) [y1, x1, y2, x2, class_id, score], "masks": (B, M, 28, 28)}``.
"""
from __future__ import annotations

import os
from typing import Any

import keras
import tensorflow as tf
from keras import layers

from kerasmt.models.maskrcnn import losses as L
from kerasmt.models.maskrcnn.config import LOSS_NAMES, MaskRCNNConfig
from kerasmt.models.maskrcnn.layers import (ConfigCarrier, DetectionLayer, DetectionTargetLayer, ProposalLayer, PyramidRoIAlign,
                                            SelectClassMask, SliceRois, UnflattenRois)
from kerasmt.models._common import load_weights_file, model_builder
from kerasmt.models.refinenet import MeanPixelNormalization, light_resnet, resnet_features

#: name of the inference model's :class:`ConfigCarrier` layer
CONFIG_LAYER = "maskrcnn_config"
#: layer-name patterns of the two training stages (Matterport's ``layers="heads"`` / ``"all"``)
HEADS_PREFIXES: tuple[str, ...] = ("fpn_", "rpn_", "mrcnn_")


# ------------------------------------------------------------------------------------------ parts
def build_backbone(config: MaskRCNNConfig, weights: str | os.PathLike | None = None) -> tuple[keras.Model, bool]:
    """(model image -> [C2, C3, C4, C5], whether it expects BGR caffe-style input).

    ``resnet50`` / ``resnet101``: keras.applications ResNets, ``weights`` "imagenet", None or a
    weights file; ``light``: :func:`kerasmt.models.refinenet.light_resnet` (``weights`` None or a
    file)."""
    shape = config.image_shape
    if config.backbone == "light":
        return light_resnet(shape, weights, "backbone", widths=config.light_widths), False
    encoder = {"resnet50": "ResNet50", "resnet101": "ResNet101"}[config.backbone]
    model = resnet_features(encoder, shape, weights)
    return keras.Model(model.inputs, model.outputs, name="backbone"), True


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name=name)


def build_fpn(features: list, channels: int) -> list:
    """Feature pyramid P2..P6 from C2..C5 (Matterport's layer names)."""
    c2, c3, c4, c5 = features
    p5 = layers.Conv2D(channels, 1, name="fpn_c5p5")(c5)
    p4 = layers.Add(name="fpn_p4add")([layers.UpSampling2D(2, name="fpn_p5upsampled")(p5),
                                        layers.Conv2D(channels, 1, name="fpn_c4p4")(c4)])
    p3 = layers.Add(name="fpn_p3add")([layers.UpSampling2D(2, name="fpn_p4upsampled")(p4),
                                        layers.Conv2D(channels, 1, name="fpn_c3p3")(c3)])
    p2 = layers.Add(name="fpn_p2add")([layers.UpSampling2D(2, name="fpn_p3upsampled")(p3),
                                        layers.Conv2D(channels, 1, name="fpn_c2p2")(c2)])
    p2 = layers.Conv2D(channels, 3, padding="same", name="fpn_p2")(p2)
    p3 = layers.Conv2D(channels, 3, padding="same", name="fpn_p3")(p3)
    p4 = layers.Conv2D(channels, 3, padding="same", name="fpn_p4")(p4)
    p5 = layers.Conv2D(channels, 3, padding="same", name="fpn_p5")(p5)
    p6 = layers.MaxPooling2D(1, strides=2, name="fpn_p6")(p5)
    return [p2, p3, p4, p5, p6]


def build_rpn_model(config: MaskRCNNConfig) -> keras.Model:
    """The RPN shared by all levels: feature map -> [class logits (B, n, 2), probs, deltas (B, n, 4)]."""
    a = config.anchors_per_location
    fmap = keras.Input((None, None, config.top_down_pyramid_size), name="input_rpn_feature_map")
    shared = layers.Conv2D(config.rpn_channels, 3, padding="same", activation="relu",
                           strides=config.rpn_anchor_stride, name="rpn_conv_shared")(fmap)
    logits = layers.Reshape((-1, 2), name="rpn_class_logits_reshape")(
        layers.Conv2D(2 * a, 1, name="rpn_class_raw")(shared))
    probs = layers.Activation("softmax", name="rpn_class_xxx")(logits)
    deltas = layers.Reshape((-1, 4), name="rpn_bbox_reshape")(layers.Conv2D(4 * a, 1, name="rpn_bbox_pred")(shared))
    return keras.Model(fmap, [logits, probs, deltas], name="rpn_model")


def build_classifier_head(config: MaskRCNNConfig) -> keras.Model:
    """``[rois (B, R, 4), P2..P5]`` -> ``[class logits (B, R, K), class probs, box deltas (B, R, K, 4)]``."""
    c, k, fc = config.top_down_pyramid_size, config.num_classes, config.fpn_classif_fc_layers_size
    rois = keras.Input((None, 4), name="input_rois")
    maps = [keras.Input((None, None, c), name=f"input_p{i}") for i in (2, 3, 4, 5)]
    bn_training = None if config.train_bn else False
    x = PyramidRoIAlign((config.pool_size,) * 2, config.image_size, name="roi_align_classifier",
                        dtype="float32")([rois, *maps])
    x = layers.Conv2D(fc, config.pool_size, padding="valid", name="mrcnn_class_conv1")(x)
    x = layers.ReLU(name="mrcnn_class_relu1")(_bn("mrcnn_class_bn1")(x, training=bn_training))
    x = layers.Conv2D(fc, 1, name="mrcnn_class_conv2")(x)
    x = layers.ReLU(name="mrcnn_class_relu2")(_bn("mrcnn_class_bn2")(x, training=bn_training))
    x = layers.Reshape((fc,), name="pool_squeeze")(x)
    logits = UnflattenRois((k,), name="mrcnn_class_logits_rois")(
        [layers.Dense(k, name="mrcnn_class_logits")(x), rois])
    probs = layers.Activation("softmax", dtype="float32", name="mrcnn_class")(logits)
    deltas = UnflattenRois((k, 4), name="mrcnn_bbox")([layers.Dense(4 * k, name="mrcnn_bbox_fc")(x), rois])
    return keras.Model([rois, *maps], [logits, probs, deltas], name="mrcnn_classifier")


def build_mask_head(config: MaskRCNNConfig) -> keras.Model:
    """``[rois (B, R, 4), P2..P5]`` -> mask logits ``(B, R, 28, 28, K)``."""
    c, k, ch = config.top_down_pyramid_size, config.num_classes, config.mask_head_channels
    rois = keras.Input((None, 4), name="input_rois")
    maps = [keras.Input((None, None, c), name=f"input_p{i}") for i in (2, 3, 4, 5)]
    bn_training = None if config.train_bn else False
    x = PyramidRoIAlign((config.mask_pool_size,) * 2, config.image_size, name="roi_align_mask",
                        dtype="float32")([rois, *maps])
    for i in range(1, 5):
        x = layers.Conv2D(ch, 3, padding="same", name=f"mrcnn_mask_conv{i}")(x)
        x = layers.ReLU(name=f"mrcnn_mask_relu{i}")(_bn(f"mrcnn_mask_bn{i}")(x, training=bn_training))
    x = layers.Conv2DTranspose(ch, 2, strides=2, activation="relu", name="mrcnn_mask_deconv")(x)
    x = layers.Conv2D(k, 1, name="mrcnn_mask")(x)
    out = UnflattenRois((*config.mask_shape, k), name="mrcnn_mask_rois")([x, rois])
    return keras.Model([rois, *maps], out, name="mrcnn_mask_head")


# ------------------------------------------------------------------------------------------ model
@keras.saving.register_keras_serializable(package="kerasmt.maskrcnn")
class MaskRCNN(keras.Model):
    """Mask R-CNN: a training graph and an inference graph sharing their layers.

    ``fit`` takes batches from :func:`kerasmt.models.maskrcnn.data.make_dataset` (dicts with
    ``image``, ``gt_class_ids``, ``gt_boxes``, ``gt_masks``, ``rpn_match``, ``rpn_bbox``) and
    minimises the weighted sum of the five losses (``config.loss_weights``), reported as
    ``loss`` and ``rpn_class_loss`` ... ``mrcnn_mask_loss``. ``model(images)`` runs the
    inference graph; :attr:`inference_model` is the functional model to save.
    """

    def __init__(self, config: MaskRCNNConfig | dict | None = None, backbone_weights: str | None = None,
                 **kwargs: Any):
        kwargs.setdefault("name", "mask_rcnn")
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = MaskRCNNConfig.from_dict(config)
        self.config = config or MaskRCNNConfig()
        cfg = self.config
        self.backbone, _ = build_backbone(cfg, backbone_weights)
        # channel order and mean follow the weights' origin (config.preprocessing): Matterport's COCO
        # weights saw RGB minus the mean pixel, keras.applications' ImageNet ResNets BGR minus the mean
        self.normalize = MeanPixelNormalization(cfg.mean_pixel, input_scale=1.0, bgr=cfg.bgr, name="normalize")
        self.rpn = build_rpn_model(cfg)
        self.classifier_head = build_classifier_head(cfg)
        self.mask_head = build_mask_head(cfg)
        self.feature_model = self._build_features()
        self.inference_model = self._build_inference()
        self.training_model = self._build_training()
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", *LOSS_NAMES)}

    # -------------------------------------------------------------------------- graphs
    def _build_features(self) -> keras.Model:
        cfg = self.config
        image = keras.Input(cfg.image_shape, name="input_image")
        x = self.normalize(image)
        feats = self.backbone(x, training=None if cfg.train_bn else False)
        p = build_fpn(list(feats), cfg.top_down_pyramid_size)
        outs = [self.rpn(level) for level in p]
        logits = layers.Concatenate(axis=1, name="rpn_class_logits")([o[0] for o in outs])
        probs = layers.Concatenate(axis=1, name="rpn_class")([o[1] for o in outs])
        deltas = layers.Concatenate(axis=1, name="rpn_bbox")([o[2] for o in outs])
        return keras.Model(image, {"p": p[:4], "rpn_class_logits": logits, "rpn_probs": probs, "rpn_bbox": deltas},
                           name="features")

    def _proposals(self, count: int, name: str) -> ProposalLayer:
        cfg = self.config
        return ProposalLayer(count, cfg.rpn_nms_threshold, cfg.pre_nms_limit, cfg.image_size, cfg.rpn_anchor_scales,
                             cfg.rpn_anchor_ratios, cfg.backbone_strides, cfg.rpn_anchor_stride, cfg.rpn_bbox_std_dev,
                             name=name, dtype="float32")

    def _build_inference(self) -> keras.Model:
        cfg = self.config
        image = keras.Input(cfg.image_shape, name="input_image")
        carried = ConfigCarrier(cfg.to_dict(), name=CONFIG_LAYER)(image)
        f = self.feature_model(carried)
        rois = self._proposals(cfg.post_nms_rois_inference, "ROI")([f["rpn_probs"], f["rpn_bbox"]])
        _, probs, deltas = self.classifier_head([rois, *f["p"]])
        detections = DetectionLayer(cfg.detection_max_instances, cfg.detection_min_confidence,
                                    cfg.detection_nms_threshold, cfg.bbox_std_dev,
                                    name="mrcnn_detection", dtype="float32")([rois, probs, deltas])
        boxes = layers.Identity(name="detection_boxes")(detections[..., :4])
        mask_logits = self.mask_head([boxes, *f["p"]])
        masks = layers.Activation("sigmoid", dtype="float32", name="mrcnn_mask_probs")(mask_logits)
        masks = SelectClassMask(name="masks")([masks, detections])
        return keras.Model(image, {"detections": detections, "masks": masks}, name=f"{cfg.name}_mask_rcnn_inference")

    def _build_training(self) -> keras.Model:
        cfg = self.config
        g = cfg.max_gt_instances
        mask_shape = cfg.mini_mask_shape if cfg.use_mini_mask else (cfg.image_size, cfg.image_size)
        image = keras.Input(cfg.image_shape, name="input_image")
        gt_class_ids = keras.Input((g,), dtype="int32", name="input_gt_class_ids")
        gt_boxes = keras.Input((g, 4), name="input_gt_boxes")
        gt_masks = keras.Input((g, *mask_shape), name="input_gt_masks")
        f = self.feature_model(image)
        proposals = self._proposals(cfg.post_nms_rois_training, "proposal_targets")([f["rpn_probs"], f["rpn_bbox"]])
        rois, target_class_ids, target_bbox, target_mask = DetectionTargetLayer(
            cfg.train_rois_per_image, cfg.roi_positive_ratio, cfg.bbox_std_dev, cfg.mask_shape, cfg.use_mini_mask,
            cfg.add_gt_to_proposals, name="proposal_targets_sampling")([proposals, gt_class_ids, gt_boxes, gt_masks])
        class_logits, _, deltas = self.classifier_head([rois, *f["p"]])
        n_pos = max(1, int(cfg.train_rois_per_image * cfg.roi_positive_ratio))
        pos_rois = SliceRois(n_pos, name="positive_rois")(rois)
        mask_logits = self.mask_head([pos_rois, *f["p"]])
        outputs = {
            "rpn_class_logits": f["rpn_class_logits"], "rpn_bbox": f["rpn_bbox"], "rois": rois,
            "target_class_ids": target_class_ids, "target_bbox": target_bbox,
            "target_mask": SliceRois(n_pos, name="positive_target_masks")(target_mask),
            "target_mask_class_ids": SliceRois(n_pos, name="positive_target_class_ids")(target_class_ids),
            "class_logits": class_logits, "bbox": deltas, "mask_logits": mask_logits,
        }
        return keras.Model([image, gt_class_ids, gt_boxes, gt_masks], outputs, name="training_graph")

    # -------------------------------------------------------------------------- keras API
    def call(self, inputs, training: bool = False):
        return self.inference_model(inputs, training=training)

    def compute_losses(self, batch: dict, training: bool = False) -> dict:
        """The five losses of one batch (unweighted)."""
        out = self.training_model([batch["image"], batch["gt_class_ids"], batch["gt_boxes"], batch["gt_masks"]],
                                  training=training)
        roi_valid = tf.cast(tf.reduce_any(tf.not_equal(out["rois"], 0.0), axis=-1), tf.float32)
        return {
            "rpn_class_loss": L.rpn_class_loss(batch["rpn_match"], out["rpn_class_logits"]),
            "rpn_bbox_loss": L.rpn_bbox_loss(batch["rpn_bbox"], batch["rpn_match"], out["rpn_bbox"]),
            "mrcnn_class_loss": L.mrcnn_class_loss(out["target_class_ids"], out["class_logits"], roi_valid),
            "mrcnn_bbox_loss": L.mrcnn_bbox_loss(out["target_bbox"], out["target_class_ids"], out["bbox"]),
            "mrcnn_mask_loss": L.mrcnn_mask_loss(out["target_mask"], out["target_mask_class_ids"], out["mask_logits"]),
        }

    def _total(self, losses: dict):
        weights = self.config.loss_weights
        return tf.add_n([float(weights[k]) * losses[k] for k in LOSS_NAMES])

    def _track(self, losses: dict, total) -> dict:
        self.loss_trackers["loss"].update_state(total)
        for k in LOSS_NAMES:
            self.loss_trackers[k].update_state(losses[k])
        return {k: t.result() for k, t in self.loss_trackers.items()}

    def weight_decay_loss(self):
        """Matterport's weight decay: ``WEIGHT_DECAY * sum(w ** 2) / size(w)`` summed over the trainable
        weights except BatchNorm gamma/beta, added to the loss (an L2 penalty in the gradient, not
        the optimizer's decoupled decay)."""
        wd = float(self.config.weight_decay)
        terms = [tf.reduce_sum(tf.square(v)) / tf.cast(tf.size(v), tf.float32) for v in self.trainable_variables
                 if not v.path.endswith(("gamma", "beta"))]
        return wd * tf.add_n(terms) if terms and wd > 0 else tf.constant(0.0)

    def train_step(self, data):
        batch = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            losses = self.compute_losses(batch, training=True)
            total = self._total(losses) + self.weight_decay_loss()
        variables = self.trainable_variables
        grads = tape.gradient(total, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self._track(losses, total)

    def test_step(self, data):
        batch = data[0] if isinstance(data, tuple) else data
        losses = self.compute_losses(batch, training=False)
        return self._track(losses, self._total(losses) + self.weight_decay_loss())

    @property
    def metrics(self):
        return list(self.loss_trackers.values())

    def set_trainable(self, stage: str) -> None:
        """``"heads"``: only FPN, RPN and the heads train (backbone frozen); ``"all"``: everything
        (Matterport's ``layers=`` of ``train``). Re-``compile`` afterwards."""
        if stage not in ("heads", "all"):
            raise ValueError(f"stage must be 'heads' or 'all', got {stage!r}")
        for layer in self.feature_model.layers:
            if layer is self.backbone:
                layer.trainable = stage == "all"
            elif layer.weights:
                layer.trainable = True
        for model in (self.rpn, self.classifier_head, self.mask_head):
            model.trainable = True

    def get_config(self) -> dict:
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "MaskRCNN":
        return cls(config=config["config"], name=config.get("name", "mask_rcnn"))

    def build(self, input_shape=None):  # the graphs are built in __init__
        self.built = True


def _load_full_weights(model: keras.Model, path: str | os.PathLike, builder: str) -> None:
    """``weights`` of :func:`build_maskrcnn`: Matterport's COCO file (by name, like the report) or a
    kerasmt weights file of the same configuration."""
    from kerasmt.models.maskrcnn.weights import load_coco_weights, weights_origin

    if weights_origin(path) == "matterport":
        load_coco_weights(model, path)
    else:
        load_weights_file(model, path, builder)


@model_builder(load=_load_full_weights, example="(512, 512, 3)")
def build_maskrcnn(input_shape: tuple[int, int, int] | None = None, weights: str | os.PathLike | None = None,
                   name: str = "mask_rcnn", *, config: MaskRCNNConfig | None = None,
                   backbone_weights: str | os.PathLike | None = None, **overrides: Any) -> MaskRCNN:
    """A :class:`MaskRCNN` for ``config`` (default: the report's Appendix B) with ``overrides``
    applied (``build_maskrcnn(backbone="light", image_size=128)``).

    ``input_shape``: ``(size, size, 3)``, the config's ``image_shape`` (None: the config's, the
    report's (512, 512, 3)). ``weights``: None or a full-model weights file loaded after the
    build: Matterport's ``mask_rcnn_coco.h5`` (by layer name, class-specific layers skipped when
    the class count differs; needs ``preprocessing="matterport"``) or a kerasmt ``.weights.h5`` of
    the same configuration. ``backbone_weights``: "imagenet" (ResNets, downloaded by Keras), None
    (random) or a weights file of the backbone."""
    config = config or MaskRCNNConfig()
    if input_shape is not None:
        if input_shape[0] != input_shape[1] or input_shape[2] != 3:
            raise ValueError(f"build_maskrcnn: input_shape must be square RGB (size, size, 3), got {input_shape}")
        if overrides.get("image_size", input_shape[0]) != input_shape[0]:
            raise ValueError(f"build_maskrcnn: input_shape {input_shape} contradicts image_size="
                             f"{overrides['image_size']}")
        overrides["image_size"] = input_shape[0]
    config = config.replace(**overrides) if overrides else config
    model = MaskRCNN(config, backbone_weights=None if backbone_weights is None else str(backbone_weights), name=name)
    model.build()  # its graphs are built in __init__: mark it built, so that its weights save and load
    return model


def model_config(model: keras.Model) -> MaskRCNNConfig:
    """The :class:`MaskRCNNConfig` of a :class:`MaskRCNN`, of its inference model, or of an
    inference model loaded from ``.keras`` (read from its ``maskrcnn_config`` layer)."""
    config = getattr(model, "config", None)
    if isinstance(config, MaskRCNNConfig):
        return config
    try:
        layer = model.get_layer(CONFIG_LAYER)
    except ValueError:
        raise ValueError(f"model {model.name!r} is not a kerasmt Mask R-CNN inference model: it has no "
                         f"{CONFIG_LAYER!r} layer (models saved before it existed: rebuild with "
                         f"build_maskrcnn(config=config) and copy the weights)") from None
    return MaskRCNNConfig.from_dict(layer.maskrcnn_config)


def build_inference_model(config: MaskRCNNConfig | None = None, **overrides: Any) -> keras.Model:
    """Only the functional inference model (random weights; load weights into it by name)."""
    return build_maskrcnn(config=config, **overrides).inference_model
