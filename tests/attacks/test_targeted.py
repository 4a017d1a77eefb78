"""Targeted iterative FGSM (the notes' 2 -> 6 attack): it reaches its target on the trained classifier."""
import numpy as np
import pytest

from tf_inc.attacks import changed_pixels, random_targets, target_success, targeted_ifgsm
from tf_inc.attacks.targeted import check_targets
from tf_inc.errors import InputError


@pytest.fixture(scope="module")
def batch(correct_digits):
    x, y = correct_digits
    return x[:24], y[:24]


def test_reaches_the_target_and_stays_in_its_budget(trained_classifier, batch):
    x, y = batch
    t = (y + 3) % 10
    xa, steps = targeted_ifgsm(trained_classifier, x, t, eps_iter=0.01, nb_iter=30, return_steps=True)
    xa = xa.numpy()
    ok = target_success(trained_classifier, xa, t)
    assert ok.mean() >= 0.9                                       # the model now reads the target
    assert (trained_classifier(x).numpy().argmax(1) == y).all()   # ...and read the truth before
    assert np.abs(xa - x).max() <= 30 * 0.01 + 1e-6 and xa.min() >= 0 and xa.max() <= 1
    assert (steps == 30).all()                                    # no early stop: the notes' fixed loop
    np.testing.assert_array_equal(x, batch[0])                    # input untouched


def test_early_stop_freezes_each_image_at_its_target(trained_classifier, batch):
    x, y = batch
    t = (y + 3) % 10
    full = targeted_ifgsm(trained_classifier, x, t, eps_iter=0.01, nb_iter=30).numpy()
    early, steps = targeted_ifgsm(trained_classifier, x, t, eps_iter=0.01, nb_iter=30, early_stop=True,
                                  return_steps=True)
    early = early.numpy()
    ok = target_success(trained_classifier, early, t)
    assert ok.mean() >= 0.9
    assert steps[ok].max() < 30 and steps.min() >= 1                 # stopped when reached, not before
    # fewer steps, so a smaller perturbation than the fixed-length run
    assert np.abs(early - x).reshape(len(x), -1).max(1).mean() < np.abs(full - x).reshape(len(x), -1).max(1).mean()
    # it returns the first iterate that reads the target: one step fewer does not, the same number does
    i = int(np.where(ok & (steps > 1))[0][0])
    s = int(steps[i])
    before = targeted_ifgsm(trained_classifier, x[i:i + 1], t[i:i + 1], eps_iter=0.01, nb_iter=s - 1).numpy()
    at = targeted_ifgsm(trained_classifier, x[i:i + 1], t[i:i + 1], eps_iter=0.01, nb_iter=s).numpy()
    assert not target_success(trained_classifier, before, t[i:i + 1])[0]
    np.testing.assert_allclose(at[0], early[i], atol=1e-5)


def test_helpers():
    x = np.zeros((2, 28, 28, 1), np.float32)
    xa = x.copy()
    xa[0, 0, :3] = 0.5
    np.testing.assert_array_equal(changed_pixels(x, xa), [3, 0])
    y = np.arange(20) % 10
    t = random_targets(y, seed=1)
    assert (t != y).all() and t.min() >= 0 and t.max() <= 9
    np.testing.assert_array_equal(t, random_targets(y, seed=1))
    with pytest.raises(InputError, match="target != true label"):
        check_targets(y, y)
    with pytest.raises(InputError, match="integer"):
        check_targets(np.ones(3), None)


def test_bad_input_raises(trained_classifier, batch):
    x, y = batch
    with pytest.raises(InputError, match="integer dtype"):
        targeted_ifgsm(trained_classifier, (x * 255).astype(np.uint8), y)
    with pytest.raises(InputError, match=r"labels must lie in \[0, 9\]"):
        targeted_ifgsm(trained_classifier, x, np.full(len(x), 12))
    with pytest.raises(InputError, match="nb_iter"):
        targeted_ifgsm(trained_classifier, x, y, nb_iter=0)
