"""The overpowered min-max attack (paper eq. 9): close pairs on the generator's range
that the classifier separates.

For each slot we search latents (z, z') maximising a divergence between C(G(z)) and
C(G(z')) subject to the closeness constraint, through the Lagrangian

    max_{z,z'} min_{λ≥0}  D(C(G(z)), C(G(z')))  −  λ · (msd(z, z') / b − 1)

with alternating steps: Adam ascent on (z, z'), then a much larger projected
gradient step on λ (its payoff is linear), λ ← max(0, λ + lr_λ · (msd/b − 1)).

**Distance convention (one, everywhere):** ``msd(z, z') = ||G(z) − G(z')||² / D``,
the mean squared difference per pixel-channel (D = H·W·C). The budget ``b`` is a
per-pixel value; the paper's η² is ``b · D`` (CelebA: 2·10⁻⁴ · 12288 ≈ 2.46; MNIST:
2·10⁻⁴ · 784 ≈ 0.157). A pair is **valid** when ``msd < valid_msd`` (paper: 0.0005,
read in the same per-pixel units). The original code compared a square root of
the sum over pixels divided by D against that threshold — a mix we do not copy.

Divergences: ``"sym_ce"`` (symmetric cross-entropy −Σ p log p' + p' log p, the
original code), ``"l2"`` (the paper's ||C(G(z)) − C(G(z'))||²) or ``"sym_kl"``
(KL(p‖p') + KL(p'‖p): sym_ce without its two entropy terms).

Everything runs in one ``tf.function`` while-loop batched over slots; each slot
keeps its best valid pair (largest divergence), not the last iterate.

**Resume.** ``MinMaxAttack(...)(n, run_dir=DIR)`` runs the same loop in segments of
``segment_steps`` steps (each segment one compiled ``tf.while_loop``, the hot loop stays in the
graph) and saves the whole search state — the step counter, (z, z'), the Adam moments, λ, the
best valid pair so far and the convergence log — atomically between segments. A search killed
half-way resumes from its last segment when called again, and returns what the uninterrupted
search returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from tf_inc.bounds import check_count
from tf_inc.errors import InputError
from tf_inc.manifold.divergences import (  # noqa: F401
    DIVERGENCES,
    check_divergence,
    divergence,
    kl,
    mean_over_valid,
    mean_squared_difference,
    pair_metrics,
)
from tf_inc.optim import adam_update, keep_best, stateless_normal_pair


@dataclass
class MinMaxConfig:
    """Min-max attack hyper-parameters (paper §4.3 defaults)."""

    iterations: int = field(default=10_000, metadata={"help": "alternating steps (paper: 10 000)"})
    budget_msd: float = field(default=2e-4, metadata={"help": "η²/D: mean squared difference per pixel"})
    valid_msd: float = field(default=5e-4, metadata={"help": "a pair is valid when msd < this (paper 0.0005)"})
    divergence: str = field(default="l2", metadata={"help": "l2 (paper eq. 9), sym_ce (original code) or sym_kl"})
    lr_z: float = field(default=0.01, metadata={"help": "Adam lr for (z, z') in units of the prior std"})
    lr_lambda: float = field(default=1.0, metadata={"help": "step of the λ player (much larger than lr_z)"})
    lambda_init: float = field(default=1.0, metadata={"help": "initial λ"})
    init_noise: float = field(default=0.05, metadata={"help": "z' = z + noise·σ at start (σ: prior std)"})
    early_stop: bool = field(default=False, metadata={"help": "stop once every slot has a valid differing pair"})
    fix_first: bool = field(default=False, metadata={"help": "keep z fixed, search z' only (non-overpowered)"})
    log_every: int = field(default=50, metadata={"help": "record convergence every this many steps"})

    def eta2(self, image_dim: int) -> float:
        """The paper's η² for images of ``image_dim`` pixel-channels."""
        return self.budget_msd * image_dim


@dataclass
class PairResult:
    z: np.ndarray
    z2: np.ndarray
    x: np.ndarray            # G(z)
    x2: np.ndarray           # G(z')
    p: np.ndarray            # C(G(z)) probabilities
    p2: np.ndarray
    msd: np.ndarray          # mean squared difference per pixel
    valid: np.ndarray        # msd < valid_msd
    divergence: np.ndarray
    history: Dict[str, np.ndarray]   # step, mean ||p - p'||_2, valid fraction, mean λ

    def metrics(self, prefix: str = "") -> Dict[str, float]:
        return pair_metrics(self.p, self.p2, self.valid, prefix)


