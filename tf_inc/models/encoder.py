"""An encoder E trained so that G∘E is an autoencoder for a *fixed* generator G
(paper §4.2.3 / Appendix A: the differentiable stand-in for INC's projection)."""
from __future__ import annotations

import keras
from keras import layers


def build_encoder(image_shape, latent_dim: int) -> keras.Model:
    inp = keras.Input(image_shape, name="image")
    if image_shape[0] <= 32:
        h = layers.Flatten()(inp)
        h = layers.Dense(500, activation="softplus")(h)
        h = layers.Dense(500, activation="softplus")(h)
    else:
        h = inp
        for ch in (64, 128, 256):
            h = layers.Conv2D(ch, 4, strides=2, padding="same", activation="elu")(h)
        h = layers.Flatten()(h)
    return keras.Model(inp, layers.Dense(latent_dim, name="z")(h), name="encoder")


class GeneratorAutoencoder(keras.Model):
    """x ↦ G(E(x)) with G frozen: only E is trained."""

    def __init__(self, encoder, generator, **kw):
        kw.setdefault("name", "generator_autoencoder")
        super().__init__(**kw)
        self.encoder, self.generator = encoder, generator
        self.generator.trainable = False

    def call(self, x, training=False):
        return self.generator(self.encoder(x, training=training), training=False)
