"""Bounds and input checks: one source, typed errors that say how to fix the input."""
import numpy as np
import pytest

from tf_inc.bounds import (
    attach_bounds,
    bounds_of,
    check_attack_inputs,
    check_budget,
    check_count,
    check_images,
    check_labels,
    dataset_bounds,
    input_shape_of,
)
from tf_inc.errors import InputError


def test_dataset_bounds_and_unknown_dataset():
    assert dataset_bounds("mnist") == (0.0, 1.0) and dataset_bounds("celeba") == (-1.0, 1.0)
    with pytest.raises(InputError, match="unknown dataset"):
        dataset_bounds("cifar")


def test_bounds_resolution_order():
    class Model:
        pass

    m = Model()
    with pytest.raises(InputError, match="carries no input bounds"):
        bounds_of(m)
    attach_bounds(m, (0, 1))
    assert bounds_of(m) == (0.0, 1.0)
    assert bounds_of(m, (-1, 1)) == (-1.0, 1.0)              # explicit wins

    class Defence:
        bounds = (-1.0, 1.0)
        image_shape = (4, 4, 1)

        def logits(self, x):
            return x

    d = Defence()
    assert bounds_of(d.logits) == (-1.0, 1.0)                # bound methods: the owner's bounds
    assert input_shape_of(d.logits) == (4, 4, 1)
    for bad in [(1, 0), (0, float("nan")), (0,), "ab"]:
        with pytest.raises(InputError):
            bounds_of(m, bad)


def test_check_images_cases():
    x = np.zeros((2, 3, 3, 1), np.float32)
    assert check_images(x, shape=(3, 3, 1), bounds=(0, 1)).dtype == np.float32
    assert check_images(x.astype(np.float64)).dtype == np.float32
    with pytest.raises(InputError, match="empty batch"):
        check_images(x[:0])
    assert check_images(x[:0], allow_empty=True).shape == (0, 3, 3, 1)
    with pytest.raises(InputError, match="integer dtype"):
        check_images(x.astype(np.uint8))
    with pytest.raises(InputError, match=r"\(N, 3, 3, 1\)"):
        check_images(x[..., 0], shape=(3, 3, 1))
    with pytest.raises(InputError, match="NaN"):
        check_images(np.full_like(x, np.inf))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        check_images(x + 2, bounds=(0, 1))


def test_labels_budgets_counts():
    assert check_labels([1, 2], 2, 3).dtype == np.int64
    for bad, match in [([1.0, 2.0], "integer"), ([1], "shape"), ([-1, 0], "non-negative"), ([0, 3], r"\[0, 2\]")]:
        with pytest.raises(InputError, match=match):
            check_labels(bad, 2, 3)
    check_budget(0.0)
    check_budget([0.1, 0.3])
    for bad in (-0.1, float("nan"), [0.1, float("inf")], [], [[0.1]], "x"):
        with pytest.raises(InputError):
            check_budget(bad)
    assert check_count(3, "n") == 3
    for bad in (0, -5, 2.5, True, "3"):
        with pytest.raises(InputError):
            check_count(bad, "n")


def test_check_attack_inputs_without_a_declared_shape():
    def fn(x):
        return x

    attach_bounds(fn, (0, 1))
    x, y, b = check_attack_inputs(fn, np.zeros((2, 5), np.float32), [0, 1])
    assert b == (0.0, 1.0) and x.shape == (2, 5)
    with pytest.raises(InputError, match="batch of images"):
        check_attack_inputs(fn, np.float32(0.5), [0])
