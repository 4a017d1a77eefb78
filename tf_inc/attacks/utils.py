"""Helpers shared by the attacks (projection onto norm balls, steepest-ascent steps)."""
from __future__ import annotations

import tensorflow as tf


def loss_gradient(model_fn, x, y, targeted: bool = False):
    """∇_x of the (summed) cross-entropy of ``model_fn(x)`` (logits) w.r.t. labels ``y``.

    Untargeted: ascend the loss of the true label; targeted: descend the loss of
    the target label (the returned gradient already carries the sign).
    """
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model_fn(x)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    g = tape.gradient(loss, x)
    if g is None:
        raise ValueError("model_fn(x) does not depend differentiably on x (gradient is None)")
    return -g if targeted else g


def optimize_linear(grad, eps, norm: str = "inf"):
    """The perturbation of norm ``eps`` maximising ⟨grad, δ⟩ (per example)."""
    axes = list(range(1, len(grad.shape)))
    if norm == "inf":
        return eps * tf.sign(grad)
    if norm == "2":
        sq = tf.reduce_sum(tf.square(grad), axis=axes, keepdims=True)
        return eps * grad / tf.sqrt(tf.maximum(sq, 1e-12))
    raise ValueError(f"norm must be 'inf' or '2', got {norm!r}")


def clip_eta(eta, eps, norm: str = "inf"):
    """Project a perturbation onto the ``eps``-ball of the given norm (per example)."""
    axes = list(range(1, len(eta.shape)))
    if norm == "inf":
        return tf.clip_by_value(eta, -eps, eps)
    if norm == "2":
        n = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(eta), axis=axes, keepdims=True), 1e-12))
        return eta * tf.minimum(1.0, eps / n)
    raise ValueError(f"norm must be 'inf' or '2', got {norm!r}")
