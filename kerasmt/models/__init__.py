"""Model builders. Every builder's defaults are the configuration of the report it reproduces."""
from kerasmt.models.backbones import conv_pool_trunk, dense_trunk
from kerasmt.models.classifiers import dense_net, multitask_cnn, own_cnn, small_cnn
from kerasmt.models.heads import dense_head, multitask_heads
from kerasmt.models.vae import VAE, Sampling, build_decoder, build_encoder, build_vae

__all__ = [
    "VAE",
    "Sampling",
    "build_decoder",
    "build_encoder",
    "build_vae",
    "conv_pool_trunk",
    "dense_head",
    "dense_net",
    "dense_trunk",
    "multitask_cnn",
    "multitask_heads",
    "own_cnn",
    "small_cnn",
]
