"""Scale-out with TensorFlow's own engine: one ``--strategy`` flag for every training driver.

``--strategy default|mirrored|multiworker`` (the ``strategy`` field of each training config) picks

* ``default``: ``tf.distribute.get_strategy()`` — one device, or the strategy whose scope the caller
  is already in;
* ``mirrored``: :class:`tf.distribute.MirroredStrategy` over every GPU of this host (on a host
  without GPUs: over its logical CPU devices, which is how the tests exercise it);
* ``multiworker``: :class:`tf.distribute.MultiWorkerMirroredStrategy` across hosts, configured by
  the ``TF_CONFIG`` environment variable (one process per host, all started with the same command).

How the drivers use it (:func:`tf_inc.training.loop.fit_resumable` does the rest):

* the model, its optimizer(s) and ``compile`` are created inside ``strategy.scope()``; the
  ``batch_size`` of a config is the **global** batch, split evenly over the replicas, so a run
  takes the same optimisation steps on any number of devices;
* checkpoints are ``tf.train.Checkpoint`` files, which hold one copy of each variable whatever the
  strategy: a run trained under one strategy resumes under another;
* under ``multiworker`` every worker executes the same program; only the chief (``task.type``
  ``chief``, or worker 0 when there is no chief) writes into the run directory and the models
  directory — the others write their (identical) checkpoints and model files to a private
  scratch directory (:func:`worker_path`), as the collective save requires every worker to save.

Custom ``train_step`` s divide their loss by the replica count (:func:`replica_scaled`): the
optimizer sums the replicas' gradients, exactly as Keras' own ``train_step`` expects.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence

import tensorflow as tf

from tf_inc.errors import InputError

STRATEGIES = ("default", "mirrored", "multiworker")

_CACHE: Dict[tuple, tf.distribute.Strategy] = {}


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` accepts what Keras 3's ``fit`` passes it.

    Keras 3.15 ``fit`` calls ``strategy.reduce`` on the ``(x, y)`` tuple of the first batch and on
    scalar metric values with ``axis=0``; TensorFlow 2.21's collective ``reduce`` accepts neither
    (a tuple is not a tensor; a scalar has no axis 0) although ``MirroredStrategy.reduce`` does.
    This reduces each element of a nest separately and a scalar over the replicas only; anything
    else is passed through unchanged.
    """

    def reduce(self, reduce_op, value, axis=None):
        def one(v):
            ax = axis
            if ax is not None:
                first = self.experimental_local_results(v)[0]
                if getattr(first, "shape", None) is not None and len(first.shape) == 0:
                    ax = None
            return super(_MultiWorkerMirroredStrategy, self).reduce(reduce_op, v, ax)

        return tf.nest.map_structure(one, value)


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise InputError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    return name


def tf_config() -> dict:
    """The parsed and checked ``TF_CONFIG`` (``InputError`` naming what is missing or malformed)."""
    raw = os.environ.get("TF_CONFIG", "")
    example = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}\'')
    if not raw.strip():
        raise InputError("--strategy multiworker needs the TF_CONFIG environment variable describing the "
                         f"cluster and this process's task, e.g. {example}")
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InputError(f"TF_CONFIG is not valid JSON ({e}); expected e.g. {example}") from None
    cluster, task = cfg.get("cluster"), cfg.get("task")
    if not isinstance(cluster, dict) or not any(isinstance(cluster.get(k), list) and cluster.get(k)
                                                for k in ("worker", "chief")):
        raise InputError(f"TF_CONFIG: 'cluster' must list the 'worker' (and optional 'chief') addresses, got "
                         f"{cluster!r}; expected e.g. {example}")
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int):
        raise InputError(f"TF_CONFIG: 'task' must give this process's 'type' (one of {sorted(cluster)}) and "
                         f"integer 'index', got {task!r}")
    if not 0 <= task["index"] < len(cluster[task["type"]]):
        raise InputError(f"TF_CONFIG: task index {task['index']} is outside the {len(cluster[task['type']])} "
                         f"'{task['type']}' addresses")
    return cfg


