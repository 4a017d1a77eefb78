"""Helpers shared by the attacks: gradients, steepest-ascent steps, norm-ball projection,
random starts and per-example ε handling.

Every attack takes ``model_fn: images -> logits`` and checks its input with
:func:`prepare` when it starts (bounds come from the model unless passed); it keeps its iterations inside a
``tf.function`` while-loop; ε may be a scalar or a per-example tensor, which is how
one call evaluates a whole list of budgets (the batch is tiled once per ε).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from tf_inc.bounds import check_attack_inputs
from tf_inc.errors import InputError

Bounds = Tuple[float, float]
NORMS = ("inf", "2")


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
        raise InputError("model_fn(x) does not depend differentiably on x (gradient is None); "
                         "for Invert-and-Classify use its BPDA logits (inc.bpda_logits)")
    return -g if targeted else g


def _axes(t):
    return list(range(1, len(t.shape)))


def optimize_linear(grad, eps, norm: str = "inf"):
    """The perturbation of norm ``eps`` maximising ⟨grad, δ⟩ (per example)."""
    if norm == "inf":
        return eps * tf.sign(grad)
    if norm == "2":
        sq = tf.reduce_sum(tf.square(grad), axis=_axes(grad), keepdims=True)
        return eps * grad / tf.sqrt(tf.maximum(sq, 1e-12))
    raise ValueError(f"norm must be 'inf' or '2', got {norm!r}")


def clip_eta(eta, eps, norm: str = "inf"):
    """Project a perturbation onto the ``eps``-ball of the given norm (per example)."""
    if norm == "inf":
        return tf.clip_by_value(eta, -eps, eps)
    if norm == "2":
        n = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(eta), axis=_axes(eta), keepdims=True), 1e-12))
        return eta * tf.minimum(1.0, eps / n)
    raise ValueError(f"norm must be 'inf' or '2', got {norm!r}")


def random_init(x, eps, norm: str, seed: Tuple[int, int]):
    """A uniformly random point of the ``eps``-ball around 0 (shape of x)."""
    shape = tf.shape(x)
    if norm == "inf":
        return tf.random.stateless_uniform(shape, seed, -1.0, 1.0) * eps
    if norm == "2":
        d = tf.cast(tf.reduce_prod(shape[1:]), x.dtype)
        g = tf.random.stateless_normal(shape, seed)
        g = g / tf.sqrt(tf.reduce_sum(tf.square(g), axis=_axes(x), keepdims=True))
        u = tf.random.stateless_uniform(tf.concat([shape[:1], tf.ones_like(shape[1:])], 0), (seed[0], seed[1] + 1))
        return g * eps * tf.pow(u, 1.0 / d)
    raise ValueError(f"norm must be 'inf' or '2', got {norm!r}")


def per_example(value, n: int, x):
    """Broadcastable (N, 1, …, 1) tensor from a scalar or a length-N vector."""
    v = tf.cast(tf.convert_to_tensor(value), x.dtype)
    v = tf.broadcast_to(tf.reshape(v, [-1]), [n]) if v.shape.rank else tf.fill([n], v)
    return tf.reshape(v, [n] + [1] * (len(x.shape) - 1))


def tile_for_budgets(x, y, eps_list: Sequence[float]):
    """Stack the batch once per ε: returns (x_rep, y_rep, eps_rows)."""
    e = len(eps_list)
    x_rep = tf.tile(x, [e] + [1] * (len(x.shape) - 1))
    y_rep = tf.tile(y, [e])
    eps_rows = tf.repeat(tf.constant(list(eps_list), x.dtype), tf.shape(x)[0])
    return x_rep, y_rep, eps_rows


def split_budgets(x_rep, n_budgets: int) -> List[tf.Tensor]:
    return tf.split(x_rep, n_budgets, axis=0)


def as_budget_list(eps: Union[float, Sequence[float]]):
    """(list of ε, whether the caller passed a single ε)."""
    if np.ndim(eps) == 0:
        return [float(eps)], True
    return [float(e) for e in eps], False


def prepare(model_fn, x, y, bounds=None, eps=None, norm: str = None):
    """Start-of-attack checks (:func:`tf_inc.bounds.check_attack_inputs`): returns tensors
    ``(x, y)`` and the resolved ``bounds``. Bad input raises :class:`~tf_inc.errors.InputError`
    here, before anything is traced, so one bad call never changes a compiled graph."""
    if norm is not None and norm not in NORMS:
        raise InputError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    xs, ys, b = check_attack_inputs(model_fn, x, y, bounds, eps)
    return tf.convert_to_tensor(xs, tf.float32), tf.convert_to_tensor(ys, tf.int64), b


def misclassified(logits, y, targeted: bool):
    pred = tf.argmax(logits, axis=1)
    return tf.equal(pred, y) if targeted else tf.not_equal(pred, y)


def call_model(model, x):
    """Keras models in inference mode (``training=False``); any other callable as is."""
    import keras

    return model(x, training=False) if isinstance(model, keras.layers.Layer) else model(x)


def perturbation_size(x_adv, x, norm: str) -> np.ndarray:
    """Per-example ‖x_adv − x‖ in the budget's norm (``"inf"`` or ``"2"``, whole image), in float64."""
    d = (np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)).reshape(len(x), -1)
    return np.abs(d).max(axis=1) if norm == "inf" else np.linalg.norm(d, axis=1)
