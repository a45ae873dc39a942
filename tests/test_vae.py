"""Tests for kerasmt.models.vae: the report's architecture (parameter counts, shapes), the fixed
sampling (std = exp(0.5 * log_var)), the per-image losses, training, and .keras round trips."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from kerasmt.models.vae import (  # noqa: E402
    VAE,
    Sampling,
    build_decoder,
    build_encoder,
    build_vae,
    vae_losses,
)


def structured_images(n: int, seed: int = 0) -> np.ndarray:
    """Gaussian blobs of random centre, width and brightness on a dim gradient: (n, 32, 32, 1) in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32].astype("float32")
    cy, cx = rng.uniform(8, 24, (2, n, 1, 1))
    width = rng.uniform(3, 7, (n, 1, 1))
    bright = rng.uniform(0.5, 1.0, (n, 1, 1))
    blob = bright * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
    grad = 0.2 * rng.uniform(0, 1, (n, 1, 1)) * xx / 31.0
    return np.clip(blob + grad, 0, 1).astype("float32")[..., None]


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return structured_images(200, seed=0)


# --- architecture ------------------------------------------------------------------------------

def test_parameter_counts_match_report():
    keras.utils.set_random_seed(0)
    encoder = build_encoder()
    decoder = build_decoder()
    assert encoder.count_params() == 58_772
    assert decoder.count_params() == 45_569
    vae = build_vae(seed=0)
    assert vae.count_params() == 104_341
    assert vae.encoder.count_params() == 58_772
    assert vae.decoder.count_params() == 45_569
    assert vae.latent_dim == 10


def test_encoder_layers_match_report():
    encoder = build_encoder()
    got = [(tuple(l.output.shape), l.count_params()) for l in encoder.layers[1:]]
    assert got == [
        ((None, 30, 30, 16), 160),
        ((None, 15, 15, 16), 0),
        ((None, 13, 13, 32), 4640),
        ((None, 6, 6, 32), 0),
        ((None, 4, 4, 64), 18496),
        ((None, 2, 2, 64), 0),
        ((None, 256), 0),
        ((None, 128), 32896),
        ((None, 10), 1290),  # z_mean
        ((None, 10), 1290),  # z_log_var
        ((None, 10), 0),  # z (Sampling)
    ]
    assert [tuple(o.shape) for o in encoder.outputs] == [(None, 10)] * 3
    assert isinstance(encoder.get_layer("z"), Sampling)


def test_decoder_layers_match_report():
    decoder = build_decoder()
    got = [(tuple(l.output.shape), l.count_params()) for l in decoder.layers[1:]]
    assert got == [
        ((None, 128), 1408),
        ((None, 2, 2, 32), 0),
        ((None, 4, 4, 64), 18496),
        ((None, 9, 9, 32), 18464),
        ((None, 7, 7, 16), 4624),
        ((None, 15, 15, 16), 2320),
        ((None, 32, 32, 1), 257),
    ]
    assert decoder.layers[-1].get_config()["activation"] == "sigmoid"


def test_build_vae_rejects_wrong_image_size():
    with pytest.raises(ValueError, match="32, 32"):
        build_vae(input_shape=(64, 64, 1))


# --- sampling ----------------------------------------------------------------------------------

def test_sampling_std_is_exp_half_log_var():
    n = 20_000
    log_var = np.log(np.array([1.0, 4.0, 0.25], "float32"))  # std 1, 2, 0.5
    z_mean = np.tile(np.array([[0.0, 3.0, -1.0]], "float32"), (n, 1))
    z_log_var = np.tile(log_var[None, :], (n, 1))
    z = keras.ops.convert_to_numpy(Sampling(seed=3)([z_mean, z_log_var]))
    assert z.shape == (n, 3)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 2.0, 0.5], rtol=0.03)
    np.testing.assert_allclose(z.mean(axis=0), [0.0, 3.0, -1.0], atol=0.05)
    # the report's bug, exp(log_var), would give std 4 for log_var = log 4
    assert abs(z[:, 1].std() - 4.0) > 1.0


