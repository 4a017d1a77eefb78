"""Find trained artifacts by name in the models dir, training any that is missing.

Every script gets its models here, so a fresh clone works without a separate
training step: a missing artifact is trained with the paper's defaults (and
the script says so) instead of failing.
"""
from __future__ import annotations

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


def _get_or_train(name: str, train) -> object:
    """Load ``name`` from the models dir, first training it with ``train()`` if it is missing."""
    if not model_path(name).exists():
        print(f"[tf-inc] {model_path(name)} is missing: training it now with the paper's defaults "
              "(this happens once)", flush=True)
        train()
    return load(name)


def mnist_classifier():
    from tf_inc.train_classifier import MnistClassifierConfig, train_mnist_classifier

    return _get_or_train("mnist_classifier.keras", lambda: train_mnist_classifier(MnistClassifierConfig(), verbose=2))


def mnist_vae():
    from vae.model import VAEConfig
    from vae.train import train_vae

    return _get_or_train("mnist_vae.keras", lambda: train_vae(VAEConfig(), verbose=2))


def celeba_classifier():
    from tf_inc.train_classifier import CelebAClassifierConfig, train_celeba_classifier

    return _get_or_train("celeba_classifier.keras",
                         lambda: train_celeba_classifier(CelebAClassifierConfig(), verbose=2))


def celeba_generator():
    from began.train import BEGANConfig, train_began

    return _get_or_train("celeba_generator.keras", lambda: train_began(BEGANConfig(), verbose=2))


def dataset_models(dataset: str):
    """``(classifier, generator, encoder_or_None)`` for ``mnist`` or ``celeba``."""
    if dataset == "mnist":
        vae = mnist_vae()
        return mnist_classifier(), vae.decoder, vae.encode
    if dataset == "celeba":
        return celeba_classifier(), celeba_generator(), None
    raise ValueError(f"unknown dataset {dataset!r} (expected mnist or celeba)")
