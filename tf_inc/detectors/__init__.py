"""Detectors: score inputs, flag the ones above a threshold calibrated on clean data.

:class:`tf_inc.detectors.base.Detector` is the interface every detector implements
(reconstruction-error and uncertainty detectors build on it).
"""
from tf_inc.detectors.base import Detector  # noqa: F401
