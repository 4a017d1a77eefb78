"""INC is a function of its input (issue 18): an image's answer does not depend on its batch.

The images are the issue's own hard case: test digits blended half-way towards a digit of
another class, where the projection has several nearly equally good restarts and the label is
borderline, so any dependence of the restarts on batch position or batch size would show up
as a changed label, flag or reconstruction. The INC is the deployed configuration (content
seeding, per-row early stopping with compaction) with fewer steps; ``eta`` is set at the
median reconstruction error so that both rejection outcomes occur.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from tf_inc.defences.inc import InvertAndClassify
from tf_inc.errors import InputError
from tf_inc.manifold.inversion import InversionConfig

CFG = dict(steps=200, restarts=3, patience=50)
# reconstructions: equal up to float re-association (the compacted rows' batch shapes differ)
ATOL = 1e-4


@pytest.fixture(scope="module")
def blended(trained_classifier, mnist_test):
    """12 test digits, each blended 50/50 with the next test digit of a different class."""
    x, y = mnist_test
    x, y = x[:200], y[:200]
    out = []
    for i in range(12):
        j = next(k for k in range(i + 1, len(x)) if y[k] != y[i])
        out.append(0.5 * x[i] + 0.5 * x[j])
    return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)


def _inc(trained_vae, trained_classifier, eta=np.inf, **kw):
    return InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(**{**CFG, **kw}),
                             eta=eta, seed=7)


def _assert_same(a, b, what):
    np.testing.assert_array_equal(a["label"], b["label"], err_msg=f"labels differ: {what}")
    np.testing.assert_array_equal(a["rejected"], b["rejected"], err_msg=f"rejection flags differ: {what}")
    np.testing.assert_allclose(a["result"].x_hat, b["result"].x_hat, atol=ATOL,
                               err_msg=f"reconstructions differ: {what}")
    np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=ATOL,
                               err_msg=f"probabilities differ: {what}")


def _take(out, idx):
    """Rows ``idx`` of a predict() output (labels, flags, probabilities, reconstructions)."""
    return {"label": out["label"][idx], "rejected": out["rejected"][idx],
            "probabilities": out["probabilities"][idx], "result": SimpleNamespace(x_hat=out["result"].x_hat[idx])}


def _concat(outs):
    """predict() outputs of consecutive batches as one."""
    joined = {k: np.concatenate([o[k] for o in outs]) for k in ("label", "rejected", "probabilities")}
    return {**joined, "result": SimpleNamespace(x_hat=np.concatenate([o["result"].x_hat for o in outs]))}


def test_same_answer_in_any_order_batch_size_and_position(trained_vae, trained_classifier, blended):
    x = blended
    probe = _inc(trained_vae, trained_classifier).predict(x)
    eta = float(np.median(probe["result"].l2))
    inc = _inc(trained_vae, trained_classifier, eta=eta)
    ref = inc.predict(x)
    assert 0 < ref["rejected"].sum() < len(x), "eta should split the images"
    # the images are hard: the restarts disagree on some of them (a batch-position dependence
    # would therefore be visible in the chosen restart and the label)
    assert (ref["result"].restart > 0).any()

    rng = np.random.default_rng(0)
    for k in range(3):                                     # three shuffled orders
        perm = rng.permutation(len(x))
        _assert_same(_take(inc.predict(x[perm]), np.argsort(perm)), ref, f"order {k}")
    singles = _concat([inc.predict(x[i:i + 1]) for i in range(len(x))])   # batch of one
    _assert_same(singles, ref, "batch of one")
    chunked = _inc(trained_vae, trained_classifier, eta=eta, batch_size=5).predict(x)   # graph batches of 5
    _assert_same(chunked, ref, "internal batch size 5")
    tail = inc.predict(np.concatenate([x[5:], x[:5]]))    # other positions, one call
    _assert_same(_take(tail, np.r_[7:12, 0:7]), ref, "rotated")


def test_two_copies_of_an_image_in_one_batch_get_one_answer(trained_vae, trained_classifier, blended):
    x = blended[:6]
    inc = _inc(trained_vae, trained_classifier, eta=6.0)
    out = inc.predict(np.concatenate([x, x[::-1]]))
    _assert_same(_take(out, np.arange(6)), _take(out, np.arange(11, 5, -1)), "copies in one batch")
    np.testing.assert_array_equal(out["result"].restart[:6], out["result"].restart[6:][::-1])


def test_repeated_calls_agree_and_another_seed_draws_other_restarts(trained_vae, trained_classifier, blended):
    x = blended[:6]
    inc = _inc(trained_vae, trained_classifier)
    first, second = inc.invert(x), inc.invert(x)
    np.testing.assert_array_equal(first.z, second.z)       # same call, same graph: bit-identical
    other = InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(**CFG), seed=8).invert(x)
    assert not np.allclose(other.restart_l2, first.restart_l2, atol=1e-3)


def test_per_call_randomness_is_explicit_and_redraws_restarts(trained_vae, trained_classifier, blended):
    x = blended[:6]
    det = _inc(trained_vae, trained_classifier)
    assert det.randomness == "deterministic" and det.mode.startswith("deterministic")
    rnd = InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(**CFG), seed=7,
                            randomness="per_call")
    assert rnd.mode.startswith("per_call")
    a, b = rnd.invert(x), rnd.invert(x)
    # fresh restarts per call: the restarts' errors differ between calls ...
    assert not np.allclose(a.restart_l2, b.restart_l2, atol=1e-3)
    # ... yet within one call the draws are still keyed by content (copies agree)
    both = rnd.invert(np.concatenate([x, x]))
    np.testing.assert_allclose(both.x_hat[:6], both.x_hat[6:], atol=ATOL)
    # the BPDA graph advances the counter too: two executions, two draws
    g1, g2 = rnd.project_bpda(x).numpy(), rnd.project_bpda(x).numpy()
    assert not np.allclose(g1, g2, atol=1e-3)
    # an attack view keeps the mode (an EOT attacker is told what it attacks)
    assert rnd.attack_view(3).randomness == "per_call" and det.attack_view(3).randomness == "deterministic"


def test_per_call_mode_and_its_misuse_are_refused_clearly(trained_vae, trained_classifier, blended, tmp_path):
    with pytest.raises(InputError, match="randomness must be one of deterministic, per_call"):
        InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(**CFG), randomness="random")
    rnd = InvertAndClassify(trained_vae.decoder, trained_classifier, InversionConfig(**CFG), randomness="per_call")
    with pytest.raises(InputError, match="run_dir: a randomness='per_call' INC"):
        rnd.invert(blended[:2], run_dir=tmp_path)
