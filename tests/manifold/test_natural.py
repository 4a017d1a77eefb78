"""Natural adversaries (Zhao et al.) in the latent space of the session's small MNIST VAE."""
import numpy as np
import pytest

from tf_inc.errors import InputError
from tf_inc.manifold.natural import (
    NaturalAdversaryConfig,
    NaturalAdversarySearch,
    latent_distance_scale,
    natural_adversaries,
)

FAST = dict(samples=60, step=0.05, max_iterations=40)


@pytest.fixture(scope="module")
def digits(correct_digits):
    x, y = correct_digits
    return x[:8], y[:8]


@pytest.fixture(scope="module")
def hybrid(trained_vae, trained_classifier, digits):
    search = NaturalAdversarySearch(trained_vae.decoder, trained_classifier, NaturalAdversaryConfig(**FAST),
                                    encoder=trained_vae.encode)
    return search, search(*digits)


def test_hybrid_search_changes_the_label_close_to_the_code(trained_vae, trained_classifier, digits, hybrid,
                                                           mnist_test):
    x, y = digits
    _, res = hybrid
    assert res.found.all()
    pred = trained_classifier(res.x_adv).numpy().argmax(1)
    np.testing.assert_array_equal(pred, res.label_adv)                    # x̃ = G(z̃) and its label
    assert np.all(res.label_adv != y)                                     # the label changed
    np.testing.assert_allclose(res.x_adv, trained_vae.decoder(res.z_adv).numpy(), atol=1e-5)
    np.testing.assert_allclose(res.distance, np.linalg.norm(res.z_adv - res.z, axis=1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.z, trained_vae.encode(x).numpy(), atol=1e-5)
    # close in latent space: well inside the typical distance between codes of different digits
    xs, ys = mnist_test
    scale = latent_distance_scale(trained_vae.encode(xs[:200]).numpy(), ys[:200])
    assert np.median(res.distance) < 0.5 * scale
    assert res.evaluations == FAST["samples"] * int(res.iterations.sum())


def test_iterative_rings_hybrid_shrinks_and_targets_work(trained_vae, trained_classifier, digits, hybrid):
    x, y = digits
    search, hy = hybrid
    it = natural_adversaries(trained_vae.decoder, trained_classifier, x, y, encoder=trained_vae.encode,
                             config=NaturalAdversaryConfig(method="iterative", samples=60, step=0.25))
    assert it.found.all() and np.all(it.label_adv != y)
    # the iterative search stops in the first ring [(k-1)Δr, kΔr) that holds an adversary
    assert np.all(it.distance < 0.25 * it.iterations + 1e-5)
    assert np.all(it.distance >= 0.25 * (it.iterations - 1) - 1e-5)
    assert np.median(hy.distance) <= np.median(it.distance) + 0.25   # hybrid's fine phase is at least as close
    target = (y[:6] + 1) % 10
    tg = search.search(it.z[:6], y[:6], target=target)
    assert tg.found.mean() >= 0.5 and np.all(tg.label_adv[tg.found] == target[tg.found])


def test_input_checks(trained_vae, trained_classifier, digits):
    x, y = digits
    with pytest.raises(InputError, match="method"):
        NaturalAdversaryConfig(method="gradient").validate()
    with pytest.raises(InputError, match="samples"):
        NaturalAdversaryConfig(samples=0).validate()
    with pytest.raises(InputError, match="step"):
        NaturalAdversaryConfig(step=-1.0).validate()
    search = NaturalAdversarySearch(trained_vae.decoder, trained_classifier, NaturalAdversaryConfig(**FAST))
    with pytest.raises(InputError, match="encoder"):
        search(x, y)                                           # no encoder given
    with pytest.raises(InputError, match="z"):
        search.search(np.zeros((2, 3), np.float32), y[:2])
    with pytest.raises(InputError, match="y"):
        search.search(np.zeros((2, 20), np.float32), y[:3])
    with pytest.raises(InputError, match="latent"):
        search.latents(x, latent="pca")
    with pytest.raises(InputError, match="must lie in"):
        search.latents(x * 255, latent="inversion")
