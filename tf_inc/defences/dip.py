"""Deep Image Prior Invert-and-Classify (paper §2.4, §3.1, Alg. 2, §4.4).

With no pretrained generator, the projection of INC is replaced by fitting an
*untrained* skip network ``G_φ(z)`` (:mod:`tf_inc.models.skip_net`) to the input
over its weights φ, with the random code z held fixed (eq. 7):

    φ* ≈ argmin_φ ||x − G_φ(z)||²,        prediction = C(G_φ*(z)).

The fit must stop early: a long fit reconstructs the adversarial perturbation
too (§2.4, §4.4.2). :class:`DIPConfig` holds §4.4.2's schedule: Adam with lr 0.01
(PyTorch's Adam, which the paper used) on the per-pixel mean squared error, at
most 500 iterations for ε ≤ 0.05 and 100 for ε = 0.1 (:meth:`DIPConfig.for_epsilon`),
and a stop as soon as the MSE falls below 0.005.

**Scale of the MSE threshold.** The network's output is a sigmoid, so the fit
happens in [0, 1] (the reference DIP code's scale): an image in bounds
``(lo, hi)`` is mapped to [0, 1], fitted, and mapped back. The 0.005 threshold
and every reported MSE are in that [0, 1] scale (= 0.02 in the paper's [−1, 1]
scale). The paper does not say which scale its MSE used; the reference code it
ran computes it in [0, 1].

**K networks at once.** :class:`DIPFitter` fits one independent network per
image for a whole batch in one ``tf.function`` (a single ``tf.while_loop``):
the weights are a ``(K, P)`` tensor, each row with its own Adam moments, its
own random initialisation and code, and its own early stop. A row whose MSE
drops below the threshold is written out and *compacted away* (the loop then
runs on the remaining rows only), and the loop ends when no row is left or the
iteration budget is spent. Every per-image computation of the batched network
is batch-invariant (:mod:`tf_inc.models.skip_net`), so an image's fit is
bit-for-bit the same fitted alone or among 63 others (tests, ``bench/bench_dip.py``).

**Resume.** ``run_dir=`` (:meth:`DIPFitter.__call__`, :meth:`DIPInvertAndClassify.fit`) fits a
folder / dataset in fixed chunks and saves each finished chunk's rows atomically
(:class:`tf_inc.experiments.resumable.RowStore`): killed half-way, a rerun fits only the chunks
that were not saved, with the same result as one uninterrupted run.

**Seeds.** Row k's initial weights, code and (optional) input noise are drawn
from stateless seeds keyed by ``(key_k, seed)``; the key is a fingerprint of the
image itself by default (``seeding="content"``, as the inversion's), so an
image's answer depends neither on its batch position nor on its batch-mates.

:class:`DIPInvertAndClassify` is the defended classifier, with the interface of
:class:`tf_inc.defences.InvertAndClassify`: input checks, ``predict``, its own
BPDA gradient (``bpda_logits``) and ``attack_view`` for EOT over seeds.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_inc.bounds import bounds_of, check_count, check_images, input_shape_of
from tf_inc.compiled import shared_compiled
from tf_inc.errors import InputError
from tf_inc.models.skip_net import SkipNet, SkipNetConfig, per_key_normal
from tf_inc.optim import adam_update, content_keys

#: §4.4.2: at most 500 iterations for ε ≤ 0.05, at most 100 for ε = 0.1 (ε in the paper's [−1, 1] scale)
PAPER_MAX_ITERATIONS = {0.01: 500, 0.05: 500, 0.1: 100}


@dataclass
class DIPConfig:
    """Hyper-parameters of the DIP fit (defaults: the paper's, §4.1 and §4.4.2)."""

    max_iterations: int = field(default=500, metadata={
        "help": "max Adam iterations per image (paper: 500 for eps <= 0.05, 100 for eps = 0.1)"})
    learning_rate: float = field(default=0.01, metadata={"help": "Adam lr over the weights (paper 0.01)"})
    mse_threshold: float = field(default=0.005, metadata={
        "help": "stop once the per-pixel MSE in [0, 1] scale falls below this (paper 0.005; 0 = never)"})
    beta1: float = field(default=0.9, metadata={"help": "Adam β1 (PyTorch default)"})
    beta2: float = field(default=0.999, metadata={"help": "Adam β2 (PyTorch default)"})
    epsilon: float = field(default=1e-8, metadata={"help": "Adam ε (PyTorch default)"})
    input_noise_std: float = field(default=0.0, metadata={
        "help": "σ of fresh N(0, σ²) noise added to the code each iteration (reference denoising: 1/30; "
                "0 = Alg. 2 as written)"})
    ema: float = field(default=0.0, metadata={
        "help": "exponential average of the outputs returned instead of the last one (reference: 0.99; 0 = off)"})
    batch_size: int = field(default=64, metadata={"help": "networks (images) fitted at once"})
    seeding: str = field(default="content", metadata={
        "help": "content: an image's draws are keyed by the image itself; position: by its index",
        "choices": ["content", "position"]})

    @staticmethod
    def paper_max_iterations(eps: float) -> int:
        """§4.4.2's budget for a BIM ε in the paper's [−1, 1] scale: 500 if ε ≤ 0.05, else 100."""
        return 500 if float(eps) <= 0.05 + 1e-12 else 100

    @classmethod
    def for_epsilon(cls, eps: float, **overrides) -> "DIPConfig":
        """The paper's schedule for BIM budget ``eps`` (paper's [−1, 1] scale)."""
        return cls(**{"max_iterations": cls.paper_max_iterations(eps), **overrides})

    def validate(self) -> "DIPConfig":
        check_count(self.max_iterations, "max_iterations", 0)
        check_count(self.batch_size, "batch_size", 1)
        if not (self.learning_rate > 0) or not np.isfinite(self.learning_rate):
            raise InputError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not (self.mse_threshold >= 0):
            raise InputError(f"mse_threshold must be >= 0, got {self.mse_threshold}")
        if not (0 <= self.ema < 1):
            raise InputError(f"ema must lie in [0, 1), got {self.ema}")
        if not (self.input_noise_std >= 0):
            raise InputError(f"input_noise_std must be >= 0, got {self.input_noise_std}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.epsilon > 0):
            raise InputError("Adam needs 0 <= beta1, beta2 < 1 and epsilon > 0")
        if self.seeding not in ("content", "position"):
            raise InputError(f"seeding must be 'content' or 'position', got {self.seeding!r}")
        return self


@dataclass
class DIPResult:
    """Outcome of a DIP fit of N images (numpy arrays; images in the input's bounds)."""

    x_hat: np.ndarray        # (N, H, W, C) G_φ*(z), the image the classifier sees
    mse: np.ndarray          # (N,) per-pixel MSE of x_hat to x, [0, 1] scale
    iterations: np.ndarray   # (N,) Adam iterations spent on each image
    stopped: np.ndarray      # (N,) True where the MSE threshold stopped the fit
    snapshots: Dict[int, np.ndarray] = field(default_factory=dict)   # {t: (N, H, W, C) output after t iterations}

    @property
    def total_iterations(self) -> int:
        return int(self.iterations.sum())


#: compiled fit loops, keyed by (image shape, network, static settings)
_LOOPS: Dict[tuple, object] = {}


#: compiled softmax of each classifier, shared by its DIP defences (``with_config``/``attack_view``
#: copies would otherwise trace the classifier again each)
_CLASSIFY: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _row_mse(a, b):
    """(K,) per-row mean of (a − b)², reduced over the flattened row (batch-invariant rounding)."""
    d = tf.reshape(a - b, [tf.shape(a)[0], -1])
    return tf.reduce_mean(tf.square(d), axis=1)


class DIPFitter:
    """Fits one skip network per image, K at a time, in one compiled loop.

    Args:
      image_shape: (H, W, C) of the images.
      config: the fit's schedule (:class:`DIPConfig`).
      net: the architecture (default: :meth:`SkipNetConfig.for_image_shape`).
      bounds: pixel range of the images, mapped to the network's [0, 1].
    """

    def __init__(self, image_shape: Sequence[int], config: DIPConfig = DIPConfig(),
                 net: Optional[SkipNetConfig] = None, bounds=(0.0, 1.0)):
        self.config = config.validate()
        shape = tuple(image_shape)
        if len(shape) != 3 or any(d is None for d in shape):
            raise InputError(f"image_shape must be a static (H, W, C), got {shape}")
        self.net_config = net or SkipNetConfig.for_image_shape(shape)
        self.net = SkipNet(self.net_config, shape)
        self.image_shape = self.net.image_shape
        self.bounds = bounds_of(None, bounds)
        self._sharded_rows: Dict[tuple, object] = {}    # per-(seed, budget) row functions for strategy=
        # the compiled loop depends only on the network and the static settings (the budget,
        # threshold and learning rate are graph inputs): fitters that agree share one trace
        c = self.config
        key = (self.image_shape, self.net_config, c.beta1, c.beta2, c.epsilon, c.input_noise_std, c.ema)
        if key not in _LOOPS:
            # one graph for every batch size (unknown leading dim): Grappler rewrites a graph
            # traced for a known K differently, which would break the batch-invariance
            img = tf.TensorSpec([None, *self.image_shape], tf.float32)
            scalar = lambda dt: tf.TensorSpec([], dt)  # noqa: E731
            _LOOPS[key] = tf.function(self._loop_impl, autograph=False, input_signature=[
                img, tf.TensorSpec([None], tf.int64), scalar(tf.int64), scalar(tf.int32), scalar(tf.float32),
                scalar(tf.float32), tf.TensorSpec([None], tf.int32)])
        self._loop = _LOOPS[key]

    # ------------------------------------------------------------------ graph
    def _loop_impl(self, x01, keys, seed, max_iters, lr, threshold, snap_t):
        """The whole fit of a batch: returns (out, mse, iterations, stopped, snapshots)."""
        cfg, net = self.config, self.net
        b1, b2, adam_eps = cfg.beta1, cfg.beta2, cfg.epsilon
        noise_std, ema = float(cfg.input_noise_std), float(cfg.ema)
        n = tf.shape(x01)[0]
        n_snaps = tf.shape(snap_t)[0]
        img = list(self.image_shape)

        def output(phi, code, row_keys, t, ema_prev):
            """G_φ(z [+ noise_t]) and the image shown (the EMA when enabled)."""
            if noise_std > 0:
                code = code + per_key_normal(row_keys, seed, 16 + t, list(net.code_shape), noise_std)
            out = net(phi, code)
            shown = out
            if ema > 0:
                shown = tf.cond(tf.equal(t, 0), lambda: out, lambda: ema * ema_prev + (1.0 - ema) * out)
            return out, shown

        def record(bufs, idx, rows_mask, shown, mse, t, stopped_flag):
            out_b, mse_b, it_b, st_b = bufs
            sel = tf.boolean_mask(idx, rows_mask)[:, None]
            out_b = tf.tensor_scatter_nd_update(out_b, sel, tf.boolean_mask(shown, rows_mask))
            mse_b = tf.tensor_scatter_nd_update(mse_b, sel, tf.boolean_mask(mse, rows_mask))
            k = tf.shape(sel)[0]
            it_b = tf.tensor_scatter_nd_update(it_b, sel, tf.fill([k], t))
            st_b = tf.tensor_scatter_nd_update(st_b, sel, tf.fill([k], stopped_flag))
            return out_b, mse_b, it_b, st_b

        def snapshot(snaps, idx, shown, t):
            hit = tf.equal(snap_t, t)

            def write():
                s = tf.cast(tf.argmax(tf.cast(hit, tf.int32)), tf.int32)
                where = tf.stack([tf.fill(tf.shape(idx), s), idx], axis=1)
                return tf.tensor_scatter_nd_update(snaps, where, shown)

            return tf.cond(tf.reduce_any(hit), write, lambda: snaps)

        def body(t, idx, phi, m, v, xa, code, row_keys, ema_a, out_b, mse_b, it_b, st_b, snaps):
            with tf.GradientTape() as tape:
                tape.watch(phi)
                out, shown = output(phi, code, row_keys, t, ema_a)
                mse = _row_mse(out, xa)
                loss = tf.reduce_sum(mse)       # rows share no weights: row k's gradient is ∇ mse_k
            g = tape.gradient(loss, phi)
            snaps = snapshot(snaps, idx, shown, t)
            done = mse < threshold
            out_b, mse_b, it_b, st_b = record((out_b, mse_b, it_b, st_b), idx, done,
                                              shown, _row_mse(shown, xa), t, True)
            step, m, v = adam_update(g, m, v, tf.cast(t + 1, tf.float32), lr, b1, b2, adam_eps, form="kingma")
            phi = phi - step
            state = (idx, phi, m, v, xa, code, row_keys, shown)

            def compact():
                keep = tf.where(tf.logical_not(done))[:, 0]
                return tuple(tf.gather(s, keep) for s in state)

            idx, phi, m, v, xa, code, row_keys, ema_a = tf.cond(tf.reduce_any(done), compact, lambda: state)
            return t + 1, idx, phi, m, v, xa, code, row_keys, ema_a, out_b, mse_b, it_b, st_b, snaps

        def cond(t, idx, *_):
            return tf.logical_and(t < max_iters, tf.size(idx) > 0)

        phi0 = net.init_params_keyed(keys, seed)
        code0 = net.code_keyed(keys, seed)
        zeros = tf.zeros_like(phi0)
        init = (
            tf.constant(0), tf.range(n), phi0, zeros, zeros, x01, code0, keys, tf.zeros_like(x01),
            tf.zeros_like(x01), tf.zeros([n]), tf.zeros([n], tf.int32), tf.zeros([n], tf.bool),
            tf.zeros(tf.concat([[n_snaps, n], tf.constant(img)], 0)),
        )
        p = net.num_params
        invariants = (
            tf.TensorShape([]), tf.TensorShape([None]), tf.TensorShape([None, p]), tf.TensorShape([None, p]),
            tf.TensorShape([None, p]), tf.TensorShape([None, *img]), tf.TensorShape([None, *net.code_shape]),
            tf.TensorShape([None]), tf.TensorShape([None, *img]),
            tf.TensorShape([None, *img]), tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([None]),
            tf.TensorShape([None, None, *img]),
        )
        (t, idx, phi, _, _, xa, code, row_keys, ema_a, out_b, mse_b, it_b, st_b, snaps) = tf.while_loop(
            cond, body, init, shape_invariants=invariants, parallel_iterations=1)

        # rows that ran out of budget: their output after the last update
        def finish():
            out, shown = output(phi, code, row_keys, t, ema_a)
            everyone = tf.ones_like(idx, tf.bool)
            bufs = record((out_b, mse_b, it_b, st_b), idx, everyone, shown, _row_mse(shown, xa), t, False)
            return bufs + (snapshot(snaps, idx, shown, t),)

        out_b, mse_b, it_b, st_b, snaps = tf.cond(
            tf.size(idx) > 0, finish, lambda: (out_b, mse_b, it_b, st_b, snaps))
        # a snapshot after a row stopped is its final output
        late = it_b[None, :] < snap_t[:, None]                        # (S, N)
        snaps = tf.where(late[:, :, None, None, None], out_b[None], snaps)
        return out_b, mse_b, it_b, st_b, snaps

    # ------------------------------------------------------------------ API
    def keys(self, x, offset: int = 0) -> tf.Tensor:
        """(N,) int64 per-image keys: content fingerprints, or global positions ``offset + i``."""
        if self.config.seeding == "content":
            return content_keys(x)
        return tf.range(offset, offset + tf.shape(x)[0], dtype=tf.int64)

    def fit_tensors(self, x, seed: int = 0, max_iterations=None, mse_threshold=None, snapshots=(),
                    offset: int = 0):
        """Graph-friendly core on a batch ``x`` (tensor in ``bounds``), all rows at once.

        Returns ``(x_hat, mse, iterations, stopped, snapshots)`` tensors; ``x_hat`` and
        the snapshots ``(S, N, H, W, C)`` are in the input's bounds.
        """
        lo, hi = self.bounds
        x = tf.convert_to_tensor(x, tf.float32)
        x01 = (x - lo) / (hi - lo)
        cfg = self.config
        iters = tf.constant(cfg.max_iterations if max_iterations is None else max_iterations, tf.int32)
        thr = tf.constant(cfg.mse_threshold if mse_threshold is None else mse_threshold, tf.float32)
        snap_t = tf.constant(sorted({int(s) for s in snapshots}), tf.int32, shape=[len(set(snapshots))])
        out, mse, it, st, snaps = self._loop(x01, self.keys(x, offset), tf.constant(seed, tf.int64), iters,
                                             tf.constant(cfg.learning_rate, tf.float32), thr, snap_t)
        return lo + (hi - lo) * out, mse, it, st, lo + (hi - lo) * snaps

    def __call__(self, x, seed: int = 0, max_iterations: Optional[int] = None,
                 mse_threshold: Optional[float] = None, snapshots: Sequence[int] = (),
                 progress: bool = False, run_dir=None, chunk: Optional[int] = None,
                 strategy=None) -> DIPResult:
        """Fit every image of ``x`` (N, H, W, C), ``batch_size`` networks at a time.

        ``strategy``: a ``tf.distribute`` strategy to shard the images over (``batch_size`` networks
        per replica per graph call, rows merged back in input order by
        :func:`tf_inc.experiments.sharding.run_sharded`); needs content seeding, under which every
        image's fit is the one it gets on one device. ``None``: the current device.

        ``snapshots``: iteration counts at which to also return the output (for a row that
        stopped earlier, its final output), e.g. the early-stopping curve of one long fit.

        ``run_dir``: make the fits resumable (:class:`tf_inc.experiments.resumable.RowStore`): the
        images are fitted in fixed chunks of ``chunk`` images (default ``batch_size``), each
        finished chunk's rows (output, MSE, iterations, stop flag, snapshots) are saved atomically
        under ``run_dir/dip-<fingerprint>`` (the fingerprint covers the fit's config, the network,
        the bounds, the seed, the budget, threshold and snapshots, and the images), and a rerun
        after a kill fits only the chunks not saved yet. The result equals the plain call's: every
        image's fit is batch-invariant and keyed by its content (or its global position).
        """
        x = check_images(x, shape=self.image_shape, bounds=self.bounds, name="x")
        if max_iterations is not None:
            check_count(max_iterations, "max_iterations", 0)
        snaps_sorted = sorted({check_count(int(s), "snapshots", 0) for s in snapshots})
        if strategy is not None:
            from tf_inc.experiments.sharding import require_content_seeding

            require_content_seeding(self.config.seeding, "DIP fits")
        if run_dir is None:
            parts = self._fit_batches(x, 0, seed, max_iterations, mse_threshold, snaps_sorted, progress, strategy)
        else:
            parts = self._fit_resumable(x, seed, max_iterations, mse_threshold, snaps_sorted, progress,
                                        run_dir, chunk, strategy)
        return DIPResult(
            x_hat=parts["x_hat"], mse=parts["mse"], iterations=parts["it"], stopped=parts["st"],
            snapshots={s: np.ascontiguousarray(parts["snaps"][:, i]) for i, s in enumerate(snaps_sorted)},
        )

    def _fit_batches(self, x, offset, seed, max_iterations, mse_threshold, snaps_sorted, progress, strategy=None):
        """Rows of the fits of checked images ``x`` whose first image is image ``offset`` of the run
        (position seeding keys each image by its global index); snapshots as ``(N, S, H, W, C)``."""
        bs = self.config.batch_size
        if strategy is not None:
            return self._fit_sharded(x, seed, max_iterations, mse_threshold, snaps_sorted, progress, strategy)
        chunks = range(0, len(x), bs)
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="DIP fit", unit="batch", total=len(chunks))
        parts: Dict[str, list] = {k: [] for k in ("x_hat", "mse", "it", "st", "snaps")}
        for start in chunks:
            out = self.fit_tensors(x[start:start + bs], seed=seed, max_iterations=max_iterations,
                                   mse_threshold=mse_threshold, snapshots=snaps_sorted, offset=offset + start)
            for k, val in zip(parts, out):
                parts[k].append(val.numpy())
        rows = {k: np.concatenate(v) for k, v in parts.items() if k != "snaps"}
        rows["snaps"] = np.swapaxes(np.concatenate(parts["snaps"], axis=1), 0, 1)
        return rows

    def _fit_sharded(self, x, seed, max_iterations, mse_threshold, snaps_sorted, progress, strategy):
        """:meth:`fit_tensors` over ``strategy``'s replicas, ``batch_size`` networks per replica per call."""
        from tf_inc.experiments.sharding import run_sharded

        key = (int(seed), max_iterations, mse_threshold, tuple(snaps_sorted))
        rows = self._sharded_rows.get(key)
        if rows is None:
            def rows(xb):
                out, mse, it, st, snaps = self.fit_tensors(xb, seed=seed, max_iterations=max_iterations,
                                                           mse_threshold=mse_threshold, snapshots=snaps_sorted)
                return out, mse, it, st, tf.transpose(snaps, tf.concat([[1, 0], tf.range(2, tf.rank(snaps))], 0))

            self._sharded_rows[key] = rows  # same fn next call: run_sharded reuses its traced graph
        out = run_sharded(rows, x, strategy, batch_size=self.config.batch_size, progress=progress, desc="DIP fit")
        return dict(zip(("x_hat", "mse", "it", "st", "snaps"), out))

    def _fit_resumable(self, x, seed, max_iterations, mse_threshold, snaps_sorted, progress, run_dir, chunk,
                       strategy=None):
        from tf_inc.experiments.resumable import RowStore

        chunk = check_count(self.config.batch_size if chunk is None else chunk, "chunk")
        key = ("dip", self.config, self.net_config, self.image_shape, self.bounds, int(seed), max_iterations,
               mse_threshold, snaps_sorted, x)

        def rows(start, stop):
            return self._fit_batches(x[start:stop], start, seed, max_iterations, mse_threshold, snaps_sorted,
                                     False, strategy)

        store = RowStore(run_dir, "dip", key, len(x), chunk)
        return store.run(rows, progress=progress, describe={
            "config": self.config, "net": self.net_config, "seed": int(seed), "max_iterations": max_iterations,
            "mse_threshold": mse_threshold, "snapshots": snaps_sorted, "n": len(x)})


class DIPInvertAndClassify:
    """The DIP INC defence: ``C(G_φ*(z))`` with φ* from an early-stopped fit to x (Alg. 2).

    Args:
      classifier: Keras model image -> logits.
      config: the fit's schedule (:class:`DIPConfig`; :meth:`DIPConfig.for_epsilon` for §4.4.2's).
      net: the skip network (default :meth:`SkipNetConfig.for_image_shape`).
      seed: seed of the networks' random weights and codes (fixed seed ⇒ deterministic output).
      bounds: input pixel range; default the classifier's own (``classifier.bounds``).
      image_shape: (H, W, C); default the classifier's input shape.

    ``dip(x)`` returns class probabilities; :meth:`predict` returns probabilities, labels,
    ``rejected`` (always False: DIP INC has no reject option) and the :class:`DIPResult`.
    """

    def __init__(self, classifier, config: DIPConfig = DIPConfig(), net: Optional[SkipNetConfig] = None,
                 seed: int = 0, bounds=None, image_shape=None):
        self.classifier = classifier
        self.bounds = bounds_of(classifier, bounds)
        shape = tuple(image_shape) if image_shape is not None else input_shape_of(classifier)
        if shape is None or len(shape) != 3 or any(d is None for d in shape):
            raise InputError(f"DIP needs a static image shape (H, W, C); got {shape}: pass image_shape=")
        self.seed = int(seed)
        self.fitter = DIPFitter(shape, config, net, self.bounds)
        self.config, self.net_config = self.fitter.config, self.fitter.net_config
        self.image_shape = self.fitter.image_shape
        self._classify = shared_compiled(_CLASSIFY, classifier, "softmax", lambda: tf.function(
            lambda x: tf.nn.softmax(classifier(x, training=False)), reduce_retracing=True))

    def attack_view(self, seed: int, config: DIPConfig = None) -> "DIPInvertAndClassify":
        """A copy with another seed (other random weights and code) and optionally a cheaper fit,
        for an adaptive attacker: EOT averages several such draws, each with its BPDA gradient."""
        return DIPInvertAndClassify(self.classifier, config or self.config, self.net_config, seed=seed,
                                    bounds=self.bounds, image_shape=self.image_shape)

    def with_config(self, **changes) -> "DIPInvertAndClassify":
        """The same defence (same seed) with some fit settings changed, e.g. ``max_iterations``."""
        return DIPInvertAndClassify(self.classifier, replace(self.config, **changes), self.net_config,
                                    seed=self.seed, bounds=self.bounds, image_shape=self.image_shape)

    def fit(self, x, progress: bool = False, snapshots: Sequence[int] = (), run_dir=None,
            chunk: Optional[int] = None, strategy=None, **overrides) -> DIPResult:
        """The DIP fits of ``x`` (checked: shape, float, bounds, finite, non-empty).

        ``run_dir``: resumable in chunks of ``chunk`` images — each finished chunk is saved
        atomically and a rerun after a kill fits only the unfinished ones (:meth:`DIPFitter.__call__`).
        ``strategy``: shard the fits over a ``tf.distribute`` strategy's replicas (same rows).
        """
        return self.fitter(x, seed=self.seed, snapshots=snapshots, progress=progress, run_dir=run_dir,
                           chunk=chunk, strategy=strategy, **overrides)

    def classify(self, x_hat) -> np.ndarray:
        """Class probabilities of already fitted images."""
        x_hat = np.asarray(x_hat, np.float32)
        return np.concatenate([self._classify(tf.convert_to_tensor(x_hat[s:s + 500])).numpy()
                               for s in range(0, len(x_hat), 500)])

    def predict(self, x, progress: bool = False, run_dir=None, chunk: Optional[int] = None,
                strategy=None) -> Dict[str, np.ndarray]:
        res = self.fit(x, progress=progress, run_dir=run_dir, chunk=chunk, strategy=strategy)
        probs = self.classify(res.x_hat)
        return {"probabilities": probs, "label": probs.argmax(axis=1),
                "rejected": np.zeros(len(probs), bool), "result": res}

    def labels(self, x, progress: bool = False) -> np.ndarray:
        return self.predict(x, progress=progress)["label"]

    def __call__(self, x) -> np.ndarray:
        return self.predict(x)["probabilities"]

    # -------------------------------------------------------------- adaptive
    def project_bpda(self, x: tf.Tensor) -> tf.Tensor:
        """G_φ*(z) forward (the full early-stopped fit); identity backward (BPDA)."""

        @tf.custom_gradient
        def _proj(xx):
            # the fit sees a stopped input: called on a watched tensor, TF would build (and
            # compile) the backward graph of the whole fit loop, only for the identity to replace it
            out = self.fitter.fit_tensors(tf.stop_gradient(xx), seed=self.seed)[0]

            def grad(dy, variables=None):
                if variables:
                    return dy, [None] * len(variables)
                return dy

            return tf.stop_gradient(out), grad

        return _proj(tf.convert_to_tensor(x, tf.float32))

    def bpda_logits(self, x: tf.Tensor) -> tf.Tensor:
        """``model_fn`` for the attacks: classifier logits on the BPDA fit."""
        return self.classifier(self.project_bpda(x), training=False)

    def bpda_probabilities(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.softmax(self.bpda_logits(x))

    def logits(self, x: tf.Tensor) -> tf.Tensor:
        """Classifier logits on the (non-differentiable) fit."""
        x = tf.stop_gradient(tf.convert_to_tensor(x, tf.float32))
        x_hat = tf.stop_gradient(self.fitter.fit_tensors(x, seed=self.seed)[0])
        return self.classifier(x_hat, training=False)

    def naive_probabilities(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.softmax(self.logits(x))
