"""The latent-space attack (Athalye et al. 2018 on Defense-GAN; INC's min-max break) on the trained
MNIST VAE and classifier: invariants, real effect on a perfect-projector INC, and input checks."""
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import LatentAttackConfig, budget_key, latent_attack
from tf_inc.errors import InputError

BUDGETS = [("2", 4.0), ("inf", 0.3)]
# reduced for test time (defaults: 8 × 1000 inversion steps, 5 × 500 attack steps, c0 = 1)
FAST = dict(inversion_restarts=4, inversion_steps=300, steps=150, binary_search_steps=3, initial_const=0.1)
N = 16


@pytest.fixture(scope="module")
def digits(correct_digits):
    x, y = correct_digits
    return x[:N], y[:N]


@pytest.fixture(scope="module")
def binary_search(trained_vae, trained_classifier, digits):
    x, y = digits
    x0 = x.copy()
    out = latent_attack(trained_vae.decoder, trained_classifier, x, y, BUDGETS, LatentAttackConfig(**FAST))
    np.testing.assert_array_equal(x, x0)                        # input untouched
    return out


def _dist(xa, x, norm):
    d = (xa.astype(np.float64) - x).reshape(len(x), -1)
    return np.abs(d).max(1) if norm == "inf" else np.linalg.norm(d, axis=1)


def _pred(model, x):
    return model(tf.constant(x), training=False).numpy().argmax(1)


def test_every_x_adv_is_within_budget_and_bounds(binary_search, digits, trained_classifier):
    x, y = digits
    assert set(binary_search["x_adv"]) == {"l2_4.0", "linf_0.3"}
    assert binary_search["z0"].shape == (N, 20)
    for norm, eps in BUDGETS:
        key = budget_key(norm, eps)
        xa, ok = binary_search["x_adv"][key], binary_search["success"][key]
        assert xa.shape == x.shape and xa.dtype == np.float32 and ok.dtype == bool
        assert xa.min() >= 0.0 and xa.max() <= 1.0
        d = _dist(xa, x, norm)
        assert np.all(d <= eps * (1 + 1e-5) + 1e-5)
        np.testing.assert_allclose(binary_search["dist"][key], d, atol=1e-6)
        # success ⇒ misclassified by the classifier: a perfect projector (G(z) ↦ G(z)) is broken
        assert np.all(_pred(trained_classifier, xa)[ok] != y[ok])
        assert np.all(binary_search["margin"][key][ok] < 0)


def test_binary_search_breaks_the_perfect_projector(binary_search, capsys):
    rates = {k: float(v.mean()) for k, v in binary_search["success"].items()}
    with capsys.disabled():
        print(f"\nlatent attack (binary search) success on {N} digits: {rates}")
    assert rates["l2_4.0"] >= 0.25                                # measured 0.5


def test_lagrangian_with_noise_finds_successes(trained_vae, trained_classifier, digits, binary_search, capsys):
    x, y = digits
    x, y = x[:8], y[:8]
    cfg = LatentAttackConfig(method="lagrangian", steps=100, binary_search_steps=3, noise_draws=4,
                             noise_std=0.05, **{k: FAST[k] for k in ("inversion_restarts", "inversion_steps")})
    out = latent_attack(trained_vae.decoder, trained_classifier, x, y, [("2", 4.0)], cfg,
                        z0=binary_search["z0"][:8])
    ok, xa = out["success"]["l2_4.0"], out["x_adv"]["l2_4.0"]
    with capsys.disabled():
        print(f"\nlatent attack (lagrangian, 4 noise draws) success on 8 digits: {ok.mean():.3f}")
    assert ok.mean() >= 0.25                                      # measured 0.5
    assert np.all(_dist(xa, x, "2") <= 4.0 * (1 + 1e-5) + 1e-5) and xa.min() >= 0 and xa.max() <= 1
    assert np.all(_pred(trained_classifier, xa)[ok] != y[ok])


def test_successes_transfer_to_the_real_inc(binary_search, digits, trained_vae, trained_classifier, capsys):
    """The attack never queries INC; the real projection (another seed) mostly lands on the same
    misclassified G(z): the perfect-projector break carries over."""
    from tf_inc.defences.inc import InvertAndClassify
    from tf_inc.manifold.inversion import InversionConfig

    x, y = digits
    inc = InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(steps=300, restarts=4), seed=1)
    ok, xa = binary_search["success"]["l2_4.0"], binary_search["x_adv"]["l2_4.0"]
    clean = float((inc.predict(x)["label"] == y).mean())
    broken = inc.predict(xa)["label"] != y
    with capsys.disabled():
        print(f"\nreal INC: clean acc {clean:.3f}, acc on l2_4.0 x_adv {1 - broken.mean():.3f}, "
              f"broken among latent successes {broken[ok].mean():.3f}")
    assert ok.any() and broken[ok].mean() >= 0.5
    assert 1 - broken.mean() < clean


def test_zero_budget_returns_x(trained_vae, trained_classifier, digits, binary_search):
    x, y = digits
    out = latent_attack(trained_vae.decoder, trained_classifier, x[:4], y[:4], [("2", 0.0)],
                        LatentAttackConfig(steps=5, binary_search_steps=1), z0=binary_search["z0"][:4])
    np.testing.assert_array_equal(out["x_adv"]["l2_0.0"], x[:4])
    assert not out["success"]["l2_0.0"].any()


