"""TensorFlow distribution strategies for kerasmt's training helpers.

kerasmt does not distribute anything itself: it picks a ``tf.distribute`` strategy by name, builds
models inside its scope and lets ``keras.Model.fit`` (TensorFlow backend) split every batch across
the replicas. The names, as the notebooks' ``STRATEGY`` parameter and ``kerasmt run -p STRATEGY=``
take them:

- ``"default"`` (or ``None``): TensorFlow's default strategy, one device, as without this module;
- ``"mirrored"``: ``tf.distribute.MirroredStrategy`` over every GPU of this machine (over every
  logical CPU device when there is no GPU, see :func:`set_logical_cpus`);
- ``"multi_worker"``: ``tf.distribute.MultiWorkerMirroredStrategy`` across machines; the cluster and
  this process's place in it come from the ``TF_CONFIG`` variable (see :func:`read_tf_config`);
- ``"one_device"``: ``tf.distribute.OneDeviceStrategy`` on the first GPU (else the CPU).

Conventions under a strategy:

- the batch size of a dataset is the *global* batch, split evenly across the replicas
  (:func:`global_batch_size` turns a per-replica batch into a global one);
- in-memory datasets are sharded by element (``AutoShardPolicy.DATA``, :func:`shard_by_data`), so
  every worker of a multi-worker job sees its own part of every global batch;
- only the chief (:func:`is_chief`) writes checkpoints, CSV logs and metrics to the real folders;
  the other workers write the same files under ``workertemp_<task id>/`` (:func:`worker_dir`),
  as TensorFlow's multi-worker guide recommends, because saving involves every worker.

A strategy can be created once per process for ``multi_worker`` (TensorFlow configures its
collective ops at start-up), so :func:`get_strategy` returns the same object for the same name, and
it must be called before TensorFlow runs its first operation (before data is loaded).
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

import tensorflow as tf

STRATEGIES: tuple[str, ...] = ("default", "mirrored", "multi_worker", "one_device")
TF_CONFIG_ENV = "TF_CONFIG"
#: folder prefix of a non-chief worker's files (TensorFlow's multi-worker convention)
WORKER_TEMP_PREFIX = "workertemp_"

T = TypeVar("T")

_CACHE: dict[tuple, tf.distribute.Strategy] = {}


class StrategyError(ValueError):
    """A strategy name, device list or ``TF_CONFIG`` that cannot be used."""


# ------------------------------------------------------------------------------------ devices
def set_logical_cpus(n: int) -> list[tf.config.LogicalDevice]:
    """Split the CPU into ``n`` logical devices (``/cpu:0`` ... ``/cpu:n-1``), e.g. to run a
    ``MirroredStrategy`` with ``n`` replicas on a machine without GPUs (tests, demos).

    Must run before TensorFlow initialises its devices (before any tensor is created); raises
    ``RuntimeError`` otherwise. Calling it again with the same ``n`` is a no-op.
    """
    if int(n) < 1:
        raise StrategyError(f"n must be a positive number of logical CPU devices, got {n!r}")
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == int(n):
        return tf.config.list_logical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(int(n))]
        )
    except RuntimeError as exc:
        raise RuntimeError(
            f"set_logical_cpus({n}) must be called before TensorFlow initialises its devices "
            "(before any tensor, model or dataset is created in this process); run it first, "
            "e.g. at the top of a script or in a fresh subprocess"
        ) from exc
    return tf.config.list_logical_devices("CPU")


def local_devices() -> list[str]:
    """Devices a ``"mirrored"`` strategy uses by default: every GPU, else every logical CPU."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


