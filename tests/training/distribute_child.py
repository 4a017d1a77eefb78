"""Child process of tests/training/test_distribute.py (TensorFlow's devices are fixed per process).

``python tests/training/distribute_child.py mirrored OUT``: splits the CPU into 2 logical devices,
then trains a tiny MNIST classifier under the default strategy and under ``MirroredStrategy``,
resumes checkpoints across the two, trains the VAE driver with ``strategy="mirrored"`` and
inverts test digits on one device and sharded over both; writes ``OUT/mirrored.npz``.

``python tests/training/distribute_child.py worker OUT`` (with ``TF_CONFIG``): one worker of a
``MultiWorkerMirroredStrategy`` cluster; trains the tiny classifier and inverts the digits with
the generator in ``OUT/generator.keras``; writes ``OUT/worker<i>.npz``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

N_TRAIN, N_VAL, BATCH, ROUNDS = 1000, 500, 50, 2
INVERSION = dict(steps=150, restarts=2, batch_size=3, patience=30)


def tiny_classifier():
    import keras

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ], name="tiny")


def keras_seed(seed):
    import keras

    keras.utils.set_random_seed(seed)


def mnist_subsets():
    from tf_inc.data.mnist import load_mnist, train_val_split

    (x_tr, y_tr), (x_val, y_val) = train_val_split(N_VAL, N_TRAIN)
    x_te, _ = load_mnist("test", 12)
    return (x_tr, y_tr), (x_val, y_val), x_te


def train_tiny(strategy, run_dir, rounds=ROUNDS, data=None):
    """The drivers' pattern: build + compile in ``strategy.scope()``, then ``fit_resumable``."""
    import keras
    import tensorflow as tf

    from tf_inc.training.loop import fit_resumable

    (x_tr, y_tr), (x_val, y_val), _ = data
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = tiny_classifier()
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])

    def make_ds(r):
        return (tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
                .shuffle(len(x_tr), seed=1000 + r, reshuffle_each_iteration=False).batch(BATCH))

    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(250)
    fit_resumable(model, make_ds, rounds=rounds, run_dir=Path(run_dir), val_ds=val, verbose=0, strategy=strategy)
    acc = float(model.evaluate(val, verbose=0, return_dict=True)["accuracy"])
    return np.concatenate([w.ravel() for w in model.get_weights()]), acc


def rounds_logged(run_dir):
    p = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line)["round"] for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def invert(generator, x, strategy):
    from tf_inc.manifold.inversion import InversionConfig, project

    r = project(generator, x, InversionConfig(**INVERSION), seed=5, strategy=strategy)
    return {"z": r.z, "l2": r.l2, "restart": r.restart, "steps": r.steps, "restart_l2": r.restart_l2}


def mirrored(out: Path):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from tf_inc.training import distribute as dist

    default, mirror = dist.make_strategy("default"), dist.make_strategy("mirrored")
    res = {"replicas": mirror.num_replicas_in_sync}
    # the loss scaling custom train_steps use: each replica differentiates loss / 2
    scaled = mirror.run(lambda: (dist.replica_scaled(tf.constant(3.0)),
                                 dist.replica_mean(tf.cast(dist.replica_index(), tf.float32))))
    res["scaled"] = [float(v) for v in mirror.experimental_local_results(scaled[0])]
    res["replica_mean"] = [float(v) for v in mirror.experimental_local_results(scaled[1])]

    data = mnist_subsets()
    res["w_default"], res["acc_default"] = train_tiny(default, out / "run_default", data=data)
    res["w_mirrored"], res["acc_mirrored"] = train_tiny(mirror, out / "run_mirrored", data=data)
    # train round 1 on one device, resume round 2 under MirroredStrategy from its checkpoint
    train_tiny(default, out / "run_d2m", rounds=1, data=data)
    res["w_d2m"], res["acc_d2m"] = train_tiny(mirror, out / "run_d2m", data=data)
    res["rounds_d2m"] = rounds_logged(out / "run_d2m")

    # a driver with the flag: the VAE (custom train_step) under MirroredStrategy
    from vae.model import VAE, VAEConfig
    from vae.train import evaluate_vae, train_vae

    keras_seed(0)
    untrained = VAE(hidden=64)
    untrained.compile(optimizer="adam")
    res["vae_untrained_val_elbo"] = evaluate_vae(untrained, data[1][0])["test_elbo"]
    vae, metrics = train_vae(VAEConfig(epochs=1, n_train=N_TRAIN, n_val=N_VAL, hidden=64, strategy="mirrored",
                                       run_dir=str(out / "run_vae"), out=str(out / "vae.keras")), verbose=0)
    res["vae_val_elbo"], res["vae_test_elbo"] = metrics["val_elbo"], metrics["test_elbo"]
    res["vae_replicas"] = vae.distribute_strategy.num_replicas_in_sync      # built in the scope
    _, _, x_te = data
    single, sharded = invert(vae.decoder, x_te, None), invert(vae.decoder, x_te, mirror)
    for k in single:
        res[f"inv_single_{k}"], res[f"inv_sharded_{k}"] = single[k], sharded[k]
    # DIP fits (per-row early stopping) sharded over the two replicas: 5 images, so one replica's
    # shard is padded; batch_size 2 networks per replica per call, so there are two calls
    # (a two-scale, 8-channel network: the sharding is under test here, not the architecture)
    from tf_inc.defences.dip import DIPConfig, DIPFitter
    from tf_inc.models.skip_net import SkipNetConfig

    fitter = DIPFitter((28, 28, 1), DIPConfig(max_iterations=30, mse_threshold=0.02, batch_size=2),
                       net=SkipNetConfig.uniform(2, 8, 8, 2, input_channels=4, canvas_multiple=32))
    for name, strategy in (("single", None), ("sharded", mirror)):
        r = fitter(x_te[:5], snapshots=(10,), strategy=strategy)
        res[f"dip_{name}_x_hat"], res[f"dip_{name}_it"] = r.x_hat, r.iterations
        res[f"dip_{name}_snap"] = r.snapshots[10]
    np.savez(out / "mirrored.npz", **{k: np.asarray(v) for k, v in res.items()})


def worker(out: Path):
    from tf_inc.training import distribute as dist

    strategy = dist.make_strategy("multiworker")     # first: collectives are configured at startup
    import keras

    import tf_inc.models.generator  # noqa: F401  (registers the Generator class for loading)

    _, index = dist.task(strategy)
    data = mnist_subsets()
    res = {"replicas": strategy.num_replicas_in_sync, "chief": dist.is_chief(strategy), "index": index}
    res["w"], res["acc"] = train_tiny(strategy, out / "run_mw", data=data)
    G = keras.saving.load_model(out / "generator.keras", compile=False)
    inv = invert(G, data[2], strategy)
    res.update({f"inv_{k}": v for k, v in inv.items()})
    # a driver with the flag under the same cluster: only the chief writes the model and the run dir
    from vae.model import VAEConfig
    from vae.train import train_vae

    _, metrics = train_vae(VAEConfig(epochs=1, n_train=N_TRAIN, n_val=N_VAL, hidden=64, strategy="multiworker",
                                     run_dir=str(out / "run_vae"), out=str(out / "vae.keras")), verbose=0)
    res["vae_val_elbo"] = metrics["val_elbo"]
    np.savez(out / f"worker{index}.npz", **{k: np.asarray(v) for k, v in res.items()})


if __name__ == "__main__":
    {"mirrored": mirrored, "worker": worker}[sys.argv[1]](Path(sys.argv[2]))
