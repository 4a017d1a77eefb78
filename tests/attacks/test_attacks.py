"""Invariants of every attack, and real effect on a trained MNIST classifier."""
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import bim, cw_l0, cw_l2, cw_linf, fgsm, fgsm_multi_eps, pgd

BOUNDS = (0.0, 1.0)


def _acc(model, x, y):
    return float((model(x, training=False).numpy().argmax(1) == y).mean())


@pytest.fixture(scope="module")
def batch(correct_digits):
    x, y = correct_digits
    return x[:48], y[:48]


EPS_ATTACKS = {
    "fgsm": lambda m, x, y, e, **k: fgsm(m, x, y, e, **k),
    "bim": lambda m, x, y, e, **k: bim(m, x, y, e, nb_iter=5, **k),
    "pgd_inf": lambda m, x, y, e, **k: pgd(m, x, y, e, nb_iter=5, **k),
    "pgd_l2": lambda m, x, y, e, **k: pgd(m, x, y, e * 10, nb_iter=5, norm="2", **k),
}


@pytest.mark.parametrize("name", sorted(EPS_ATTACKS))
def test_budget_attack_invariants(name, trained_classifier, batch):
    x, y = batch
    x0 = tf.constant(x)
    attack = EPS_ATTACKS[name]
    # ε = 0 returns x (the random start of PGD is inside a zero ball too)
    np.testing.assert_allclose(attack(trained_classifier, x0, y, 0.0).numpy(), x, atol=1e-6)
    xa = attack(trained_classifier, x0, y, 0.1).numpy()
    np.testing.assert_array_equal(x0.numpy(), x)                    # input untouched
    assert xa.min() >= BOUNDS[0] and xa.max() <= BOUNDS[1]          # in bounds
    d = (xa - x).reshape(len(x), -1)
    if name == "pgd_l2":
        assert np.linalg.norm(d, axis=1).max() <= 1.0 + 1e-4       # inside the ℓ2 ball (ε·10)
    else:
        assert np.abs(d).max() <= 0.1 + 1e-6                        # inside the ℓ∞ ball
    assert _acc(trained_classifier, xa, y) < 1.0


def test_list_of_budgets_is_one_batched_call(trained_classifier, batch):
    x, y = batch
    eps = [0.0, 0.1, 0.3]
    many = pgd(trained_classifier, x, y, eps, nb_iter=10, rand_init=False)
    assert len(many) == 3
    for e, xa in zip(eps, many):
        single = pgd(trained_classifier, x, y, e, nb_iter=10, rand_init=False)
        np.testing.assert_allclose(xa.numpy(), single.numpy(), atol=1e-5)
    accs = [_acc(trained_classifier, xa, y) for xa in many]
    assert accs[0] == 1.0 and accs[0] >= accs[1] >= accs[2]
    f = fgsm_multi_eps(trained_classifier, x, y, eps)
    assert [_acc(trained_classifier, xa, y) for xa in f][0] == 1.0


def test_attack_strength_on_trained_classifier(trained_classifier, batch):
    x, y = batch
    assert _acc(trained_classifier, fgsm(trained_classifier, x, y, 0.3), y) < 0.25      # one step (measured 0.17)
    assert _acc(trained_classifier, pgd(trained_classifier, x, y, 0.3, eps_iter=0.01, nb_iter=40), y) <= 0.02
    assert _acc(trained_classifier, bim(trained_classifier, x, y, 0.3, eps_iter=0.03), y) <= 0.05


def test_targeted_pgd_reaches_the_target(trained_classifier, batch):
    x, y = batch
    target = (y + 1) % 10
    xa = pgd(trained_classifier, x, target, 0.3, eps_iter=0.01, nb_iter=40, targeted=True)
    assert (trained_classifier(xa).numpy().argmax(1) == target).mean() > 0.9


def test_bounds_travel_with_the_data(trained_classifier, batch):
    x, y = batch
    xs = x * 2 - 1                                # a [-1, 1] copy of the data
    model = lambda t: trained_classifier((t + 1) / 2)  # noqa: E731
    xa = pgd(model, xs, y, 0.2, nb_iter=5, bounds=(-1.0, 1.0)).numpy()
    assert xa.min() >= -1.0 and xa.max() <= 1.0 and xa.min() < -0.5


@pytest.mark.parametrize("attack, kw", [
    # budgets well below the defaults (measured on these 16 digits: all fooled; median ℓ2 1.57,
    # ℓ∞ 0.21, ℓ0 38.5 pixels against the bounds below)
    (cw_l2, dict(binary_search_steps=3, max_iterations=100, learning_rate=5e-2)),
    (cw_linf, dict(max_iterations=75, learning_rate=5e-2, initial_const=1e-1, outer_steps=8)),
    (cw_l0, dict(max_iterations=60, learning_rate=5e-2, outer_steps=8)),
])
def test_carlini_wagner(attack, kw, trained_classifier, batch, capsys):
    x, y = batch
    x, y = x[:16], y[:16]
    x0 = tf.constant(x)
    xa = attack(trained_classifier, x0, y, progress=True, **kw).numpy()
    np.testing.assert_array_equal(x0.numpy(), x)
    # one bar over the outer rounds (binary search / τ-c / pruning), ending with the successes
    err = capsys.readouterr().err
    rounds = kw.get("binary_search_steps", kw.get("outer_steps"))
    assert {cw_l2: "CW-ℓ2 binary search", cw_linf: "CW-ℓ∞ τ/c rounds", cw_l0: "CW-ℓ0 pruning rounds"}[attack] in err
    assert "succeeded" in err and (f"{rounds}/{rounds}" in err or "all settled" in err)
    assert xa.min() >= 0.0 and xa.max() <= 1.0
    success = trained_classifier(xa).numpy().argmax(1) != y
    assert success.mean() >= 0.9
    d = (xa - x).reshape(len(x), -1)[success]
    if attack is cw_l2:
        assert np.median(np.linalg.norm(d, axis=1)) < 2.5         # small ℓ2 (FGSM-0.3 has ~6)
    if attack is cw_linf:
        assert np.median(np.abs(d).max(1)) < 0.25
    if attack is cw_l0:
        assert np.median((np.abs(d) > 1e-3).sum(1)) < 200          # a fraction of the 784 pixels


def test_cw_l2_confidence_margin(trained_classifier, batch):
    x, y = batch
    x, y = x[:8], y[:8]
    xa = cw_l2(trained_classifier, x, y, confidence=5.0, binary_search_steps=3, max_iterations=100,
               learning_rate=5e-2)
    z = trained_classifier(xa).numpy()
    fooled = z.argmax(1) != y
    real = z[np.arange(8), y]
    other = np.where(np.eye(10)[y] > 0, -np.inf, z).max(1)
    assert fooled.mean() >= 0.9 and np.all((other - real)[fooled] >= 5.0 - 1e-3)


def test_attacks_run_on_inc_through_bpda(trained_classifier, trained_vae, batch):
    from tf_inc.defences.inc import InvertAndClassify
    from tf_inc.manifold.inversion import InversionConfig

    x, y = batch
    x, y = x[:8], y[:8]
    inc = InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(steps=60, restarts=1))
    xa = pgd(inc.bpda_logits, x, y, 0.3, nb_iter=3, eps_iter=0.1).numpy()
    assert np.abs(xa - x).max() <= 0.3 + 1e-6 and xa.min() >= 0 and xa.max() <= 1
    assert not np.allclose(xa, x)
    with pytest.raises(ValueError, match="BPDA"):
        fgsm(inc.logits, x, y, 0.1)
