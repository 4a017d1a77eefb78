"""Strong BPDA+EOT PGD against a randomised, non-differentiable defence (Athalye et al. 2018).

The defence supplies the gradient it owns: ``defence.attack_view(seed, config)``
returns a copy with another randomness seed (INC: its inversion restarts) and,
optionally, a cheaper projection; its ``bpda_logits`` pass gradients straight
through the projection (identity backward). :func:`bpda_eot_pgd` averages
``eot_samples`` such draws (:class:`~tf_inc.attacks.eot.EOT`) and runs PGD with
random restarts and a cosine step schedule on the average. The returned points
must then be judged by the defence *as deployed* (full projection, its own seed):
the attacker's cheap copies only steer the search.
"""
from __future__ import annotations

from typing import Sequence

from tf_inc.attacks.eot import EOT
from tf_inc.attacks.pgd import pgd
from tf_inc.bounds import check_attack_inputs, check_count, num_classes_of


class BatchedEOT:
    """EOT over seeds of a defence that averages its draws itself, in one batched projection
    (``defence.eot_bpda_log_probs``, e.g. :class:`~tf_inc.defences.inc.InvertAndClassify`): the
    same model function as ``EOT([defence.attack_view(s, config).bpda_logits for s in seeds])``
    (mean log-probabilities), at a fraction of the cost."""

    def __init__(self, defence, seeds: Sequence[int], config=None):
        self.defence, self.seeds, self.config = defence, [int(s) for s in seeds], config
        self.bounds = defence.bounds
        self.image_shape = defence.image_shape
        self.num_classes = num_classes_of(defence)      # label range checked by every attack

    def __call__(self, x):
        return self.defence.eot_bpda_log_probs(x, self.seeds, self.config)


def eot_bpda_model(defence, eot_samples: int = 8, seed: int = 1000, config=None):
    """EOT over ``eot_samples`` seeds of the defence's BPDA logits (seeds ``seed``, ``seed+1``, …):
    mean log-probabilities. A defence with a batched ``eot_bpda_log_probs`` (INC) projects all the
    draws in one loop (:class:`BatchedEOT`); any other is averaged view by view (:class:`EOT`)."""
    check_count(eot_samples, "eot_samples", 1)
    seeds = [seed + k for k in range(eot_samples)]
    if hasattr(defence, "eot_bpda_log_probs"):
        return BatchedEOT(defence, seeds, config)
    return EOT([defence.attack_view(s, config).bpda_logits for s in seeds], bounds=defence.bounds)


def bpda_eot_pgd(defence, x, y, eps, norm: str = "inf", nb_iter: int = 100, restarts: int = 5,
                 eot_samples: int = 8, attack_config=None, schedule: str = "cosine", eps_iter=None,
                 seed: int = 0, snapshots: Sequence[int] = ()):
    """PGD on the EOT-averaged BPDA logits of ``defence`` (defaults: the adaptive evaluation's
    ≥ 100 iterations, ≥ 5 restarts, 8 EOT draws, cosine step schedule).

    ``attack_config`` is the projection the attacker's draws use (e.g. fewer steps,
    warm-started from an encoder); default: the defence's own.
    """
    check_attack_inputs(defence, x, y, eps=eps)      # bad input fails before any draw is built
    model = eot_bpda_model(defence, eot_samples, 1000 + 97 * seed, attack_config)
    return pgd(model, x, y, eps, eps_iter=eps_iter, nb_iter=nb_iter, norm=norm, restarts=restarts,
               rand_init=True, seed=seed, schedule=schedule, snapshots=snapshots)
