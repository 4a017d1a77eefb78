"""Figure 9: softmax outputs of the original (blue) and the robust (green) classifier on the
borderline pairs found by the attack against the original classifier.

    python scripts/figure9_borderline_softmax.py --iterations 2000
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tf_inc.experiments import zoo
from tf_inc.experiments.minmax_report import (
    PAPER,
    MinMaxScriptConfig,
    attack,
    metrics_for,
)
from tf_inc.experiments.results import Timer, write_results
from tf_inc.experiments.zoo import robust_classifier
from tf_inc.manifold.minmax import evaluate_pairs, pair_metrics

NAME = "figure9_borderline_softmax"


@dataclass
class Figure9Config(MinMaxScriptConfig):
    """Figure 9: old pairs on the robust classifier."""


def run(cfg: Figure9Config):
    import matplotlib.pyplot as plt

    timer = Timer()
    classifier, generator, _ = zoo.dataset_models(cfg.dataset)
    robust = robust_classifier(cfg.dataset)
    res = attack(generator, classifier, cfg)
    rob = evaluate_pairs(robust, res.x, res.x2)
    metrics = {**metrics_for(res), **pair_metrics(rob["p"], rob["p2"], res.valid, "old_pairs_on_robust/")}
    for d in cfg.also_divergences:     # the same for pairs found with the other divergences
        if d != cfg.divergence:
            other = attack(generator, classifier, cfg, divergence=d)
            o = evaluate_pairs(robust, other.x, other.x2)
            metrics.update({**metrics_for(other, f"{d}/"),
                            **pair_metrics(o["p"], o["p2"], other.valid, f"{d}/old_pairs_on_robust/")})
    for k, v in metrics.items():
        print(f"  {k:34s} {v:.4f}")
    show = np.where(res.valid & (res.p.argmax(1) != res.p2.argmax(1)))[0][:4]
    if len(show) == 0:
        show = np.arange(min(4, cfg.n))
    fig, axes = plt.subplots(len(show), 4, figsize=(10, 2.1 * len(show)), squeeze=False)
    k = res.p.shape[1]
    from tf_inc.experiments.plots import to_display

    for row, i in enumerate(show):
        for col, (img, p_std, p_rob, lab) in enumerate(((res.x[i], res.p[i], rob["p"][i], "G(z)"),
                                                        (res.x2[i], res.p2[i], rob["p2"][i], "G(z')"))):
            a_img, a_bar = axes[row][2 * col], axes[row][2 * col + 1]
            im = to_display(img, generator.bounds)
            a_img.imshow(im, cmap="gray" if im.ndim == 2 else None)
            a_img.set_xticks([]), a_img.set_yticks([])
            a_img.set_title(lab, fontsize=8)
            a_bar.bar(np.arange(k) - 0.2, p_std, 0.4, color="C0", label="original")
            a_bar.bar(np.arange(k) + 0.2, p_rob, 0.4, color="C2", label="robust")
            a_bar.set_ylim(0, 1)
            a_bar.set_xticks(range(k))
    axes[0][1].legend(fontsize=7)
    fig.suptitle("softmax on borderline pairs found against the original classifier")
    fig.tight_layout()
    paper = {k: v for k, v in PAPER.items() if k in metrics}
    return write_results(NAME, out=cfg.out, paper_ref="Figure 9", dataset=cfg.dataset, config=cfg,
                         metrics=metrics, paper=paper, runtime_s=timer.elapsed, figures={"": fig})

