"""Targeted iterative FGSM (the notes' "make every 2 a 6") and the sparse-attack metrics.

The notes' attack repeats a targeted FGSM step ``nb_iter`` times,

    x ← clip_[lo, hi]( x − α · sign(∇_x CE(target, C(x))) ),

i.e. it *descends* the cross-entropy of the target class with a fixed step α (the notes use
α = 0.001 and 200 steps, and no ε-ball beyond the one the steps imply: ‖x_adv − x‖∞ ≤ 200·α = 0.2).
:func:`targeted_ifgsm` runs that loop in one ``tf.function`` over the whole batch; with
``eps`` it also projects onto an ℓ∞ ball (BIM / PGD without random start) and with
``early_stop`` a row stops moving as soon as the model predicts its target, which gives
the smallest perturbation of the run rather than the notes' fixed 200 steps.

:func:`changed_pixels` / :func:`target_success` are the two numbers the notes report for
targeted attacks: how many input values moved, and whether the model now says the target.
"""
from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_inc.attacks.utils import call_model, clip_eta, loss_gradient, prepare
from tf_inc.bounds import check_budget, check_count
from tf_inc.errors import InputError


def check_targets(target, y=None, num_classes: Optional[int] = None) -> np.ndarray:
    """Targets as int64; with ``y`` every target must differ from the true label."""
    t = np.asarray(target)
    if not np.issubdtype(t.dtype, np.integer):
        raise InputError(f"target: expected integer class labels, got dtype {t.dtype}")
    if t.size and (t.min() < 0 or (num_classes is not None and t.max() >= num_classes)):
        raise InputError(f"target: labels must lie in [0, {num_classes - 1 if num_classes else '…'}]")
    if y is not None:
        y = np.asarray(y)
        if y.shape != t.shape:
            raise InputError(f"target: expected shape {y.shape} (one per image), got {t.shape}")
        if np.any(t == y):
            raise InputError("target: a targeted attack needs target != true label for every image")
    return t.astype(np.int64)


def random_targets(y, seed: int = 0, num_classes: int = 10) -> np.ndarray:
    """One uniformly random wrong class per label (reproducible from ``seed``)."""
    y = np.asarray(y, np.int64)
    shift = np.random.default_rng(seed).integers(1, num_classes, size=y.shape)
    return (y + shift) % num_classes


@functools.lru_cache(maxsize=16)
def _compiled(model_fn, nb_iter: int, bounds: Tuple[float, float], early_stop: bool):
    lo, hi = bounds

    @tf.function(reduce_retracing=True, autograph=False)
    def run(x, target, step, eps):
        def rows(mask):
            return tf.reshape(mask, [-1] + [1] * (len(x.shape) - 1))

        def not_there(xa):
            return tf.not_equal(tf.argmax(call_model(model_fn, xa), axis=1), target)

        def body(i, xa, active, steps):
            g = loss_gradient(model_fn, xa, target, targeted=True)      # = −∇_x CE(target)
            new = tf.clip_by_value(x + clip_eta(xa + step * tf.sign(g) - x, eps, "inf"), lo, hi)
            xa = tf.where(rows(active), new, xa)
            steps = steps + tf.cast(active, tf.int32)
            if early_stop:
                active = tf.logical_and(active, not_there(xa))
            return i + 1, xa, active, steps

        n = tf.shape(x)[0]
        active = not_there(x) if early_stop else tf.ones([n], tf.bool)
        _, xa, _, steps = tf.while_loop(
            lambda i, xa, active, steps: tf.logical_and(i < nb_iter, tf.reduce_any(active)),
            body, (tf.constant(0), x, active, tf.zeros([n], tf.int32)))
        return xa, steps

    return run


def targeted_ifgsm(model_fn, x, target, eps_iter: float = 0.001, nb_iter: int = 200,
                   eps: Optional[float] = None, bounds: Optional[Tuple[float, float]] = None,
                   early_stop: bool = False, return_steps: bool = False):
    """Targeted iterative FGSM (notes' defaults: α = 0.001, 200 steps, no extra ε-ball).

    Args:
      model_fn: ``images -> logits`` (bounds from the model unless ``bounds`` is given).
      x: float images in the model's bounds; ``target``: the class each image should become
        (:func:`check_targets` checks it against the true labels when the caller has them).
      eps_iter: step α; ``nb_iter``: number of steps; ``eps``: optional ℓ∞ radius (default
        ``nb_iter · eps_iter``, which the steps can never leave anyway).
      early_stop: freeze each image at the first step where the model predicts its target.
      return_steps: also return the number of steps each image took.
    """
    x, target, bounds = prepare(model_fn, x, target, bounds)
    check_budget(eps_iter, "eps_iter", allow_list=False)
    check_count(nb_iter, "nb_iter", 1)
    radius = float(nb_iter * eps_iter) if eps is None else float(eps)
    check_budget(radius, "eps", allow_list=False)
    run = _compiled(model_fn, int(nb_iter), (float(bounds[0]), float(bounds[1])), bool(early_stop))
    xa, steps = run(x, target, tf.constant(float(eps_iter)), tf.constant(radius))
    return (xa, steps.numpy()) if return_steps else xa


def changed_pixels(x, x_adv, tol: float = 1e-6) -> np.ndarray:
    """Per image: how many input values moved by more than ``tol`` (pixels for 1-channel images)."""
    d = np.abs(np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)).reshape(len(x), -1)
    return (d > tol).sum(axis=1)


def target_success(model_fn, x_adv, target, batch: int = 500) -> np.ndarray:
    """Per image: does the model predict ``target`` on ``x_adv``?"""
    target = np.asarray(target)
    pred = np.concatenate([np.asarray(call_model(model_fn, tf.constant(np.asarray(x_adv)[s:s + batch]))).argmax(1)
                           for s in range(0, len(target), batch)])
    return pred == target
