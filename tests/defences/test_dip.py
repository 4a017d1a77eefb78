"""Deep Image Prior INC (Alg. 2) on a trained MNIST classifier and real digits (session fixtures)."""

import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import bim
from tf_inc.defences.dip import DIPConfig, DIPFitter, DIPInvertAndClassify
from tf_inc.errors import InputError


def test_batched_fit_is_bit_identical_to_one_at_a_time(correct_digits):
    """K networks at once, each with its own early stop, = K separate fits (and batch position is irrelevant)."""
    x, _ = correct_digits
    x = x[:6]
    fitter = DIPFitter((28, 28, 1), DIPConfig(max_iterations=40, mse_threshold=0.006, batch_size=6))
    batched = fitter(x, snapshots=(5, 20, 40))
    assert batched.stopped.any() and batched.iterations.min() < 40          # rows stop at different times
    assert len(set(batched.iterations.tolist())) > 1
    for i in (0, 3):
        alone = fitter(x[i:i + 1], snapshots=(5, 20, 40))
        assert np.array_equal(alone.x_hat[0], batched.x_hat[i])
        assert alone.iterations[0] == batched.iterations[i] and alone.mse[0] == batched.mse[i]
        for t in (5, 20, 40):
            assert np.array_equal(alone.snapshots[t][0], batched.snapshots[t][i])
    shuffled = fitter(x[::-1])                                               # content-keyed seeds
    assert np.array_equal(shuffled.x_hat[::-1], batched.x_hat)


def test_early_stop_snapshots_and_budgets(correct_digits):
    x, _ = correct_digits
    x = x[:4]
    fitter = DIPFitter((28, 28, 1), DIPConfig(max_iterations=30, mse_threshold=0.0, batch_size=4))
    full = fitter(x, snapshots=(10, 30))
    assert np.all(full.iterations == 30) and not full.stopped.any()
    short = fitter(x, max_iterations=10)                      # a snapshot is exactly the shorter fit
    assert np.array_equal(short.x_hat, full.snapshots[10]) and np.array_equal(full.snapshots[30], full.x_hat)
    assert full.mse.mean() < short.mse.mean()                 # fitting longer fits closer
    thr = float(full.mse.max()) * 1.5
    stopped = fitter(x, mse_threshold=thr)
    assert stopped.stopped.all() and np.all(stopped.iterations < 30) and np.all(stopped.mse < thr)
    for i, t in enumerate(stopped.iterations):              # a stopped fit is the output at its stop
        assert np.array_equal(stopped.x_hat[i], full.snapshots[10][i] if t == 10 else
                              fitter(x[i:i + 1], max_iterations=int(t), mse_threshold=0.0).x_hat[0])
    assert stopped.x_hat.min() >= 0.0 and stopped.x_hat.max() <= 1.0
    assert DIPConfig.paper_max_iterations(0.01) == DIPConfig.paper_max_iterations(0.05) == 500
    assert DIPConfig.for_epsilon(0.1).max_iterations == 100


def test_early_stopped_dip_restores_accuracy_a_long_fit_does_not(trained_classifier, correct_digits):
    """§2.4 / §4.4.2 on real digits: the early-stopped fit drops the BIM perturbation and restores a
    measurable part of the accuracy; fitted for long, the network reproduces the perturbation."""
    x, y = correct_digits
    x, y = x[:16], y[:16]
    x_adv = bim(trained_classifier, x, y, 0.2, nb_iter=20).numpy()         # paper ε 0.4 ([-1, 1] scale)
    clf_adv = float((trained_classifier(x_adv).numpy().argmax(1) == y).mean())
    assert clf_adv <= 0.5
    dip = DIPInvertAndClassify(trained_classifier, DIPConfig.for_epsilon(0.1, batch_size=16), seed=0)
    early = dip.predict(x_adv)                               # ≤ 100 iterations, stop at MSE < 0.005
    acc_early = float((early["label"] == y).mean())
    assert early["result"].stopped.mean() > 0.5
    long = dip.with_config(max_iterations=200, mse_threshold=0.0).fit(x_adv)
    acc_long = float((dip.classify(long.x_hat).argmax(1) == y).mean())
    print(f"classifier {clf_adv:.2f}, early-stopped DIP {acc_early:.2f}, 200-iteration DIP {acc_long:.2f}")
    assert acc_early >= clf_adv + 0.25                       # restores a measurable part of the loss
    assert acc_long <= clf_adv + 0.5 * (acc_early - clf_adv)  # the long fit keeps most of the attack
    assert long.mse.mean() < 0.5 * early["result"].mse.mean()    # ... because it fits x_adv closely


