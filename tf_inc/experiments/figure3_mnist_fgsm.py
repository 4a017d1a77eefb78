"""Figure 3: accuracy of the classifier and of Invert-and-Classify under FGSM.

Untargeted FGSM (paper eq. 8) against the unprotected classifier, for
ε ∈ {0, .05, .1, .15, .2, .25, .3}; INC classifies the projection of the
same adversarial images onto the VAE decoder's range. Also draws the Fig. 4
style reconstruction grid (x, G(z*), x_adv, G(z*_adv) with the classifier's
confidence in the true class).

    python scripts/figure3_mnist_fgsm.py                 # a few hundred test images
    python scripts/figure3_mnist_fgsm.py --n 10000        # the whole test set
    python scripts/figure3_mnist_fgsm.py --n 10000 --run-dir runs/figure3   # resumable after a kill
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List

import numpy as np

from tf_inc.attacks import fgsm_multi_eps
from tf_inc.defences.inc import InvertAndClassify
from tf_inc.experiments import zoo
from tf_inc.experiments.evaluation import (
    STRATEGY_HELP,
    evaluation_strategy,
    predict_labels,
    reconstruction_figure,
    require_mnist,
    results_dir,
)
from tf_inc.experiments.plots import accuracy_curves
from tf_inc.experiments.results import Timer, write_results
from tf_inc.manifold.inversion import InversionConfig
from tf_inc.training.distribute import STRATEGIES

NAME = "figure3_mnist_fgsm"


@dataclass
class Figure3Config:
    """Figure 3 (MNIST, FGSM): classifier vs Invert-and-Classify accuracy."""

    dataset: str = field(default="mnist", metadata={"help": "the figure is MNIST-only", "choices": ["mnist"]})
    n: int = field(default=300, metadata={"help": "number of MNIST test images (10000 = all)"})
    seed: int = field(default=0, metadata={"help": "seed of the inversion restarts"})
    out: str = field(default="results", metadata={"help": "output directory"})
    eps: List[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3],
                             metadata={"help": "FGSM ℓ∞ budgets"})
    steps: int = field(default=InversionConfig.steps, metadata={"help": "inversion Adam steps (paper ~1000)"})
    restarts: int = field(default=InversionConfig.restarts, metadata={"help": "random restarts per image"})
    learning_rate: float = field(default=InversionConfig.learning_rate, metadata={"help": "inversion Adam lr (paper 0.1)"})
    prior_weight: float = field(default=InversionConfig.prior_weight, metadata={"help": "weight of the ||z||² prior term"})
    early_stop: bool = field(default=InversionConfig.early_stop, metadata={"help": "per-image early stopping"})
    patience: int = field(default=InversionConfig.patience, metadata={"help": "early-stopping patience (steps)"})
    preset: str = field(default="paper", metadata={
        "help": "inversion preset: paper (Alg. 1: 1000 constant-lr steps, early stopping) or fast "
                "(<= 400 cosine-decayed steps, early stopping over 50 steps; overrides --steps, --early-stop and "
                "--patience)", "choices": ["paper", "fast"]})
    eta: float = field(default=math.inf, metadata={"help": "rejection threshold on ||G(z*)-x|| (inf = none)"})
    seeding: str = field(default=InversionConfig.seeding, metadata={
        "help": "restart seeding: content (an image's answer does not depend on its batch) or position "
                "(legacy: keyed by batch row, for before/after comparisons)", "choices": ["content", "position"]})
    recon_eps: float = field(default=0.2, metadata={"help": "ε of the reconstruction grid"})
    recon_images: int = field(default=8, metadata={"help": "columns of the reconstruction grid"})
    run_dir: str = field(default="", metadata={
        "help": "resume directory: the inversion's finished chunks are saved here (atomically) and a rerun with "
                "the same settings after a kill skips them; empty = no resume"})
    strategy: str = field(default="default", metadata={"help": STRATEGY_HELP, "choices": list(STRATEGIES)})


def run(cfg: Figure3Config):
    require_mnist(cfg.dataset, NAME, "use table1_attacks for CelebA")
    from tf_inc.data.mnist import BOUNDS, load_mnist

    timer = Timer()
    classifier, generator, _ = zoo.dataset_models("mnist")
    x, y = load_mnist("test", cfg.n)
    eps = [float(e) for e in cfg.eps]

    # --- attack the unprotected classifier (batched, one gradient for all ε)
    advs = [[] for _ in eps]
    for s in range(0, len(x), 500):
        for k, xa in enumerate(fgsm_multi_eps(classifier, x[s:s + 500], y[s:s + 500], eps, BOUNDS)):
            advs[k].append(xa.numpy())
    advs = [np.concatenate(a) for a in advs]
    clf_acc = [float((predict_labels(classifier, a) == y).mean()) for a in advs]

    # --- Invert-and-Classify on every (ε, image) in one batched projection
    inv_cfg = InversionConfig.preset(cfg.preset, steps=cfg.steps, restarts=cfg.restarts,
                                     learning_rate=cfg.learning_rate, prior_weight=cfg.prior_weight,
                                     early_stop=cfg.early_stop, patience=cfg.patience, seeding=cfg.seeding)
    inc = InvertAndClassify(generator, classifier, inv_cfg, eta=cfg.eta, seed=cfg.seed)
    print(f"[{NAME}] inverting {len(eps)} x {len(x)} images ({inv_cfg.restarts} restarts, "
          f"<= {inv_cfg.steps} steps, {cfg.preset} preset) ...", flush=True)
    run_dir = cfg.run_dir or None
    strategy = evaluation_strategy(cfg.strategy)     # images sharded over replicas (same rows)
    out = inc.predict(np.concatenate(advs), progress=True, run_dir=run_dir, strategy=strategy)
    n = len(x)
    inc_acc, inc_acc_reject, reject_rate, recon_l2, mean_steps = [], [], [], [], []
    for k in range(len(eps)):
        sl = slice(k * n, (k + 1) * n)
        correct = out["label"][sl] == y
        rejected = out["rejected"][sl]
        inc_acc.append(float(correct.mean()))
        inc_acc_reject.append(float((correct & ~rejected).mean()))
        reject_rate.append(float(rejected.mean()))
        recon_l2.append(float(out["result"].l2[sl].mean()))
        mean_steps.append(float(out["result"].steps[sl].mean()))
    for e, a, b in zip(eps, clf_acc, inc_acc):
        print(f"  eps={e:<5} classifier {a * 100:5.1f}%   INC {b * 100:5.1f}%")

    metrics = {
        "eps": eps,
        "classifier_acc": clf_acc,
        "inc_acc": inc_acc,
        "inc_acc_with_rejection": inc_acc_reject,
        "inc_reject_rate": reject_rate,
        "inc_recon_l2": recon_l2,
        "inc_mean_steps": mean_steps,
        "inc_total_steps": out["result"].total_steps,
    }
    fig = accuracy_curves(eps, {"no defence": clf_acc, "Invert-and-Classify": inc_acc},
                          xlabel="FGSM ε (ℓ∞)", title=f"MNIST, FGSM (n={n})")

    # --- Fig. 4-style reconstructions
    k_rec = int(np.argmin([abs(e - cfg.recon_eps) for e in eps]))
    m = min(cfg.recon_images, n)
    clean_rec = (out["result"].x_hat[:m] if eps[0] == 0.0
                 else inc.invert(x[:m], run_dir=run_dir, strategy=strategy).x_hat)
    adv_rec = out["result"].x_hat[k_rec * n: k_rec * n + m]
    recon_fig = reconstruction_figure(classifier, x[:m], clean_rec, advs[k_rec][:m], adv_rec, y[:m],
                                      eps[k_rec], BOUNDS)
    return write_results(
        NAME, out=results_dir(cfg.out, strategy), paper_ref="Figure 3", dataset="mnist", config=cfg, metrics=metrics,
        paper={}, runtime_s=timer.elapsed, figures={"": fig, "_reconstructions": recon_fig},
    )

