"""The robustness-table harness: budgets, projections, intervals, resumable cells, end to end."""
import numpy as np
import pytest

from tf_inc.errors import InputError
from tf_inc.experiments.robustness_table import (
    CellStore,
    RobustnessTableConfig,
    _own_model_tag,
    block_ranges,
    config_fingerprint,
    noise_control,
    parse_budget,
    parse_shard,
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


def test_cell_directory_follows_the_shared_models_not_the_listed_defences():
    """A run over ``--defences inc`` and the full run share their cells; a defence with its own
    classifier tags its cells with that classifier's weights instead."""
    from types import SimpleNamespace

    net = lambda v: SimpleNamespace(weights=[np.full(3, v, np.float32)])  # noqa: E731
    cfg = RobustnessTableConfig(n=10)
    shared = {"classifier": net(1), "generator": net(2), "encoder": None}
    fp = config_fingerprint(cfg, shared)
    assert config_fingerprint(cfg, {**shared, "robust_classifier": net(3), "adv_classifier": net(4)}) == fp
    assert config_fingerprint(cfg, {**shared, "classifier": net(5)}) != fp        # retrained: new directory
    assert _own_model_tag("classifier", net(1)) == ""
    tags = {_own_model_tag("robust_classifier", net(v)) for v in (3, 3, 6)}
    assert len(tags) == 2 and all(t.startswith("-") and len(t) == 9 for t in tags)


def test_pgd_restarts_resume_after_a_kill_with_the_same_result(tmp_path, monkeypatch):
    """An INC PGD cell takes tens of minutes: it is checkpointed after every restart, a rerun after
    a kill runs only the restarts not yet done, and ends with what an uninterrupted run gives."""
    import tensorflow as tf

    import tf_inc.attacks as attacks
    from tf_inc.experiments.robustness_table import DefenceUnderTest, pgd_survivor_restarts

    x = np.repeat(10.0 * np.arange(8, dtype=np.float32)[:, None], 4, 1)    # row i holds 10 i
    y = np.arange(8) % 2
    calls, fail_at = [], [0]

    def fake_pgd(model_fn, xs, ys, eps, seed, **kw):     # restart r "breaks" image i when (i + r) % 4 == 0
        r = (seed - 3) // 7919
        calls.append(r)
        if fail_at[0] == len(calls):
            raise KeyboardInterrupt
        rows = np.rint(np.asarray(xs)[:, 0] / 10).astype(int)
        hit = ((rows + r) % 4 == 0)[:, None].astype(np.float32)
        return tf.constant(np.asarray(xs) + eps * hit)

    def predict(xa):                                     # wrong exactly when the image was perturbed
        rows = np.rint(xa[:, 0] / 10).astype(int)
        return np.where(np.abs(xa[:, 0] - 10 * rows) > 1e-6, 1 - y[rows], y[rows])

    monkeypatch.setattr(attacks, "pgd", fake_pgd)
    d = DefenceUnderTest("toy", predict, None, None)
    cfg = RobustnessTableConfig(n=8, pgd_restarts=4, seed=3)
    full, full_alive = pgd_survivor_restarts(d, x, y, "inf", 0.1, cfg)
    assert calls == [0, 1, 2, 3]
    assert full_alive.sum() == 0 and (full != x).any(1).all()

    store = CellStore(tmp_path, "f")
    partial = (store, ("toy", "pgd", "linf_0.1", "partial"), np.arange(8))
    calls.clear()
    fail_at[0] = 3                                       # killed during restart 2
    with pytest.raises(KeyboardInterrupt):
        pgd_survivor_restarts(d, x, y, "inf", 0.1, cfg, partial=partial)
    calls.clear()
    fail_at[0] = 0
    best, alive = pgd_survivor_restarts(d, x, y, "inf", 0.1, cfg, partial=partial)
    assert calls == [2, 3]                               # restarts 0 and 1 were not run again
    np.testing.assert_array_equal(best, full)
    np.testing.assert_array_equal(alive, full_alive)
    other = (store, partial[1], np.arange(1, 9))         # a checkpoint for other images is ignored
    calls.clear()
    pgd_survivor_restarts(d, x, y, "inf", 0.1, cfg, partial=other)
    assert calls[0] == 0


def test_blocks_and_shards():
    assert block_ranges(8, 0) == [(0, 8)] and block_ranges(8, 8) == [(0, 8)] and block_ranges(8, 20) == [(0, 8)]
    assert block_ranges(8, 3) == [(0, 3), (3, 6), (6, 8)]
    with pytest.raises(InputError):
        block_ranges(8, -1)
    assert parse_shard("") is None and parse_shard("0/1") == (0, 1) and parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/2", "1/0", "1", "a/b", "1/2/3"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)
    # the block layout and the shard are not part of the settings that key the cells
    fp = config_fingerprint(RobustnessTableConfig())
    assert config_fingerprint(RobustnessTableConfig(block_size=50, shard="1/4")) == fp
    assert config_fingerprint(RobustnessTableConfig(seed=1)) != fp
    from tf_inc.experiments.robustness_table import run

    with pytest.raises(InputError, match="--block-size"):       # refused before any model is loaded
        run(RobustnessTableConfig(shard="0/2"))


def test_shard_from_tf_config(monkeypatch):
    import json

    cluster = {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}
    for task, want in ((("chief", 0), (0, 3)), (("worker", 0), (1, 3)), (("worker", 1), (2, 3))):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": task[0], "index": task[1]}}))
        assert parse_shard("tf_config") == want
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"], "ps": ["b:1"]},
                                                "task": {"type": "ps", "index": 0}}))
    with pytest.raises(InputError, match="neither a chief nor a worker"):
        parse_shard("tf_config")
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(InputError, match="TF_CONFIG"):
        parse_shard("tf_config")
