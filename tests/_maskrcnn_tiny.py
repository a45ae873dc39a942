"""The tiny Mask R-CNN configuration the Mask R-CNN tests share: a light backbone at 64 px, four
classes, few anchors, proposals and RoIs, 14x14 masks: built and trained in seconds on a CPU."""
from __future__ import annotations

from kerasmt.models import maskrcnn as mr

SIZE = 64


def tiny_config(**kw) -> mr.MaskRCNNConfig:
    """The tiny configuration, with ``kw`` overriding any of its values."""
    values = dict(backbone="light", image_size=SIZE, num_classes=4, light_widths=(8, 16, 16, 32), train_bn=True,
                  rpn_anchor_scales=(4, 8, 16, 32, 64), top_down_pyramid_size=16, rpn_channels=16, pre_nms_limit=300,
                  post_nms_rois_training=64, post_nms_rois_inference=32, train_rois_per_image=16,
                  fpn_classif_fc_layers_size=32, mask_head_channels=8, mask_pool_size=7, mask_shape=(14, 14),
                  mini_mask_shape=(28, 28), max_gt_instances=4, detection_max_instances=5, images_per_gpu=2,
                  add_gt_to_proposals=True, detection_min_confidence=0.5)
    values.update(kw)
    return mr.MaskRCNNConfig(**values)
