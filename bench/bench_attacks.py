"""Attack throughput on the CelebA classifier (batch 64): tf-inc vs cleverhans-v4 style vs eager.

    python bench/bench_attacks.py

* ``tf-inc``: :func:`tf_inc.attacks.pgd` — the whole PGD loop in one tf.function while-loop;
* ``per-step tf.function``: the cleverhans-v4 pattern, a Python loop calling a compiled step;
* ``eager``: the same step without tf.function.
Writes ``results/bench_attacks.json``.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tf_inc.attacks import fgsm, pgd
from tf_inc.attacks.utils import clip_eta, loss_gradient, optimize_linear
from tf_inc.io import atomic_write_json
from tf_inc.models import celeba_classifier

EPS, STEP, ITERS, BATCH = 0.05, 0.01, 20, 64


def _step(model, x0, xa, y):
    g = loss_gradient(model, xa, y)
    xa = xa + optimize_linear(g, STEP)
    return tf.clip_by_value(x0 + clip_eta(xa - x0, EPS), -1.0, 1.0)


def per_step_pgd(model, x, y):
    step = tf.function(lambda x0, xa, yy: _step(model, x0, xa, yy))
    xa = x
    for _ in range(ITERS):
        xa = step(x, xa, y)
    return xa


def eager_pgd(model, x, y):
    xa = x
    for _ in range(ITERS):
        xa = _step(model, x, xa, y)
    return xa


def timed(fn, reps=3):
    fn()  # warm-up / trace
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        _ = out.numpy()
        best = min(best, time.perf_counter() - t)
    return BATCH / best


def main():
    model = celeba_classifier()
    x = tf.random.uniform((BATCH, 64, 64, 3), -1, 1, seed=0)
    y = tf.constant(np.random.default_rng(0).integers(0, 2, BATCH), tf.int64)
    fgsm_fn = tf.function(lambda: fgsm(model, x, y, EPS, (-1.0, 1.0)))
    res = {
        "fgsm": {
            "tf_inc_tf_function": timed(fgsm_fn),
            "eager": timed(lambda: fgsm(model, x, y, EPS, (-1.0, 1.0))),
        },
        "pgd20": {
            "tf_inc": timed(lambda: pgd(model, x, y, EPS, eps_iter=STEP, nb_iter=ITERS, bounds=(-1.0, 1.0),
                                        rand_init=False)),
            "per_step_tf_function": timed(lambda: per_step_pgd(model, x, y)),
            "eager": timed(lambda: eager_pgd(model, x, y)),
        },
    }
    for attack, r in res.items():
        print(attack, "  ".join(f"{k} {v:8.1f} img/s" for k, v in r.items()))
    res["pgd20_speedup_vs_eager"] = res["pgd20"]["tf_inc"] / res["pgd20"]["eager"]
    res["fgsm_speedup_vs_eager"] = res["fgsm"]["tf_inc_tf_function"] / res["fgsm"]["eager"]
    print(f"PGD-20 speed-up over eager: {res['pgd20_speedup_vs_eager']:.2f}x; "
          f"FGSM: {res['fgsm_speedup_vs_eager']:.2f}x")
    out = Path("results/bench_attacks.json")
    atomic_write_json(out, res)
    print(f"results: {out.resolve()}")


if __name__ == "__main__":
    main()
