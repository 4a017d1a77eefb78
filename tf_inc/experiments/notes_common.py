"""Shared pieces of the ``notes_*`` experiments (the attacks and analyses of the accompanying
notes: the blog post on attacks and defences on MNIST and Goodfellow's lecture)."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from tf_inc.errors import InputError
from tf_inc.experiments.evaluation import require_mnist  # noqa: F401  (the notes' scripts import it from here)


def check_source_target(cfg) -> None:
    """A targeted notes experiment's ``source_class`` and ``target_class``: digits 0–9 that differ."""
    for name in ("source_class", "target_class"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= 9:
            raise InputError(f"--{name.replace('_', '-')} must be a digit 0-9, got {v!r}")
    if cfg.source_class == cfg.target_class:
        raise InputError(f"--source-class and --target-class must differ (both are {cfg.source_class}): "
                         "a targeted attack needs another digit to reach")


def correct_test_images(model, n: int, digit: Optional[int] = None, offset: int = 0
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """The first ``n`` MNIST test images (of class ``digit`` if given, skipping the first ``offset``
    candidates) that ``model`` classifies correctly, in test-set order."""
    from tf_inc.data.mnist import load_mnist
    from tf_inc.experiments.evaluation import predict_labels

    if n < 1:
        raise InputError(f"n: expected at least one image, got {n}")
    x, y = load_mnist("test")
    keep = np.ones(len(y), bool) if digit is None else (y == digit)
    idx = np.where(keep)[0][offset:]
    ok = idx[predict_labels(model, x[idx]) == y[idx]][:n]
    if len(ok) < n:
        print(f"[notes] only {len(ok)} suitable test images (asked for {n})", flush=True)
    return x[ok], y[ok]


def summary(values) -> dict:
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}
