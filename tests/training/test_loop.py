"""Resumable training: a run killed mid-way resumes without losing completed rounds."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.scripts.helpers import child_env

REPO = Path(__file__).resolve().parent.parent


def _rounds(run_dir):
    p = run_dir / "metrics.jsonl"
    if not p.exists():
        return []
    return [json.loads(l)["round"] for l in p.read_text().splitlines() if l.strip()]


def test_kill_and_resume_loses_no_completed_epoch(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "tf_inc.training", "vae", "--epochs", "6", "--n-train", "3000",
           "--patience", "100", "--run-dir", str(run_dir), "--out", str(tmp_path / "vae.keras")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(_rounds(run_dir)) < 2 and proc.poll() is None:
        time.sleep(0.2)
    # let the checkpoint of the logged round land, then kill hard mid-run
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _rounds(run_dir)
    assert 2 <= len(done_before) < 6, done_before
    ckpts = sorted(int(p.name.split("-")[1].split(".")[0]) for p in (run_dir / "ckpt").glob("ckpt-*.index"))
    last_ckpt = ckpts[-1]
    assert last_ckpt >= len(done_before) - 1

    out = subprocess.run(cmd, cwd=REPO, env=child_env(tmp_path), capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"resuming {run_dir} after round {last_ckpt}/6" in out.stdout
    rounds = _rounds(run_dir)
    resumed = rounds[len(done_before):]
    assert resumed[0] == last_ckpt + 1          # nothing completed was redone but an un-checkpointed round
    assert sorted(set(rounds)) == list(range(1, 7))
    assert (tmp_path / "vae.keras").exists()


def test_early_stopping_restores_best_and_is_resumable(tmp_path):
    import keras
    import tensorflow as tf

    from tf_inc.training.loop import fit_resumable

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x @ np.ones((4, 1), "float32")
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    m.compile(keras.optimizers.SGD(0.0), "mse")  # lr 0: val_loss never improves after round 1
    ds = lambda r: tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # noqa: E731
    val = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    logs = fit_resumable(m, ds, rounds=10, run_dir=tmp_path, val_ds=val, early_stopping_metric="val_loss",
                         patience=2, min_delta=1e-3, verbose=0)
    assert logs["stopped_early"] == 1.0 and logs["rounds_completed"] == 3
    # calling again does not train further
    logs2 = fit_resumable(m, ds, rounds=10, run_dir=tmp_path, val_ds=val, early_stopping_metric="val_loss",
                          patience=2, min_delta=1e-3, verbose=0)
    assert logs2["rounds_completed"] == 3


def test_trained_classifier_is_accurate(trained_classifier, mnist_test):
    x, y = mnist_test
    acc = (trained_classifier.predict(x, verbose=0).argmax(1) == y).mean()
    assert acc > 0.96


def test_trained_vae_reconstructs(trained_vae, mnist_test):
    from vae.train import evaluate_vae

    x, _ = mnist_test
    m = evaluate_vae(trained_vae, x[:500])
    assert m["test_elbo"] > -130          # an untrained VAE is at about -545 nats
    assert m["recon_l2_mean"] < 6.0


def test_saved_artifacts_reload_identically(trained_classifier, trained_vae, isolated_models_dir, mnist_test):
    from tf_inc.experiments import zoo

    x, _ = mnist_test
    clf = zoo.load("mnist_classifier.keras")
    np.testing.assert_allclose(clf(x[:50]).numpy(), trained_classifier(x[:50]).numpy(), atol=1e-5)
    vae = zoo.load("mnist_vae.keras")
    np.testing.assert_allclose(vae(x[:50]).numpy(), trained_vae(x[:50]).numpy(), atol=1e-5)
    assert vae.decoder.prior_std == 1.0
