"""The detector-aware attack (Carlini & Wagner 2017): knowing the detector lowers its detection rate."""
import numpy as np
import pytest

from tf_inc.attacks import fgsm
from tf_inc.attacks.detector_aware import detector_aware_pgd
from tf_inc.defences.autoencode import AutoencodeAndClassify
from tf_inc.detectors.reconstruction import EncoderReconstructionDetector, VAEKLDetector
from tf_inc.errors import InputError


@pytest.fixture(scope="module")
def ae(trained_classifier, trained_vae):
    return AutoencodeAndClassify(trained_classifier, trained_vae.decoder, trained_vae.encode)


@pytest.fixture(scope="module")
def calib(mnist_test):
    return mnist_test[0][500:800]


def _judge(labels, det, x_adv, y):
    fooled = labels != y
    detected = det.detect(x_adv)
    return fooled.mean(), detected.mean(), (fooled & ~detected).mean()


def test_adaptive_attack_evades_the_encoder_path_detector(ae, correct_digits, calib):
    x, y = correct_digits
    x, y = x[:32], y[:32]
    det = EncoderReconstructionDetector(ae)
    det.calibrate(calib, 0.05)
    before = fgsm(ae, x, y, 0.1).numpy()         # eq. 12: the attack the detector was shown to catch
    aware = detector_aware_pgd(det, x, y, 0.1, lams=[1.0, 10.0], nb_iter=40, seed=0)
    f0, d0, s0 = _judge(ae.predict(before)["label"], det, before, y)
    f1, d1, s1 = _judge(ae.predict(aware.x_adv)["label"], det, aware.x_adv, y)
    assert f0 > 0.5 and d0 > 0.4                 # ignoring the detector: fooled but caught
    assert d1 < d0 - 0.3                         # knowing it: far fewer flagged
    assert s1 > s0 + 0.3 and f1 > 0.6            # and many more undetected successes
    # the attack's own bookkeeping agrees with the deployed detector (same model here)
    np.testing.assert_allclose(aware.score, det.score(aware.x_adv), rtol=1e-3)
    np.testing.assert_array_equal(aware.undetected, aware.fooled & (aware.score <= det.threshold))
    assert np.abs(aware.x_adv - x).max() <= 0.1 + 1e-6
    assert set(np.unique(aware.lam)) <= {1.0, 10.0}


def test_adaptive_attack_evades_the_kl_detector(ae, trained_classifier, correct_digits, calib):
    x, y = correct_digits
    x, y = x[:32], y[:32]
    det = VAEKLDetector(trained_classifier, ae)
    det.calibrate(calib, 0.1)
    before = fgsm(trained_classifier, x, y, 0.3).numpy()
    aware = detector_aware_pgd(det, x, y, 0.3, lams=[1.0, 10.0], nb_iter=40)
    label = lambda z: trained_classifier(z).numpy().argmax(1)  # noqa: E731
    f0, d0, s0 = _judge(label(before), det, before, y)
    f1, d1, s1 = _judge(label(aware.x_adv), det, aware.x_adv, y)
    assert f0 > 0.7 and d0 > 0.3
    assert d1 < d0 - 0.25 and s1 > s0 + 0.25


def test_input_checks(ae, correct_digits):
    x, y = correct_digits
    det = EncoderReconstructionDetector(ae)
    with pytest.raises(InputError, match="threshold"):
        detector_aware_pgd(det, x[:2], y[:2], 0.1)
    det.threshold = 5.0
    with pytest.raises(InputError, match="lams"):
        detector_aware_pgd(det, x[:2], y[:2], 0.1, lams=[-1.0])
    with pytest.raises(InputError, match="eps"):
        detector_aware_pgd(det, x[:2], y[:2], -0.1)
    with pytest.raises(InputError, match="must lie in"):
        detector_aware_pgd(det, x[:2] * 255, y[:2], 0.1)
    with pytest.raises(InputError, match="y"):
        detector_aware_pgd(det, x[:2], y[:3], 0.1)
    with pytest.raises(InputError, match="target_frac"):
        detector_aware_pgd(det, x[:2], y[:2], 0.1, target_frac=1.5)