# ------------------------------------------------------------------------------------ TF_CONFIG
def read_tf_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The parsed and checked ``TF_CONFIG`` of a multi-worker job.

    Expected form (one entry per machine, ``HOST:PORT`` each; this process is ``task``)::

        {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
         "task": {"type": "worker", "index": 0}}

    A ``"chief"`` list of one address may be added to ``cluster``. Raises :class:`StrategyError`
    naming what is missing or malformed.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(TF_CONFIG_ENV)
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    if not raw or not raw.strip():
        raise StrategyError(
            f"strategy 'multi_worker' needs the {TF_CONFIG_ENV} environment variable (the cluster and "
            f"this process's task), e.g. {TF_CONFIG_ENV}='{example}'"
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StrategyError(f"{TF_CONFIG_ENV} is not valid JSON ({exc}); expected e.g. {example}") from None
    if not isinstance(config, dict):
        raise StrategyError(f"{TF_CONFIG_ENV} must be a JSON object, got {type(config).__name__}; expected e.g. {example}")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise StrategyError(f"{TF_CONFIG_ENV} has no 'cluster' object {{job: [HOST:PORT, ...]}}; expected e.g. {example}")
    for job, addresses in cluster.items():
        if job not in ("chief", "worker"):
            raise StrategyError(f"{TF_CONFIG_ENV}: cluster job {job!r} is not supported by MultiWorkerMirroredStrategy; "
                                "use 'worker' (and optionally one 'chief')")
        if not isinstance(addresses, list) or not addresses:
            raise StrategyError(f"{TF_CONFIG_ENV}: cluster[{job!r}] must be a non-empty list of 'HOST:PORT' strings")
        for address in addresses:
            if not isinstance(address, str) or not _is_host_port(address):
                raise StrategyError(f"{TF_CONFIG_ENV}: cluster[{job!r}] has {address!r}; expected 'HOST:PORT'")
    if len(cluster.get("chief", [])) > 1:
        raise StrategyError(f"{TF_CONFIG_ENV}: cluster['chief'] must list one address, got {cluster['chief']}")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise StrategyError(f"{TF_CONFIG_ENV} has no 'task' object {{\"type\": JOB, \"index\": I}}; expected e.g. {example}")
    if task["type"] not in cluster:
        raise StrategyError(f"{TF_CONFIG_ENV}: task type {task['type']!r} is not a job of the cluster {sorted(cluster)}")
    index = task["index"]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[task["type"]]):
        raise StrategyError(f"{TF_CONFIG_ENV}: task index {index!r} is out of range for job {task['type']!r} "
                            f"with {len(cluster[task['type']])} address(es)")
    return config


def _is_host_port(address: str) -> bool:
    host, sep, port = address.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


def tf_config(workers: list[str], index: int, task_type: str = "worker", chief: str | None = None) -> str:
    """The ``TF_CONFIG`` JSON for task ``index`` of ``task_type`` in a cluster of ``workers``
    (``HOST:PORT`` each) and an optional ``chief`` address."""
    cluster: dict[str, list[str]] = {"worker": list(workers)}
    if chief:
        cluster["chief"] = [chief]
    config = {"cluster": cluster, "task": {"type": task_type, "index": int(index)}}
    text = json.dumps(config)
    read_tf_config({TF_CONFIG_ENV: text})
    return text


