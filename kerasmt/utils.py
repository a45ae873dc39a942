"""Small helpers shared by the library, the notebooks and the CLI (no TensorFlow at import time)."""
from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np

SMOKE_ENV = "KERASMT_SMOKE"
RUNS_ENV = "KERASMT_RUNS_DIR"
CACHE_ENV = "KERASMT_CACHE"


def set_seed(seed: int = 0, deterministic_ops: bool = False) -> None:
    """Seed Python, NumPy and the Keras backend so that a run gives the same numbers twice.

    ``deterministic_ops=True`` also asks TensorFlow for deterministic kernels (slower).
    """
    random.seed(seed)
    np.random.seed(seed)
    import keras  # local: keep the module importable without TensorFlow

    keras.utils.set_random_seed(seed)
    if deterministic_ops:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def env_smoke() -> bool:
    """True when the environment asks for smoke sizes (``KERASMT_SMOKE=1``), as CI does."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def cache_dir(*parts: str) -> Path:
    """Per-user cache folder (``$KERASMT_CACHE`` or ``~/.cache/kerasmt``), created on demand."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "kerasmt")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_out_dir(out_dir: str | os.PathLike | None, study: str) -> Path:
    """Where a study writes models and metrics: the argument, else ``$KERASMT_RUNS_DIR/<study>``,
    else ``./runs/<study>``. The folder and its ``models/`` subfolder are created."""
    if out_dir:
        path = Path(out_dir)
    elif os.environ.get(RUNS_ENV):
        path = Path(os.environ[RUNS_ENV]) / study
    else:
        path = Path("runs") / study
    (path / "models").mkdir(parents=True, exist_ok=True)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_metrics(metrics: Mapping[str, Any], out_dir: str | os.PathLike, record_run: bool = True) -> Path:
    """Write ``metrics.json`` atomically (NumPy scalars and arrays converted, NaN -> null) and
    return its path. ``record_run`` adds a ``run`` entry (:func:`run_record`: versions, devices,
    git commit, host, command and the notebook's parameters) unless ``metrics`` has one."""
    data = dict(metrics)
    if record_run and "run" not in data:
        data["run"] = run_record()
    return atomic_write_text(Path(out_dir) / "metrics.json",
                             json.dumps(_jsonable(data), indent=2, sort_keys=True, default=str) + "\n")


def count_params(model: Any) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts of a Keras model."""
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    total = int(model.count_params())
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def quiet_tensorflow() -> None:
    """Hide TensorFlow's Python-side INFO/WARNING log lines (e.g. ``tf.function`` retracing
    notices when a notebook trains several models in a row); errors still show."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)


# ------------------------------------------------------------------------------- atomic files
def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and
    :func:`os.replace` (readers see the old file or the new one, never a torn one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding=encoding)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ------------------------------------------------------------------------ smoke sizes and runs
#: Set by ``kerasmt run`` in the kernel's environment: JSON list of the parameters given
#: explicitly (``-p NAME=VALUE``, ``--data``), which smoke sizes must not override.
EXPLICIT_ENV = "KERASMT_EXPLICIT_PARAMETERS"
#: Set by ``kerasmt run``: JSON list of the names in the notebook's parameters cell.
PARAMETER_NAMES_ENV = "KERASMT_PARAMETER_NAMES"
#: Set by ``kerasmt run``: the command line that started the run.
COMMAND_ENV = "KERASMT_COMMAND"

_RUN_STATE: dict[str, Any] = {}


def _env_json_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return [str(v) for v in value] if isinstance(value, list) else None


def explicit_parameters() -> list[str]:
    """Names the user set explicitly for this run (``kerasmt run -p``), from ``$KERASMT_EXPLICIT_PARAMETERS``."""
    return _env_json_list(EXPLICIT_ENV) or []


