"""Divergences, the distance convention and the pair metrics."""
import numpy as np
import pytest

from tf_inc.manifold.minmax import MinMaxConfig, kl, pair_metrics


def test_budget_convention():
    cfg = MinMaxConfig()
    assert cfg.eta2(64 * 64 * 3) == pytest.approx(2.46, abs=0.01)   # the paper's CelebA η²
    assert cfg.eta2(784) == pytest.approx(0.1568)


def test_pair_metrics_by_hand():
    p = np.array([[0.9, 0.1, 0.0], [0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.4, 0.35, 0.25]])
    q = np.array([[0.1, 0.9, 0.0], [0.5, 0.5, 0.0], [0.3, 0.7, 0.0], [0.35, 0.4, 0.25]])
    m = pair_metrics(p, q, np.array([True, True, False, True]))
    assert m["valid_frac"] == pytest.approx(3 / 4)
    assert m["differ_frac"] == pytest.approx(2 / 3)              # pairs 0 and 3 flip
    assert m["confident_differ_frac"] == pytest.approx(1 / 3)    # pair 3 flips between uncertain outputs
    assert m["mean_kl"] == pytest.approx((0.8 * np.log(9) + 0.0 + 0.05 * np.log(8 / 7)) / 3, rel=1e-5)
    assert kl(p, p).max() == pytest.approx(0.0, abs=1e-9)
