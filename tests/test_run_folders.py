"""Run folders: one run per folder (lock naming the holder, stale locks taken over), atomic
metrics/checkpoints/backups, a torn backup that does not brick a resume, smoke sizes that yield
to explicit parameters, the run record, and the epoch lines of ``training.fit``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kerasmt
from kerasmt import utils


# ------------------------------------------------------------------------------------ lock
def _hold_lock_in_child(folder: Path, ready: Path, *, kill: bool = False) -> subprocess.Popen:
    """A child process that takes the lock on ``folder``, touches ``ready`` and then sleeps
    (``kill``: it SIGKILLs itself instead, leaving its lock file behind)."""
    code = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        from kerasmt.utils import RunLock
        os.environ["KERASMT_COMMAND"] = "kerasmt run holder --out {folder}"
        RunLock({str(folder)!r}).acquire()
        Path({str(ready)!r}).touch()
        if {kill!r}:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
    """)
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    import time

    deadline = time.time() + 60
    while not path.exists():
        assert proc.poll() is None or path.exists(), "the lock holder died early"
        assert time.time() < deadline, "the lock holder did not start"
        time.sleep(0.05)


def test_second_process_gets_a_clear_error_naming_the_holder(tmp_path):
    folder, ready = tmp_path / "run", tmp_path / "ready"
    holder = _hold_lock_in_child(folder, ready)
    try:
        _wait_for(ready, holder)
        with pytest.raises(utils.RunFolderLocked) as exc:
            utils.RunLock(folder).acquire()
        message = str(exc.value)
        assert f"pid {holder.pid}" in message and "kerasmt run holder" in message
        assert str(folder) in message and "another output folder" in message
        # a child of the holder that inherited its token may work in the folder
        token = json.loads((folder / utils.LOCK_FILE).read_text())["token"]
        os.environ[utils.LOCK_TOKENS_ENV] = token
        try:
            with utils.RunLock(folder):
                pass
        finally:
            del os.environ[utils.LOCK_TOKENS_ENV]
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(RuntimeWarning, match="took over the stale lock"):  # the OS released its flock
        with utils.RunLock(folder) as lock:
            assert lock.held
    assert not (folder / utils.LOCK_FILE).exists()  # released: the file is removed


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path):
    folder, ready = tmp_path / "run", tmp_path / "ready"
    holder = _hold_lock_in_child(folder, ready, kill=True)
    holder.wait()
    _wait_for(ready, holder)
    assert (folder / utils.LOCK_FILE).exists()  # killed: it could not release
    with pytest.warns(RuntimeWarning, match=rf"took over the stale lock .*pid {holder.pid}.*no longer running"):
        lock = utils.RunLock(folder).acquire()
    info = json.loads((folder / utils.LOCK_FILE).read_text())
    assert info["pid"] == os.getpid()
    lock.release()


def test_lock_is_reentrant_in_one_process(tmp_path):
    with utils.RunLock(tmp_path / "r") as outer:
        with utils.RunLock(tmp_path / "r") as inner:
            assert inner.token == outer.token
        assert outer.held
    assert not outer.held


def test_kerasmt_run_refuses_a_folder_in_use(tmp_path, monkeypatch, capsys):
    from kerasmt import cli, runner

    monkeypatch.setenv(runner.NOTEBOOKS_ENV, str(Path(__file__).parent / "fixtures" / "notebooks"))
    out, ready = tmp_path / "out", tmp_path / "ready"
    holder = _hold_lock_in_child(out, ready)
    try:
        _wait_for(ready, holder)
        assert cli.main(["run", "toy", "--out", str(out), "-q"]) == 1
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert f"run folder {out.resolve()} is in use by another run: pid {holder.pid}" in err


