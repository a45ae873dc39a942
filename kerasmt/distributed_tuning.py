"""Distributed keras-tuner searches: one chief oracle and any number of workers (``kerasmt tune``).

kerasmt runs keras-tuner's own distributed mode: every process builds the same tuner; the one
whose ``KERASTUNER_TUNER_ID`` contains ``chief`` serves the oracle over gRPC at
``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT`` and writes the oracle and ``trial_*/trial.json``
files; the workers ask it for trials, train them and report their scores. This module only sets
those variables, picks the study's search function and, for one machine, starts the processes.

- :func:`run_role`: run this process as the chief or as a worker (``kerasmt tune STUDY --role``);
- :func:`launch_local`: a chief and N workers on this machine as subprocesses, optionally one GPU
  per worker (``kerasmt tune STUDY --local-workers N``);
- :func:`recorded_trials`: the trials the chief recorded, read back from its files.

A study's search is a function ``search(request: TuneRequest) -> keras_tuner.Tuner`` that builds
its tuner with ``directory=request.directory``, ``project_name=request.project_name`` and
``overwrite=False`` (the chief's files must survive the workers' start) and calls
``tuner.search(...)``. :data:`SEARCHES` maps names to their entry points (``utkface``: the
report's Model A search, :mod:`kerasmt.studies.utkface_search`), and ``"package.module:function"``
names any other; this module imports no study.
"""
from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

ROLES: tuple[str, ...] = ("chief", "worker")
ENV_TUNER_ID = "KERASTUNER_TUNER_ID"
ENV_ORACLE_IP = "KERASTUNER_ORACLE_IP"
ENV_ORACLE_PORT = "KERASTUNER_ORACLE_PORT"


class TuneError(ValueError):
    """A tuning argument (role, oracle address, tuner id, study) that cannot be used."""


@dataclass
class TuneRequest:
    """What a study's search function gets: where the tuner's files go and how big the search is.

    ``role`` is informative (keras-tuner itself switches on the environment): the chief never
    trains, so a search function may skip loading data there.
    """

    directory: Path
    project_name: str
    max_trials: int | None = None
    data_dir: str | None = None
    smoke: bool = False
    seed: int = 0
    algorithm: str | None = None
    epochs: int | None = None
    role: str = "chief"
    tuner_id: str = "chief"
    verbose: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


SearchFunction = Callable[[TuneRequest], Any]


@dataclass(frozen=True)
class SearchSpec:
    """A registered search: the function, its keras-tuner project name, an optional ``prepare``
    run once by :func:`launch_local` before starting processes (returns the data folder to pass
    on, e.g. a synthetic dataset written once instead of by every process at the same time)."""

    search: SearchFunction
    project_name: str
    prepare: Callable[[TuneRequest], str | None] | None = None