def _is_parameter_value(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_parameter_value(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_parameter_value(v) for k, v in value.items())
    return False


def smoke_sizes(namespace: dict[str, Any], **sizes: Any) -> dict[str, Any]:
    """Apply a notebook's smoke sizes: with ``namespace["SMOKE"]`` (or ``KERASMT_SMOKE=1``) each
    ``NAME=value`` is assigned in ``namespace`` (the notebook's ``globals()``) unless the user set
    ``NAME`` explicitly (``kerasmt run --smoke -p NAME=VALUE``: the explicit value wins).

    Also records the notebook's parameters (the names of its parameters cell when run by
    ``kerasmt run``, else every upper-case name holding a plain value) for the ``run`` record
    that :func:`save_metrics` adds to ``metrics.json``. Returns the sizes applied.
    """
    smoke = bool(namespace.get("SMOKE")) or env_smoke()
    explicit = set(explicit_parameters())
    applied: dict[str, Any] = {}
    kept: list[str] = []
    if smoke:
        for name, value in sizes.items():
            if name in explicit:
                kept.append(name)
            else:
                namespace[name] = value
                applied[name] = value
        if kept:
            print("smoke sizes: kept the explicit " + ", ".join(f"{k}={namespace.get(k)!r}" for k in kept))
    names = _env_json_list(PARAMETER_NAMES_ENV)
    if names is None:
        names = [k for k, v in namespace.items()
                 if k.isupper() and not k.startswith("_") and _is_parameter_value(v)]
    _RUN_STATE["parameters"] = {k: namespace[k] for k in names if k in namespace}
    _RUN_STATE["smoke"] = smoke
    _RUN_STATE["smoke_sizes"] = applied
    return applied


def _package_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for dist in ("kerasmt", "tensorflow", "keras", "numpy", "pandas", "scikit-learn", "scipy",
                 "matplotlib", "pillow", "keras-tuner", "papermill"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    if versions["kerasmt"] is None:  # a checkout on PYTHONPATH, not installed
        from kerasmt import __version__

        versions["kerasmt"] = __version__
    return versions


def _devices() -> dict[str, Any]:
    """GPUs TensorFlow sees (names), or the CPU; TensorFlow is asked only when already imported."""
    import platform
    import sys

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cpu_count": os.cpu_count(), "gpus": None}
    tf = sys.modules.get("tensorflow")
    if tf is None:  # a run without TensorFlow (the recommender) computes on the CPU only
        info["device"] = f"CPU ({cpu})"
        info["note"] = "TensorFlow not imported by this run"
        return info
    gpus = []
    try:
        for gpu in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(gpu) or {}
            gpus.append(details.get("device_name") or gpu.name)
    except Exception as exc:  # noqa: BLE001 - a record, never a failure
        info["note"] = f"GPU query failed: {exc}"
    info["gpus"] = gpus
    info["device"] = ", ".join(gpus) if gpus else f"CPU ({cpu})"
    return info


def _git_state() -> dict[str, Any] | None:
    """Commit and dirty flag of the checkout kerasmt is imported from (None when installed)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip()), "root": str(root)}


def run_record() -> dict[str, Any]:
    """Where and how this run ran: package versions, devices, git commit (and dirty flag) of the
    checkout, host, Python, the command and every notebook parameter (see :func:`smoke_sizes`)."""
    import datetime
    import platform
    import socket
    import sys

    record: dict[str, Any] = {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": os.environ.get(COMMAND_ENV),
        "versions": _package_versions(),
        "devices": _devices(),
        "git": _git_state(),
        "smoke": _RUN_STATE.get("smoke", env_smoke()),
        "explicit_parameters": explicit_parameters(),
        "parameters": _RUN_STATE.get("parameters"),
    }
    if _RUN_STATE.get("smoke_sizes"):
        record["smoke_sizes"] = _RUN_STATE["smoke_sizes"]
    return record


# ---------------------------------------------------------------------------- run-folder lock
#: Lock file in a run folder (``kerasmt run --out``, ``training.fit(run_dir=)``).
LOCK_FILE = ".kerasmt.lock"
#: Tokens of the run-folder locks this process's parents hold (``kerasmt run`` sets it for the
#: notebook's kernel, whose ``fit`` then works inside the folder its runner locked).
LOCK_TOKENS_ENV = "KERASMT_LOCK_TOKENS"

_HELD_LOCKS: dict[str, list[Any]] = {}  # real path -> [RunLock, depth] held by this process


class RunFolderLocked(RuntimeError):
    """Another live process holds the run folder's lock."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class RunLock:
    """Exclusive lock on a run folder: one run per folder at a time.

    The lock is ``FOLDER/.kerasmt.lock``, locked with ``flock`` (released by the OS when the
    process dies) and holding who took it (pid, host, command, time). A second process gets
    :class:`RunFolderLocked` naming the holder; a lock file left by a process that died is taken
    over with a warning. Re-entrant in one process; a child of the holder (``kerasmt run``'s
    notebook kernel) may work in the folder when it inherits the lock's token
    (:data:`LOCK_TOKENS_ENV`). Use as a context manager or with :meth:`acquire` / :meth:`release`.
    """

    def __init__(self, folder: str | os.PathLike, purpose: str = "run"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.purpose = purpose
        self.token: str | None = None
        self._fd: int | None = None
        self._inherited = False

    # -- who holds it
    @staticmethod
    def _describe(info: Mapping[str, Any]) -> str:
        return (f"pid {info.get('pid')} on {info.get('host')} ({info.get('purpose', 'run')} started "
                f"{info.get('time')}: {info.get('command')})")

    def _read(self, fd: int | None = None) -> dict[str, Any]:
        try:
            if fd is not None:
                os.lseek(fd, 0, os.SEEK_SET)
                raw = os.read(fd, 65536).decode("utf-8", "replace")
            else:
                raw = self.path.read_text(encoding="utf-8", errors="replace")
            info = json.loads(raw) if raw.strip() else {}
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def _info(self) -> dict[str, Any]:
        import datetime
        import socket
        import sys
        import uuid

        return {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
                "command": os.environ.get(COMMAND_ENV) or " ".join(sys.argv) or sys.executable,
                "time": datetime.datetime.now().isoformat(timespec="seconds"), "token": uuid.uuid4().hex}

    def _locked_error(self, info: Mapping[str, Any]) -> RunFolderLocked:
        return RunFolderLocked(
            f"run folder {self.folder} is in use by another run: {self._describe(info)}. Two runs in one "
            f"folder would resume from each other's epochs and overwrite each other's files: wait for it "
            f"to finish, stop it, or use another output folder (--out / run_dir). Lock file: {self.path}")

    # -- acquire / release
    def acquire(self) -> "RunLock":
        key = os.path.realpath(self.folder)
        held = _HELD_LOCKS.get(key)
        if held is not None:  # re-entrant in this process
            held[1] += 1
            self.token, self._inherited = held[0].token, True
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        inherited = set(filter(None, os.environ.get(LOCK_TOKENS_ENV, "").split(",")))
        try:
            import fcntl
        except ImportError:  # no flock (Windows): pid-based
            fcntl = None  # type: ignore[assignment]
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    import errno

                    if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                        os.close(fd)  # a file system without flock: pid-based, as without fcntl
                        fcntl = None  # type: ignore[assignment]
                        continue
                    info = self._read(fd)
                    os.close(fd)
                    if info.get("token") and info["token"] in inherited:  # our parent's lock
                        self.token, self._inherited = info["token"], True
                        _HELD_LOCKS[key] = [self, 1]
                        return self
                    raise self._locked_error(info) from None
                try:  # the file may have been removed by its releasing holder meanwhile: retry
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                previous = self._read(fd)
            else:
                previous = self._read(fd)
                if previous.get("token") in inherited:
                    os.close(fd)
                    self.token, self._inherited = previous["token"], True
                    _HELD_LOCKS[key] = [self, 1]
                    return self
                if previous.get("pid") and previous.get("host") == self._info()["host"] \
                        and _pid_alive(int(previous["pid"])) and int(previous["pid"]) != os.getpid():
                    os.close(fd)
                    raise self._locked_error(previous)
            break
        if previous.get("pid"):
            import warnings

            warnings.warn(f"took over the stale lock of run folder {self.folder}: {self._describe(previous)} is "
                          f"no longer running (it ended without releasing it)", RuntimeWarning, stacklevel=2)
        info = self._info()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.fsync(fd)
        self._fd, self.token = fd, info["token"]
        _HELD_LOCKS[key] = [self, 1]
        return self

    def release(self) -> None:
        key = os.path.realpath(self.folder)
        held = _HELD_LOCKS.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        owner = held[0]
        del _HELD_LOCKS[key]
        if owner._fd is not None:
            try:
                os.unlink(owner.path)  # while still locked: the next run creates a fresh file
            except OSError:
                pass
            os.close(owner._fd)
            owner._fd = None

    @property
    def held(self) -> bool:
        return os.path.realpath(self.folder) in _HELD_LOCKS

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


# ------------------------------------------------------------------------------------ progress
#: ``KERASMT_PROGRESS=0`` silences :func:`progress` (it is also silent under pytest).
PROGRESS_ENV = "KERASMT_PROGRESS"


def progress_enabled() -> bool:
    """False under pytest or with ``KERASMT_PROGRESS=0``."""
    if os.environ.get(PROGRESS_ENV, "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return "PYTEST_CURRENT_TEST" not in os.environ


def progress(iterable: Any, desc: str = "", total: int | None = None, unit: str = "it",
             every_s: float = 10.0, stream: Any = None) -> Any:
    """Iterate over ``iterable`` showing progress for long loops (data synthesis, feature
    extraction, downloads): a ``tqdm`` bar on a terminal, and in a notebook or a log (no
    terminal) one plain line at most every ``every_s`` seconds plus a last line, so executed
    notebooks hold no progress-bar debris. Silent under pytest and with ``KERASMT_PROGRESS=0``."""
    import sys
    import time

    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    if not progress_enabled():
        yield from iterable
        return
    out = stream or sys.stderr
    if stream is None and getattr(sys.stderr, "isatty", lambda: False)():
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            yield from tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
            return
    if stream is None:
        out = sys.stdout  # notebooks show stdout; stderr would look like an error
    start = last = time.perf_counter()
    count = 0
    label = f"{desc}: " if desc else ""

    def line() -> str:
        of = f"/{total} ({100 * count / total:.0f}%)" if total else ""
        return f"{label}{count}{of} {unit} in {time.perf_counter() - start:.1f} s"

    for item in iterable:
        yield item
        count += 1
        now = time.perf_counter()
        if now - last >= every_s and (total is None or count < total):
            print(line(), file=out, flush=True)
            last = now
    print(line(), file=out, flush=True)
