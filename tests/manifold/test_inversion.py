"""The INC engine on a trained MNIST VAE (session fixtures)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.errors import InputError
from tf_inc.manifold.inversion import InversionConfig, Projector, project

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


def test_any_keras_generator_and_jit(correct_digits):
    x, _ = correct_digits
    G = keras.Sequential([keras.Input((8,)), keras.layers.Dense(784, activation="sigmoid"),
                          keras.layers.Reshape((28, 28, 1))])
    target = G(np.random.default_rng(0).normal(size=(6, 8)).astype("float32")).numpy()
    with pytest.raises(InputError, match="carries no input bounds"):     # no silent (0, 1) default
        project(G, target, InversionConfig(steps=5, restarts=1))
    res = project(G, target, InversionConfig(steps=400, restarts=2, learning_rate=0.05), bounds=(0, 1))
    assert res.l2.max() < 0.05
    jit = project(G, target, InversionConfig(steps=400, restarts=2, learning_rate=0.05, jit_compile=True),
                  bounds=(0, 1))
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


def test_presets_override_what_they_name_and_nothing_else(trained_vae, correct_digits):
    """``paper`` is Alg. 1's defaults; ``fast`` fixes its schedule over any overrides, keeps the rest,
    and costs fewer image-steps than ``paper`` for a close reconstruction (the Figure 3-scale
    accuracy comparison lives in bench/bench_inversion.py)."""
    from tf_inc.errors import InputError

    assert InversionConfig.preset("paper", restarts=2) == InversionConfig(restarts=2)
    fast = InversionConfig.preset("fast", steps=1000, restarts=2, early_stop=False)
    assert (fast.steps, fast.lr_schedule, fast.early_stop, fast.patience, fast.restarts) == (400, "cosine", True,
                                                                                             50, 2)
    with pytest.raises(InputError, match="unknown inversion preset 'quick'; choose one of paper, fast"):
        InversionConfig.preset("quick")
    x, _ = correct_digits
    x = x[:16]
    paper = project(trained_vae.decoder, x, InversionConfig.preset("paper", restarts=2))
    quick = project(trained_vae.decoder, x, InversionConfig.preset("fast", restarts=2))
    assert quick.total_steps < 0.6 * paper.total_steps
    # measured on the shipped VAE: 2.15 vs 1.87 (15 % farther; accuracy is what the preset keeps)
    assert quick.l2.mean() < 1.25 * paper.l2.mean()


def test_sharded_inversion_needs_content_seeding(trained_vae, correct_digits):
    x, _ = correct_digits
    proj = Projector(trained_vae.decoder, InversionConfig(steps=5, restarts=1, seeding="position"))
    with pytest.raises(InputError, match="strategy=: sharded inversions need seeding='content'.*got 'position'"):
        proj(x[:2], strategy=tf.distribute.get_strategy())
