"""The INC engine on a trained MNIST VAE (session fixtures)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import fgsm
from tf_inc.inversion import InversionConfig, InvertAndClassify, Projector, project
from tf_inc.validation import InputError

FAST = dict(steps=300, patience=50)


def _l2(a, b):
    return np.linalg.norm((a - b).reshape(len(a), -1), axis=1)


def test_inversion_reduces_reconstruction_error(trained_vae, correct_digits):
    x, _ = correct_digits
    G = trained_vae.decoder
    proj = Projector(G, InversionConfig(restarts=1, **FAST))
    z0 = proj.initial_latents(tf.constant(x), seed=0)
    start = _l2(G(z0).numpy(), x)
    res = proj(x, seed=0)
    assert res.x_hat.shape == x.shape and res.z.shape == (len(x), 20)
    np.testing.assert_allclose(res.l2, _l2(res.x_hat, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(res.mse, res.l2 ** 2 / 784, rtol=1e-5)
    assert np.all(res.l2 < start)                 # every image improves
    assert res.l2.mean() < 0.5 * start.mean()     # by a lot
    # and the projection is about as good as the VAE's own encoder
    enc_l2 = _l2(G(trained_vae.encode(x)).numpy(), x)
    assert res.l2.mean() < 1.1 * enc_l2.mean()


def test_restarts_never_make_the_chosen_error_worse(trained_vae, correct_digits):
    x, _ = correct_digits
    x = x[:32]
    G = trained_vae.decoder
    one = project(G, x, InversionConfig(restarts=1, **FAST), seed=3)
    four = project(G, x, InversionConfig(restarts=4, **FAST), seed=3)
    np.testing.assert_allclose(four.l2, four.restart_l2.min(axis=1), rtol=1e-5)
    # restart 0 of the 4-restart run is the 1-restart run
    np.testing.assert_allclose(four.restart_l2[:, 0], one.l2, rtol=1e-3, atol=1e-3)
    assert np.all(four.l2 <= one.l2 + 1e-3)
    assert four.l2.mean() < one.l2.mean()


def test_rejection_follows_eta(trained_vae, trained_classifier, correct_digits):
    x, _ = correct_digits
    x = x[:32]
    noise = np.clip(x + np.random.default_rng(0).uniform(-0.5, 0.5, x.shape), 0, 1).astype(np.float32)
    inc = InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(restarts=1, **FAST))
    res_clean, res_noise = inc.invert(x), inc.invert(noise)
    assert res_noise.l2.mean() > res_clean.l2.mean() + 2.0   # off-manifold inputs reconstruct worse
    eta = float(np.median(np.concatenate([res_clean.l2, res_noise.l2])))
    inc.eta = eta
    out = inc.predict(np.concatenate([x, noise]))
    l2 = out["result"].l2
    np.testing.assert_array_equal(out["rejected"], l2 >= eta)
    assert out["rejected"][32:].mean() > out["rejected"][:32].mean()
    assert not InvertAndClassify(trained_vae.decoder, trained_classifier,
                                 InversionConfig(restarts=1, **FAST)).predict(noise)["rejected"].any()
    np.testing.assert_array_equal(res_clean.accepted(0.0), np.zeros(32, bool))


def test_inc_resists_fgsm_and_early_stopping_keeps_accuracy(trained_vae, trained_classifier, correct_digits):
    x, y = correct_digits
    x_adv = fgsm(trained_classifier, x, y, 0.2).numpy()
    clf_acc = (trained_classifier(x_adv).numpy().argmax(1) == y).mean()
    accs, costs = {}, {}
    for es in (False, True):
        cfg = InversionConfig(steps=600, restarts=2, early_stop=es, patience=50, rel_tol=1e-2)
        out = InvertAndClassify(trained_vae.decoder, trained_classifier, cfg, seed=0).predict(x_adv)
        accs[es] = (out["label"] == y).mean()
        costs[es] = out["result"].total_steps
    assert accs[True] > clf_acc + 0.2
    assert abs(accs[True] - accs[False]) <= 3 / len(y)     # same accuracy up to a few images
    assert costs[True] < 0.8 * costs[False]                # while spending fewer generator steps


def test_bpda_gradient_flows_where_naive_gradient_does_not(trained_vae, trained_classifier, correct_digits):
    x, y = correct_digits
    x = tf.constant(x[:8])
    inc = InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(restarts=1, steps=50))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        p_bpda = inc.bpda_probabilities(x)
        p_naive = inc.naive_probabilities(x)
        l_bpda = tf.reduce_sum(tf.math.log(tf.gather(p_bpda, y[:8], batch_dims=1)))
        l_naive = tf.reduce_sum(tf.math.log(tf.gather(p_naive, y[:8], batch_dims=1)))
    g_bpda = tape.gradient(l_bpda, x)
    g_naive = tape.gradient(l_naive, x)
    np.testing.assert_allclose(p_bpda.numpy(), p_naive.numpy(), atol=1e-5)  # same forward pass
    assert g_naive is None or float(tf.reduce_max(tf.abs(g_naive))) == 0.0
    assert g_bpda is not None and float(tf.reduce_mean(tf.abs(g_bpda))) > 0.0


def test_any_keras_generator_and_jit(correct_digits):
    x, _ = correct_digits
    G = keras.Sequential([keras.Input((8,)), keras.layers.Dense(784, activation="sigmoid"),
                          keras.layers.Reshape((28, 28, 1))])
    target = G(np.random.default_rng(0).normal(size=(6, 8)).astype("float32")).numpy()
    res = project(G, target, InversionConfig(steps=400, restarts=2, learning_rate=0.05))
    assert res.l2.max() < 0.05
    jit = project(G, target, InversionConfig(steps=400, restarts=2, learning_rate=0.05, jit_compile=True))
    assert jit.l2.max() < 0.05


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 28, 28), np.float32), "shape"),
    (np.full((2, 28, 28, 1), np.nan, np.float32), "NaN"),
    (np.full((2, 28, 28, 1), 2.0, np.float32), r"\[0.0, 1.0\]"),
    (np.zeros((2, 28, 28, 1), np.uint8), "integer"),
])
def test_bad_input_raises_one_clear_error(trained_vae, bad, match):
    with pytest.raises(InputError, match=match):
        project(trained_vae.decoder, bad, InversionConfig(steps=5, restarts=1))


def test_bad_config_raises():
    with pytest.raises(InputError):
        InversionConfig(restarts=0).validate()
    with pytest.raises(ValueError):
        InversionConfig.for_dataset("imagenet")
    assert InversionConfig.for_dataset("celeba").learning_rate == 0.01
