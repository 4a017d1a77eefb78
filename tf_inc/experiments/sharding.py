"""Shard a per-image evaluation over the replicas / workers of a ``tf.distribute`` strategy.

Large evaluations (INC over a whole test split, attacks, the robustness table) compute one *row*
per input image, independently of the other images. :func:`run_sharded` splits the images over
every replica in sync — the devices of a ``MirroredStrategy``, or all devices of all workers of a
``MultiWorkerMirroredStrategy`` — runs ``fn`` on each replica's shard inside one
``tf.function`` (``strategy.run``), gathers the rows back (``strategy.gather``, an all-gather across
workers) and puts each row at its image's index. The merged result is therefore in input order
and the same on every worker, whatever the number of replicas; it equals the single-device
result whenever ``fn``'s answer for an image does not depend on the other images of its batch
(for the inversion: ``InversionConfig(seeding="content")``).

Sharding (:func:`shard_indices`) is contiguous and balanced: replica ``r`` of ``R`` takes the
``r``-th of ``R`` near-equal consecutive blocks of each global chunk; short shards are padded with
a copy of an image of the chunk so that every replica runs the same shape, and padded rows are
dropped before the merge.
"""
from __future__ import annotations

import weakref
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from tf_inc.bounds import check_count
from tf_inc.errors import InputError


def require_content_seeding(seeding: str, what: str) -> None:
    """A sharded evaluation equals the single-device one only if an image's random draws are keyed
    by its content; ``seeding="position"`` (keyed by batch row) is refused with ``strategy=``."""
    if seeding != "content":
        raise InputError(f"strategy=: sharded {what} need seeding='content' (an image's random draws must "
                         f"not depend on which replica or batch position it lands on), got {seeding!r}")


def shard_indices(n: int, worker_index: int, num_workers: int) -> np.ndarray:
    """Indices of ``range(n)`` handled by ``worker_index`` of ``num_workers``.

    Contiguous blocks whose sizes differ by at most one (the first ``n % num_workers`` blocks take
    one more); over all workers they partition ``range(n)`` in order.
    """
    for name, v, lo in (("n", n, 0), ("num_workers", num_workers, 1), ("worker_index", worker_index, 0)):
        check_count(v, name, lo)
    if worker_index >= num_workers:
        raise InputError(f"worker_index {worker_index} is not below num_workers {num_workers}")
    base, extra = divmod(int(n), int(num_workers))
    start = worker_index * base + min(worker_index, extra)
    return np.arange(start, start + base + (worker_index < extra), dtype=np.int64)


#: fn -> {id(strategy): (strategy, compiled step)}: a caller that passes the same ``fn`` again
#: (e.g. the Projector, per seed) reuses its traced graph instead of retracing on every call
_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _sharded_step(fn: Callable, strategy: tf.distribute.Strategy):
    per_fn = _STEPS.setdefault(fn, {})
    if id(strategy) in per_fn:
        return per_fn[id(strategy)][1]

    def step(xs, ids):
        out = strategy.run(fn, args=(xs,))
        def gather(v):                                  # concatenated in replica order
            return strategy.gather(v, axis=0)

        return tf.nest.map_structure(gather, out), gather(ids)

    compiled = tf.function(step, reduce_retracing=True)
    per_fn[id(strategy)] = (strategy, compiled)
    return compiled


def run_sharded(fn: Callable, x, strategy: Optional[tf.distribute.Strategy] = None,
                batch_size: Optional[int] = None, progress: bool = False, desc: str = "sharded"):
    """``fn`` over ``x`` sharded across ``strategy``'s replicas; rows merged back in input order.

    Args:
      fn: ``(b, ...) float32 tensor -> tensor or nest of tensors``, each with leading dimension
        ``b`` (one row per image). Runs in replica context, traced once per shard shape; it
        must not depend on the position of an image in its batch if the result is to equal the
        single-device one.
      x: ``(N, ...)`` array, the same on every worker (checked by the caller).
      strategy: default ``tf.distribute.get_strategy()``.
      batch_size: images per replica per call (memory bound); default all of them at once.

    Returns the nest of numpy arrays ``fn`` returns, with ``N`` rows in the order of ``x``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    x = np.asarray(x)
    n = len(x)
    if n == 0:
        raise InputError("x: empty batch (0 images)")
    replicas = int(strategy.num_replicas_in_sync)
    per_replica = int(batch_size) if batch_size else -(-n // replicas)
    if per_replica < 1:
        raise InputError(f"batch_size: expected >= 1, got {batch_size!r}")
    chunk = per_replica * replicas
    step = _sharded_step(fn, strategy)
    starts = range(0, n, chunk)
    if progress and len(starts) > 1:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="chunk")
    merged = None
    for start in starts:
        idx = np.arange(start, min(start + chunk, n))
        width = -(-len(idx) // replicas)                 # every replica runs this many rows
        shard_x, shard_ids = [], []
        for r in range(replicas):
            own = idx[shard_indices(len(idx), r, replicas)]
            pad = width - len(own)
            ids = np.concatenate([own, np.full(pad, -1, np.int64)])
            shard_x.append(x[np.concatenate([own, np.full(pad, idx[0], np.int64)])])
            shard_ids.append(ids)
        def value_fn(ctx, xs=shard_x, ids=shard_ids):
            return tf.constant(xs[ctx.replica_id_in_sync_group]), tf.constant(ids[ctx.replica_id_in_sync_group])

        out, ids = step(*strategy.experimental_distribute_values_from_function(value_fn))
        ids = ids.numpy()
        where = ids[ids >= 0]                          # padded rows dropped
        rows = [t.numpy()[ids >= 0] for t in tf.nest.flatten(out)]
        if merged is None:
            merged = [np.empty((n,) + a.shape[1:], a.dtype) for a in rows]
        for dst, src in zip(merged, rows):
            dst[where] = src
    return tf.nest.pack_sequence_as(out, merged)