def test_reach_skips_only_rows_whose_projection_is_out_of_reach(trained_vae, trained_classifier, digits,
                                                                binary_search):
    """``reach`` searches a row only if G(z0) is within reach·ε of x; the searched rows give the same
    answer as without ``reach`` and the skipped ones return G(z0) projected onto the ball."""
    from tf_inc.attacks.latent import LatentAttackConfig as C

    x, y = digits
    z0 = binary_search["z0"]
    g0 = trained_vae.decoder(tf.constant(z0)).numpy()
    d2, dinf = _dist(g0, x, "2"), _dist(g0, x, "inf")
    eps2 = float(np.median(d2))                                   # about half the rows within reach
    cfg = dict(steps=40, binary_search_steps=2, initial_const=0.1)
    budgets = [("2", eps2), ("inf", 0.3)]
    full = latent_attack(trained_vae.decoder, trained_classifier, x, y, budgets, C(**cfg), z0=z0)
    part = latent_attack(trained_vae.decoder, trained_classifier, x, y, budgets, C(reach=1.0, **cfg), z0=z0)
    k2, kinf = budget_key("2", eps2), budget_key("inf", 0.3)
    np.testing.assert_array_equal(part["searched"][k2], d2 <= eps2)
    np.testing.assert_array_equal(part["searched"][kinf], dinf <= 0.3)
    assert 0 < part["searched"][k2].sum() < N and full["searched"][k2].all()
    s = part["searched"][k2]
    np.testing.assert_allclose(part["x_adv"][k2][s], full["x_adv"][k2][s], atol=1e-5)
    assert not part["success"][k2][~s].any() and not part["success"][kinf][~part["searched"][kinf]].any()
    skipped = part["x_adv"][k2][~s]                               # G(z0) pulled onto the ε-sphere
    assert np.allclose(_dist(skipped, x[~s], "2"), eps2, rtol=1e-3)


def test_encoder_warm_start(trained_vae, trained_classifier, digits):
    x, y = digits
    cfg = LatentAttackConfig(inversion_restarts=1, inversion_steps=0, steps=2, binary_search_steps=1)
    out = latent_attack(trained_vae.decoder, trained_classifier, x[:4], y[:4], [("2", 1.0)], cfg,
                        encoder=trained_vae.encode)
    np.testing.assert_allclose(out["z0"], trained_vae.encode(x[:4]).numpy(), atol=1e-6)


BAD_CALLS = {
    "nan image": (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), y, BUDGETS), "NaN"),
    "0-255 image": (lambda x, y: (x * 255.0, y, BUDGETS), r"must lie in \[0.0, 1.0\]"),
    "bad labels": (lambda x, y: (x, y[:-1], BUDGETS), "expected shape"),
    "negative eps": (lambda x, y: (x, y, [("2", -1.0)]), ">= 0"),
    "nan eps": (lambda x, y: (x, y, [("inf", float("nan"))]), "finite"),
    "unknown norm": (lambda x, y: (x, y, [("1", 1.0)]), "norm must be one of"),
    "integer norm": (lambda x, y: (x, y, [(2, 1.0)]), "norm must be one of"),
    "not a pair": (lambda x, y: (x, y, [("2", 1.0, 3)]), r"\(norm, eps\) pair"),
    "empty budgets": (lambda x, y: (x, y, []), "empty"),
    "duplicate budget": (lambda x, y: (x, y, [("2", 1.0), ("2", 1.0)]), "twice"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_inputs_raise_input_error(case, trained_vae, trained_classifier, digits):
    x, y = digits
    make, match = BAD_CALLS[case]
    xb, yb, budgets = make(x[:4], y[:4])
    with pytest.raises(InputError, match=match):
        latent_attack(trained_vae.decoder, trained_classifier, xb, yb, budgets)


@pytest.mark.parametrize("kw, match", [
    (dict(method="pgd"), "method must be one of"),
    (dict(steps=0), "steps"),
    (dict(binary_search_steps=-1), "binary_search_steps"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(learning_rate=float("inf")), "learning_rate"),
    (dict(initial_const=-1.0), "initial_const"),
    (dict(confidence=-1.0), "confidence"),
    (dict(noise_std=0.1), "noise_draws"),
    (dict(noise_draws=-2), "noise_draws"),
    (dict(inversion_restarts=0), "inversion_restarts"),
    (dict(steps=2.5), "steps"),
])
def test_bad_config_raises_input_error(kw, match):
    with pytest.raises(InputError, match=match):
        LatentAttackConfig(**kw)


def test_bad_z0_and_config_type(trained_vae, trained_classifier, digits):
    x, y = digits
    with pytest.raises(InputError, match="z0"):
        latent_attack(trained_vae.decoder, trained_classifier, x[:4], y[:4], BUDGETS, z0=np.zeros((4, 3)))
    with pytest.raises(InputError, match="LatentAttackConfig"):
        latent_attack(trained_vae.decoder, trained_classifier, x[:4], y[:4], BUDGETS, config={"steps": 1})
