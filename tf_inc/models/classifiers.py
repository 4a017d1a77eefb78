"""The two classifiers of the paper (§4.1). Both output **logits** and carry their input ``bounds``."""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from tf_inc.bounds import attach_bounds, dataset_bounds


def mnist_classifier(dropout: float = 0.5, name: str = "mnist_classifier") -> keras.Model:
    """TensorFlow "Deep MNIST for experts" net, as used by the paper.

    conv 5×5×32 → max-pool 2 → conv 5×5×64 → max-pool 2 → dense 1024 → dropout → dense 10.
    Input (28, 28, 1) in [0, 1]; output logits (10,).
    """
    inp = keras.Input((28, 28, 1), name="image")
    h = layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1")(inp)
    h = layers.MaxPooling2D(2, name="pool1")(h)
    h = layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2")(h)
    h = layers.MaxPooling2D(2, name="pool2")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(1024, activation="relu", name="fc1")(h)
    h = layers.Dropout(dropout, name="dropout")(h)
    out = layers.Dense(10, name="logits")(h)
    return attach_bounds(keras.Model(inp, out, name=name), dataset_bounds("mnist"))


@keras.saving.register_keras_serializable(package="tf_inc")
class LocalResponseNorm(layers.Layer):
    """``tf.nn.local_response_normalization`` with the cifar10-tutorial constants."""

    def __init__(self, depth_radius=4, bias=1.0, alpha=0.001 / 9.0, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def call(self, x):
        return tf.nn.local_response_normalization(
            x, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta
        )

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


def celeba_classifier(name: str = "celeba_classifier") -> keras.Model:
    """TF cifar10-tutorial net adapted to 64×64×3 CelebA gender (paper §4.1).

    conv 5×5×64 → max-pool 3/2 → LRN → conv 5×5×64 → LRN → max-pool 3/2 →
    dense 384 → dense 192 → dense 2. Input in [-1, 1]; output logits (2,).
    """
    inp = keras.Input((64, 64, 3), name="image")
    h = layers.Conv2D(64, 5, padding="same", activation="relu", name="conv1")(inp)
    h = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(h)
    h = LocalResponseNorm(name="norm1")(h)
    h = layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2")(h)
    h = LocalResponseNorm(name="norm2")(h)
    h = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(384, activation="relu", name="local3")(h)
    h = layers.Dense(192, activation="relu", name="local4")(h)
    out = layers.Dense(2, name="logits")(h)
    return attach_bounds(keras.Model(inp, out, name=name), dataset_bounds("celeba"))
