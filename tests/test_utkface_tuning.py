"""kerasmt.tuning: the explicit objective, Model A search (2 trials, smoke sizes), Hyperband."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasmt import tuning


def test_score_is_gender_error_plus_a_tenth_of_the_mae():
    assert tuning.score(0.9, 6.0) == pytest.approx(0.1 + 0.6)
    assert tuning.score(1.0, 0.0) == 0.0
    assert tuning.score(0.5, 10.0, age_scale=20.0) == pytest.approx(1.0)


def test_score_callback_adds_score_to_the_logs():
    logs = {"gender_accuracy": 0.8, "age_mae": 5.0, "val_gender_accuracy": 0.7, "val_age_mae": 8.0}
    tuning.ScoreCallback().on_epoch_end(0, logs)
    assert logs["score"] == pytest.approx(0.7) and logs["val_score"] == pytest.approx(1.1)
    partial = {"loss": 1.0}
    tuning.ScoreCallback().on_epoch_end(0, partial)
    assert "score" not in partial


def test_effective_split_point():
    assert tuning.effective_split(5, 1) == 1
    assert tuning.effective_split(2, 3) == 2  # past the last block: all blocks shared


def _data(n, size=16, seed=0):
    rng = np.random.default_rng(seed)
    gender = rng.integers(0, 2, n).astype("int32")
    age = rng.uniform(1, 80, n).astype("float32")
    x = rng.random((n, size, size, 3)).astype("float32") * 0.2
    x[..., 0] += gender[:, None, None] * 0.8  # learnable: red means female
    x[..., 1] += (age / 80.0)[:, None, None]
    return tf.data.Dataset.from_tensor_slices((x, {"age": age, "gender": gender})).batch(16)


@pytest.fixture(scope="module")
def splits():
    return _data(48, seed=0), _data(16, seed=1), _data(16, seed=2)


def test_model_a_search_runs_two_trials_of_the_reports_configs(splits, tmp_path):
    train, val, rank = splits
    configs = [dict(n_blocks=2, n_dense=1, units=100, split_point=1), dict(n_blocks=3, n_dense=2, units=150, split_point=5)]
    tuner = tuning.search_model_a(train, val, rank, tmp_path, (16, 16, 3), epochs=1, algorithm="configs",
                                  configs=configs, base_filters=2, learning_rate=1e-3, age_bias=40.0)
    table = tuning.trials_frame(tuner)
    assert len(table) == 2
    assert table[["n_blocks", "n_dense", "units", "split_point"]].to_dict("records") == configs
    assert set(table["status"]) == {"COMPLETED"}
    for _, row in table.iterrows():
        assert row["score"] == pytest.approx(tuning.score(row["gender_accuracy"], row["age_mae"]), rel=1e-6)
        assert 0.0 <= row["gender_accuracy"] <= 1.0 and row["epochs"] == 1
    assert (tmp_path / "model_a").is_dir()  # the tuner's files live under the given directory
    best = tuner.get_best_hyperparameters(1)[0].values
    assert best == configs[int(np.argmin(table["score"].to_numpy()))]


def test_bayesian_search_over_a_custom_space(splits, tmp_path):
    train, val, rank = splits
    space = {"n_blocks": (1,), "n_dense": (1,), "units": (8, 16), "split_point": (0, 1)}
    tuner = tuning.search_model_a(train, val, rank, tmp_path, (16, 16, 3), epochs=1, algorithm="bayesian",
                                  max_trials=2, space=space, base_filters=2, project_name="bayes")
    table = tuning.trials_frame(tuner)
    assert len(table) == 2 and set(table["status"]) == {"COMPLETED"}
    assert (tmp_path / "bayes").is_dir() and not (tmp_path / "model_a").exists()  # project_name passed through
    assert set(table["units"]) <= {8, 16} and set(table["split_point"]) <= {0, 1}


def test_repeated_executions_get_successive_seeds():
    import keras_tuner as kt

    hypermodel = tuning.ModelAHyperModel((16, 16, 3), seed=7)
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    other = kt.HyperParameters()
    hypermodel.declare_hyperparameters(other)
    other.values["units"] = 300
    assert [hypermodel._seed_build(hp) for _ in range(3)] == [7, 8, 9]  # executions of one trial
    assert hypermodel._seed_build(other) == 7  # another configuration starts again at the seed
    hypermodel.reset_seeds()
    assert hypermodel._seed_build(hp) == 7


def test_search_argument_errors(tmp_path):
    hypermodel = tuning.ModelAHyperModel((16, 16, 3))
    with pytest.raises(ValueError, match="needs configs"):
        tuning.model_a_tuner(hypermodel, tmp_path, "configs")
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        tuning.model_a_tuner(hypermodel, tmp_path, "configs", configs=[{"filters": 3}])
    with pytest.raises(ValueError, match="max_trials"):
        tuning.model_a_tuner(hypermodel, tmp_path, "bayesian")
    with pytest.raises(ValueError, match="algorithm"):
        tuning.model_a_tuner(hypermodel, tmp_path, "evolution")
    with pytest.raises(ValueError, match="space: missing"):
        tuning.ModelAHyperModel((16, 16, 3), space={"n_blocks": (2,)})


def test_hyperband_over_learning_rate_and_units_on_features(tmp_path):
    rng = np.random.default_rng(0)
    gender = rng.integers(0, 2, 64).astype("int32")
    x = rng.normal(size=(64, 12)).astype("float32")
    x[:, 0] += 2 * gender
    y = {"age": rng.uniform(1, 80, 64).astype("float32"), "gender": gender}
    keras.utils.set_random_seed(0)
    tuner = tuning.hyperband_heads(x[:48], {k: v[:48] for k, v in y.items()}, x[48:], {k: v[48:] for k, v in y.items()},
                                   tmp_path, max_epochs=2, factor=3, units=(4, 8), age_bias=40.0)
    table = tuning.trials_frame(tuner)
    assert len(table) >= 2
    assert {"learning_rate", "units", "epochs_budget", "val_score"} <= set(table.columns)
    assert table["learning_rate"].between(1e-4, 2e-3).all() and set(table["units"]) <= {4, 8}
    assert (tmp_path / "model_b_heads").is_dir()
    best = tuner.get_best_hyperparameters(1)[0]
    done = table[table["status"] == "COMPLETED"]
    assert done["val_score"].min() == pytest.approx(tuner.oracle.get_best_trials(1)[0].score)
    assert best.values["units"] in (4, 8)
