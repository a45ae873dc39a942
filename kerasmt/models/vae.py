"""Convolutional variational autoencoder for 32x32 grey images (FairFace study, report's Task 5).

The architecture reproduces the report exactly:

* encoder (58,772 parameters): Conv2D 16@3x3 valid relu -> MaxPool 2 -> Conv2D 32@3x3 -> MaxPool 2 ->
  Conv2D 64@3x3 -> MaxPool 2 -> Flatten (256) -> Dense 128 relu -> ``z_mean`` Dense 10 and
  ``z_log_var`` Dense 10 -> :class:`Sampling` -> outputs ``[z_mean, z_log_var, z]``;
* decoder (45,569 parameters): Dense 128 relu -> Reshape 2x2x32 -> Conv2DTranspose 64@3 (4x4) ->
  Conv2DTranspose 32@3 stride 2 (9x9) -> Conv2D 16@3 (7x7) -> Conv2DTranspose 16@3 stride 2 (15x15)
  -> Conv2DTranspose 1@4 stride 2 sigmoid (32x32x1);
* VAE: 104,341 parameters.

The report's bugs are fixed, not copied:

* its sampling used ``z_mean + exp(z_log_var) * eps``; the standard deviation is
  ``exp(0.5 * z_log_var)``, which :class:`Sampling` uses;
* its reconstruction loss flattened the whole batch; here it is the per-image sum of squared errors,
  averaged over the batch;
* ``Lambda`` + ``add_loss`` do not exist in that form in Keras 3: :class:`VAE` is a ``keras.Model``
  with ``train_step`` / ``test_step`` that track ``loss``, ``reconstruction_loss`` and ``kl_loss``.

The report's KL term was ``0.05 * sum(exp(lv) + mu^2 - lv - 1)``, i.e. ``0.1`` times the true KL
divergence ``-0.5 * sum(1 + lv - mu^2 - exp(lv))``; the default ``beta=0.1`` reproduces that weighting.

``train_step`` / ``test_step`` use ``tf.GradientTape`` and need the TensorFlow backend; the layers,
the losses and inference (``predict``, ``encode``, ``decode``, ``sample``) use ``keras.ops`` only.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import keras
import numpy as np
from keras import layers, ops

from kerasmt.losses import replica_share
from kerasmt.models._common import model_builder

__all__ = [
    "Sampling",
    "VAE",
    "build_decoder",
    "build_encoder",
    "build_vae",
    "vae_losses",
]

REPORT_LATENT_DIM = 10
REPORT_BETA = 0.1  # the report's 0.05 * sum(exp(lv) + mu^2 - lv - 1) == 0.1 * KL


@keras.saving.register_keras_serializable(package="kerasmt")
class Sampling(layers.Layer):
    """Reparameterisation trick: ``z = z_mean + exp(0.5 * z_log_var) * eps``, ``eps ~ N(0, I)``.

    Inputs are ``[z_mean, z_log_var]`` of the same shape. The layer always samples (training or not);
    :class:`VAE` decodes ``z_mean`` instead of ``z`` at inference. ``seed`` seeds the layer's own
    ``keras.random.SeedGenerator`` (``None``: drawn from the global seed, see ``kerasmt.set_seed``).
    """

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Sequence[Any]) -> Any:
        z_mean, z_log_var = inputs
        eps = keras.random.normal(
            ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator
        )
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape: Sequence[Any]) -> Any:
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["seed"] = self.seed
        return config


@model_builder()
def build_encoder(
    input_shape: tuple[int, int, int] = (32, 32, 1),
    weights: str | os.PathLike | None = None,
    name: str = "encoder",
    *,
    latent_dim: int = REPORT_LATENT_DIM,
    filters: Sequence[int] = (16, 32, 64),
    dense_units: int = 128,
    seed: int | None = None,
) -> keras.Model:
    """The report's encoder: ``[Conv2D f@3x3 valid relu -> MaxPool 2] x len(filters)`` -> Flatten ->
    Dense ``dense_units`` relu -> ``z_mean``, ``z_log_var`` (Dense ``latent_dim``) -> :class:`Sampling`.

    Returns a functional model with outputs ``[z_mean, z_log_var, z]``; 58,772 parameters with the
    defaults (the report's). ``seed`` seeds the sampling layer.
    """
    if latent_dim < 1:
        raise ValueError(f"build_encoder: latent_dim must be >= 1, got {latent_dim}")
    inputs = keras.Input(shape=tuple(input_shape), name="encoder_input")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 3, strides=1, padding="valid", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="encoder_hidden_layer")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name=name)


@model_builder(rank=1)
def build_decoder(
    input_shape: tuple[int] = (REPORT_LATENT_DIM,),
    weights: str | os.PathLike | None = None,
    name: str = "decoder",
    *,
    channels: int = 1,
) -> keras.Model:
    """The report's decoder, latent vector -> 32x32x``channels`` image in [0, 1] (sigmoid).

    Its input is the latent vector, so ``input_shape`` is ``(latent_dim,)`` (the report's 10).

    Dense 128 relu -> Reshape 2x2x32 -> Conv2DTranspose 64@3 (4x4x64) -> Conv2DTranspose 32@3 s2
    (9x9x32) -> Conv2D 16@3 (7x7x16) -> Conv2DTranspose 16@3 s2 (15x15x16) -> Conv2DTranspose
    ``channels``@4 s2 sigmoid (32x32). All convolutions are 'valid'. 45,569 parameters with the
    defaults (1408, 18496, 18464, 4624, 2320, 257).
    """
    inputs = keras.Input(shape=input_shape, name="z_sampling")
    x = layers.Dense(128, activation="relu", name="decoder_hidden_layer")(inputs)
    x = layers.Reshape((2, 2, 32), name="reshape")(x)
    x = layers.Conv2DTranspose(64, 3, strides=1, padding="valid", activation="relu", name="deconv1")(x)
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="valid", activation="relu", name="deconv2")(x)
    x = layers.Conv2D(16, 3, strides=1, padding="valid", activation="relu", name="conv")(x)
    x = layers.Conv2DTranspose(16, 3, strides=2, padding="valid", activation="relu", name="deconv3")(x)
    outputs = layers.Conv2DTranspose(
        channels, 4, strides=2, padding="valid", activation="sigmoid", name="decoder_output"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def vae_losses(
    x: Any, reconstruction: Any, z_mean: Any, z_log_var: Any, beta: float = REPORT_BETA
) -> dict[str, Any]:
    """VAE losses (backend tensors, float32): per-image values averaged over the batch.

    * ``reconstruction_loss`` = mean over images of the sum over pixels of ``(x - reconstruction)^2``;
    * ``kl_loss`` = mean over images of ``-0.5 * sum(1 + z_log_var - z_mean^2 - exp(z_log_var))``;
    * ``loss`` = ``reconstruction_loss + beta * kl_loss``.
    """
    x = ops.cast(x, "float32")
    reconstruction = ops.cast(reconstruction, "float32")
    z_mean = ops.cast(z_mean, "float32")
    z_log_var = ops.cast(z_log_var, "float32")
    pixel_axes = tuple(range(1, len(x.shape)))
    recon = ops.mean(ops.sum(ops.square(x - reconstruction), axis=pixel_axes))
    kl = ops.mean(
        -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
    )
    return {"loss": recon + beta * kl, "reconstruction_loss": recon, "kl_loss": kl}


def _images(data: Any) -> Any:
    """The images of a batch that is ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x


@keras.saving.register_keras_serializable(package="kerasmt")
class VAE(keras.Model):
    """Variational autoencoder made of an ``encoder`` (x -> ``[z_mean, z_log_var, z]``) and a
    ``decoder`` (z -> image in [0, 1]).

    ``call(x, training)`` returns the reconstruction: the decoder of the sampled ``z`` when
    ``training=True``, of ``z_mean`` otherwise (so ``predict`` / :meth:`reconstruct` are
    deterministic). ``fit`` / ``evaluate`` minimise ``reconstruction_loss + beta * kl_loss`` (see
    :func:`vae_losses`) on datasets yielding ``x`` or ``(x, y)`` (``y`` and sample weights are
    ignored; the target is ``x``), and report ``loss``, ``reconstruction_loss`` and ``kl_loss``
    (``val_*`` too). Validation uses sampled ``z`` as training does, so both losses estimate the same
    quantity. ``beta=0.1`` reproduces the report's KL weighting (its ``0.05 * sum(exp(lv) + mu^2 -
    lv - 1)`` is 0.1 x KL). Training steps need the TensorFlow backend.
    """

    def __init__(
        self, encoder: keras.Model, decoder: keras.Model, beta: float = REPORT_BETA, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    # -- Keras plumbing ---------------------------------------------------------------------------
    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    @property
    def latent_dim(self) -> int:
        """Size of the latent vector (the decoder's input)."""
        return int(self.decoder.inputs[0].shape[-1])

    def build(self, input_shape: Any) -> None:
        # encoder and decoder are functional models, built at construction
        if not self.encoder.built:
            self.encoder.build(input_shape)
        if not self.decoder.built:
            self.decoder.build((None, self.latent_dim))
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        z_mean, _, z = self.encoder(inputs, training=training)
        return self.decoder(z if training else z_mean, training=training)

    def _vae_losses(self, x: Any, training: bool) -> dict[str, Any]:
        x = ops.cast(x, self.compute_dtype)
        z_mean, z_log_var, z = self.encoder(x, training=training)
        reconstruction = self.decoder(z, training=training)
        return vae_losses(x, reconstruction, z_mean, z_log_var, self.beta)

    def _update_trackers(self, losses: dict[str, Any]) -> dict[str, Any]:
        self.total_loss_tracker.update_state(losses["loss"])
        self.reconstruction_loss_tracker.update_state(losses["reconstruction_loss"])
        self.kl_loss_tracker.update_state(losses["kl_loss"])
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, Any]:
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError(
                f"VAE.train_step needs the TensorFlow backend, got KERAS_BACKEND={keras.backend.backend()!r}"
            )
        import tensorflow as tf

        x = _images(data)
        with tf.GradientTape() as tape:
            losses = self._vae_losses(x, training=True)
            # Keras sums the replicas' gradients: each replica contributes its share of the mean
            loss = replica_share(losses["loss"])
            if self.optimizer is not None and hasattr(self.optimizer, "scale_loss"):
                scaled = self.optimizer.scale_loss(loss)
            else:
                scaled = loss
        grads = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._update_trackers(losses)

    def test_step(self, data: Any) -> dict[str, Any]:
        return self._update_trackers(self._vae_losses(_images(data), training=False))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "beta": self.beta,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> "VAE":
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"), custom_objects=custom_objects)
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"), custom_objects=custom_objects)
        return cls(encoder=encoder, decoder=decoder, **config)

    # -- helpers returning NumPy ------------------------------------------------------------------
    def encode(self, x: Any, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """``(z_mean, z_log_var)`` of images ``x`` (array or dataset), as NumPy arrays."""
        z_mean, z_log_var, _ = self.encoder.predict(x, batch_size=batch_size, verbose=0)
        return np.asarray(z_mean), np.asarray(z_log_var)

    def decode(self, z: Any, batch_size: int = 256) -> np.ndarray:
        """Images decoded from latent vectors ``z`` of shape ``(n, latent_dim)``."""
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"VAE.decode: z must have shape (n, {self.latent_dim}), got {z.shape}"
            )
        return np.asarray(self.decoder.predict(z, batch_size=batch_size, verbose=0))

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """``n`` images decoded from ``z ~ N(0, I)`` (NumPy generator seeded with ``seed``)."""
        if n < 1:
            raise ValueError(f"VAE.sample: n must be >= 1, got {n}")
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim)).astype("float32")
        return self.decode(z)

    def reconstruct(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Deterministic reconstructions ``decoder(z_mean(x))`` of images ``x`` (array or dataset)."""
        return np.asarray(self.predict(x, batch_size=batch_size, verbose=0))


@model_builder()
def build_vae(
    input_shape: tuple[int, int, int] = (32, 32, 1),
    weights: str | os.PathLike | None = None,
    name: str = "vae",
    *,
    latent_dim: int = REPORT_LATENT_DIM,
    beta: float = REPORT_BETA,
    seed: int | None = None,
) -> VAE:
    """The report's VAE (latent 10, 104,341 parameters), built and ready to ``compile`` with
    ``keras.optimizers.Adam(1e-3)``. ``seed`` seeds the sampling layer; weight initialisation follows
    the global seed (``kerasmt.set_seed``). The decoder always produces 32x32 images, so
    ``input_shape`` must be ``(32, 32, channels)``.
    """
    if input_shape[:2] != (32, 32):
        raise ValueError(
            f"build_vae: input_shape must be (32, 32, channels) to match the decoder's 32x32 output, "
            f"got {input_shape!r}"
        )
    encoder = build_encoder(input_shape, latent_dim=latent_dim, seed=seed)
    decoder = build_decoder((latent_dim,), channels=input_shape[2])
    vae = VAE(encoder, decoder, beta=beta, name=name)
    vae.build((None, *input_shape))
    return vae
