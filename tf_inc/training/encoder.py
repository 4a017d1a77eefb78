"""Training driver for the encoder E of §4.2.3: G∘E an autoencoder for a fixed generator G."""
from __future__ import annotations

import keras
import numpy as np

from tf_inc.bounds import attach_bounds
from tf_inc.models.encoder import GeneratorAutoencoder, build_encoder


def train_encoder(generator, x_train: np.ndarray, epochs: int = 10, batch_size: int = 100,
                  learning_rate: float = 1e-3, seed: int = 0, verbose: int = 0) -> keras.Model:
    """Fit E minimising ||G(E(x)) − x||² over ``x_train`` with G frozen; returns E."""
    keras.utils.set_random_seed(seed)
    enc = build_encoder(x_train.shape[1:], generator.latent_dim)
    ae = GeneratorAutoencoder(enc, generator)
    ae.compile(keras.optimizers.Adam(learning_rate), loss="mse")
    ae.fit(x_train, x_train, batch_size=batch_size, epochs=epochs, verbose=verbose, shuffle=True)
    generator.trainable = True
    if getattr(generator, "bounds", None) is not None:
        attach_bounds(enc, generator.bounds)
    return enc
