"""Model builders. Every builder's defaults are the configuration of the report it reproduces.

FairFace: :func:`dense_net`, :func:`small_cnn`, :func:`own_cnn`, :func:`multitask_cnn`, the VAE.
Attribute MTL: :func:`simple_resnet_v2` (+ :func:`add_mask_decoder`). UTKFace: :func:`model_a`,
:func:`model_a_cross_stitch` (:class:`CrossStitch`), :func:`transfer_model`. Beauty:
:func:`finetune_model`, :func:`scratch_model`, :func:`simplenet`. Fashion: :func:`refinenet`,
:func:`multilabel_classifier`, and the Mask R-CNN in :mod:`kerasmt.models.maskrcnn`.
Study-specific helpers stay in their modules (``kerasmt.models.finetune`` etc.).

Every builder in :data:`BUILDERS` follows one convention, in the style of ``keras.applications``::

    builder(input_shape=<report default>, weights=None, name="<default>", *, <task arguments>)

``weights``: None (random), ``"imagenet"`` where a pretrained backbone exists, or a weights file
(``.weights.h5`` / ``.keras``) loaded after the build (see :mod:`kerasmt.models._common`).
:func:`add_mask_decoder` transforms a built model; :func:`dense_trunk`, :func:`conv_pool_trunk`,
:func:`dense_head`, :func:`multitask_heads`, :func:`resnet_v2_features` and :func:`mask_decoder`
are layers on tensors.
"""
from kerasmt.models._common import BUILDERS
from kerasmt.models.backbones import conv_pool_trunk, dense_trunk
from kerasmt.models.classifiers import dense_net, multitask_cnn, own_cnn, small_cnn
from kerasmt.models.cross_stitch import CrossStitch
from kerasmt.models.finetune import FinetunePreprocess, RandomAffine, finetune_model, scratch_model, unfreeze_blocks
from kerasmt.models.heads import dense_head, multitask_heads
from kerasmt.models.multilabel import compile_multilabel, multilabel_classifier
from kerasmt.models.refinenet import BilinearUpsampling, MeanPixelNormalization, instances_from_semantic, light_resnet, refinenet
from kerasmt.models.resnet import resnet_v2_features, simple_resnet_v2
from kerasmt.models.segmentation import add_mask_decoder, compile_joint, mask_decoder
from kerasmt.models.simplenet import simplenet
from kerasmt.models.transfer import transfer_model
from kerasmt.models.vae import VAE, Sampling, build_decoder, build_encoder, build_vae
from kerasmt.models.vgg import compile_age_gender, model_a, model_a_cross_stitch
from kerasmt.models.maskrcnn.model import build_maskrcnn  # noqa: E402,I001  (last: it imports refinenet)

__all__ = [
    "BUILDERS",
    "VAE",
    "BilinearUpsampling",
    "CrossStitch",
    "FinetunePreprocess",
    "MeanPixelNormalization",
    "RandomAffine",
    "Sampling",
    "add_mask_decoder",
    "build_decoder",
    "build_encoder",
    "build_maskrcnn",
    "build_vae",
    "compile_age_gender",
    "compile_joint",
    "compile_multilabel",
    "conv_pool_trunk",
    "dense_head",
    "dense_net",
    "dense_trunk",
    "finetune_model",
    "instances_from_semantic",
    "light_resnet",
    "mask_decoder",
    "model_a",
    "model_a_cross_stitch",
    "multilabel_classifier",
    "multitask_cnn",
    "multitask_heads",
    "own_cnn",
    "refinenet",
    "resnet_v2_features",
    "scratch_model",
    "simple_resnet_v2",
    "simplenet",
    "small_cnn",
    "transfer_model",
    "unfreeze_blocks",
]
