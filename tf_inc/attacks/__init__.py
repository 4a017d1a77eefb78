"""Attacks as plain functions of a model callable ``model_fn(x) -> logits``.

* :func:`fgsm`, :func:`fgsm_multi_eps` — Fast Gradient Sign (paper eq. 8)
* :func:`bim` — Basic Iterative Method as the paper writes it (20 steps)
* :func:`pgd` — PGD ℓ∞ / ℓ2 with random start and restarts
* :func:`cw_l2`, :func:`cw_linf`, :func:`cw_l0` — Carlini–Wagner

Shared helpers live in :mod:`tf_inc.attacks.utils`; every attack clips to the
``bounds`` of the dataset ((0, 1) MNIST, (-1, 1) CelebA). Iterative attacks
accept a list of ε and return a list. To attack Invert-and-Classify, pass
``inc.bpda_logits`` (BPDA through the projection).
"""
from tf_inc.attacks.carlini_wagner import cw_l0, cw_l2, cw_linf  # noqa: F401
from tf_inc.attacks.fgsm import fgsm, fgsm_multi_eps  # noqa: F401
from tf_inc.attacks.pgd import basic_iterative_method, bim, pgd, projected_gradient_descent  # noqa: F401
from tf_inc.attacks.utils import clip_eta, loss_gradient, optimize_linear, random_init  # noqa: F401
