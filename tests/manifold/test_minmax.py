"""Min-max attack (eq. 9) and robust manifold training (eq. 10) on the session's small MNIST models."""
import numpy as np
import pytest

from tf_inc.manifold.minmax import MinMaxAttack, MinMaxConfig, evaluate_pairs


def test_unknown_divergence_is_refused_up_front():
    with pytest.raises(ValueError, match="divergence must be one of"):
        MinMaxAttack(None, None, MinMaxConfig(divergence="kl"))


def test_attack_finds_valid_close_pairs_the_classifier_separates(pairs, trained_classifier):
    assert pairs.x.shape == (24, 28, 28, 1)
    assert pairs.valid.mean() >= 0.8
    np.testing.assert_array_less(pairs.msd[pairs.valid], 5e-4)
    msd = ((pairs.x - pairs.x2) ** 2).reshape(24, -1).mean(1)
    np.testing.assert_allclose(msd, pairs.msd, rtol=1e-4, atol=1e-9)
    m = pairs.metrics()
    assert m["differ_frac"] > 0.2 and m["mean_kl"] > 0.1
    # the reported probabilities are the classifier's on the reported images
    again = evaluate_pairs(trained_classifier, pairs.x, pairs.x2)
    np.testing.assert_allclose(again["p"], pairs.p, atol=1e-5)
    h = pairs.history
    assert len(h["step"]) == len(h["mean_output_l2"]) == 12
    assert h["mean_output_l2"][-1] > h["mean_output_l2"][0]          # the attack makes progress


def test_best_pair_is_kept_not_the_last(trained_classifier, trained_vae):
    att = MinMaxAttack(trained_vae.decoder, trained_classifier, MinMaxConfig(iterations=120, log_every=10))
    short = att(8, seed=1, iterations=60)
    longer = att(8, seed=1, iterations=120)
    both = short.valid & longer.valid
    assert np.all(longer.divergence[both] >= short.divergence[both] - 1e-4)


def test_progress_bar_runs_the_same_search_in_segments(trained_classifier, trained_vae, capsys):
    """progress=True shows a step bar (the search then runs in compiled segments): same pairs and log."""
    att = MinMaxAttack(trained_vae.decoder, trained_classifier, MinMaxConfig(iterations=150, log_every=10))
    plain = att(6, seed=2)
    capsys.readouterr()
    shown = att(6, seed=2, progress=True, segment_steps=50)
    err = capsys.readouterr().err
    assert "min-max" in err and "150/150" in err
    np.testing.assert_allclose(shown.z, plain.z, atol=1e-5)
    np.testing.assert_allclose(shown.z2, plain.z2, atol=1e-5)
    np.testing.assert_array_equal(shown.valid, plain.valid)
    for k in ("mean_output_l2", "valid_frac", "mean_lambda"):
        np.testing.assert_allclose(shown.history[k], plain.history[k], rtol=1e-4, atol=1e-6)


def test_latent_space_attack_keeps_the_inverted_code(trained_classifier, trained_vae, correct_digits):
    from tf_inc.manifold.inversion import InversionConfig, project
    from tf_inc.manifold.minmax import latent_space_attack

    x, _ = correct_digits
    x = x[:8]
    inv = InversionConfig(steps=200, restarts=1)
    res = latent_space_attack(trained_vae.decoder, trained_classifier, x, MinMaxConfig(iterations=150), inv)
    z_star = project(trained_vae.decoder, x, inv).z
    np.testing.assert_allclose(res.z, z_star, atol=1e-5)          # z stays the inversion of x
    assert np.abs(res.z2 - res.z).max() > 1e-3                    # z' moved
    assert res.valid.mean() > 0.5


@pytest.mark.parametrize("n_pairs, kw, match", [
    (4, dict(iterations=-5), "iterations: must be >= 0"),
    (0, {}, "n_pairs: must be >= 1"),
    (2.5, {}, "n_pairs: expected an integer"),
    (2, dict(z_init=np.full((2, 20), np.nan, np.float32)), "z_init"),
    (2, dict(z_init=np.zeros((3, 20), np.float32)), "z_init"),
])
def test_bad_arguments_raise_input_error(trained_classifier, trained_vae, n_pairs, kw, match):
    from tf_inc.errors import InputError

    att = MinMaxAttack(trained_vae.decoder, trained_classifier, MinMaxConfig(iterations=5))
    with pytest.raises(InputError, match=match):
        att(n_pairs, **kw)
