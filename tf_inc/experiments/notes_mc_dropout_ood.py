"""Notes: MC-dropout uncertainty as an out-of-distribution detector (Smith & Gal), on clean, FGSM,
CW and natural adversarial inputs.

The MNIST classifier has dropout 0.5 before its last layer; with the dropout layers kept
on it is queried T = 100 times per image (:class:`tf_inc.detectors.uncertainty.MCDropoutDetector`).
For each set: the MC-averaged accuracy, the mean mutual information (MI) and softmax
variance (SMV), both relative to a separate set of clean images (the notes' "relative"
rows; here clean images of the validation split), and each measure as a detector:
ROC/AUC against the clean test images and the detection rate at a threshold set for a
5 % false-positive rate on the validation images. The adversarial sets are the natural
adversaries experiment's (:func:`tf_inc.experiments.notes_natural_adversaries.adversarial_sets`).
An adaptive attacker who knows the MI detector (PGD on the CW margin plus the MI above its
threshold, MI over 20 dropout masks per step) closes the comparison.

    python scripts/notes_mc_dropout_ood.py
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from tf_inc.attacks.detector_aware import detector_aware_pgd
from tf_inc.detectors.evaluation import detection_metrics, roc_axes, threshold_at_fpr
from tf_inc.detectors.uncertainty import MCDropoutDetector
from tf_inc.experiments import zoo
from tf_inc.experiments.evaluation import predict_labels, require_mnist
from tf_inc.experiments.notes_natural_adversaries import NOTES_FGSM, AdversarialSetsConfig, adversarial_sets
from tf_inc.experiments.results import Timer, write_results

NAME = "notes_mc_dropout_ood"
MEASURES = {"mi": "mutual_information", "smv": "softmax_variance"}

#: the notes' table (their BNN, 100 queries)
_F = NOTES_FGSM
NOTES = {
    "clean/acc": 0.98, f"{_F}/acc": 0.09, "cw/acc": 0.05, "natural/acc": 0.05,
    "clean/mean_mi": 0.0245, f"{_F}/mean_mi": 0.0972, "cw/mean_mi": 0.0385, "natural/mean_mi": 0.203,
    "clean/mean_smv": 6.80e-4, f"{_F}/mean_smv": 3.09e-3, "cw/mean_smv": 1.00e-3, "natural/mean_smv": 6.41e-3,
    "clean/relative_mi": 0.695, f"{_F}/relative_mi": 2.76, "cw/relative_mi": 1.09, "natural/relative_mi": 5.76,
    "clean/relative_smv": 0.670, f"{_F}/relative_smv": 3.04, "cw/relative_smv": 0.983, "natural/relative_smv": 6.31,
}


@dataclass
class MCDropoutConfig(AdversarialSetsConfig):
    """Notes: MC-dropout mutual information and softmax variance on clean/FGSM/CW/natural adversaries."""

    samples: int = field(default=100, metadata={"help": "T: stochastic dropout passes per image (notes: 100)"})
    fpr: float = field(default=0.05, metadata={"help": "false-positive rate of the calibrated thresholds"})
    n_baseline: int = field(default=500, metadata={"help": "separate clean images (validation split): "
                                                           "baseline of the relative measures and thresholds"})
    adaptive_n: int = field(default=100, metadata={"help": "images attacked adaptively (0 = skip)"})
    adaptive_eps: float = field(default=0.3, metadata={"help": "ℓ∞ budget of the adaptive attack"})
    adaptive_iter: int = field(default=100, metadata={"help": "PGD steps of the adaptive attack"})
    adaptive_samples: int = field(default=20, metadata={"help": "dropout masks per attack step"})
    adaptive_lams: List[float] = field(default_factory=lambda: [1.0, 10.0],
                                       metadata={"help": "λ of the detector term, one restart each"})


def run(cfg: MCDropoutConfig):
    require_mnist(cfg.dataset, NAME)
    import matplotlib.pyplot as plt

    from tf_inc.data.mnist import load_mnist, train_val_split

    timer = Timer()
    classifier, generator, encode = zoo.dataset_models("mnist")
    x, y = load_mnist("test", cfg.n)
    _, (x_val, _) = train_val_split()
    x_base = x_val[:cfg.n_baseline]
    names = cfg.set_names()
    sets = adversarial_sets(cfg, classifier, generator, encode, x, y, name=NAME)
    det = MCDropoutDetector(classifier, samples=cfg.samples, seed=cfg.seed)
    print(f"[{NAME}] MC dropout, T={cfg.samples}, on {len(names)} x {len(x)} + {len(x_base)} images ...", flush=True)
    base = det.statistics(x_base)
    stats = {s: det.statistics(sets[s]) for s in names}

    m: Dict[str, object] = {"n": len(x), "n_baseline": len(x_base)}
    for short, key in MEASURES.items():
        thr = threshold_at_fpr(base[key], cfg.fpr)
        m[f"{short}_threshold"] = thr
        for s in names:
            v = stats[s][key]
            m[f"{s}/mean_{short}"] = float(v.mean())
            m[f"{s}/relative_{short}"] = float(v.mean() / base[key].mean())
            m[f"{s}/{short}_detection_rate"] = float((v > thr).mean())
            if s != "clean":
                m[f"{s}/{short}_auc"] = detection_metrics(stats["clean"][key], v, thr)["auc"]
    for s in names:
        m[f"{s}/acc"] = float((stats[s]["label"] == y).mean())
        m[f"{s}/deterministic_acc"] = float((predict_labels(classifier, sets[s]) == y).mean())

    # --- adaptive attack on the MI detector
    if cfg.adaptive_n > 0:
        det.threshold = m["mi_threshold"]
        ok = np.where(stats["clean"]["label"] == y)[0][:cfg.adaptive_n]
        view = det.attack_view(cfg.adaptive_samples)
        print(f"[{NAME}] adaptive attack on the MI detector, {len(ok)} images ...", flush=True)
        for tag, lams in (("unaware", [0.0]), ("aware", list(cfg.adaptive_lams))):
            res = detector_aware_pgd(view, x[ok], y[ok], cfg.adaptive_eps, lams=lams, nb_iter=cfg.adaptive_iter,
                                     seed=cfg.seed)
            st = det.statistics(res.x_adv)
            fooled = predict_labels(classifier, res.x_adv) != y[ok]
            detected = st["mutual_information"] > det.threshold
            m[f"adaptive/{tag}/attack_success"] = float(fooled.mean())
            m[f"adaptive/{tag}/detection_rate"] = float(detected.mean())
            m[f"adaptive/{tag}/undetected_success"] = float((fooled & ~detected).mean())
            m[f"adaptive/{tag}/mean_mi"] = float(st["mutual_information"].mean())
        m["adaptive/n"] = int(len(ok))

    print(f"  {'':9s} {'acc':>6s} {'MI':>8s} {'SMV':>9s} {'rel MI':>7s} {'rel SMV':>8s} {'AUC MI':>7s} {'AUC SMV':>8s}")
    for s in names:
        auc_mi = m.get(f"{s}/mi_auc", float("nan"))
        auc_smv = m.get(f"{s}/smv_auc", float("nan"))
        print(f"  {s:9s} {m[s + '/acc'] * 100:5.1f}% {m[s + '/mean_mi']:8.4f} {m[s + '/mean_smv']:9.2e} "
              f"{m[s + '/relative_mi']:7.3f} {m[s + '/relative_smv']:8.3f} {auc_mi:7.3f} {auc_smv:8.3f}")

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, (short, key) in zip(axes[:2], MEASURES.items()):
        roc_axes(ax, {s: (stats["clean"][key], stats[s][key]) for s in names if s != "clean"},
                 title=f"MC dropout {key.replace('_', ' ')} (T={cfg.samples})", mark_fpr=cfg.fpr)
    ax = axes[2]
    data = [np.log10(stats[s]["mutual_information"] + 1e-8) for s in names]
    ax.boxplot(data)
    ax.set_xticks(range(1, len(names) + 1), [s.replace("fgsm_", "FGSM ") for s in names], fontsize=8)
    ax.set_ylabel("log10 mutual information")
    ax.set_title("MI per input set", fontsize=9)
    fig.tight_layout()
    return write_results(NAME, out=cfg.out, paper_ref="notes: MC-dropout OoD detection (Smith & Gal)",
                         dataset="mnist", config=cfg, metrics=m, paper=dict(NOTES), runtime_s=timer.elapsed,
                         figures={"": fig})
