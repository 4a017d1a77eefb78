"""The Deep Image Prior skip network: agreement with a plain Keras build, batch invariance, geometry."""

import numpy as np
import pytest
import tensorflow as tf

from tf_inc.errors import InputError
from tf_inc.models import skip_net as sn
from tf_inc.models.skip_net import SkipNet, SkipNetConfig, build_keras_skip_net, set_keras_weights

TINY = SkipNetConfig.uniform(2, 8, 8, 2, input_channels=4, canvas_multiple=1)


def _draw(net, k=3, seed=0):
    keys = tf.constant([5, 7, 11, 13][:k], tf.int64)
    return net.init_params_keyed(keys, seed), net.code_keyed(keys, seed)


@pytest.mark.parametrize("config, shape", [
    (SkipNetConfig.mnist(), (28, 28, 1)),          # 28 -> 32 canvas, cropped back
    (TINY, (13, 11, 3)),                           # odd sizes: the skip concatenation crops
])
def test_batched_network_is_the_keras_network_row_by_row(config, shape):
    net = SkipNet(config, shape)
    params, code = _draw(net)
    out = net(params, code).numpy()
    assert out.shape == (3, *shape) and out.min() > 0 and out.max() < 1          # sigmoid output
    model = build_keras_skip_net(config, shape)
    assert model.output_shape[1:] == shape
    for k in range(3):
        set_keras_weights(model, params[k].numpy())
        ref = model(code[k:k + 1], training=True).numpy()       # BN on the image's own statistics
        np.testing.assert_allclose(out[k:k + 1], ref, atol=2e-5)
    assert len(np.unique(out.reshape(3, -1).round(4), axis=0)) == 3   # each row its own network


def test_gradients_match_autodiff_of_the_plain_formulas(monkeypatch):
    """The hand-written backward passes (BN, bias, im2col, upsampling) = autodiff of plain ops."""
    net = SkipNet(SkipNetConfig.mnist(), (28, 28, 1))
    params, code = _draw(net)
    x = tf.random.stateless_uniform((3, 28, 28, 1), (1, 2))

    def grad():
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = tf.reduce_sum(tf.square(net(params, code) - x))
        return tape.gradient(loss, params).numpy()

    g = grad()

    def plain_bn(h, gamma, beta, eps):
        m = tf.reduce_mean(h, [2, 3], keepdims=True)
        v = tf.reduce_mean(tf.square(h - m), [2, 3], keepdims=True)
        return (h - m) / tf.sqrt(v + eps) * gamma[:, :, None, None] + beta[:, :, None, None]

    def plain_windows(t, c, blocks, ho, wo):
        return tf.concat([t[:, c0:c0 + c, a:a + ho, b:b + wo] for c0, a, b in blocks], axis=1)

    def plain_up(t, axis):
        return tf.transpose(tf.image.resize(tf.transpose(t, [0, 2, 3, 1]),
                                            [t.shape[2] * (2 if axis == 2 else 1), t.shape[3] * (2 if axis == 3 else 1)]),
                            [0, 3, 1, 2])

    monkeypatch.setattr(sn, "_batch_norm", plain_bn)
    monkeypatch.setattr(sn, "_add_bias", lambda h, b: h + b[:, :, None, None])
    monkeypatch.setattr(sn, "_windows", plain_windows)
    monkeypatch.setattr(sn, "_upsample_axis", plain_up)
    g_ref = grad()
    assert np.abs(g - g_ref).max() < 2e-3 * np.abs(g_ref).max()
    assert np.corrcoef(g.ravel(), g_ref.ravel())[0, 1] > 0.99999


def test_a_row_is_bit_identical_alone_or_in_a_batch():
    """Forward and gradient of row k do not depend on how many rows are computed with it."""
    net = SkipNet(SkipNetConfig.mnist(), (28, 28, 1))
    params, code = _draw(net, k=4)
    x = tf.random.stateless_uniform((4, 28, 28, 1), (3, 4))

    @tf.function(input_signature=[tf.TensorSpec([None, net.num_params]), tf.TensorSpec([None, *net.code_shape]),
                                  tf.TensorSpec([None, 28, 28, 1])])
    def step(p, z, xx):
        with tf.GradientTape() as tape:
            tape.watch(p)
            out = net(p, z)
            loss = tf.reduce_sum(tf.reduce_mean(tf.reshape(tf.square(out - xx), [tf.shape(xx)[0], -1]), 1))
        return out, tape.gradient(loss, p)

    out4, g4 = step(params, code, x)
    for k in (0, 2):
        out1, g1 = step(params[k:k + 1], code[k:k + 1], x[k:k + 1])
        assert np.array_equal(out1.numpy()[0], out4.numpy()[k])
        assert np.array_equal(g1.numpy()[0], g4.numpy()[k])


def test_draws_are_keyed_per_row_and_follow_pytorch_init():
    net = SkipNet(SkipNetConfig.mnist(), (28, 28, 1))
    p1, z1 = net.init_params_keyed(tf.constant([7, 5], tf.int64), 0), net.code_keyed(tf.constant([7, 5], tf.int64), 0)
    p2, z2 = net.init_params_keyed(tf.constant([5], tf.int64), 0), net.code_keyed(tf.constant([5], tf.int64), 0)
    assert np.array_equal(p1[1].numpy(), p2[0].numpy()) and np.array_equal(z1[1].numpy(), z2[0].numpy())
    assert not np.array_equal(p1[0].numpy(), p1[1].numpy())
    assert z1.shape == (2, 32, 32, 8) and 0 <= z1.numpy().min() and z1.numpy().max() <= 0.1
    w = net.split(p1)
    kern = w["s0/up/kernel"].numpy()                     # 3×3 conv over (4 skip + 16 deep) channels
    assert kern.shape == (2, 3, 3, 20, 16)
    assert np.abs(kern).max() <= 1 / np.sqrt(9 * 20) and np.abs(kern).max() > 0.9 / np.sqrt(9 * 20)
    assert np.all(w["s0/up_bn/gamma"].numpy() == 1) and np.all(w["s0/up_bn/beta"].numpy() == 0)


def test_reference_architecture_and_geometry_checks():
    ref = SkipNetConfig.reference()
    assert ref.channels_down == (128,) * 5 and ref.channels_skip == (4,) * 5 and ref.input_channels == 32
    net = SkipNet(ref, (224, 224, 3))
    assert net.canvas_shape == (224, 224) and net.code_shape == (224, 224, 32)
    assert 2_000_000 < net.num_params < 2_500_000
    assert SkipNetConfig.for_image_shape((224, 224, 3)) == ref
    assert SkipNetConfig.for_image_shape((28, 28, 1)) == SkipNetConfig.mnist()
    with pytest.raises(InputError, match="use fewer scales"):
        SkipNet(SkipNetConfig.reference(), (28, 28, 1))          # 32 px over 5 scales reaches 1×1
    with pytest.raises(InputError, match="same length"):
        SkipNetConfig(channels_down=(8, 8), channels_up=(8,), channels_skip=(4, 4)).validate()


def test_upsampling_is_pytorch_bilinear():
    x = tf.random.stateless_normal((2, 3, 5, 4), (0, 1))
    ref = tf.transpose(tf.image.resize(tf.transpose(x, [0, 2, 3, 1]), [10, 8], method="bilinear"), [0, 3, 1, 2])
    np.testing.assert_allclose(sn._upsample2(x).numpy(), ref.numpy(), atol=1e-6)
