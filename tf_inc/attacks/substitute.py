"""Black-box substitute-model attack (Papernot et al. 2017; paper §4.2.2, Figure 5).

The attacker queries the defended model for labels, trains a local substitute on
them (optionally growing the set by Jacobian augmentation), and transfers white-box
attacks made on the substitute to the defence.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_inc.bounds import (
    attach_bounds,
    check_images,
    check_labels,
    dataset_bounds,
    input_shape_of,
    num_classes_of,
)


def train_substitute(dataset: str, x, labels, epochs: int, seed: int, batch_size: int = 64,
                     learning_rate: float = 1e-3) -> keras.Model:
    """A fresh classifier of the dataset's architecture fitted to the oracle ``labels``
    (``x`` and ``labels`` are checked before the model is built)."""
    from tf_inc.models import celeba_classifier, mnist_classifier

    shape, classes = {"mnist": ((28, 28, 1), 10), "celeba": ((64, 64, 3), 2)}.get(dataset, (None, None))
    x = check_images(x, shape=shape, bounds=dataset_bounds(dataset), name="x")
    labels = check_labels(labels, len(x), classes, name="labels")
    keras.utils.set_random_seed(seed)
    model = mnist_classifier(name="substitute") if dataset == "mnist" else celeba_classifier(name="substitute")
    model.compile(keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, labels, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    return attach_bounds(model, dataset_bounds(dataset))


def jacobian_augment(model, x, labels, lam: float, bounds) -> np.ndarray:
    """Papernot et al.'s augmentation: ``x + λ·sign(∂F_label/∂x)`` for each training point."""
    x = check_images(x, shape=input_shape_of(model), bounds=bounds)
    labels = check_labels(labels, len(x), num_classes_of(model), name="labels")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        sel = tf.gather(model(xt), labels, batch_dims=1)
    g = tape.gradient(sel, xt)
    return np.clip(x + lam * np.sign(g.numpy()), *bounds).astype(np.float32)
