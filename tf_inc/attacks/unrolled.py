"""A differentiable stand-in for INC: the projection unrolled for K Adam steps.

INC's projection ``z*(x) = argmin_z ||G(z) − x||²`` is an optimisation loop, so the
defence has no useful gradient; BPDA (:meth:`tf_inc.defences.InvertAndClassify.bpda_logits`)
replaces its Jacobian by the identity. Another known estimator differentiates
through the optimiser itself: run ``K`` Adam steps of the inversion from a fixed
start and backpropagate through every step (second derivatives of G included,
via nested gradient tapes). The paper notes that unrolling the thousands of
steps the projection really takes was intractable; a short unroll (K ≤ 50) is
the cheap version — exact for the K-step defence, an approximation of the full one.

:class:`UnrolledInversion` is the model function ``x ↦ C(G(z_K(x)))`` (logits):

* the start is INC's own (:meth:`tf_inc.manifold.inversion.Projector.initial_latents`):
  restart r drawn from the generator's prior with the stateless stream ``(seed, r)``
  (:func:`tf_inc.optim.stateless_normal_rows`, or keyed by the image's content with
  ``seeding="content"``: :func:`tf_inc.optim.stateless_normal_per_key`), restart 0
  at ``E(x)`` when an encoder is given (the gradient then flows through E too); the
  start is a constant otherwise (no gradient through the random draw);
* each step is the inversion's Adam step (:func:`tf_inc.optim.adam_update`,
  ``form="keras"``, Adam constants from :class:`~tf_inc.manifold.inversion.InversionConfig`);
* every iterate ``z_0 … z_K`` is evaluated and each restart keeps its best one
  (:func:`tf_inc.optim.keep_best`), then each image takes its best restart —
  exactly what :class:`~tf_inc.manifold.inversion.Projector` does with
  ``early_stop=False``, so the forward pass equals
  ``InvertAndClassify(InversionConfig(steps=K, restarts=R, early_stop=False), seed=seed)``
  up to float rounding, and the gradient flows through the chosen iterate.

It carries ``bounds`` (the generator's) and ``image_shape``, so every attack of
:mod:`tf_inc.attacks` runs on it, e.g. ``pgd(UnrolledInversion(G, C), x, y, 0.3)``;
transfer the result to the real defence and evaluate it there.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import tensorflow as tf

from tf_inc.attacks.utils import call_model
from tf_inc.bounds import bounds_of, check_count
from tf_inc.errors import InputError
from tf_inc.manifold.inversion import InversionConfig, Projector
from tf_inc.optim import adam_update, keep_best

#: largest number of unrolled steps (graph size and memory grow linearly with K)
MAX_UNROLL = 50
# √v has an infinite derivative at v = 0 (a latent coordinate whose gradient was exactly 0,
# e.g. behind dead ReLUs); flooring v there keeps the backward pass finite and changes the
# forward pass only where (1 − β2)·g² < 1e-30, far below Adam's ε.
_V_FLOOR = 1e-30


class UnrolledInversion:
    """``x ↦ C(G(z_K(x)))`` with ``z_K`` K unrolled inversion Adam steps, differentiable in x.

    Args:
      generator: z ↦ image, carrying ``bounds`` (a :class:`tf_inc.models.Generator`).
      classifier: image ↦ logits.
      steps: K, 1 ≤ K ≤ ``MAX_UNROLL`` (50).
      learning_rate: Adam lr of the inversion; default ``InversionConfig().learning_rate``
        (the paper's MNIST 0.1; pass 0.01 for CelebA).
      restarts: R starts per image (best of R by reconstruction error, as INC).
      seed: seed of the prior draws (INC's ``seed``).
      encoder: optional E; restart 0 starts at E(x).
      bounds: input pixel range; default: the generator's.
      seeding: ``"position"`` or ``"content"``; default: :class:`~tf_inc.manifold.inversion.InversionConfig`'s
        (use the defence's, so both draw the same starts).
    """

    def __init__(self, generator, classifier, steps: int = 30, learning_rate=None, restarts: int = 1,
                 seed: int = 0, encoder=None, bounds=None, seeding: Optional[str] = None):
        check_count(steps, "steps", 1)
        if steps > MAX_UNROLL:
            raise InputError(f"steps: at most {MAX_UNROLL} unrolled steps (the graph grows with each), "
                             f"got {steps}; use BPDA (inc.bpda_logits) for the full projection")
        check_count(restarts, "restarts", 1)
        check_count(seed, "seed", 0)
        if learning_rate is None:
            learning_rate = InversionConfig().learning_rate
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(learning_rate)) or learning_rate <= 0:
            raise InputError(f"learning_rate: expected a finite number > 0, got {learning_rate!r}")
        self.generator, self.classifier, self.encoder = generator, classifier, encoder
        self.steps, self.restarts, self.seed = int(steps), int(restarts), int(seed)
        self.learning_rate = float(learning_rate)
        self.config = InversionConfig(steps=self.steps, restarts=self.restarts, learning_rate=self.learning_rate,
                                      early_stop=False, warm_start=encoder is not None,
                                      seeding=InversionConfig().seeding if seeding is None else seeding
                                      ).validate()
        self.projector = Projector(generator, self.config, encoder=encoder, bounds=bounds)
        self.bounds = bounds_of(generator, bounds)
        self.image_shape = self.projector.image_shape
        self._forward = tf.function(self._forward_impl, reduce_retracing=True, autograph=False)

    def _forward_impl(self, x):
        """(logits, G(z_K)) for a batch; every step stays on the tape of the caller."""
        cfg, G = self.config, self.generator
        R = self.restarts
        n = tf.shape(x)[0]
        x_rows = tf.tile(x, [R] + [1] * (len(x.shape) - 1))
        x_flat = tf.reshape(x_rows, [R * n, -1])
        lr = tf.constant(self.learning_rate, tf.float32)

        def objective(z):
            diff = tf.reshape(call_model(G, z), [tf.shape(z)[0], -1]) - x_flat
            return tf.reduce_sum(tf.square(diff), axis=1)

        z = self.projector.initial_latents(x, self.seed)           # INC's start: (R·N, k)
        m, v = tf.zeros_like(z), tf.zeros_like(z)
        best_z, best_obj = z, tf.fill([R * n], tf.constant(np.inf, tf.float32))
        for i in range(self.steps):
            with tf.GradientTape() as tape:
                tape.watch(z)
                obj = objective(z)
            g = tape.gradient(obj, z)          # recorded by any outer tape: d z_K / d x is exact
            best_obj, (best_z,), _ = keep_best(obj, best_obj, [z], [best_z])
            step, m, v = adam_update(g, m, tf.maximum(v, _V_FLOOR), tf.constant(i + 1, tf.float32), lr,
                                     cfg.beta1, cfg.beta2, cfg.epsilon, form="keras")
            z = z - step
        best_obj, (best_z,), _ = keep_best(objective(z), best_obj, [z], [best_z])
        x_best = call_model(G, best_z)
        choice = tf.argmin(tf.reshape(best_obj, [R, n]), axis=0, output_type=tf.int32)
        x_hat = tf.gather(x_best, choice * n + tf.range(n))
        return call_model(self.classifier, x_hat), x_hat

    def reconstruct(self, x) -> tf.Tensor:
        """``G(z_K(x))``, differentiable w.r.t. x."""
        return self._forward(tf.convert_to_tensor(x, tf.float32))[1]

    def __call__(self, x, training: bool = False) -> tf.Tensor:
        """Classifier logits on ``G(z_K(x))``: the ``model_fn`` for the attacks (always inference mode)."""
        return self._forward(tf.convert_to_tensor(x, tf.float32))[0]
