"""JSMA (Papernot et al. 2016) on the trained classifier: it hits its target changing few pixels."""
import numpy as np
import pytest

from tf_inc.attacks import changed_pixels, jsma, target_success, targeted_ifgsm
from tf_inc.errors import InputError


@pytest.fixture(scope="module")
def attacked(trained_classifier, correct_digits):
    x, y = correct_digits
    x, y = x[:8], y[:8]
    t = (y + 5) % 10
    return x, y, t, jsma(trained_classifier, x, t, chunk=4).numpy()


def test_hits_the_target_changing_few_pixels(trained_classifier, attacked):
    x, y, t, xa = attacked
    ok = target_success(trained_classifier, xa, t)
    px = changed_pixels(x, xa)
    assert ok.mean() >= 0.75                                   # Papernot et al.: 97 % on MNIST
    max_iters = int(784 * 0.145 / 2)
    assert px.max() <= 2 * max_iters                           # never more than γ of the pixels
    assert px[ok].mean() < 0.1 * 784                           # few pixels: < 10 % of the image
    assert (px % 2 == 0).all()                                 # pixels move in pairs
    # θ = +1: every changed pixel is set to the maximum, the rest is untouched
    moved = np.abs(xa - x) > 1e-6
    np.testing.assert_allclose(xa[moved], 1.0)
    np.testing.assert_array_equal(xa[~moved], x[~moved])
    # far sparser than the notes' targeted iterative FGSM, which moves most pixels
    dense = targeted_ifgsm(trained_classifier, x, t, eps_iter=0.01, nb_iter=30).numpy()
    assert changed_pixels(x, dense).mean() > 3 * px.mean()


def test_chunking_does_not_change_the_result(trained_classifier, attacked):
    x, y, t, xa = attacked
    np.testing.assert_allclose(jsma(trained_classifier, x[:2], t[:2], chunk=1).numpy(), xa[:2], atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"theta": 0.0}, "theta"), ({"gamma": 1.5}, "gamma"), ({"on": "softmax"}, "on must be"),
    ({"chunk": 0}, "chunk"),
])
def test_bad_settings_raise(trained_classifier, correct_digits, kwargs, match):
    x, y = correct_digits
    with pytest.raises(InputError, match=match):
        jsma(trained_classifier, x[:2], (y[:2] + 1) % 10, **kwargs)


def test_bad_images_raise(trained_classifier, correct_digits):
    x, y = correct_digits
    with pytest.raises(InputError, match="NaN"):
        jsma(trained_classifier, np.where(x[:2] > 0.5, np.nan, x[:2]), y[:2])