def make_strategy(name: str = "default", devices: Optional[Sequence[str]] = None) -> tf.distribute.Strategy:
    """The strategy for ``--strategy name`` (built once per process and reused).

    ``devices`` (``mirrored`` only): device names to mirror over; default every GPU, or every
    logical CPU device on a host without GPUs.
    """
    check_strategy(name)
    if name == "default":
        return tf.distribute.get_strategy()
    key = (name, tuple(devices) if devices else None)
    if key in _CACHE:
        return _CACHE[key]
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        on_cpu = not any("GPU" in d.upper() for d in devices)
        # NCCL (the GPU default) has no CPU kernels: reduce on one device instead
        strategy = tf.distribute.MirroredStrategy(
            list(devices), cross_device_ops=tf.distribute.ReductionToOneDevice() if on_cpu else None)
    else:
        tf_config()
        try:
            strategy = _MultiWorkerMirroredStrategy()
        except RuntimeError as e:
            if "program startup" not in str(e):
                raise
            raise RuntimeError("--strategy multiworker: the MultiWorkerMirroredStrategy must be created before "
                               "any other TensorFlow operation runs in this process; call "
                               "tf_inc.training.distribute.make_strategy('multiworker') first (the training "
                               "drivers and `python -m tf_inc.training` do)") from e
    _CACHE[key] = strategy
    return strategy


def num_replicas(strategy: Optional[tf.distribute.Strategy] = None) -> int:
    return int((strategy or tf.distribute.get_strategy()).num_replicas_in_sync)


def is_multi_worker(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
    strategy = strategy or tf.distribute.get_strategy()
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())   # the check Keras itself makes


def task(strategy: Optional[tf.distribute.Strategy] = None):
    """``(task_type, task_index)`` of this process (``(None, 0)`` outside a multi-worker cluster)."""
    strategy = strategy or tf.distribute.get_strategy()
    if not is_multi_worker(strategy):
        return None, 0
    resolver = strategy.cluster_resolver
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
    """True for the one process that writes the run's files (always true on a single host)."""
    strategy = strategy or tf.distribute.get_strategy()
    kind, index = task(strategy)
    if kind is None or kind == "chief":
        return True
    has_chief = "chief" in strategy.cluster_resolver.cluster_spec().as_dict()
    return kind == "worker" and index == 0 and not has_chief


_SCRATCH: Dict[str, Path] = {}


def worker_path(path, strategy: Optional[tf.distribute.Strategy] = None) -> Path:
    """``path`` on the chief; a private scratch copy of its name on every other worker.

    A non-chief worker must still save checkpoints and models (the save takes part in collective
    reads), but its files must neither clobber the chief's nor be trusted later: they go to a
    temporary directory removed when the process exits.
    """
    path = Path(path)
    if is_chief(strategy):
        return path
    kind, index = task(strategy)
    key = f"{kind}{index}"
    if key not in _SCRATCH:
        _SCRATCH[key] = Path(tempfile.mkdtemp(prefix=f"tf_inc_{kind}{index}_"))
        atexit.register(shutil.rmtree, _SCRATCH[key], ignore_errors=True)
    return _SCRATCH[key] / path.name


def replica_scaled(grads):
    """Gradients (a tensor or a nest; ``None`` kept) divided by the number of replicas in sync.

    Keras' optimizer *sums* the replicas' gradients (``all_reduce(SUM)``); a custom
    ``train_step`` whose loss is a mean over its local batch must therefore apply
    ``grad / replicas`` to take the same step as one device on the global batch (what Keras'
    own ``train_step`` does by scaling its loss). Identity on one replica.
    """
    ctx = tf.distribute.get_replica_context()
    n = ctx.num_replicas_in_sync if ctx is not None else 1
    if n == 1:
        return grads
    return tf.nest.map_structure(lambda g: None if g is None else g / tf.cast(n, g.dtype), grads)


def replica_mean(value):
    """Mean of ``value`` over the replicas in sync (in a replica context; identity on one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, value)


def replica_index():
    """Global index of the current replica (0 outside a replica context or on one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return tf.constant(0, tf.int32)
    return tf.cast(ctx.replica_id_in_sync_group, tf.int32)


def describe(strategy: Optional[tf.distribute.Strategy] = None) -> dict:
    """What a run logs about its strategy: class, replicas, this process's task."""
    strategy = strategy or tf.distribute.get_strategy()
    kind, index = task(strategy)
    return {"strategy": type(strategy).__name__.lstrip("_"), "replicas": num_replicas(strategy),
            "task_type": kind, "task_index": index, "chief": is_chief(strategy)}
