"""The combined attack through an encoder (paper §4.2.3, Figure 12; Appendix A, eq. 12).

INC's projection has no useful gradient, but an encoder E with G∘E ≈ identity on
the data gives a differentiable stand-in: attack ``C∘G∘E`` end to end and transfer
the result to INC. :func:`combined_model` builds that model function; any attack
of :mod:`tf_inc.attacks` then runs on it.
"""
from __future__ import annotations

from tf_inc.bounds import attach_bounds, bounds_of, input_shape_of


class CombinedModel:
    """``x ↦ C(G(E(x)))`` (logits), differentiable end to end, carrying the generator's bounds."""

    def __init__(self, classifier, generator, encoder, bounds=None):
        self.classifier, self.generator, self.encoder = classifier, generator, encoder
        attach_bounds(self, bounds_of(generator, bounds))
        self.image_shape = input_shape_of(classifier)

    def reconstruct(self, x):
        """``G(E(x))``."""
        return self.generator(self.encoder(x))

    def __call__(self, x):
        return self.classifier(self.reconstruct(x), training=False)


def combined_model(classifier, generator, encoder, bounds=None) -> CombinedModel:
    return CombinedModel(classifier, generator, encoder, bounds)