# ------------------------------------------------------------------------------------ strategies
def get_strategy(
    name: str | tf.distribute.Strategy | None = None,
    devices: list[str] | None = None,
) -> tf.distribute.Strategy:
    """A ``tf.distribute`` strategy by name (see the module docstring), or ``name`` itself when it
    already is one. The same name (and devices) gives the same object within a process.

    Args:
        name: ``"default"``/``None``, ``"mirrored"``, ``"multi_worker"``, ``"one_device"``, or a
            strategy object.
        devices: ``"mirrored"``: the devices to mirror over (default :func:`local_devices`);
            ``"one_device"``: a one-element list (default: first GPU, else ``/cpu:0``).
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    if name is None:
        name = "default"
    if not isinstance(name, str):
        raise StrategyError(f"strategy must be a name {STRATEGIES}, a tf.distribute.Strategy or None, "
                            f"got {type(name).__name__}")
    key_name = name.strip().lower().replace("-", "_")
    if key_name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)} "
                            "(or a tf.distribute.Strategy)")
    if key_name == "default":
        return _default_strategy()
    key = (key_name, tuple(devices) if devices else None)
    if key in _CACHE:
        return _CACHE[key]
    if key_name == "mirrored":
        strategy: tf.distribute.Strategy = tf.distribute.MirroredStrategy(list(devices) if devices else local_devices())
    elif key_name == "one_device":
        if devices is not None and len(devices) != 1:
            raise StrategyError(f"strategy 'one_device' takes one device, got devices={devices}")
        strategy = tf.distribute.OneDeviceStrategy(devices[0] if devices else local_devices()[0])
    else:
        if devices is not None:
            raise StrategyError("strategy 'multi_worker' takes its devices from each machine, not devices=")
        read_tf_config()
        install_keras_multi_worker_fixes()
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as exc:
            raise RuntimeError(
                "MultiWorkerMirroredStrategy must be created before TensorFlow runs its first operation "
                "in this process: call kerasmt.distribute.get_strategy('multi_worker') first thing "
                "(the study notebooks do it in their setup cell, before loading data)"
            ) from exc
    _CACHE[key] = strategy
    return strategy


def _default_strategy() -> tf.distribute.Strategy:
    """TensorFlow's default (single-device) strategy, also from inside another strategy's scope."""
    if not tf.distribute.has_strategy():
        return tf.distribute.get_strategy()
    from tensorflow.python.distribute import distribute_lib  # only reachable this way inside a scope

    return distribute_lib._get_default_strategy()  # noqa: SLF001


def strategy_name(strategy: tf.distribute.Strategy | None) -> str:
    """The :data:`STRATEGIES` name of a strategy object (its class name when it has none)."""
    if strategy is None:
        return "default"
    names = {
        tf.distribute.MirroredStrategy: "mirrored",
        tf.distribute.MultiWorkerMirroredStrategy: "multi_worker",
        tf.distribute.OneDeviceStrategy: "one_device",
    }
    for cls, label in names.items():
        if isinstance(strategy, cls):
            return label
    return "default" if not is_distributed(strategy) else type(strategy).__name__


def num_replicas(strategy: str | tf.distribute.Strategy | None = None) -> int:
    """Replicas the strategy trains on (1 for the default strategy)."""
    return int(get_strategy(strategy).num_replicas_in_sync)


def is_distributed(strategy: str | tf.distribute.Strategy | None) -> bool:
    """True for any strategy other than TensorFlow's default one."""
    if strategy is None or (isinstance(strategy, str) and strategy.strip().lower() == "default"):
        return False
    return get_strategy(strategy) is not _default_strategy()


def global_batch_size(per_replica: int, strategy: str | tf.distribute.Strategy | None = None) -> int:
    """The global batch (what a dataset under the strategy is batched with) for a per-replica batch."""
    if int(per_replica) < 1:
        raise ValueError(f"per_replica must be a positive batch size, got {per_replica!r}")
    return int(per_replica) * num_replicas(strategy)


def per_replica_batch_size(global_batch: int, strategy: str | tf.distribute.Strategy | None = None) -> int:
    """The batch each replica computes for a global batch; raises when it does not divide evenly."""
    replicas = num_replicas(strategy)
    if int(global_batch) < 1 or int(global_batch) % replicas:
        raise ValueError(f"global batch size {global_batch} must be a positive multiple of the {replicas} "
                         "replicas of the strategy")
    return int(global_batch) // replicas


@contextlib.contextmanager
def strategy_scope(strategy: str | tf.distribute.Strategy | None) -> Iterator[tf.distribute.Strategy]:
    """``with strategy_scope(s) as strategy:`` builds and compiles models on the strategy's
    replicas; ``None``/``"default"`` enters no scope at all (unchanged single-device behaviour)."""
    resolved = get_strategy(strategy)
    if not is_distributed(resolved):
        yield resolved
        return
    with resolved.scope():
        yield resolved


