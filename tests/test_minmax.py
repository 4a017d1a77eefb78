"""Min-max attack (eq. 9) and robust manifold training (eq. 10) on the session's small MNIST models."""
import numpy as np
import pytest

from tf_inc.minmax import MinMaxAttack, MinMaxConfig, evaluate_pairs, kl, pair_metrics


def test_budget_convention():
    cfg = MinMaxConfig()
    assert cfg.eta2(64 * 64 * 3) == pytest.approx(2.46, abs=0.01)   # the paper's CelebA η²
    assert cfg.eta2(784) == pytest.approx(0.1568)


def test_unknown_divergence_is_refused_up_front():
    with pytest.raises(ValueError, match="divergence must be one of"):
        MinMaxAttack(None, None, MinMaxConfig(divergence="kl"))


def test_pair_metrics_by_hand():
    p = np.array([[0.9, 0.1, 0.0], [0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.4, 0.35, 0.25]])
    q = np.array([[0.1, 0.9, 0.0], [0.5, 0.5, 0.0], [0.3, 0.7, 0.0], [0.35, 0.4, 0.25]])
    m = pair_metrics(p, q, np.array([True, True, False, True]))
    assert m["valid_frac"] == pytest.approx(3 / 4)
    assert m["differ_frac"] == pytest.approx(2 / 3)              # pairs 0 and 3 flip
    assert m["confident_differ_frac"] == pytest.approx(1 / 3)    # pair 3 flips between uncertain outputs
    assert m["mean_kl"] == pytest.approx((0.8 * np.log(9) + 0.0 + 0.05 * np.log(8 / 7)) / 3, rel=1e-5)
    assert kl(p, p).max() == pytest.approx(0.0, abs=1e-9)


def test_trainer_cycles_the_attack_divergences(trained_classifier, trained_vae):
    """With several attack divergences, refresh r uses divergence r mod len (same start points)."""
    import tensorflow as tf

    from tf_inc.robust import RobustManifoldTrainer

    mm = MinMaxConfig()
    trainer = RobustManifoldTrainer(trained_classifier, trained_vae.decoder, mm, attack_steps=20, n_pairs=4,
                                    every_k=2, attack_divergences=["sym_ce", "l2"])
    got = {}
    for step in (0, 2, 4):
        trainer.step_counter.assign(step)
        got[step] = trainer._pairs().numpy()
    for step, div in ((0, "sym_ce"), (2, "l2"), (4, "sym_ce")):
        trainer.step_counter.assign(step)
        seed = tf.stack([tf.constant(step, tf.int32), 7])
        z0 = tf.random.stateless_normal([4, 20], seed, stddev=trainer.attack.prior_std)
        z20 = z0 + mm.init_noise * trainer.attack.prior_std * tf.random.stateless_normal([4, 20], seed + 1)
        att = MinMaxAttack(trained_vae.decoder, trained_classifier, MinMaxConfig(divergence=div))
        bz, bz2, _, _ = att._run(z0, z20, tf.constant(20))
        want = trained_vae.decoder(tf.concat([bz, bz2], 0)).numpy()
        np.testing.assert_allclose(got[step], want, atol=1e-5)
    assert not np.allclose(got[0], got[2], atol=1e-4)


@pytest.fixture(scope="module")
def pairs(trained_classifier, trained_vae):
    att = MinMaxAttack(trained_vae.decoder, trained_classifier, MinMaxConfig(iterations=300, log_every=25))
    return att(24, seed=0)


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


@pytest.mark.slow
def test_robust_training_softens_the_classifier_on_the_manifold(trained_classifier, trained_vae, pairs,
                                                                 mnist_test, tmp_path, isolated_models_dir):
    import keras

    from tf_inc.robust import RobustManifoldTrainer

    robust = keras.models.clone_model(trained_classifier)
    robust.set_weights(trained_classifier.get_weights())
    trainer = RobustManifoldTrainer(robust, trained_vae.decoder, MinMaxConfig(), attack_steps=60, n_pairs=24,
                                    mu=5.0, every_k=1)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-4))
    from tf_inc.data.mnist import load_mnist

    x_tr, y_tr = load_mnist("train", 2000)
    hist = trainer.fit(x_tr, y_tr, batch_size=50, epochs=1, steps_per_epoch=40, verbose=0)
    assert {"ce", "adv", "loss", "ce_step", "adv_step"} <= set(hist.history)
    before = pair_metrics(pairs.p, pairs.p2, pairs.valid)
    after_p = evaluate_pairs(robust, pairs.x, pairs.x2)
    after = pair_metrics(after_p["p"], after_p["p2"], pairs.valid)
    assert after["mean_kl"] < 0.5 * before["mean_kl"]                   # old pairs: far less divergence
    x, y = mnist_test
    acc_before = (trained_classifier.predict(x, verbose=0).argmax(1) == y).mean()
    acc_after = (robust.predict(x, verbose=0).argmax(1) == y).mean()
    assert acc_after > acc_before - 0.02                                # clean accuracy kept


def test_latent_space_attack_keeps_the_inverted_code(trained_classifier, trained_vae, correct_digits):
    from tf_inc.inversion import InversionConfig, project
    from tf_inc.minmax import latent_space_attack

    x, _ = correct_digits
    x = x[:8]
    inv = InversionConfig(steps=200, restarts=1)
    res = latent_space_attack(trained_vae.decoder, trained_classifier, x, MinMaxConfig(iterations=150), inv)
    z_star = project(trained_vae.decoder, x, inv).z
    np.testing.assert_allclose(res.z, z_star, atol=1e-5)          # z stays the inversion of x
    assert np.abs(res.z2 - res.z).max() > 1e-3                    # z' moved
    assert res.valid.mean() > 0.5
