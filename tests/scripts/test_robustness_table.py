"""The robustness table end to end on the session's small models: keys, worst case, checks, resume."""
import json

import numpy as np
import pytest

from tests.scripts.helpers import run_script

pytestmark = pytest.mark.slow

TINY = ["--n", "8", "--defences", "none", "inc", "--attacks", "transfer", "fgsm", "pgd", "latent", "unrolled",
        "--budgets", "linf_0.1", "linf_0.3", "l2_4.0", "--pgd-iter", "4", "--pgd-restarts", "1",
        "--eot-samples", "2", "--attack-inversion-steps", "5", "--inc-steps", "60", "--inc-restarts", "1",
        "--latent-steps", "30", "--latent-search-steps", "2", "--unrolled-steps", "3", "--cw-iterations", "10",
        "--saturation", "1", "2", "4", "--saturation-n", "4", "--check-n", "4"]


@pytest.fixture(scope="module")
def models(trained_classifier, trained_vae, isolated_models_dir):
    return isolated_models_dir


def test_robustness_table_end_to_end_and_resume(models, tmp_path):
    args = TINY + ["--run-dir", str(tmp_path / "cells")]
    rec, _ = run_script("robustness_table", args, models, tmp_path / "a")
    m = rec["metrics"]
    assert m["n"] == 8
    for d in ("none", "inc"):
        for b in ("linf_0.1", "linf_0.3", "l2_4.0"):
            worst = m[f"{d}/worst/{b}"]
            lo, hi = m[f"{d}/worst/{b}/ci95"]
            assert lo <= worst <= hi
            ran = [m[k] for k in m if k.startswith(f"{d}/") and k.endswith(f"/{b}") and "/worst/" not in k
                   and "/noise/" not in k and "/standalone/" not in k and not k.startswith("seconds/")]
            assert ran and all(worst <= a + 1e-9 for a in ran)          # worst case ≤ every attack
            assert worst <= m[f"{d}/clean"]
        assert f"{d}/noise/linf_0.3" in m and f"checks/{d}/unbounded_to_chance" in m
        for c in ("iterative_ge_single_step", "whitebox_ge_transfer"):       # standalone runs, stored
            assert isinstance(m[f"checks/{d}/{c}"], bool)
        assert {f"{d}/standalone/{a}/linf_0.3" for a in ("fgsm", "pgd", "transfer")} <= set(m)
    assert m["checks/none/iterative_ge_single_step"]          # PGD beats FGSM on the bare classifier
    assert "inc/unrolled/linf_0.3" in m and "none/unrolled/linf_0.3" not in m     # INC-only attack
    assert m["none/transfer/linf_0.3"] <= 0.25                # PGD on the bare classifier breaks it
    assert m["none/pgd/linf_0.3"] <= m["none/transfer/linf_0.3"]           # cumulative: never goes up
    assert len(m["saturation/inc_acc"]) == 3
    # INC runs BPDA+EOT PGD (its most expensive attack) last; the bare classifier in the listed order
    assert m["order/inc"] == ["transfer", "fgsm", "latent", "unrolled", "pgd"]
    assert m["order/none"] == ["transfer", "fgsm", "pgd", "latent"]
    # the table says which INC it attacked: the deployed, deterministic (content-keyed) one
    assert m["mode/inc"].startswith("deterministic: restarts keyed by (content")
    assert m["mode/none"].startswith("deterministic")
    # the latent candidates are made once per (classifier, budget) and judged by both defences
    cells = list((tmp_path / "cells").glob("*/candidates__latent__classifier__*.npz"))
    assert len(cells) == 3
    assert all(isinstance(v, bool) for k, v in m.items() if k.startswith("checks/"))
    # a second run resumes every cell from the checkpoints: same numbers
    rec2, _ = run_script("robustness_table", args, models, tmp_path / "b")
    same = {k: v for k, v in rec2["metrics"].items() if not k.startswith("seconds/")}
    assert same == {k: v for k, v in m.items() if not k.startswith("seconds/")}
    assert rec2["runtime_s"] < rec["runtime_s"]


def test_sharded_blocks_merge_to_the_unsharded_table(models, tmp_path):
    """--shard I/K computes its blocks only; the merge run equals one process with the same blocks."""
    args = ["--n", "8", "--block-size", "3", "--defences", "none", "--attacks", "transfer", "fgsm", "pgd", "latent",
            "--budgets", "linf_0.3", "l2_4.0", "--pgd-iter", "4", "--pgd-restarts", "2", "--latent-steps", "20",
            "--latent-search-steps", "2", "--check-n", "4"]
    one, _ = run_script("robustness_table", args + ["--run-dir", str(tmp_path / "one")], models, tmp_path / "a")
    shards = tmp_path / "shards"
    for i in (1, 0):                               # any order; shard 1 of 2 takes block 2 (images 6, 7)
        _, stdout = run_script("robustness_table", args + ["--run-dir", str(shards), "--shard", f"{i}/2"], models,
                               tmp_path / f"s{i}", expect_table=False)
        assert f"shard {i}/2: blocks {[[0, 1], [2]][i]} stored" in stdout
        assert stdout.strip().splitlines()[-1].endswith(f"shard_{i}_of_2.json")
        assert not (tmp_path / f"s{i}" / "robustness_table.json").exists()     # a shard writes no table
    [fp] = [p for p in shards.iterdir() if p.is_dir()]
    assert sorted(p.name for p in (fp / "blocks3").iterdir()) == ["b00000", "b00001", "b00002"]
    # PGD's restart checkpoints (2 restarts here) go once their cell is stored
    assert list(fp.rglob("none__pgd__*.npz")) and not list(fp.rglob("*__partial.npz"))
    # --status reads the finished cells only; an attack is finished when every block has it
    (fp / "blocks3" / "b00001" / "none__latent__l2_4.0.npz").unlink()
    _, stdout = run_script("robustness_table", args + ["--run-dir", str(shards), "--status", "true"], models,
                           tmp_path / "st", expect_table=False)
    status = json.loads((fp / "status.json").read_text())
    assert status["rows_running"] == 1 and "1 of 2 defence x budget rows still running" in stdout
    row = status["rows"]["none/l2_4.0"]
    assert row["next"] == "latent" and row["done"] == ["clean", "transfer", "fgsm", "pgd"] and row["n"] == 8
    pgd_ok = sum(int(np.load(c)["ok"].sum()) for c in (fp / "blocks3").glob("b*/none__pgd__l2_4.0.npz"))
    assert row["correct"] == pgd_ok
    assert status["rows"]["none/linf_0.3"]["next"] is None
    assert not (tmp_path / "st" / "robustness_table.json").exists()     # nothing computed, no table
    assert (fp / "none__standalone__linf_0.3.npz").exists()          # shard 0 stored the checks' cells
    merged, stdout = run_script("robustness_table", args + ["--run-dir", str(shards)], models, tmp_path / "m")
    assert merged["runtime_s"] < one["runtime_s"]                      # nothing left to compute
    drop = lambda m: {k: v for k, v in m.items() if not k.startswith("seconds/")}  # noqa: E731
    assert drop(merged["metrics"]) == drop(one["metrics"])
    assert one["metrics"]["block_size"] == 3 and one["metrics"]["n"] == 8
    for cell in (fp / "blocks3").glob("b*/none__pgd__l2_4.0.npz"):       # per-image rows, block by block
        b = cell.parent.name
        np.testing.assert_array_equal(np.load(cell)["ok"], np.load(tmp_path / "one" / fp.name / "blocks3" / b /
                                                                     "none__pgd__l2_4.0.npz")["ok"])
