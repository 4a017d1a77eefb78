"""Reconstruction detectors (Appendix A encoder / INC paths, the notes' VAE KL detector) on the session's
small MNIST models: each separates clean from adversarial inputs."""
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import fgsm
from tf_inc.defences.autoencode import AutoencodeAndClassify
from tf_inc.defences.inc import InvertAndClassify
from tf_inc.detectors.evaluation import detection_metrics, roc, sweep, threshold_at_fpr, tpr_at_fpr
from tf_inc.detectors.reconstruction import (
    EncoderReconstructionDetector,
    InversionReconstructionDetector,
    VAEKLDetector,
    kl_rows,
)
from tf_inc.errors import InputError
from tf_inc.manifold.inversion import InversionConfig


@pytest.fixture(scope="module")
def ae(trained_classifier, trained_vae):
    return AutoencodeAndClassify(trained_classifier, trained_vae.decoder, trained_vae.encode)


@pytest.fixture(scope="module")
def calib(mnist_test):
    x, _ = mnist_test
    return x[500:800]                        # clean images disjoint from correct_digits' first 64


def test_encoder_path_detects_the_eq12_attack(ae, correct_digits, calib):
    x, y = correct_digits
    det = EncoderReconstructionDetector(ae)
    x_adv = fgsm(ae, x, y, 0.1).numpy()
    clean, adv = det.score(x), det.score(x_adv)
    np.testing.assert_allclose(clean, ae.predict(x)["recon_l2"], rtol=1e-4)
    assert roc(clean, adv)["auc"] > 0.85
    det.calibrate(calib, 0.05)
    assert abs(det.detect(calib).mean() - 0.05) < 0.02
    assert det.detect(x_adv).mean() > 0.5
    _, s = det.attack_terms(tf.constant(x))
    np.testing.assert_allclose(s.numpy(), clean, rtol=1e-4)


def test_inc_path_detects_large_perturbations_and_its_score_gradient_is_danskins(trained_vae, trained_classifier,
                                                                                 correct_digits):
    x, y = correct_digits
    x, y = x[:24], y[:24]
    inc = InvertAndClassify(trained_vae.decoder, trained_classifier,
                            InversionConfig(steps=200, restarts=1, patience=50), seed=0)
    det = InversionReconstructionDetector(inc)
    x_adv = fgsm(trained_classifier, x, y, 0.3).numpy()
    clean, adv = det.score(x), det.score(x_adv)
    assert roc(clean, adv)["auc"] > 0.9
    det.threshold = float(np.max(clean))
    inc = det.apply_threshold()
    out = inc.predict(np.concatenate([x, x_adv]))
    np.testing.assert_array_equal(out["rejected"], det.detect(np.concatenate([x, x_adv])))
    # the score is min_z ||x - G(z)||: its gradient at the minimiser is (x - G(z*)) / ||x - G(z*)||
    xt = tf.constant(x_adv[:4])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        _, s = det.attack_terms(xt)
        total = tf.reduce_sum(s)
    g = tape.gradient(total, xt).numpy()
    x_hat = inc.invert(x_adv[:4]).x_hat
    diff = (x_adv[:4] - x_hat).reshape(4, -1)
    expect = diff / np.linalg.norm(diff, axis=1, keepdims=True)
    np.testing.assert_allclose(g.reshape(4, -1), expect, atol=1e-4)


def test_vae_kl_detector_separates_fgsm_and_matches_its_definition(ae, trained_classifier, correct_digits, calib):
    x, y = correct_digits
    det = VAEKLDetector(trained_classifier, ae)
    x_adv = fgsm(trained_classifier, x, y, 0.3).numpy()
    clean, adv = det.score(x), det.score(x_adv)
    p = tf.nn.softmax(trained_classifier(x)).numpy()
    q = tf.nn.softmax(trained_classifier(ae.reconstruct(x))).numpy()
    expect = (p * (np.log(np.clip(p, 1e-12, 1)) - np.log(np.clip(q, 1e-12, 1)))).sum(1)
    np.testing.assert_allclose(clean, expect, rtol=1e-3, atol=1e-6)
    assert np.all(clean >= -1e-6)
    m = detection_metrics(clean, adv, threshold_at_fpr(det.score(calib), 0.05))
    assert m["auc"] > 0.85 and m["detection_rate"] > 0.2
    assert m["mean_adv"] > 10 * m["mean_clean"]
    sym = VAEKLDetector(trained_classifier, ae, direction="symmetric").score(x[:8])
    rev = VAEKLDetector(trained_classifier, ae, direction="reverse").score(x[:8])
    np.testing.assert_allclose(sym, clean[:8] + rev, rtol=1e-3, atol=1e-6)


def test_evaluation_helpers():
    rng = np.random.default_rng(0)
    clean, adv = rng.normal(0, 1, 2000), rng.normal(2, 1, 2000)
    r = roc(clean, adv)
    assert 0.9 < r["auc"] < 0.95                   # Φ(2/√2) ≈ 0.921
    thr = threshold_at_fpr(clean, 0.05)
    m = detection_metrics(clean, adv, thr)
    assert abs(m["false_positive_rate"] - 0.05) < 0.01
    assert abs(m["detection_rate"] - tpr_at_fpr(clean, adv, 0.05)) < 1e-12
    sw = sweep(clean, adv, [-10.0, thr, 10.0])
    assert sw["detection_rate"][0] == 1.0 and sw["detection_rate"][2] == 0.0
    assert roc([0.0, 0.1], [1.0, 2.0])["auc"] == 1.0
    with pytest.raises(InputError):
        roc([], [1.0])
    with pytest.raises(InputError):
        threshold_at_fpr([1.0, np.nan])
    p = tf.constant([[0.5, 0.5], [0.9, 0.1]])
    np.testing.assert_allclose(kl_rows(p, p).numpy(), 0.0, atol=1e-7)


def test_detectors_check_their_input(ae, trained_classifier):
    det = EncoderReconstructionDetector(ae, threshold=1.0)
    with pytest.raises(InputError, match="must lie in"):
        det.score(np.full((2, 28, 28, 1), 255.0, np.float32))
    with pytest.raises(InputError, match="expected shape"):
        det.detect(np.zeros((2, 784), np.float32))
    with pytest.raises(InputError, match="empty"):
        VAEKLDetector(trained_classifier, ae).score(np.zeros((0, 28, 28, 1), np.float32))
    with pytest.raises(InputError, match="direction"):
        VAEKLDetector(trained_classifier, ae, direction="sideways")
    with pytest.raises(InputError, match="AutoencodeAndClassify"):
        EncoderReconstructionDetector(trained_classifier)
    with pytest.raises(InputError, match="threshold"):
        InversionReconstructionDetector(
            InvertAndClassify(ae.generator, trained_classifier, InversionConfig(steps=5, restarts=1))).apply_threshold()
