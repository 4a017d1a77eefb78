"""BEGAN: generator, autoencoder discriminator and the boundary-equilibrium objective.

Architecture of carpedm20/BEGAN-tensorflow (which the paper says it kept):

* generator ``G: R^128 -> 64×64×3``: dense to 8·8·128, then 4 resolution blocks
  (8, 16, 32, 64) of ``convs_per_block`` 3×3×128 ELU convolutions with
  nearest-neighbour ×2 upsampling between blocks, then a 3×3 conv to 3
  channels (linear output, data in [-1, 1]). The paper's "four 3×3×128
  convolutional layers and a final 3-filter one" are these four blocks and the
  output conv.
* discriminator: an autoencoder whose decoder has the generator's shape and
  whose encoder mirrors it with strided 3×3 convolutions.
* objective (BEGAN eq. 4): L_D = L(x) − k_t L(G(z)), L_G = L(G(z)),
  k_{t+1} = clip(k_t + λ_k (γ L(x) − L(G(z))), 0, 1), with L the mean absolute
  autoencoder error; convergence M_global = L(x) + |γ L(x) − L(G(z))|.

The latent prior is N(0, 4 I) as the paper states (``prior_std = 2``); it is
stored in the generator's config.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tf_inc.models.generator import Generator
from tf_inc.training.distribute import replica_mean, replica_scaled


def _decoder_body(z, hidden: int, image_size: int, convs_per_block: int, prefix: str):
    h = layers.Dense(8 * 8 * hidden, name=f"{prefix}_fc")(z)
    h = layers.Reshape((8, 8, hidden))(h)
    n_blocks = {32: 3, 64: 4, 128: 5}[image_size]
    for b in range(n_blocks):
        for c in range(convs_per_block):
            h = layers.Conv2D(hidden, 3, padding="same", activation="elu", name=f"{prefix}_b{b}_conv{c}")(h)
        if b < n_blocks - 1:
            h = layers.UpSampling2D(2, interpolation="nearest", name=f"{prefix}_up{b}")(h)
    return layers.Conv2D(3, 3, padding="same", name=f"{prefix}_out")(h)


def build_generator(z_dim: int = 128, hidden: int = 128, image_size: int = 64,
                    convs_per_block: int = 2, prior_std: float = 2.0) -> Generator:
    z = keras.Input((z_dim,), name="z")
    out = _decoder_body(z, hidden, image_size, convs_per_block, "gen")
    net = keras.Model(z, out, name="began_generator_net")
    return Generator(net, latent_dim=z_dim, prior_std=prior_std, bounds=(-1.0, 1.0), name="began_generator")


def build_discriminator(z_dim: int = 128, hidden: int = 128, image_size: int = 64,
                        convs_per_block: int = 2) -> keras.Model:
    x = keras.Input((image_size, image_size, 3), name="image")
    n_blocks = {32: 3, 64: 4, 128: 5}[image_size]
    h = layers.Conv2D(hidden, 3, padding="same", activation="elu", name="enc_in")(x)
    for b in range(n_blocks):
        ch = hidden * (b + 1)
        for c in range(convs_per_block):
            h = layers.Conv2D(ch, 3, padding="same", activation="elu", name=f"enc_b{b}_conv{c}")(h)
        if b < n_blocks - 1:
            h = layers.Conv2D(hidden * (b + 2), 3, strides=2, padding="same", activation="elu", name=f"enc_down{b}")(h)
    h = layers.Flatten()(h)
    code = layers.Dense(z_dim, name="enc_code")(h)
    out = _decoder_body(code, hidden, image_size, convs_per_block, "dec")
    return keras.Model(x, out, name="began_discriminator")


@keras.saving.register_keras_serializable(package="tf_inc")
class BEGAN(keras.Model):
    """Generator + autoencoder discriminator with a boundary-equilibrium ``train_step``."""

    def __init__(self, generator=None, discriminator=None, gamma: float = 0.5, lambda_k: float = 0.001,
                 z_dim: int = 128, hidden: int = 128, image_size: int = 64, convs_per_block: int = 2,
                 **kwargs):
        super().__init__(**kwargs)
        self.gamma, self.lambda_k = float(gamma), float(lambda_k)
        self.arch = dict(z_dim=z_dim, hidden=hidden, image_size=image_size, convs_per_block=convs_per_block)
        self.generator = generator if generator is not None else build_generator(**self.arch)
        self.discriminator = discriminator if discriminator is not None else build_discriminator(**self.arch)
        # every replica computes the same (replica-averaged) k_t update: keep the first one's
        self.k_t = self.add_weight(shape=(), initializer="zeros", trainable=False, name="k_t",
                                   aggregation="only_first_replica")
        self.trackers = {n: keras.metrics.Mean(name=n) for n in
                         ("d_loss", "g_loss", "d_real", "d_fake", "k_t", "m_global")}
        self.built = True

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(8e-5, beta_1=0.5)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(8e-5, beta_1=0.5)

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        batch = tf.shape(x)[0]
        z = tf.random.normal((batch, self.generator.latent_dim), stddev=self.generator.prior_std)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(z, training=True)
            d_real = tf.reduce_mean(tf.abs(self.discriminator(x, training=True) - x))
            d_fake = tf.reduce_mean(tf.abs(self.discriminator(fake, training=True) - fake))
            d_loss = d_real - self.k_t * d_fake
            g_loss = d_fake
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        # the optimizers sum the replicas' gradients: scale by 1 / replicas (identity on one device)
        self.g_optimizer.apply_gradients(zip(replica_scaled(g_tape.gradient(g_loss, g_vars)), g_vars))
        self.d_optimizer.apply_gradients(zip(replica_scaled(d_tape.gradient(d_loss, d_vars)), d_vars))
        balance = replica_mean(self.gamma * d_real - g_loss)     # the global batch's balance, on every replica
        k_before = tf.identity(self.k_t)
        self.k_t.assign(tf.clip_by_value(self.k_t + self.lambda_k * balance, 0.0, 1.0))
        values = {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake,
                  "k_t": k_before, "m_global": d_real + tf.abs(balance)}
        for name, v in values.items():
            self.trackers[name].update_state(v)
        return {n: m.result() for n, m in self.trackers.items()}

    def get_config(self):
        return {
            **super().get_config(),
            **self.arch,
            "gamma": self.gamma,
            "lambda_k": self.lambda_k,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)
