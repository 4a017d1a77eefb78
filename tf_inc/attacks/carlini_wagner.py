"""Carlini–Wagner ℓ2, ℓ∞ and ℓ0 attacks (Carlini & Wagner, S&P 2017), batched.

All three share one in-graph optimiser (:func:`_cw_optimize`, built on :mod:`tf_inc.optim`): Adam in tanh space
``x' = lo + (tanh(w) + 1)/2 · (hi − lo)`` on

    distance(x', x) + c · f(x'),   f = max(Z_y − max_{i≠y} Z_i, −κ)   (untargeted)
                                   f = max(max_{i≠t} Z_i − Z_t, −κ)   (targeted)

with an optional pixel ``mask`` (ℓ0) and the ℓ∞ surrogate Σ relu(|δ| − τ).
Each example keeps the best successful point it has visited. The outer loops
(binary search over c for ℓ2; τ/c schedule for ℓ∞; pixel pruning for ℓ0) are
short Python loops around the compiled optimiser, vectorised over the batch.
Examples the attack cannot fool are returned unchanged.
"""
from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_inc.attacks.utils import prepare
from tf_inc.bounds import check_budget, check_count
from tf_inc.errors import InputError
from tf_inc.optim import adam_update, keep_best

_BIG = 1e10


def _to_w(x, lo, hi):
    # 1e-4 keeps saturated pixels (MNIST's exact 0/1) within ~5 units of mid-range in w
    u = (x - lo) / (hi - lo)
    return tf.atanh(tf.clip_by_value(2.0 * u - 1.0, -1.0 + 1e-4, 1.0 - 1e-4))


def _from_w(w, lo, hi):
    return lo + (tf.tanh(w) + 1.0) * 0.5 * (hi - lo)


def cw_margin(logits, onehot, targeted):
    """CW margin f: Z_y − max_{i≠y} Z_i (untargeted) or max_{i≠t} Z_i − Z_t (targeted); ≤ −κ is success."""
    real = tf.reduce_sum(onehot * logits, axis=1)
    other = tf.reduce_max(logits - 1e4 * onehot, axis=1)
    return (other - real) if targeted else (real - other)   # <= -κ means success


def _bcast(v, x):
    return tf.reshape(v, [-1] + [1] * (len(x.shape) - 1))


def _cw_optimize(model_fn, x, onehot, w0, const, mask, tau, *, distance: str, confidence: float,
                 targeted: bool, iters: int, lr: float, bounds):
    """Run ``iters`` Adam steps; return (best_score, best_adv, success) per example.

    ``best_score`` is the squared ℓ2 distance ('l2') or max |δ| ('linf') of the best
    successful point (inf if none).
    """
    run = _compiled(model_fn, distance, float(confidence), bool(targeted), int(iters), float(lr),
                    (float(bounds[0]), float(bounds[1])), len(x.shape))
    return run(x, onehot, w0, const, mask, tau)


@functools.lru_cache(maxsize=32)
def _compiled(model_fn, distance, confidence, targeted, iters, lr, bounds, rank):
    """One traced optimiser per (model, settings): outer loops reuse it without retracing."""
    lo, hi = bounds
    axes = list(range(1, rank))

    @tf.function(reduce_retracing=True, autograph=False)
    def run(x, onehot, w0, const, mask, tau):
        def adv_of(w):
            return x + mask * (_from_w(w, lo, hi) - x)

        def losses(w):
            xa = adv_of(w)
            logits = model_fn(xa)
            f = tf.maximum(cw_margin(logits, onehot, targeted), -confidence)
            d = xa - x
            if distance == "l2":
                dist = tf.reduce_sum(tf.square(d), axis=axes)
                score = dist
            else:
                dist = tf.reduce_sum(tf.nn.relu(tf.abs(d) - _bcast(tau, x)), axis=axes)
                score = tf.reduce_max(tf.abs(d), axis=axes)
            success = cw_margin(logits, onehot, targeted) <= -confidence
            return dist + const * f, score, success, xa

        def body(i, w, m, v, best_score, best_adv):
            with tf.GradientTape() as tape:
                tape.watch(w)
                loss, score, success, xa = losses(w)
            g = tape.gradient(loss, w)             # per-example losses are independent
            best_score, (best_adv,), _ = keep_best(score, best_score, [xa], [best_adv], eligible=success)
            step, m, v = adam_update(g, m, v, tf.cast(i + 1, tf.float32), lr, form="kingma")
            return i + 1, w - step, m, v, best_score, best_adv

        n = tf.shape(x)[0]
        init = (tf.constant(0), w0, tf.zeros_like(w0), tf.zeros_like(w0),
                tf.fill([n], tf.constant(np.inf, tf.float32)), x)
        _, w, _, _, best_score, best_adv = tf.while_loop(lambda i, *_: i < iters, body, init)
        _, score, success, xa = losses(w)      # the final iterate too
        best_score, (best_adv,), _ = keep_best(score, best_score, [xa], [best_adv], eligible=success)
        return best_score, best_adv, tf.math.is_finite(best_score)

    return run


