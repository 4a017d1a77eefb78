"""The Deep Image Prior skip network (Ulyanov et al. 2017), K independent copies at once.

The paper's generator-free defence (§2.4, §3.1, Alg. 2) fits an *untrained*
convolutional generator ``G_φ(z)`` to each input over its weights φ, with a
fixed random code z, and uses "the skip-autoencoder architecture employed by
Ulyanov et al. for image denoising" (§4.1). That network, as the reference
``models/skip.py`` builds it for denoising, is reproduced here:

* an encoder–decoder over ``S`` scales; scale ``i`` has a *deeper* branch
  (3×3 stride-2 conv → BN → LeakyReLU → 3×3 conv → BN → LeakyReLU → scale
  ``i+1`` → bilinear ×2 upsampling) and a *skip* branch (1×1 conv → BN →
  LeakyReLU) whose outputs are concatenated (skip first, centre-cropped to the
  smaller size like the reference ``Concat``), then BN → 3×3 conv → BN →
  LeakyReLU → 1×1 conv → BN → LeakyReLU;
* a final 1×1 conv to the image channels and a sigmoid, so ``G_φ(z) ∈ [0, 1]``;
* reflection padding for every conv, LeakyReLU slope 0.2, BN ε = 1e-5;
* reference widths 128 down / 128 up / 4 skip over 5 scales, a 32-channel code
  z ~ U(0, 0.1) at the image's resolution (:meth:`SkipNetConfig.reference`);
* PyTorch's default initialisation (the paper ran the reference PyTorch code):
  conv weights and biases U(−1/√fan_in, 1/√fan_in), BN γ = 1, β = 0.

**Batch norm is per network.** The reference fits one image with the network in
training mode, so BN normalises each channel over that image's pixels. With K
networks fitted at once every statistic stays per image (moments over H, W),
which is exactly the reference's batch-of-one BN. At 1×1 resolution that
variance is 0, which is why the coarsest scale must stay ≥ 2×2
(:meth:`SkipNetConfig.validate_for`).

**K networks in one graph.** All weights of one network are one flat vector,
so K networks are a ``(K, P)`` tensor: one Adam update, one gather when rows
stop early (:mod:`tf_inc.defences.dip`). The network runs channels-first and
each conv is an im2col (k·k shifted windows of the padded input) followed by
one batched matmul with the per-network kernels; network k only ever sees
image k. :func:`build_keras_skip_net` builds the same single network from
standard Keras layers; the tests check that the two agree given the same weights.

**Bit-for-bit batch invariance.** Row k's forward pass and gradient are the same
to the last bit whether it is computed alone or with any number of other rows, so
a batched fit reproduces the one-at-a-time fit exactly. TF does not give this for
free on CPU; the places that needed care, each commented where it is handled:
per-image sums are innermost-axis reductions (:func:`_pixel_sum`), a lone row's
small matmuls run as a batch of two (:func:`_batched_matmul`), 1/√var is taken in
float64 (Grappler would otherwise turn it into an approximate float rsqrt), the
sigmoid sees whole SIMD packets (:func:`_sigmoid`), and the fit loop is traced once
for an unknown batch size. The hand-written backward passes of the im2col windows,
the upsampling, the bias and BN (adjoints, checked against autodiff in the tests)
also avoid TF's slow ``StridedSliceGrad``.

Odd sizes work (the skip concatenation crops, as the reference does); with
``canvas_multiple`` the network instead runs on a canvas padded up to a multiple
(MNIST: 28 → 32) and the output is centre-cropped to the image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_inc.errors import InputError


@dataclass(frozen=True)
class SkipNetConfig:
    """Architecture of the skip network (defaults: Ulyanov et al.'s denoising network)."""

    channels_down: Tuple[int, ...] = field(default=(128,) * 5, metadata={"help": "encoder widths per scale"})
    channels_up: Tuple[int, ...] = field(default=(128,) * 5, metadata={"help": "decoder widths per scale"})
    channels_skip: Tuple[int, ...] = field(default=(4,) * 5, metadata={"help": "skip widths per scale (0: none)"})
    input_channels: int = field(default=32, metadata={"help": "channels of the fixed random code z"})
    input_scale: float = field(default=0.1, metadata={"help": "z ~ U(0, input_scale) (reference: 1/10)"})
    filter_size: int = field(default=3, metadata={"help": "kernel of the down/up convs"})
    skip_filter_size: int = field(default=1, metadata={"help": "kernel of the skip convs"})
    need_1x1_up: bool = field(default=True, metadata={"help": "1×1 conv after each up conv (reference)"})
    leaky_slope: float = field(default=0.2, metadata={"help": "LeakyReLU slope"})
    bn_epsilon: float = field(default=1e-5, metadata={"help": "batch-norm ε (PyTorch default)"})
    canvas_multiple: int = field(default=32, metadata={
        "help": "the network runs on a canvas whose sides are the image's rounded up to this multiple "
                "(centre-cropped back); 1 = the image's own size"})

    @classmethod
    def reference(cls, **overrides) -> "SkipNetConfig":
        """The reference denoising network: 5 scales of 128 / 128 / 4, 32-channel code."""
        return cls(**overrides)

    @classmethod
    def uniform(cls, scales: int, down: int, up: int, skip: int, **overrides) -> "SkipNetConfig":
        """``scales`` scales, the same widths at every scale (as the reference)."""
        if scales < 1:
            raise InputError(f"scales must be >= 1, got {scales}")
        return cls(channels_down=(int(down),) * scales, channels_up=(int(up),) * scales,
                   channels_skip=(int(skip),) * scales, **overrides)

    @classmethod
    def mnist(cls, **overrides) -> "SkipNetConfig":
        """28×28 digits on a 32×32 canvas: 3 scales (32 → 16 → 8 → 4) of 16 / 16 / 4, 8-channel code.

        Five scales at 32 px would reach 1×1, where per-image batch norm has zero
        variance; three scales and narrower layers (one grey channel instead of three
        colours) make a fit cheap enough to run hundreds of digits on a CPU, and the
        network still fits a digit to MSE 0.005 in ~25 iterations.
        """
        base = dict(channels_down=(16,) * 3, channels_up=(16,) * 3, channels_skip=(4,) * 3,
                    input_channels=8, canvas_multiple=32)
        return cls(**{**base, **overrides})

    @classmethod
    def for_image_shape(cls, image_shape: Sequence[int], **overrides) -> "SkipNetConfig":
        """:meth:`mnist` for images smaller than 64 px, :meth:`reference` (5 scales) otherwise."""
        if min(int(image_shape[0]), int(image_shape[1])) < 64:
            return cls.mnist(**overrides)
        return cls.reference(**overrides)

    @property
    def scales(self) -> int:
        return len(self.channels_down)

    def validate(self) -> "SkipNetConfig":
        n = len(self.channels_down)
        if n < 1 or len(self.channels_up) != n or len(self.channels_skip) != n:
            raise InputError(f"channels_down/up/skip must have the same length >= 1, got "
                             f"{self.channels_down}, {self.channels_up}, {self.channels_skip}")
        if min(self.channels_down) < 1 or min(self.channels_up) < 1 or min(self.channels_skip) < 0:
            raise InputError("widths must be >= 1 (skip widths >= 0)")
        if self.input_channels < 1 or self.input_scale <= 0:
            raise InputError("input_channels must be >= 1 and input_scale > 0")
        if self.filter_size < 1 or self.filter_size % 2 == 0 or self.skip_filter_size < 1 \
                or self.skip_filter_size % 2 == 0:
            raise InputError("filter sizes must be odd and >= 1")
        if self.canvas_multiple < 1:
            raise InputError(f"canvas_multiple must be >= 1, got {self.canvas_multiple}")
        return self

    def canvas(self, height: int, width: int) -> Tuple[int, int]:
        m = self.canvas_multiple
        return int(math.ceil(height / m) * m), int(math.ceil(width / m) * m)

    def validate_for(self, image_shape: Sequence[int]) -> "SkipNetConfig":
        """Check the network fits images of ``image_shape`` (H, W, C): the coarsest scale ≥ 2×2."""
        self.validate()
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise InputError(f"image_shape must be (H, W, C), got {tuple(image_shape)}")
        h, w = self.canvas(image_shape[0], image_shape[1])
        for _ in range(self.scales):
            h, w = (h + 1) // 2, (w + 1) // 2
        pad = self.filter_size // 2
        if min(h, w) < max(2, pad + 1):
            raise InputError(
                f"{self.scales} scales reduce a {self.canvas(*image_shape[:2])} canvas to {h}×{w}: batch norm "
                "needs >= 2×2 at the coarsest scale (and reflection padding more pixels than it pads); "
                "use fewer scales")
        return self


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class _Param:
    name: str
    shape: Tuple[int, ...]
    init: str          # "uniform" (±bound), "ones", "zeros"
    bound: float = 0.0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def _conv_params(name: str, k: int, cin: int, cout: int) -> List[_Param]:
    bound = 1.0 / math.sqrt(cin * k * k)          # PyTorch Conv2d default (kaiming_uniform a=√5)
    return [_Param(name + "/kernel", (k, k, cin, cout), "uniform", bound),
            _Param(name + "/bias", (cout,), "uniform", bound)]


def _bn_params(name: str, c: int) -> List[_Param]:
    return [_Param(name + "/gamma", (c,), "ones"), _Param(name + "/beta", (c,), "zeros")]


def _crop_to(t, h, w):
    """Centre-crop (…, H', W', C) to (h, w), as the reference ``Concat`` does."""
    dh, dw = (t.shape[1] - h) // 2, (t.shape[2] - w) // 2
    if dh == 0 and dw == 0 and t.shape[1] == h and t.shape[2] == w:
        return t
    return t[:, dh:dh + h, dw:dw + w, :]


class SkipNet:
    """K skip networks for images of ``image_shape`` (H, W, C), weights as rows of a ``(K, P)`` tensor.

    ``net(params, code)`` maps ``(K, P)`` weights and ``(K, Hc, Wc, Cz)`` codes to
    ``(K, H, W, C)`` images in [0, 1] (the canvas output centre-cropped to the image).
    """

    def __init__(self, config: SkipNetConfig, image_shape: Sequence[int]):
        self.config = config.validate_for(image_shape)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.canvas_shape = self.config.canvas(*self.image_shape[:2])
        self.code_shape = (*self.canvas_shape, self.config.input_channels)
        self.params: List[_Param] = self._build_params()
        self.sizes = [p.size for p in self.params]
        self.num_params = int(sum(self.sizes))
        self._index = {p.name: i for i, p in enumerate(self.params)}
        bound = np.concatenate([np.full(p.size, p.bound, np.float32) for p in self.params])
        offset = np.concatenate([np.full(p.size, 1.0 if p.init == "ones" else 0.0, np.float32)
                                 for p in self.params])
        self._init_bound = tf.constant(bound)
        self._init_offset = tf.constant(offset)

    # ------------------------------------------------------------------ layout
    def _build_params(self) -> List[_Param]:
        c = self.config
        ps: List[_Param] = []
        depth = c.input_channels
        for i in range(c.scales):
            sk = c.channels_skip[i]
            k_deep = c.channels_up[i + 1] if i < c.scales - 1 else c.channels_down[i]
            if sk:
                ps += _conv_params(f"s{i}/skip", c.skip_filter_size, depth, sk) + _bn_params(f"s{i}/skip_bn", sk)
            ps += _conv_params(f"s{i}/down", c.filter_size, depth, c.channels_down[i])
            ps += _bn_params(f"s{i}/down_bn", c.channels_down[i])
            ps += _conv_params(f"s{i}/down2", c.filter_size, c.channels_down[i], c.channels_down[i])
            ps += _bn_params(f"s{i}/down2_bn", c.channels_down[i])
            ps += _bn_params(f"s{i}/cat_bn", sk + k_deep)
            ps += _conv_params(f"s{i}/up", c.filter_size, sk + k_deep, c.channels_up[i])
            ps += _bn_params(f"s{i}/up_bn", c.channels_up[i])
            if c.need_1x1_up:
                ps += _conv_params(f"s{i}/up1x1", 1, c.channels_up[i], c.channels_up[i])
                ps += _bn_params(f"s{i}/up1x1_bn", c.channels_up[i])
            depth = c.channels_down[i]
        ps += _conv_params("out", 1, c.channels_up[0], self.image_shape[2])
        return ps

    def param_names(self) -> List[str]:
        return [p.name for p in self.params]

    def split(self, params) -> dict:
        """``(K, P)`` -> {name: (K, *shape)} (views, differentiable)."""
        parts = tf.split(params, self.sizes, axis=1)
        return {p.name: tf.reshape(t, [-1, *p.shape]) for p, t in zip(self.params, parts)}

    # ------------------------------------------------------------------ draws
    def init_params(self, uniforms) -> tf.Tensor:
        """PyTorch-default initial weights from ``(K, P)`` draws U(−1, 1)."""
        return self._init_offset + self._init_bound * uniforms

    def init_params_keyed(self, keys, seed) -> tf.Tensor:
        """``(K, P)`` initial weights, row k drawn from the stateless seed ``(keys[k], seed)`` only."""
        u = _per_key_uniform(keys, seed, 1, [self.num_params], -1.0, 1.0)
        return self.init_params(u)

    def code_keyed(self, keys, seed) -> tf.Tensor:
        """``(K, Hc, Wc, Cz)`` fixed codes z ~ U(0, input_scale), row k keyed by ``(keys[k], seed)``."""
        return _per_key_uniform(keys, seed, 2, list(self.code_shape), 0.0, self.config.input_scale)

    # ------------------------------------------------------------------ forward
    @tf.autograph.experimental.do_not_convert
    def __call__(self, params, code) -> tf.Tensor:
        """``(K, P)`` weights, ``(K, Hc, Wc, Cz)`` codes -> ``(K, H, W, C)`` images in [0, 1].

        Internally channels-first, ``(K, C, H, W)``: each conv is one batched matmul of the
        ``(K, Cout, k·k·Cin)`` kernels with the ``(K, k·k·Cin, H·W)`` im2col of the reflection-
        padded input, and every per-image statistic is an innermost-axis reduction.
        """
        c = self.config
        w = self.split(params)

        def conv(h, name, k, stride=1):
            kern, bias = w[name + "/kernel"], w[name + "/bias"]
            cin, cout = kern.shape[3], kern.shape[4]
            p = k // 2
            if p:
                h = tf.pad(h, [[0, 0], [0, 0], [p, p], [p, p]], mode="REFLECT")
            ho, wo = (h.shape[2] - k) // stride + 1, (h.shape[3] - k) // stride + 1
            cols = _im2col(h, k, stride, ho, wo) if k > 1 or stride > 1 else h     # (K, k·k·Cin, Ho, Wo)
            flat = tf.reshape(cols, [-1, k * k * cin, ho * wo])
            out = _batched_matmul(tf.reshape(kern, [-1, k * k * cin, cout]), flat, ho * wo * k * k * cin * cout)
            return _add_bias(tf.reshape(out, [-1, cout, ho, wo]), bias)

        def bn(h, name):
            return _batch_norm(h, w[name + "/gamma"], w[name + "/beta"], c.bn_epsilon)

        def act(h):
            return tf.nn.leaky_relu(h, alpha=c.leaky_slope)

        def scale(h, i):
            sk = c.channels_skip[i]
            d = act(bn(conv(h, f"s{i}/down", c.filter_size, stride=2), f"s{i}/down_bn"))
            d = act(bn(conv(d, f"s{i}/down2", c.filter_size), f"s{i}/down2_bn"))
            if i < c.scales - 1:
                d = scale(d, i + 1)
            d = _upsample2(d)
            if sk:
                s = act(bn(conv(h, f"s{i}/skip", c.skip_filter_size), f"s{i}/skip_bn"))
                hh, ww = min(s.shape[2], d.shape[2]), min(s.shape[3], d.shape[3])
                d = tf.concat([_crop_chw(s, hh, ww), _crop_chw(d, hh, ww)], axis=1)
            u = bn(d, f"s{i}/cat_bn")
            u = act(bn(conv(u, f"s{i}/up", c.filter_size), f"s{i}/up_bn"))
            if c.need_1x1_up:
                u = act(bn(conv(u, f"s{i}/up1x1", 1), f"s{i}/up1x1_bn"))
            return u

        code = tf.ensure_shape(tf.convert_to_tensor(code, tf.float32), [None, *self.code_shape])
        out = _sigmoid(conv(scale(tf.transpose(code, [0, 3, 1, 2]), 0), "out", 1))
        out = _crop_chw(out, self.image_shape[0], self.image_shape[1])
        return tf.transpose(out, [0, 2, 3, 1])

    # ------------------------------------------------------------------ keras twin
    def keras_weights(self, params_row) -> List[np.ndarray]:
        """One network's flat weights (P,) as the weight list of :func:`build_keras_skip_net`."""
        row = np.asarray(params_row, np.float32).reshape(-1)
        out, start = [], 0
        for p in self.params:
            out.append(row[start:start + p.size].reshape(p.shape))
            start += p.size
        return out


#: TF's CPU BatchMatMul runs a batch of one through its threaded kernel but a larger batch of
#: small products (rows·depth·cols ≤ 128², ``kMaxCostOuterParallelism``) through a sequential
#: per-slice kernel, whose sums round differently. Below this size a lone row is therefore
#: computed as a batch of two (itself twice), so row k's result is bit-for-bit the same whether
#: it is fitted alone or among others. The copies cost at most 2·65536 multiply-adds.
_SMALL_MATMUL = 1 << 16


def _batched_matmul(kern, cols, cost: int):
    """``kernᵀ @ cols`` per row: (K, D, Cout), (K, D, N) -> (K, Cout, N)."""
    kern_t = tf.transpose(kern, [0, 2, 1])          # small; TF's kernel for a plain product is faster
    if cost == 0 or cost > _SMALL_MATMUL:
        return tf.matmul(kern_t, cols)
    k = tf.shape(kern)[0]
    reps = tf.where(tf.equal(k, 1), 2, 1)
    return tf.matmul(tf.tile(kern_t, [reps, 1, 1]), tf.tile(cols, [reps, 1, 1]))[:k]


def _pixel_sum(t):
    """(K, C, H, W) -> (K, C): the sum over pixels, as an innermost-axis reduction.

    TF reduces the middle axes of (K, H·W, C) with a strategy that depends on K (so the
    rounding of row k would depend on its batch-mates); the innermost-axis reduction of
    (K, C, H·W) does not, which is why the network runs channels-first. Every per-image
    statistic and per-image weight gradient of the batched network goes through here.
    """
    return tf.reduce_sum(tf.reshape(t, [tf.shape(t)[0], t.shape[1], -1]), axis=-1)


def _im2col(x, k: int, stride: int, ho: int, wo: int):
    """(K, C, Hp, Wp) padded input -> (K, k·k·C, Ho, Wo): block (i·k + j) is the input shifted by (i, j).

    Stride 2 first splits the input into its four pixel phases (a reshape), so every block
    is a plain shifted window of one phase. The gradient is the adjoint (each block padded
    back to its place, summed), not autodiff through TF's slow StridedSliceGrad.
    """
    c = x.shape[1]
    if stride == 1:
        blocks = [(0, i, j) for i in range(k) for j in range(k)]
        src = x
    elif stride == 2:
        hp, wp = x.shape[2], x.shape[3]
        x = tf.pad(x, [[0, 0], [0, 0], [0, hp % 2], [0, wp % 2]])     # the extra row/col is never read
        hp2, wp2 = (hp + 1) // 2, (wp + 1) // 2
        src = tf.reshape(x, [-1, c, hp2, 2, wp2, 2])
        src = tf.reshape(tf.transpose(src, [0, 3, 5, 1, 2, 4]), [-1, 4 * c, hp2, wp2])  # phase-major channels
        blocks = [(((i % 2) * 2 + (j % 2)) * c, i // 2, j // 2) for i in range(k) for j in range(k)]
    else:
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    return _windows(src, c, blocks, ho, wo)


def _windows(x, c: int, blocks, ho: int, wo: int):
    """Concatenate the windows ``x[:, c0:c0+c, a:a+ho, b:b+wo]`` for (c0, a, b) in ``blocks``."""
    ct, hh, ww = x.shape[1], x.shape[2], x.shape[3]

    @tf.custom_gradient
    def f(t):
        out = tf.concat([t[:, c0:c0 + c, a:a + ho, b:b + wo] for c0, a, b in blocks], axis=1)

        def grad(dy):
            parts = tf.split(dy, len(blocks), axis=1)
            return tf.add_n([tf.pad(g, [[0, 0], [c0, ct - c0 - c], [a, hh - a - ho], [b, ww - b - wo]])
                             for g, (c0, a, b) in zip(parts, blocks)])

        return out, grad

    return f(x)


def _crop_chw(t, h, w):
    """Centre-crop (K, C, H', W') to (h, w), as the reference ``Concat`` does."""
    dh, dw = (t.shape[2] - h) // 2, (t.shape[3] - w) // 2
    if t.shape[2] == h and t.shape[3] == w:
        return t
    return t[:, :, dh:dh + h, dw:dw + w]


def _shift(x, axis: int, d: int):
    """x[i − d] along ``axis`` with edge clamping (d = ±1): the neighbour of each element."""
    n = x.shape[axis]
    idx = [slice(None)] * 4
    edge = [slice(None)] * 4
    if d > 0:
        idx[axis], edge[axis] = slice(0, n - 1), slice(0, 1)
        return tf.concat([x[tuple(edge)], x[tuple(idx)]], axis=axis)
    idx[axis], edge[axis] = slice(1, n), slice(n - 1, n)
    return tf.concat([x[tuple(idx)], x[tuple(edge)]], axis=axis)


def _upsample_axis(x, axis: int):
    """Bilinear ×2 along ``axis`` (2 or 3) of (K, C, H, W), with its adjoint as the gradient
    (autodiff of the slices would go through TF's slow StridedSliceGrad)."""
    n = x.shape[axis]

    @tf.custom_gradient
    def up(t):
        pair = tf.stack([0.75 * t + 0.25 * _shift(t, axis, 1), 0.75 * t + 0.25 * _shift(t, axis, -1)],
                        axis=axis + 1)
        shape = [-1] + [2 * d if a == axis else d for a, d in enumerate(t.shape) if a > 0]

        def grad(dy):
            g = tf.reshape(dy, [-1] + [t.shape[a] for a in range(1, axis)] + [n, 2]
                           + [t.shape[a] for a in range(axis + 1, 4)])
            even = tf.gather(g, 0, axis=axis + 1)
            odd = tf.gather(g, 1, axis=axis + 1)
            # even[i] = ¾t[i] + ¼t[i−1 (clamped)], odd[i] = ¾t[i] + ¼t[i+1 (clamped)]
            return 0.75 * (even + odd) + 0.25 * (_adjoint_shift(even, axis, 1) + _adjoint_shift(odd, axis, -1))

        return tf.reshape(pair, shape), grad

    return up(x)


def _adjoint_shift(g, axis: int, d: int):
    """Adjoint of :func:`_shift`: where the clamped neighbour ``x[i − d]`` sent ``g[i]``."""
    n = g.shape[axis]

    def sl(a, b):
        idx = [slice(None)] * 4
        idx[axis] = slice(a, b)
        return g[tuple(idx)]

    zero = tf.zeros_like(sl(0, 1))
    if d > 0:       # y[i] = x[max(i−1, 0)]: x[0] <- g[0] + g[1], x[j] <- g[j+1], x[n−1] <- 0
        return tf.concat([sl(0, 1) + sl(1, 2), sl(2, n), zero], axis=axis)
    # y[i] = x[min(i+1, n−1)]: x[0] <- 0, x[j] <- g[j−1], x[n−1] <- g[n−2] + g[n−1]
    return tf.concat([zero, sl(0, n - 2), sl(n - 2, n - 1) + sl(n - 1, n)], axis=axis)


def _upsample2(x):
    """Bilinear ×2 upsampling of (K, C, H, W) with half-pixel centres and edge clamping
    (PyTorch's ``Upsample(scale_factor=2, mode="bilinear")``, = ``tf.image.resize``):
    output 2i is ¾·x[i] + ¼·x[i−1], output 2i+1 is ¾·x[i] + ¼·x[i+1], per axis."""
    return _upsample_axis(_upsample_axis(x, 2), 3)


def _sigmoid(t):
    """``tf.sigmoid`` with each image's values padded to a multiple of 64: Eigen evaluates SIMD
    packets with a different approximation than the scalar tail, so the rounding of a pixel would
    otherwise depend on where the batch ends."""
    size = int(np.prod(t.shape[1:]))
    pad = -size % 64
    if pad == 0:
        return tf.sigmoid(t)
    flat = tf.pad(tf.reshape(t, [-1, size]), [[0, 0], [0, pad]])
    return tf.reshape(tf.sigmoid(flat)[:, :size], tf.shape(t))


def _bc(v):
    return v[:, :, None, None]


@tf.custom_gradient
def _add_bias(h, b):
    """``h + b`` per image and channel; the bias gradient is a :func:`_pixel_sum`."""

    def grad(dy):
        return dy, _pixel_sum(dy)

    return h + _bc(b), grad


def _batch_norm(h, gamma, beta, eps: float):
    """Batch norm of a batch of one, per image: each channel normalised over its image's pixels.

    (PyTorch's BatchNorm2d in training mode on a single image, as the reference fits it.)
    Forward and the analytic backward use :func:`_pixel_sum` only.
    """
    n = float(h.shape[2] * h.shape[3])

    @tf.custom_gradient
    def f(x, g, b):
        mean = _pixel_sum(x) / n
        xc = x - _bc(mean)
        # 1/√· in float64: in float32 Grappler rewrites x / sqrt(y) to x * rsqrt(y), and Eigen's
        # vectorised float rsqrt is an approximation whose rounding depends on whether an
        # element lands in a SIMD packet or the scalar tail, i.e. on the batch size
        var = tf.cast(_pixel_sum(tf.square(xc)) / n + eps, tf.float64)
        r = tf.cast(tf.math.reciprocal(tf.math.sqrt(var)), tf.float32)
        xhat = xc * _bc(r)

        def grad(dy):
            db = _pixel_sum(dy)
            dg = _pixel_sum(dy * xhat)
            dx = _bc(g * r / n) * (n * dy - _bc(db) - xhat * _bc(dg))
            return dx, dg, db

        return xhat * _bc(g) + _bc(b), grad

    return f(h, gamma, beta)


def _per_key_uniform(keys, seed, stream: int, shape, lo: float, hi: float):
    """``(K, *shape)`` U(lo, hi) draws, row k from the stateless seed of ``(keys[k], seed, stream)``."""
    keys = tf.cast(tf.convert_to_tensor(keys), tf.int64)
    mix = tf.cast(seed, tf.int64) * 1_000_003 + stream
    seeds = tf.stack([keys, tf.fill(tf.shape(keys), mix)], axis=1)
    return tf.map_fn(lambda s: tf.random.stateless_uniform(shape, s, lo, hi), seeds,
                     fn_output_signature=tf.TensorSpec(shape, tf.float32))


def per_key_normal(keys, seed, stream, shape, stddev: float = 1.0):
    """``(K, *shape)`` N(0, stddev²) draws, row k from the stateless seed ``(keys[k], seed, stream)``."""
    keys = tf.cast(tf.convert_to_tensor(keys), tf.int64)
    mix = tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(stream, tf.int64)
    seeds = tf.stack([keys, tf.fill(tf.shape(keys), mix)], axis=1)
    return tf.map_fn(lambda s: tf.random.stateless_normal(shape, s, stddev=stddev), seeds,
                     fn_output_signature=tf.TensorSpec(shape, tf.float32))


# --------------------------------------------------------------------------- plain Keras twin
def build_keras_skip_net(config: SkipNetConfig, image_shape: Sequence[int], name: Optional[str] = None):
    """The same single network from standard Keras layers (Conv2D, BatchNormalization, …).

    Call it with ``training=True`` (the reference fits in training mode: BN uses the
    image's own statistics). Its weights are in :meth:`SkipNet.keras_weights` order, so
    ``model.set_weights(SkipNet(...).keras_weights(row))`` gives the same function as
    row ``row`` of the batched network. Used by the tests and as the "plain Keras,
    one image at a time" baseline of ``bench/bench_dip.py``.
    """
    import keras

    net = SkipNet(config, image_shape)
    c = net.config
    layers = {}

    def reflect(h, k):
        p = k // 2
        if p == 0:
            return h
        return keras.ops.pad(h, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def conv(h, nm, k, cout, stride=1):
        layers[nm] = keras.layers.Conv2D(cout, k, strides=stride, padding="valid", name=nm.replace("/", "_"))
        return layers[nm](reflect(h, k))

    def bn(h, nm):
        layers[nm] = keras.layers.BatchNormalization(epsilon=c.bn_epsilon, momentum=0.9, name=nm.replace("/", "_"))
        return layers[nm](h)

    def act(h):
        return keras.layers.LeakyReLU(negative_slope=c.leaky_slope)(h)

    def scale(h, i):
        sk = c.channels_skip[i]
        s = None
        if sk:
            s = act(bn(conv(h, f"s{i}/skip", c.skip_filter_size, sk), f"s{i}/skip_bn"))
        d = act(bn(conv(h, f"s{i}/down", c.filter_size, c.channels_down[i], 2), f"s{i}/down_bn"))
        d = act(bn(conv(d, f"s{i}/down2", c.filter_size, c.channels_down[i]), f"s{i}/down2_bn"))
        deeper = d
        if i < c.scales - 1:
            deeper = scale(d, i + 1)
        deeper = keras.layers.UpSampling2D(2, interpolation="bilinear")(deeper)
        if sk:
            hh, ww = min(s.shape[1], deeper.shape[1]), min(s.shape[2], deeper.shape[2])
            deeper = keras.layers.Concatenate()([_crop_to(s, hh, ww), _crop_to(deeper, hh, ww)])
        u = bn(deeper, f"s{i}/cat_bn")
        u = act(bn(conv(u, f"s{i}/up", c.filter_size, c.channels_up[i]), f"s{i}/up_bn"))
        if c.need_1x1_up:
            u = act(bn(conv(u, f"s{i}/up1x1", 1, c.channels_up[i]), f"s{i}/up1x1_bn"))
        return u

    inp = keras.Input(net.code_shape)
    out = keras.activations.sigmoid(conv(scale(inp, 0), "out", 1, net.image_shape[2]))
    out = _crop_to(out, net.image_shape[0], net.image_shape[1])
    model = keras.Model(inp, out, name=name or "skip_net")
    model._dip_layers = layers
    model._dip_net = net
    return model


def set_keras_weights(model, params_row) -> None:
    """Load one row of flat weights into a :func:`build_keras_skip_net` model."""
    net: SkipNet = model._dip_net
    arrays = dict(zip(net.param_names(), net.keras_weights(params_row)))
    for nm, layer in model._dip_layers.items():
        if nm + "/kernel" in arrays:
            layer.set_weights([arrays[nm + "/kernel"], arrays[nm + "/bias"]])
        else:
            c = arrays[nm + "/gamma"].shape[0]
            layer.set_weights([arrays[nm + "/gamma"], arrays[nm + "/beta"], np.zeros(c, np.float32),
                               np.ones(c, np.float32)])
