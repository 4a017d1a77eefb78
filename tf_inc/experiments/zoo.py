"""Trained artifacts by name, with the input bounds they carry; missing ones are trained.

Every script gets its models here, so a fresh clone works without a separate
training step: a missing artifact is trained with the paper's defaults (and the
script says so) instead of failing. :data:`ARTIFACTS` is the registry: each
entry names its file, its dataset and so its pixel bounds, which :func:`load`
attaches to the loaded model (:func:`tf_inc.bounds.attach_bounds`) so that every
attack and defence can check its input against them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict

import keras

from tf_inc.bounds import attach_bounds, dataset_bounds
from tf_inc.errors import InputError
from tf_inc.paths import model_path


@dataclass(frozen=True)
class Artifact:
    """A trained model file of the zoo and the dataset whose pixel range it expects."""

    filename: str
    dataset: str
    role: str

    @property
    def bounds(self):
        return dataset_bounds(self.dataset)


ARTIFACTS: Dict[str, Artifact] = {a.filename: a for a in (
    Artifact("mnist_classifier.keras", "mnist", "classifier"),
    Artifact("mnist_vae.keras", "mnist", "vae"),
    Artifact("mnist_classifier_robust.keras", "mnist", "classifier"),
    Artifact("mnist_classifier_advtrain.keras", "mnist", "classifier"),
    Artifact("celeba_classifier.keras", "celeba", "classifier"),
    Artifact("celeba_generator.keras", "celeba", "generator"),
    Artifact("celeba_classifier_robust.keras", "celeba", "classifier"),
)}


def load(name: str, compile: bool = False):
    """Load ``<models dir>/<name>`` (bounds attached when it is a registered artifact).

    Raises ``FileNotFoundError`` with a hint if absent.
    """
    import began.model  # noqa: F401  (registers custom classes)
    import tf_inc.models  # noqa: F401
    import vae.model  # noqa: F401

    path = model_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; train it with `python -m tf_inc.training ...`")
    model = keras.saving.load_model(path, compile=compile)
    if name in ARTIFACTS:
        attach_bounds(model, ARTIFACTS[name].bounds)
        for part in ("decoder", "encoder"):
            if hasattr(model, part) and getattr(model, part) is not None and not hasattr(getattr(model, part), "bounds"):
                attach_bounds(getattr(model, part), ARTIFACTS[name].bounds)
    return model


def get_or_train(name: str, train: Callable[[], object]):
    """Load ``name`` from the models dir, first training it with ``train()`` if it is missing."""
    if not model_path(name).exists():
        print(f"[tf-inc] {model_path(name)} is missing: training it now with the paper's defaults "
              "(this happens once)", flush=True)
        train()
    return load(name)


def mnist_classifier():
    from tf_inc.training.classifier import MnistClassifierConfig, train_mnist_classifier

    return get_or_train("mnist_classifier.keras", lambda: train_mnist_classifier(MnistClassifierConfig(), verbose=2))


def mnist_vae():
    from vae.model import VAEConfig
    from vae.train import train_vae

    return get_or_train("mnist_vae.keras", lambda: train_vae(VAEConfig(), verbose=2))


def celeba_classifier():
    from tf_inc.training.classifier import (
        CelebAClassifierConfig,
        train_celeba_classifier,
    )

    return get_or_train("celeba_classifier.keras",
                        lambda: train_celeba_classifier(CelebAClassifierConfig(), verbose=2))


def celeba_generator():
    from began.train import BEGANConfig, train_began

    return get_or_train("celeba_generator.keras", lambda: train_began(BEGANConfig(), verbose=2))


def robust_classifier(dataset: str = "mnist"):
    """Load ``<dataset>_classifier_robust.keras`` or train it with eq. 10's defaults."""
    from tf_inc.defences.robust_training import (
        RobustTrainingConfig,
        train_robust_classifier,
    )

    return get_or_train(f"{dataset}_classifier_robust.keras",
                        lambda: train_robust_classifier(RobustTrainingConfig(dataset=dataset)))


def adversarially_trained_classifier(dataset: str = "mnist"):
    """Load ``mnist_classifier_advtrain.keras`` or train it (FGSM-RS adversarial training, Wong et al. 2020)."""
    from tf_inc.defences.adversarial_training import (
        AdversarialTrainingConfig,
        train_adversarial_classifier,
    )

    if dataset != "mnist":
        raise InputError(f"adversarial training baseline: MNIST only, got dataset {dataset!r}")
    return get_or_train("mnist_classifier_advtrain.keras",
                        lambda: train_adversarial_classifier(AdversarialTrainingConfig(), verbose=2))


def dataset_models(dataset: str):
    """``(classifier, generator, encoder_or_None)`` for ``mnist`` or ``celeba``."""
    if dataset == "mnist":
        vae = mnist_vae()
        return mnist_classifier(), vae.decoder, vae.encode
    if dataset == "celeba":
        return celeba_classifier(), celeba_generator(), None
    raise InputError(f"unknown dataset {dataset!r} (expected mnist or celeba)")
