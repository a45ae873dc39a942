"""Mixed precision and XLA options (kerasmt.training.configure / precision / float32_outputs):
on a CPU the mixed policy is mixed_bfloat16; one tiny model per builder family, given the float32
model's weights, predicts (in float32) close to it and trains to finite losses."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasmt import training
from kerasmt.utils import set_seed


def _classifiers():
    from kerasmt.models import classifiers

    model = classifiers.multitask_cnn((16, 16, 1), tasks={"gender": 2, "race": 3}, filters=(4, 8),
                                      head_units=(8,))
    training.compile_classifier(model)
    return model, (16, 16, 1), {"gender": 2, "race": 3}


def _vgg():
    from kerasmt.models.vgg import compile_age_gender, model_a

    model = model_a((32, 32, 3), n_blocks=2, n_dense=1, units=8, base_filters=4)
    compile_age_gender(model, learning_rate=1e-3)
    return model, (32, 32, 3), {"age": None, "gender": 1}


def _resnet():
    from kerasmt.models.resnet import simple_resnet_v2

    model = simple_resnet_v2((16, 16, 3), tasks={"a": 3}, stem_filters=4, filters=(4,), out_filters=(8,),
                             blocks_per_stage=1, pool_size=2, head_units=(8,))
    training.compile_classifier(model)
    return model, (16, 16, 3), {"a": 3}


def _finetune():
    from kerasmt.models import finetune as ft

    model = ft.finetune_model((32, 32, 3), None, n_classes=3, backbone="EfficientNetB0", regime="ft-1", units=8)
    ft.compile_report(model)
    return model, (32, 32, 3), {"predictions": 3}


def _multilabel():
    from kerasmt.models.multilabel import compile_multilabel, multilabel_classifier

    model = multilabel_classifier((32, 32, 3), None, n_classes=3, backbone="light")
    compile_multilabel(model)
    return model, (32, 32, 3), {"labels": "multi"}


def _refinenet():
    from kerasmt.losses_segmentation import PixelCrossentropyDice
    from kerasmt.models.refinenet import refinenet

    model = refinenet((32, 32, 3), None, n_classes=2, encoder="light", features=8, crp_stages=1)
    model.compile(keras.optimizers.Adam(1e-3), loss=PixelCrossentropyDice())
    return model, (32, 32, 3), {"mask": "pixels"}


FAMILIES = {"classifiers": _classifiers, "vgg": _vgg, "resnet": _resnet,
            "finetune": _finetune, "multilabel": _multilabel, "refinenet": _refinenet}


def _targets(model, spec, n, rng):
    """Targets per output: ``spec`` maps output name -> kind (classes, "multi", "pixels", None =
    a regression target in [0, 1], 1 = a binary target)."""
    out = {}
    for name in model.output_names:
        kind = spec[name]
        if kind == "multi":
            out[name] = rng.integers(0, 2, (n, 3)).astype(np.float32)
        elif kind == "pixels":
            out[name] = rng.integers(0, 3, (n, 32, 32)).astype(np.int32)
        elif kind is None:
            out[name] = rng.uniform(0, 1, (n, 1)).astype(np.float32)
        elif kind == 1:
            out[name] = rng.integers(0, 2, (n, 1)).astype(np.float32)
        else:
            out[name] = rng.integers(0, kind, n).astype(np.int32)
    return out if len(out) > 1 else next(iter(out.values()))


def _flat(predictions) -> np.ndarray:
    if isinstance(predictions, dict):
        return np.concatenate([np.asarray(predictions[k], np.float32).reshape(len(next(iter(predictions.values()))), -1)
                               for k in sorted(predictions)], axis=1)
    if isinstance(predictions, (list, tuple)):
        return np.concatenate([np.asarray(p, np.float32).reshape(len(p), -1) for p in predictions], axis=1)
    return np.asarray(predictions, np.float32).reshape(len(predictions), -1)


def test_precision_policy_names_and_reset():
    assert training.precision_policy(False) == "float32"
    assert training.precision_policy(True) == ("mixed_float16" if training.has_gpu() else "mixed_bfloat16")
    assert training.precision_policy("mixed_float16") == "mixed_float16"
    with pytest.raises(ValueError, match="MIXED_PRECISION"):
        training.precision_policy("half")
    with pytest.raises(ValueError, match="JIT_COMPILE"):
        training.configure(False, jit_compile="sometimes")
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(RuntimeError):
        with training.precision("mixed_bfloat16"):
            assert keras.config.dtype_policy().name == "mixed_bfloat16"
            raise RuntimeError("the policy is reset after an error too")
    assert keras.config.dtype_policy().name == "float32"
    assert training.configure(True, jit_compile=False) == training.precision_policy(True)
    assert training._JIT_COMPILE is False
    assert training.reset() == "float32" and training._JIT_COMPILE is None
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_mixed_precision_training_is_finite_and_close_to_float32(family, tmp_path):
    rng = np.random.default_rng(0)
    set_seed(0)
    reference, shape, spec = FAMILIES[family]()
    x = rng.uniform(0, 1, (8,) + shape).astype(np.float32)
    y = _targets(reference, spec, len(x), rng)
    with training.precision("mixed_bfloat16", jit_compile=False):
        set_seed(0)
        model, _, _ = FAMILIES[family]()
        assert model.dtype_policy.name == "mixed_bfloat16"
        model.set_weights(reference.get_weights())
        # the same weights: bfloat16 compute, float32 outputs, close to the float32 predictions
        training.float32_outputs(model)
        before = _flat(model.predict(x, verbose=0))
        assert before.dtype == np.float32
        assert np.abs(before - _flat(reference.predict(x, verbose=0))).mean() <= 0.03
        result = training.fit(model, x, y=y, epochs=1, batch_size=4, run_dir=tmp_path, checkpoint=False,
                              backup=False, verbose=0)
        assert all(o.dtype == "float32" for o in keras.tree.flatten(model(x[:2], training=False)))
        losses = result.history[[c for c in result.history if "loss" in c and not c.startswith("val_")]].to_numpy()
        assert np.isfinite(losses).all()
        assert model.jit_compile is False
    assert keras.config.dtype_policy().name == "float32"
    after = _flat(model.predict(x, verbose=0))
    assert after.dtype == np.float32 and np.isfinite(after).all()


def test_float32_outputs_of_a_subclassed_model():
    from kerasmt.models.vae import build_vae

    with training.precision("mixed_bfloat16"):
        vae = build_vae(latent_dim=2, beta=0.1, seed=0)
        training.float32_outputs(vae)  # the outputs of its encoder and decoder
        names = {layer.name for layer in training._output_layers(vae)}
        assert {"z_mean", "z_log_var", "decoder_output"} <= names
        z_mean, _ = vae.encode(np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 1)).astype(np.float32))
        assert z_mean.dtype == "float32"
