"""The shared optimisation core: Adam matches Keras, keep-best, stateless seeding."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_inc.optim import adam_update, keep_best, stateless_normal_rows


def test_keras_form_matches_keras_adam_on_a_quadratic():
    target = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], np.float32)
    var = tf.Variable(np.zeros_like(target))
    opt = keras.optimizers.Adam(0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    z = tf.zeros_like(target)
    m, v = tf.zeros_like(z), tf.zeros_like(z)
    for i in range(50):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(var - target))
        opt.apply_gradients([(tape.gradient(loss, var), var)])
        g = 2.0 * (z - target)
        step, m, v = adam_update(g, m, v, tf.constant(i + 1, tf.float32), 0.1, form="keras")
        z = z - step
    # the "keras" form is keras.optimizers.Adam's own update (ε added to √v, bias correction in the step size)
    np.testing.assert_allclose(z.numpy(), var.numpy(), atol=1e-5)


def test_the_two_forms_differ_only_in_where_epsilon_enters():
    g = tf.constant([[0.3, -0.5, 2.0]])
    m, v = tf.zeros_like(g), tf.zeros_like(g)
    a, _, _ = adam_update(g, m, v, tf.constant(1.0), 0.1, form="keras")
    b, _, _ = adam_update(g, m, v, tf.constant(1.0), 0.1, form="kingma")
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)
    np.testing.assert_allclose(a.numpy(), 0.1 * np.sign(g.numpy()), rtol=1e-4)   # first step = lr·sign(g)
    # for gradients near ε the keras form damps more (ε is compared with the uncorrected √v)
    tiny = tf.constant([[1e-7]])
    a, _, _ = adam_update(tiny, tf.zeros_like(tiny), tf.zeros_like(tiny), tf.constant(1.0), 0.1, form="keras")
    b, _, _ = adam_update(tiny, tf.zeros_like(tiny), tf.zeros_like(tiny), tf.constant(1.0), 0.1, form="kingma")
    assert 0 < a.numpy()[0, 0] < b.numpy()[0, 0] < 0.1
    with pytest.raises(ValueError, match="form"):
        adam_update(g, m, v, tf.constant(1.0), 0.1, form="nadam")


def test_keep_best_takes_only_eligible_strict_improvements():
    best = tf.constant([1.0, 1.0, 1.0, 1.0])
    score = tf.constant([0.5, 2.0, 0.5, 1.0])
    cand, old = tf.reshape(tf.range(8.0), [4, 2]), tf.zeros([4, 2])
    eligible = tf.constant([True, True, False, True])
    s, (c,), better = keep_best(score, best, [cand], [old], eligible=eligible)
    np.testing.assert_array_equal(better.numpy(), [True, False, False, False])
    np.testing.assert_array_equal(s.numpy(), [0.5, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(c.numpy(), [[0, 1], [0, 0], [0, 0], [0, 0]])
    s, _, better = keep_best(score, best, [cand], [old], maximize=True)
    np.testing.assert_array_equal(better.numpy(), [False, True, False, False])


def test_stateless_rows_are_reproducible_and_stream_keyed():
    a = stateless_normal_rows(5, 3, 7, 0).numpy()
    np.testing.assert_array_equal(a, stateless_normal_rows(5, 3, 7, 0).numpy())
    assert not np.allclose(a, stateless_normal_rows(5, 3, 7, 1).numpy())
    assert not np.allclose(a, stateless_normal_rows(5, 3, 8, 0).numpy())
    np.testing.assert_allclose(stateless_normal_rows(5, 3, 7, 0, stddev=2.0).numpy(), 2 * a, rtol=1e-6)


def test_only_one_adam_in_the_package():
    """The in-graph Adam update is written once (tf_inc.optim); everything else calls it."""
    import pathlib

    import tf_inc

    root = pathlib.Path(tf_inc.__file__).parent
    hits = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
            if "tf.sqrt(v" in p.read_text() or "0.999 * v" in p.read_text()]
    assert hits == ["optim.py"], hits
