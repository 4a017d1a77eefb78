"""An adaptive attack that knows the detector (Carlini & Wagner, "Adversarial Examples Are Not
Easily Detected", 2017).

A detector only helps if an attacker who knows it cannot fool the classifier
*and* stay under the detector's threshold τ at the same time. The attack folds
the detector into the objective, as Carlini & Wagner did for each detector they
broke, and minimises by ℓ∞ (or ℓ2) PGD inside the ε-ball

    L(x') = max(Z_y(x') − max_{i≠y} Z_i(x'), −κ)  +  λ · relu(log s(x') − log ρτ)

where Z are the logits of the classifier the detector guards, s > 0 the
detector's score and ρ < 1 a safety margin under the threshold. The penalty is
taken on the log of the score, so one λ serves detectors whose scores live on
different scales (a KL of 10⁻³, a reconstruction error of 5) and the gradient
does not vanish when the score is orders of magnitude above τ. Each λ of a list is one
restart (all run in one graph call); every row keeps the best point it has
visited: a point that fools the classifier with ``s ≤ τ`` beats any other, and
among those the lowest score wins; otherwise the lowest L. With ``λ = 0`` the
same code is the detector-*unaware* attack (PGD on the CW margin), the "before"
of the comparison.

The detector supplies ``attack_terms(x) -> (logits, score)`` sharing one forward
pass, differentiable (encoder path, KL and MC-dropout detectors) or with the
projection held fixed (INC path: BPDA for the logits, Danskin's gradient for
the score), and its calibrated ``threshold`` (see :mod:`tf_inc.detectors`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_inc.attacks.carlini_wagner import cw_margin
from tf_inc.attacks.pgd import SCHEDULES, step_factor
from tf_inc.attacks.utils import clip_eta, optimize_linear, per_example, prepare, random_init
from tf_inc.bounds import check_budget, check_count
from tf_inc.errors import InputError
from tf_inc.optim import keep_best

_SUCCESS_OFFSET = 1e6       # a success's key is score/τ − 1e6: below any L ≥ −κ


@dataclass
class DetectorAwareResult:
    """Per image: the chosen point and what the attacker's copy of the detector saw there."""

    x_adv: np.ndarray
    fooled: np.ndarray        # the guarded classifier's label differs from y
    score: np.ndarray         # detector score at x_adv (attacker's view)
    undetected: np.ndarray    # fooled and score <= threshold
    lam: np.ndarray           # λ of the restart that was kept


@functools.lru_cache(maxsize=16)
def _compiled(detector, nb_iter: int, norm: str, bounds: Tuple[float, float], confidence: float,
              target_frac: float, schedule: str, n_classes: int):
    lo, hi = bounds

    def terms(xa, y, lam, tau):
        logits, score = detector.attack_terms(xa)
        margin = cw_margin(logits, tf.one_hot(y, n_classes), False)
        excess = tf.math.log(tf.maximum(score, 1e-12)) - tf.math.log(target_frac * tau)
        loss = tf.maximum(margin, -confidence) + lam * tf.nn.relu(excess)
        fooled = tf.not_equal(tf.argmax(logits, axis=1), y)
        ok = tf.logical_and(fooled, score <= tau)
        key = tf.where(ok, score / tau - _SUCCESS_OFFSET, loss)
        return loss, key, fooled, score

    @tf.function(reduce_retracing=True, autograph=False)
    def run(x, y, x0, eps, step, lam, tau):
        def body(i, xa, best_key, best_x, best_fool, best_score):
            with tf.GradientTape() as tape:
                tape.watch(xa)
                loss, key, fooled, score = terms(xa, y, lam, tau)
                total = tf.reduce_sum(loss)            # rows are independent: one backward pass
            g = tape.gradient(total, xa)
            best_key, (best_x, best_fool, best_score), _ = keep_best(
                key, best_key, [xa, fooled, score], [best_x, best_fool, best_score])
            xa = xa - optimize_linear(g, step * step_factor(i, nb_iter, schedule), norm)
            xa = tf.clip_by_value(x + clip_eta(xa - x, eps, norm), lo, hi)
            return i + 1, xa, best_key, best_x, best_fool, best_score

        n = tf.shape(x)[0]
        init = (tf.constant(0), x0, tf.fill([n], tf.constant(np.inf, tf.float32)), x0,
                tf.zeros([n], tf.bool), tf.zeros([n], tf.float32))
        _, xa, best_key, best_x, best_fool, best_score = tf.while_loop(
            lambda i, *_: i < nb_iter, body, init, parallel_iterations=1)
        _, key, fooled, score = terms(xa, y, lam, tau)       # the last iterate too
        best_key, (best_x, best_fool, best_score), _ = keep_best(
            key, best_key, [xa, fooled, score], [best_x, best_fool, best_score])
        return best_key, best_x, best_fool, best_score

    return run


