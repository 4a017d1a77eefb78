"""Fast Gradient (Sign) Method (Goodfellow et al.; paper eq. 8)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import tensorflow as tf

from tf_inc.attacks.utils import loss_gradient, optimize_linear, prepare


def fgsm(model_fn, x, y, eps: float, bounds: Optional[Tuple[float, float]] = None,
         norm: str = "inf", targeted: bool = False):
    """One-step attack: ``x + eps · sign(∇_x L(y, C(x)))`` clipped to ``bounds``.

    ``y`` is the true label (untargeted) or the target label (``targeted=True``);
    ``bounds`` default to the ones the model carries.
    """
    return fgsm_multi_eps(model_fn, x, y, [eps], bounds, norm, targeted)[0]


def fgsm_multi_eps(model_fn, x, y, eps_list: Sequence[float], bounds=None,
                   norm: str = "inf", targeted: bool = False):
    """FGSM for several ε from one gradient: returns a list aligned with ``eps_list``."""
    x, y, (lo, hi) = prepare(model_fn, x, y, bounds, eps=list(eps_list), norm=norm)
    g = loss_gradient(model_fn, x, y, targeted=targeted)
    direction = optimize_linear(g, 1.0, norm)
    return [tf.clip_by_value(x + float(e) * direction, lo, hi) for e in eps_list]
