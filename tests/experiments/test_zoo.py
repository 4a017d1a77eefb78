"""Scripts find artifacts by name and train missing ones (saying so)."""
import keras
import numpy as np
import pytest

from tf_inc.experiments import zoo


def test_missing_artifact_is_trained_once_and_announced(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TF_INC_MODELS", str(tmp_path))
    calls = []

    def train():
        calls.append(1)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        m.save(tmp_path / "thing.keras")

    m1 = zoo.get_or_train("thing.keras", train)
    assert "thing.keras is missing: training it now" in capsys.readouterr().out
    m2 = zoo.get_or_train("thing.keras", train)
    assert calls == [1] and capsys.readouterr().out == ""
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(m1(x).numpy(), m2(x).numpy())


def test_load_missing_says_how_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_INC_MODELS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="python -m tf_inc.training"):
        zoo.load("nothing.keras")
    with pytest.raises(ValueError, match="unknown dataset"):
        zoo.dataset_models("imagenet")


def test_registered_artifacts_carry_their_bounds(tmp_path, monkeypatch):
    import keras

    from tf_inc.experiments import zoo
    from tf_inc.models import celeba_classifier

    monkeypatch.setenv("TF_INC_MODELS", str(tmp_path))
    m = celeba_classifier()
    keras.saving.save_model(m, tmp_path / "celeba_classifier.keras")
    loaded = zoo.load("celeba_classifier.keras")
    assert loaded.bounds == (-1.0, 1.0) == zoo.ARTIFACTS["celeba_classifier.keras"].bounds
    keras.saving.save_model(m, tmp_path / "unregistered.keras")
    assert not hasattr(zoo.load("unregistered.keras"), "bounds")      # no silent default
