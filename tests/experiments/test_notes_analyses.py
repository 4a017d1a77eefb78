"""The notes' analyses on the shipped classifiers: adversarial subspace (GAAS), cross-sections,
representations, transferability and the RBF network, plus the extra classifiers' training."""
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.attacks import Ensemble, fgsm, pgd, target_success, targeted_ifgsm, transfer_matrix
from tf_inc.errors import InputError
from tf_inc.experiments import notes_adversarial_subspace as gaas
from tf_inc.experiments import notes_cross_sections as cs
from tf_inc.experiments import notes_representation_plots as rep


@pytest.fixture(scope="module")
def tiny_extra(shipped_extra):
    """The shipped MLP and RBF net (trained on the training split minus its validation part)."""
    return shipped_extra


# ---------------------------------------------------------------- adversarial subspace (GAAS)
def test_gaas_directions_are_orthonormal_and_equally_aligned():
    rng = np.random.default_rng(0)
    g = rng.standard_normal(784)
    basis = gaas.random_orthonormal(784, 30, rng)
    for k in (1, 7, 30):
        r = gaas.gaas_directions(g, k, basis)
        np.testing.assert_allclose(r @ r.T, np.eye(k), atol=1e-9)                    # orthonormal
        np.testing.assert_allclose(r @ g, np.linalg.norm(g) / np.sqrt(k), rtol=1e-9)  # Lemma 1
    with pytest.raises(InputError, match="zero"):
        gaas.gaas_directions(np.zeros(784), 3, basis)


def test_subspace_has_more_than_one_adversarial_direction(trained_classifier, correct_digits):
    x, y = correct_digits
    k_grid = [1, 2, 4, 8, 16, 32]
    counts = gaas.count_directions(trained_classifier, x[:6], y[:6], eps=6.0, k_grid=k_grid, seed=0)
    assert counts.shape == (6, len(k_grid))
    assert (counts <= np.asarray(k_grid)).all()
    est = counts.max(1)
    assert est.mean() > 1 and est.max() >= 3          # several orthogonal directions, not one
    # a tiny budget finds none: the count measures adversarial directions, not any direction
    assert gaas.count_directions(trained_classifier, x[:6], y[:6], eps=0.2, k_grid=k_grid).max() == 0


# ---------------------------------------------------------------- cross-sections
def test_adversarial_cross_section_is_a_half_plane(trained_classifier, correct_digits):
    x, y = correct_digits
    x, y = x[:4], y[:4]
    rng = np.random.default_rng(0)
    s = cs.fgsm_direction(trained_classifier, x, y)
    r = cs.orthogonal_to(cs.random_sign_direction(x.shape, rng), s)
    np.testing.assert_allclose((r * s).reshape(4, -1).sum(1), 0, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(r.reshape(4, -1), axis=1), np.linalg.norm(s.reshape(4, -1), axis=1),
                               rtol=1e-5)
    q1 = cs.random_sign_direction(x.shape, rng)
    q2 = cs.orthogonal_to(cs.random_sign_direction(x.shape, rng), q1)
    coords = np.linspace(-0.5, 0.5, 15)
    adv = cs.map_statistics(cs.cross_section(trained_classifier, x, s, r, 0.5, 15), y, coords)
    rnd = cs.map_statistics(cs.cross_section(trained_classifier, x, q1, q2, 0.5, 15), y, coords)
    # the adversarial (positive) half is mostly wrong, the other half mostly right (measured on the
    # shipped classifier: its far negative corners at −0.5 are wrong for about a fifth of the points)
    assert adv["pos_half_misclassified_frac"] > 0.5 and adv["neg_half_misclassified_frac"] < 0.3
    assert adv["pos_half_misclassified_frac"] > adv["neg_half_misclassified_frac"] + 0.25
    assert adv["misclassified_frac"] > rnd["misclassified_frac"] + 0.1
    assert adv["axis_flip_frac"] >= 0.75                # the FGSM ray leaves the class (3 of 4 here)
    labels = cs.cross_section(trained_classifier, x[:1], s[:1], r[:1], 0.5, 15)
    assert labels[0, 7, 7] == y[0]                    # the centre of the plane is x itself


# ---------------------------------------------------------------- representations
def test_targeted_adversarial_representations_move_to_the_target(trained_classifier, correct_digits, mnist_test):
    x, y = correct_digits
    x, y = x[:16], y[:16]
    t = (y + 4) % 10
    xa = targeted_ifgsm(trained_classifier, x, t, eps_iter=0.01, nb_iter=30).numpy()
    ok = target_success(trained_classifier, xa, t)
    pen = rep.penultimate(trained_classifier)
    assert pen.output_shape[-1] == 1024                # fc1 of the Deep-MNIST net
    xb, yb = mnist_test
    r_bg, r_x, r_adv = (pen.predict(a, verbose=0) for a in (xb[:600], x, xa))
    knn_x, knn_adv = rep.knn_labels(r_bg, yb[:600], r_x), rep.knn_labels(r_bg, yb[:600], r_adv)
    assert (knn_x == y).mean() >= 0.9
    assert (knn_adv[ok] == t[ok]).mean() >= 0.6        # they land in the target's cluster
    names = rep.activation_layers(trained_classifier)
    assert names[0] == "conv1" and names[-1] == "logits" and "dropout" not in names
    a, a_adv = rep.activations(trained_classifier, x, names), rep.activations(trained_classifier, xa, names)
    rc = {n: rep.relative_change(a[n], a_adv[n]).mean() for n in names}
    # the notes' "exploding effect": the last layers change relatively more than the input did
    assert rc["logits"] > rep.relative_change(x, xa).mean()
    assert rep.difference_map(a["conv1"], a_adv["conv1"]).shape == (16, 28, 28)


