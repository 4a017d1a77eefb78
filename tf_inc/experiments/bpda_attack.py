"""BPDA (+ EOT) adaptive attack on Invert-and-Classify (Athalye, Carlini & Wagner 2018).

PGD whose gradient passes through INC's projection as the identity (BPDA), optionally
averaged over several inversion seeds (EOT over INC's random restarts). Reports INC
accuracy under ℓ∞ and ℓ2 budgets, including the *normalised* ℓ2 budget 0.005 that
Athalye et al. used against Defense-GAN (their result: 55 % accuracy). Normalised ℓ2
here means mean squared perturbation per pixel, ||δ||₂² / d ≤ b, i.e. ||δ||₂ ≤ sqrt(b·d).

    python scripts/bpda_attack.py                   # MNIST, 100 test images
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List

import numpy as np

from tf_inc.experiments import zoo
from tf_inc.attacks import EOT, pgd
from tf_inc.bounds import dataset_bounds
from tf_inc.experiments.evaluation import load_eval_data
from tf_inc.experiments.results import Timer, write_results
from tf_inc.defences.inc import InvertAndClassify
from tf_inc.manifold.inversion import InversionConfig
from tf_inc.experiments.plots import accuracy_curves

NAME = "bpda_attack"


@dataclass
class BPDAConfig:
    """BPDA/EOT attack on Invert-and-Classify."""

    dataset: str = field(default="mnist", metadata={"help": "mnist or celeba", "choices": ["mnist", "celeba"]})
    n: int = field(default=100, metadata={"help": "number of test images"})
    seed: int = field(default=0, metadata={"help": "seed of INC's restarts at evaluation"})
    out: str = field(default="results", metadata={"help": "output directory"})
    linf: List[float] = field(default_factory=lambda: [0.05, 0.1, 0.2, 0.3], metadata={"help": "ℓ∞ budgets"})
    l2_normalised: List[float] = field(default_factory=lambda: [0.005, 0.01],
                                       metadata={"help": "normalised ℓ2 budgets (MSE per pixel)"})
    nb_iter: int = field(default=20, metadata={"help": "PGD iterations"})
    eot_samples: int = field(default=1, metadata={"help": "inversion seeds averaged per gradient (EOT)"})
    attack_steps: int = field(default=200, metadata={"help": "inversion steps inside the attack loop"})
    attack_restarts: int = field(default=1, metadata={"help": "inversion restarts inside the attack loop"})
    eval_steps: int = field(default=1000, metadata={"help": "inversion steps when evaluating INC"})
    eval_restarts: int = field(default=4, metadata={"help": "inversion restarts when evaluating INC"})


def run(cfg: BPDAConfig):
    timer = Timer()
    bounds = dataset_bounds(cfg.dataset)
    classifier, generator, _ = zoo.dataset_models(cfg.dataset)
    x, y = load_eval_data(cfg.dataset, cfg.n)
    d = int(np.prod(x.shape[1:]))
    lr = InversionConfig.for_dataset(cfg.dataset).learning_rate
    attack_incs = [
        InvertAndClassify(generator, classifier,
                          InversionConfig(steps=cfg.attack_steps, restarts=cfg.attack_restarts, learning_rate=lr),
                          seed=1000 + k)
        for k in range(cfg.eot_samples)
    ]

    # EOT: average the log-probabilities over inversion seeds (BPDA inside each)
    eot_logits = EOT([a.bpda_logits for a in attack_incs])

    evaluator = InvertAndClassify(generator, classifier, InversionConfig.for_dataset(
        cfg.dataset, steps=cfg.eval_steps, restarts=cfg.eval_restarts), seed=cfg.seed)
    budgets = [("linf", e, e) for e in cfg.linf] + [("l2", b, math.sqrt(b * d)) for b in cfg.l2_normalised]
    advs, keys = [x], ["clean"]
    for norm, b, radius in budgets:
        print(f"[{NAME}] BPDA-PGD {norm} budget {b:g} (radius {radius:.3f}) ...", flush=True)
        xa = pgd(eot_logits, x, y, radius, nb_iter=cfg.nb_iter, norm="inf" if norm == "linf" else "2",
                 bounds=bounds, rand_init=True, seed=cfg.seed)
        advs.append(xa.numpy())
        keys.append(f"{norm}_{b:g}")
    out = evaluator.predict(np.concatenate(advs), progress=True)
    n = len(x)
    metrics = {}   # INC accuracy keyed linf_<eps> / l2_<b> (conventions), plus clean
    for i, k in enumerate(keys):
        metrics[k] = float((out["label"][i * n:(i + 1) * n] == y).mean())
        print(f"  {k:12s} INC accuracy {metrics[k] * 100:5.1f}%")
    paper = {"l2_0.005": 0.55} if cfg.dataset == "mnist" else {}
    fig = accuracy_curves(cfg.linf, {"INC under BPDA-PGD (ℓ∞)": [metrics[f"linf_{e:g}"] for e in cfg.linf]},
                          xlabel="ℓ∞ budget", title=f"BPDA attack on INC ({cfg.dataset}, n={n})")
    return write_results(NAME, out=cfg.out, paper_ref="Athalye et al. 2018 (Defense-GAN, l2=0.005: 55%)",
                         dataset=cfg.dataset, config=cfg, metrics=metrics, paper=paper,
                         runtime_s=timer.elapsed, figures={"": fig})

