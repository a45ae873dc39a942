"""kerasmt.distribute and fit(strategy=...): names and TF_CONFIG checks in-process; MirroredStrategy
over two logical CPUs and MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1 in
subprocesses (TensorFlow configures devices and collectives once per process), each bounded by
JOB_TIMEOUT and compared with a one-device run of the same seed and global batch.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerasmt import distribute
from kerasmt.distribute import StrategyError

JOB = Path(__file__).resolve().parent / "_distribute_job.py"
JOB_TIMEOUT = 240
#: agreement of a distributed loss curve with the one-device curve (float32 sums in another order)
LOSS_ATOL = 5e-3
LOSS_RTOL = 5e-3
CURVES = ("loss", "gender_loss", "age_loss", "race_loss", "val_loss", "val_gender_loss", "val_age_loss",
          "val_gender_accuracy")


def _env() -> dict[str, str]:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0")
    env.pop("TF_CONFIG", None)
    return env


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start(tmp: Path, tag: str, *args: str) -> tuple[subprocess.Popen, Path, Path]:
    result = tmp / f"{tag}.json"
    log = tmp / f"{tag}.log"
    handle = open(log, "w")
    process = subprocess.Popen([sys.executable, str(JOB), "--result", str(result), *args],
                               stdout=handle, stderr=subprocess.STDOUT, env=_env())
    handle.close()
    return process, result, log


def _finish(jobs: list[tuple[subprocess.Popen, Path, Path]]) -> list[dict]:
    """Wait for every job (killing all of them past JOB_TIMEOUT) and return their results."""
    try:
        for process, _, _ in jobs:
            process.wait(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        for process, _, _ in jobs:
            process.kill()
        pytest.fail(f"distributed job did not finish within {JOB_TIMEOUT} s")
    results = []
    for process, result, log in jobs:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        assert process.returncode == 0, f"{log.name} exited with {process.returncode}:\n{tail}"
        results.append(json.loads(result.read_text()))
    return results


def _same_predictions(got: dict, reference: dict) -> float:
    """Share of identical gender predictions (rows in dataset order) of two runs."""
    return float(np.mean(np.asarray(got["gender_pred"]) == np.asarray(reference["gender_pred"])))


def _assert_same_curve(got: dict, reference: dict, what: str) -> None:
    diffs = {c: float(np.max(np.abs(np.subtract(got["history"][c], reference["history"][c])))) for c in CURVES}
    print(f"{what}: max |difference| per curve vs one device: " + ", ".join(f"{c} {d:.2e}" for c, d in diffs.items()))
    for column in CURVES:
        a, b = np.asarray(got["history"][column]), np.asarray(reference["history"][column])
        ratio = float(np.median(a / np.maximum(b, 1e-12)))
        assert np.allclose(a, b, atol=LOSS_ATOL, rtol=LOSS_RTOL), (
            f"{what}: {column} differs from one device: {a.round(4).tolist()} vs {b.round(4).tolist()}"
            + (f" (x{ratio:.2f}: a masked loss is not scaled for the replicas; kerasmt.losses.masked_mean "
               "must divide by distribute.global_masked_mean's global weight total)" if abs(ratio - 2) < 0.1 else "")
        )


@pytest.fixture(scope="module")
def one_device(tmp_path_factory) -> dict:
    """The reference: default strategy, one device, same seed and global batch (32)."""
    tmp = tmp_path_factory.mktemp("one_device")
    return _finish([_start(tmp, "default", "--strategy", "default", "--run-dir", str(tmp / "run"))])[0]


# ------------------------------------------------------------------------------------ in-process
def test_unknown_strategy_name_is_a_clear_error():
    with pytest.raises(StrategyError, match=r"unknown strategy 'mirored'.*default, mirrored, multi_worker, one_device"):
        distribute.get_strategy("mirored")
    with pytest.raises(StrategyError, match="strategy must be a name"):
        distribute.get_strategy(2)  # type: ignore[arg-type]


def test_default_strategy_is_one_replica_and_chief(tmp_path):
    for name in (None, "default", "Default"):
        strategy = distribute.get_strategy(name)
        assert strategy is tf.distribute.get_strategy()
        assert not distribute.is_distributed(strategy)
        assert distribute.num_replicas(strategy) == 1 and distribute.is_chief(strategy)
    assert distribute.worker_dir(tmp_path, None) == tmp_path
    assert distribute.global_batch_size(32, None) == 32
    assert distribute.per_replica_batch_size(32, None) == 32
    with pytest.raises(ValueError, match="per_replica must be a positive"):
        distribute.global_batch_size(0)


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', "has no 'cluster' object"),
        ('{"cluster": {"worker": ["a:1"]}}', "has no 'task' object"),
        ('{"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker", "index": 0}}', r"has 'b'; expected 'HOST:PORT'"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "task index 1 is out of range"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "task type 'chief' is not a job"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "job 'ps' is not supported"),
    ],
)
def test_tf_config_errors_name_the_problem(value, message):
    env = {} if value is None else {"TF_CONFIG": value}
    with pytest.raises(StrategyError, match=message):
        distribute.read_tf_config(env)


def test_tf_config_round_trip_and_multi_worker_needs_it(monkeypatch):
    text = distribute.tf_config(["127.0.0.1:1000", "127.0.0.1:1001"], 1)
    config = distribute.read_tf_config({"TF_CONFIG": text})
    assert config["task"] == {"type": "worker", "index": 1} and len(config["cluster"]["worker"]) == 2
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(StrategyError, match="strategy 'multi_worker' needs the TF_CONFIG"):
        distribute.get_strategy("multi_worker")


def test_fit_refuses_a_model_built_outside_the_strategy_scope(tmp_path):
    from kerasmt.models import classifiers
    from kerasmt.training import compile_classifier, fit

    strategy = distribute.get_strategy("one_device", devices=["/cpu:0"])
    model = classifiers.dense_net(n_classes=2, name="outside")
    with pytest.raises(ValueError, match="not built in the scope of the 'one_device' strategy.*build_in_scope"):
        compile_classifier(model, strategy=strategy)
    inside = distribute.build_in_scope(lambda: compile_classifier(classifiers.dense_net(n_classes=2, name="inside"),
                                                                  strategy=strategy), strategy)
    x = np.random.default_rng(0).random((16, 32, 32, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    result = fit(inside, ds, ds, epochs=1, run_dir=tmp_path, verbose=0, strategy=strategy)
    assert list(result.history.index) == [1] and result.checkpoint.exists()
    with pytest.raises(ValueError, match="not built in the scope"):
        fit(compile_classifier(classifiers.dense_net(n_classes=2, name="outside2")), ds, ds, epochs=1, run_dir=tmp_path,
            verbose=0, strategy=strategy)


# ------------------------------------------------------------------------------------ subprocesses
def test_mirrored_over_two_cpus_matches_one_device(one_device, tmp_path):
    run_dir = tmp_path / "run"
    [mirrored] = _finish([_start(tmp_path, "mirrored", "--strategy", "mirrored", "--cpus", "2",
                                 "--run-dir", str(run_dir))])
    assert mirrored["replicas"] == 2 and one_device["replicas"] == 1
    assert mirrored["checks"]["describe"].startswith("mirrored: 2 replicas (cpu:0, cpu:1)")
    assert "must be called before TensorFlow initialises" in mirrored["checks"]["late_logical_cpus"]
    # the replicas' shares of a masked mean with 3 labelled rows on one replica and 1 on the other
    assert mirrored["checks"]["replica_share_sum"] == pytest.approx(mirrored["checks"]["global_masked_mean"], abs=1e-6)
    _assert_same_curve(mirrored, one_device, "MirroredStrategy over 2 CPUs")
    loss = one_device["history"]["loss"]
    assert loss[-1] < loss[0] - 0.05  # the curve compared is a learning curve, not a flat line
    assert mirrored["prediction_rows"] == {"gender": 256, "age": 256, "race": 256}
    assert _same_predictions(mirrored, one_device) >= 0.95  # same rows in the same order
    assert (run_dir / "models" / "mt.keras").is_file() and (run_dir / "logs" / "mt.csv").is_file()
    assert not (run_dir / "backup").exists()


def test_mirrored_joint_segmentation_model_matches_one_device(tmp_path):
    """The attribute study's joint model: masked CE with class weights, and the mask loss (masked
    pixel CE + Dice) on a batch where only some images have masks, over 2 replicas."""
    [single, mirrored] = _finish([
        _start(tmp_path, "joint1", "--model", "joint", "--strategy", "default", "--run-dir", str(tmp_path / "a")),
        _start(tmp_path, "joint2", "--model", "joint", "--strategy", "mirrored", "--cpus", "2",
               "--run-dir", str(tmp_path / "b")),
    ])
    assert mirrored["replicas"] == 2
    # BatchNormalization normalises with each replica's own statistics (TensorFlow's default) and
    # Dice is a per-replica estimate, so the curves agree loosely; a loss not scaled for the
    # replicas would be twice the one-device value
    for column in ("loss", "gender_loss", "age_loss", "mask_loss", "val_loss", "val_mask_loss"):
        a, b = np.asarray(mirrored["history"][column]), np.asarray(single["history"][column])
        assert np.allclose(a, b, atol=0.02, rtol=0.1), f"{column}: {a.round(4).tolist()} vs {b.round(4).tolist()}"
    assert single["history"]["mask_loss"][-1] < single["history"]["mask_loss"][0]


def test_synchronized_batchnorm_normalises_like_one_device(tmp_path):
    """With BatchNormalization, two replicas of 16 images normalise differently from one device
    with 32; distribute.synchronize_batchnorm makes them all-reduce the statistics, and the curve
    is then the one-device curve. The setting is saved in the .keras file."""
    [single, plain, synced] = _finish([
        _start(tmp_path, f"bn_{tag}", "--model", "bn", *extra, "--run-dir", str(tmp_path / tag))
        for tag, extra in (("one", ["--strategy", "default"]),
                           ("plain", ["--strategy", "mirrored", "--cpus", "2"]),
                           ("sync", ["--strategy", "mirrored", "--cpus", "2", "--sync-bn"]))
    ])
    assert synced["checks"]["synchronized_layers"] == 2
    assert synced["checks"]["saved_synchronized"] == [True, True]
    assert plain["checks"]["saved_synchronized"] == [False, False]
    _assert_same_curve(synced, single, "MirroredStrategy with synchronized BatchNormalization")

    def gap(run: dict, column: str) -> float:
        return float(np.max(np.abs(np.subtract(run["history"][column], single["history"][column]))))

    for column in ("loss", "gender_loss"):  # per-replica statistics: a visibly different curve
        assert gap(plain, column) > max(5 * gap(synced, column), 2e-3), (column, gap(plain, column), gap(synced, column))


def test_synchronize_batchnorm_reaches_nested_models():
    import keras

    from kerasmt import distribute

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()], name="inner")
    inputs = keras.Input((4,))
    outer = keras.Model(inputs, keras.layers.BatchNormalization()(inner(inputs)))
    assert distribute.synchronize_batchnorm(outer) == 2
    assert all(layer.synchronized for layer in (inner.layers[-1], outer.layers[-1]))
    assert distribute.synchronize_batchnorm(outer, synchronized=False) == 2 and not inner.layers[-1].synchronized


def test_mirrored_interrupted_fit_resumes_from_its_backup(tmp_path):
    run_dir = tmp_path / "run"
    [job] = _finish([_start(tmp_path, "resume", "--strategy", "mirrored", "--cpus", "2", "--run-dir", str(run_dir),
                            "--epochs", "4", "--interrupt-after", "2")])
    assert job["checks"]["interrupted"] and job["checks"]["backup_after_interrupt"]
    assert job["epochs_run"] == [3, 4]  # epochs 1-2 came from the BackupAndRestore state
    assert job["history"]["epoch"] == [1, 2, 3, 4]
    assert not (run_dir / "backup").exists()


def test_multi_worker_two_processes_on_localhost_agree(one_device, tmp_path):
    ports = _free_ports(2)
    workers = ",".join(f"127.0.0.1:{p}" for p in ports)
    run_dir = tmp_path / "run"
    jobs = [_start(tmp_path, f"worker{i}", "--strategy", "multi_worker", "--workers", workers, "--index", str(i),
                   "--run-dir", str(run_dir)) for i in range(2)]
    chief, other = _finish(jobs)
    assert chief["replicas"] == other["replicas"] == 2
    assert chief["chief"] and not other["chief"]
    assert "task worker:1" in other["checks"]["describe"]
    for column in CURVES:  # the workers train one model: identical logs
        np.testing.assert_allclose(chief["history"][column], other["history"][column], rtol=1e-6)
    _assert_same_curve(chief, one_device, "MultiWorkerMirroredStrategy, 2 workers")
    assert chief["prediction_rows"] == other["prediction_rows"] == {"gender": 256, "age": 256, "race": 256}
    assert chief["gender_pred"] == other["gender_pred"]
    assert _same_predictions(chief, one_device) >= 0.95  # gathered from both workers in dataset order
    # only the chief's files remain; the other worker's copies were removed when the fit completed
    assert (run_dir / "models" / "mt.keras").is_file() and (run_dir / "logs" / "mt.csv").is_file()
    assert other["checkpoint"] == chief["checkpoint"] == str(run_dir / "models" / "mt.keras")
    assert not list(run_dir.glob(distribute.WORKER_TEMP_PREFIX + "*"))
    import keras

    reloaded = keras.models.load_model(run_dir / "models" / "mt.keras")
    assert set(reloaded.output_names) == {"gender", "age", "race"}
