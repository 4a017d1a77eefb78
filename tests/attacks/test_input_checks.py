"""Every attack checks its input when it starts and raises the typed InputError.

The checks run before anything is traced, so one bad call can neither crash the
process nor widen a compiled graph that a later valid call then trips over.
An untrained classifier is enough here: the checks do not depend on the weights.
"""
import keras
import numpy as np
import pytest

from tf_inc import attacks
from tf_inc.errors import InputError
from tf_inc.models import mnist_classifier

ATTACKS = {
    "fgsm": lambda m, x, y, **kw: attacks.fgsm(m, x, y, kw.get("eps", 0.1), **kw.get("extra", {})),
    "fgsm_multi_eps": lambda m, x, y, **kw: attacks.fgsm_multi_eps(m, x, y, [kw.get("eps", 0.1)],
                                                                   **kw.get("extra", {})),
    "pgd": lambda m, x, y, **kw: attacks.pgd(m, x, y, kw.get("eps", 0.1), nb_iter=2, **kw.get("extra", {})),
    "pgd_l2": lambda m, x, y, **kw: attacks.pgd(m, x, y, kw.get("eps", 1.0), nb_iter=2, norm="2",
                                                **kw.get("extra", {})),
    "bim": lambda m, x, y, **kw: attacks.bim(m, x, y, kw.get("eps", 0.1), nb_iter=2, **kw.get("extra", {})),
    "cw_l2": lambda m, x, y, **kw: attacks.cw_l2(m, x, y, binary_search_steps=1, max_iterations=2,
                                                 **kw.get("extra", {})),
    "cw_linf": lambda m, x, y, **kw: attacks.cw_linf(m, x, y, max_iterations=2, outer_steps=1,
                                                     **kw.get("extra", {})),
    "cw_l0": lambda m, x, y, **kw: attacks.cw_l0(m, x, y, max_iterations=2, outer_steps=1,
                                                 **kw.get("extra", {})),
}
BUDGETED = ("fgsm", "fgsm_multi_eps", "pgd", "pgd_l2", "bim")


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return mnist_classifier()


def _good(n=4):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (n, 28, 28, 1)).astype(np.float32), np.arange(n) % 10


BAD_IMAGES = {
    "nan": (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 3, np.nan, x), "NaN"),
    "inf": (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 3, np.inf, x), "NaN or infinite"),
    "0-255 floats": (lambda x: x * 255.0, r"must lie in \[0.0, 1.0\]"),
    "uint8": (lambda x: (x * 255).astype(np.uint8), "integer dtype"),
    "missing channel axis": (lambda x: x[..., 0], r"expected shape \(N, 28, 28, 1\)"),
    "empty batch": (lambda x: x[:0], "empty batch"),
    "strings": (lambda x: np.array([["a"]]), "numeric"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_images_raise_input_error(model, attack, case):
    x, y = _good()
    bad, match = BAD_IMAGES[case]
    xb = bad(x)
    yb = y[: len(xb)] if case == "empty batch" else y
    with pytest.raises(InputError, match=match):
        ATTACKS[attack](model, xb, yb)


BAD_LABELS = {
    "float labels": (lambda y: y.astype(np.float32), "integer class labels"),
    "wrong length": (lambda y: y[:-1], r"expected shape \(4,\)"),
    "negative": (lambda y: y - 5, "non-negative"),
    "out of range": (lambda y: y + 10, r"labels must lie in \[0, 9\]"),
    "2-d": (lambda y: y[:, None], r"expected shape \(4,\)"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("case", sorted(BAD_LABELS))
def test_bad_labels_raise_input_error(model, attack, case):
    x, y = _good()
    bad, match = BAD_LABELS[case]
    with pytest.raises(InputError, match=match):
        ATTACKS[attack](model, x, bad(y))


@pytest.mark.parametrize("attack", BUDGETED)
@pytest.mark.parametrize("eps", [-0.1, float("nan"), float("inf")])
def test_bad_budgets_raise_input_error(model, attack, eps):
    x, y = _good()
    with pytest.raises(InputError, match="finite and >= 0"):
        ATTACKS[attack](model, x, y, eps=eps)


@pytest.mark.parametrize("kw, match", [
    (dict(nb_iter=0), "nb_iter: must be >= 1"),
    (dict(nb_iter=-5), "nb_iter: must be >= 1"),
    (dict(restarts=0), "restarts: must be >= 1"),
    (dict(norm="1"), "norm must be one of"),
    (dict(eps_iter=-1.0), "finite and >= 0"),
])
def test_bad_pgd_settings_raise_input_error(model, kw, match):
    x, y = _good()
    with pytest.raises(InputError, match=match):
        attacks.pgd(model, x, y, 0.1, **{"nb_iter": 2, **kw})


def test_cw_settings_are_checked(model):
    x, y = _good()
    with pytest.raises(InputError, match="max_iterations"):
        attacks.cw_l2(model, x, y, max_iterations=0)
    with pytest.raises(InputError, match="confidence"):
        attacks.cw_l2(model, x, y, confidence=-1.0, max_iterations=2)


def test_bounds_travel_with_the_model_and_are_required_otherwise(model):
    x, y = _good()
    assert model.bounds == (0.0, 1.0)
    bare = keras.Model(model.inputs, model.outputs)            # a model that carries no bounds
    with pytest.raises(InputError, match="carries no input bounds"):
        attacks.fgsm(bare, x, y, 0.1)
    xa = attacks.fgsm(bare, x, y, 0.1, bounds=(0.0, 1.0)).numpy()   # explicit bounds work
    assert xa.min() >= 0.0 and xa.max() <= 1.0
    with pytest.raises(InputError, match="lo < hi"):
        attacks.fgsm(bare, x, y, 0.1, bounds=(1.0, 0.0))
    # CelebA-range images against an MNIST model: out of its bounds
    with pytest.raises(InputError, match=r"must lie in \[0.0, 1.0\]"):
        attacks.pgd(model, x * 2 - 1, y, 0.1, nb_iter=2)


def test_a_bad_call_does_not_break_the_next_valid_one(model):
    """Regression: a (N, 28, 28) call used to widen pgd's trace and break later valid calls."""
    x, y = _good()
    first = attacks.pgd(model, x, y, 0.1, nb_iter=3, seed=1).numpy()
    for bad in (x[..., 0], x * 255, np.full_like(x, np.nan), x[:0]):
        with pytest.raises(InputError):
            attacks.pgd(model, bad, y[: len(bad)], 0.1, nb_iter=3, seed=1)
    again = attacks.pgd(model, x, y, 0.1, nb_iter=3, seed=1).numpy()
    np.testing.assert_array_equal(first, again)


def test_float64_images_are_accepted_as_float32(model):
    x, y = _good()
    a = attacks.fgsm(model, x.astype(np.float64), y, 0.1).numpy()
    b = attacks.fgsm(model, x, y, 0.1).numpy()
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_batch_of_one(model):
    x, y = _good(1)
    xa = attacks.pgd(model, x, y, 0.1, nb_iter=2).numpy()
    assert xa.shape == (1, 28, 28, 1) and np.abs(xa - x).max() <= 0.1 + 1e-6
