"""Where data caches, trained models and results live.

Every location can be overridden with an environment variable so that tests,
CI and users with their own layouts never fight over one directory.

* ``TF_INC_MODELS``  – trained artifacts (default ``<repo>/models``)
* ``TF_INC_DATA``    – dataset caches such as ``mnist.npz`` (default ``<repo>/data_cache``)
* ``TF_INC_CELEBA``  – a CelebA folder or tfds manual dir (default ``<repo>/data/celeba``)
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env_dir(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    path = Path(value).expanduser() if value else default
    return path


def models_dir() -> Path:
    """Directory holding trained ``.keras`` artifacts (``$TF_INC_MODELS``)."""
    return _env_dir("TF_INC_MODELS", REPO_ROOT / "models")


def data_cache_dir() -> Path:
    """Directory holding converted dataset caches (``$TF_INC_DATA``)."""
    return _env_dir("TF_INC_DATA", REPO_ROOT / "data_cache")


def celeba_dir() -> Path:
    """Default CelebA location (``$TF_INC_CELEBA``)."""
    return _env_dir("TF_INC_CELEBA", REPO_ROOT / "data" / "celeba")


def model_path(name: str) -> Path:
    """Path of the artifact ``name`` (e.g. ``mnist_classifier.keras``) in the models dir."""
    return models_dir() / name
