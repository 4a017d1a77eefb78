"""The robustness-table harness: budgets, projections, intervals, resumable cells, end to end."""
import numpy as np
import pytest

from tf_inc.errors import InputError
from tf_inc.experiments.robustness_table import (
    CellStore,
    RobustnessTableConfig,
    config_fingerprint,
    noise_control,
    parse_budget,
    project_to_budget,
    wilson,
    within_budget,
)


def test_budgets_are_named_by_norm():
    assert parse_budget("linf_0.3") == ("inf", 0.3)
    assert parse_budget("l2_4.0") == ("2", 4.0)
    for bad in ("l1_0.3", "linf_x", "linf_-1", "linf_nan", "0.3"):
        with pytest.raises(InputError):
            parse_budget(bad)


@pytest.mark.parametrize("norm, eps", [("inf", 0.1), ("2", 2.0)])
def test_projection_and_noise_stay_within_budget_and_bounds(norm, eps):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (16, 28, 28, 1)).astype(np.float32)
    far = rng.uniform(0, 1, x.shape).astype(np.float32)
    assert not within_budget(far, x, norm, eps).any()
    p = project_to_budget(far, x, norm, eps)
    assert within_budget(p, x, norm, eps).all() and p.min() >= 0 and p.max() <= 1
    noisy = noise_control(x, norm, eps, seed=0)
    assert within_budget(noisy, x, norm, eps).all()
    if norm == "2":   # noise at the budget, not far inside it (clipping to [0, 1] only shrinks it)
        size = np.sqrt(((noisy - x) ** 2).reshape(16, -1).sum(1))
        assert np.all(size > 0.5 * eps)


def test_wilson_interval():
    lo, hi = wilson(180, 200)
    assert lo < 0.9 < hi and 0.84 < lo and hi < 0.94
    assert wilson(0, 200)[0] == 0.0 and wilson(200, 200)[1] == 1.0


def test_cells_resume_and_are_keyed_by_the_settings(tmp_path):
    cfg = RobustnessTableConfig(n=10)
    store = CellStore(tmp_path, config_fingerprint(cfg))
    assert store.get("inc", "pgd", "linf_0.3") is None
    store.put("inc", "pgd", "linf_0.3", ok=np.array([True, False]), ran=np.array([True, True]))
    again = CellStore(tmp_path, config_fingerprint(RobustnessTableConfig(n=10, out="elsewhere")))
    np.testing.assert_array_equal(again.get("inc", "pgd", "linf_0.3")["ok"], [True, False])
    other = CellStore(tmp_path, config_fingerprint(RobustnessTableConfig(n=10, pgd_iter=7)))
    assert other.get("inc", "pgd", "linf_0.3") is None        # different settings never reuse a cell
