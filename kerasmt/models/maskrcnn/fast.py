"""Faster CPU inference of a trained Mask R-CNN (issue: the report's 512 px ResNet-101-FPN took
1.0 s per image on 2 cores).

:func:`fast_inference_model` rebuilds the inference graph with the same weights and
``compute="bfloat16"``: convolutions and dense layers compute in bfloat16 (oneDNN runs them with
AVX-512 BF16 / AMX where the CPU has them), every BatchNormalization is folded into the
convolution before it (:func:`kerasmt.models.fold.fold_batchnorm`: about 20 % of the ResNet-101's
time at 512 px), while the proposal, RoIAlign and detection layers and
the class / mask probabilities stay float32 (NMS and box decoding need the precision). Together
with :func:`kerasmt.models.maskrcnn.detect.compiled_inference` (one ``tf.function`` with a fixed
input signature, traced once) this is the "fast" path of ``benchmarks/maskrcnn_cpu.py``.

XLA (``jit_compile``) was measured and is slower on this graph on CPU (the ResNet-101 features
took 3.7-5.9 s vs 0.9-1.6 s), so it is not used.
"""
from __future__ import annotations

import keras

from kerasmt.models.fold import fold_batchnorm
from kerasmt.models.maskrcnn.model import MaskRCNN, model_config

#: compute dtypes :func:`fast_inference_model` accepts
COMPUTE: tuple[str, ...] = ("float32", "bfloat16")


def fast_inference_model(model: keras.Model, compute: str = "bfloat16", fold: bool = True,
                         **config_changes) -> keras.Model:
    """The inference model of ``model`` (a :class:`MaskRCNN` or an inference model, also loaded
    from ``.keras``) rebuilt with ``compute`` ("bfloat16": mixed precision, float32 weights) and
    ``config_changes`` (e.g. ``detection_max_instances=10``, ``image_size=256``), weights copied,
    and with ``fold`` its BatchNormalizations folded into the convolutions (inference only)."""
    if compute not in COMPUTE:
        raise ValueError(f"compute must be one of {COMPUTE}, got {compute!r}")
    config = model_config(model).replace(**config_changes)
    source = getattr(model, "inference_model", model)
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_bfloat16" if compute == "bfloat16" else "float32")
        other = MaskRCNN(config)
    finally:
        keras.config.set_dtype_policy(previous)
    other.inference_model.set_weights(source.get_weights())
    return fold_batchnorm(other.inference_model) if fold else other.inference_model