# ------------------------------------------------------------------------------------ atomic files
def test_save_metrics_is_atomic_and_records_the_run(tmp_path, monkeypatch):
    calls = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append((Path(a).name, Path(b).name)), real_replace(a, b)))
    path = kerasmt.save_metrics({"summary": {"acc": 0.5}}, tmp_path)
    assert calls and calls[0][1] == "metrics.json" and calls[0][0] != "metrics.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temporary file left
    run = json.loads(path.read_text())["run"]
    assert {"versions", "devices", "git", "host", "python", "parameters", "time"} <= set(run)
    assert run["versions"]["kerasmt"] == kerasmt.__version__ or run["versions"]["kerasmt"]
    if (Path(kerasmt.__file__).resolve().parents[1] / ".git").exists():
        assert len(run["git"]["commit"]) == 40 and isinstance(run["git"]["dirty"], bool)
    assert "run" not in json.loads(kerasmt.save_metrics({"a": 1}, tmp_path, record_run=False).read_text())


# ------------------------------------------------------------------------------------ smoke sizes
def test_smoke_sizes_yield_to_explicit_parameters(monkeypatch, capsys):
    monkeypatch.delenv(utils.SMOKE_ENV, raising=False)
    namespace = {"SMOKE": False, "EPOCHS": 50, "N_TRAIN": 6000}
    assert kerasmt.smoke_sizes(namespace, EPOCHS=1, N_TRAIN=200) == {}
    assert namespace["EPOCHS"] == 50  # not in smoke mode: nothing changes
    namespace["SMOKE"] = True
    monkeypatch.setenv(utils.EXPLICIT_ENV, json.dumps(["N_TRAIN", "DATA_DIR"]))
    monkeypatch.setenv(utils.PARAMETER_NAMES_ENV, json.dumps(["SMOKE", "EPOCHS", "N_TRAIN"]))
    assert kerasmt.smoke_sizes(namespace, EPOCHS=1, N_TRAIN=200, LIMIT=40) == {"EPOCHS": 1, "LIMIT": 40}
    assert namespace["EPOCHS"] == 1 and namespace["N_TRAIN"] == 6000 and namespace["LIMIT"] == 40
    assert "kept the explicit N_TRAIN=6000" in capsys.readouterr().out
    record = utils.run_record()
    assert record["parameters"] == {"SMOKE": True, "EPOCHS": 1, "N_TRAIN": 6000}
    assert record["smoke_sizes"] == {"EPOCHS": 1, "LIMIT": 40} and record["explicit_parameters"] == ["N_TRAIN", "DATA_DIR"]


def test_every_notebook_applies_its_smoke_sizes_through_the_helper():
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    for source in sorted(notebooks.glob("*.py")):
        text = source.read_text()
        assert "kerasmt.smoke_sizes(globals()," in text, source.name
        assert "if SMOKE:" not in text, f"{source.name} re-assigns sizes in an `if SMOKE:` block"


# ------------------------------------------------------------------------------------ fit
@pytest.fixture(scope="module")
def tiny():
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.random((64, 8)).astype("float32")
    y = (x.sum(axis=1) > 4).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def _model():
    import keras

    from kerasmt.training import compile_classifier

    kerasmt.set_seed(0)
    inputs = keras.Input((8,))
    return compile_classifier(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs), name="tiny"))


def test_fit_prints_one_compact_line_per_epoch(tiny, tmp_path, capsys):
    from kerasmt.training import fit

    fit(_model(), tiny, tiny, epochs=2, run_dir=tmp_path)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 2 and lines[0].startswith("tiny epoch 1/2 (") and lines[1].startswith("tiny epoch 2/2 (")
    assert ": loss " in lines[0] and " accuracy " in lines[0] and "| val_loss " in lines[0]
    assert "\r" not in lines[0] and "━" not in lines[0]  # no progress bar
    fit(_model(), tiny, tiny, epochs=1, run_dir=tmp_path, progress=False)
    assert capsys.readouterr().out == ""


def test_epoch_lines_thin_out_on_long_fits_and_show_the_last_epoch(tiny, capsys):
    import keras

    from kerasmt.training import EpochLine

    model = _model()
    stop = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch + 1 >= 7))
    model.fit(tiny, epochs=40, verbose=0, shuffle=False, callbacks=[EpochLine("long", max_lines=10), stop])
    epochs = [ln.split()[2] for ln in capsys.readouterr().out.splitlines()]
    assert epochs == ["4/40", "7/40"]  # every 4th epoch, and the last one run (stopped at 7)


