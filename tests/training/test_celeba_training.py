"""CelebA classifier and BEGAN training run end to end on fixture files."""
import json

import numpy as np
import pytest
import tensorflow as tf

from tests.data.celeba_fixture import make_celeba


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba")
    make_celeba(root, n=24)
    return root


def _losses(run_dir, key):
    return [json.loads(l)[key] for l in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_celeba_classifier_trains_on_fixture(celeba_root, tmp_path):
    from tf_inc.training.classifier import (
        CelebAClassifierConfig,
        train_celeba_classifier,
    )

    cfg = CelebAClassifierConfig(epochs=4, batch_size=8, n_val=0, celeba_dir=str(celeba_root),
                                 run_dir=str(tmp_path / "run"), out=str(tmp_path / "clf.keras"))
    model, acc = train_celeba_classifier(cfg, verbose=0)
    losses = _losses(tmp_path / "run", "loss")
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert (tmp_path / "clf.keras").exists()
    assert model(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 2)


def test_began_trains_and_k_t_follows_the_equilibrium_update(celeba_root, tmp_path):
    import keras

    from began.train import BEGANConfig, train_began

    cfg = BEGANConfig(z_dim=16, hidden=8, convs_per_block=1, batch_size=4, steps=40, steps_per_round=10,
                      learning_rate=1e-3, lambda_k=0.01, n_images=24, celeba_dir=str(celeba_root),
                      run_dir=str(tmp_path / "run"), out_dir=str(tmp_path))
    model, logs = train_began(cfg, verbose=0)
    d_real = _losses(tmp_path / "run", "d_real")
    assert len(d_real) == 4 and d_real[-1] < d_real[0]          # the autoencoder learns
    assert (tmp_path / "celeba_generator.keras").exists()
    g = keras.saving.load_model(tmp_path / "celeba_generator.keras", compile=False)
    assert g.prior_std == 2.0 and g.latent_dim == 16

    # one explicit step: k_{t+1} = clip(k_t + λ_k (γ L(x) − L(G(z))), 0, 1)
    x = tf.random.uniform((4, 64, 64, 3), -1, 1, seed=1)
    model.reset_metrics()
    k_before = float(model.k_t.numpy())
    out = model.train_step((x,))
    expected = np.clip(k_before + cfg.lambda_k * (cfg.gamma * float(out["d_real"]) - float(out["g_loss"])), 0, 1)
    assert float(model.k_t.numpy()) == pytest.approx(expected, abs=1e-6)
    assert float(out["m_global"]) == pytest.approx(
        float(out["d_real"]) + abs(cfg.gamma * float(out["d_real"]) - float(out["g_loss"])), rel=1e-5)
    assert float(out["d_loss"]) == pytest.approx(float(out["d_real"]) - k_before * float(out["d_fake"]), rel=1e-5)
