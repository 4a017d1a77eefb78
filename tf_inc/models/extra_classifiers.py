"""Three more MNIST classifiers for the notes' experiments, and their training.

* :func:`mnist_mlp` — a fully connected net (784 → 512 → 512 → 10, ReLU, dropout): a
  *differently built* model for the transferability matrix (notes: "adversarial examples
  transfer across architectures"), ``mnist_mlp.keras``.
* :func:`mnist_cnn_wide` — the all-convolutional net of the notes' blog post (3×3 convs of
  16/32/64 filters, strides 1/2/2, dense 10) with every layer twice as wide and another
  seed, ``mnist_cnn_wide.keras``.
* :func:`mnist_rbf` — the lecture's "good defence, poor accuracy" example: Goodfellow et
  al.'s (2015, §7) *shallow RBF network*, one radial unit per class,
  ``p(y=k | x) = exp(−Σ_i β_ki (x_i − w_ki)²)``, trained one-vs-all, ``mnist_rbf.keras``.
  Its logits are ``log p(y=k | x)``, so every attack of the toolkit applies unchanged.

Every model outputs logits and carries the MNIST bounds. Training
(:func:`train_extra_classifier`) selects and early-stops **only** on the validation split,
the last 5 000 images of the MNIST train split (:func:`tf_inc.data.mnist.train_val_split`);
the test split is left to the experiments. :func:`load_or_train` returns the cached model
from the models dir (``zoo.get_or_train``), training it once when it is missing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from tf_inc.bounds import attach_bounds, dataset_bounds

#: model kind -> artifact file name in the models dir
ARTIFACT_NAMES = {"mlp": "mnist_mlp.keras", "cnn_wide": "mnist_cnn_wide.keras", "rbf": "mnist_rbf.keras"}


def mnist_mlp(hidden: int = 512, dropout: float = 0.2, name: str = "mnist_mlp") -> keras.Model:
    """Fully connected MNIST net: flatten → dense(hidden, ReLU) ×2 (dropout) → dense 10 (logits)."""
    inp = keras.Input((28, 28, 1), name="image")
    h = layers.Flatten(name="flatten")(inp)
    h = layers.Dense(hidden, activation="relu", name="fc1")(h)
    h = layers.Dropout(dropout, name="dropout1")(h)
    h = layers.Dense(hidden, activation="relu", name="fc2")(h)
    h = layers.Dropout(dropout, name="dropout2")(h)
    out = layers.Dense(10, name="logits")(h)
    return attach_bounds(keras.Model(inp, out, name=name), dataset_bounds("mnist"))


def mnist_cnn_wide(width: int = 2, name: str = "mnist_cnn_wide") -> keras.Model:
    """The blog's all-convolutional CNN, ``width``× wider: conv 3×3 (16w, stride 1, same) →
    conv 3×3 (32w, stride 2) → conv 3×3 (64w, stride 2) → flatten → dense 10 (logits)."""
    inp = keras.Input((28, 28, 1), name="image")
    h = layers.Conv2D(16 * width, 3, strides=1, padding="same", activation="relu", name="conv1")(inp)
    h = layers.Conv2D(32 * width, 3, strides=2, activation="relu", name="conv2")(h)
    h = layers.Conv2D(64 * width, 3, strides=2, activation="relu", name="conv3")(h)
    h = layers.Flatten(name="flatten")(h)
    out = layers.Dense(10, name="logits")(h)
    return attach_bounds(keras.Model(inp, out, name=name), dataset_bounds("mnist"))


@keras.saving.register_keras_serializable(package="tf_inc")
class RBFOutput(layers.Layer):
    """One radial-basis unit per class: ``logit_k = log p_k = −Σ_i β_ki (x_i − w_ki)²``.

    ``β = softplus(ρ) ≥ 0`` is a learnt per-class, per-input precision (Goodfellow et al.'s
    "(w − x)ᵀ β (x − w)" with a diagonal β); ``w`` the class centre. ``p_k ∈ (0, 1]`` is the
    unit's own confidence (not a softmax), which is what the lecture's remark is about: the
    unit answers "yes" only near its centre.
    """

    def __init__(self, units: int = 10, init_precision: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.units, self.init_precision = int(units), float(init_precision)

    def build(self, input_shape):
        d = int(input_shape[-1])
        rho0 = float(np.log(np.expm1(self.init_precision)))
        self.centres = self.add_weight(name="centres", shape=(self.units, d), initializer="random_uniform")
        self.rho = self.add_weight(name="rho", shape=(self.units, d),
                                   initializer=keras.initializers.Constant(rho0))

    def precision(self):
        return tf.nn.softplus(self.rho)

    def call(self, x):
        diff = x[:, None, :] - self.centres[None, :, :]
        return -tf.reduce_sum(self.precision()[None] * tf.square(diff), axis=-1)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "init_precision": self.init_precision}


def mnist_rbf(init_precision: float = 0.01, name: str = "mnist_rbf") -> keras.Model:
    """Goodfellow et al.'s shallow RBF network on the flattened image (logits ``log p_k``)."""
    inp = keras.Input((28, 28, 1), name="image")
    h = layers.Flatten(name="flatten")(inp)
    out = RBFOutput(10, init_precision, name="rbf")(h)
    return attach_bounds(keras.Model(inp, out, name=name), dataset_bounds("mnist"))


@keras.saving.register_keras_serializable(package="tf_inc")
def rbf_one_vs_all_loss(y_true, log_p):
    """Σ_k binary cross-entropy of the RBF units' own probabilities ``p_k = exp(log_p_k)``
    against one-hot labels (each unit is trained to fire on its class only)."""
    y = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), tf.shape(log_p)[-1])
    log_p = tf.minimum(log_p, -1e-6)
    log_not_p = tf.math.log(-tf.math.expm1(log_p))
    return -tf.reduce_sum(y * log_p + (1.0 - y) * log_not_p, axis=-1)