def test_sampling_zero_log_var_gives_unit_std_and_is_seeded():
    zeros = np.zeros((10_000, 2), "float32")
    z1 = keras.ops.convert_to_numpy(Sampling(seed=7)([zeros, zeros]))
    z2 = keras.ops.convert_to_numpy(Sampling(seed=7)([zeros, zeros]))
    np.testing.assert_allclose(z1.std(axis=0), [1.0, 1.0], rtol=0.03)
    np.testing.assert_array_equal(z1, z2)
    layer = Sampling.from_config(Sampling(seed=7, name="z").get_config())
    assert layer.seed == 7 and layer.name == "z"


# --- losses ------------------------------------------------------------------------------------

def test_vae_losses_against_numpy():
    x = np.zeros((2, 32, 32, 1), "float32")
    recon = np.stack([np.full((32, 32, 1), 0.5), np.full((32, 32, 1), 0.25)]).astype("float32")
    z_mean = np.array([[0.0, 1.0, -2.0], [0.5, 0.0, 0.0]], "float32")
    z_log_var = np.array([[0.0, np.log(4.0), 0.0], [-1.0, 0.0, 1.0]], "float32")
    beta = 0.1
    losses = vae_losses(x, recon, z_mean, z_log_var, beta)
    out = {k: float(keras.ops.convert_to_numpy(v)) for k, v in losses.items()}
    # per-image SSE: 1024 * 0.25 = 256 and 1024 * 0.0625 = 64, averaged over the batch
    assert out["reconstruction_loss"] == pytest.approx(160.0, rel=1e-6)
    # closed form KL(N(mu, s^2) || N(0, 1)) = sum(log(1/s) + (s^2 + mu^2) / 2 - 1/2)
    s = np.exp(0.5 * z_log_var.astype("float64"))
    kl = np.sum(np.log(1.0 / s) + (s**2 + z_mean**2) / 2.0 - 0.5, axis=1).mean()
    assert out["kl_loss"] == pytest.approx(kl, rel=1e-5)
    assert out["loss"] == pytest.approx(160.0 + beta * kl, rel=1e-6)
    # perfect reconstruction and a standard-normal posterior cost nothing
    zero = vae_losses(x, x, np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32"), beta)
    assert float(keras.ops.convert_to_numpy(zero["loss"])) == pytest.approx(0.0, abs=1e-7)


def test_train_and_test_step_use_vae_losses(images):
    keras.utils.set_random_seed(1)
    vae = build_vae(seed=1, beta=0.5)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = images[:64]
    res = vae.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    # KL depends only on the (deterministic) z_mean and z_log_var: recompute it from encode()
    z_mean, z_log_var = vae.encode(x)
    assert set(res) == {"loss", "reconstruction_loss", "kl_loss"}
    s = np.exp(0.5 * z_log_var.astype("float64"))
    kl = np.sum(np.log(1.0 / s) + (s**2 + z_mean**2) / 2.0 - 0.5, axis=1).mean()
    assert res["kl_loss"] == pytest.approx(kl, rel=1e-4)
    assert res["loss"] == pytest.approx(res["reconstruction_loss"] + 0.5 * res["kl_loss"], rel=1e-5)
    # the reconstruction term is a per-image sum over 1024 pixels, not a per-pixel mean
    recon_mean = vae.reconstruct(x)
    sse_at_mean = np.mean(np.sum((x - recon_mean) ** 2, axis=(1, 2, 3)))
    assert res["reconstruction_loss"] == pytest.approx(sse_at_mean, rel=0.2)
    assert res["reconstruction_loss"] > 10.0


def test_call_uses_z_mean_at_inference_and_z_in_training(images):
    keras.utils.set_random_seed(2)
    vae = build_vae(seed=2)
    x = images[:8]
    z_mean, _ = vae.encode(x)
    expected = vae.decode(z_mean)
    np.testing.assert_allclose(vae.reconstruct(x), expected, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(vae(x, training=False)), expected, atol=1e-6)
    trained_path = keras.ops.convert_to_numpy(vae(x, training=True))
    assert np.abs(trained_path - expected).max() > 1e-4


# --- training ----------------------------------------------------------------------------------

EXPECTED_HISTORY = {
    "loss", "reconstruction_loss", "kl_loss", "val_loss", "val_reconstruction_loss", "val_kl_loss"
}


def test_fit_numpy_lowers_loss(images):
    keras.utils.set_random_seed(3)
    vae = build_vae(seed=3)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    x_train, x_val = images[:160], images[160:]
    before = vae.evaluate(x_val, batch_size=40, verbose=0, return_dict=True)["loss"]
    hist = vae.fit(x_train, epochs=3, batch_size=16, validation_data=x_val, verbose=0).history
    assert set(hist) == EXPECTED_HISTORY
    assert all(len(v) == 3 for v in hist.values())
    assert all(np.isfinite(v).all() for v in hist.values())
    assert hist["loss"][-1] < hist["loss"][0]
    assert hist["val_loss"][-1] < 0.8 * before
    # trackers are reset each epoch: a running mean over all epochs would stay above 0.7x epoch 1
    assert hist["loss"][-1] < 0.7 * hist["loss"][0]


def test_fit_tf_data_x_x_and_x_only(images):
    keras.utils.set_random_seed(4)
    x_train, x_val = images[:160], images[160:]
    for pairs in (True, False):
        vae = build_vae(seed=4)
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        if pairs:
            train = tf.data.Dataset.from_tensor_slices((x_train, x_train)).batch(16)
            val = tf.data.Dataset.from_tensor_slices((x_val, x_val)).batch(40)
        else:
            train = tf.data.Dataset.from_tensor_slices(x_train).batch(16)
            val = tf.data.Dataset.from_tensor_slices(x_val).batch(40)
        hist = vae.fit(train, epochs=3, validation_data=val, shuffle=False, verbose=0).history
        assert set(hist) == EXPECTED_HISTORY, pairs
        assert hist["loss"][-1] < hist["loss"][0], pairs
        assert hist["val_loss"][-1] < hist["val_loss"][0], pairs


# --- saving, helpers ---------------------------------------------------------------------------

def test_keras_save_load_round_trip(images, tmp_path):
    keras.utils.set_random_seed(5)
    vae = build_vae(seed=5, beta=0.25)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(images[:64], images[:64], epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "vae.keras"
    vae.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, VAE)
    assert loaded.beta == 0.25
    assert loaded.count_params() == 104_341
    assert loaded.encoder.get_layer("z").seed == 5
    assert len(loaded.get_weights()) == len(vae.get_weights())
    for a, b in zip(vae.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = images[100:120]
    np.testing.assert_array_equal(loaded.reconstruct(x), vae.reconstruct(x))
    np.testing.assert_array_equal(loaded.encode(x)[0], vae.encode(x)[0])
    # the loaded model keeps training
    hist = loaded.fit(images[:64], epochs=1, batch_size=32, verbose=0).history
    assert np.isfinite(hist["loss"][0])


def test_sample_and_decode_shapes(images):
    keras.utils.set_random_seed(6)
    vae = build_vae(seed=6)
    out = vae.sample(7, seed=0)
    assert out.shape == (7, 32, 32, 1)
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(out, vae.sample(7, seed=0))
    assert not np.array_equal(out, vae.sample(7, seed=1))
    z_mean, z_log_var = vae.encode(images[:5])
    assert z_mean.shape == z_log_var.shape == (5, 10)
    assert vae.reconstruct(images[:5]).shape == (5, 32, 32, 1)
    with pytest.raises(ValueError, match=r"\(n, 10\)"):
        vae.decode(np.zeros((3, 4)))
