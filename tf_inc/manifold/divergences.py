"""Divergences between classifier outputs and the pair metrics of the min-max attack (§4.3).

* ``"sym_ce"`` — symmetric cross-entropy −Σ p log p' + p' log p (the original code);
* ``"l2"`` — the paper's ‖C(G(z)) − C(G(z'))‖² (eq. 9);
* ``"sym_kl"`` — KL(p‖p') + KL(p'‖p): sym_ce without its two entropy terms.

Plus the one distance convention between images (:func:`mean_squared_difference`,
per pixel-channel) and the paper's pair metrics (:func:`pair_metrics`).
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import tensorflow as tf

from tf_inc.errors import InputError


def kl(p, q, eps: float = 1e-12):
    p, q = np.clip(p, eps, 1.0), np.clip(q, eps, 1.0)
    return (p * (np.log(p) - np.log(q))).sum(-1)


def mean_over_valid(a, valid) -> float:
    """Mean of ``a`` over the valid pairs (NaN when there are none)."""
    v = np.asarray(valid, bool)
    return float(np.asarray(a)[v].mean()) if v.any() else float("nan")


def pair_metrics(p, p2, valid, prefix: str = "", confident: float = 0.5) -> Dict[str, float]:
    """The paper's numbers: % valid, mean KL(p‖p') over valid pairs, % of valid pairs
    classified differently; plus the mean ‖p − p'‖₂ and ``confident_differ_frac``: valid
    pairs classified differently with both confidences ≥ ``confident`` (a flip between
    two near-uniform outputs is an uncertain classifier rather than a confident error)."""
    v = np.asarray(valid, bool)
    differ = p.argmax(1) != p2.argmax(1)
    sure = np.minimum(p.max(1), p2.max(1)) >= confident
    return {
        prefix + "valid_frac": float(v.mean()),
        prefix + "mean_kl": mean_over_valid(kl(p, p2), v),
        prefix + "differ_frac": mean_over_valid(differ, v),
        prefix + "confident_differ_frac": mean_over_valid(differ & sure, v),
        prefix + "mean_output_l2": mean_over_valid(np.linalg.norm(p - p2, axis=1), v),
    }


def mean_squared_difference(a, b):
    """Per-pair ``||a − b||² / D``: the one distance convention of this module."""
    n = tf.shape(a)[0]
    return tf.reduce_mean(tf.square(tf.reshape(a - b, [n, -1])), axis=1)


DIVERGENCES = ("sym_ce", "l2", "sym_kl")


def check_divergence(kind: str) -> str:
    """``kind`` if it names a divergence, else an :class:`InputError` listing the choices."""
    if kind not in DIVERGENCES:
        raise InputError(f"divergence must be one of {', '.join(DIVERGENCES)}, got {kind!r}")
    return kind


def divergence(p1, p2, kind: str):
    """Per-row divergence ``kind`` between probability rows ``p1`` and ``p2`` (tensors)."""
    if check_divergence(kind) == "l2":
        return tf.reduce_sum(tf.square(p1 - p2), axis=1)
    lp1 = tf.math.log(tf.clip_by_value(p1, 1e-12, 1.0))
    lp2 = tf.math.log(tf.clip_by_value(p2, 1e-12, 1.0))
    if kind == "sym_ce":
        return -tf.reduce_sum(p1 * lp2 + p2 * lp1, axis=1)
    return tf.reduce_sum((p1 - p2) * (lp1 - lp2), axis=1)      # sym_kl