# ---------------------------------------------------------------- transferability
def test_transfer_matrix_white_box_beats_transfer(trained_classifier, tiny_extra, correct_digits):
    from tf_inc.attacks.transfer import commonly_correct

    models = {"cnn": trained_classifier, "mlp": tiny_extra["mlp"]}
    x, y = correct_digits
    keep = commonly_correct(models, x[:40], y[:40])
    x, y = x[:40][keep], y[:40][keep]
    mat = transfer_matrix(models, models, x, y, lambda m, a, b: pgd(m, a, b, 0.2, nb_iter=10))
    assert mat["cnn"]["cnn"] >= 0.9 and mat["mlp"]["mlp"] >= 0.9          # white box: (almost) always
    assert mat["cnn"]["cnn"] >= mat["cnn"]["mlp"] and mat["mlp"]["mlp"] >= mat["mlp"]["cnn"]
    assert mat["cnn"]["mlp"] > 0.05 or mat["mlp"]["cnn"] > 0.05          # ...and some examples transfer
    ens = Ensemble([trained_classifier, tiny_extra["mlp"]])
    p = tf.nn.softmax(ens(x[:4])).numpy()
    p_mean = (tf.nn.softmax(trained_classifier(x[:4])) + tf.nn.softmax(tiny_extra["mlp"](x[:4]))).numpy() / 2
    np.testing.assert_allclose(p, p_mean, atol=1e-5)                  # Liu et al.'s fused softmax
    assert ens.bounds == (0.0, 1.0)
    with pytest.raises(InputError, match="weights"):
        Ensemble([trained_classifier], weights=[-1.0])


# ---------------------------------------------------------------- RBF network and the extra classifiers
def test_rbf_network_is_unsure_where_fgsm_fools_it(trained_classifier, tiny_extra, mnist_test):
    """Goodfellow et al.'s point: the RBF units barely fire on the FGSM images they get wrong,
    where the CNN's softmax is confidently wrong; and the RBF net classifies clean digits worse."""
    from tf_inc.experiments.notes_rbf_network import softmax_confidence
    from tf_inc.models.extra_classifiers import rbf_confidence

    rbf = tiny_extra["rbf"]
    x, y = mnist_test
    x, y = x[:200], y[:200]
    acc = lambda m, a: float((m(a).numpy().argmax(1) == y).mean())  # noqa: E731
    assert 0.6 < acc(rbf, x) < acc(trained_classifier, x)             # it learns, but worse than the CNN
    rbf_adv = fgsm(rbf, x, y, 0.25).numpy()
    cnn_adv = fgsm(trained_classifier, x, y, 0.25).numpy()
    rbf_wrong = rbf(rbf_adv).numpy().argmax(1) != y
    cnn_wrong = trained_classifier(cnn_adv).numpy().argmax(1) != y
    assert rbf_wrong.sum() >= 10 and cnn_wrong.sum() >= 10
    rbf_conf_err = rbf_confidence(rbf, rbf_adv)[rbf_wrong].mean()
    cnn_conf_err = softmax_confidence(trained_classifier, cnn_adv)[cnn_wrong].mean()
    assert rbf_conf_err < 0.75 * rbf_confidence(rbf, x).mean()         # its mistakes come unsure
    assert rbf_conf_err < cnn_conf_err - 0.3                           # the CNN's come confident
    conf = rbf_confidence(rbf, x)
    assert ((0 < conf) & (conf <= 1)).all()


def test_extra_classifiers_train_on_the_validation_split_only(monkeypatch, tmp_path):
    import tf_inc.data.mnist as mnist
    from tf_inc.models import extra_classifiers as ec

    seen = []
    real = mnist.load_mnist
    monkeypatch.setattr(mnist, "load_mnist", lambda split="test", n=None: seen.append(split) or real(split, n))
    model, val_acc = ec.train_extra_classifier(ec.ExtraClassifierConfig(
        kind="mlp", epochs=1, n_train=1000, run_dir=str(tmp_path / "run"), out=str(tmp_path / "m.keras")), verbose=0)
    assert seen and set(seen) == {"train"}                            # never the test split
    assert val_acc > 0.6 and model.bounds == (0.0, 1.0)
    with pytest.raises(InputError, match="unknown extra classifier"):
        ec.build("svm")


def test_rbf_model_round_trips_through_keras(tiny_extra, tmp_path, mnist_test):
    import keras

    from tf_inc.models.extra_classifiers import rbf_one_vs_all_loss

    path = tmp_path / "rbf.keras"
    tiny_extra["rbf"].save(path)
    back = keras.saving.load_model(path, compile=False, safe_mode=True)
    x = mnist_test[0][:8]
    np.testing.assert_allclose(back(x).numpy(), tiny_extra["rbf"](x).numpy(), rtol=1e-5)
    # the one-vs-all loss is finite even for very confident or very wrong units
    loss = rbf_one_vs_all_loss(tf.constant([0, 1]), tf.constant([[0.0, -50.0], [-1e-9, -1e-3]]))
    assert np.isfinite(loss.numpy()).all()
