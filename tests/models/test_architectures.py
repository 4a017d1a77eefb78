"""Shapes and parameter counts against the paper's descriptions (§4.1)."""
import numpy as np

from began.model import build_discriminator, build_generator
from tf_inc.models import celeba_classifier, mnist_classifier
from vae.model import VAE


def test_mnist_classifier():
    m = mnist_classifier()
    # conv5x5x32, conv5x5x64, fc 7*7*64 -> 1024, 1024 -> 10
    expected = (25 * 32 + 32) + (25 * 32 * 64 + 64) + (7 * 7 * 64 * 1024 + 1024) + (1024 * 10 + 10)
    assert m.count_params() == expected
    assert m(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)


def test_celeba_classifier():
    m = celeba_classifier()
    expected = (25 * 3 * 64 + 64) + (25 * 64 * 64 + 64) + (16 * 16 * 64 * 384 + 384) + (384 * 192 + 192) + (192 * 2 + 2)
    assert m.count_params() == expected
    assert m(np.zeros((2, 64, 64, 3), np.float32)).shape == (2, 2)
    assert [l.name for l in m.layers if "norm" in l.name] == ["norm1", "norm2"]


def test_vae_shapes_and_counts():
    v = VAE()
    enc = (784 * 500 + 500) + (500 * 500 + 500) + 2 * (500 * 20 + 20)
    dec = (20 * 500 + 500) + (500 * 500 + 500) + (500 * 784 + 784)
    assert v.encoder.count_params() == enc
    assert v.decoder.count_params() == dec
    mu, logvar = v.encoder(np.zeros((3, 28, 28, 1), np.float32))
    assert mu.shape == logvar.shape == (3, 20)
    out = v.decoder(np.zeros((3, 20), np.float32)).numpy()
    assert out.shape == (3, 28, 28, 1) and out.min() >= 0 and out.max() <= 1
    assert v.decoder.prior_std == 1.0 and v.decoder.bounds == (0.0, 1.0)


def test_began_generator():
    g = build_generator()
    # dense 128 -> 8*8*128, four blocks of two 3x3x128 convs, 3x3 conv -> 3 channels
    expected = (128 * 8 * 8 * 128 + 8 * 8 * 128) + 8 * (9 * 128 * 128 + 128) + (9 * 128 * 3 + 3)
    assert g.count_params() == expected
    assert g(np.zeros((2, 128), np.float32)).shape == (2, 64, 64, 3)
    # the paper's prior z ~ N(0, 4I) travels with the generator
    assert g.prior_std == 2.0 and g.latent_dim == 128 and g.bounds == (-1.0, 1.0)
    assert abs(float(np.std(g.sample_prior(4000, seed=0).numpy())) - 2.0) < 0.02


def test_began_discriminator_is_an_autoencoder():
    d = build_discriminator()
    assert d(np.zeros((2, 64, 64, 3), np.float32)).shape == (2, 64, 64, 3)


def test_generator_prior_survives_save_load(tmp_path):
    import keras

    g = build_generator(hidden=8, convs_per_block=1)
    g.save(tmp_path / "g.keras")
    g2 = keras.saving.load_model(tmp_path / "g.keras", compile=False)
    assert g2.prior_std == 2.0 and g2.bounds == (-1.0, 1.0) and g2.latent_dim == 128
    z = g.sample_prior(2, seed=1)
    np.testing.assert_allclose(g(z).numpy(), g2(z).numpy(), atol=1e-6)
