"""Attacks through the generator's latent space on Invert-and-Classify.

Athalye, Carlini & Wagner (2018) broke Defense-GAN — and the INC authors broke
INC in the same spirit with their min-max search — by never leaving the range of
the generator: search a latent ``z`` whose image ``G(z)`` is

* within the perturbation budget of the clean input ``x`` (ℓ∞ or ℓ2 ball, pixels
  in the generator's bounds, ℓ2 over the whole image), and
* misclassified by the classifier ``C``.

Such a ``G(z)`` is a fixed point of a *perfect* projector (``G(z*(G(z))) = G(z)``),
so ``C(G(z))`` is exactly what a perfect INC answers on it: a success here breaks
the perfect-projector defence, whatever the projection's accuracy. Whether the
real INC (finite steps, restarts, early stopping) is broken too is for the caller
to check by running it on the returned ``x_adv``; an image is *broken* when its
``x_adv`` is within budget and the defence misclassifies it. The attack itself
only queries the generator and the classifier.

:func:`latent_attack` does, for a batch of images and a list of budgets:

a. ``z0``: the best of ``inversion_restarts`` restarts of
   :func:`tf_inc.manifold.inversion.project` (restart 0 warm-started from the
   encoder when one is given), or a ``z0`` the caller passes;
b. for every (budget, image) row — the batch is tiled once per budget, so one
   compiled ``tf.function`` while-loop runs all rows, as :mod:`~tf_inc.attacks.pgd`
   does for a list of ε — Adam in z (:func:`tf_inc.optim.adam_update`,
   ``form="kingma"``, lr in units of ``generator.prior_std``), restarted from
   ``z0``, on one of two objectives:

   * ``method="binary_search"`` (Carlini–Wagner style)::

         excess(G(z), x) + c · f(G(z))
         excess = relu(‖G(z) − x‖₂ − ε)²          (ℓ2 rows)
                = Σ_pixels relu(|G(z) − x| − ε)²   (ℓ∞ rows)
         f      = max(Z_y − max_{i≠y} Z_i, −κ)    (CW margin on the logits)

     with a per-row binary search on ``c`` over ``binary_search_steps`` outer
     steps: a row that found a success is done (its ``c`` is kept and it is not
     run again); otherwise, judged on the last iterate, *misclassified* (so it
     was out of budget whenever it was misclassified) → ``c`` too large: upper
     bound, bisect down; *correct* (in or out of budget: the margin term has not
     won) → ``c`` too small: lower bound, ×10 until an upper bound is known, then
     bisect — as CW does.
   * ``method="lagrangian"``: no outer search; one loop of
     ``steps · binary_search_steps`` iterations on ``f + λ · (dist/ε − 1)`` with
     a per-row multiplier updated by projected ascent
     ``λ ← max(0, λ + lr_lambda · (dist/ε − 1))``, ``λ`` starting at
     ``initial_const`` (``dist``: the budget's norm of ``G(z) − x``).

   With ``noise_draws > 0`` the margin ``f`` is averaged over draws
   ``clip(G(z) + noise_std · N(0, I))`` (EOT; fresh stateless draws every step),
   which favours points that stay misclassified after a small perturbation,
   e.g. INC's imperfect re-projection. Success is always judged on the clean
   ``G(z)``.

   Every iterate is checked: a row keeps (:func:`tf_inc.optim.keep_best`) its
   best *successful* ``G(z)`` — misclassified by the classifier, CW margin
   ``≤ −κ`` and ``dist ≤ ε`` — and among successes it **prefers the larger
   margin violation** (the most negative ``Z_y − max_{i≠y} Z_i``), not the
   smaller distance: inside the budget the distance does not matter, and a
   confidently misclassified point is the one most likely to stay misclassified
   through the real INC's re-projection;
c. returns, per budget key (``"linf_0.3"``, ``"l2_4.0"``), ``x_adv`` — the kept
   ``G(z)`` for a success, else the projection of the last ``G(z)`` onto the
   ε-ball around ``x`` (clipped to the bounds) — so every ``x_adv`` is within its
   budget (checked before returning, up to a float tolerance of
   ``BUDGET_TOL · max(1, ε)``), ``success`` and ``dist``. ``success`` is
   re-checked on the returned batch with the classifier, so ``success`` implies
   ``argmax C(x_adv) ≠ y``; a kept point that fails the re-check (a margin within
   float noise of 0, only possible with κ = 0) is still returned — it is within
   budget — but not counted as a success.

Budgets of ε = 0 are accepted and return ``x`` itself (never a success).

Cost: a success needs some ``G(z)`` inside the budget, and ``z0`` is already the
closest point of the range the inversion found. With ``reach = r > 0`` only the
rows whose ``G(z0)`` lies within ``r·ε`` of ``x`` (in the budget's norm) are
searched; the others return the projection of ``G(z0)`` onto the ε-ball. On MNIST
no VAE reconstruction is within ℓ∞ 0.3 of its digit, so at ℓ∞ budgets this skips
a search that cannot succeed; ``reach = 0`` (default) searches every row.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_inc.attacks.carlini_wagner import cw_margin
from tf_inc.attacks.utils import (
    NORMS,
    call_model,
    clip_eta,
    per_example,
    perturbation_size,
)
from tf_inc.bounds import bounds_of, check_attack_inputs, check_budget, check_count
from tf_inc.errors import InputError
from tf_inc.optim import adam_update, keep_best, stateless_normal_rows

METHODS = ("binary_search", "lagrangian")
#: an ``x_adv`` is within budget when its distance is ≤ ε + BUDGET_TOL·max(1, ε) (float32 rounding)
BUDGET_TOL = 1e-5
_BIG = 1e10


@dataclass
class LatentAttackConfig:
    """Hyper-parameters of :func:`latent_attack` (validated on construction and on use)."""

    method: str = "binary_search"      # "binary_search" (c, as CW) or "lagrangian" (λ by projected ascent)
    inversion_restarts: int = 8        # restarts of the projection that gives z0
    inversion_steps: int = 1000        # Adam steps per restart of that projection
    steps: int = 500                   # Adam steps on z per binary-search step
    learning_rate: float = 0.05        # Adam lr on z, in units of generator.prior_std
    binary_search_steps: int = 5       # outer steps (lagrangian: steps × this many iterations)
    initial_const: float = 1.0         # initial c (binary search) / initial λ (lagrangian)
    confidence: float = 0.0            # CW κ: f = max(margin, −κ); success needs margin ≤ −κ
    lr_lambda: float = 0.1             # step of the λ ascent (lagrangian)
    noise_draws: int = 0               # EOT draws of G(z) + noise_std·N(0, I) per step (0: none)
    noise_std: float = 0.0             # std of that noise, in pixel units
    seed: int = 0                      # inversion restarts and noise draws
    inversion_learning_rate: Optional[float] = None   # None: InversionConfig's (MNIST 0.1)
    reach: float = 0.0                 # > 0: search only rows whose start G(z0) is within reach·ε of x

    def __post_init__(self):
        self.validate()

    def validate(self) -> "LatentAttackConfig":
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        check_count(self.inversion_restarts, "inversion_restarts", 1)
        check_count(self.inversion_steps, "inversion_steps", 0)
        check_count(self.steps, "steps", 1)
        check_count(self.binary_search_steps, "binary_search_steps", 1)
        check_count(self.noise_draws, "noise_draws", 0)
        check_count(self.seed, "seed", 0)
        for name in ("learning_rate", "initial_const", "lr_lambda"):
            _check_positive(getattr(self, name), name)
        if self.inversion_learning_rate is not None:
            _check_positive(self.inversion_learning_rate, "inversion_learning_rate")
        check_budget(self.confidence, "confidence", allow_list=False)
        check_budget(self.noise_std, "noise_std", allow_list=False)
        check_budget(self.reach, "reach", allow_list=False)
        if self.noise_std > 0 and self.noise_draws == 0:
            raise InputError("noise_std > 0 has no effect with noise_draws = 0; set noise_draws >= 1")
        return self


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or value <= 0:
        raise InputError(f"{name}: expected a finite number > 0, got {value!r}")


def budget_key(norm: str, eps: float) -> str:
    """``("inf", 0.3) -> "linf_0.3"``, ``("2", 4) -> "l2_4.0"``."""
    return f"{'linf' if norm == 'inf' else 'l2'}_{float(eps)}"


def check_budgets(budgets) -> List[Tuple[str, float]]:
    """A list of ``(norm, eps)`` pairs, norm in {"inf", "2"}, eps finite ≥ 0, no duplicates."""
    if isinstance(budgets, tuple) and len(budgets) == 2 and isinstance(budgets[0], str):
        budgets = [budgets]                                  # a single (norm, eps) pair
    if isinstance(budgets, (str, bytes)) or not isinstance(budgets, Sequence):
        raise InputError(f"budgets: expected a list of (norm, eps) pairs, got {budgets!r}")
    if len(budgets) == 0:
        raise InputError("budgets: empty list; pass at least one (norm, eps) pair, e.g. [('2', 4.0)]")
    out, keys = [], set()
    for item in budgets:
        if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 2:
            raise InputError(f"budgets: each budget is a (norm, eps) pair, got {item!r}")
        norm, eps = item
        if not isinstance(norm, str) or norm not in NORMS:
            raise InputError(f"budgets: norm must be one of {', '.join(repr(n) for n in NORMS)}, got {norm!r}")
        check_budget(eps, f"budgets ({norm!r}) eps", allow_list=False)
        key = budget_key(norm, float(eps))
        if key in keys:
            raise InputError(f"budgets: {key} is listed twice")
        keys.add(key)
        out.append((str(norm), float(eps)))
    return out


def _flat(t):
    return tf.reshape(t, [tf.shape(t)[0], -1])


@functools.lru_cache(maxsize=32)
def _compiled(generator, classifier, method: str, iters: int, lr: float, confidence: float,
              noise_draws: int, noise_std: float, lr_lambda: float, bounds):
    """One traced optimiser per (models, settings); the outer search reuses it without retracing.

    ``run`` returns per row ``(best_score, best_x, last_x, last_misclassified)``:
    the most negative margin of a successful iterate (+inf if none) and that
    ``G(z)``, then ``G`` of the final iterate and whether C misclassifies it.
    """
    lo, hi = bounds
    lagrangian = method == "lagrangian"
    eps_floor = 1e-3 * (hi - lo)             # normalises dist/ε for ε = 0 rows (never successful)

    @tf.function(reduce_retracing=True, autograph=False)
    def run(x, y, z0, weight, eps, is_l2, best_score, best_x, seed, stream0):
        n = tf.shape(x)[0]
        x_flat = _flat(x)
        eps_safe = tf.maximum(eps, eps_floor)

        def evaluate(z, i, lam):
            xg = call_model(generator, z)
            d = _flat(xg) - x_flat
            l2 = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(d), axis=1), 1e-12))
            linf = tf.reduce_max(tf.abs(d), axis=1)
            dist = tf.where(is_l2, l2, linf)
            logits = call_model(classifier, xg)
            onehot = tf.one_hot(y, tf.shape(logits)[-1])
            margin = cw_margin(logits, onehot, False)
            if noise_draws:
                pix = int(np.prod(x.shape[1:]))
                noise = stateless_normal_rows(n * noise_draws, pix, seed, stream0 + i, stddev=noise_std)
                xn = tf.tile(xg, [noise_draws] + [1] * (len(x.shape) - 1))
                xn = tf.clip_by_value(xn + tf.reshape(noise, tf.shape(xn)), lo, hi)
                mn = cw_margin(call_model(classifier, xn), tf.tile(onehot, [noise_draws, 1]), False)
                f = tf.reduce_mean(tf.reshape(tf.maximum(mn, -confidence), [noise_draws, n]), axis=0)
            else:
                f = tf.maximum(margin, -confidence)
            if lagrangian:
                loss = f + lam * (dist / eps_safe - 1.0)
            else:
                ex_l2 = tf.square(tf.nn.relu(l2 - eps))
                ex_inf = tf.reduce_sum(tf.square(tf.nn.relu(tf.abs(d) - eps[:, None])), axis=1)
                loss = tf.where(is_l2, ex_l2, ex_inf) + weight * f
            misclassified = tf.not_equal(tf.argmax(logits, axis=1, output_type=y.dtype), y)
            success = misclassified & (margin <= -confidence) & (dist <= eps)
            return loss, xg, dist, margin, success, misclassified

        def body(i, z, m, v, lam, best_score, best_x):
            with tf.GradientTape() as tape:
                tape.watch(z)
                loss, xg, dist, margin, success, _ = evaluate(z, i, lam)
            g = tape.gradient(loss, z)                      # rows are independent
            best_score, (best_x,), _ = keep_best(margin, best_score, [xg], [best_x], eligible=success)
            step, m, v = adam_update(g, m, v, tf.cast(i + 1, tf.float32), lr, form="kingma")
            if lagrangian:
                lam = tf.nn.relu(lam + lr_lambda * (dist / eps_safe - 1.0))
            return i + 1, z - step, m, v, lam, best_score, best_x

        init = (tf.constant(0), z0, tf.zeros_like(z0), tf.zeros_like(z0), weight, best_score, best_x)
        _, z, _, _, lam, best_score, best_x = tf.while_loop(
            lambda i, *_: i < iters, body, init, parallel_iterations=1)
        _, xg, _, margin, success, misclassified = evaluate(z, tf.constant(iters), lam)   # the final iterate too
        best_score, (best_x,), _ = keep_best(margin, best_score, [xg], [best_x], eligible=success)
        return best_score, best_x, xg, misclassified

    return run


def _latent_dim(generator) -> int:
    k = getattr(generator, "latent_dim", None)
    return int(k) if k else int(generator.input_shape[-1])


def latent_start(generator, x, config: LatentAttackConfig = LatentAttackConfig(), encoder=None) -> np.ndarray:
    """Step (a): ``z0``, the best of ``config.inversion_restarts`` projections of ``x`` onto range(G).

    It depends on the generator, the images and the seed only (not on the classifier or the
    budget), so a caller attacking several classifiers or budgets can compute it once and pass
    it to :func:`latent_attack` as ``z0``.
    """
    from tf_inc.manifold.inversion import InversionConfig, project

    inv = InversionConfig(steps=config.inversion_steps, restarts=config.inversion_restarts,
                          warm_start=encoder is not None)
    if config.inversion_learning_rate is not None:
        inv.learning_rate = float(config.inversion_learning_rate)
    return np.asarray(project(generator, x, inv, seed=config.seed, encoder=encoder).z, np.float32)


def latent_attack(generator, classifier, x, y, budgets, config: LatentAttackConfig = LatentAttackConfig(),
                  encoder=None, z0=None) -> Dict[str, Dict[str, np.ndarray]]:
    """Search ``G(z)`` within each budget of ``x`` that the classifier misclassifies (see the module doc).

    Args:
      generator: z ↦ image, carrying ``bounds`` (and ``latent_dim``, ``prior_std``);
        a :class:`tf_inc.models.Generator`.
      classifier: image ↦ logits.
      x, y: clean images in the generator's bounds and their integer labels.
      budgets: list of ``(norm, eps)``, norm ``"inf"`` or ``"2"``; a single pair is accepted.
      config: :class:`LatentAttackConfig`.
      encoder: optional E(x) warm start of restart 0 of the inversion.
      z0: optional (N, latent_dim) starting latents; skips the inversion (step a).

    Returns:
      ``{"x_adv": {key: (N, ...) float32}, "success": {key: (N,) bool}, "dist": {key: (N,)},
      "margin": {key: (N,)}, "searched": {key: (N,) bool}, "z0": (N, k)}`` with ``key = budget_key(norm, eps)`` (``"linf_0.3"``,
      ``"l2_4.0"``); ``dist`` is the budget's norm of ``x_adv − x`` and ``margin`` the classifier's
      ``Z_y − max_{i≠y} Z_i`` on ``x_adv``.
    """
    if not isinstance(config, LatentAttackConfig):
        raise InputError(f"config: expected a LatentAttackConfig, got {type(config).__name__}")
    cfg = config.validate()
    budgets = check_budgets(budgets)
    bounds = bounds_of(generator)
    xs, ys, bounds = check_attack_inputs(classifier, x, y, bounds=bounds)
    k = _latent_dim(generator)
    prior_std = float(getattr(generator, "prior_std", 1.0))
    g_shape = tuple(int(d) for d in call_model(generator, tf.zeros((1, k))).shape[1:])
    if tuple(xs.shape[1:]) != g_shape:
        raise InputError(f"x: expected images of the generator's shape (N, {', '.join(map(str, g_shape))}), "
                         f"got {xs.shape}")
    n = len(xs)

    # (a) the starting latents: the projection of x onto range(G)
    if z0 is None:
        z0 = latent_start(generator, xs, cfg, encoder)
    else:
        z0 = np.asarray(z0, dtype=np.float32)
        if z0.shape != (n, k) or not np.all(np.isfinite(z0)):
            raise InputError(f"z0: expected finite latents of shape ({n}, {k}), got {z0.shape}")
    z0 = np.asarray(z0, np.float32)

    # (b) one row per (budget, image): budget b of image i is row b·N + i
    nb = len(budgets)
    x_rows = np.concatenate([xs] * nb)
    y_rows = np.concatenate([ys] * nb)
    z_rows = np.concatenate([z0] * nb)
    eps_rows = np.repeat(np.array([e for _, e in budgets], np.float32), n)
    l2_rows = np.repeat(np.array([norm == "2" for norm, _ in budgets]), n)
    rows = len(x_rows)
    best_score = np.full(rows, np.inf, np.float32)
    best_x = x_rows.copy()
    last_x = x_rows.copy()
    searched = np.ones(rows, bool)
    if cfg.reach > 0:                                  # skip rows whose range point is out of reach
        g0 = np.concatenate([call_model(generator, tf.constant(z0[i:i + 256])).numpy()
                             for i in range(0, n, 256)])      # n >= 1: empty batches were refused
        g_rows = np.concatenate([g0] * nb)
        d0 = np.concatenate([perturbation_size(g0, xs, norm) for norm, _ in budgets])
        searched = d0 <= cfg.reach * eps_rows
        last_x[~searched] = g_rows[~searched]
    lr = float(cfg.learning_rate) * prior_std
    settings = dict(lr=lr, confidence=float(cfg.confidence), noise_draws=int(cfg.noise_draws),
                    noise_std=float(cfg.noise_std), lr_lambda=float(cfg.lr_lambda),
                    bounds=(float(bounds[0]), float(bounds[1])))
    seed_t = tf.constant(int(cfg.seed) % (2 ** 31 - 1), tf.int32)

    def call(run, idx, weight, stream0):
        out = run(tf.constant(x_rows[idx]), tf.constant(y_rows[idx]), tf.constant(z_rows[idx]),
                  tf.constant(weight[idx]), tf.constant(eps_rows[idx]), tf.constant(l2_rows[idx]),
                  tf.constant(best_score[idx]), tf.constant(best_x[idx]), seed_t,
                  tf.constant(stream0, tf.int32))
        return [t.numpy() for t in out]

    if cfg.method == "lagrangian":
        run = _compiled(generator, classifier, "lagrangian", cfg.steps * cfg.binary_search_steps, **settings)
        idx = np.where(searched)[0]
        lam = np.full(rows, cfg.initial_const, np.float32)
        if idx.size:
            best_score[idx], best_x[idx], last_x[idx], _ = call(run, idx, lam, 1)
    else:
        run = _compiled(generator, classifier, "binary_search", cfg.steps, **settings)
        const = np.full(rows, cfg.initial_const, np.float32)
        lower, upper = np.zeros(rows, np.float32), np.full(rows, _BIG, np.float32)
        done = ~searched
        for s in range(cfg.binary_search_steps):
            idx = np.where(~done)[0]
            if idx.size == 0:
                break
            sc, bx, lx, mis = call(run, idx, const, 1 + s * (cfg.steps + 1))
            best_score[idx], best_x[idx], last_x[idx] = sc, bx, lx
            ok = np.isfinite(sc)
            done[idx[ok]] = True
            # not yet successful: misclassified at the end → c too large; still correct → c too small
            c = const[idx]
            up = np.where(~ok & mis, np.minimum(upper[idx], c), upper[idx])
            low = np.where(~ok & ~mis, np.maximum(lower[idx], c), lower[idx])
            new_c = np.where(up < _BIG / 10, (low + up) / 2, c * 10)
            upper[idx], lower[idx] = up, low
            const[idx] = np.where(ok, c, new_c).astype(np.float32)

    # (c) successes keep their G(z); the others return the last G(z) projected onto the ε-ball
    succeeded = np.isfinite(best_score)
    out: Dict[str, Dict[str, np.ndarray]] = {"x_adv": {}, "success": {}, "dist": {}, "margin": {}}
    for b, (norm, eps) in enumerate(budgets):
        sl = slice(b * n, (b + 1) * n)
        xb = tf.constant(xs)
        eps_b = per_example(tf.fill([n], eps), n, xb)
        proj = tf.clip_by_value(xb + clip_eta(tf.constant(last_x[sl]) - xb, eps_b, norm), *bounds).numpy()
        ok = succeeded[sl]
        x_adv = np.where(ok.reshape([-1] + [1] * (xs.ndim - 1)), best_x[sl], proj).astype(np.float32)
        dist = perturbation_size(x_adv, xs, norm)
        tol = BUDGET_TOL * max(1.0, eps)
        within = dist <= eps + tol
        if not within.all() or x_adv.min() < bounds[0] or x_adv.max() > bounds[1]:
            raise AssertionError(f"latent_attack: x_adv outside the {budget_key(norm, eps)} budget or the "
                                 f"bounds (max dist {dist.max():.6g}); this is a bug")
        logits = call_model(classifier, tf.constant(x_adv)).numpy()
        onehot = np.eye(logits.shape[1], dtype=bool)[ys]
        margin = logits[np.arange(n), ys] - np.where(onehot, -np.inf, logits).max(axis=1)
        key = budget_key(norm, eps)
        out["x_adv"][key] = x_adv
        out["success"][key] = ok & within & (logits.argmax(axis=1) != ys)
        out["dist"][key] = dist
        out["margin"][key] = margin
    out["z0"] = z0
    out["searched"] = {budget_key(norm, eps): searched[b * n:(b + 1) * n] for b, (norm, eps) in enumerate(budgets)}
    return out
