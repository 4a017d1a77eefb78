"""Jacobian-based Saliency Map Attack (Papernot et al., *The Limitations of Deep Learning in
Adversarial Settings*, 2016, Algorithms 2–3), targeted, on pairs of pixels.

At every iteration the attack takes the forward derivative of the network and, for every
pair of still-unused input features ``(p, q)``, the two sums

    α_pq = Σ_{i∈{p,q}} ∂Z_t/∂x_i          (the target's output)
    β_pq = Σ_{i∈{p,q}} Σ_{j≠t} ∂Z_j/∂x_i   (every other output)

and picks the pair maximising the saliency ``−α·β`` among those with ``α > 0, β < 0``
(``θ > 0``: raising both features helps the target and hurts the rest; ``θ < 0`` flips both
conditions). Both features are moved by ``θ·(hi − lo)`` (θ = +1: set to the maximum) and
leave the search domain. The attack stops for an image when the model predicts the target,
when no pair is left that satisfies the conditions, or after ``⌊γ·d/2⌋`` iterations
(at most a fraction γ of the ``d`` features changed; Papernot et al. use γ = 14.5 % on
MNIST, where they report 97.1 % success changing 4.02 % of the pixels on average).

``Z`` is the logits by default (what Carlini & Wagner call JSMA-Z, and what CleverHans
implements); ``on="probs"`` uses the softmax (JSMA-F). The whole loop, for a chunk of images,
is one ``tf.function`` while-loop; the pair scores of a chunk take ``chunk·d²`` floats.
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_inc.attacks.utils import prepare
from tf_inc.bounds import check_count
from tf_inc.errors import InputError

OUTPUTS = ("logits", "probs")


@functools.lru_cache(maxsize=16)
def _compiled(model_fn, n_features: int, max_iters: int, theta: float, bounds: Tuple[float, float], on: str):
    lo, hi = bounds
    d = n_features
    not_diag = tf.constant(~np.eye(d, dtype=bool))
    increase = theta > 0

    @tf.function(reduce_retracing=True, autograph=False)
    def run(x, target):
        shape = tf.shape(x)
        n = shape[0]
        t_hot = tf.one_hot(target, tf.shape(model_fn(x[:1]))[-1])

        def outputs(xf):
            z = model_fn(tf.reshape(xf, shape))
            return tf.nn.softmax(z) if on == "probs" else z

        def body(i, xf, domain, active):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(xf)
                z = outputs(xf)
                z_t = tf.reduce_sum(z * t_hot, axis=1)
                z_all = tf.reduce_sum(z, axis=1)
            g_t = tape.gradient(z_t, xf)                     # (n, d) ∂Z_t/∂x
            g_o = tape.gradient(z_all, xf) - g_t             # (n, d) Σ_{j≠t} ∂Z_j/∂x
            del tape
            reached = tf.equal(tf.argmax(z, axis=1), target)
            active = tf.logical_and(active, tf.logical_not(reached))
            alpha = g_t[:, :, None] + g_t[:, None, :]        # (n, d, d)
            beta = g_o[:, :, None] + g_o[:, None, :]
            ok = tf.logical_and(alpha > 0, beta < 0) if increase else tf.logical_and(alpha < 0, beta > 0)
            ok = tf.logical_and(ok, tf.logical_and(domain[:, :, None], domain[:, None, :]))
            ok = tf.logical_and(ok, not_diag[None])
            score = tf.reshape(tf.where(ok, -alpha * beta, tf.zeros_like(alpha)), [n, d * d])
            best = tf.argmax(score, axis=1, output_type=tf.int32)
            found = tf.reduce_any(tf.reshape(ok, [n, d * d]), axis=1)
            move = tf.logical_and(active, found)
            pair = tf.one_hot(best // d, d) + tf.one_hot(best % d, d)                   # (n, d)
            pair = pair * tf.cast(move, pair.dtype)[:, None]
            xf = tf.clip_by_value(xf + theta * (hi - lo) * pair, lo, hi)
            domain = tf.logical_and(domain, pair <= 0)
            active = move                                    # no admissible pair: this image stops
            return i + 1, xf, domain, active

        xf = tf.reshape(x, [n, d])
        domain = xf < hi if increase else xf > lo
        _, xf, _, _ = tf.while_loop(
            lambda i, xf, domain, active: tf.logical_and(i < max_iters, tf.reduce_any(active)),
            body, (tf.constant(0), xf, domain, tf.ones([n], tf.bool)))
        return tf.reshape(xf, shape)

    return run


def jsma(model_fn, x, target, theta: float = 1.0, gamma: float = 0.145,
         bounds: Optional[Tuple[float, float]] = None, on: str = "logits", chunk: int = 32):
    """Targeted JSMA on pairs of pixels (Papernot et al. 2016): returns ``x_adv``.

    Args:
      model_fn: ``images -> logits`` (bounds from the model unless ``bounds`` is given).
      x: float images in the model's bounds; ``target``: one target class per image.
      theta: change of a chosen feature, as a fraction of the pixel range (+1: set it to the
        maximum, −1: to the minimum).
      gamma: maximum fraction of the input features the attack may change (14.5 % in the paper).
      on: differentiate the ``"logits"`` (JSMA-Z) or the softmax ``"probs"`` (JSMA-F).
      chunk: images per compiled call (memory: ``chunk · d²`` floats of pair scores).
    """
    x, target, bounds = prepare(model_fn, x, target, bounds)
    if on not in OUTPUTS:
        raise InputError(f"on must be one of {', '.join(OUTPUTS)}, got {on!r}")
    if not (isinstance(theta, (int, float)) and math.isfinite(theta) and 0 < abs(theta) <= 1):
        raise InputError(f"theta: expected a number in [-1, 0) or (0, 1], got {theta!r}")
    if not (isinstance(gamma, (int, float)) and 0 < gamma <= 1):
        raise InputError(f"gamma: expected a fraction in (0, 1], got {gamma!r}")
    check_count(chunk, "chunk", 1)
    d = int(np.prod(x.shape[1:]))
    max_iters = max(1, int(math.floor(d * gamma / 2)))
    run = _compiled(model_fn, d, max_iters, float(theta), (float(bounds[0]), float(bounds[1])), on)
    out = [run(x[s:s + chunk], target[s:s + chunk]) for s in range(0, int(x.shape[0]), chunk)]
    return tf.concat(out, axis=0)
