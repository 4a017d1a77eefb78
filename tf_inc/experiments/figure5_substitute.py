"""Figure 5: black-box substitute-model attack on Invert-and-Classify (paper §4.2.2).

A differentiable substitute with the inner classifier's architecture is trained on
images labelled **by the INC model**: clean training images plus images adversarial
to the inner classifier C (FGSM on C, the white-box hint the paper gives the
attacker), optionally grown by Papernot-style Jacobian augmentation. FGSM and
BIM-20 examples crafted on the substitute are fed to INC; the figure shows the
transfer rate (fraction INC misclassifies) on test images that both the substitute
and INC classify correctly.

    python scripts/figure5_substitute.py
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np

from tf_inc.attacks import bim, fgsm, fgsm_multi_eps, jacobian_augment, train_substitute
from tf_inc.bounds import dataset_bounds
from tf_inc.defences.inc import InvertAndClassify
from tf_inc.errors import InputError
from tf_inc.experiments import zoo
from tf_inc.experiments.evaluation import (
    inversion_config,
    load_eval_data,
    predict_labels,
)
from tf_inc.experiments.plots import accuracy_curves
from tf_inc.experiments.results import Timer, write_results
from tf_inc.manifold.inversion import InversionConfig

NAME = "figure5_substitute"


@dataclass
class Figure5Config:
    """Figure 5: transferability of substitute-model attacks to INC."""

    dataset: str = field(default="mnist", metadata={"help": "mnist or celeba", "choices": ["mnist", "celeba"]})
    n: int = field(default=200, metadata={"help": "test images for the transfer evaluation"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    out: str = field(default="results", metadata={"help": "output directory"})
    eps: List[float] = field(default_factory=lambda: [0.01, 0.05, 0.1, 0.2], metadata={"help": "attack budgets"})
    n_substitute: int = field(default=1000, metadata={"help": "clean training images labelled by INC"})
    adv_eps: float = field(default=0.1, metadata={"help": "FGSM ε of the adversarial-to-C training images"})
    jacobian_rounds: int = field(default=0, metadata={"help": "Papernot Jacobian augmentation rounds"})
    jacobian_lambda: float = field(default=0.1, metadata={"help": "Jacobian augmentation step λ"})
    substitute_epochs: int = field(default=10, metadata={"help": "substitute training epochs"})
    bim_iter: int = field(default=20, metadata={"help": "BIM iterations (paper: 20)"})
    steps: int = field(default=0, metadata={"min": 0, "help": "INC inversion steps (0 = dataset default)"})
    restarts: int = field(default=InversionConfig.restarts, metadata={"help": "INC inversion restarts"})


def run(cfg: Figure5Config):
    timer = Timer()
    bounds = dataset_bounds(cfg.dataset)
    classifier, generator, _ = zoo.dataset_models(cfg.dataset)
    inv = inversion_config(cfg.dataset, cfg.steps, cfg.restarts)
    inc = InvertAndClassify(generator, classifier, inv, seed=cfg.seed)

    # --- the attacker's training set, labelled by querying the INC model
    x_tr, y_tr = load_eval_data(cfg.dataset, cfg.n_substitute, split="train")
    x_adv_c = fgsm(classifier, x_tr, y_tr, cfg.adv_eps, bounds).numpy()
    x_sub = np.concatenate([x_tr, x_adv_c])
    print(f"[{NAME}] labelling {len(x_sub)} images with INC ...", flush=True)
    lab = inc.predict(x_sub, progress=True)["label"]
    substitute = train_substitute(cfg.dataset, x_sub, lab, cfg.substitute_epochs, cfg.seed)
    for r in range(cfg.jacobian_rounds):
        x_new = jacobian_augment(substitute, x_sub, lab, cfg.jacobian_lambda, bounds)
        print(f"[{NAME}] Jacobian round {r + 1}: labelling {len(x_new)} new images ...", flush=True)
        lab = np.concatenate([lab, inc.predict(x_new, progress=True)["label"]])
        x_sub = np.concatenate([x_sub, x_new])
        substitute = train_substitute(cfg.dataset, x_sub, lab, cfg.substitute_epochs, cfg.seed)

    # --- transfer evaluation on test images both models get right
    x, y = load_eval_data(cfg.dataset, cfg.n)
    inc_clean = inc.predict(x)["label"]
    sub_clean = predict_labels(substitute, x)
    keep = (sub_clean == y) & (inc_clean == y)
    x, y = x[keep], y[keep]
    print(f"[{NAME}] {len(x)} of {cfg.n} test images are classified correctly by both models", flush=True)
    if len(x) == 0:
        raise InputError(f"none of the {cfg.n} test images is classified correctly by both INC and the substitute, "
                         "so no transfer rate can be measured: raise --n (or train the substitute longer)")
    advs = {}
    for e, xa in zip(cfg.eps, fgsm_multi_eps(substitute, x, y, cfg.eps, bounds)):
        advs[f"fgsm_{e:g}"] = xa.numpy()
    for e, xa in zip(cfg.eps, bim(substitute, x, y, cfg.eps, nb_iter=cfg.bim_iter, bounds=bounds)):
        advs[f"bim_{e:g}"] = xa.numpy()
    keys = list(advs)
    out = inc.predict(np.concatenate([advs[k] for k in keys]), progress=True)
    n = len(x)
    metrics = {"n_evaluated": n, "substitute_agreement_with_inc": float((sub_clean == inc_clean).mean())}
    for i, k in enumerate(keys):
        metrics[f"{k}/transfer_rate"] = float((out["label"][i * n:(i + 1) * n] != y).mean())
        metrics[f"{k}/substitute_success"] = float((predict_labels(substitute, advs[k]) != y).mean())
        print(f"  {k:10s} fools substitute {metrics[f'{k}/substitute_success'] * 100:5.1f}%   "
              f"transfers to INC {metrics[f'{k}/transfer_rate'] * 100:5.1f}%")
    fig = accuracy_curves(cfg.eps, {
        "FGSM": [metrics[f"fgsm_{e:g}/transfer_rate"] for e in cfg.eps],
        "BIM-20": [metrics[f"bim_{e:g}/transfer_rate"] for e in cfg.eps],
    }, xlabel="ε (ℓ∞)", title=f"Substitute attacks transferring to INC ({cfg.dataset}, n={n})")
    fig.axes[0].set_ylabel("transfer rate to INC (%)")
    return write_results(NAME, out=cfg.out, paper_ref="Figure 5", dataset=cfg.dataset, config=cfg,
                         metrics=metrics, paper={}, runtime_s=timer.elapsed, figures={"": fig})

