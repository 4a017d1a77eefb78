"""Autoencode-and-Classify (paper Appendix A, Figure 11): classify ``G(E(x))``.

Models with an autoencoder structure (a VAE, BiGAN, ALI) give an encoder ``E``
that is an approximate inverse of the generator ``G``. The defended
classifier is ``C₁ = C∘G∘E``: the input is autoencoded before the classifier
sees it, and a large reconstruction error ``‖x − G(E(x))‖₂`` flags the input
(Fig. 11). Unlike INC, ``C₁`` is an ordinary feed-forward network, so the
attacker differentiates straight through the encoder — paper eq. 12,

    δ = ε · sign(∇ₓ L(y, C₁(x)))

— which is what :meth:`AutoencodeAndClassify.__call__` / :meth:`logits` expose.
:meth:`bpda_logits` is the other adaptive gradient: the reconstruction in the
forward pass with an identity backward pass (BPDA, Athalye et al. 2018), the
gradient INC is attacked with.

The class extends :class:`tf_inc.attacks.combined.CombinedModel` (the C∘G∘E of
Figure 12) with the defence's interface: input checks, batched prediction with a
reject flag at ``‖x − G(E(x))‖₂ ≥ η``, and both adaptive gradients.
"""
from __future__ import annotations

import math
from typing import Dict

import numpy as np
import tensorflow as tf

from tf_inc.attacks.combined import CombinedModel
from tf_inc.bounds import check_count, check_images
from tf_inc.errors import InputError


def encode_mean(encoder, x):
    """``E(x)``: the encoder's output, or its first output (the posterior mean μ) when it returns several."""
    out = encoder(x)
    return out[0] if isinstance(out, (list, tuple)) else out


def flat_l2(a, b):
    """Per-row ‖a − b‖₂ over all pixels (tensors)."""
    d = tf.reshape(a - b, [tf.shape(a)[0], -1])
    return tf.sqrt(tf.reduce_sum(tf.square(d), axis=1) + 1e-12)


class AutoencodeAndClassify(CombinedModel):
    """The Appendix-A defence ``C(G(E(x)))`` with a reject flag for ``‖x − G(E(x))‖₂ ≥ η``.

    Args:
      classifier: Keras model image -> logits.
      generator: the decoder G (a :class:`tf_inc.models.Generator`, it carries the bounds).
      encoder: callable image -> latent (``vae.encode``), or a Keras encoder returning
        ``[μ, log σ²]`` (μ is used).
      eta: reject threshold on the ℓ2 reconstruction error (``inf``: never reject).
      bounds: input pixel range; default the generator's.
      batch_size: images per call in :meth:`predict`.

    ``model(x)`` returns logits, differentiable through E (eq. 12), so every attack
    of :mod:`tf_inc.attacks` runs on it directly.
    """

    def __init__(self, classifier, generator, encoder, eta: float = math.inf, bounds=None,
                 batch_size: int = 500):
        super().__init__(classifier, generator, encoder, bounds)
        self.eta = float(eta)
        if math.isnan(self.eta) or self.eta <= 0:
            raise InputError(f"eta must be > 0 (inf: never reject), got {eta}")
        self.batch_size = check_count(batch_size, "batch_size")
        self._forward = tf.function(self._forward_impl, reduce_retracing=True)

    # ------------------------------------------------------------------ graph
    def encode(self, x):
        """``E(x)`` (posterior mean for a VAE)."""
        return encode_mean(self.encoder, x)

    def reconstruct(self, x):
        """``G(E(x))``, differentiable."""
        return self.generator(self.encode(x), training=False)

    def logits(self, x):
        """``C(G(E(x)))`` with the exact gradient through the encoder (paper eq. 12)."""
        return self.classifier(self.reconstruct(x), training=False)

    def __call__(self, x):
        return self.logits(x)

    def reconstruct_bpda(self, x):
        """``G(E(x))`` forward, identity backward (BPDA)."""
        x = tf.convert_to_tensor(x)
        return x + tf.stop_gradient(self.reconstruct(x) - x)

    def bpda_logits(self, x):
        """``model_fn`` for a BPDA attacker: ``C(G(E(x)))`` with ∂G(E(x))/∂x replaced by the identity."""
        return self.classifier(self.reconstruct_bpda(x), training=False)

    def _forward_impl(self, x):
        z = self.encode(x)
        x_hat = self.generator(z, training=False)
        probs = tf.nn.softmax(self.classifier(x_hat, training=False))
        return z, x_hat, probs, flat_l2(x_hat, x)

    # ------------------------------------------------------------------ API
    def check(self, x) -> np.ndarray:
        return check_images(x, shape=self.image_shape, bounds=self.bounds, name="x")

    def predict(self, x) -> Dict[str, np.ndarray]:
        """Batched: ``probabilities``, ``label``, ``rejected`` (‖x − G(E(x))‖ ≥ η), ``recon_l2``,
        ``z`` = E(x) and ``x_hat`` = G(E(x)) (numpy)."""
        x = self.check(x)
        parts = {k: [] for k in ("z", "x_hat", "probabilities", "recon_l2")}
        for s in range(0, len(x), self.batch_size):
            for k, v in zip(parts, self._forward(tf.convert_to_tensor(x[s:s + self.batch_size]))):
                parts[k].append(v.numpy())
        out = {k: np.concatenate(v) for k, v in parts.items()}
        out["label"] = out["probabilities"].argmax(1)
        out["rejected"] = out["recon_l2"] >= self.eta
        return out

    def reconstruction_error(self, x) -> np.ndarray:
        """``‖x − G(E(x))‖₂`` per image (numpy)."""
        return self.predict(x)["recon_l2"]


def autoencode_and_classify(classifier, generator, encoder, eta: float = math.inf,
                            bounds=None) -> AutoencodeAndClassify:
    return AutoencodeAndClassify(classifier, generator, encoder, eta=eta, bounds=bounds)
