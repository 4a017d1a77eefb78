"""Few-pixel differential-evolution attack (Su et al.): it finds some few-pixel attacks on the
trained classifier, reports them truthfully, and both back-ends write candidates the same way."""
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import pixel_attack
from tf_inc.attacks.one_pixel import _apply_np, _apply_tf
from tf_inc.errors import InputError


@pytest.fixture(scope="module")
def weakest(trained_classifier, correct_digits):
    """The 4 correctly classified digits the classifier is least sure of (the easiest to flip)."""
    x, y = correct_digits
    p = tf.nn.softmax(trained_classifier(x)).numpy()[np.arange(len(y)), y]
    idx = np.argsort(p)[:4]
    return x[idx], y[idx]


def _check(model, x, y, r, k):
    pred = model(r.x_adv).numpy().argmax(1)
    np.testing.assert_array_equal(pred != y, r.success)            # success is what the model says
    diff = np.abs(r.x_adv - x).reshape(len(x), -1) > 0
    assert (diff.sum(1) <= k).all()                                # at most k pixels written
    assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1


def test_de_finds_some_few_pixel_attacks(trained_classifier, weakest):
    x, y = weakest
    r = pixel_attack(trained_classifier, x, y, pixels=5, popsize=100, maxiter=20, seed=0)
    _check(trained_classifier, x, y, r, 5)
    assert r.success.sum() >= 1                                    # some 5-pixel attacks exist and DE finds them
    assert (r.queries[r.success] < 100 * 21).all()                 # ...and stops as soon as it does
    assert (r.generations[~r.success] == 20).all()


def test_scipy_backend_agrees_on_the_contract(trained_classifier, weakest):
    x, y = weakest
    r = pixel_attack(trained_classifier, x[:1], y[:1], pixels=3, popsize=60, maxiter=3, backend="scipy", seed=0)
    _check(trained_classifier, x[:1], y[:1], r, 3)
    assert r.queries[0] <= 60 * 4 and r.candidate.shape == (1, 3, 3)


def test_candidate_writing_is_the_same_in_both_backends():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2, 28, 28, 1)).astype(np.float32)
    cand = np.concatenate([rng.uniform(0, 28, (2, 6, 3, 2)), rng.uniform(0, 1, (2, 6, 3, 1))], -1)
    cand[0, 0, 1, :2] = cand[0, 0, 0, :2]             # two writes to one pixel: the later one wins
    cand = cand.reshape(2, 6, 9).astype(np.float32)
    a = _apply_tf(tf.constant(x), tf.constant(cand), 3, 1).numpy()
    b = np.concatenate([_apply_np(x[i], cand[i], 1) for i in range(2)])
    np.testing.assert_array_equal(a, b)
    r, c = int(cand[0, 0, 0]), int(cand[0, 0, 1])
    assert b[0, r, c, 0] == cand[0, 0, 5]


@pytest.mark.parametrize("kwargs, match", [
    ({"backend": "gpu"}, "backend"), ({"pixels": 0}, "pixels"), ({"popsize": 2}, "popsize"),
    ({"mutation": 3.0}, "mutation"), ({"recombination": 1.5}, "recombination"),
])
def test_bad_settings_raise(trained_classifier, weakest, kwargs, match):
    x, y = weakest
    with pytest.raises(InputError, match=match):
        pixel_attack(trained_classifier, x, y, **kwargs)


def test_bad_images_raise(trained_classifier, weakest):
    x, y = weakest
    with pytest.raises(InputError, match="integer dtype"):
        pixel_attack(trained_classifier, (x * 255).astype(np.uint8), y)
