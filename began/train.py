"""Train BEGAN on the first 160 000 CelebA images (paper §4.1).

``python -m began.train [--steps 500000 ...]`` or ``python -m tf_inc.training began``.
Writes ``celeba_began.keras`` (the whole BEGAN) and ``celeba_generator.keras``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras

from tf_inc.cli import parse_config
from tf_inc.io import save_keras_model
from tf_inc.paths import model_path
from tf_inc.training.distribute import STRATEGIES, make_strategy, worker_path
from tf_inc.training.loop import fit_resumable


@dataclass
class BEGANConfig:
    """BEGAN hyper-parameters (carpedm20/BEGAN-tensorflow defaults, paper's z ∈ R^128 ~ N(0, 4I))."""

    z_dim: int = field(default=128, metadata={"help": "latent dimension"})
    hidden: int = field(default=128, metadata={"help": "conv filters"})
    convs_per_block: int = field(default=2, metadata={"help": "3×3 convs per resolution block"})
    gamma: float = field(default=0.5, metadata={"help": "diversity ratio γ"})
    lambda_k: float = field(default=0.001, metadata={"help": "k_t learning rate λ_k"})
    learning_rate: float = field(default=8e-5, metadata={"help": "Adam lr for G and D"})
    beta1: float = field(default=0.5, metadata={"help": "Adam β1"})
    batch_size: int = field(default=16, metadata={"help": "mini-batch size"})
    steps: int = field(default=500_000, metadata={"help": "total training steps"})
    steps_per_round: int = field(default=1000, metadata={"help": "steps between checkpoints"})
    n_images: int = field(default=160_000, metadata={"help": "first N CelebA images (paper: 160k)"})
    celeba_dir: str = field(default="", metadata={"help": "CelebA folder / tfds manual dir"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    run_dir: str = field(default="runs/celeba_began", metadata={"help": "checkpoints, logs, TensorBoard"})
    out_dir: str = field(default="", metadata={"help": "where the .keras files go (default: models dir)"})
    strategy: str = field(default="default", metadata={
        "help": "tf.distribute strategy (tf_inc.training.distribute): default, mirrored or multiworker "
                "(TF_CONFIG); batch_size is the global batch", "choices": list(STRATEGIES)})


def train_began(cfg: BEGANConfig = BEGANConfig(), verbose: int = 1, dataset=None):
    """Train BEGAN; ``dataset`` (of images or (image, label)) overrides the CelebA loader."""
    from began.model import BEGAN
    from tf_inc.data.celeba import load_celeba

    strategy = make_strategy(cfg.strategy)        # first: multiworker configures collectives at startup
    keras.utils.set_random_seed(cfg.seed)
    if dataset is None:
        root = Path(cfg.celeba_dir) if cfg.celeba_dir else None
        dataset = load_celeba("gan", root=root, n=cfg.n_images)
    images = dataset.map(lambda *ex: ex[0]).cache()
    with strategy.scope():
        model = BEGAN(gamma=cfg.gamma, lambda_k=cfg.lambda_k, z_dim=cfg.z_dim, hidden=cfg.hidden,
                      convs_per_block=cfg.convs_per_block)
        model.compile(
            g_optimizer=keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta1),
            d_optimizer=keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta1),
        )
    rounds = -(-cfg.steps // cfg.steps_per_round)
    t0 = time.time()
    logs = fit_resumable(
        model,
        lambda r: images.shuffle(10_000, seed=cfg.seed * 1000 + r).repeat().batch(cfg.batch_size, drop_remainder=True),
        rounds=rounds,
        steps_per_round=min(cfg.steps_per_round, cfg.steps),
        run_dir=Path(cfg.run_dir),
        optimizers={"g_optimizer": model.g_optimizer, "d_optimizer": model.d_optimizer},
        optimizer_variables={
            "g_optimizer": model.generator.trainable_variables,
            "d_optimizer": model.discriminator.trainable_variables,
        },
        verbose=verbose,
        strategy=strategy,
    )
    out_dir = Path(cfg.out_dir) if cfg.out_dir else model_path("").parent
    out_dir = worker_path(out_dir, strategy)          # non-chief workers save a private copy
    save_keras_model(model, out_dir / "celeba_began.keras")
    save_keras_model(model.generator, out_dir / "celeba_generator.keras")
    print(f"[tf-inc] BEGAN: M_global {logs.get('m_global', float('nan')):.4f}, k_t {float(model.k_t.numpy()):.4f} "
          f"({time.time() - t0:.0f}s) -> {out_dir / 'celeba_generator.keras'}", flush=True)
    return model, logs


def main(argv=None):
    train_began(parse_config(BEGANConfig, argv))


if __name__ == "__main__":
    main(sys.argv[1:])
