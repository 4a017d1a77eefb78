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
    Artifact("mnist_vae_2d.keras", "mnist", "vae"),          # Figure 14: same VAE, 2-d latent
    Artifact("mnist_classifier_robust.keras", "mnist", "classifier"),
    Artifact("mnist_classifier_advtrain.keras", "mnist", "classifier"),
    Artifact("mnist_mlp.keras", "mnist", "classifier"),
    Artifact("mnist_cnn_wide.keras", "mnist", "classifier"),
    Artifact("mnist_rbf.keras", "mnist", "classifier"),
    Artifact("celeba_classifier.keras", "celeba", "classifier"),
    Artifact("celeba_generator.keras", "celeba", "generator"),
    Artifact("celeba_classifier_robust.keras", "celeba", "classifier"),
    Artifact("imagenet_squeezenet11.keras", "imagenet", "classifier"),   # converted, not trained
)}


def load(name: str, compile: bool = False):
    """Load ``<models dir>/<name>`` (bounds attached when it is a registered artifact).

    Raises ``FileNotFoundError`` with a hint if absent, and
    :class:`~tf_inc.experiments.manifest.ModelFileError` with one message saying how to restore
    the file when it fails its SHA-256 manifest check (shipped models) or cannot be loaded
    (truncated, corrupt, another architecture, or custom code refused by Keras' safe mode).
    """
    from tf_inc.experiments.manifest import ModelFileError, verify

    import began.model  # noqa: F401  (registers custom classes)
    import tf_inc.models  # noqa: F401
    import tf_inc.models.extra_classifiers  # noqa: F401  (registers the RBF layer)
    import vae.model  # noqa: F401

    path = model_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; train it with `python -m tf_inc.training ...`")
    verify(path)
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as e:  # noqa: BLE001  (any failure of the file gets the same advice)
        raise ModelFileError(
            f"cannot load {path}: {type(e).__name__}: {str(e)[:300]}. The file is truncated, corrupt, of "
            "another architecture or carries custom code (refused: Keras safe mode stays on). Delete it "
            "and let the script retrain it, run `make models-retrain`, or restore a shipped model with "
            f"`git checkout -- {path.name}` in the models directory.") from e
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


def mnist_vae_2d(**overrides):
    """The 2-d-latent MNIST VAE of Appendix A's Figure 14 (``VAE(latent_dim=2)``, validation split
    carved from train), trained once and cached as ``mnist_vae_2d.keras``; ``overrides`` are
    :class:`vae.model.VAEConfig` fields used only when it has to be trained."""
    from vae.model import VAEConfig
    from vae.train import train_vae

    cfg = VAEConfig(**{"latent_dim": 2, "run_dir": "runs/mnist_vae_2d",
                       "out": str(model_path("mnist_vae_2d.keras")), **overrides})
    return get_or_train("mnist_vae_2d.keras", lambda: train_vae(cfg, verbose=2))


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


def imagenet_classifier(name: str = "squeezenet", image_size=None, weights_path=None):
    """ImageNet classifier taking [0, 1] RGB: ``squeezenet`` (``imagenet_squeezenet11.keras``, converted from
    ndf's SHA-pinned weights on first use) or ``resnet152`` (the user's Keras weights file)."""
    from tf_inc.models.imagenet import load_classifier

    return load_classifier(name, image_size, weights_path)


def dataset_models(dataset: str):
    """``(classifier, generator, encoder_or_None)`` for ``mnist`` or ``celeba``."""
    if dataset == "mnist":
        vae = mnist_vae()
        return mnist_classifier(), vae.decoder, vae.encode
    if dataset == "celeba":
        return celeba_classifier(), celeba_generator(), None
    raise InputError(f"unknown dataset {dataset!r} (expected mnist or celeba)")
