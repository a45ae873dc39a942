"""BatchNormalization folding (kerasmt.models.fold): same outputs, no BatchNormalization left."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasmt.models.fold import FoldedBatchNormalization, fold_batchnorm, foldable_pairs


def _random_statistics(model: keras.Model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            values = {"gamma": rng.uniform(0.5, 1.5, n), "beta": rng.normal(0, 0.2, n),
                      "moving_mean": rng.normal(0, 0.2, n), "moving_variance": rng.uniform(0.5, 2.0, n)}
            layer.set_weights([values[w.name] for w in layer.weights])


def _nested() -> keras.Model:
    inner_in = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="conv_a")(inner_in)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU()(x)
    branch = keras.layers.Conv2D(6, 1, name="conv_b")(x)  # read twice: not foldable
    y = keras.layers.BatchNormalization(name="bn_b")(branch)
    inner = keras.Model(inner_in, keras.layers.Add()([y, branch]), name="inner")
    image = keras.Input((8, 8, 4))
    z = inner(image)
    z = keras.layers.Flatten()(z)
    z = keras.layers.Dense(5, name="dense")(z)
    z = keras.layers.BatchNormalization(center=False, name="bn_dense")(z)
    return keras.Model(image, keras.layers.Dense(2, name="out")(z))


def test_folding_keeps_the_outputs_and_skips_what_cannot_fold():
    model = _nested()
    _random_statistics(model)
    assert foldable_pairs(model) == {"inner/bn_a": "inner/conv_a", "bn_dense": "dense"}
    folded = fold_batchnorm(model)
    x = np.random.default_rng(1).normal(size=(3, 8, 8, 4)).astype(np.float32)
    np.testing.assert_allclose(folded(x), model(x, training=False), rtol=1e-4, atol=1e-5)
    kinds = {layer.name: type(layer) for layer in folded._flatten_layers()}
    assert kinds["bn_a"] is FoldedBatchNormalization and kinds["bn_dense"] is FoldedBatchNormalization
    assert kinds["bn_b"] is keras.layers.BatchNormalization  # its convolution is read twice
    assert folded.get_layer("inner").get_layer("conv_a").use_bias  # got a bias for the folded shift


def test_folded_model_round_trips_through_keras_file(tmp_path):
    model = _nested()
    _random_statistics(model, 3)
    folded = fold_batchnorm(model)
    folded.save(tmp_path / "folded.keras")
    loaded = keras.models.load_model(tmp_path / "folded.keras")
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded(x), folded(x), rtol=1e-6, atol=1e-6)


def test_keras_applications_resnet_folds_every_batchnorm():
    model = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    _random_statistics(model, 5)
    n_bn = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert len(foldable_pairs(model)) == n_bn == 53
    folded = fold_batchnorm(model)
    x = np.random.default_rng(4).uniform(-100, 100, (1, 64, 64, 3)).astype(np.float32)
    want = np.asarray(model(x, training=False))
    np.testing.assert_allclose(folded(x), want, rtol=1e-3, atol=1e-3 * np.abs(want).max())


def test_a_convolution_that_is_also_a_model_output_is_not_folded():
    image = keras.Input((6, 6, 2))
    conv = keras.layers.Conv2D(3, 3, name="conv")(image)
    model = keras.Model(image, [conv, keras.layers.BatchNormalization(name="bn")(conv)])
    assert foldable_pairs(model) == {}


def test_nothing_to_fold_returns_the_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert fold_batchnorm(model) is model


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
