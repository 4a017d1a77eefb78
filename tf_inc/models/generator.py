"""A generator G: R^k -> images that carries its own latent prior and output range.

Everything that samples or regularises latents (inversion restarts, the
min-max attack, the prior term) reads ``prior_std`` from the generator, so the
BEGAN's N(0, 4I) and the VAE's N(0, I) can never be mixed up. The prior is part
of the saved ``.keras`` config.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tf_inc")
class Generator(keras.Model):
    """Wraps a Keras network ``net`` mapping (B, latent_dim) -> (B, H, W, C).

    Args:
      net: the network (any Keras model / layer).
      latent_dim: k.
      prior_std: z ~ N(0, prior_std² I).
      bounds: the pixel range of the data the generator models, e.g. (0, 1).
    """

    def __init__(self, net, latent_dim: int, prior_std: float = 1.0,
                 bounds: Sequence[float] = (0.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.latent_dim = int(latent_dim)
        self.prior_std = float(prior_std)
        self.bounds: Tuple[float, float] = (float(bounds[0]), float(bounds[1]))
        self.build()

    def call(self, z, training=False):
        return self.net(z, training=training)

    @property
    def image_shape(self) -> Tuple[int, ...]:
        return tuple(int(d) for d in self.net.output_shape[1:])

    def sample_prior(self, n: int, seed=None) -> tf.Tensor:
        """``n`` latents from the prior; ``seed`` is a stateless seed pair or int."""
        shape = (n, self.latent_dim)
        if seed is None:
            return tf.random.normal(shape, stddev=self.prior_std)
        if isinstance(seed, int):
            seed = (seed, 0)
        return tf.random.stateless_normal(shape, seed=seed, stddev=self.prior_std)

    def get_config(self):
        return {
            **super().get_config(),
            "net": keras.saving.serialize_keras_object(self.net),
            "latent_dim": self.latent_dim,
            "prior_std": self.prior_std,
            "bounds": list(self.bounds),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["net"] = keras.saving.deserialize_keras_object(config["net"])
        return cls(**config)

    def build(self, input_shape=None):
        if not self.net.built:
            self.net.build((None, self.latent_dim))
        self.built = True