def test_fit_takes_the_run_folder_lock(tiny, tmp_path):
    from kerasmt.training import fit

    folder, ready = tmp_path / "run", tmp_path / "ready"
    holder = _hold_lock_in_child(folder, ready)
    try:
        _wait_for(ready, holder)
        with pytest.raises(utils.RunFolderLocked, match=f"pid {holder.pid}"):
            fit(_model(), tiny, tiny, epochs=1, run_dir=folder, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert not (folder / "logs" / "tiny.csv").exists()  # refused before writing anything
    with pytest.warns(RuntimeWarning, match="took over the stale lock"):  # the holder was killed
        fit(_model(), tiny, tiny, epochs=1, run_dir=folder, progress=False)
    assert not (folder / utils.LOCK_FILE).exists()


def _interrupted(tiny, folder):
    from kerasmt.training import _StopAfter, fit

    with pytest.raises(KeyboardInterrupt):
        fit(_model(), tiny, tiny, epochs=4, run_dir=folder, callbacks=[_StopAfter(2)], progress=False)
    backup = folder / "backup" / "tiny"
    assert (backup / "latest.weights.h5").is_file() and (backup / "latest.weights.h5.bkp").is_file()
    assert not [p for p in backup.iterdir() if ".tmp" in p.name]  # written through renames
    return backup


def _resume(tiny, folder):
    import keras

    from kerasmt.training import fit

    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch + 1))
    result = fit(_model(), tiny, tiny, epochs=4, run_dir=folder, callbacks=[record], progress=False)
    return seen, result


def test_torn_backup_resumes_from_the_previous_one(tiny, tmp_path):
    backup = _interrupted(tiny, tmp_path)
    latest = backup / "latest.weights.h5"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 3])  # a kill during the write
    with pytest.warns(RuntimeWarning, match=r"latest.weights.h5 is unreadable .*resuming from the previous backup "
                                            r"instead \(after epoch 1\)"):
        seen, result = _resume(tiny, tmp_path)
    assert seen == [2, 3, 4] and list(result.history.index) == [1, 2, 3, 4]


def test_torn_backup_without_an_earlier_one_starts_again(tiny, tmp_path):
    backup = _interrupted(tiny, tmp_path)
    for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
        path = backup / name
        path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="no readable earlier backup .*starts again from epoch 1"):
        seen, result = _resume(tiny, tmp_path)
    assert seen == [1, 2, 3, 4] and list(result.history.index) == [1, 2, 3, 4]


# ------------------------------------------------------------------------------------ progress
def test_progress_is_quiet_in_tests_and_plain_lines_without_a_terminal(monkeypatch, capsys):
    import io

    assert list(utils.progress(range(5), "quiet")) == [0, 1, 2, 3, 4]
    assert capsys.readouterr() == ("", "")  # under pytest: silent
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    stream = io.StringIO()
    assert list(utils.progress(range(3), "synth", unit="images", every_s=0, stream=stream)) == [0, 1, 2]
    lines = stream.getvalue().splitlines()
    assert [ln.split(" in ")[0] for ln in lines] == ["synth: 1/3 (33%) images", "synth: 2/3 (67%) images",
                                                     "synth: 3/3 (100%) images"]
    assert "\r" not in stream.getvalue()
    stream = io.StringIO()
    list(utils.progress(iter(range(4)), "gen", stream=stream))  # unknown length, slow interval: one last line
    assert stream.getvalue().startswith("gen: 4 it in ") and stream.getvalue().count("\n") == 1
    monkeypatch.setenv(utils.PROGRESS_ENV, "0")
    stream = io.StringIO()
    list(utils.progress(range(3), "off", every_s=0, stream=stream))
    assert stream.getvalue() == ""


