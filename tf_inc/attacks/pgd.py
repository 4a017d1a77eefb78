"""Iterative ℓ∞ / ℓ2 attacks: BIM (Kurakin et al., as the paper writes it) and PGD (Madry et al.).

The whole iteration runs in one ``tf.function`` while-loop over a batch that holds
every (ε, image) pair, so a list of budgets costs one call.
"""
from __future__ import annotations

import functools
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from tf_inc.attacks.utils import (
    as_budget_list,
    clip_eta,
    loss_gradient,
    misclassified,
    optimize_linear,
    per_example,
    prepare,
    random_init,
    split_budgets,
    tile_for_budgets,
)
from tf_inc.bounds import check_budget, check_count
from tf_inc.errors import InputError


def _iterate(model_fn, x, y, eps_rows, step_rows, nb_iter: int, norm: str, bounds, targeted: bool, x_init,
             schedule: str = "constant", snapshots: Tuple[int, ...] = ()):
    run = _compiled(model_fn, int(nb_iter), norm, (float(bounds[0]), float(bounds[1])), bool(targeted),
                    schedule, tuple(int(s) for s in snapshots))
    return run(x, y, eps_rows, step_rows, x_init)


UNROLL_MAX = 64
SCHEDULES = ("constant", "cosine")


def step_factor(i, nb_iter: int, schedule: str):
    """Multiplier of the step size at iteration ``i``: 1 (constant) or a cosine decay to 5 %."""
    if schedule == "constant":
        return 1.0
    frac = tf.cast(i, tf.float32) / float(max(nb_iter, 1))
    return 0.05 + 0.95 * 0.5 * (1.0 + tf.cos(np.pi * frac))


def pgd_iterations(model_fn, x, y, x_adv, eps, step, nb_iter: int, norm: str, bounds, targeted: bool = False,
                   schedule: str = "constant", snapshots: Tuple[int, ...] = ()):
    """The PGD iteration itself, graph-friendly (no input checks: call it inside a ``tf.function``).

    ``nb_iter`` steps ``x ← Π_{x,ε}(x + step·dir(∇L))`` from ``x_adv``, clipped to ``bounds``;
    ``eps``/``step`` are scalars or per-example tensors. Returns the last iterate, or
    ``(last, stacked snapshots)`` when ``snapshots`` are asked for. Shared by :func:`pgd`,
    :func:`bim` and the in-graph attacks of adversarial training.
    """
    lo, hi = bounds
    snaps = tf.TensorArray(tf.float32, size=len(snapshots), element_shape=x.shape)
    snap_at = tf.constant(list(snapshots) or [-1], tf.int32)

    def body(i, xa, snaps):
        g = loss_gradient(model_fn, xa, y, targeted)
        xa = xa + optimize_linear(g, step * step_factor(i, nb_iter, schedule), norm)
        xa = tf.clip_by_value(x + clip_eta(xa - x, eps, norm), lo, hi)
        if snapshots:
            hit = tf.where(tf.equal(snap_at, i + 1))[:, 0]
            snaps = tf.cond(tf.size(hit) > 0, lambda: snaps.write(tf.cast(hit[0], tf.int32), xa),
                            lambda: snaps)
        return i + 1, xa, snaps

    if nb_iter <= UNROLL_MAX:
        # short attacks are unrolled into the graph: on CPU the while-loop body keeps
        # oneDNN from reusing its re-ordered convolution weights across iterations
        xa = x_adv
        for i in range(nb_iter):
            _, xa, snaps = body(tf.constant(i), xa, snaps)
    else:
        _, xa, snaps = tf.while_loop(lambda i, *_: i < nb_iter, body, (tf.constant(0), x_adv, snaps))
    if snapshots:
        return xa, snaps.stack()
    return xa


@functools.lru_cache(maxsize=32)
def _compiled(model_fn, nb_iter: int, norm: str, bounds, targeted: bool, schedule: str = "constant",
              snapshots: Tuple[int, ...] = ()):
    """One traced loop per (model, settings), reused across calls and restarts.

    With ``snapshots`` the loop also returns the iterate after each listed number of
    steps (stacked), which is how one run gives a whole saturation curve.
    """

    @tf.function(reduce_retracing=True, autograph=False)
    def run(x, y, eps, step, x_adv):
        return pgd_iterations(model_fn, x, y, x_adv, eps, step, nb_iter, norm, bounds, targeted, schedule,
                              snapshots)

    return run


