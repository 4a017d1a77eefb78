"""The unrolled-inversion gradient estimator on the trained MNIST VAE and classifier."""
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import UnrolledInversion, pgd
from tf_inc.defences.inc import InvertAndClassify
from tf_inc.errors import InputError
from tf_inc.manifold.inversion import InversionConfig

K = 20


@pytest.fixture(scope="module")
def digits(correct_digits):
    x, y = correct_digits
    return x[:16], y[:16]


def _inc(trained_vae, trained_classifier, restarts=1, seed=0, seeding=None, encoder=None):
    """INC with K steps and no early stopping (seeding None: InversionConfig's default, as UnrolledInversion)."""
    cfg = InversionConfig(steps=K, restarts=restarts, early_stop=False, warm_start=encoder is not None,
                          **({} if seeding is None else {"seeding": seeding}))
    return InvertAndClassify(trained_vae.decoder, trained_classifier, cfg, seed=seed, encoder=encoder)


@pytest.mark.parametrize("seeding", ["position", "content"])
def test_gradient_wrt_x_is_finite_and_nonzero(trained_vae, trained_classifier, digits, seeding):
    x, y = digits
    model = UnrolledInversion(trained_vae.decoder, trained_classifier, steps=K, seeding=seeding)
    assert model.bounds == (0.0, 1.0) and model.image_shape == (28, 28, 1)
    xt = tf.constant(x[:8])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y[:8], logits=model(xt))
    g = tape.gradient(loss, xt).numpy()
    assert np.all(np.isfinite(g))
    assert np.all(np.linalg.norm(g.reshape(8, -1), axis=1) > 0)         # every image gets a gradient
    # through the reconstruction too
    with tf.GradientTape() as tape:
        tape.watch(xt)
        r = tf.reduce_sum(model.reconstruct(xt))
    gr = tape.gradient(r, xt).numpy()
    assert np.all(np.isfinite(gr)) and np.abs(gr).max() > 0


@pytest.mark.parametrize("restarts, seed, seeding, warm", [(1, 0, "position", False), (1, 5, "position", False),
                                                           (2, 3, "position", False), (2, 0, "content", False),
                                                           (2, 0, "position", True)])
def test_forward_equals_inc_with_the_same_steps_and_start(trained_vae, trained_classifier, digits, restarts, seed,
                                                          seeding, warm):
    x, _ = digits
    encoder = trained_vae.encoder if warm else None
    model = UnrolledInversion(trained_vae.decoder, trained_classifier, steps=K, restarts=restarts, seed=seed,
                              seeding=seeding, encoder=encoder)
    inc = _inc(trained_vae, trained_classifier, restarts, seed, seeding, encoder)
    pred = inc.predict(x)
    np.testing.assert_allclose(model.reconstruct(x).numpy(), pred["result"].x_hat, atol=1e-4)
    probs = tf.nn.softmax(model(x)).numpy()
    np.testing.assert_allclose(probs, pred["probabilities"], atol=1e-4)
    assert np.array_equal(probs.argmax(1), pred["label"])


def test_pgd_through_the_unroll_lowers_inc_accuracy(trained_vae, trained_classifier, digits, capsys):
    """Encoder start: INC(20 steps) is a good projection (every digit right) and PGD through the
    unroll breaks most of it. From a random start 20 steps are a poor projection (the shipped VAE:
    38 % clean) whose output hardly depends on x, so its unroll is no useful gradient: the unrolled
    attack (and the robustness table) warm-start from the encoder."""
    x, y = digits
    model = UnrolledInversion(trained_vae.decoder, trained_classifier, steps=K, encoder=trained_vae.encoder)
    inc = _inc(trained_vae, trained_classifier, encoder=trained_vae.encoder)
    xa = pgd(model, x, y, 0.3, nb_iter=5, eps_iter=0.1).numpy()
    assert np.abs(xa - x).max() <= 0.3 + 1e-6 and xa.min() >= 0 and xa.max() <= 1
    clean = float((inc.predict(x)["label"] == y).mean())
    adv = float((inc.predict(xa)["label"] == y).mean())
    cold = UnrolledInversion(trained_vae.decoder, trained_classifier, steps=K)
    cold_clean = float((cold(x).numpy().argmax(1) == y).mean())
    with capsys.disabled():
        print(f"\nINC(steps={K}, encoder start) accuracy on 16 digits: clean {clean:.3f}, PGD-0.3 through the "
              f"unroll {adv:.3f}; random-start unroll clean {cold_clean:.3f}")
    assert adv <= clean - 0.5
    assert cold_clean < clean - 0.3


@pytest.mark.parametrize("kw, match", [
    (dict(steps=0), "steps"),
    (dict(steps=100), "at most 50"),
    (dict(steps=3.0), "steps"),
    (dict(restarts=0), "restarts"),
    (dict(learning_rate=-0.1), "learning_rate"),
    (dict(learning_rate=float("nan")), "learning_rate"),
])
def test_bad_settings_raise_input_error(trained_vae, trained_classifier, kw, match):
    with pytest.raises(InputError, match=match):
        UnrolledInversion(trained_vae.decoder, trained_classifier, **kw)


def test_attacks_check_their_input_through_it(trained_vae, trained_classifier, digits):
    x, y = digits
    model = UnrolledInversion(trained_vae.decoder, trained_classifier, steps=2)
    with pytest.raises(InputError, match="must lie in"):
        pgd(model, x[:2] * 255.0, y[:2], 0.3, nb_iter=1)
    with pytest.raises(InputError, match="expected shape"):
        pgd(model, x[:2, :, :, 0], y[:2], 0.3, nb_iter=1)