# ------------------------------------------------------------------------------------ addresses
def parse_oracle(address: str) -> tuple[str, int]:
    """``"HOST:PORT"`` -> ``(host, port)``; raises :class:`TuneError` naming ``--oracle``."""
    host, sep, port = str(address).strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TuneError(f"--oracle must be HOST:PORT (e.g. 10.0.0.1:8000 or 127.0.0.1:8000), got {address!r}")
    return host.strip("[]"), int(port)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (bind to port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def default_tuner_id(role: str) -> str:
    """``chief`` for the chief; ``worker-<host>-<pid>`` (unique) for a worker."""
    return "chief" if role == "chief" else f"worker-{socket.gethostname()}-{os.getpid()}"


def tuner_environment(role: str, oracle: str, tuner_id: str | None = None) -> dict[str, str]:
    """The ``KERASTUNER_*`` variables of a chief or worker talking to the oracle at ``oracle``.

    keras-tuner makes the process whose tuner id contains ``chief`` the chief, so a chief's id
    must contain it and a worker's must not; two workers must not share an id (the oracle would
    hand both the same trial).
    """
    if role not in ROLES:
        raise TuneError(f"--role must be one of {', '.join(ROLES)}, got {role!r}")
    host, port = parse_oracle(oracle)
    tuner_id = tuner_id or default_tuner_id(role)
    if role == "chief" and "chief" not in tuner_id:
        raise TuneError(f"--tuner-id of the chief must contain 'chief' (keras-tuner's rule), got {tuner_id!r}")
    if role == "worker" and "chief" in tuner_id:
        raise TuneError(f"--tuner-id of a worker must not contain 'chief' (it would act as the chief), got {tuner_id!r}")
    return {ENV_TUNER_ID: tuner_id, ENV_ORACLE_IP: host, ENV_ORACLE_PORT: str(port)}


# ------------------------------------------------------------------------------------ searches
#: study name -> the entry point ("package.module:function") of its distributed search; the
#: module is imported only when that search runs. Add others with :func:`register_search`.
SEARCHES: dict[str, str] = {
    "utkface": "kerasmt.studies.utkface_search:search",
}


def register_search(name: str, entry_point: str | SearchFunction) -> None:
    """Register a search under ``name`` for ``kerasmt tune NAME``: an entry point
    ``"package.module:function"`` or the function itself (a ``search(TuneRequest)`` whose optional
    attributes ``project_name`` and ``prepare`` fill the :class:`SearchSpec`)."""
    if not name or ":" in name:
        raise TuneError(f"a search name must be non-empty and without ':', got {name!r}")
    SEARCHES[name] = entry_point  # type: ignore[assignment]


def _load_entry_point(entry_point: str, study: str) -> SearchFunction:
    module_name, sep, attribute = entry_point.partition(":")
    if not sep or not module_name or not attribute:
        raise TuneError(f"unknown study {study!r} for `kerasmt tune`; expected one of {sorted(SEARCHES)} "
                        "or 'package.module:function' (a search function taking a TuneRequest)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TuneError(f"cannot import the search module {module_name!r} of {study!r}: {exc}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise TuneError(f"{module_name!r} has no search function {attribute!r}")
    return function


def resolve_search(study: str) -> SearchSpec:
    """The :class:`SearchSpec` of a registered name (:data:`SEARCHES`) or of an entry point
    ``"package.module:function"``; the function's ``project_name`` (default ``search``) and
    ``prepare`` attributes complete it."""
    target = SEARCHES.get(study, study)
    function = target if callable(target) else _load_entry_point(target, study)
    return SearchSpec(function, project_name=getattr(function, "project_name", "search"),
                      prepare=getattr(function, "prepare", None))


# ------------------------------------------------------------------------------------ one process
def run_role(
    study: str,
    role: str,
    oracle: str,
    out_dir: str | os.PathLike,
    tuner_id: str | None = None,
    trials: int | None = None,
    data_dir: str | None = None,
    smoke: bool = False,
    seed: int = 0,
    algorithm: str | None = None,
    epochs: int | None = None,
    verbose: int = 0,
) -> Any:
    """Run this process as the chief or a worker of a distributed search and return its tuner.

    Sets the ``KERASTUNER_*`` variables (:func:`tuner_environment`) before the tuner is built. The
    chief serves the oracle until every trial is done and every worker has been told to stop; a
    worker runs trials until the oracle has none left. Tuner files: ``out_dir/tuning/<project>``.
    """
    spec = resolve_search(study)
    env = tuner_environment(role, oracle, tuner_id)
    if trials is not None and int(trials) < 1:
        raise TuneError(f"--trials must be a positive number, got {trials}")
    os.environ.update(env)
    request = TuneRequest(
        directory=Path(out_dir) / "tuning", project_name=spec.project_name,
        max_trials=None if trials is None else int(trials), data_dir=data_dir, smoke=smoke, seed=seed,
        algorithm=algorithm, epochs=epochs, role=role, tuner_id=env[ENV_TUNER_ID], verbose=verbose,
    )
    request.directory.mkdir(parents=True, exist_ok=True)
    tuner = spec.search(request)
    if role == "chief" and hasattr(tuner, "save"):
        # keras-tuner saves the oracle before it retires a finished trial; save the final state
        # so that oracle.json lists no ongoing trial and a restarted chief resumes correctly
        tuner.save()
    return tuner


def trials_table(tuner: Any) -> Any:
    """The chief tuner's trials (:func:`kerasmt.tuning.trials_frame`)."""
    from kerasmt import tuning

    return tuning.trials_frame(tuner)


# ------------------------------------------------------------------------------------ recorded files
def recorded_trials(project_dir: str | os.PathLike) -> Any:
    """One row per ``trial_*/trial.json`` the chief wrote: ``trial_id``, ``status``, ``score``,
    the hyperparameters; sorted by trial id (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    for path in sorted(Path(project_dir).glob("trial_*/trial.json")):
        state = json.loads(path.read_text())
        row: dict[str, Any] = {"trial_id": state["trial_id"], "status": state.get("status"),
                               "score": state.get("score")}
        for name, value in (state.get("hyperparameters", {}).get("values") or {}).items():
            if not name.startswith("tuner/"):
                row[name] = value
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class LocalSearch:
    """What :func:`launch_local` ran: exit codes and log files per tuner id, the project folder,
    the trials recorded by the chief and the wall time."""

    returncodes: dict[str, int]
    logs: dict[str, Path]
    project_dir: Path
    trials: Any
    seconds: float

    @property
    def ok(self) -> bool:
        return all(code == 0 for code in self.returncodes.values())


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def launch_local(
    study: str,
    n_workers: int,
    out_dir: str | os.PathLike,
    trials: int | None = None,
    data_dir: str | None = None,
    smoke: bool = False,
    seed: int = 0,
    algorithm: str | None = None,
    epochs: int | None = None,
    oracle: str | None = None,
    worker_gpus: Sequence[str] | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    progress: Any = None,
) -> LocalSearch:
    """Start a chief and ``n_workers`` workers on this machine (``python -m kerasmt.cli tune ...
    --role``), wait for all of them and return what they recorded.

    ``worker_gpus``: GPU ids handed out round-robin as each worker's ``CUDA_VISIBLE_DEVICES`` (the
    chief gets none: it only serves the oracle). Each process logs to ``out_dir/logs/tune_<id>.log``.
    If a process fails or ``timeout`` seconds pass, the others are stopped and
    :class:`RuntimeError` names the failing process with the end of its log.
    """
    if int(n_workers) < 1:
        raise TuneError(f"--local-workers must be at least 1, got {n_workers}")
    spec = resolve_search(study)
    out = Path(out_dir).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    if spec.prepare is not None:
        data_dir = spec.prepare(TuneRequest(out / "tuning", spec.project_name, trials, data_dir, smoke, seed,
                                            algorithm, epochs, role="prepare"))
    oracle = oracle or f"127.0.0.1:{free_port()}"
    parse_oracle(oracle)
    common = [study, "--oracle", oracle, "--out", str(out), "--seed", str(seed)]
    for flag, value in (("--trials", trials), ("--data", data_dir), ("--algorithm", algorithm), ("--epochs", epochs)):
        if value is not None:
            common += [flag, str(value)]
    if smoke:
        common.append("--smoke")
    base_env = dict(os.environ if env is None else env)
    for name in (ENV_TUNER_ID, ENV_ORACLE_IP, ENV_ORACLE_PORT):
        base_env.pop(name, None)
    ids = ["chief"] + [f"worker{i}" for i in range(int(n_workers))]
    processes: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    start = time.perf_counter()
    try:
        for i, tuner_id in enumerate(ids):
            child_env = dict(base_env)
            if tuner_id == "chief":
                child_env["CUDA_VISIBLE_DEVICES"] = ""
            elif worker_gpus:
                child_env["CUDA_VISIBLE_DEVICES"] = str(list(worker_gpus)[(i - 1) % len(worker_gpus)])
            role = "chief" if tuner_id == "chief" else "worker"
            logs[tuner_id] = out / "logs" / f"tune_{tuner_id}.log"
            with open(logs[tuner_id], "w") as log:
                processes[tuner_id] = subprocess.Popen(
                    [sys.executable, "-m", "kerasmt.cli", "tune", *common, "--role", role, "--tuner-id", tuner_id],
                    stdout=log, stderr=subprocess.STDOUT, env=child_env,
                )
            if progress is not None:
                print(f"started {tuner_id} (pid {processes[tuner_id].pid}), log {logs[tuner_id]}", file=progress)
        codes: dict[str, int] = {}
        while len(codes) < len(processes):
            for tuner_id, process in processes.items():
                if tuner_id not in codes and process.poll() is not None:
                    codes[tuner_id] = process.returncode
                    if progress is not None:
                        print(f"{tuner_id} exited with {process.returncode}", file=progress)
                    if process.returncode != 0:
                        raise RuntimeError(f"{tuner_id} failed with exit code {process.returncode}; "
                                           f"end of {logs[tuner_id]}:\n{_tail(logs[tuner_id])}")
            if timeout is not None and time.perf_counter() - start > timeout:
                running = [t for t in processes if t not in codes]
                raise RuntimeError(f"the search did not finish within {timeout:g} s; still running: {running}; "
                                   f"end of the chief's log:\n{_tail(logs['chief'])}")
            time.sleep(0.5)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    project_dir = out / "tuning" / spec.project_name
    return LocalSearch(codes, logs, project_dir, recorded_trials(project_dir), time.perf_counter() - start)