def projected_gradient_descent(
    model_fn,
    x,
    y,
    eps: Union[float, Sequence[float]],
    eps_iter: Optional[float] = None,
    nb_iter: int = 40,
    norm: str = "inf",
    bounds: Optional[Tuple[float, float]] = None,
    rand_init: bool = True,
    restarts: int = 1,
    targeted: bool = False,
    seed: int = 0,
    schedule: str = "constant",
    snapshots: Sequence[int] = (),
):
    """PGD: ``nb_iter`` steps of size ``eps_iter`` (default 2.5·ε/nb_iter), projected onto the ε-ball.

    With ``restarts > 1`` each example keeps the restart that fools the model
    (or, failing that, has the largest loss). ``eps`` may be a list: the result
    is then a list aligned with it. ``bounds`` default to the ones the model carries.
    ``schedule="cosine"`` decays the step to 5 % over the run. ``snapshots`` (one
    restart only) also returns the iterates after those numbers of steps, as a
    dict ``{steps: result}``: one run, a whole saturation curve.
    """
    x, y, bounds = prepare(model_fn, x, y, bounds, eps=eps, norm=norm)
    check_count(nb_iter, "nb_iter", 1)
    check_count(restarts, "restarts", 1)
    if schedule not in SCHEDULES:
        raise InputError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    snapshots = tuple(sorted({check_count(int(k), "snapshots", 1) for k in snapshots}))
    if snapshots and (restarts != 1 or snapshots[-1] > nb_iter):
        raise InputError("snapshots need restarts=1 and steps <= nb_iter")
    if eps_iter is not None:
        check_budget(eps_iter, "eps_iter")
    budgets, single = as_budget_list(eps)
    n = int(x.shape[0])
    x_rep, y_rep, eps_rows = tile_for_budgets(x, y, budgets)
    eps_b = per_example(eps_rows, n * len(budgets), x_rep)
    frac = (2.5 / nb_iter) if eps_iter is None else None
    step_b = eps_b * frac if frac is not None else per_example(eps_iter, n * len(budgets), x_rep)
    best, best_loss, best_fool = None, None, None
    for r in range(max(1, restarts)):
        start = x_rep
        if rand_init:
            start = tf.clip_by_value(x_rep + random_init(x_rep, eps_b, norm, (seed, r)), *bounds)
        xa = _iterate(model_fn, x_rep, y_rep, eps_b, step_b, nb_iter, norm, bounds, targeted, start,
                      schedule, snapshots)
        if snapshots:
            xa, snaps = xa
            out = split_budgets(xa, len(budgets))
            by_step = {k: split_budgets(snaps[j], len(budgets)) for j, k in enumerate(snapshots)}
            if single:
                return out[0], {k: v[0] for k, v in by_step.items()}
            return out, by_step
        logits = model_fn(xa)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_rep, logits=logits)
        loss = -loss if targeted else loss
        fool = misclassified(logits, y_rep, targeted)
        if best is None:
            best, best_loss, best_fool = xa, loss, fool
        else:
            take = tf.logical_or(tf.logical_and(fool, ~best_fool),
                                 tf.logical_and(tf.equal(fool, best_fool), loss > best_loss))
            best = tf.where(tf.reshape(take, [-1] + [1] * (len(x.shape) - 1)), xa, best)
            best_loss = tf.where(take, loss, best_loss)
            best_fool = tf.logical_or(best_fool, fool)
    out = split_budgets(best, len(budgets))
    return out[0] if single else out


def basic_iterative_method(model_fn, x, y, eps, nb_iter: int = 20, eps_iter: Optional[float] = None,
                           bounds=None, targeted: bool = False):
    """BIM as the paper writes it (§4.4.1): 20 steps ``x ← Π_{x0,ε}(x + α·sign ∇L)``, no random start.

    The paper's displayed step is α = 2ε; ``eps_iter`` overrides it (Kurakin et al. used 1/255).
    """
    x, y, bounds = prepare(model_fn, x, y, bounds, eps=eps)
    check_count(nb_iter, "nb_iter", 1)
    if eps_iter is not None:
        check_budget(eps_iter, "eps_iter")
    budgets, single = as_budget_list(eps)
    n = int(x.shape[0])
    x_rep, y_rep, eps_rows = tile_for_budgets(x, y, budgets)
    eps_b = per_example(eps_rows, n * len(budgets), x_rep)
    step_b = 2.0 * eps_b if eps_iter is None else per_example(eps_iter, n * len(budgets), x_rep)
    xa = _iterate(model_fn, x_rep, y_rep, eps_b, step_b, nb_iter, "inf", bounds, targeted, x_rep)
    out = split_budgets(xa, len(budgets))
    return out[0] if single else out


pgd = projected_gradient_descent
bim = basic_iterative_method
