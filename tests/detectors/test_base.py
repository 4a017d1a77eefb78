"""The detector interface: calibration at a false-positive rate, input checks, typed errors."""
import numpy as np
import pytest

from tf_inc.detectors import Detector
from tf_inc.errors import InputError


class MeanBrightness(Detector):
    """Toy detector: mean pixel value (brighter = more suspicious)."""

    bounds = (0.0, 1.0)
    image_shape = (4, 4, 1)

    def score(self, x):
        return self.check(x).reshape(len(x), -1).mean(1)


def test_calibrate_sets_the_false_positive_rate_on_clean_data():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.0, 0.5, (1000, 4, 4, 1)).astype(np.float32)
    bright = rng.uniform(0.5, 1.0, (100, 4, 4, 1)).astype(np.float32)
    det = MeanBrightness()
    with pytest.raises(InputError, match="no threshold"):
        det.detect(clean)
    det.calibrate(clean, false_positive_rate=0.05)
    assert abs(det.detect(clean).mean() - 0.05) < 0.01
    assert det.detect(bright).all()
    with pytest.raises(InputError, match="false_positive_rate"):
        det.calibrate(clean, 1.5)


def test_detector_checks_its_input():
    det = MeanBrightness(threshold=0.3)
    with pytest.raises(InputError, match="must lie in"):
        det.detect(np.full((2, 4, 4, 1), 2.0, np.float32))
    with pytest.raises(InputError, match="expected shape"):
        det.detect(np.zeros((2, 4, 4), np.float32))
