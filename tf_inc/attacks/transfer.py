"""Transfer attacks: adversarial examples made on one model (or an ensemble) and shown to another.

* :class:`Ensemble` — Liu et al. (*Delving into Transferable Adversarial Examples and Black-box
  Attacks*, 2017) attack a *fused* model: the weighted average of the members' softmax outputs.
  Its "logits" are ``log Σ_i w_i softmax(Z_i(x))``, so the cross-entropy every attack of the
  toolkit maximises is exactly Liu et al.'s ``−log((Σ_i w_i J_i(x)) · 1_y)``. It carries the
  members' bounds and input shape, so it is a ``model_fn`` like any other.
* :func:`transfer_matrix` — success of each source's adversarial examples on each target.
  Success = the target misclassifies the adversarial image (untargeted), measured on images
  that *every* model classifies correctly, so the clean error does not count as transfer.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_inc.attacks.utils import call_model
from tf_inc.bounds import bounds_of, check_images, check_labels, input_shape_of, num_classes_of
from tf_inc.errors import InputError


class Ensemble:
    """Liu et al.'s ensemble: logits ``log Σ_i w_i softmax(Z_i(x))`` (weights default to 1/m)."""

    def __init__(self, members: Sequence, weights: Optional[Sequence[float]] = None, name: str = "ensemble"):
        members = list(members)
        if not members:
            raise InputError("Ensemble: needs at least one member model")
        w = np.full(len(members), 1.0 / len(members)) if weights is None else np.asarray(weights, np.float64)
        if w.shape != (len(members),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise InputError(f"Ensemble: weights must be {len(members)} non-negative numbers, got {weights!r}")
        bounds = {bounds_of(m) for m in members}
        if len(bounds) != 1:
            raise InputError(f"Ensemble: members expect different input bounds {sorted(bounds)}")
        self.members, self.weights, self.name = members, (w / w.sum()).astype(np.float32), name
        self.bounds = bounds.pop()
        self.image_shape = input_shape_of(members[0])
        self.num_classes = int(getattr(members[0], "output_shape", (None, 10))[-1])

    def __call__(self, x, training: bool = False):
        probs = [w * tf.nn.softmax(call_model(m, x)) for w, m in zip(self.weights, self.members)]
        return tf.math.log(tf.add_n(probs) + 1e-12)


def predict(model_fn, x, batch: int = 500) -> np.ndarray:
    return np.concatenate([np.asarray(call_model(model_fn, tf.constant(x[s:s + batch]))).argmax(1)
                           for s in range(0, len(x), batch)])


def _check_inputs(models, x, y):
    """Images in the models' shape and bounds (when they carry them) and one valid label per image."""
    first = next(iter(models), None)
    b = None
    if first is not None:
        try:
            b = bounds_of(first)
        except InputError:
            b = None                        # a bare callable: no range to check against
    x = check_images(x, shape=None if first is None else input_shape_of(first), bounds=b, name="x")
    if x.ndim < 2:
        raise InputError(f"x: expected a batch of images (N, ...), got shape {x.shape}")
    y = check_labels(y, len(x), None if first is None else num_classes_of(first), name="y")
    return x, y


def commonly_correct(models: Mapping[str, Callable], x, y) -> np.ndarray:
    """Boolean mask of the images every model classifies correctly."""
    x, y = _check_inputs(list(models.values()), x, y)
    ok = np.ones(len(x), bool)
    for m in models.values():
        ok &= predict(m, x) == y
    return ok


def transfer_matrix(sources: Mapping[str, Callable], targets: Mapping[str, Callable], x, y,
                    attack: Callable, batch: int = 250) -> Dict[str, Dict[str, float]]:
    """``{source: {target: success rate}}`` of ``attack(source, x, y)`` against each target.

    ``attack(model_fn, x, y) -> x_adv`` is any untargeted attack (e.g. a ``functools.partial``
    of :func:`tf_inc.attacks.fgsm`); it runs once per source, in batches of ``batch`` images.
    Pass images that every model gets right (:func:`commonly_correct`).
    """
    x, y = _check_inputs(list(sources.values()) + list(targets.values()), x, y)
    out: Dict[str, Dict[str, float]] = {}
    for s_name, src in sources.items():
        adv = np.concatenate([np.asarray(attack(src, x[i:i + batch], y[i:i + batch]))
                              for i in range(0, len(x), batch)])
        out[s_name] = {t_name: float((predict(tgt, adv) != y).mean()) for t_name, tgt in targets.items()}
    return out
