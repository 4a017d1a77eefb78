"""Defences: each is a classifier-like object with input checks and its own adaptive gradient.

* :class:`InvertAndClassify` — INC (paper Alg. 1), BPDA gradient through the projection;
* :class:`AutoencodeAndClassify` — C(G(E(x))) (Appendix A), exact (eq. 12) and BPDA gradients;
* :class:`DIPInvertAndClassify` — Deep Image Prior INC (Alg. 2), an early-stopped fit of an
  untrained skip network per image, BPDA gradient through the fit;
* :mod:`tf_inc.defences.robust_training` — robust manifold training (eq. 10).
"""
from tf_inc.defences.autoencode import AutoencodeAndClassify  # noqa: F401
from tf_inc.defences.dip import DIPConfig, DIPFitter, DIPInvertAndClassify  # noqa: F401
from tf_inc.defences.inc import InvertAndClassify  # noqa: F401