class MinMaxAttack:
    """Compiled min-max search for one generator and classifier (classifier outputs logits)."""

    def __init__(self, generator, classifier, config: MinMaxConfig = MinMaxConfig()):
        check_divergence(config.divergence)
        self.generator, self.classifier, self.config = generator, classifier, config
        self.prior_std = float(getattr(generator, "prior_std", 1.0))
        self.latent_dim = int(getattr(generator, "latent_dim", 0) or generator.input_shape[-1])
        self.run_loop = tf.function(self._run_impl, reduce_retracing=True, autograph=False)
        self._segment = tf.function(self._loop, reduce_retracing=True, autograph=False)  # one checkpointed segment

    def _terms(self, z, z2):
        cfg = self.config
        n = tf.shape(z)[0]
        imgs = self.generator(tf.concat([z, z2], 0), training=False)
        probs = tf.nn.softmax(self.classifier(imgs, training=False))
        x1, x2 = imgs[:n], imgs[n:]
        p1, p2 = probs[:n], probs[n:]
        return x1, x2, p1, p2, mean_squared_difference(x1, x2), divergence(p1, p2, cfg.divergence)

    #: names of the search state carried from step to step (and saved between segments)
    STATE = ("i", "z", "z2", "m", "v", "lam", "best_div", "bz", "bz2", "found")

    def _init_state(self, z0, z20):
        """The state before step 0: ``(i, z, z', Adam m, Adam v, λ, best divergence, best z, best z', found)``."""
        cfg = self.config
        n = tf.shape(z0)[0]
        zeros = tf.zeros([n, 2 * self.latent_dim])
        return (tf.constant(0), z0, z20, zeros, zeros, tf.fill([n], cfg.lambda_init),
                tf.fill([n], tf.constant(-np.inf, tf.float32)), z0, z20, tf.zeros([n], tf.bool))

    def _loop(self, state, stop):
        """Steps ``state[0] … stop − 1`` of the search in one ``tf.while_loop`` (fewer with early stop).

        Returns the state after them and the convergence log ``[mean ||p − p'||, valid fraction,
        mean λ]`` of the steps among them that are multiples of ``log_every``: the whole search is
        ``_loop(_init_state(...), iterations)``; a segmented one chains calls on consecutive ranges
        and concatenates their logs, with the same result (Adam's step count is the global ``i``).
        """
        cfg = self.config
        lr = cfg.lr_z * self.prior_std
        b = cfg.budget_msd
        k0 = (state[0] + cfg.log_every - 1) // cfg.log_every        # index of the first logged step
        n_logs = (stop + cfg.log_every - 1) // cfg.log_every - k0

        def body(i, z, z2, m, v, lam, best_div, bz, bz2, found, hist_out, hist_valid, hist_lam):
            with tf.GradientTape() as tape:
                tape.watch([z, z2])
                _, _, p1, p2, msd, div = self._terms(z, z2)
                lagr = div - lam * (msd / b - 1.0)
            g = tape.gradient(lagr, [z, z2])       # per-slot objectives are independent
            if cfg.fix_first:
                g[0] = tf.zeros_like(g[0])
            g = tf.concat(g, 1)
            valid = msd < cfg.valid_msd
            best_div, (bz, bz2), _ = keep_best(div, best_div, [z, z2], [bz, bz2], eligible=valid, maximize=True)
            differ = tf.not_equal(tf.argmax(p1, 1), tf.argmax(p2, 1))
            found = tf.logical_or(found, tf.logical_and(valid, differ))
            rec = tf.equal(i % cfg.log_every, 0)
            k = i // cfg.log_every - k0
            hist_out = tf.cond(rec, lambda: hist_out.write(k, tf.reduce_mean(tf.norm(p1 - p2, axis=1))),
                               lambda: hist_out)
            hist_valid = tf.cond(rec, lambda: hist_valid.write(k, tf.reduce_mean(tf.cast(valid, tf.float32))),
                                 lambda: hist_valid)
            hist_lam = tf.cond(rec, lambda: hist_lam.write(k, tf.reduce_mean(lam)), lambda: hist_lam)
            # alternating players: Adam ascent on (z, z') against the current λ, and the
            # λ player's projected step on the constraint violation at the current point
            # (one generator/classifier pass per iteration serves both)
            t = tf.cast(i + 1, tf.float32)
            step, m, v = adam_update(g, m, v, t, lr, form="kingma")
            zz = tf.concat([z, z2], 1) + step
            z, z2 = zz[:, : self.latent_dim], zz[:, self.latent_dim:]
            lam = tf.maximum(0.0, lam + cfg.lr_lambda * (msd / b - 1.0))
            return i + 1, z, z2, m, v, lam, best_div, bz, bz2, found, hist_out, hist_valid, hist_lam

        def cond(i, *s):
            found = s[8]
            go = i < stop
            if cfg.early_stop:
                go = tf.logical_and(go, tf.logical_not(tf.reduce_all(found)))
            return go

        ta = lambda: tf.TensorArray(tf.float32, size=n_logs, dynamic_size=True)  # noqa: E731
        out = tf.while_loop(cond, body, tuple(state) + (ta(), ta(), ta()))
        return out[:10], [h.stack() for h in out[10:]]

    @staticmethod
    def _finish(z, z2, best_div, bz, bz2):
        """Slots that never produced a valid pair report their last iterate."""
        has = tf.math.is_finite(best_div)
        return tf.where(has[:, None], bz, z), tf.where(has[:, None], bz2, z2)

    def _run_impl(self, z0, z20, iterations):
        state, hist = self._loop(self._init_state(z0, z20), iterations)
        i, z, z2, _, _, _, best_div, bz, bz2 = state[:9]
        bz, bz2 = self._finish(z, z2, best_div, bz, bz2)
        return bz, bz2, i, hist

    def _run_segments(self, z0, z20, iterations: int, run_dir, segment_steps: int, progress: bool):
        """The search in segments of ``segment_steps`` steps, checkpointed between segments.

        After every segment the whole state — step counter, (z, z'), Adam moments, λ, the best
        valid pair so far, the found flags and the convergence log — is written atomically to
        ``run_dir/minmax-<fingerprint>.npz`` (the fingerprint covers the config, the start points,
        the iteration budget and both models' weights). A rerun loads it and goes on from the
        step it holds: a killed run loses at most one segment, and its result equals an
        uninterrupted run's. A finished search's file is kept, so a rerun returns at once.
        """
        from pathlib import Path

        from tf_inc.experiments.resumable import fingerprint, load_npz, save_npz

        cfg = self.config
        seg = check_count(segment_steps, "segment_steps", 1)
        if seg % cfg.log_every:
            raise InputError(f"segment_steps ({seg}) must be a multiple of log_every ({cfg.log_every})")
        names = self.STATE + ("hist_out", "hist_valid", "hist_lam")
        path, ck = None, None
        if run_dir is not None:         # without a run_dir: segments only for the progress bar, no file
            key = fingerprint("minmax", cfg, int(iterations), z0, z20, self.prior_std, self.latent_dim,
                              self.generator, self.classifier)
            path = Path(run_dir) / f"minmax-{key}.npz"
            ck = load_npz(path)
        if ck is not None and all(k in ck for k in names):
            state = tuple(tf.constant(ck[k]) for k in self.STATE)
            hist = [[ck["hist_out"]], [ck["hist_valid"]], [ck["hist_lam"]]]
            print(f"[minmax] resuming {path} at step {int(ck['i'])}/{iterations}", flush=True)
        else:
            state = self._init_state(z0, z20)
            hist = [[], [], []]

        def finished(st):
            return int(st[0]) >= iterations or (cfg.early_stop and bool(tf.reduce_all(st[9])))

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=iterations, initial=int(state[0]), desc="min-max", unit="step")
        try:
            while not finished(state):
                i = int(state[0])
                stop = min((i // seg + 1) * seg, iterations)
                state, h = self._segment(state, tf.constant(stop))
                for acc, part in zip(hist, h):
                    acc.append(part.numpy())
                if path is not None:
                    arrays = {k: np.asarray(t.numpy() if hasattr(t, "numpy") else t)
                              for k, t in zip(self.STATE, state)}
                    arrays.update({k: np.concatenate(a) if a else np.zeros([0], np.float32)
                                   for k, a in zip(names[len(self.STATE):], hist)})
                    save_npz(path, **arrays)
                if bar is not None:
                    bar.update(int(state[0]) - i)
        finally:
            if bar is not None:
                bar.close()
        i, z, z2, _, _, _, best_div, bz, bz2 = state[:9]
        bz, bz2 = self._finish(z, z2, best_div, bz, bz2)
        # as the one-loop search's log (sized for every logged step, zeros after an early stop)
        n_logs = (iterations + cfg.log_every - 1) // cfg.log_every
        hist = [np.concatenate(a) if a else np.zeros([0], np.float32) for a in hist]
        hist = [tf.constant(np.pad(h, (0, max(0, n_logs - len(h))))) for h in hist]
        return bz, bz2, i, hist

    def start(self, n_pairs: int, seed_z, seed_noise, z_init=None):
        """Start points: z from the prior (or ``z_init``), z' = z + init_noise·σ·N(0, I)
        (stateless seeds, so this works inside a compiled training step too)."""
        std = self.prior_std
        z0 = (stateless_normal_pair(n_pairs, self.latent_dim, seed_z, stddev=std) if z_init is None
              else tf.constant(z_init, tf.float32))
        noise = stateless_normal_pair(tf.shape(z0)[0], self.latent_dim, seed_noise)
        return z0, z0 + self.config.init_noise * std * noise

    def __call__(self, n_pairs: int, seed: int = 0, iterations: Optional[int] = None,
                 z_init: Optional[np.ndarray] = None, run_dir=None, segment_steps: int = 500,
                 progress: bool = False) -> PairResult:
        """Search ``n_pairs`` pairs; ``z_init`` fixes the starting z (else drawn from the prior).

        ``run_dir``: checkpoint the search every ``segment_steps`` steps (a multiple of
        ``log_every``) and resume from the last checkpoint when called again with the same
        settings (:meth:`_run_segments`); the result equals the uninterrupted search's.
        ``progress``: a progress bar over the steps (the search then runs in compiled segments of
        ``segment_steps``, with the same result). Without either, the whole search is one
        compiled loop.
        """
        cfg = self.config
        check_count(n_pairs, "n_pairs", 1)
        iters = check_count(cfg.iterations if iterations is None else iterations, "iterations", 0)
        if z_init is not None:
            z_init = np.asarray(z_init, np.float32)
            if z_init.shape != (n_pairs, self.latent_dim) or not np.all(np.isfinite(z_init)):
                raise InputError(f"z_init: expected finite latents of shape ({n_pairs}, {self.latent_dim}), "
                                 f"got {z_init.shape}")
        z0, z20 = self.start(n_pairs, (seed, 0), (seed, 1), z_init)
        if run_dir is None and not progress:
            bz, bz2, steps, hist = self.run_loop(z0, z20, tf.constant(iters))
        else:
            bz, bz2, steps, hist = self._run_segments(z0, z20, iters, run_dir, segment_steps, progress)
        x1, x2, p1, p2, msd, div = self._terms(bz, bz2)
        logged = np.arange(len(hist[0].numpy())) * cfg.log_every
        return PairResult(
            z=bz.numpy(), z2=bz2.numpy(), x=x1.numpy(), x2=x2.numpy(), p=p1.numpy(), p2=p2.numpy(),
            msd=msd.numpy(), valid=(msd.numpy() < cfg.valid_msd), divergence=div.numpy(),
            history={"step": logged, "mean_output_l2": hist[0].numpy(), "valid_frac": hist[1].numpy(),
                     "mean_lambda": hist[2].numpy(), "steps_run": int(steps.numpy())},
        )


def evaluate_pairs(classifier, x, x2) -> Dict[str, np.ndarray]:
    """Probabilities of ``classifier`` on fixed image pairs (e.g. old pairs on a new classifier)."""
    p = tf.nn.softmax(classifier(x, training=False)).numpy()
    p2 = tf.nn.softmax(classifier(x2, training=False)).numpy()
    return {"p": p, "p2": p2}


def latent_space_attack(generator, classifier, x, config: MinMaxConfig = MinMaxConfig(),
                        inversion=None, seed: int = 0) -> PairResult:
    """The non-overpowered variant of the original code: z is fixed to the inversion
    z*(x) of real inputs ``x`` and only z' is searched, so G(z') is a natural-looking
    image close to the projection of a real one."""
    from dataclasses import replace

    from tf_inc.bounds import bounds_of, check_images
    from tf_inc.manifold.inversion import InversionConfig, project

    x = check_images(x, shape=getattr(generator, "image_shape", None), bounds=bounds_of(generator), name="x")
    res = project(generator, x, inversion or InversionConfig(), seed=seed)
    cfg = replace(config, fix_first=True)
    return MinMaxAttack(generator, classifier, cfg)(len(x), seed=seed, z_init=res.z)
