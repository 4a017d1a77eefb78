"""Invert-and-Classify on a trained MNIST VAE and classifier (session fixtures)."""

import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import fgsm
from tf_inc.defences.inc import InvertAndClassify
from tf_inc.manifold.inversion import InversionConfig

FAST = dict(steps=300, patience=50)


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


@pytest.mark.parametrize("bad, match", [
    (lambda x: x * 255.0, r"must lie in \[0.0, 1.0\]"),
    (lambda x: (x * 255).astype(np.uint8), "integer dtype"),
    (lambda x: np.where(x > 0.5, np.nan, x), "NaN"),
    (lambda x: x[..., 0], r"expected shape \(N, 28, 28, 1\)"),
    (lambda x: x[:0], "empty batch"),
])
def test_inc_rejects_bad_input_with_the_typed_error(trained_vae, trained_classifier, correct_digits, bad, match):
    from tf_inc.errors import InputError

    x, _ = correct_digits
    inc = InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(steps=5, restarts=1))
    assert inc.bounds == (0.0, 1.0) and inc.image_shape == (28, 28, 1)
    with pytest.raises(InputError, match=match):
        inc.predict(bad(x[:4]))


def test_inc_settings_are_checked(trained_vae, trained_classifier):
    from tf_inc.errors import InputError

    with pytest.raises(InputError, match="eta must be > 0"):
        InvertAndClassify(trained_vae.decoder, trained_classifier, eta=float("nan"))
    with pytest.raises(InputError, match="invalid inversion config"):
        InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(restarts=0))


@pytest.mark.parametrize("warm", [True, False])
def test_batched_eot_bpda_equals_averaging_the_attack_views(trained_vae, trained_classifier, correct_digits, warm):
    """INC's batched BPDA+EOT (all draws in one projection, a shared encoder restart) is the same
    model function as the EOT of its attack views: values and input gradients."""
    from tf_inc.attacks import EOT, eot_bpda_model
    from tf_inc.attacks.bpda import BatchedEOT

    x, y = correct_digits
    x = tf.constant(x[:12])
    inc = InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(steps=50, restarts=2),
                            encoder=trained_vae.encoder)
    acfg = InversionConfig(steps=12, restarts=3, warm_start=warm, lr_schedule="cosine", early_stop=False)
    views = EOT([inc.attack_view(40 + k, acfg).bpda_logits for k in range(4)], bounds=inc.bounds)
    batched = eot_bpda_model(inc, 4, 40, acfg)
    assert isinstance(batched, BatchedEOT) and batched.bounds == inc.bounds and batched.num_classes == 10

    def value_and_grad(f):
        with tf.GradientTape() as tape:
            tape.watch(x)
            lp = f(x)
            loss = tf.reduce_sum(tf.gather(lp, (y[:12] + 1) % 10, batch_dims=1))   # a wrong class
        return lp.numpy(), tape.gradient(loss, x).numpy()

    (a, ga), (b, gb) = value_and_grad(views), value_and_grad(batched)
    np.testing.assert_allclose(b, a, atol=1e-4)
    np.testing.assert_allclose(gb, ga, atol=1e-5)
    assert np.abs(ga).max() > 1e-3                      # a real gradient, not zeros on both sides
    if not warm:     # random starts only: the draws differ (else EOT would average one draw K times)
        assert not np.allclose(eot_bpda_model(inc, 1, 40, acfg)(x).numpy(), b, atol=1e-4)