def test_run_record_names_the_gpus(monkeypatch):
    import types

    class _Device:
        def __init__(self, name):
            self.name = name

    gpus = [_Device("/physical_device:GPU:0"), _Device("/physical_device:GPU:1")]
    fake = types.SimpleNamespace(config=types.SimpleNamespace(
        list_physical_devices=lambda kind: gpus if kind == "GPU" else [],
        experimental=types.SimpleNamespace(get_device_details=lambda d: {"device_name": f"NVIDIA H100 ({d.name[-1]})"})))
    monkeypatch.setitem(sys.modules, "tensorflow", fake)
    devices = utils.run_record()["devices"]
    assert devices["gpus"] == ["NVIDIA H100 (0)", "NVIDIA H100 (1)"]
    assert devices["device"] == "NVIDIA H100 (0), NVIDIA H100 (1)"
    gpus.clear()
    assert utils.run_record()["devices"]["device"].startswith("CPU (")


def test_backup_without_its_log_starts_again(tiny, tmp_path):
    _interrupted(tiny, tmp_path)
    (tmp_path / "logs" / "tiny.csv").unlink()
    with pytest.warns(RuntimeWarning, match="a backup without its log"):
        seen, result = _resume(tiny, tmp_path)
    assert seen == [1, 2, 3, 4] and list(result.history.index) == [1, 2, 3, 4]


def test_lock_without_flock_checks_the_holder_pid(tmp_path, monkeypatch):
    folder, ready = tmp_path / "run", tmp_path / "ready"
    holder = _hold_lock_in_child(folder, ready)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` fails, as on Windows
    try:
        _wait_for(ready, holder)
        with pytest.raises(utils.RunFolderLocked, match=f"pid {holder.pid}"):
            utils.RunLock(folder).acquire()
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(RuntimeWarning, match=f"stale lock .*pid {holder.pid}"):
        with utils.RunLock(folder):
            pass


_KILL_SCRIPT = """
import os, signal, sys
import numpy as np, keras, tensorflow as tf
import kerasmt
from kerasmt.training import compile_classifier, fit

run_dir, kill_after, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kerasmt.set_seed(0)
rng = np.random.default_rng(0)
x = rng.random((64, 8)).astype("float32")
y = (x.sum(axis=1) > 4).astype("int32")
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
inputs = keras.Input((8,))
model = compile_classifier(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs), name="k"))
kill = keras.callbacks.LambdaCallback(
    on_epoch_end=lambda epoch, logs: os.kill(os.getpid(), signal.SIGKILL) if epoch + 1 == kill_after else None)
began = []
record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: began.append(epoch + 1))
result = fit(model, ds, ds, epochs=4, run_dir=run_dir, callbacks=[record, kill], progress=False)
np.save(out, np.concatenate([w.numpy().ravel() for w in model.weights]))
print("epochs", list(result.history.index), "began", began)
"""


def test_sigkill_then_rerun_gives_bit_identical_weights(tmp_path):
    """Killed (SIGKILL, no cleanup) after epoch 2, rerun in a fresh process: it resumes at epoch 3,
    and the final weights equal those of an uninterrupted run bit for bit."""
    script = tmp_path / "kill.py"
    script.write_text(_KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TF_CPP_MIN_LOG_LEVEL": "3"}

    def run(run_dir, kill_after, out):
        return subprocess.run([sys.executable, str(script), str(run_dir), str(kill_after), str(out)],
                              capture_output=True, text=True, env=env, timeout=600)

    killed = run(tmp_path / "a", 2, tmp_path / "never.npy")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (tmp_path / "a" / utils.LOCK_FILE).exists()  # the killed run could not release its lock
    resumed = run(tmp_path / "a", 0, tmp_path / "resumed.npy")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "took over the stale lock" in resumed.stderr
    assert "epochs [1, 2, 3, 4] began [3, 4]" in resumed.stdout  # resumed, not restarted
    straight = run(tmp_path / "b", 0, tmp_path / "straight.npy")
    assert straight.returncode == 0, straight.stderr[-2000:]
    import numpy as np

    assert np.array_equal(np.load(tmp_path / "resumed.npy"), np.load(tmp_path / "straight.npy"))
