"""MC-dropout uncertainty as an out-of-distribution detector (Smith & Gal 2018, as in the notes).

A dropout network is an approximate Bayesian neural network: keeping dropout
on at test time and querying it T times draws T samples ``p_t = softmax(f_t(x))``
from the predictive distribution. Two measures of *epistemic* uncertainty are
used as proxies for the distance to the data manifold:

* mutual information ``MI = H[p̄] − (1/T) Σ_t H[p_t]`` with ``p̄ = (1/T) Σ_t p_t``
  (entropy of the mean minus mean entropy; ≥ 0);
* softmax variance ``SMV = (1/C) Σ_c (1/T) Σ_t (p_tc − p̄_c)²``.

Only the dropout layers are stochastic: the classifier is cloned with its
``Dropout`` layers replaced by always-on dropout and every other layer shared
(so ``training=False`` everywhere else, weights untouched). The network is then
split at the first dropout layer: the deterministic trunk runs once per image
and only the head (for the MNIST classifier: dropout → dense 10) runs T times,
all T passes of a batch in one graph call.
"""
from __future__ import annotations

import copy
from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from tf_inc.bounds import attach_bounds, bounds_of, check_count, input_shape_of
from tf_inc.detectors.base import Detector
from tf_inc.errors import InputError

MEASURES = ("mutual_information", "softmax_variance", "predictive_entropy")


class AlwaysOnDropout(keras.layers.Layer):
    """Dropout that is active whatever ``training`` says (inverted scaling, like Keras' Dropout)."""

    def __init__(self, rate: float, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seed = float(rate), int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, x, training=None):
        return keras.random.dropout(x, self.rate, seed=self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def mc_dropout_split(classifier, seed: int = 0):
    """``(trunk, head)``: ``head(trunk(x))`` is ``classifier`` with its dropout layers always on.

    ``trunk`` is the deterministic part up to the first dropout layer (run once),
    ``head`` the rest (run T times). Raises :class:`InputError` if the classifier
    is not a functional Keras model with at least one ``Dropout`` layer.
    """
    if not isinstance(classifier, keras.Model) or not hasattr(classifier, "inputs") or classifier.inputs is None:
        raise InputError("MC dropout needs a functional Keras classifier")
    if not any(isinstance(layer, keras.layers.Dropout) for layer in classifier.layers):
        raise InputError(f"{classifier.name} has no Dropout layer: MC dropout needs a dropout classifier")
    counter = iter(range(10**6))

    def clone(layer):
        if isinstance(layer, keras.layers.Dropout):
            return AlwaysOnDropout(layer.rate, seed=seed * 1000 + next(counter), name=layer.name + "_mc")
        return layer                                   # shared: same weights, inference behaviour

    mc = keras.models.clone_model(classifier, clone_function=clone)
    first = next(layer for layer in mc.layers if isinstance(layer, AlwaysOnDropout))
    inputs = mc.inputs[0] if len(mc.inputs) == 1 else mc.inputs
    trunk = keras.Model(inputs, first.input, name=classifier.name + "_trunk")
    head = keras.Model(first.input, mc.outputs, name=classifier.name + "_mc_head")
    return trunk, head


def uncertainty_measures(probs) -> Dict[str, tf.Tensor]:
    """From ``probs`` of shape (T, N, C): mean probabilities, predictive entropy, MI and SMV per row."""
    eps = 1e-12
    p_mean = tf.reduce_mean(probs, axis=0)
    h_mean = -tf.reduce_sum(p_mean * tf.math.log(p_mean + eps), axis=-1)
    h_each = -tf.reduce_sum(probs * tf.math.log(probs + eps), axis=-1)
    mi = tf.maximum(h_mean - tf.reduce_mean(h_each, axis=0), 0.0)
    smv = tf.reduce_mean(tf.reduce_mean(tf.square(probs - p_mean[None]), axis=0), axis=-1)
    return {"probabilities": p_mean, "predictive_entropy": h_mean, "mutual_information": mi,
            "softmax_variance": smv}


class MCDropoutDetector(Detector):
    """Score = an MC-dropout uncertainty measure over ``samples`` stochastic passes (higher = further OoD).

    Args:
      classifier: functional Keras model (logits) with dropout (the MNIST classifier: dropout 0.5).
      samples: T stochastic passes per image (notes / Smith & Gal: 100).
      measure: ``mutual_information`` (default), ``softmax_variance`` or ``predictive_entropy``.
      seed: seed of the dropout masks.
      batch_size: images per graph call (T·batch_size head rows at once).
      attack_samples: dropout masks per step in :meth:`attack_terms` (the adaptive attacker's
        estimate of the measure; see :meth:`attack_view`).
    """

    def __init__(self, classifier, samples: int = 100, measure: str = "mutual_information",
                 threshold: Optional[float] = None, seed: int = 0, batch_size: int = 100, bounds=None,
                 attack_samples: int = 20):
        super().__init__(threshold)
        self.attack_samples = check_count(attack_samples, "attack_samples")
        if measure not in MEASURES:
            raise InputError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
        self.samples = check_count(samples, "samples")
        self.batch_size = check_count(batch_size, "batch_size")
        self.classifier, self.measure = classifier, measure
        self.bounds, self.image_shape = bounds_of(classifier, bounds), input_shape_of(classifier)
        attach_bounds(self, self.bounds)
        self.trunk, self.head = mc_dropout_split(classifier, seed)
        self._stats = tf.function(self._stats_impl, reduce_retracing=True)

    def mc_probabilities(self, x, samples: Optional[int] = None):
        """(T, N, C) softmax outputs of T dropout passes (tensors, differentiable in x)."""
        t = self.samples if samples is None else samples
        feats = self.trunk(x, training=False)
        n = tf.shape(feats)[0]
        rep = tf.tile(feats, [t] + [1] * (len(feats.shape) - 1))      # row k·N + i: pass k of image i
        logits = self.head(rep, training=False)
        return tf.reshape(tf.nn.softmax(logits), [t, n, -1])

    def _stats_impl(self, x):
        return uncertainty_measures(self.mc_probabilities(x))

    def statistics(self, x) -> Dict[str, np.ndarray]:
        """Per image: MC-mean ``probabilities``, ``label``, ``predictive_entropy``,
        ``mutual_information`` and ``softmax_variance`` (numpy)."""
        x = self.check(x)
        parts: Dict[str, list] = {}
        for s in range(0, len(x), self.batch_size):
            for k, v in self._stats(tf.convert_to_tensor(x[s:s + self.batch_size])).items():
                parts.setdefault(k, []).append(v.numpy())
        out = {k: np.concatenate(v) for k, v in parts.items()}
        out["label"] = out["probabilities"].argmax(1)
        return out

    def score(self, x) -> np.ndarray:
        return self.statistics(x)[self.measure]

    def attack_terms(self, x, samples: Optional[int] = None):
        """``(C(x) with dropout off, the measure over ``attack_samples`` dropout passes)``, differentiable in x."""
        logits = self.classifier(x, training=False)
        t = self.attack_samples if samples is None else samples
        return logits, uncertainty_measures(self.mc_probabilities(x, t))[self.measure]

    def attack_view(self, samples: int) -> "MCDropoutDetector":
        """The same detector (weights, threshold) whose :meth:`attack_terms` use ``samples`` masks."""
        view = copy.copy(self)
        view.attack_samples = check_count(samples, "samples")
        return view
