"""Attacks as plain functions of a model callable ``model_fn(x) -> logits``.

Shared helpers live in :mod:`tf_inc.attacks.utils`; every attack clips to the
``bounds`` that travel with the dataset/model.
"""
from tf_inc.attacks.fgsm import fgsm, fgsm_multi_eps  # noqa: F401
from tf_inc.attacks.utils import clip_eta, loss_gradient, optimize_linear  # noqa: F401
