"""Projection onto the range of a generator (paper Alg. 1, step 1).

:func:`project` finds ``z* ≈ argmin_z ||G(z) − x||²`` for a batch of images by
Adam in z, with ``R`` random restarts per image drawn from the generator's
own prior and best-of-R selection per image.

Design (all of it inside one ``tf.function``; no Python runs per step):

* the N images × R restarts are flattened into ``N·R`` independent *rows*; each
  row has its own Adam moments, its own best iterate and its own stopping state;
* **early stopping**: every ``patience`` steps a row checks how much its best
  objective improved over that window; if by less than the fraction ``rel_tol``
  it is frozen. Frozen rows are *compacted out*
  (``tf.where`` + gather/scatter), so they stop costing generator evaluations;
  the loop ends when every row is frozen or ``steps`` is reached;
* each row keeps the best point it has evaluated (not the last), so more steps
  or more restarts can never make the chosen error worse;
* optional prior term ``prior_weight · ||z||² / σ²`` (the original TF code had
  one), ``σ`` read from the generator;
* optional warm start of restart 0 from an encoder ``E(x)``;
* optional scale-out: ``strategy=`` (a ``tf.distribute`` strategy) shards the images over its
  replicas / workers and merges the rows back in input order
  (:func:`tf_inc.experiments.sharding.run_sharded`); with content-keyed seeding every image gets
  the answer it gets on one device;
* optional resume: ``run_dir=`` projects the images in fixed chunks and saves each finished
  chunk's rows atomically (:class:`tf_inc.experiments.resumable.RowStore`), so a projection of a
  whole test split killed half-way redoes only its unfinished chunks when run again.

The defence built on it, :class:`tf_inc.defences.InvertAndClassify`, lives in
:mod:`tf_inc.defences.inc`.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from tf_inc.bounds import bounds_of, check_count, check_images
from tf_inc.compiled import shared_compiled
from tf_inc.errors import InputError
from tf_inc.optim import (
    adam_update,
    content_keys,
    keep_best,
    stateless_normal_per_key,
    stateless_normal_rows,
)


@dataclass
class InversionConfig:
    """Hyper-parameters of the projection (defaults: the paper's MNIST values)."""

    steps: int = field(default=1000, metadata={"help": "max Adam steps T per restart"})
    restarts: int = field(default=4, metadata={"help": "random restarts R per image"})
    learning_rate: float = field(default=0.1, metadata={"help": "Adam lr (paper: 0.1 MNIST, 0.01 CelebA)"})
    beta1: float = field(default=0.9, metadata={"help": "Adam β1"})
    beta2: float = field(default=0.999, metadata={"help": "Adam β2"})
    epsilon: float = field(default=1e-8, metadata={"help": "Adam ε"})
    prior_weight: float = field(default=0.0, metadata={"help": "weight of ||z||²/σ² (0 = paper's Alg. 1)"})
    early_stop: bool = field(default=True, metadata={"help": "freeze rows that stopped improving"})
    patience: int = field(default=100, metadata={"help": "early-stopping window (steps)"})
    rel_tol: float = field(default=5e-3, metadata={"help": "a row stops when its objective improved by less "
                                                           "than this fraction over its last window"})
    batch_size: int = field(default=512, metadata={"help": "images per graph call (memory bound)"})
    lr_schedule: str = field(default="constant", metadata={"help": "constant (paper) or cosine (decay to 0 over steps)"})
    warm_start: bool = field(default=False, metadata={"help": "restart 0 starts at E(x) when an encoder is given"})
    jit_compile: bool = field(default=False, metadata={"help": "XLA-compile the loop (disables compaction)"})
    seeding: str = field(default="content", metadata={
        "help": "content: an image's restarts are keyed by the image itself (same answer in any batch); "
                "position: by its index in the batch (legacy)", "choices": ["content", "position"]})

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "InversionConfig":
        """Paper defaults: MNIST lr 0.1 / 1000 steps; CelebA lr 0.01 / several thousand steps."""
        base = {
            "mnist": dict(steps=1000, learning_rate=0.1),
            "celeba": dict(steps=3000, learning_rate=0.01, restarts=2, batch_size=64),
        }
        if dataset not in base:
            raise ValueError(f"no inversion defaults for dataset {dataset!r}")
        return cls(**{**base[dataset], **overrides})

    #: named settings: ``paper`` is Algorithm 1 as the paper ran it (the defaults above); ``fast``
    #: decays the step size to 0 with a cosine schedule over at most 400 steps and freezes a row
    #: whose objective improved by < 0.5 % over 50 steps. Chosen among candidates on 300
    #: *validation* images (never test) by Figure 3's protocol: 0.37 of the paper run's image-steps,
    #: INC accuracy at most 1.7 points below the paper preset at any ε (one image = 0.33 points);
    #: on Figure 3's test images (n = 300) 0.38 of the image-steps, at most 1.0 point below.
    #: Not a drop-in replacement for reported numbers; see README "Inversion presets".
    PRESETS = {
        "paper": {},
        "fast": dict(steps=400, lr_schedule="cosine", early_stop=True, patience=50),
    }

    @classmethod
    def preset(cls, name: str, **overrides) -> "InversionConfig":
        """``InversionConfig`` of the named preset (``paper`` or ``fast``), then ``overrides``."""
        if name not in cls.PRESETS:
            raise InputError(f"unknown inversion preset {name!r}; choose one of {', '.join(cls.PRESETS)}")
        return cls(**{**overrides, **cls.PRESETS[name]})

    def validate(self) -> "InversionConfig":
        if self.steps < 0 or self.restarts < 1 or self.learning_rate <= 0 or self.batch_size < 1:
            raise InputError(f"invalid inversion config: {self}")
        if self.patience < 1:
            raise InputError("patience must be >= 1")
        if self.seeding not in ("content", "position"):
            raise InputError(f"seeding must be 'content' or 'position', got {self.seeding!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise InputError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        return self


@dataclass
class InversionResult:
    """Outcome of :func:`project` for N images (numpy arrays)."""

    z: np.ndarray            # (N, k) chosen latent z*
    x_hat: np.ndarray        # (N, H, W, C) G(z*)
    l2: np.ndarray           # (N,) ||G(z*) − x||_2
    mse: np.ndarray          # (N,) mean squared error per pixel
    steps: np.ndarray        # (N,) Adam steps taken by the chosen restart
    restart: np.ndarray      # (N,) index of the chosen restart
    restart_l2: np.ndarray   # (N, R) ||G(z_r) − x||_2 of every restart's best point
    total_steps: int         # Σ steps over all rows (the compute actually spent)
    restart_steps: Optional[np.ndarray] = None   # (N, R) Adam steps taken by every restart

    def accepted(self, eta: float) -> np.ndarray:
        """Paper step 2: keep x iff ||G(z*) − x|| < η."""
        return self.l2 < eta

    def rejected(self, eta: float) -> np.ndarray:
        return ~self.accepted(eta)


def _flat(t):
    return tf.reshape(t, [tf.shape(t)[0], -1])


#: compiled inversion loops: generator -> {graph-relevant settings: loop} (see Projector._shared_loop)
_LOOPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class Projector:
    """Compiled projection for one generator (and optional encoder) and config.

    The graph is traced once per input shape; ``steps`` and the learning rate
    are graph inputs, so changing them does not retrace.
    """

    def __init__(self, generator, config: InversionConfig = InversionConfig(), encoder=None, bounds=None):
        self.generator = generator
        self.bounds = bounds_of(generator, bounds)     # the generator's own unless given; never a silent default
        self.config = config.validate()
        self.encoder = encoder
        self.prior_std = float(getattr(generator, "prior_std", 1.0))
        self.latent_dim = int(getattr(generator, "latent_dim", 0) or generator.input_shape[-1])
        probe = generator(tf.zeros((1, self.latent_dim)), training=False)
        self.image_shape = tuple(int(d) for d in probe.shape[1:])
        self._loop = self._shared_loop()
        self._sharded_rows: Dict[tuple, object] = {}

    # ------------------------------------------------------------------ graph
    def _shared_loop(self):
        """The compiled loop, shared by every Projector of this generator whose graph-relevant
        settings agree (steps and learning rate are graph inputs): a new Projector (a new
        ``InvertAndClassify``, an attacker's copy) reuses the traces instead of tracing again."""
        c = self.config
        key = (c.beta1, c.beta2, c.epsilon, c.prior_weight, c.patience, c.rel_tol, c.early_stop, c.jit_compile,
               c.lr_schedule, self.prior_std)
        return shared_compiled(_LOOPS, self.generator, key, lambda: tf.function(
            self._loop_impl, jit_compile=c.jit_compile, reduce_retracing=True, autograph=False))

    def _loop_impl(self, x_rows, z0, steps, lr):
        """Adam on every row of ``z0`` towards ``x_rows``; returns (best_z, best_obj, steps_used)."""
        cfg = self.config
        G = self.generator
        b1, b2, eps = cfg.beta1, cfg.beta2, cfg.epsilon
        prior_coef = cfg.prior_weight / (self.prior_std ** 2)
        compact = cfg.early_stop and not cfg.jit_compile
        x_flat = _flat(x_rows)
        n_rows = tf.shape(z0)[0]
        patience = tf.constant(cfg.patience, tf.int32)

        def objective(z, x):
            diff = _flat(G(z, training=False)) - x
            obj = tf.reduce_sum(tf.square(diff), axis=1)
            if prior_coef:
                obj += prior_coef * tf.reduce_sum(tf.square(z), axis=1)
            return obj

        def body(i, z, m, v, best_z, best_obj, ref_obj, since, active, used):
            if compact:
                idx = tf.where(active)[:, 0]
                z_a, m_a, v_a = tf.gather(z, idx), tf.gather(m, idx), tf.gather(v, idx)
                x_a = tf.gather(x_flat, idx)
            else:
                z_a, m_a, v_a, x_a = z, m, v, x_flat
            with tf.GradientTape(watch_accessed_variables=False) as tape:     # z only: weights are frozen
                tape.watch(z_a)
                obj = objective(z_a, x_a)
            g = tape.gradient(obj, z_a)
            t = tf.cast(i + 1, tf.float32)
            lr_t = lr
            if cfg.lr_schedule == "cosine":
                frac = tf.minimum(tf.cast(i, tf.float32) / tf.cast(tf.maximum(steps, 1), tf.float32), 1.0)
                lr_t = lr * 0.5 * (1.0 + tf.cos(np.pi * frac))
            step, m_new, v_new = adam_update(g, m_a, v_a, t, lr_t, b1, b2, eps, form="keras")
            z_new = z_a - step

            if compact:
                bo, bz = tf.gather(best_obj, idx), tf.gather(best_z, idx)
                ro, sn = tf.gather(ref_obj, idx), tf.gather(since, idx)
            else:
                bo, bz, ro, sn = best_obj, best_z, ref_obj, since
            bo2, (bz2,), _ = keep_best(obj, bo, [z_a], [bz])
            # windows of `patience` steps: at the end of a window a row goes on only if
            # its best objective improved by at least rel_tol (relative) during the window
            ro = tf.where(tf.math.is_inf(ro), obj, ro)
            sn2 = sn + 1
            window_end = sn2 >= patience
            gain = (ro - bo2) / tf.maximum(ro, 1e-12)
            stalled = tf.logical_and(window_end, gain < cfg.rel_tol)
            ro2 = tf.where(window_end, bo2, ro)
            sn2 = tf.where(window_end, tf.where(stalled, patience, tf.zeros_like(sn2)), sn2)
            if compact:
                sidx = idx[:, None]
                z = tf.tensor_scatter_nd_update(z, sidx, z_new)
                m = tf.tensor_scatter_nd_update(m, sidx, m_new)
                v = tf.tensor_scatter_nd_update(v, sidx, v_new)
                best_obj = tf.tensor_scatter_nd_update(best_obj, sidx, bo2)
                best_z = tf.tensor_scatter_nd_update(best_z, sidx, bz2)
                ref_obj = tf.tensor_scatter_nd_update(ref_obj, sidx, ro2)
                since = tf.tensor_scatter_nd_update(since, sidx, sn2)
                used = tf.tensor_scatter_nd_add(used, sidx, tf.ones_like(sn2))
                active = since < patience
            else:
                keep = active[:, None]
                z = tf.where(keep, z_new, z)
                m = tf.where(keep, m_new, m)
                v = tf.where(keep, v_new, v)
                best_obj = tf.where(active, bo2, best_obj)
                best_z = tf.where(keep, bz2, best_z)
                ref_obj = tf.where(active, ro2, ref_obj)
                since = tf.where(active, sn2, since)
                used = used + tf.cast(active, tf.int32)
                if cfg.early_stop:
                    active = tf.logical_and(active, since < patience)
            return i + 1, z, m, v, best_z, best_obj, ref_obj, since, active, used

        def cond(i, *state):
            active = state[-2]
            return tf.logical_and(i < steps, tf.reduce_any(active))

        inf = tf.fill([n_rows], tf.constant(np.inf, tf.float32))
        zeros = tf.zeros_like(z0)
        init = (
            tf.constant(0), z0, zeros, zeros, z0, inf, inf,
            tf.zeros([n_rows], tf.int32), tf.ones([n_rows], tf.bool), tf.zeros([n_rows], tf.int32),
        )
        _, z, _, _, best_z, best_obj, _, _, _, used = tf.while_loop(
            cond, body, init, parallel_iterations=1, maximum_iterations=steps
        )
        # the last Adam update has not been evaluated yet: keep it if it is better
        best_obj, (best_z,), _ = keep_best(objective(z, x_flat), best_obj, [z], [best_z])
        x_best = G(best_z, training=False)
        data_l2 = tf.norm(_flat(x_best) - x_flat, axis=1)
        return best_z, best_obj, data_l2, used, x_best

    # ------------------------------------------------------------------ API
    def initial_latents(self, x, seed: int) -> tf.Tensor:
        """(R·N, k) starting points: restart r of image i is row r·N + i.

        Restart r is drawn with the stream (seed, r), so the first R' restarts of
        a run with R > R' restarts are exactly the restarts of the R'-restart run.
        With ``seeding="content"`` each image's draws are keyed by the image
        itself (:func:`tf_inc.optim.content_keys`): an image gets the same
        restarts, hence the same answer, wherever it sits in whatever batch.
        """
        n = tf.shape(x)[0]
        if self.config.seeding == "content":
            keys = content_keys(x)
            zs = [stateless_normal_per_key(keys, self.latent_dim, seed, r, stddev=self.prior_std)
                  for r in range(self.config.restarts)]
        else:
            zs = [stateless_normal_rows(n, self.latent_dim, seed, r, stddev=self.prior_std)
                  for r in range(self.config.restarts)]
        if self.config.warm_start and self.encoder is not None:
            enc = self.encoder(x)
            zs[0] = tf.convert_to_tensor(enc[0] if isinstance(enc, (list, tuple)) else enc)
        return tf.concat(zs, axis=0)

    def optimise_rows(self, x_rows, z0, steps=None, learning_rate=None):
        """The compiled Adam loop on independent rows: row i starts at ``z0[i]`` and fits
        ``x_rows[i]``. Returns ``(best_z, best_obj, l2, steps_used, G(best_z))`` per row; ``steps``
        and ``learning_rate`` default to the config's. :meth:`project_tensors` lays its restarts out
        as rows; an EOT attacker lays out several draws' restarts (``InvertAndClassify.eot_bpda_log_probs``)."""
        cfg = self.config
        steps_t = tf.cast(cfg.steps if steps is None else steps, tf.int32)
        lr_t = tf.cast(cfg.learning_rate if learning_rate is None else learning_rate, tf.float32)
        return self._loop(x_rows, z0, steps_t, lr_t)

    def project_tensors(self, x: tf.Tensor, seed: int = 0, steps=None, learning_rate=None):
        """Graph-friendly core: returns ``(z*, G(z*), l2, obj_rows, l2_rows, used_rows)`` tensors."""
        R = self.config.restarts
        n = tf.shape(x)[0]
        z0 = self.initial_latents(x, seed)
        x_rows = tf.tile(x, [R] + [1] * (len(x.shape) - 1))
        best_z, best_obj, l2_rows, used, x_rows_best = self.optimise_rows(x_rows, z0, steps, learning_rate)
        obj_rn = tf.reshape(best_obj, [R, n])
        choice = tf.argmin(obj_rn, axis=0, output_type=tf.int32)
        rows = choice * n + tf.range(n)
        z_star = tf.gather(best_z, rows)
        x_hat = tf.gather(x_rows_best, rows)
        l2 = tf.gather(l2_rows, rows)
        return z_star, x_hat, l2, choice, tf.reshape(l2_rows, [R, n]), tf.reshape(used, [R, n])

    def _project_sharded(self, x, seed, steps, learning_rate, progress, strategy) -> Dict[str, np.ndarray]:
        """:meth:`project_tensors` over ``strategy``'s replicas, ``batch_size`` images per replica per call."""
        from tf_inc.experiments.sharding import require_content_seeding, run_sharded

        require_content_seeding(self.config.seeding, "inversions")
        key = (seed, steps, learning_rate)
        rows = self._sharded_rows.get(key)
        if rows is None:
            def rows(xb):
                z, x_hat, l2, choice, rl2, used = self.project_tensors(xb, seed=seed, steps=steps,
                                                                       learning_rate=learning_rate)
                return z, x_hat, l2, choice, tf.transpose(rl2), tf.transpose(used)

            self._sharded_rows[key] = rows          # same fn next call: run_sharded reuses its graph
        out = run_sharded(rows, x, strategy, batch_size=self.config.batch_size, progress=progress, desc="invert")
        return dict(zip(("z", "x_hat", "l2", "choice", "rl2", "used"), out))

    def __call__(self, x, seed: int = 0, steps: Optional[int] = None,
                 learning_rate: Optional[float] = None, progress: bool = False,
                 strategy=None, run_dir=None, chunk: Optional[int] = None) -> InversionResult:
        """Project a batch of images (numpy/tensor, (N, H, W, C)) and return an :class:`InversionResult`.

        ``strategy``: a ``tf.distribute`` strategy to shard the images over (``batch_size`` images
        per replica per graph call); ``None`` runs on the current device in chunks of ``batch_size``.

        ``run_dir``: make the projection resumable (:class:`tf_inc.experiments.resumable.RowStore`):
        the images are projected in fixed chunks of ``chunk`` images (default ``batch_size``), each
        finished chunk's rows are saved atomically under ``run_dir/invert-<fingerprint>`` (the
        fingerprint covers the config, seed, steps, learning rate, the generator's (and a warm
        start's encoder's) weights and the images), and a rerun after a kill projects only the
        chunks that were not saved yet. The result equals the plain call's: with content seeding
        an image's answer does not depend on its chunk; with position seeding ``chunk`` must be a
        multiple of ``batch_size`` (the batches, hence their seeds, are then the plain call's).
        """
        x = check_images(x, shape=self.image_shape, bounds=self.bounds, name="x")
        if run_dir is not None:
            return self._project_resumable(x, seed, steps, learning_rate, progress, strategy, run_dir, chunk)
        return self._project(x, seed, steps, learning_rate, progress, strategy)

    def _project(self, x, seed, steps, learning_rate, progress, strategy, first_batch: int = 0) -> InversionResult:
        """The projection of checked images ``x``; ``first_batch``: index of x's first batch in a
        larger run (position seeding derives each batch's seed from its global index)."""
        cfg = self.config
        if strategy is not None:
            p = self._project_sharded(x, seed, steps, learning_rate, progress, strategy)
            return _result(p["z"], p["x_hat"], p["l2"], p["choice"], p["rl2"], p["used"], x)
        chunks = range(0, len(x), cfg.batch_size)
        if progress and len(chunks) > 1:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="invert", unit="batch")
        parts: Dict[str, list] = {k: [] for k in ("z", "x_hat", "l2", "choice", "rl2", "used")}
        for c, start in enumerate(chunks):
            xb = tf.convert_to_tensor(x[start : start + cfg.batch_size])
            chunk_seed = seed if cfg.seeding == "content" else seed + 7919 * (first_batch + c)
            out = self.project_tensors(xb, seed=chunk_seed, steps=steps, learning_rate=learning_rate)
            for k, v in zip(parts, out):
                parts[k].append(v.numpy())
        z = np.concatenate(parts["z"])
        x_hat = np.concatenate(parts["x_hat"])
        l2 = np.concatenate(parts["l2"])
        choice = np.concatenate(parts["choice"])
        rl2 = np.concatenate(parts["rl2"], axis=1).T          # (N, R)
        used = np.concatenate(parts["used"], axis=1).T        # (N, R)
        return _result(z, x_hat, l2, choice, rl2, used, x)

    def _project_resumable(self, x, seed, steps, learning_rate, progress, strategy, run_dir, chunk):
        """:meth:`__call__` with ``run_dir``: chunked, each finished chunk saved, finished chunks reused."""
        from tf_inc.experiments.resumable import RowStore

        cfg = self.config
        chunk = check_count(cfg.batch_size if chunk is None else chunk, "chunk")
        if cfg.seeding == "position" and (strategy is not None or chunk % cfg.batch_size):
            raise InputError(f"chunk: with seeding='position' a resumable projection needs chunk a multiple of "
                             f"batch_size ({cfg.batch_size}) and no strategy, got chunk={chunk}")
        warm = self.encoder if (cfg.warm_start and self.encoder is not None) else None
        key = ("invert", cfg, int(seed), steps, learning_rate, self.bounds, self.prior_std, self.generator, warm, x)

        def rows(start, stop):
            r = self._project(x[start:stop], seed, steps, learning_rate, False, strategy,
                              first_batch=start // cfg.batch_size)
            return {"z": r.z, "x_hat": r.x_hat, "l2": r.l2, "choice": r.restart, "rl2": r.restart_l2,
                    "used": r.restart_steps}

        store = RowStore(run_dir, "invert", key, len(x), chunk)
        p = store.run(rows, progress=progress, describe={"config": cfg, "seed": int(seed), "steps": steps,
                                                         "learning_rate": learning_rate, "n": len(x)})
        return _result(p["z"], p["x_hat"], p["l2"], p["choice"], p["rl2"], p["used"], x)


def _result(z, x_hat, l2, choice, rl2, used, x) -> InversionResult:
    """An :class:`InversionResult` from per-image rows (``rl2`` and ``used``: (N, R))."""
    d = int(np.prod(x.shape[1:]))
    return InversionResult(
        z=z, x_hat=x_hat, l2=l2, mse=l2**2 / d,
        steps=used[np.arange(len(x)), choice], restart=choice, restart_l2=rl2,
        total_steps=int(used.sum()), restart_steps=used,
    )


def project(generator, x, config: InversionConfig = InversionConfig(), seed: int = 0,
            encoder=None, progress: bool = False, bounds=None, strategy=None, run_dir=None,
            chunk: Optional[int] = None) -> InversionResult:
    """Project ``x`` onto the range of ``generator``; see :class:`Projector`.

    ``bounds``: the pixel range of x; default the generator's (``generator.bounds``).
    ``strategy``: shard the images over a ``tf.distribute`` strategy's replicas (``None``: one device).
    ``run_dir`` / ``chunk``: resumable in chunks (see :meth:`Projector.__call__`).
    Bad images raise :class:`~tf_inc.errors.InputError` before the generator is first called.
    """
    x = check_images(x, shape=getattr(generator, "image_shape", None), bounds=bounds_of(generator, bounds),
                     name="x")
    return Projector(generator, config, encoder=encoder, bounds=bounds)(x, seed=seed, progress=progress,
                                                                        strategy=strategy, run_dir=run_dir,
                                                                        chunk=chunk)
