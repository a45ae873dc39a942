import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasmt
from kerasmt.models import classifiers
from kerasmt.training import _StopAfter, compile_classifier, final_and_best, fit, predict_classes


@pytest.mark.parametrize(
    "builder, n, expected",
    [
        (classifiers.dense_net, 2, 1_625_902),
        (classifiers.dense_net, 9, 1_626_609),
        (classifiers.small_cnn, 2, 785_342),
        (classifiers.small_cnn, 9, 786_049),
        (classifiers.own_cnn, 2, 651_266),
        (classifiers.own_cnn, 9, 652_169),
    ],
)
def test_single_task_parameter_counts_match_the_report(builder, n, expected):
    assert builder(n_classes=n).count_params() == expected


def test_own_cnn_non_trainable_params_are_the_reports():
    model = classifiers.own_cnn(n_classes=2)
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 448


def test_multitask_parameter_counts_and_outputs():
    model = classifiers.multitask_cnn(tasks={"gender": 2, "age": 9})
    assert model.count_params() == 106_315
    full = classifiers.multitask_cnn(tasks={"gender": 2, "age": 9, "race": 7})
    assert full.count_params() == 106_315 + 32_896 + 8_256 + 455
    out = full(np.zeros((3, 32, 32, 1), "float32"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"gender": (3, 2), "age": (3, 9), "race": (3, 7)}
    np.testing.assert_allclose(out["age"].numpy().sum(axis=1), 1.0, rtol=1e-5)


def _toy(n=192, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 32, 32, 1)).astype("float32")
    bright = x.mean(axis=(1, 2, 3))
    y = {
        "gender": (bright > np.median(bright)).astype("int32"),
        "age": np.where(rng.random(n) < 0.3, -1, rng.integers(0, 9, n)).astype("int32"),
        "race": rng.integers(0, 7, n).astype("int32"),
    }
    return x, y


def test_multitask_learns_with_missing_labels_and_round_trips(tmp_path):
    kerasmt.set_seed(0)
    x, y = _toy()
    x[y["gender"] == 1] += 0.5  # make gender easy
    y["age"][:] = -1  # a task with no labels at all must not break training
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    model = compile_classifier(classifiers.multitask_cnn(tasks={"gender": 2, "age": 9, "race": 7}))
    result = fit(model, ds, ds, epochs=4, run_dir=tmp_path, verbose=0)
    history = result.history
    assert list(history.index) == [1, 2, 3, 4]
    assert np.all(np.isfinite(history["loss"])) and (history["age_loss"] == 0).all()
    assert history["val_gender_accuracy"].iloc[-1] > 0.9
    assert result.checkpoint.exists()
    path = tmp_path / "again.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0)["race"], model.predict(x[:8], verbose=0)["race"], rtol=1e-5)
    pred = predict_classes(loaded, x[:8])
    assert set(pred) == {"gender", "age", "race"} and pred["gender"].shape == (8,)


def test_interrupted_fit_resumes_at_the_next_epoch(tmp_path):
    x, y = _toy(seed=1)
    ds = tf.data.Dataset.from_tensor_slices((x, y["gender"])).batch(32)

    def fresh():
        kerasmt.set_seed(0)
        return compile_classifier(classifiers.small_cnn(n_classes=2, task="gender", name="resume_me"))

    with pytest.raises(KeyboardInterrupt):
        fit(fresh(), ds, ds, epochs=5, run_dir=tmp_path, callbacks=[_StopAfter(2)], verbose=0)
    assert (tmp_path / "backup" / "resume_me").exists()
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch + 1))
    result = fit(fresh(), ds, ds, epochs=5, run_dir=tmp_path, callbacks=[record], verbose=0)
    assert seen == [3, 4, 5]  # epochs 1-2 were not run again
    assert list(result.history.index) == [1, 2, 3, 4, 5]  # the log holds all epochs once
    assert not (tmp_path / "backup").exists()
    # an uninterrupted second call starts from scratch with a fresh log
    again = fit(fresh(), ds, ds, epochs=2, run_dir=tmp_path, verbose=0)
    assert list(again.history.index) == [1, 2]


def test_early_stopping_restores_the_best_checkpoint(tmp_path):
    kerasmt.set_seed(0)
    x, y = _toy(seed=2)
    ds = tf.data.Dataset.from_tensor_slices((x, y["race"])).batch(32)  # unlearnable: val loss rises
    model = compile_classifier(classifiers.dense_net(n_classes=7, name="es"), learning_rate=1e-2)
    result = fit(model, ds, ds, epochs=30, run_dir=tmp_path, early_stopping=2, verbose=0)
    assert len(result.history) < 30
    best = result.history["val_loss"].min()
    assert model.evaluate(ds, verbose=0)[0] == pytest.approx(best, rel=1e-4)
    last, best_acc = final_and_best(result.history, "val_accuracy")
    assert best_acc >= last
