"""Detectors that compare an input with its reconstruction on the generator's range.

* :class:`EncoderReconstructionDetector` — ``‖x − G(E(x))‖₂`` (paper Appendix A,
  Fig. 11 and Fig. 13, "encoder path"): adversarial perturbations push ``E(x)``
  away from the codes of natural images, so the autoencoded image is far from x.
* :class:`InversionReconstructionDetector` — ``‖x − G(z*)‖₂`` with
  ``z* = argmin_z ‖x − G(z)‖₂`` found by INC's gradient-descent projection (Fig. 13,
  "INC path"; the same quantity as INC's reject rule ``‖G(z*) − x‖ ≥ η``).
* :class:`VAEKLDetector` — the notes' VAE detector: the divergence
  ``KL(C(x) ‖ C(G(E(x))))`` between the classifier's outputs on the input and on
  its VAE reconstruction (the notes flag inputs above 0.3).

Each detector guards a classifier: the autoencode-and-classify model, INC, and
the plain classifier respectively. :meth:`attack_terms` returns, from one
forward pass, that classifier's logits and a differentiable score for an
adaptive attacker (:mod:`tf_inc.attacks.detector_aware`): exact gradients on the
encoder path; on the INC path BPDA for the logits and, for the score, the
gradient of ``min_z ‖x − G(z)‖₂`` at the minimiser (Danskin's theorem:
``(x − G(z*)) / ‖x − G(z*)‖``), both with the projection held fixed.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from tf_inc.bounds import check_count
from tf_inc.defences.autoencode import AutoencodeAndClassify, flat_l2
from tf_inc.detectors.base import Detector
from tf_inc.errors import InputError

KL_DIRECTIONS = ("forward", "reverse", "symmetric")


def _batched(fn, x: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([np.asarray(fn(tf.convert_to_tensor(x[s:s + batch_size])))
                           for s in range(0, len(x), batch_size)])


class EncoderReconstructionDetector(Detector):
    """Score ``‖x − G(E(x))‖₂`` of an :class:`AutoencodeAndClassify` model (which it guards)."""

    def __init__(self, model: AutoencodeAndClassify, threshold: Optional[float] = None, batch_size: int = 500):
        super().__init__(threshold)
        if not isinstance(model, AutoencodeAndClassify):
            raise InputError("EncoderReconstructionDetector needs an AutoencodeAndClassify model")
        self.model = model
        self.bounds, self.image_shape = model.bounds, model.image_shape
        self.batch_size = check_count(batch_size, "batch_size")
        self._score = tf.function(lambda x: flat_l2(model.reconstruct(x), x), reduce_retracing=True)

    def score(self, x) -> np.ndarray:
        return _batched(self._score, self.check(x), self.batch_size)

    def attack_terms(self, x):
        """``(C(G(E(x))), ‖x − G(E(x))‖₂)`` from one reconstruction, differentiable through E."""
        x_hat = self.model.reconstruct(x)
        return self.model.classifier(x_hat, training=False), flat_l2(x_hat, x)


class InversionReconstructionDetector(Detector):
    """Score ``‖x − G(z*)‖₂`` of INC's projection (an :class:`~tf_inc.defences.inc.InvertAndClassify`).

    ``calibrate`` sets the threshold, which is INC's η: :meth:`apply_threshold`
    copies it into the guarded INC so that INC rejects what this detector flags.
    """

    def __init__(self, inc, threshold: Optional[float] = None, progress: bool = False):
        super().__init__(threshold)
        self.inc = inc
        self.bounds, self.image_shape = inc.bounds, inc.image_shape
        self.progress = progress

    def score(self, x) -> np.ndarray:
        return self.inc.invert(self.check(x), progress=self.progress).l2

    def apply_threshold(self):
        """Set the guarded INC's η to this detector's threshold (reject ⇔ detect, up to ties)."""
        if self.threshold is None:
            raise InputError("the detector has no threshold: call calibrate(x_clean) first")
        self.inc.eta = float(np.nextafter(np.float32(self.threshold), np.float32(np.inf)))
        return self.inc

    def attack_view(self, seed: int, config=None) -> "InversionReconstructionDetector":
        """The same detector on a cheaper projection / another restart seed (the attacker's copy)."""
        return InversionReconstructionDetector(self.inc.attack_view(seed, config), self.threshold)

    def attack_terms(self, x):
        """``(C(G(z*)) with BPDA, ‖x − G(z*)‖₂ with the Danskin gradient)`` from one projection."""
        x = tf.convert_to_tensor(x)
        x_hat = tf.stop_gradient(self.inc.projector.project_tensors(x, seed=self.inc.seed)[1])
        logits = self.inc.classifier(x + tf.stop_gradient(x_hat - x), training=False)
        return logits, flat_l2(x_hat, x)


def kl_rows(p, q, direction: str = "forward"):
    """Per-row ``KL(p‖q)`` (forward), ``KL(q‖p)`` (reverse) or their sum (symmetric), tensors."""
    lp = tf.math.log(tf.clip_by_value(p, 1e-12, 1.0))
    lq = tf.math.log(tf.clip_by_value(q, 1e-12, 1.0))
    if direction == "forward":
        return tf.reduce_sum(p * (lp - lq), axis=1)
    if direction == "reverse":
        return tf.reduce_sum(q * (lq - lp), axis=1)
    return tf.reduce_sum((p - q) * (lp - lq), axis=1)


class VAEKLDetector(Detector):
    """The notes' VAE detector: ``KL(C(x) ‖ C(G(E(x))))`` between softmax outputs (guards ``C``).

    Args:
      classifier: Keras model image -> logits (the classifier being protected).
      model: an :class:`AutoencodeAndClassify` giving ``G(E(·))`` (its classifier is ignored).
      direction: ``forward`` KL(C(x)‖C(x̂)) (default), ``reverse`` or ``symmetric``.
    """

    def __init__(self, classifier, model: AutoencodeAndClassify, threshold: Optional[float] = None,
                 direction: str = "forward", batch_size: int = 500):
        super().__init__(threshold)
        if direction not in KL_DIRECTIONS:
            raise InputError(f"direction must be one of {', '.join(KL_DIRECTIONS)}, got {direction!r}")
        if not isinstance(model, AutoencodeAndClassify):
            raise InputError("VAEKLDetector needs an AutoencodeAndClassify model for G(E(x))")
        self.classifier, self.model, self.direction = classifier, model, direction
        self.bounds, self.image_shape = model.bounds, model.image_shape
        self.batch_size = check_count(batch_size, "batch_size")
        self._score = tf.function(lambda x: self.attack_terms(x)[1], reduce_retracing=True)

    def score(self, x) -> np.ndarray:
        return _batched(self._score, self.check(x), self.batch_size)

    def attack_terms(self, x):
        """``(C(x), KL(C(x) ‖ C(G(E(x)))))``, differentiable through the classifier and the VAE."""
        logits = self.classifier(x, training=False)
        p = tf.nn.softmax(logits)
        q = tf.nn.softmax(self.classifier(self.model.reconstruct(x), training=False))
        return logits, kl_rows(p, q, self.direction)