def detector_aware_pgd(detector, x, y, eps: float, *, lams: Sequence[float] = (1.0, 10.0), nb_iter: int = 100,
                       eps_iter: float = None, norm: str = "inf", bounds=None, confidence: float = 0.0,
                       target_frac: float = 0.9, threshold: float = None, rand_init: bool = True,
                       schedule: str = "cosine", seed: int = 0, batch_size: int = 100) -> DetectorAwareResult:
    """PGD on ``CW margin + λ·relu(log score − log ρτ)`` against ``detector`` (see the module docstring).

    Args:
      detector: has ``attack_terms(x) -> (logits, score)``, ``threshold`` (τ; or pass
        ``threshold=``), ``bounds`` and ``image_shape`` (every detector of :mod:`tf_inc.detectors`).
      x, y: clean images and their true labels.
      eps: the ℓ∞ (or whole-image ℓ2) budget.
      lams: one restart per λ; ``(0.0,)`` is the attack that ignores the detector.
      nb_iter, eps_iter: PGD steps and step size (default 2.5·ε/nb_iter).
      confidence: κ of the CW margin.
      target_frac: ρ, aim the score at ρτ so it stays under τ (ρ = 1: exactly at τ).
      schedule: ``cosine`` decays the step to 5 % over the run, ``constant`` keeps it.
      batch_size: images per graph call (each call holds ``len(lams)·batch_size`` rows).
    """
    x, y, bounds = prepare(detector, x, y, bounds, eps=eps, norm=norm)
    check_budget(eps, allow_list=False)
    check_count(nb_iter, "nb_iter", 1)
    check_count(batch_size, "batch_size", 1)
    if eps_iter is not None:
        check_budget(eps_iter, "eps_iter", allow_list=False)
    check_budget(confidence, "confidence", allow_list=False)
    lams = [float(v) for v in np.atleast_1d(np.asarray(lams, np.float64))]
    if not lams or any(not np.isfinite(v) or v < 0 for v in lams):
        raise InputError(f"lams: expected a non-empty list of finite λ >= 0, got {lams}")
    if schedule not in SCHEDULES:
        raise InputError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if not 0.0 < target_frac <= 1.0:
        raise InputError(f"target_frac must lie in (0, 1], got {target_frac}")
    tau = detector.threshold if threshold is None else threshold
    if tau is None or not np.isfinite(tau) or tau <= 0:
        raise InputError("the detector needs a positive finite threshold: calibrate it first (or pass threshold=)")
    logits0, _ = detector.attack_terms(x[:1])
    run = _compiled(detector, int(nb_iter), norm, (float(bounds[0]), float(bounds[1])), float(confidence),
                    float(target_frac), schedule, int(logits0.shape[-1]))
    n_l = len(lams)
    outs = {k: [] for k in ("x", "fool", "score", "lam")}
    for s in range(0, int(x.shape[0]), batch_size):
        xb, yb = x[s:s + batch_size], y[s:s + batch_size]
        n = int(xb.shape[0])
        x_rep = tf.tile(xb, [n_l] + [1] * (len(xb.shape) - 1))
        y_rep = tf.tile(yb, [n_l])
        lam_rows = tf.repeat(tf.constant(lams, tf.float32), n)
        eps_b = per_example(float(eps), n * n_l, x_rep)
        step_b = eps_b * (2.5 / nb_iter) if eps_iter is None else per_example(float(eps_iter), n * n_l, x_rep)
        x0 = x_rep
        if rand_init:
            x0 = tf.clip_by_value(x_rep + random_init(x_rep, eps_b, norm, (seed, s)), *bounds)
        key, xa, fool, score = run(x_rep, y_rep, x0, eps_b, step_b, lam_rows, tf.constant(float(tau)))
        pick = tf.argmin(tf.reshape(key, [n_l, n]), axis=0, output_type=tf.int32)
        rows = pick * n + tf.range(n)
        outs["x"].append(tf.gather(xa, rows).numpy())
        outs["fool"].append(tf.gather(fool, rows).numpy())
        outs["score"].append(tf.gather(score, rows).numpy())
        outs["lam"].append(np.asarray(lams, np.float32)[pick.numpy()])
    fool, score = np.concatenate(outs["fool"]), np.concatenate(outs["score"])
    return DetectorAwareResult(x_adv=np.concatenate(outs["x"]), fooled=fool, score=score,
                               undetected=fool & (score <= tau), lam=np.concatenate(outs["lam"]))
