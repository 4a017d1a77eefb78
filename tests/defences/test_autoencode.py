"""Autoencode-and-classify C(G(E(x))) (Appendix A) on the session's small MNIST VAE and classifier."""
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import cw_l2, fgsm
from tf_inc.defences.autoencode import AutoencodeAndClassify
from tf_inc.defences.inc import InvertAndClassify
from tf_inc.errors import InputError
from tf_inc.manifold.inversion import InversionConfig


@pytest.fixture(scope="module")
def ae(trained_classifier, trained_vae):
    return AutoencodeAndClassify(trained_classifier, trained_vae.decoder, trained_vae.encode)


def test_predict_matches_the_composed_models_and_rejects_above_eta(ae, trained_classifier, trained_vae,
                                                                    correct_digits):
    x, y = correct_digits
    out = ae.predict(x)
    x_hat = trained_vae.decoder(trained_vae.encode(x)).numpy()
    np.testing.assert_allclose(out["x_hat"], x_hat, atol=1e-5)
    np.testing.assert_allclose(out["recon_l2"], np.linalg.norm((x - x_hat).reshape(len(x), -1), axis=1),
                               rtol=1e-4)
    np.testing.assert_array_equal(out["label"], trained_classifier(x_hat).numpy().argmax(1))
    assert (out["label"] == y).mean() > 0.85              # autoencoding keeps most clean digits right
    assert not out["rejected"].any()                       # eta = inf never rejects
    eta = float(np.median(out["recon_l2"]))
    strict = AutoencodeAndClassify(trained_classifier, trained_vae.decoder, trained_vae.encode, eta=eta)
    np.testing.assert_array_equal(strict.predict(x)["rejected"], out["recon_l2"] >= eta)
    # a Keras encoder returning [mu, logvar] is used through its mean
    keras_enc = AutoencodeAndClassify(trained_classifier, trained_vae.decoder, trained_vae.encoder)
    np.testing.assert_allclose(keras_enc.predict(x[:4])["z"], out["z"][:4], atol=1e-5)


def test_eq12_attack_through_the_encoder_fools_the_autoencoder_not_the_classifier(ae, trained_classifier,
                                                                                 correct_digits):
    x, y = correct_digits
    x_adv = fgsm(ae, x, y, 0.15).numpy()                  # eq. 12: FGSM on C∘G∘E
    ae_acc = (ae.predict(x_adv)["label"] == y).mean()
    clf_acc = (trained_classifier(x_adv).numpy().argmax(1) == y).mean()
    assert ae_acc < 0.6
    assert clf_acc > ae_acc + 0.3                         # it attacks the encoder, not the classifier


def test_mapping_adversaries_through_latent_space_recovers_accuracy(ae, trained_classifier, trained_vae,
                                                                     correct_digits):
    x, y = correct_digits
    x, y = x[:32], y[:32]
    acc = lambda imgs: (trained_classifier(imgs).numpy().argmax(1) == y).mean()  # noqa: E731
    # FGSM on the classifier: INC's projection G(z*) recovers the class (the encoder does not: its
    # code is pushed off by the dense sign noise, see notes_natural_adversaries)
    x_fgsm = fgsm(trained_classifier, x, y, 0.15).numpy()
    inc = InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(steps=300, restarts=1,
                                                                                      patience=50))
    assert acc(x_fgsm) < 0.7
    assert (inc.predict(x_fgsm)["label"] == y).mean() > acc(x_fgsm) + 0.2
    # CW's minimal perturbations: the encoder's round trip G(E(x_cw)) already undoes them
    x, y = x[:16], y[:16]
    x_cw = cw_l2(trained_classifier, x, y, binary_search_steps=2, max_iterations=60, learning_rate=0.1,
                 initial_const=1.0).numpy()
    assert acc(x_cw) < 0.3
    assert (ae.predict(x_cw)["label"] == y).mean() > acc(x_cw) + 0.4


def test_bpda_logits_same_forward_identity_backward(ae, correct_digits):
    x, y = correct_digits
    x = tf.constant(x[:8])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        exact, bpda = ae.logits(x), ae.bpda_logits(x)
        l_exact = tf.reduce_sum(tf.gather(exact, y[:8], batch_dims=1))
        l_bpda = tf.reduce_sum(tf.gather(bpda, y[:8], batch_dims=1))
        x_hat = ae.reconstruct(x)
        l_clf = tf.reduce_sum(tf.gather(ae.classifier(x_hat), y[:8], batch_dims=1))
    np.testing.assert_allclose(exact.numpy(), bpda.numpy(), atol=1e-5)
    g_exact, g_bpda = tape.gradient(l_exact, x), tape.gradient(l_bpda, x)
    g_clf_at_xhat = tape.gradient(l_clf, x_hat)             # ∂C/∂x̂: what BPDA passes straight to x
    np.testing.assert_allclose(g_bpda.numpy(), g_clf_at_xhat.numpy(), atol=1e-5)
    assert float(tf.reduce_max(tf.abs(g_exact - g_bpda))) > 1e-3


def test_input_checks(ae, trained_classifier, trained_vae):
    with pytest.raises(InputError, match="must lie in"):
        ae.predict(np.full((2, 28, 28, 1), 255.0, np.float32))
    with pytest.raises(InputError, match="expected shape"):
        ae.predict(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(InputError, match="NaN"):
        ae.predict(np.full((2, 28, 28, 1), np.nan, np.float32))
    with pytest.raises(InputError, match="empty"):
        ae.predict(np.zeros((0, 28, 28, 1), np.float32))
    with pytest.raises(InputError, match="eta"):
        AutoencodeAndClassify(trained_classifier, trained_vae.decoder, trained_vae.encode, eta=0.0)
    with pytest.raises(InputError, match="integer"):
        fgsm(ae, np.zeros((2, 28, 28, 1), np.uint8), np.zeros(2, np.int64), 0.1)
