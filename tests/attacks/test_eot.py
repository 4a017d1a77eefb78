"""EOT as a wrapper around a randomised model: averages log-probabilities, keeps bounds and shape."""
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import EOT, fgsm
from tf_inc.bounds import attach_bounds
from tf_inc.errors import InputError


def _draw(shift):
    def logits(x):
        flat = tf.reshape(x, [tf.shape(x)[0], -1])
        return tf.stack([tf.reduce_mean(flat, 1) + shift, -tf.reduce_mean(flat, 1)], axis=1)

    return attach_bounds(logits, (0.0, 1.0))


def test_eot_is_the_mean_log_probability_of_its_draws():
    x = np.random.default_rng(0).uniform(0, 1, (5, 3, 3, 1)).astype(np.float32)
    draws = [_draw(s) for s in (0.0, 1.0, -2.0)]
    eot = EOT(draws)
    want = np.mean([tf.nn.log_softmax(d(x)).numpy() for d in draws], axis=0)
    np.testing.assert_allclose(eot(x).numpy(), want, rtol=1e-6)
    assert eot.bounds == (0.0, 1.0)
    # attacks run on it and check their input against its bounds
    xa = fgsm(eot, x, np.zeros(5, np.int64), 0.1).numpy()
    assert np.abs(xa - x).max() <= 0.1 + 1e-6
    with pytest.raises(InputError):
        fgsm(eot, x * 3, np.zeros(5, np.int64), 0.1)


def test_eot_needs_draws_and_bounds():
    with pytest.raises(InputError, match="at least one"):
        EOT([])
    with pytest.raises(InputError, match="carries no input bounds"):
        EOT([lambda x: x])
    assert EOT.over_seeds(lambda s: _draw(float(s)), [0, 1]).draws[1](np.ones((1, 3, 3, 1), np.float32)).shape == (1, 2)
