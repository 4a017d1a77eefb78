"""BPDA (+ EOT) adaptive attack on Invert-and-Classify (Athalye, Carlini & Wagner 2018).

PGD whose gradient passes through INC's projection as the identity (BPDA), optionally
averaged over several inversion seeds (EOT over INC's random restarts). Reports INC
accuracy under ℓ∞ budgets (``linf_<eps>``) and ℓ2 budgets on the whole image
(``l2_<eps>``: ‖δ‖₂ ≤ eps, pixels in [0, 1]).

Literature budgets on this scale: Athalye et al.'s Defense-GAN result (55 % accuracy at
"normalised ℓ2 0.005") divides ‖δ‖₂ by the number of pixels, so it is ‖δ‖₂ ≈ 0.005·784
≈ 3.9 ≈ ``l2_4.0`` on MNIST (the INC authors' later break of Defense-GAN counts ‖δ‖₂ < 4
as in bounds). This script used to read 0.005 as a mean squared error per pixel
(‖δ‖₂ ≈ 2.0), half that radius. It is the quick BPDA number with the script's few
iterations; the strong evaluation (more iterations, restarts, EOT, latent-space and
unrolled attacks, per-image worst case, baselines) is ``scripts/robustness_table.py``.

    python scripts/bpda_attack.py                   # MNIST, 100 test images
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np

from tf_inc.attacks import EOT, pgd
from tf_inc.bounds import dataset_bounds
from tf_inc.defences.inc import InvertAndClassify
from tf_inc.experiments import zoo
from tf_inc.experiments.evaluation import load_eval_data
from tf_inc.experiments.plots import accuracy_curves
from tf_inc.experiments.results import Timer, write_results
from tf_inc.manifold.inversion import InversionConfig

NAME = "bpda_attack"


@dataclass
class BPDAConfig:
    """BPDA/EOT attack on Invert-and-Classify."""

    dataset: str = field(default="mnist", metadata={"help": "mnist or celeba", "choices": ["mnist", "celeba"]})
    n: int = field(default=100, metadata={"help": "number of test images"})
    seed: int = field(default=0, metadata={"help": "seed of INC's restarts at evaluation"})
    out: str = field(default="results", metadata={"help": "output directory"})
    linf: List[float] = field(default_factory=lambda: [0.1, 0.2, 0.3], metadata={"help": "ℓ∞ budgets"})
    l2: List[float] = field(default_factory=lambda: [2.0, 3.0, 4.0],
                            metadata={"help": "ℓ2 budgets, ‖δ‖₂ over the whole image"})
    nb_iter: int = field(default=20, metadata={"help": "PGD iterations"})
    eot_samples: int = field(default=1, metadata={"help": "inversion seeds averaged per gradient (EOT)"})
    attack_steps: int = field(default=200, metadata={"help": "inversion steps inside the attack loop"})
    attack_restarts: int = field(default=1, metadata={"help": "inversion restarts inside the attack loop"})
    eval_steps: int = field(default=InversionConfig.steps, metadata={"help": "inversion steps when evaluating INC"})
    eval_restarts: int = field(default=InversionConfig.restarts, metadata={"help": "inversion restarts when evaluating INC"})


def run(cfg: BPDAConfig):
    timer = Timer()
    bounds = dataset_bounds(cfg.dataset)
    classifier, generator, _ = zoo.dataset_models(cfg.dataset)
    x, y = load_eval_data(cfg.dataset, cfg.n)
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
    budgets = [("linf", e, e) for e in cfg.linf] + [("l2", b, b) for b in cfg.l2]
    advs, keys = [x], ["clean"]
    for norm, b, radius in budgets:
        print(f"[{NAME}] BPDA-PGD {norm} budget {b:g} ...", flush=True)
        xa = pgd(eot_logits, x, y, radius, nb_iter=cfg.nb_iter, norm="inf" if norm == "linf" else "2",
                 bounds=bounds, rand_init=True, seed=cfg.seed)
        advs.append(xa.numpy())
        keys.append(f"{norm}_{float(b)}")
    out = evaluator.predict(np.concatenate(advs), progress=True)
    n = len(x)
    metrics = {}   # INC accuracy keyed linf_<eps> / l2_<b> (conventions), plus clean
    for i, k in enumerate(keys):
        metrics[k] = float((out["label"][i * n:(i + 1) * n] == y).mean())
        print(f"  {k:12s} INC accuracy {metrics[k] * 100:5.1f}%")
    paper = {"l2_4.0": 0.55} if cfg.dataset == "mnist" else {}      # Defense-GAN, Athalye et al.
    fig = accuracy_curves(cfg.linf, {"INC under BPDA-PGD (ℓ∞)": [metrics[f"linf_{float(e)}"] for e in cfg.linf]},
                          xlabel="ℓ∞ budget", title=f"BPDA attack on INC ({cfg.dataset}, n={n})")
    return write_results(NAME, out=cfg.out, paper_ref="Athalye et al. 2018 (Defense-GAN at ‖δ‖₂ ≈ 3.9: 55%)",
                         dataset=cfg.dataset, config=cfg, metrics=metrics, paper=paper,
                         runtime_s=timer.elapsed, figures={"": fig})

