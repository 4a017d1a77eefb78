"""Shipped-model manifest: hashes recorded at save, checked at load, clear errors on bad files."""
import json

import keras
import numpy as np
import pytest

from tf_inc.experiments import manifest, zoo
from tf_inc.paths import models_dir


def _small_model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(np.random.rand(8, 28, 28, 1).astype("float32"), np.arange(8) % 10, verbose=0)
    return m


@pytest.fixture()
def shipped(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_INC_MODELS", str(tmp_path))
    m = _small_model()
    path = tmp_path / "mnist_classifier.keras"
    entry = manifest.save_and_record(m, path, command="python -m tf_inc.training mnist-classifier",
                                     config={"seed": 0}, metrics={"val_accuracy": 0.5})
    return m, path, entry


def test_record_then_load_verifies_and_drops_optimizer(shipped):
    m, path, entry = shipped
    assert models_dir() == path.parent
    data = json.loads((path.parent / "MANIFEST.json").read_text())
    assert data["models"]["mnist_classifier.keras"]["sha256"] == manifest.sha256_file(path) == entry["sha256"]
    assert entry["command"].startswith("python -m tf_inc.training") and entry["config"]["seed"] == 0
    assert manifest.verify(path) is True
    loaded = zoo.load("mnist_classifier.keras")
    assert getattr(loaded, "optimizer", None) is None  # inference model only
    for a, b in zip(loaded.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.bounds == (0.0, 1.0)  # registry bounds attached


def test_unlisted_file_is_not_checked(tmp_path):
    p = tmp_path / "x.keras"
    p.write_bytes(b"abc")
    assert manifest.verify(p) is False


def test_truncated_shipped_file_is_refused_with_restore_advice(shipped):
    _, path, _ = shipped
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(manifest.ModelFileError, match="git checkout|models-retrain"):
        zoo.load("mnist_classifier.keras")


def test_same_size_tampered_file_is_refused(shipped):
    _, path, _ = shipped
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(manifest.ModelFileError, match="SHA-256"):
        zoo.load("mnist_classifier.keras")


def test_corrupt_unlisted_model_gets_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_INC_MODELS", str(tmp_path))
    (tmp_path / "mnist_vae.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(manifest.ModelFileError, match="truncated, corrupt"):
        zoo.load("mnist_vae.keras")


def test_broken_manifest_json_is_reported(tmp_path):
    (tmp_path / "MANIFEST.json").write_text("{not json")
    (tmp_path / "a.keras").write_bytes(b"x")
    with pytest.raises(manifest.ModelFileError, match="not valid JSON"):
        manifest.verify(tmp_path / "a.keras")
