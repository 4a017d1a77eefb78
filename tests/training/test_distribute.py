"""Scale-out on tf.distribute: the strategy flag, checkpoints across strategies, sharded inversion.

TensorFlow fixes a process's devices when it initialises them, so everything that needs two
logical CPU devices or a two-worker cluster runs in child processes
(``tests/training/distribute_child.py``); the cheap pure-Python parts run here.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tf_inc.errors import InputError

REPO = Path(__file__).resolve().parents[2]
CHILD = REPO / "tests" / "training" / "distribute_child.py"


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", TF_INC_MODELS=str(tmp_path / "models"), **extra)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _free_ports(k):
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# ----------------------------------------------------------------------------- in process
def test_shard_indices_partition_the_input_in_order():
    from tf_inc.experiments.sharding import shard_indices

    for n in (0, 1, 5, 7, 64, 100):
        for k in (1, 2, 3, 8):
            parts = [shard_indices(n, i, k) for i in range(k)]
            np.testing.assert_array_equal(np.concatenate(parts), np.arange(n))     # every index once, in order
            sizes = [len(p) for p in parts]
            assert max(sizes) - min(sizes) <= 1
    for bad in ((5, 2, 2), (5, -1, 2), (5, 0, 0), (-1, 0, 2), (5.0, 0, 2), (True, 0, 1)):
        with pytest.raises(InputError):
            shard_indices(*bad)


def test_run_sharded_on_one_device_returns_rows_in_input_order():
    import tensorflow as tf

    from tf_inc.experiments.sharding import run_sharded

    x = np.random.default_rng(0).uniform(size=(10, 3)).astype("float32")
    calls = []

    def fn(xb):
        calls.append(xb.shape[0])
        return {"double": 2.0 * xb, "sum": tf.reduce_sum(xb, axis=1)}

    out = run_sharded(fn, x, batch_size=4)
    np.testing.assert_allclose(out["double"], 2 * x, rtol=1e-6)
    np.testing.assert_allclose(out["sum"], x.sum(1), rtol=1e-6)
    assert len(calls) <= 2                           # 3 chunks (4, 4, 2 images), one graph: traced at most twice
    with pytest.raises(InputError, match="empty"):
        run_sharded(fn, x[:0])


def test_strategy_flag_and_tf_config_are_checked(monkeypatch):
    from began.train import BEGANConfig
    from tf_inc.cli import parse_config
    from tf_inc.defences.adversarial_training import AdversarialTrainingConfig
    from tf_inc.defences.robust_training import RobustTrainingConfig
    from tf_inc.training import distribute as dist
    from tf_inc.training.classifier import CelebAClassifierConfig, MnistClassifierConfig
    from vae.model import VAEConfig

    for cls in (MnistClassifierConfig, CelebAClassifierConfig, VAEConfig, BEGANConfig, AdversarialTrainingConfig,
                RobustTrainingConfig):
        assert cls().strategy == "default"
        assert parse_config(cls, ["--strategy", "mirrored"]).strategy == "mirrored"
        with pytest.raises(SystemExit):
            parse_config(cls, ["--strategy", "horovod"])
    with pytest.raises(InputError, match="strategy must be one of"):
        AdversarialTrainingConfig(strategy="horovod")
    with pytest.raises(InputError, match="strategy must be one of"):
        dist.make_strategy("tpu")
    assert dist.make_strategy("default").num_replicas_in_sync == 1 and dist.is_chief()

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(InputError, match="needs the TF_CONFIG"):
        dist.make_strategy("multiworker")
    for raw, msg in (("{not json", "not valid JSON"), ('{"cluster": {}}', "'cluster' must list"),
                     ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "'task' must give"),
                     ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "outside the 1")):
        monkeypatch.setenv("TF_CONFIG", raw)
        with pytest.raises(InputError, match=msg):
            dist.make_strategy("multiworker")


# ----------------------------------------------------------------------------- 2 logical CPU devices
def test_mirrored_strategy_matches_one_device_and_resumes_its_checkpoints(tmp_path):
    proc = subprocess.run([sys.executable, str(CHILD), "mirrored", str(tmp_path)], cwd=REPO, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = np.load(tmp_path / "mirrored.npz")
    assert int(r["replicas"]) == 2
    # custom train_steps: each replica's gradient is scaled by 1/2; replica_mean averages replicas 0 and 1
    np.testing.assert_allclose(r["scaled"], [1.5, 1.5])
    np.testing.assert_allclose(r["replica_mean"], [0.5, 0.5])

    # the same global batches on two replicas take the same steps as on one device
    assert float(r["acc_default"]) > 0.75                       # it learned (chance: 0.1)
    assert float(r["acc_mirrored"]) == pytest.approx(float(r["acc_default"]), abs=1e-6)
    np.testing.assert_allclose(r["w_mirrored"], r["w_default"], atol=1e-5)
    # round 1 on one device, round 2 resumed from its checkpoint under MirroredStrategy
    assert list(r["rounds_d2m"]) == [1, 2]
    np.testing.assert_allclose(r["w_d2m"], r["w_default"], atol=1e-5)
    assert float(r["acc_d2m"]) == pytest.approx(float(r["acc_default"]), abs=1e-6)

    # the VAE driver with strategy="mirrored" (custom train_step) builds in the scope and trains
    assert int(r["vae_replicas"]) == 2
    assert float(r["vae_val_elbo"]) > float(r["vae_untrained_val_elbo"]) + 50      # nats, validation split

    # inversion sharded over the two devices: the single-device rows, in input order
    np.testing.assert_allclose(r["inv_sharded_z"], r["inv_single_z"], atol=1e-5)
    np.testing.assert_allclose(r["inv_sharded_l2"], r["inv_single_l2"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r["inv_sharded_restart_l2"], r["inv_single_restart_l2"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(r["inv_sharded_restart"], r["inv_single_restart"])
    np.testing.assert_array_equal(r["inv_sharded_steps"], r["inv_single_steps"])
    assert len(np.unique(r["inv_single_l2"].round(4))) == len(r["inv_single_l2"])   # 12 distinct images
    # DIP fits sharded over the replicas = one device (rows in input order, padding dropped)
    assert r["dip_sharded_x_hat"].shape == (5, 28, 28, 1)
    np.testing.assert_allclose(r["dip_sharded_x_hat"], r["dip_single_x_hat"], atol=1e-5)
    np.testing.assert_allclose(r["dip_sharded_snap"], r["dip_single_snap"], atol=1e-5)
    np.testing.assert_array_equal(r["dip_sharded_it"], r["dip_single_it"])
    assert len(set(r["dip_single_it"].tolist())) > 1                  # rows stopped at different times


# ----------------------------------------------------------------------------- 2 worker processes
@pytest.mark.slow
def test_two_workers_match_one_process(tmp_path, trained_vae):
    """MultiWorkerMirroredStrategy over two local processes (loopback gRPC) = one process."""
    import keras

    from tests.training import distribute_child as child
    from tf_inc.training import distribute as dist

    trained_vae.decoder.save(tmp_path / "generator.keras")          # the generator the workers invert with

    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = [subprocess.Popen([sys.executable, str(CHILD), "worker", str(tmp_path)], cwd=REPO,
                              env=_env(tmp_path, TF_CONFIG=json.dumps({"cluster": cluster,
                                                                       "task": {"type": "worker", "index": i}})),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        # the one-process reference, computed meanwhile
        data = child.mnist_subsets()
        w_ref, acc_ref = child.train_tiny(dist.make_strategy("default"), tmp_path / "run_ref", data=data)
        G = keras.saving.load_model(tmp_path / "generator.keras", compile=False)
        inv_ref = child.invert(G, data[2], None)
        logs = [p.communicate(timeout=900)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(l[-3000:] for l in logs)

    w0, w1 = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    assert int(w0["replicas"]) == int(w1["replicas"]) == 2
    assert bool(w0["chief"]) and not bool(w1["chief"])
    np.testing.assert_array_equal(w0["w"], w1["w"])               # mirrored: one model on both workers
    np.testing.assert_allclose(w0["w"], w_ref, atol=1e-5)         # = training in one process
    assert float(w0["acc"]) == pytest.approx(acc_ref, abs=1e-6) and acc_ref > 0.75
    for k, ref in inv_ref.items():                                # sharded over the workers, gathered on both
        for w in (w0, w1):
            np.testing.assert_allclose(w[f"inv_{k}"], ref, rtol=1e-5, atol=1e-5)
    # only the chief writes the run directory and the model; both see the same (all-reduced) metrics
    assert child.rounds_logged(tmp_path / "run_mw") == [1, 2]
    assert child.rounds_logged(tmp_path / "run_vae") == [1]
    assert (tmp_path / "vae.keras").exists()
    assert float(w0["vae_val_elbo"]) == float(w1["vae_val_elbo"])
