"""Attacks as plain functions of a model callable ``model_fn(x) -> logits``.

* :func:`fgsm`, :func:`fgsm_multi_eps` — Fast Gradient Sign (paper eq. 8)
* :func:`bim` — Basic Iterative Method as the paper writes it (20 steps)
* :func:`pgd` — PGD ℓ∞ / ℓ2 with random start and restarts
* :func:`cw_l2`, :func:`cw_linf`, :func:`cw_l0` — Carlini–Wagner
* :mod:`~tf_inc.attacks.substitute` — black-box substitute training (Figure 5)
* :mod:`~tf_inc.attacks.combined` — the attack through an encoder, C∘G∘E (Figure 12)
* :class:`EOT` — expectation over a randomised model's draws (wrapper)
* :func:`detector_aware_pgd` — the adaptive attack that must also stay under a detector's threshold
* :func:`targeted_ifgsm` — the notes' targeted iterative FGSM (every 2 → 6)
* :func:`jsma` — Jacobian saliency map attack on pixel pairs (Papernot et al. 2016)
* :func:`pixel_attack` — one-/few-pixel black-box attack by differential evolution (Su et al.)
* :class:`Ensemble`, :func:`transfer_matrix` — transfer attacks, Liu et al.'s ensemble

Every attack checks its input when it starts (:func:`tf_inc.attacks.utils.prepare`):
the bounds come from the model (``model.bounds``, INC's generator) unless passed
explicitly, and a wrong shape, dtype, range, NaN/Inf, empty batch, bad label or
negative budget raises :class:`tf_inc.errors.InputError`. Iterative attacks accept
a list of ε and return a list. To attack Invert-and-Classify adaptively pass
``inc.bpda_logits`` (BPDA through the projection), or an :class:`EOT` of several.
"""
from tf_inc.attacks.bpda import bpda_eot_pgd, eot_bpda_model  # noqa: F401
from tf_inc.attacks.carlini_wagner import cw_l0, cw_l2, cw_linf  # noqa: F401
from tf_inc.attacks.combined import CombinedModel, combined_model  # noqa: F401
from tf_inc.attacks.detector_aware import DetectorAwareResult, detector_aware_pgd  # noqa: F401
from tf_inc.attacks.eot import EOT  # noqa: F401
from tf_inc.attacks.fgsm import fgsm, fgsm_multi_eps  # noqa: F401
from tf_inc.attacks.jsma import jsma  # noqa: F401
from tf_inc.attacks.latent import LatentAttackConfig, budget_key, latent_attack  # noqa: F401
from tf_inc.attacks.one_pixel import PixelAttackResult, pixel_attack  # noqa: F401
from tf_inc.attacks.pgd import (  # noqa: F401
    basic_iterative_method,
    bim,
    pgd,
    projected_gradient_descent,
)
from tf_inc.attacks.substitute import jacobian_augment, train_substitute  # noqa: F401
from tf_inc.attacks.targeted import changed_pixels, random_targets, target_success, targeted_ifgsm  # noqa: F401
from tf_inc.attacks.transfer import Ensemble, commonly_correct, transfer_matrix  # noqa: F401
from tf_inc.attacks.unrolled import UnrolledInversion  # noqa: F401
from tf_inc.attacks.utils import clip_eta, loss_gradient, optimize_linear, random_init  # noqa: F401
