"""The detector interface: a score per input, higher = more suspicious.

A detector is calibrated on clean data by choosing the threshold that gives a
target false-positive rate; :meth:`Detector.detect` then flags inputs whose score
exceeds it. Subclasses implement :meth:`Detector.score`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from tf_inc.bounds import bounds_of, check_images, input_shape_of
from tf_inc.errors import InputError


class Detector:
    """Base class. ``bounds`` / ``image_shape`` are the inputs it accepts (checked on every call)."""

    bounds = None
    image_shape = None

    def __init__(self, threshold: Optional[float] = None):
        self.threshold = threshold

    def check(self, x) -> np.ndarray:
        return check_images(x, shape=input_shape_of(self), bounds=bounds_of(self), name="x")

    def score(self, x) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def calibrate(self, x_clean, false_positive_rate: float = 0.05) -> float:
        """Set the threshold to the (1 − fpr) quantile of the scores of clean inputs."""
        if not 0.0 <= false_positive_rate < 1.0:
            raise InputError(f"false_positive_rate must lie in [0, 1), got {false_positive_rate}")
        self.threshold = float(np.quantile(self.score(x_clean), 1.0 - false_positive_rate))
        return self.threshold

    def detect(self, x) -> np.ndarray:
        """Boolean flag per input: score above the calibrated threshold."""
        if self.threshold is None:
            raise InputError("the detector has no threshold: call calibrate(x_clean) or pass threshold=")
        return self.score(x) > self.threshold
