"""Mask R-CNN for Keras 3 (the fashion report's winning model; Matterport's TF1 code does not run
on Keras 3 and KerasHub has none).

    from kerasmt.models import maskrcnn
    cfg = maskrcnn.MaskRCNNConfig(backbone="light", image_size=128, num_classes=12)
    model = maskrcnn.build_maskrcnn(config=cfg)                # training + inference graphs
    ds = maskrcnn.make_dataset(images, masks, labels, cfg)     # tf.data batches with targets
    history = maskrcnn.train_stages(model, lambda aug: maskrcnn.make_dataset(..., augment=aug), stages)
    instances = maskrcnn.predict_instances(model, test_images) # scored by kerasmt.metrics_instances
    found = maskrcnn.detect(model, [photo])                    # photos of any size -> original-size masks
    report = maskrcnn.load_coco_weights(model, "mask_rcnn_coco.h5")  # config preprocessing="matterport"
    model.inference_model.save("mask_rcnn.keras")

Modules: :mod:`.config` (Appendix B defaults), :mod:`.anchors`, :mod:`.boxes`, :mod:`.targets`,
:mod:`.layers`, :mod:`.losses`, :mod:`.model`, :mod:`.data`, :mod:`.training`, :mod:`.inference`,
:mod:`.weights`, :mod:`.detect`, :mod:`.fast`.

Importing this package registers every custom layer (``keras.saving``), so that
``keras.models.load_model`` reads a saved Mask R-CNN.
"""
from kerasmt.models.maskrcnn.anchors import config_anchors, denorm_boxes, generate_anchors, norm_boxes
from kerasmt.models.maskrcnn.boxes import decode_boxes, decode_boxes_np, encode_boxes, encode_boxes_np, iou_matrix
from kerasmt.models.maskrcnn.config import APPENDIX_B, LOSS_NAMES, MaskRCNNConfig, appendix_b_check
from kerasmt.models.maskrcnn.data import example_targets, make_dataset, make_dataset_from
from kerasmt.models.maskrcnn.detect import (REPORT_MAX_PER_CLASS, compiled_inference, detect, draw_instances,
                                            limit_per_class)
from kerasmt.models.maskrcnn.inference import detections_to_instances, paste_masks, predict_instances, predictor
from kerasmt.models.maskrcnn.layers import (DetectionLayer, DetectionTargetLayer, ProposalLayer, PyramidRoIAlign,
                                            SelectClassMask, SliceRois, UnflattenRois)
from kerasmt.models.maskrcnn.model import MaskRCNN, build_inference_model, build_maskrcnn, model_config
from kerasmt.models.maskrcnn.targets import build_rpn_targets, detection_targets
from kerasmt.models.maskrcnn.training import REPORT_STAGES, Stage, train_stages
from kerasmt.models.maskrcnn.weights import (format_load_report, load_coco_weights, load_report_table,
                                             load_weights_by_name, matterport_to_keras_resnet, read_weights_by_name,
                                             weights_origin)

__all__ = [
    "APPENDIX_B", "LOSS_NAMES", "REPORT_STAGES", "DetectionLayer", "DetectionTargetLayer", "MaskRCNN",
    "MaskRCNNConfig", "ProposalLayer", "PyramidRoIAlign", "SelectClassMask", "SliceRois", "Stage", "UnflattenRois",
    "appendix_b_check", "build_inference_model", "build_maskrcnn", "build_rpn_targets", "config_anchors",
    "decode_boxes", "decode_boxes_np", "denorm_boxes", "detection_targets", "detections_to_instances",
    "encode_boxes", "encode_boxes_np", "example_targets", "generate_anchors", "iou_matrix", "load_weights_by_name",
    "make_dataset", "make_dataset_from", "matterport_to_keras_resnet", "norm_boxes", "paste_masks", "predict_instances", "predictor",
    "read_weights_by_name", "train_stages", "REPORT_MAX_PER_CLASS", "compiled_inference", "detect", "draw_instances",
    "limit_per_class", "model_config", "format_load_report", "load_coco_weights", "load_report_table",
    "weights_origin",
]
