"""Shared fixtures: the shipped trained MNIST models, test data and min-max pairs (fixed seeds).

Tests never write to the user's ``models/`` directory and never touch the network:
``TF_INC_MODELS`` points to a session temp dir (holding copies of the shipped models the tests
need) before anything is imported.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- scheduling
#: Measured seconds per test file (``make test-durations`` rewrites it from a full run). The
#: suite runs on pytest-xdist with ``--dist loadfile --no-loadscope-reorder``: whole files go to
#: whichever worker is free, in collection order. Collecting the longest files first (longest
#: processing time first) leaves only short files for the end, so the two workers finish
#: together instead of one waiting while the other runs a long file it picked up last.
DURATIONS = Path(__file__).with_name("file_durations.json")


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(session, config, items):
    import json

    try:
        known = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return
    if not known:
        return
    typical = sorted(known.values())[len(known) // 2]          # a file not measured yet: the median
    order = {}
    for it in items:                                          # first appearance of each file
        order.setdefault(_file_of(it.nodeid), len(order))
    items.sort(key=lambda it: (-known.get(_file_of(it.nodeid), typical), order[_file_of(it.nodeid)]))


_RECORD = os.environ.get("TF_INC_RECORD_DURATIONS")
_spent: dict = {}


def pytest_runtest_logreport(report):
    if _RECORD and not os.environ.get("PYTEST_XDIST_WORKER"):   # on the controller (or a plain run)
        f = _file_of(report.nodeid)
        _spent[f] = _spent.get(f, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    if _RECORD and _spent and not os.environ.get("PYTEST_XDIST_WORKER"):
        from tf_inc.io import atomic_write_json

        atomic_write_json(Path(_RECORD), {k: round(v, 1) for k, v in sorted(_spent.items())})


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


def _shipped(name, isolated_models_dir):
    """Copy the shipped, manifest-checked ``models/<name>`` into the session's models dir and load it.

    The suite tests behaviour on the project's real trained models (``make models-retrain``
    regenerates them) instead of retraining small ones every session: the training code has its
    own tests (``tests/training``), and the shipped files are what users run.
    """
    import shutil

    from tf_inc.experiments import zoo
    from tf_inc.experiments.manifest import verify

    src = REPO / "models" / name
    verify(src)                                    # a corrupt or stale file fails here, loudly
    shutil.copyfile(src, isolated_models_dir / name)
    return zoo.load(name)


@pytest.fixture(scope="session")
def trained_classifier(isolated_models_dir):
    """The shipped deep-MNIST classifier (paper's architecture, 6 epochs, 99.4 % test accuracy)."""
    return _shipped("mnist_classifier.keras", isolated_models_dir)


@pytest.fixture(scope="session")
def trained_vae(isolated_models_dir):
    """The shipped MNIST VAE (20-d latent, 500 hidden units, the paper's decoder)."""
    return _shipped("mnist_vae.keras", isolated_models_dir)


@pytest.fixture(scope="session")
def shipped_extra(isolated_models_dir):
    """The notes' shipped extra classifiers by kind (MLP, wide CNN, RBF net), also in the models dir."""
    from tf_inc.models.extra_classifiers import ARTIFACT_NAMES

    return {kind: _shipped(name, isolated_models_dir) for kind, name in ARTIFACT_NAMES.items()}


@pytest.fixture(scope="session")
def correct_digits(trained_classifier, mnist_test):
    """First 64 test digits the classifier gets right."""
    import numpy as np

    x, y = mnist_test
    pred = trained_classifier.predict(x, verbose=0).argmax(1)
    idx = np.where(pred == y)[0][:64]
    return x[idx], y[idx]


@pytest.fixture(scope="session")
def pairs(trained_classifier, trained_vae):
    """24 min-max pairs (300 steps, the original code's sym-CE attack) against the classifier."""
    from tf_inc.manifold.minmax import MinMaxAttack, MinMaxConfig

    att = MinMaxAttack(trained_vae.decoder, trained_classifier,
                       MinMaxConfig(iterations=300, log_every=25, divergence="sym_ce"))
    return att(24, seed=0)