def rbf_confidence(model, x) -> np.ndarray:
    """The RBF network's own confidence in its answer: ``max_k p_k = exp(max_k log p_k)``."""
    return np.exp(np.asarray(model(x, training=False)).max(axis=1))


@dataclass
class ExtraClassifierConfig:
    """Training of one extra MNIST classifier (early stopping on the validation split)."""

    kind: str = field(default="mlp", metadata={"help": "which model", "choices": sorted(ARTIFACT_NAMES)})
    epochs: int = field(default=0, metadata={"help": "max epochs (0: the kind's default)", "min": 0})
    batch_size: int = field(default=128, metadata={"help": "mini-batch size"})
    learning_rate: float = field(default=0.0, metadata={"help": "Adam learning rate (0: the kind's default)",
                                                         "min": 0.0})
    patience: int = field(default=3, metadata={"help": "early-stopping patience on validation loss (epochs)",
                                                "min": 1})
    n_train: int = field(default=0, metadata={"help": "training images from the start of the train split "
                                                      "(0 = all 55 000 before the validation split)"})
    n_val: int = field(default=5000, metadata={"help": "validation images: the LAST n_val of the train split"})
    seed: int = field(default=-1, metadata={"help": "random seed (-1: the kind's default)", "min": -1})
    run_dir: str = field(default="", metadata={"help": "checkpoints/logs (default runs/<artifact stem>)"})
    out: str = field(default="", metadata={"help": "output .keras path (default: models dir)"})


#: per-kind defaults: (epochs, learning rate, seed). The wide CNN uses another seed than the
#: zoo CNN (0) on purpose; the RBF units need a larger step to move their precisions.
KIND_DEFAULTS = {"mlp": (20, 1e-3, 1), "cnn_wide": (8, 1e-3, 2), "rbf": (30, 1e-2, 3)}


def check_kind(kind: str) -> str:
    from tf_inc.errors import InputError

    if kind not in ARTIFACT_NAMES:
        raise InputError(f"unknown extra classifier {kind!r}; expected one of {', '.join(sorted(ARTIFACT_NAMES))}")
    return kind


def build(kind: str) -> keras.Model:
    """A fresh (untrained) model of ``kind`` (``mlp``, ``cnn_wide`` or ``rbf``)."""
    return {"mlp": mnist_mlp, "cnn_wide": mnist_cnn_wide, "rbf": mnist_rbf}[check_kind(kind)]()


def train_extra_classifier(cfg: Optional[ExtraClassifierConfig] = None, verbose: int = 2):
    """Train ``cfg.kind`` on the train split minus its last ``n_val`` images, keep the epoch with
    the lowest validation loss, save it (models dir or ``cfg.out``); returns ``(model, val_acc)``."""
    from tf_inc.data.mnist import train_val_split
    from tf_inc.experiments.manifest import save_and_record
    from tf_inc.paths import model_path
    from tf_inc.training.loop import fit_resumable

    cfg = cfg or ExtraClassifierConfig()
    epochs, lr, seed = KIND_DEFAULTS[check_kind(cfg.kind)]
    epochs, lr = cfg.epochs or epochs, cfg.learning_rate or lr
    seed = seed if cfg.seed < 0 else cfg.seed
    keras.utils.set_random_seed(seed)
    model = build(cfg.kind)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(cfg.n_val, cfg.n_train)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if cfg.kind == "rbf":
        # start each class centre at its training mean: one radial unit per class
        centres = np.stack([x_tr[y_tr == k].reshape(-1, 784).mean(0) for k in range(10)])
        model.get_layer("rbf").centres.assign(centres.astype(np.float32))
        loss = rbf_one_vs_all_loss
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(1000)
    stem = ARTIFACT_NAMES[cfg.kind].removesuffix(".keras")

    def train_ds(r):
        return (tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
                .shuffle(len(x_tr), seed=seed * 1000 + r, reshuffle_each_iteration=False)
                .batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE))

    t0 = time.time()
    logs = fit_resumable(model, train_ds, rounds=epochs, run_dir=Path(cfg.run_dir or f"runs/{stem}"),
                         val_ds=val_ds, early_stopping_metric="val_loss", patience=cfg.patience,
                         verbose=verbose)
    _, acc = model.evaluate(val_ds, verbose=0)
    out = Path(cfg.out) if cfg.out else model_path(ARTIFACT_NAMES[cfg.kind])
    save_and_record(model, out, command=f"python -m tf_inc.models.extra_classifiers --kind {cfg.kind}", config=cfg,
                    metrics={"val_accuracy": float(acc), "epochs": float(logs["rounds_completed"])})
    print(f"[tf-inc] {stem}: validation accuracy {acc:.4f} after {int(logs['rounds_completed'])} epochs "
          f"({time.time() - t0:.0f}s) -> {out}", flush=True)
    return attach_bounds(model, dataset_bounds("mnist")), float(acc)


def load_or_train(kind: str, verbose: int = 2) -> keras.Model:
    """``mnist_mlp.keras`` / ``mnist_cnn_wide.keras`` / ``mnist_rbf.keras`` from the models dir,
    trained once with the defaults above when missing."""
    from tf_inc.experiments import zoo

    return zoo.get_or_train(ARTIFACT_NAMES[check_kind(kind)],
                            lambda: train_extra_classifier(ExtraClassifierConfig(kind=kind), verbose=verbose))


if __name__ == "__main__":          # python -m tf_inc.models.extra_classifiers --kind mlp
    from tf_inc.cli import parse_config

    train_extra_classifier(parse_config(ExtraClassifierConfig))
