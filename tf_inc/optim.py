"""The one optimisation core: in-graph Adam, keep-best selection and stateless seeding.

Inversion (Alg. 1, Adam in z), the min-max search (eq. 9, Adam ascent on (z, z'))
and the Carlini–Wagner attacks (Adam in tanh space) all run their whole loop in
one ``tf.function`` with per-row optimiser state, so none of them can use a
``keras.optimizers.Adam`` (one state per variable, not per row). They share
these three pieces instead:

* :func:`adam_update` — one Adam step for a batch of rows, returning the step to
  apply and the new moments. ``form="keras"`` folds the bias correction into the
  step size and adds ε to √v (Keras/TF's formulation, used by inversion);
  ``form="kingma"`` divides the bias-corrected moments, ε added to √v̂ (Kingma &
  Ba's Algorithm 1, used by the min-max search and CW). The two differ only in
  where ε enters; each caller keeps the formulation its published numbers were
  measured with.
* :func:`keep_best` — per-row "best point so far" bookkeeping: a row's candidate
  replaces its best when it is eligible and strictly better, so more steps or
  more restarts can never make the returned point worse.
* :func:`content_keys` / :func:`stateless_normal_per_key` — per-row draws keyed by
  the row's own content, so a row's randomness does not depend on its position
  in the batch, the batch size or the chunking (a deterministic defence);
* :func:`stateless_normal_rows` — stateless draws keyed by
  ``(seed, stream)``, so restarts, pairs and noise are reproducible and the
  first R' of R restarts are the R' restarts of a smaller run.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

ADAM_FORMS = ("keras", "kingma")


def adam_update(grad, m, v, t, lr, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
                form: str = "keras"):
    """One Adam step for every row: returns ``(step, m_new, v_new)``.

    ``t`` is the 1-based step count (float tensor), ``lr`` a scalar or per-row
    tensor. Descend with ``param - step``, ascend with ``param + step``.
    """
    m_new = beta1 * m + (1.0 - beta1) * grad
    v_new = beta2 * v + (1.0 - beta2) * tf.square(grad)
    if form == "keras":
        lr_t = lr * tf.sqrt(1.0 - tf.pow(beta2, t)) / (1.0 - tf.pow(beta1, t))
        step = lr_t * m_new / (tf.sqrt(v_new) + epsilon)
    elif form == "kingma":
        step = lr * (m_new / (1 - beta1 ** t)) / (tf.sqrt(v_new / (1 - beta2 ** t)) + epsilon)
    else:
        raise ValueError(f"form must be one of {ADAM_FORMS}, got {form!r}")
    return step, m_new, v_new


def _bcast(mask, like):
    """Reshape a per-row mask to broadcast against ``like`` (rows first)."""
    return tf.reshape(mask, [-1] + [1] * (len(like.shape) - 1))


def keep_best(score, best_score, candidates: Sequence[tf.Tensor], best: Sequence[tf.Tensor],
              eligible=None, maximize: bool = False):
    """Per-row keep-best: returns ``(best_score, best_candidates, improved)``.

    A row takes its new ``score``/``candidates`` when it is ``eligible`` (default:
    every row) and strictly better than ``best_score`` (lower, or higher with
    ``maximize``). ``candidates`` and ``best`` are aligned lists of tensors whose
    first axis is the row.
    """
    better = score > best_score if maximize else score < best_score
    if eligible is not None:
        better = tf.logical_and(eligible, better)
    new_score = tf.where(better, score, best_score)
    new_best = [tf.where(_bcast(better, c), c, b) for c, b in zip(candidates, best)]
    return new_score, new_best, better


def stateless_normal_rows(n, dim, seed, stream, stddev: float = 1.0):
    """``(n, dim)`` draws from N(0, stddev² I) keyed by ``(seed, stream)`` (ints or int32 tensors)."""
    return stateless_normal_pair(n, dim, tf.stack([seed, stream]), stddev)


def stateless_normal_pair(n, dim, seed_pair, stddev: float = 1.0):
    """``(n, dim)`` draws keyed by a stateless seed pair (a tuple or a [2] tensor, graph-safe)."""
    return tf.random.stateless_normal(tf.stack([n, dim]), seed=seed_pair, stddev=stddev)


def content_keys(x) -> tf.Tensor:
    """(N,) int64 key per row of ``x``: a fingerprint of its float32 bytes (same image, same key)."""
    n = tf.shape(x)[0]
    fp = tf.fingerprint(tf.reshape(tf.cast(x, tf.float32), [n, -1]))      # (N, 8) uint8
    return tf.bitcast(fp, tf.int64)


def stateless_normal_per_key(keys, dim: int, seed, stream, stddev: float = 1.0):
    """``(N, dim)`` N(0, stddev² I) draws, row i keyed by ``(keys[i], seed, stream)`` only."""
    mix = tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(stream, tf.int64)
    seeds = tf.stack([keys, tf.fill(tf.shape(keys), mix)], axis=1)
    return tf.map_fn(lambda s: tf.random.stateless_normal([dim], s, stddev=stddev), seeds,
                     fn_output_signature=tf.float32)
