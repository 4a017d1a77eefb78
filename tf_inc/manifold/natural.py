"""Natural adversarial examples (Zhao, Dua & Singh, ICLR 2018), searched in the generator's latent space.

A natural adversary of x for a classifier f is ``x* = G(z*)`` with

    z* = argmin_z̃ ‖z̃ − I(x)‖  subject to  f(G(z̃)) ≠ f(x),

where ``I`` maps images to codes (here the VAE encoder ``E``, or INC's
projection ``z*(x)``). The perturbation lives in latent space, so ``x*`` is a
generated image — it changes strokes, not pixels. The constraint is not
differentiable; Zhao et al. search by sampling:

* **iterative stochastic search** (their Alg. 1): sample ``samples`` points
  ``z̃ = z + d·u`` (u uniform on the unit sphere, d uniform in the ring
  ``[l, l + Δr)``) and widen the ring by Δr until some ``f(G(z̃)) ≠ y``; the
  closest such point is returned;
* **hybrid shrinking search** (their Alg. 2): start with the range ``[0, h)``;
  when an adversary at distance d is found, search ``[d/2, d)`` next, when none
  is found move the lower end up (or, after ``stop`` fruitless tries, stop
  shrinking); then walk down from the best distance in rings of width Δr until
  ``stop`` rings in a row hold no adversary.

Both run for a batch of images at once inside one ``tf.function`` while-loop:
each image is a row with its own search state (range, best point, counter,
phase); rows that have finished are compacted out, so the loop only spends
generator and classifier evaluations on images still searching.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import tensorflow as tf

from tf_inc.bounds import bounds_of, check_count, check_images, check_labels, num_classes_of
from tf_inc.errors import InputError

METHODS = ("hybrid", "iterative")


@dataclass
class NaturalAdversaryConfig:
    """Search hyper-parameters (Zhao et al.'s code: 5000 samples, Δr = 0.01, range [0, 10), stop 5)."""

    method: str = field(default="hybrid", metadata={"help": "hybrid (shrinking, Alg. 2) or iterative (Alg. 1)",
                                                    "choices": list(METHODS)})
    samples: int = field(default=200, metadata={"help": "latent samples per image per iteration "
                                                        "(Zhao et al.: 5000; fewer on a CPU)"})
    step: float = field(default=0.01, metadata={"help": "Δr: ring width of the fine search"})
    initial_range: float = field(default=10.0, metadata={"help": "h: upper end of the first hybrid range"})
    stop: int = field(default=5, metadata={"help": "fruitless iterations before a phase ends"})
    max_iterations: int = field(default=100, metadata={"help": "iteration cap per image"})
    max_rows: int = field(default=2048, metadata={"help": "latent samples evaluated per graph call (memory)"})
    seed: int = field(default=0, metadata={"help": "seed of the latent samples"})

    def validate(self) -> "NaturalAdversaryConfig":
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        for name in ("samples", "stop", "max_iterations", "max_rows"):
            check_count(getattr(self, name), name)
        for name in ("step", "initial_range"):
            v = getattr(self, name)
            if not np.isfinite(v) or v <= 0:
                raise InputError(f"{name} must be a positive number, got {v}")
        if self.initial_range < self.step:
            raise InputError("initial_range must be >= step")
        return self


@dataclass
class NaturalAdversaryResult:
    """Per image (numpy): the latent z = I(x), the adversarial code, its image and label."""

    z: np.ndarray            # (N, k) I(x)
    z_adv: np.ndarray        # (N, k) z̃ (= z where none was found)
    x_adv: np.ndarray        # (N, H, W, C) G(z̃)
    label_adv: np.ndarray    # (N,) f(G(z̃)) (-1 where none was found)
    distance: np.ndarray     # (N,) ‖z̃ − z‖₂ (inf where none was found)
    found: np.ndarray        # (N,) bool
    iterations: np.ndarray   # (N,) search iterations spent
    evaluations: int         # classifier calls in total


class NaturalAdversarySearch:
    """Latent-space search for natural adversaries against ``classifier`` over ``generator``'s range.

    Args:
      generator: the decoder G (a :class:`tf_inc.models.Generator`).
      classifier: Keras model image -> logits (the black box f; only its labels are used).
      config: :class:`NaturalAdversaryConfig`.
      encoder: the inverter I (``vae.encode``); needed for ``latent="encoder"``.
    """

    def __init__(self, generator, classifier, config: NaturalAdversaryConfig = NaturalAdversaryConfig(),
                 encoder=None, bounds=None):
        self.generator, self.classifier, self.encoder = generator, classifier, encoder
        self.config = config.validate()
        self.bounds = bounds_of(generator, bounds)
        self.latent_dim = int(getattr(generator, "latent_dim", 0) or generator.input_shape[-1])
        self.image_shape = tuple(int(d) for d in generator(tf.zeros((1, self.latent_dim))).shape[1:])

    # ---------------------------------------------------------------- latents
    def latents(self, x, latent: str = "encoder", inversion_config=None, seed: int = 0) -> np.ndarray:
        """``I(x)``: the encoder's code (``encoder``) or INC's projection z* (``inversion``)."""
        x = check_images(x, shape=self.image_shape, bounds=self.bounds, name="x")
        if latent == "encoder":
            if self.encoder is None:
                raise InputError("latent='encoder' needs an encoder (pass encoder=vae.encode)")
            from tf_inc.defences.autoencode import encode_mean

            return np.concatenate([encode_mean(self.encoder, tf.convert_to_tensor(x[s:s + 1000])).numpy()
                                   for s in range(0, len(x), 1000)])
        if latent == "inversion":
            from tf_inc.manifold.inversion import InversionConfig, project

            return project(self.generator, x, inversion_config or InversionConfig(), seed=seed).z
        raise InputError(f"latent must be 'encoder' or 'inversion', got {latent!r}")

    # ---------------------------------------------------------------- search
    def search(self, z, y, target=None) -> NaturalAdversaryResult:
        """Search around the codes ``z`` (N, k) for ``f(G(z̃)) ≠ y`` (or ``= target`` when given)."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim or len(z) == 0 or not np.all(np.isfinite(z)):
            raise InputError(f"z: expected finite codes of shape (N, {self.latent_dim}), got {z.shape}")
        y, t = self._check_labels(y, target, len(z))
        targeted = target is not None
        cfg = self.config
        per_call = max(1, cfg.max_rows // cfg.samples)
        run = _compiled(self, cfg.method, cfg.samples, float(cfg.step), float(cfg.initial_range), cfg.stop,
                        cfg.max_iterations, targeted)
        parts = {k: [] for k in ("z_adv", "x_adv", "label", "d", "found", "iters")}
        evals = 0
        for c, s in enumerate(range(0, len(z), per_call)):
            out = run(tf.constant(z[s:s + per_call]), tf.constant(t[s:s + per_call]),
                      tf.constant([cfg.seed, c], tf.int32))
            for k, v in zip(parts, out[:-1]):
                parts[k].append(v.numpy())
            evals += int(out[-1].numpy())
        r = {k: np.concatenate(v) for k, v in parts.items()}
        return NaturalAdversaryResult(z=z, z_adv=r["z_adv"], x_adv=r["x_adv"],
                                      label_adv=np.where(r["found"], r["label"], -1),
                                      distance=np.where(r["found"], r["d"], np.inf), found=r["found"],
                                      iterations=r["iters"], evaluations=evals * cfg.samples)

    def __call__(self, x, y, latent: str = "encoder", target=None, inversion_config=None) -> NaturalAdversaryResult:
        """Natural adversaries of images ``x`` with labels ``y`` (usually f(x)) around ``I(x)``."""
        x = check_images(x, shape=self.image_shape, bounds=self.bounds, name="x")
        self._check_labels(y, target, len(x))          # before the encoder / inversion runs
        return self.search(self.latents(x, latent, inversion_config), y, target)

    def _check_labels(self, y, target, n):
        k = num_classes_of(self.classifier)
        y = check_labels(y, n, k, name="y")
        return y, (check_labels(target, n, k, name="target") if target is not None else y)


@functools.lru_cache(maxsize=8)
def _compiled(searcher: NaturalAdversarySearch, method: str, samples: int, step: float, h0: float,
              stop: int, max_iters: int, targeted: bool):
    G, C, k = searcher.generator, searcher.classifier, searcher.latent_dim
    hybrid = method == "hybrid"

    @tf.function(reduce_retracing=True, autograph=False)
    def run(z, y, seed):
        n = tf.shape(z)[0]
        inf = tf.constant(np.inf, tf.float32)
        lo0 = tf.zeros([n])
        hi0 = tf.fill([n], tf.constant(h0 if hybrid else step, tf.float32))

        def body(i, lo, hi, best_d, best_z, best_lab, counter, phase, iters, evals):
            idx = tf.where(phase < 2)[:, 0]
            m = tf.shape(idx)[0]
            za, ya = tf.gather(z, idx), tf.gather(y, idx)
            la, ha = tf.gather(lo, idx), tf.gather(hi, idx)
            s = tf.stack([seed[0] * 7919 + seed[1], i])
            u = tf.random.stateless_normal(tf.stack([m, samples, k]), s)
            u = u / tf.norm(u, axis=-1, keepdims=True)
            d = la[:, None] + (ha - la)[:, None] * tf.random.stateless_uniform(tf.stack([m, samples]), s + 1)
            zt = za[:, None, :] + d[..., None] * u                                 # (m, S, k)
            lab = tf.argmax(C(G(tf.reshape(zt, [-1, k]), training=False), training=False), axis=1)
            lab = tf.reshape(lab, [m, samples])
            hit = tf.equal(lab, ya[:, None]) if targeted else tf.not_equal(lab, ya[:, None])
            dm = tf.where(hit, d, inf)
            j = tf.argmin(dm, axis=1, output_type=tf.int32)
            dmin = tf.reduce_min(dm, axis=1)
            found = tf.math.is_finite(dmin)
            zmin = tf.gather(zt, j, batch_dims=1)
            lmin = tf.gather(lab, j, batch_dims=1)

            bd, bz, bl = tf.gather(best_d, idx), tf.gather(best_z, idx), tf.gather(best_lab, idx)
            cnt, ph, it = tf.gather(counter, idx), tf.gather(phase, idx), tf.gather(iters, idx)
            better = tf.logical_and(found, dmin < bd)
            bd = tf.where(better, dmin, bd)
            bz = tf.where(better[:, None], zmin, bz)
            bl = tf.where(better, lmin, bl)
            one = tf.ones_like(cnt)
            if hybrid:
                # phase 0: shrinking search on [l, h)
                p0 = tf.equal(ph, 0)
                l0 = tf.where(found, tf.where(better, 0.5 * dmin, la), la + 0.5 * (ha - la))
                h0_ = tf.where(found, tf.where(better, dmin, la + 0.5 * (ha - la)), ha)
                c0 = tf.where(tf.logical_and(found, ~better), cnt + 1, one)
                end0 = tf.where(found, tf.logical_or(c0 > stop, h0_ - l0 < step), ha - la < step)
                l0 = tf.where(tf.logical_and(~found, end0), la, l0)
                # entering phase 1: walk down from the best distance in rings of width Δr
                h_enter = tf.where(tf.math.is_finite(bd), bd, h0_)
                l_enter = tf.maximum(0.0, h_enter - step)
                nl0 = tf.where(end0, l_enter, l0)
                nh0 = tf.where(end0, h_enter, h0_)
                nc0 = tf.where(end0, one, c0)
                np0 = tf.where(end0, tf.ones_like(ph), ph)
                # phase 1
                nl1 = tf.where(found, tf.maximum(0.0, la - step), la)
                nh1 = tf.where(found, la, ha)
                nc1 = tf.where(found, one, cnt + 1)
                np1 = tf.where(tf.logical_or(nc1 > stop, nh1 <= 1e-4), 2 * one, ph)
                nl, nh = tf.where(p0, nl0, nl1), tf.where(p0, nh0, nh1)
                nc, nph = tf.where(p0, nc0, nc1), tf.where(p0, np0, np1)
            else:
                nl, nh = tf.where(found, la, ha), tf.where(found, ha, ha + step)
                nc, nph = cnt, tf.where(found, 2 * one, ph)
            it = it + 1
            nph = tf.where(it >= max_iters, 2 * one, nph)
            sidx = idx[:, None]
            lo = tf.tensor_scatter_nd_update(lo, sidx, nl)
            hi = tf.tensor_scatter_nd_update(hi, sidx, nh)
            best_d = tf.tensor_scatter_nd_update(best_d, sidx, bd)
            best_z = tf.tensor_scatter_nd_update(best_z, sidx, bz)
            best_lab = tf.tensor_scatter_nd_update(best_lab, sidx, bl)
            counter = tf.tensor_scatter_nd_update(counter, sidx, nc)
            phase = tf.tensor_scatter_nd_update(phase, sidx, nph)
            iters = tf.tensor_scatter_nd_update(iters, sidx, it)
            return i + 1, lo, hi, best_d, best_z, best_lab, counter, phase, iters, evals + m

        init = (tf.constant(0), lo0, hi0, tf.fill([n], inf), z, tf.fill([n], tf.constant(-1, tf.int64)),
                tf.ones([n], tf.int32), tf.zeros([n], tf.int32), tf.zeros([n], tf.int32), tf.constant(0))
        _, _, _, best_d, best_z, best_lab, _, _, iters, evals = tf.while_loop(
            lambda i, *st: tf.reduce_any(st[6] < 2), body, init, parallel_iterations=1)
        found = tf.math.is_finite(best_d)
        x_adv = G(best_z, training=False)
        return best_z, x_adv, best_lab, best_d, found, iters, evals

    return run


def natural_adversaries(generator, classifier, x, y, encoder=None, latent: str = "encoder",
                        config: NaturalAdversaryConfig = NaturalAdversaryConfig(),
                        inversion_config=None) -> NaturalAdversaryResult:
    """Functional form of :class:`NaturalAdversarySearch` (inputs checked before any model is built or called)."""
    xs = check_images(x, shape=getattr(generator, "image_shape", None), bounds=bounds_of(generator), name="x")
    check_labels(y, len(xs), num_classes_of(classifier), name="y")
    return NaturalAdversarySearch(generator, classifier, config, encoder=encoder)(
        x, y, latent=latent, inversion_config=inversion_config)


def latent_distance_scale(z: np.ndarray, labels: Optional[np.ndarray] = None) -> float:
    """Median ‖z_i − z_j‖₂ between codes of different images (of different labels when given):
    the yardstick against which a natural adversary's latent distance is small or not."""
    z = np.asarray(z, np.float64)
    d = np.linalg.norm(z[:, None] - z[None], axis=-1)
    mask = ~np.eye(len(z), dtype=bool)
    if labels is not None:
        labels = np.asarray(labels)
        mask &= labels[:, None] != labels[None]
    return float(np.median(d[mask])) if mask.any() else float("nan")