def test_bpda_gradient_flows_where_naive_gradient_does_not(trained_classifier, correct_digits):
    x, y = correct_digits
    x = tf.constant(x[:4])
    dip = DIPInvertAndClassify(trained_classifier, DIPConfig(max_iterations=10, batch_size=4))
    grads, probs = [], []
    for model_fn in (dip.bpda_probabilities, dip.naive_probabilities):
        with tf.GradientTape() as tape:          # one plain tape each: a persistent tape would make TF
            tape.watch(x)                        # build higher-order gradients of the whole fit loop
            p = model_fn(x)
            loss = tf.reduce_sum(tf.math.log(tf.gather(p, y[:4], batch_dims=1)))
        grads.append(tape.gradient(loss, x))
        probs.append(p)
    (g_bpda, g_naive), (p_bpda, p_naive) = grads, probs
    np.testing.assert_allclose(p_bpda.numpy(), p_naive.numpy(), atol=1e-6)
    np.testing.assert_allclose(p_bpda.numpy(), dip(x.numpy()), atol=1e-5)     # the deployed defence
    assert g_naive is None or float(tf.reduce_max(tf.abs(g_naive))) == 0.0
    assert g_bpda is not None and float(tf.reduce_mean(tf.abs(g_bpda))) > 0.0
    other = dip.attack_view(seed=5)
    assert other.seed == 5 and not np.array_equal(other.fit(x.numpy()).x_hat, dip.fit(x.numpy()).x_hat)


@pytest.mark.parametrize("bad, match", [
    (lambda x: x * 255.0, r"must lie in \[0.0, 1.0\]"),
    (lambda x: (x * 255).astype(np.uint8), "integer dtype"),
    (lambda x: np.where(x > 0.5, np.nan, x), "NaN"),
    (lambda x: x[..., 0], r"expected shape \(N, 28, 28, 1\)"),
    (lambda x: x[:0], "empty batch"),
])
def test_dip_rejects_bad_input_with_the_typed_error(trained_classifier, correct_digits, bad, match):
    x, _ = correct_digits
    dip = DIPInvertAndClassify(trained_classifier, DIPConfig(max_iterations=2))
    assert dip.bounds == (0.0, 1.0) and dip.image_shape == (28, 28, 1)
    with pytest.raises(InputError, match=match):
        dip.predict(bad(x[:2]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(mse_threshold=-1.0), "mse_threshold"),
    (dict(ema=1.0), "ema"),
    (dict(batch_size=0), "batch_size"),
    (dict(seeding="random"), "seeding"),
])
def test_bad_settings_raise_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        DIPConfig(**kwargs).validate()


def test_fits_through_a_strategy_are_the_plain_fits(correct_digits):
    """strategy= (what table2_dip --strategy passes) returns the plain call's rows, in input order,
    with chunks of batch_size networks (here 3 images: a full chunk and a short one); the
    multi-replica case runs in tests/training/test_distribute.py."""
    x, _ = correct_digits
    fitter = DIPFitter((28, 28, 1), DIPConfig(max_iterations=20, mse_threshold=0.008, batch_size=2))
    plain = fitter(x[:3], snapshots=(10,))
    sharded = fitter(x[:3], snapshots=(10,), strategy=tf.distribute.get_strategy())
    np.testing.assert_allclose(sharded.x_hat, plain.x_hat, atol=1e-5)
    np.testing.assert_allclose(sharded.snapshots[10], plain.snapshots[10], atol=1e-5)
    np.testing.assert_array_equal(sharded.iterations, plain.iterations)


def test_sharded_fits_need_content_seeding(correct_digits):
    x, _ = correct_digits
    fitter = DIPFitter((28, 28, 1), DIPConfig(max_iterations=5, seeding="position"))
    with pytest.raises(InputError, match="strategy=: sharded DIP fits need seeding='content'"):
        fitter(x[:2], strategy=tf.distribute.get_strategy())
