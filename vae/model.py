"""The paper's MNIST VAE (jmetzen's notebook architecture).

Encoder 784 → 500 → 500 → (μ, log σ²) ∈ R^20; decoder 20 → 500 → 500 → 784 sigmoid,
softplus hidden units. Bernoulli likelihood, N(0, I) prior. The decoder is
wrapped in :class:`tf_inc.models.Generator` (prior N(0, I), range [0, 1]) and
is the generator G of Invert-and-Classify.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import keras
import tensorflow as tf
from keras import layers

from tf_inc.models.generator import Generator
from tf_inc.training.distribute import STRATEGIES, replica_scaled


@dataclass
class VAEConfig:
    """MNIST VAE training (defaults: the notebook the paper cites, early-stopped on the validation ELBO)."""

    latent_dim: int = field(default=20, metadata={"help": "latent dimension k"})
    hidden: int = field(default=500, metadata={"help": "units per hidden layer"})
    batch_size: int = field(default=100, metadata={"help": "mini-batch size"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    epochs: int = field(default=100, metadata={"help": "maximum epochs (the validation ELBO is flat to ~0.1 nat by then)"})
    patience: int = field(default=8, metadata={"help": "stop after this many epochs without validation-ELBO gain"})
    min_delta: float = field(default=0.05, metadata={"help": "smallest ELBO gain (nats) that counts"})
    n_train: int = field(default=0, metadata={"help": "training images (first of the train split; 0 = all 55000)"})
    n_val: int = field(default=5000, metadata={"help": "validation images: the LAST n_val of the train split"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    run_dir: str = field(default="runs/mnist_vae", metadata={"help": "checkpoints, logs, TensorBoard"})
    out: str = field(default="", metadata={"help": "output .keras path (default: models dir)"})
    strategy: str = field(default="default", metadata={
        "help": "tf.distribute strategy (tf_inc.training.distribute): default, mirrored or multiworker "
                "(TF_CONFIG); batch_size is the global batch", "choices": list(STRATEGIES)})


def build_encoder(latent_dim: int = 20, hidden: int = 500) -> keras.Model:
    x = keras.Input((28, 28, 1), name="image")
    h = layers.Flatten()(x)
    h = layers.Dense(hidden, activation="softplus", kernel_initializer="glorot_uniform", name="enc_h1")(h)
    h = layers.Dense(hidden, activation="softplus", kernel_initializer="glorot_uniform", name="enc_h2")(h)
    mu = layers.Dense(latent_dim, name="z_mean")(h)
    logvar = layers.Dense(latent_dim, name="z_log_var")(h)
    return keras.Model(x, [mu, logvar], name="encoder")


def build_decoder(latent_dim: int = 20, hidden: int = 500) -> Generator:
    z = keras.Input((latent_dim,), name="z")
    h = layers.Dense(hidden, activation="softplus", kernel_initializer="glorot_uniform", name="dec_h1")(z)
    h = layers.Dense(hidden, activation="softplus", kernel_initializer="glorot_uniform", name="dec_h2")(h)
    h = layers.Dense(784, activation="sigmoid", name="dec_out")(h)
    out = layers.Reshape((28, 28, 1), name="image")(h)
    net = keras.Model(z, out, name="decoder_net")
    return Generator(net, latent_dim=latent_dim, prior_std=1.0, bounds=(0.0, 1.0), name="mnist_vae_decoder")


@keras.saving.register_keras_serializable(package="tf_inc")
class VAE(keras.Model):
    """VAE with a ``train_step`` maximising the ELBO (metrics: loss = −ELBO, recon, kl)."""

    def __init__(self, encoder=None, decoder=None, latent_dim: int = 20, hidden: int = 500, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.hidden = latent_dim, hidden
        self.encoder = encoder if encoder is not None else build_encoder(latent_dim, hidden)
        self.decoder = decoder if decoder is not None else build_decoder(latent_dim, hidden)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.recon_tracker = keras.metrics.Mean(name="recon")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.build()

    @property
    def metrics(self):
        return [self.loss_tracker, self.recon_tracker, self.kl_tracker]

    def call(self, x, training=False):
        mu, _ = self.encoder(x, training=training)
        return self.decoder(mu, training=training)

    def encode(self, x):
        """Posterior mean E(x)."""
        return self.encoder(x)[0]

    def _elbo_terms(self, x, training):
        mu, logvar = self.encoder(x, training=training)
        eps = tf.random.normal(tf.shape(mu))
        z = mu + tf.exp(0.5 * logvar) * eps
        p = tf.clip_by_value(self.decoder(z, training=training), 1e-7, 1.0 - 1e-7)
        recon = -tf.reduce_sum(x * tf.math.log(p) + (1.0 - x) * tf.math.log(1.0 - p), axis=[1, 2, 3])
        kl = -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=1)
        return tf.reduce_mean(recon + kl), tf.reduce_mean(recon), tf.reduce_mean(kl)

    def _update(self, loss, recon, kl):
        self.loss_tracker.update_state(loss)
        self.recon_tracker.update_state(recon)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            loss, recon, kl = self._elbo_terms(x, training=True)
        # the optimizer sums the replicas' gradients: scale by 1 / replicas (identity on one device)
        grads = replica_scaled(tape.gradient(loss, self.trainable_variables))
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._update(loss, recon, kl)

    def test_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        return self._update(*self._elbo_terms(x, training=False))

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "hidden": self.hidden,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)

    def build(self, input_shape=None):
        self.encoder.build((None, 28, 28, 1))
        self.decoder.build((None, self.latent_dim))
        self.built = True
