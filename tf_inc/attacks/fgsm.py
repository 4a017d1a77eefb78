"""Fast Gradient (Sign) Method (Goodfellow et al.; paper eq. 8)."""
from __future__ import annotations

from typing import Sequence, Tuple

import tensorflow as tf

from tf_inc.attacks.utils import loss_gradient, optimize_linear, prepare


def fgsm(model_fn, x, y, eps: float, bounds: Tuple[float, float] = (0.0, 1.0),
         norm: str = "inf", targeted: bool = False):
    """One-step attack: ``x + eps · sign(∇_x L(y, C(x)))`` clipped to ``bounds``.

    ``y`` is the true label (untargeted) or the target label (``targeted=True``).
    """
    return fgsm_multi_eps(model_fn, x, y, [eps], bounds, norm, targeted)[0]


def fgsm_multi_eps(model_fn, x, y, eps_list: Sequence[float], bounds=(0.0, 1.0),
                   norm: str = "inf", targeted: bool = False):
    """FGSM for several ε from one gradient: returns a list aligned with ``eps_list``."""
    x, y = prepare(x, y)
    g = loss_gradient(model_fn, x, y, targeted=targeted)
    direction = optimize_linear(g, 1.0, norm)
    lo, hi = bounds
    return [tf.clip_by_value(x + float(e) * direction, lo, hi) for e in eps_list]
