"""Find trained artifacts by name in the models dir, training any that is missing.

Every script gets its models here, so a fresh clone works without a separate
training step: a missing artifact is trained with the paper's defaults (and
the script says so) instead of failing.
"""
from __future__ import annotations

from pathlib import Path

import keras

from tf_inc.paths import model_path


def load(name: str, compile: bool = False):
    """Load ``<models dir>/<name>``; raise ``FileNotFoundError`` with a hint if absent."""
    import began.model  # noqa: F401  (registers custom classes)
    import tf_inc.models  # noqa: F401
    import vae.model  # noqa: F401

    path = model_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; train it with `python -m tf_inc.train ...`")
    return keras.saving.load_model(path, compile=compile)


def _announce(name: str) -> None:
    print(f"[tf-inc] {model_path(name)} is missing: training it now with the paper's defaults "
          "(this happens once)", flush=True)


def mnist_classifier():
    name = "mnist_classifier.keras"
    if not model_path(name).exists():
        from tf_inc.train_classifier import MnistClassifierConfig, train_mnist_classifier

        _announce(name)
        train_mnist_classifier(MnistClassifierConfig(run_dir=str(Path("runs") / "mnist_classifier")), verbose=2)
    return load(name)


def mnist_vae():
    name = "mnist_vae.keras"
    if not model_path(name).exists():
        from vae.model import VAEConfig
        from vae.train import train_vae

        _announce(name)
        train_vae(VAEConfig(), verbose=2)
    return load(name)


def celeba_classifier():
    name = "celeba_classifier.keras"
    if not model_path(name).exists():
        from tf_inc.train_classifier import CelebAClassifierConfig, train_celeba_classifier

        _announce(name)
        train_celeba_classifier(CelebAClassifierConfig(), verbose=2)
    return load(name)


def celeba_generator():
    name = "celeba_generator.keras"
    if not model_path(name).exists():
        from began.train import BEGANConfig, train_began

        _announce(name)
        train_began(BEGANConfig(), verbose=2)
    return load(name)


def dataset_models(dataset: str):
    """``(classifier, generator, encoder_or_None)`` for ``mnist`` or ``celeba``."""
    if dataset == "mnist":
        vae = mnist_vae()
        return mnist_classifier(), vae.decoder, vae.encode
    if dataset == "celeba":
        return celeba_classifier(), celeba_generator(), None
    raise ValueError(f"unknown dataset {dataset!r} (expected mnist or celeba)")
