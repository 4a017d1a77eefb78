"""Shared fixtures: small models trained once per session on MNIST subsets (fixed seeds).

Tests never use the user's ``models/`` directory nor the network: ``TF_INC_MODELS``
points to a session temp dir before anything is imported.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def isolated_models_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    old = os.environ.get("TF_INC_MODELS")
    os.environ["TF_INC_MODELS"] = str(d)
    yield d
    if old is None:
        os.environ.pop("TF_INC_MODELS", None)
    else:
        os.environ["TF_INC_MODELS"] = old


@pytest.fixture(scope="session")
def mnist_test():
    from tf_inc.data.mnist import load_mnist

    return load_mnist("test", 1000)


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory, isolated_models_dir):
    """Deep-MNIST classifier, 2 epochs on 12k images (~98 % test accuracy)."""
    from tf_inc.training.classifier import MnistClassifierConfig, train_mnist_classifier

    d = tmp_path_factory.mktemp("clf_run")
    cfg = MnistClassifierConfig(epochs=2, n_train=12000, run_dir=str(d / "run"),
                                out=str(isolated_models_dir / "mnist_classifier.keras"))
    model, acc = train_mnist_classifier(cfg, verbose=0)
    return model


@pytest.fixture(scope="session")
def trained_vae(tmp_path_factory, isolated_models_dir):
    """MNIST VAE, ≤ 12 epochs on 20k images."""
    from vae.model import VAEConfig
    from vae.train import train_vae

    d = tmp_path_factory.mktemp("vae_run")
    cfg = VAEConfig(epochs=12, n_train=20000, patience=3, run_dir=str(d / "run"),
                    out=str(isolated_models_dir / "mnist_vae.keras"))
    vae, metrics = train_vae(cfg, verbose=0)
    return vae


@pytest.fixture(scope="session")
def correct_digits(trained_classifier, mnist_test):
    """First 64 test digits the small classifier gets right."""
    import numpy as np

    x, y = mnist_test
    pred = trained_classifier.predict(x, verbose=0).argmax(1)
    idx = np.where(pred == y)[0][:64]
    return x[idx], y[idx]


@pytest.fixture(scope="session")
def pairs(trained_classifier, trained_vae):
    """24 min-max pairs (300 steps, the original code's sym-CE attack) against the small classifier."""
    from tf_inc.manifold.minmax import MinMaxAttack, MinMaxConfig

    att = MinMaxAttack(trained_vae.decoder, trained_classifier,
                       MinMaxConfig(iterations=300, log_every=25, divergence="sym_ce"))
    return att(24, seed=0)
