"""Expectation over Transformation (Athalye et al. 2018) as a wrapper around a model.

A randomised defence (INC's restarts, DIP's random code) is attacked through the
expectation of its output: :class:`EOT` holds several draws of the model (e.g. INC
with different inversion seeds, each with its own BPDA gradient) and returns the
mean of their log-probabilities, which every attack then uses as its ``model_fn``.
Bounds and image shape are the draws' own, so the attacks' input checks still apply.
"""
from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from tf_inc.bounds import bounds_of, input_shape_of, num_classes_of
from tf_inc.errors import InputError


class EOT:
    """``x ↦ mean_k log softmax(draw_k(x))`` over the model draws ``draws`` (callables x -> logits)."""

    def __init__(self, draws: Sequence[Callable], bounds=None):
        draws = list(draws)
        if not draws:
            raise InputError("EOT needs at least one model draw")
        self.draws = draws
        self.bounds = bounds_of(draws[0], bounds)
        self.image_shape = input_shape_of(draws[0])
        self.num_classes = num_classes_of(draws[0])     # label range checked by every attack

    @classmethod
    def over_seeds(cls, make: Callable[[int], Callable], seeds: Sequence[int], bounds=None) -> "EOT":
        """One draw per seed: ``make(seed)`` returns the model function of that draw."""
        return cls([make(int(s)) for s in seeds], bounds=bounds)

    def __call__(self, x):
        return tf.add_n([tf.nn.log_softmax(d(x)) for d in self.draws]) / len(self.draws)
