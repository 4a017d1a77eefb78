"""End-to-end: the Figure 3 script on the session's small models (conventions of docs/CONVENTIONS.md)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts.helpers import run_script

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_figure3_script_end_to_end(trained_classifier, trained_vae, isolated_models_dir, tmp_path):
    out = tmp_path / "results"
    args = ["--n", "60", "--steps", "300", "--restarts", "2", "--eps", "0", "0.1", "0.2"]
    # in this process (as run_script does for every script test): checks the last line, PNG and record
    rec, stdout = run_script("figure3_mnist_fgsm", args, isolated_models_dir, out)
    last = [l for l in stdout.strip().splitlines() if l.strip()][-3:]
    assert any(str((out / "figure3_mnist_fgsm.png").resolve()) in l for l in last)
    assert "training" not in stdout.lower()               # found the existing models by name
    assert rec["name"] == "figure3_mnist_fgsm" and rec["paper_ref"] == "Figure 3" and rec["dataset"] == "mnist"
    for key in ("config", "metrics", "paper", "runtime_s", "created_at", "git_commit"):
        assert key in rec
    m = rec["metrics"]
    assert m["eps"] == [0.0, 0.1, 0.2]
    assert len(m["classifier_acc"]) == len(m["inc_acc"]) == 3
    assert all(0.0 <= a <= 1.0 for a in m["classifier_acc"] + m["inc_acc"])
    assert rec["config"]["n"] == 60 and rec["config"]["steps"] == 300
    # the defence holds where the bare classifier falls
    assert m["classifier_acc"][0] > 0.9
    assert m["inc_acc"][2] > m["classifier_acc"][2] + 0.2
    assert (out / "figure3_mnist_fgsm_reconstructions.png").stat().st_size > 1000

    # --strategy mirrored: the same evaluation sharded through tf.distribute (one replica on this
    # CPU host; the multi-replica equality of the rows is tested in tests/training/test_distribute.py)
    out2 = tmp_path / "mirrored"
    env = dict(os.environ, TF_INC_MODELS=str(isolated_models_dir), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "scripts/figure3_mnist_fgsm.py", *args, "--out", str(out2),
                           "--strategy", "mirrored"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rec2 = json.loads((out2 / "figure3_mnist_fgsm.json").read_text())
    assert rec2["config"]["strategy"] == "mirrored" and rec["config"]["strategy"] == "default"
    m2 = rec2["metrics"]
    assert m2["inc_acc"] == m["inc_acc"] and m2["classifier_acc"] == m["classifier_acc"]
    assert m2["inc_recon_l2"] == pytest.approx(m["inc_recon_l2"], rel=1e-4)