def _setup(model_fn, x, y, bounds, confidence, **counts):
    x, y, bounds = prepare(model_fn, x, y, bounds)
    check_budget(confidence, "confidence", allow_list=False)
    for name, value in counts.items():
        check_count(value, name, 0 if name == "binary_search_steps" else 1)
    n_classes = int(model_fn(x[:1]).shape[-1])
    if int(tf.reduce_max(y)) >= n_classes:
        raise InputError(f"y: labels must lie in [0, {n_classes - 1}], got {int(tf.reduce_max(y))}")
    return x, tf.one_hot(y, n_classes), int(x.shape[0]), bounds


def _round_bar(desc: str, total: int, progress: bool):
    """A bar over an attack's outer rounds (each a full compiled Adam run); ``progress=False``: silent."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="round", disable=not progress)


def _close(bar, n_ok: int, n: int, stopped_early: bool = False):
    """Final postfix (successes so far); a loop that stopped early shows its rounds as the total."""
    bar.set_postfix_str(f"succeeded {n_ok}/{n}" + (", all settled" if stopped_early else ""), refresh=False)
    if stopped_early:
        bar.total = bar.n
    bar.close()


def carlini_wagner_l2(model_fn, x, y, *, targeted: bool = False, confidence: float = 0.0,
                      bounds: Optional[Tuple[float, float]] = None, binary_search_steps: int = 6,
                      max_iterations: int = 1000, learning_rate: float = 1e-2, initial_const: float = 1e-2,
                      progress: bool = False):
    """CW-ℓ2 with a per-example binary search over c. Paper setting: ``confidence=5`` (κ).

    ``progress``: a bar over the binary-search steps (each a compiled run of ``max_iterations``).
    """
    x, onehot, n, bounds = _setup(model_fn, x, y, bounds, confidence, binary_search_steps=binary_search_steps,
                                  max_iterations=max_iterations)
    lo, hi = bounds
    w0 = _to_w(x, lo, hi)
    ones = tf.ones_like(x)
    const = np.full(n, initial_const, np.float32)
    lower, upper = np.zeros(n, np.float32), np.full(n, _BIG, np.float32)
    best_l2 = np.full(n, np.inf, np.float32)
    best_adv = x.numpy()
    bar = _round_bar("CW-ℓ2 binary search", binary_search_steps, progress)
    for _ in range(binary_search_steps):
        score, adv, ok = _cw_optimize(model_fn, x, onehot, w0, tf.constant(const), ones,
                                      tf.zeros([n]), distance="l2", confidence=confidence,
                                      targeted=targeted, iters=max_iterations, lr=learning_rate, bounds=bounds)
        score, adv, ok = score.numpy(), adv.numpy(), ok.numpy()
        better = ok & (score < best_l2)
        best_l2[better] = score[better]
        best_adv[better] = adv[better]
        upper = np.where(ok, np.minimum(upper, const), upper)
        lower = np.where(ok, lower, np.maximum(lower, const))
        const = np.where(upper < _BIG / 10, (lower + upper) / 2, const * 10).astype(np.float32)
        bar.set_postfix_str(f"succeeded {int(np.isfinite(best_l2).sum())}/{n}", refresh=False)
        bar.update()
    _close(bar, int(np.isfinite(best_l2).sum()), n)
    return tf.constant(best_adv)


def carlini_wagner_linf(model_fn, x, y, *, targeted: bool = False, confidence: float = 0.0,
                        bounds: Optional[Tuple[float, float]] = None, max_iterations: int = 500,
                        learning_rate: float = 1e-2, initial_const: float = 1e-2, largest_const: float = 20.0,
                        tau_decrease: float = 0.9, outer_steps: int = 25, progress: bool = False):
    """CW-ℓ∞: shrink τ while the attack succeeds, doubling c when it does not.

    ``progress``: a bar over the τ/c rounds (each a compiled run of ``max_iterations``); it ends
    early once every example has given up (c past ``largest_const``).
    """
    x, onehot, n, bounds = _setup(model_fn, x, y, bounds, confidence, max_iterations=max_iterations,
                                  outer_steps=outer_steps)
    lo, hi = bounds
    ones = tf.ones_like(x)
    tau = np.full(n, float(hi - lo), np.float32)
    const = np.full(n, initial_const, np.float32)
    active = np.ones(n, bool)
    best_linf = np.full(n, np.inf, np.float32)
    best_adv = x.numpy()
    start = x.numpy()
    bar = _round_bar("CW-ℓ∞ τ/c rounds", outer_steps, progress)
    for _ in range(outer_steps):
        if not active.any():
            break
        w0 = _to_w(tf.constant(start), lo, hi)
        score, adv, ok = _cw_optimize(model_fn, x, onehot, w0, tf.constant(const), ones, tf.constant(tau),
                                      distance="linf", confidence=confidence, targeted=targeted,
                                      iters=max_iterations, lr=learning_rate, bounds=bounds)
        score, adv, ok = score.numpy(), adv.numpy(), ok.numpy()
        ok &= active
        better = ok & (score < best_linf)
        best_linf[better] = score[better]
        best_adv[better] = adv[better]
        start[ok] = adv[ok]
        # success: tighten τ below what was needed; failure: raise c, give up past largest_const
        tau = np.where(ok, np.minimum(tau, score) * tau_decrease, tau).astype(np.float32)
        const = np.where(ok, const, const * 2).astype(np.float32)
        active &= const <= largest_const
        bar.set_postfix_str(f"succeeded {int(np.isfinite(best_linf).sum())}/{n}, active {int(active.sum())}",
                            refresh=False)
        bar.update()
    _close(bar, int(np.isfinite(best_linf).sum()), n, stopped_early=bar.n < outer_steps)
    return tf.constant(best_adv)


def carlini_wagner_l0(model_fn, x, y, *, targeted: bool = False, confidence: float = 0.0,
                      bounds: Optional[Tuple[float, float]] = None, max_iterations: int = 300,
                      learning_rate: float = 1e-2, const: float = 10.0, prune_fraction: float = 0.3,
                      outer_steps: int = 20, progress: bool = False):
    """CW-ℓ0: repeatedly solve an ℓ2 attack on the allowed pixels, then freeze the pixels that
    matter least (smallest |∇f · δ|), until the attack fails; returns the sparsest success.

    ``progress``: a bar over the pruning rounds (each a compiled run of ``max_iterations``); it
    ends early once the attack has failed on every example.
    """
    x, onehot, n, bounds = _setup(model_fn, x, y, bounds, confidence, max_iterations=max_iterations,
                                  outer_steps=outer_steps)
    lo, hi = bounds
    w0 = _to_w(x, lo, hi)
    pix_shape = [n] + list(x.shape[1:-1]) + [1]
    mask = np.ones(pix_shape, np.float32)
    active = np.ones(n, bool)
    best_l0 = np.full(n, np.inf)
    best_adv = x.numpy()
    consts = tf.constant(np.full(n, const, np.float32))
    bar = _round_bar("CW-ℓ0 pruning rounds", outer_steps, progress)
    for _ in range(outer_steps):
        if not active.any():
            break
        full_mask = tf.broadcast_to(tf.constant(mask), x.shape)
        _, adv, ok = _cw_optimize(model_fn, x, onehot, w0, consts, full_mask, tf.zeros([n]),
                                  distance="l2", confidence=confidence, targeted=targeted,
                                  iters=max_iterations, lr=learning_rate, bounds=bounds)
        adv, ok = adv.numpy(), ok.numpy() & active
        delta = adv - x.numpy()
        l0 = (np.abs(delta).max(axis=-1) > 1e-3).reshape(n, -1).sum(1)
        better = ok & (l0 < best_l0)
        best_l0[better] = l0[better]
        best_adv[better] = adv[better]
        active &= ok
        bar.set_postfix_str(f"succeeded {int(np.isfinite(best_l0).sum())}/{n}, still pruning {int(active.sum())}",
                            refresh=False)
        bar.update()
        if not active.any():
            break
        # importance of each pixel: |∇_x f · δ| summed over channels
        xa = tf.constant(np.where(ok.reshape([-1] + [1] * (len(x.shape) - 1)), adv, x.numpy()))
        with tf.GradientTape() as tape:
            tape.watch(xa)
            f = tf.reduce_sum(cw_margin(model_fn(xa), onehot, targeted))
        g = tape.gradient(f, xa).numpy()
        imp = np.abs(g * delta).sum(axis=-1, keepdims=True)
        for i in np.where(active)[0]:
            allowed = mask[i].reshape(-1) > 0
            scores = np.where(allowed, imp[i].reshape(-1), np.inf)
            unused = allowed & (np.abs(delta[i]).max(axis=-1).reshape(-1) <= 1e-3)
            k = max(1, int(prune_fraction * (allowed.sum() - unused.sum())))
            drop = unused.copy()
            drop[np.argsort(scores)[:k]] = True
            m = mask[i].reshape(-1)
            m[drop] = 0.0
            mask[i] = m.reshape(mask[i].shape)
    _close(bar, int(np.isfinite(best_l0).sum()), n, stopped_early=bar.n < outer_steps)
    return tf.constant(best_adv)


cw_l2 = carlini_wagner_l2
cw_linf = carlini_wagner_linf
cw_l0 = carlini_wagner_l0
