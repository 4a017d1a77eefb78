"""Train the MNIST VAE until its validation ELBO stops improving.

Validation = the last 5 000 images of the MNIST train split (never trained on); the test ELBO is
reported once at the end and chooses nothing.

``python -m vae.train [--epochs 150 --patience 8 ...]`` or ``python -m tf_inc.training vae``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tf_inc.cli import parse_config
from tf_inc.experiments.manifest import save_and_record
from tf_inc.paths import model_path
from tf_inc.training.distribute import make_strategy, worker_path
from tf_inc.training.loop import fit_resumable
from vae.model import VAE, VAEConfig


def evaluate_vae(vae: VAE, x: np.ndarray, batch_size: int = 1000) -> dict:
    """Test ELBO (nats/image, one posterior sample) and ℓ2 error ‖G(E(x)) − x‖ per image."""
    ds = tf.data.Dataset.from_tensor_slices(x).batch(batch_size)
    if not getattr(vae, "compiled", False):          # a loaded model (zoo.load(..., compile=False))
        vae.compile(optimizer=keras.optimizers.Adam())
    elbo = -float(vae.evaluate(ds, verbose=0, return_dict=True)["loss"])
    l2 = []
    for xb in ds:
        rec = vae.decoder(vae.encode(xb))
        l2.append(tf.norm(tf.reshape(rec - xb, [tf.shape(xb)[0], -1]), axis=1).numpy())
    l2 = np.concatenate(l2)
    return {"test_elbo": elbo, "recon_l2_mean": float(l2.mean()), "recon_mse_mean": float((l2**2).mean() / 784)}


def train_vae(cfg: VAEConfig = VAEConfig(), verbose: int = 1):
    """Train, save ``mnist_vae.keras`` and return ``(vae, metrics)``."""
    from tf_inc.data.mnist import load_mnist

    strategy = make_strategy(cfg.strategy)        # first: multiworker configures collectives at startup
    keras.utils.set_random_seed(cfg.seed)
    from tf_inc.data.mnist import train_val_split

    (x_tr, _), (x_val, _) = train_val_split(cfg.n_val, cfg.n_train)
    x_te, _ = load_mnist("test")
    with strategy.scope():
        vae = VAE(latent_dim=cfg.latent_dim, hidden=cfg.hidden)
        vae.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))

    def make_ds(r):
        return (
            tf.data.Dataset.from_tensor_slices(x_tr)
            .shuffle(len(x_tr), seed=cfg.seed * 1000 + r, reshuffle_each_iteration=False)
            .batch(cfg.batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

    t0 = time.time()
    logs = fit_resumable(
        vae,
        make_ds,
        rounds=cfg.epochs,
        run_dir=Path(cfg.run_dir),
        val_ds=tf.data.Dataset.from_tensor_slices(x_val).batch(1000),
        early_stopping_metric="val_loss",
        patience=cfg.patience,
        min_delta=cfg.min_delta,
        verbose=verbose,
        strategy=strategy,
    )
    metrics = evaluate_vae(vae, x_te)
    metrics["val_elbo"] = evaluate_vae(vae, x_val)["test_elbo"]
    metrics["epochs"] = logs["rounds_completed"]
    out = Path(cfg.out) if cfg.out else model_path("mnist_vae.keras")
    out = worker_path(out, strategy)          # non-chief workers save a private copy
    command = "python -m tf_inc.training vae" + (f" --latent-dim {cfg.latent_dim}" if cfg.latent_dim != 20 else "") \
        + (f" --out {cfg.out}" if cfg.out else "")
    save_and_record(vae, out, command=command, config=cfg,
                    metrics={k: float(v) for k, v in metrics.items()}, train_seconds=round(time.time() - t0, 1))
    print(
        f"[tf-inc] MNIST VAE: validation ELBO {metrics['val_elbo']:.2f}, test ELBO {metrics['test_elbo']:.2f} nats, "
        f"mean ||G(E(x)) - x||_2 {metrics['recon_l2_mean']:.3f} after {int(metrics['epochs'])} epochs "
        f"({time.time() - t0:.0f}s) -> {out}",
        flush=True,
    )
    return vae, metrics


def main(argv=None):
    train_vae(parse_config(VAEConfig, argv))


if __name__ == "__main__":
    main(sys.argv[1:])
