"""Detectors: score inputs, flag the ones above a threshold calibrated on clean data.

:class:`tf_inc.detectors.base.Detector` is the interface every detector implements
(reconstruction-error and uncertainty detectors build on it).

* :mod:`~tf_inc.detectors.reconstruction` — ‖x − G(E(x))‖, ‖x − G(z*)‖ (Appendix A) and the
  notes' KL(C(x) ‖ C(G(E(x)))) detector;
* :mod:`~tf_inc.detectors.uncertainty` — MC-dropout mutual information / softmax variance;
* :mod:`~tf_inc.detectors.evaluation` — ROC/AUC, thresholds at a false-positive rate.

Each detector's ``attack_terms(x)`` gives an adaptive attacker the guarded classifier's logits
and a differentiable score (:func:`tf_inc.attacks.detector_aware_pgd`).
"""
from tf_inc.detectors.base import Detector  # noqa: F401
from tf_inc.detectors.evaluation import detection_metrics, roc, threshold_at_fpr  # noqa: F401
from tf_inc.detectors.reconstruction import (  # noqa: F401
    EncoderReconstructionDetector,
    InversionReconstructionDetector,
    VAEKLDetector,
)
from tf_inc.detectors.uncertainty import MCDropoutDetector  # noqa: F401
