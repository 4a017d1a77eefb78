"""Evaluation helpers shared by the scripts: data by dataset name, batched predictions,
and the paper's Fig. 4-style reconstruction grid."""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def require_mnist(dataset: str, name: str, hint: str = "") -> None:
    """Stop an MNIST-only experiment with one line naming the script (and ``hint``: where to go instead)."""
    if dataset != "mnist":
        raise SystemExit(f"{name} is defined on MNIST only, got --dataset {dataset}" + (f" ({hint})" if hint else ""))


def inversion_config(dataset: str, steps: int = 0, restarts: int = 4):
    """The dataset's paper defaults with the scripts' ``--steps`` (0 = default) and ``--restarts``."""
    from tf_inc.manifold.inversion import InversionConfig

    return InversionConfig.for_dataset(dataset, restarts=restarts, **({"steps": steps} if steps else {}))


def load_eval_data(dataset: str, n: int, split: str = "test"):
    """``(x, y)`` numpy arrays of the first ``n`` evaluation images."""
    if dataset == "mnist":
        from tf_inc.data.mnist import load_mnist

        return load_mnist(split, n)
    if dataset == "celeba":
        from tf_inc.data.celeba import load_celeba

        xs, ys = [], []
        for xb, yb in load_celeba(split, n=n).batch(256):
            xs.append(xb.numpy())
            ys.append(yb.numpy())
        return np.concatenate(xs), np.concatenate(ys)
    raise ValueError(f"unknown dataset {dataset!r}")


def predict_labels(model_fn, x, batch: int = 500) -> np.ndarray:
    return np.concatenate([np.asarray(model_fn(x[s:s + batch])).argmax(1) for s in range(0, len(x), batch)])


def accuracy(model_fn, x, y) -> float:
    return float((predict_labels(model_fn, x) == y).mean())


def true_class_confidence(classifier, x, y) -> np.ndarray:
    p = tf.nn.softmax(classifier(x, training=False)).numpy()
    return p[np.arange(len(y)), y]


def reconstruction_figure(classifier, x, x_hat, x_adv, x_adv_hat, y, eps, bounds, title=None):
    """Rows x, G(z*), x_adv, G(z*_adv) with the classifier's confidence in the true class."""
    from tf_inc.experiments.plots import image_grid

    rows = [x, x_hat, x_adv, x_adv_hat]
    captions = [[f"{c * 100:.0f}%" for c in true_class_confidence(classifier, r, y)] for r in rows]
    return image_grid(rows, ["x", "G(z*)", f"x_adv ε={eps:g}", "G(z*_adv)"], captions, bounds=bounds,
                      title=title or "classifier confidence in the true class")


#: the ``--strategy`` flag of the evaluation scripts (the same names as the training drivers')
STRATEGY_HELP = ("tf.distribute strategy the per-image evaluation is sharded over: default (one device, the plain "
                 "path), mirrored (every GPU of this host, or its logical CPU devices), multiworker (hosts in "
                 "TF_CONFIG; only the chief writes the results)")


def evaluation_strategy(name: str):
    """``None`` for ``default`` (the plain single-device path, unchanged), else the strategy of
    :func:`tf_inc.training.distribute.make_strategy`; per-image rows are merged in input order."""
    from tf_inc.training.distribute import check_strategy, make_strategy

    check_strategy(name)
    return None if name == "default" else make_strategy(name)


def results_dir(out: str, strategy) -> str:
    """Where this process writes its result files: ``out`` on the chief (and without a strategy),
    a scratch directory removed at exit on every other worker of a multi-worker run."""
    if strategy is None:
        return out
    from tf_inc.training.distribute import worker_path

    return str(worker_path(out, strategy))
