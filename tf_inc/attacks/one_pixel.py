"""One- and few-pixel black-box attack by differential evolution (Su, Vargas & Sakurai,
*One Pixel Attack for Fooling Deep Neural Networks*, 2019).

A candidate is ``k`` tuples ``(row, col, value…)`` — which pixels to overwrite and with what
(one value per channel). The attack only *queries* the model's probabilities: it minimises the
probability of the true class (untargeted) or maximises that of the target (targeted) by
differential evolution, DE/rand/1 with Su et al.'s settings: population 400, at most 100
generations, F = 0.5, no crossover (CR = 1: the trial is the mutant), and it stops an image as
soon as one candidate fools the model (misclassified, or classified as the target).

Two interchangeable back-ends (same encoding, same fitness, same stopping rule):

* ``backend="tf"`` — a batched DE written in TensorFlow: every image of a chunk evolves its own
  population inside one ``tf.function`` while-loop, so one generation is a single model call on
  ``chunk × popsize`` images (no Python per generation).
* ``backend="scipy"`` — :func:`scipy.optimize.differential_evolution` per image with
  ``vectorized=True`` (one model call per generation on the whole population),
  ``strategy="rand1bin"``, ``polish=False``, ``tol=-1`` (never stop on convergence) and a
  callback that stops on success. SciPy's population is ``popsize × n_parameters`` members,
  so the requested population is rounded down to a multiple of the parameter count.

``notes_one_pixel`` measures both on the same images and reports the time per image.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_inc.attacks.utils import call_model, prepare
from tf_inc.bounds import check_count
from tf_inc.errors import InputError

BACKENDS = ("tf", "scipy")


@dataclass
class PixelAttackResult:
    """Per image: the adversarial image, success, the pixels written and the model queries used."""

    x_adv: np.ndarray
    success: np.ndarray
    candidate: np.ndarray      # (n, k, 2 + channels): row, col, value(s)
    generations: np.ndarray    # generations run per image (0: the initial population fooled it)
    queries: np.ndarray        # model evaluations spent per image


def _apply_np(x, cand, channels: int):
    """Write candidates ``(m, k·(2+c))`` into copies of one image ``x`` (H, W, C) -> (m, H, W, C)."""
    h, w = x.shape[:2]
    m = cand.shape[0]
    c = cand.reshape(m, -1, 2 + channels)
    rows = np.clip(np.floor(c[..., 0]), 0, h - 1).astype(np.int64)
    cols = np.clip(np.floor(c[..., 1]), 0, w - 1).astype(np.int64)
    out = np.repeat(x[None], m, axis=0)
    idx = np.arange(m)[:, None]
    out[idx, rows, cols, :] = c[..., 2:]
    return out


def _apply_tf(x, cand, k: int, channels: int):
    """Batched version: ``x`` (n, H, W, C), ``cand`` (n, P, k·(2+c)) -> (n·P, H, W, C)."""
    h, w = int(x.shape[1]), int(x.shape[2])
    n, p = tf.shape(cand)[0], tf.shape(cand)[1]
    c = tf.reshape(cand, [n, p, k, 2 + channels])
    rows = tf.clip_by_value(tf.cast(tf.floor(c[..., 0]), tf.int32), 0, h - 1)
    cols = tf.clip_by_value(tf.cast(tf.floor(c[..., 1]), tf.int32), 0, w - 1)
    where = tf.one_hot(rows * w + cols, h * w)                                  # (n, P, k, HW)
    # later pixels of a candidate win when two land on the same place (as sequential writes do)
    order = tf.cast(tf.range(1, k + 1), where.dtype)[None, None, :, None]
    last = tf.argmax(where * order, axis=2)                                     # (n, P, HW)
    hit = tf.reduce_max(where, axis=2)                                          # (n, P, HW)
    vals = tf.gather(c[..., 2:], last, batch_dims=2)                            # (n, P, HW, C)
    img = tf.reshape(x, [n, 1, h * w, channels])
    out = tf.where(hit[..., None] > 0, vals, img)
    return tf.reshape(out, [n * p, h, w, channels])


def _fitness(probs, label, targeted: bool):
    p = tf.gather(probs, label, batch_dims=1) if len(label.shape) else probs[:, label]
    return -p if targeted else p


@functools.lru_cache(maxsize=16)
def _compiled_de(model_fn, k: int, channels: int, popsize: int, f: float, cr: float,
                 bounds: Tuple[float, float], targeted: bool):
    lo, hi = bounds

    @tf.function(reduce_retracing=True, autograph=False)
    def run(x, label, seed, maxiter):
        n = tf.shape(x)[0]
        h, w = float(x.shape[1]), float(x.shape[2])
        dim = k * (2 + channels)
        per = tf.constant([h, w] + [hi - lo] * channels, tf.float32)
        low = tf.constant([0.0, 0.0] + [lo] * channels, tf.float32)
        span = tf.tile(per, [k])
        base = tf.tile(low, [k])
        lab = tf.repeat(label, popsize)

        def evaluate(pop):
            logits = call_model(model_fn, _apply_tf(x, pop, k, channels))
            probs = tf.nn.softmax(logits)
            fit = tf.reshape(_fitness(probs, lab, targeted), [n, popsize])
            pred = tf.reshape(tf.argmax(logits, axis=1), [n, popsize])
            want = tf.reshape(lab, [n, popsize])
            fooled = tf.equal(pred, want) if targeted else tf.not_equal(pred, want)
            return fit, fooled

        def record(fooled, pop, done, found):
            first = tf.argmax(tf.cast(fooled, tf.int32), axis=1, output_type=tf.int32)
            cand = tf.gather(pop, first, batch_dims=1)
            new = tf.logical_and(tf.reduce_any(fooled, axis=1), tf.logical_not(done))
            found = tf.where(new[:, None], cand, found)
            return tf.logical_or(done, new), found

        pop = base + span * tf.random.stateless_uniform([n, popsize, dim], seed)
        fit, fooled = evaluate(pop)
        done, found = record(fooled, pop, tf.zeros([n], tf.bool), pop[:, 0])
        gens = tf.zeros([n], tf.int32)

        def body(g, pop, fit, done, found, gens):
            s = tf.stack([seed[0], seed[1] + 3 * g + 1])
            # three distinct partners per member, none of them the member itself
            noise = tf.random.stateless_uniform([n, popsize, popsize], s)
            noise = noise - 2.0 * tf.eye(popsize)[None]
            r = tf.math.top_k(noise, 3).indices                                   # (n, P, 3)
            a, b, c = (tf.gather(pop, r[..., j], batch_dims=1) for j in range(3))
            trial = a + f * (b - c)
            if cr < 1.0:
                s2 = tf.stack([seed[0], seed[1] + 3 * g + 2])
                take = tf.random.stateless_uniform([n, popsize, dim], s2) < cr
                jrand = tf.random.stateless_uniform([n, popsize], s2 + 7, 0, dim, tf.int32)
                take = tf.logical_or(take, tf.one_hot(jrand, dim, on_value=True, off_value=False))
                trial = tf.where(take, trial, pop)
            # out-of-range parameters are redrawn uniformly (as SciPy does)
            s3 = tf.stack([seed[0], seed[1] + 3 * g + 3])
            fresh = base + span * tf.random.stateless_uniform([n, popsize, dim], s3)
            outside = tf.logical_or(trial < base, trial >= base + span)
            trial = tf.where(outside, fresh, trial)
            t_fit, t_fooled = evaluate(trial)
            live = tf.logical_not(done)
            gens = gens + tf.cast(live, tf.int32)
            done, found = record(tf.logical_and(t_fooled, live[:, None]), trial, done, found)
            better = tf.logical_and(t_fit < fit, live[:, None])
            pop = tf.where(better[..., None], trial, pop)
            fit = tf.where(better, t_fit, fit)
            return g + 1, pop, fit, done, found, gens

        _, pop, fit, done, found, gens = tf.while_loop(
            lambda g, pop, fit, done, found, gens: tf.logical_and(g < maxiter, tf.logical_not(tf.reduce_all(done))),
            body, (tf.constant(0), pop, fit, done, found, gens))
        best = tf.gather(pop, tf.argmin(fit, axis=1, output_type=tf.int32), batch_dims=1)
        cand = tf.where(done[:, None], found, best)
        return cand, done, gens

    return run


def _scipy_one(model_fn, x, label, k: int, channels: int, popsize: int, maxiter: int, f: float, cr: float,
               bounds, targeted: bool, seed: int):
    from scipy.optimize import differential_evolution

    lo, hi = bounds
    h, w = x.shape[:2]
    limits = [(0.0, float(h)), (0.0, float(w))] + [(float(lo), float(hi))] * channels
    limits = limits * k
    dim = len(limits)
    state = {"found": None, "queries": 0, "generations": 0}
    predict = _predictor(model_fn)

    def fun(params):                       # (dim, S) -> (S,), one model call per generation
        cand = np.asarray(params, np.float64).T
        imgs = _apply_np(x, cand, channels).astype(np.float32)
        logits = predict(imgs)
        probs = tf.nn.softmax(logits).numpy()
        pred = logits.argmax(1)
        state["queries"] += len(cand)
        fooled = pred == label if targeted else pred != label
        if state["found"] is None and fooled.any():
            state["found"] = cand[int(np.argmax(fooled))]
        return -probs[:, label] if targeted else probs[:, label]

    def stop(intermediate_result):
        state["generations"] += 1
        if state["found"] is not None:
            raise StopIteration

    res = differential_evolution(fun, limits, strategy="rand1bin", popsize=max(1, popsize // dim),
                                 maxiter=maxiter, mutation=f, recombination=cr, tol=-1, polish=False,
                                 vectorized=True, updating="deferred", rng=seed, callback=stop,
                                 init="latinhypercube")
    cand = state["found"] if state["found"] is not None else np.asarray(res.x)
    return cand, state["found"] is not None, state["generations"], state["queries"]


@functools.lru_cache(maxsize=16)
def _predictor(model_fn):
    fn = tf.function(lambda t: call_model(model_fn, t), reduce_retracing=True)
    return lambda a: fn(tf.constant(a)).numpy()


def pixel_attack(model_fn, x, y, pixels: int = 1, popsize: int = 400, maxiter: int = 100,
                 mutation: float = 0.5, recombination: float = 1.0, targeted: bool = False,
                 bounds: Optional[Tuple[float, float]] = None, backend: str = "tf", seed: int = 0,
                 chunk: int = 8, progress: bool = False) -> PixelAttackResult:
    """Su et al.'s few-pixel attack by differential evolution (black box: probabilities only).

    Args:
      model_fn: ``images -> logits``; only its outputs are used.
      x: float images (N, H, W, C) in the model's bounds; ``y``: true labels (untargeted) or
        targets (``targeted=True``).
      pixels: how many pixels a candidate overwrites (1, 3, 5 in the paper).
      popsize, maxiter, mutation (F), recombination (CR): DE settings (Su et al.: 400, 100, 0.5, 1).
      backend: ``"tf"`` (batched over a chunk of images, one graph) or ``"scipy"`` (per image).
      chunk: images per compiled call of the TF back-end.
    Returns a :class:`PixelAttackResult`.
    """
    x, y, bounds = prepare(model_fn, x, y, bounds)
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if len(x.shape) != 4:
        raise InputError(f"x: expected images (N, H, W, C), got shape {tuple(x.shape)}")
    for name, v in (("pixels", pixels), ("popsize", popsize), ("maxiter", maxiter), ("chunk", chunk)):
        check_count(v, name, 4 if name == "popsize" else 1)
    if not (math.isfinite(mutation) and 0 < mutation <= 2):
        raise InputError(f"mutation: expected F in (0, 2], got {mutation!r}")
    if not (math.isfinite(recombination) and 0 <= recombination <= 1):
        raise InputError(f"recombination: expected CR in [0, 1], got {recombination!r}")
    channels = int(x.shape[-1])
    xs, ys = x.numpy(), y.numpy()
    n = len(xs)
    cands, success, gens, queries = [], [], [], []
    from tqdm.auto import tqdm

    bar = tqdm(total=n, desc=f"{pixels}-pixel DE ({backend})", disable=not progress, leave=False)
    if backend == "tf":
        run = _compiled_de(model_fn, int(pixels), channels, int(popsize), float(mutation),
                           float(recombination), (float(bounds[0]), float(bounds[1])), bool(targeted))
        for s in range(0, n, chunk):
            c, d, g = run(tf.constant(xs[s:s + chunk]), tf.constant(ys[s:s + chunk]),
                          tf.constant([seed, s], tf.int32), tf.constant(int(maxiter)))
            cands.append(c.numpy())
            success.append(d.numpy())
            gens.append(g.numpy())
            queries.append(popsize * (1 + g.numpy()))
            bar.update(len(c))
        cand = np.concatenate(cands)
        success, gens, queries = map(np.concatenate, (success, gens, queries))
    else:
        for i in range(n):
            c, ok, g, q = _scipy_one(model_fn, xs[i], int(ys[i]), int(pixels), channels, int(popsize),
                                     int(maxiter), float(mutation), float(recombination), bounds,
                                     bool(targeted), seed + i)
            cands.append(c)
            success.append(ok)
            gens.append(g)
            queries.append(q)
            bar.update(1)
        cand = np.stack(cands)
        success, gens, queries = np.asarray(success), np.asarray(gens), np.asarray(queries)
    bar.close()
    x_adv = np.stack([_apply_np(xs[i], cand[i:i + 1], channels)[0] for i in range(n)])
    return PixelAttackResult(x_adv=x_adv.astype(np.float32), success=success.astype(bool),
                             candidate=cand.reshape(n, int(pixels), 2 + channels), generations=gens,
                             queries=queries)
