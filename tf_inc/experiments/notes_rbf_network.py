"""Notes: the RBF network, the lecture's "good defence, poor accuracy" example.

Goodfellow et al. (2015, §7) contrast linear-ish deep nets with a shallow RBF network, one
radial unit per class, ``p(y=k|x) = exp(−Σ_i β_ki (x_i − w_ki)²)``: FGSM fools it much less
often, and when it does its own confidence is tiny; the lecture adds that FGSM images that do
fool it tend to actually look like the other class, but that such networks classify poorly.
This trains that network on MNIST (:mod:`tf_inc.models.extra_classifiers`, selected on the
validation split) and compares it with our CNN: clean accuracy, accuracy under FGSM and PGD
(ℓ∞) for several ε, and the confidence on clean inputs and on the adversarial inputs each
model gets wrong — the RBF units' own ``max_k p_k``, the CNN's softmax maximum. (Goodfellow
et al. report, for their shallow RBF net and FGSM ε = 0.25: 55.4 % error, 1.2 % confidence
on the mistakes, 60.6 % mean confidence on clean test inputs.)

    python scripts/notes_rbf_network.py
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import List

import numpy as np

from tf_inc.attacks import fgsm_multi_eps, pgd
from tf_inc.experiments import zoo
from tf_inc.experiments.evaluation import predict_labels
from tf_inc.experiments.notes_common import require_mnist
from tf_inc.experiments.results import Timer, write_results

NAME = "notes_rbf_network"


@dataclass
class RbfConfig:
    """Shallow RBF network vs the CNN under FGSM / PGD on MNIST."""

    dataset: str = field(default="mnist", metadata={"help": "MNIST only", "choices": ["mnist"]})
    n: int = field(default=1000, metadata={"help": "first n test images"})
    seed: int = field(default=0, metadata={"help": "PGD random-start seed"})
    out: str = field(default="results", metadata={"help": "output directory"})
    eps: List[float] = field(default_factory=lambda: [0.1, 0.2, 0.25, 0.3], metadata={"help": "ℓ∞ budgets"})
    pgd_steps: int = field(default=40, metadata={"help": "PGD steps (step 2.5·ε/steps, random start)"})
    batch: int = field(default=500, metadata={"help": "images per attack call"})


def softmax_confidence(model, x, batch: int = 500) -> np.ndarray:
    """max_k softmax(logits)_k: a usual classifier's confidence in its answer."""
    import tensorflow as tf

    return np.concatenate([tf.nn.softmax(model(x[s:s + batch], training=False)).numpy().max(1)
                           for s in range(0, len(x), batch)])


def _attack_all(model, x, y, eps, cfg):
    f = [[] for _ in eps]
    p = [[] for _ in eps]
    for s in range(0, len(x), cfg.batch):
        xb, yb = x[s:s + cfg.batch], y[s:s + cfg.batch]
        for i, a in enumerate(fgsm_multi_eps(model, xb, yb, eps)):
            f[i].append(a.numpy())
        for i, a in enumerate(pgd(model, xb, yb, eps, nb_iter=cfg.pgd_steps, seed=cfg.seed)):
            p[i].append(a.numpy())
    return [np.concatenate(a) for a in f], [np.concatenate(a) for a in p]


def run(cfg: RbfConfig):
    require_mnist(cfg.dataset, NAME)
    from tf_inc.data.mnist import load_mnist
    from tf_inc.models.extra_classifiers import load_or_train, rbf_confidence

    timer = Timer()
    models = {"cnn": zoo.mnist_classifier(), "rbf": load_or_train("rbf")}
    x, y = load_mnist("test", cfg.n)
    eps = [float(e) for e in cfg.eps]
    metrics = {"eps": eps, "n": int(len(x))}
    curves = {}
    for name, model in models.items():
        print(f"[{NAME}] {name}: FGSM and PGD-{cfg.pgd_steps} at ε={eps} on {len(x)} images ...", flush=True)
        metrics[f"{name}/clean_acc"] = float((predict_labels(model, x) == y).mean())
        f_adv, p_adv = _attack_all(model, x, y, eps, cfg)
        fa = [float((predict_labels(model, a) == y).mean()) for a in f_adv]
        pa = [float((predict_labels(model, a) == y).mean()) for a in p_adv]
        metrics[f"{name}/fgsm_acc"], metrics[f"{name}/pgd_acc"] = fa, pa
        for e, a, b in zip(eps, fa, pa):
            metrics[f"{name}/fgsm_{e:g}/acc"] = a
            metrics[f"{name}/pgd_{e:g}/acc"] = b
        curves[f"{name} FGSM"], curves[f"{name} PGD"] = fa, pa
        # confidence: the RBF units' own max_k p_k; the CNN's softmax maximum, for contrast
        confidence = functools.partial(rbf_confidence if name == "rbf" else softmax_confidence, model)
        metrics[f"{name}/mean_confidence_clean"] = float(confidence(x).mean())
        for attack, advs in (("fgsm", f_adv), ("pgd", p_adv)):
            for e, a in zip(eps, advs):
                wrong = predict_labels(model, a) != y
                conf = confidence(a)
                metrics[f"{name}/{attack}_{e:g}/error"] = float(wrong.mean())
                metrics[f"{name}/{attack}_{e:g}/mean_confidence_on_errors"] = (
                    float(conf[wrong].mean()) if wrong.any() else float("nan"))
        print(f"  clean {metrics[f'{name}/clean_acc']:.3f}  FGSM {['%.3f' % v for v in fa]}  "
              f"PGD {['%.3f' % v for v in pa]}", flush=True)

    from tf_inc.experiments.plots import accuracy_curves

    fig = accuracy_curves([0.0] + eps, {k: [metrics[f"{k.split()[0]}/clean_acc"]] + v for k, v in curves.items()},
                          xlabel="ε (ℓ∞)", title=f"shallow RBF network vs CNN (n={len(x)})")
    paper = {"rbf/fgsm_0.25/error": 0.554, "rbf/fgsm_0.25/mean_confidence_on_errors": 0.012,
             "rbf/mean_confidence_clean": 0.606}
    return write_results(NAME, out=cfg.out, paper_ref="notes: RBF network (lecture; Goodfellow et al. 2015 §7)",
                         dataset="mnist", config=cfg, metrics=metrics, paper=paper, runtime_s=timer.elapsed,
                         figures={"": fig})
