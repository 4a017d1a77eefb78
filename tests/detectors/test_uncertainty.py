"""MC-dropout uncertainty (Smith & Gal) on the session's small MNIST classifier (dropout 0.5)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import fgsm
from tf_inc.detectors.evaluation import roc
from tf_inc.detectors.uncertainty import MCDropoutDetector, mc_dropout_split, uncertainty_measures
from tf_inc.errors import InputError


def test_measures_match_their_definitions():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(7, 5, 4))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    out = {k: v.numpy() for k, v in uncertainty_measures(tf.constant(probs, tf.float32)).items()}
    pm = probs.mean(0)
    ent = lambda p: -(p * np.log(p + 1e-12)).sum(-1)  # noqa: E731
    np.testing.assert_allclose(out["probabilities"], pm, rtol=1e-5)
    np.testing.assert_allclose(out["mutual_information"], ent(pm) - ent(probs).mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["softmax_variance"], probs.var(0).mean(-1), rtol=1e-4)
    # identical passes: no epistemic uncertainty
    same = uncertainty_measures(tf.constant(np.repeat(probs[:1], 7, 0), tf.float32))
    np.testing.assert_allclose(same["mutual_information"].numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(same["softmax_variance"].numpy(), 0.0, atol=1e-9)


def test_only_dropout_is_stochastic_and_weights_are_shared(trained_classifier, correct_digits):
    x, _ = correct_digits
    trunk, head = mc_dropout_split(trained_classifier)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in trunk.layers)
    f = trunk(x[:8]).numpy()
    np.testing.assert_array_equal(f, trunk(x[:8]).numpy())                 # deterministic trunk
    a, b = head(f).numpy(), head(f).numpy()
    assert np.abs(a - b).max() > 1e-3                                       # fresh masks every call
    # dropout averages out: the MC mean of the logits is the deterministic classifier's
    mean = head(np.tile(f, (2000, 1))).numpy().reshape(2000, 8, -1).mean(0)
    np.testing.assert_allclose(mean, trained_classifier(x[:8], training=False).numpy(), atol=0.25)
    shared = {id(w) for w in trained_classifier.weights}
    assert all(id(w) in shared for w in head.weights + trunk.weights)


def test_mutual_information_and_softmax_variance_flag_fgsm(trained_classifier, correct_digits):
    x, y = correct_digits
    det = MCDropoutDetector(trained_classifier, samples=50, batch_size=32)
    x_adv = fgsm(trained_classifier, x, y, 0.2).numpy()
    clean, adv = det.statistics(x), det.statistics(x_adv)
    assert clean["mutual_information"].shape == (len(x),) and np.all(clean["mutual_information"] >= 0)
    assert (clean["label"] == y).mean() > 0.9
    for key in ("mutual_information", "softmax_variance"):
        assert adv[key].mean() > 3 * clean[key].mean()
        assert roc(clean[key], adv[key])["auc"] > 0.75
    det.calibrate(x, 0.1)
    assert det.detect(x_adv).mean() > 0.5
    np.testing.assert_allclose(det.score(x[:4]).shape, (4,))
    # the attacker's differentiable view
    xt = tf.constant(x_adv[:4])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logits, mi = det.attack_terms(xt, samples=10)
        total = tf.reduce_sum(mi)
    assert logits.shape == (4, 10) and tape.gradient(total, xt) is not None
    view = det.attack_view(5)
    assert view.attack_samples == 5 and det.attack_samples == 20 and view.threshold == det.threshold
    assert view.attack_terms(xt)[1].shape == (4,)


def test_input_checks(trained_classifier):
    with pytest.raises(InputError, match="Dropout"):
        MCDropoutDetector(keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]),
                          bounds=(0.0, 1.0))
    with pytest.raises(InputError, match="measure"):
        MCDropoutDetector(trained_classifier, measure="variance_ratio")
    with pytest.raises(InputError, match="samples"):
        MCDropoutDetector(trained_classifier, samples=0)
    det = MCDropoutDetector(trained_classifier, samples=2)
    with pytest.raises(InputError, match="must lie in"):
        det.score(np.full((1, 28, 28, 1), 255.0, np.float32))
    with pytest.raises(InputError, match="expected shape"):
        det.score(np.zeros((1, 28, 28), np.float32))