def build_in_scope(builder: Callable[..., T], strategy: str | tf.distribute.Strategy | None, *args: Any,
                   **kwargs: Any) -> T:
    """``builder(*args, **kwargs)`` called inside :func:`strategy_scope` (use it for building
    *and* compiling, e.g. ``lambda: compile_classifier(classifiers.multitask_cnn(tasks=tasks))``)."""
    with strategy_scope(strategy):
        return builder(*args, **kwargs)


def check_built_in_scope(model: Any, strategy: str | tf.distribute.Strategy | None) -> None:
    """Raise a clear ``ValueError`` when ``model`` was not built in ``strategy``'s scope (Keras
    then trains it on one device, or fails with an obscure error)."""
    resolved = get_strategy(strategy)
    if not is_distributed(resolved):
        return
    own = getattr(model, "_distribute_strategy", None)
    if own is not resolved:
        raise ValueError(
            f"model {getattr(model, 'name', model)!r} was not built in the scope of the "
            f"{strategy_name(resolved)!r} strategy it is trained with; build and compile it with "
            "kerasmt.distribute.build_in_scope(builder, strategy) or inside `with strategy.scope():`"
        )


def synchronize_batchnorm(model: Any, synchronized: bool = True) -> int:
    """Make every ``BatchNormalization`` layer of ``model`` (nested models included) compute its
    batch statistics over all replicas (``synchronized=True``: one all-reduce per layer and step)
    instead of over each replica's share of the batch, Keras' default. With it a mirrored run
    normalises like one device with the global batch; worth it when few images go to each GPU.

    Call it after building and before training (compiled step functions are reset so that the
    next fit traces the change); the setting is saved with the model. Returns the number of
    layers set. TensorFlow backend only."""
    import keras

    if synchronized and keras.backend.backend() != "tensorflow":
        raise ValueError(f"synchronized BatchNormalization needs the TensorFlow backend, not {keras.backend.backend()!r}")
    layers = [layer for layer in model._flatten_layers(include_self=True, recursive=True)
              if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in layers:
        layer.synchronized = bool(synchronized)
    for attr in ("train_function", "test_function", "predict_function"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    return len(layers)


# ------------------------------------------------------------------------------------ losses
def replica_sum(value: Any) -> Any:
    """``value`` summed over the replicas when called inside a replica of a strategy with more than
    one (e.g. within ``train_step``), else ``value`` itself."""
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return value
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def global_masked_mean(values: Any, weights: Any) -> Any:
    """A replica's share of the weighted mean over the *global* batch:
    ``sum(values * weights) / sum over replicas of sum(weights)`` (0 when every weight is 0).

    A loss that returns an already reduced scalar is not rescaled by Keras for the replicas, and
    the gradients of the replicas are summed; with this denominator the summed gradient is the one
    of the global masked mean, even when replicas see different numbers of labelled rows, and the
    logged loss (Keras multiplies a replica's value back by the number of replicas and averages)
    is the global masked mean. Outside a distributed replica it is the plain masked mean.
    """
    weights = tf.cast(weights, values.dtype)
    total = replica_sum(tf.reduce_sum(weights))
    return tf.math.divide_no_nan(tf.reduce_sum(values * weights), total)


_KERAS_FIXED = False


def install_keras_multi_worker_fixes() -> None:
    """Make Keras 3's ``fit``/``evaluate``/``predict`` run under MultiWorkerMirroredStrategy
    (keras-team/keras#20585, tensorflow/tensorflow#72388: the TF example fails with Keras 3).

    Keras 3.x (up to 3.15 at least) fails twice under that strategy, and both failures are fixed
    here without changing what is computed:

    1. before building a model's state from a sample batch it reduces the whole nested distributed
       batch with ``strategy.reduce``, which MultiWorkerMirroredStrategy rejects for nested
       structures; only shapes and dtypes matter there, so this worker's first replica batch is used;
    2. it averages the per-replica *scalar* logs with ``strategy.reduce("MEAN", v, axis=0)``, which
       fails on scalars; scalars are averaged over the replicas with ``axis=None`` instead.

    Other strategies take Keras's own code paths unchanged. Called by :func:`get_strategy` when it
    creates a ``"multi_worker"`` strategy; idempotent.
    """
    global _KERAS_FIXED
    if _KERAS_FIXED:
        return
    import keras
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original_reduce = tf_trainer.reduce_per_replica
    original_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build  # noqa: SLF001

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or reduction not in ("auto", "mean"):
            return original_reduce(values, strategy, reduction)

        def _reduce(value: Any) -> Any:
            local = strategy.experimental_local_results(value)[0] if isinstance(
                value, tf.distribute.DistributedValues) else value
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original_reduce(value, strategy, reduction)

        return keras.tree.map_structure(_reduce, values)

    def _maybe_symbolic_build(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        strategy = self._distribute_strategy  # noqa: SLF001
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = next(batches)
                break
        data_batch = keras.tree.map_structure(
            lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
            data_batch,
        )
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)  # noqa: SLF001

    tf_trainer.reduce_per_replica = reduce_per_replica
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build  # noqa: SLF001
    _KERAS_FIXED = True


# ------------------------------------------------------------------------------------ data
def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with ``auto_shard_policy = DATA``: each worker of a multi-worker job keeps its
    share of every batch (the right policy for in-memory and single-file datasets)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def distribute_dataset(dataset: tf.data.Dataset, strategy: str | tf.distribute.Strategy | None) -> Any:
    """``strategy.experimental_distribute_dataset`` after :func:`shard_by_data` (``model.fit``
    does the distributing itself; use this for custom loops)."""
    resolved = get_strategy(strategy)
    return resolved.experimental_distribute_dataset(shard_by_data(dataset))


# ------------------------------------------------------------------------------------ chief / files
def task(strategy: str | tf.distribute.Strategy | None) -> tuple[str | None, int | None]:
    """``(task_type, task_id)`` of this process in a multi-worker job; ``(None, None)`` otherwise."""
    resolved = get_strategy(strategy)
    resolver = getattr(resolved, "cluster_resolver", None)
    if resolver is None or not isinstance(resolved, tf.distribute.MultiWorkerMirroredStrategy):
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy: str | tf.distribute.Strategy | None = None) -> bool:
    """True when this process should write the real files: always outside a multi-worker job;
    in one, the ``chief`` task, or worker 0 when the cluster has no chief."""
    task_type, task_id = task(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    resolver = get_strategy(strategy).cluster_resolver
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def worker_dir(path: str | os.PathLike, strategy: str | tf.distribute.Strategy | None = None) -> Path:
    """Where this process writes what belongs in ``path``: ``path`` itself on the chief, else
    ``path/workertemp_<task id>`` (delete it after use, see :func:`kerasmt.training.fit`)."""
    path = Path(path)
    if is_chief(strategy):
        return path
    task_type, task_id = task(strategy)
    return path / f"{WORKER_TEMP_PREFIX}{task_type}_{task_id}"


def describe(strategy: str | tf.distribute.Strategy | None = None) -> str:
    """One line for notebooks and logs, e.g. ``mirrored: 2 replicas (/cpu:0, /cpu:1), chief``."""
    resolved = get_strategy(strategy)
    name = strategy_name(resolved)
    replicas = resolved.num_replicas_in_sync
    parts = [f"{name}: {replicas} replica{'s' if replicas != 1 else ''}"]
    devices = resolved.extended.worker_devices if name in ("mirrored", "one_device") else None
    if devices:
        parts[0] += f" ({', '.join(d.split('/')[-1].lower().replace('device:', '') for d in devices)})"
    task_type, task_id = task(resolved)
    if task_type is not None:
        parts.append(f"task {task_type}:{task_id}{' (chief)' if is_chief(resolved) else ''}")
    return ", ".join(parts)
