"""Figure 8: convergence of the min-max attack (mean ||C(G(z)) − C(G(z'))||) against the
standard and the robust classifier, for two η² values.

    python scripts/figure8_attack_convergence.py --iterations 2000
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tf_inc.experiments import zoo
from tf_inc.experiments.minmax_report import (
    PAPER,
    MinMaxScriptConfig,
    attack,
    metrics_for,
)
from tf_inc.experiments.results import Timer, write_results
from tf_inc.experiments.zoo import robust_classifier

NAME = "figure8_attack_convergence"


@dataclass
class Figure8Config(MinMaxScriptConfig):
    """Figure 8: attack convergence for two budgets, standard vs robust classifier."""

    second_budget_msd: float = field(default=4e-4, metadata={"help": "the second per-pixel η²/D"})


def run(cfg: Figure8Config):
    import matplotlib.pyplot as plt

    timer = Timer()
    classifier, generator, _ = zoo.dataset_models(cfg.dataset)
    robust = robust_classifier(cfg.dataset)
    d = int(generator.image_shape[0] * generator.image_shape[1] * generator.image_shape[2])
    metrics, curves = {}, {}
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for budget, style in ((cfg.budget_msd, "-"), (cfg.second_budget_msd, "--")):
        for name, clf in (("standard", classifier), ("robust", robust)):
            print(f"[{NAME}] {name}, per-pixel budget {budget:g} ...", flush=True)
            res = attack(generator, clf, cfg, budget=budget)
            h = res.history
            ax.plot(h["step"], h["mean_output_l2"], style, color="C0" if name == "standard" else "C2",
                    label=f"{name}, η²={budget * d:.3g}")
            curves[f"{name}/budget_{budget:g}"] = h["mean_output_l2"].tolist()
            if budget == cfg.budget_msd:
                metrics.update(metrics_for(res, "" if name == "standard" else "robust/"))
    metrics["curve_steps"] = list(h["step"].tolist())
    metrics.update({f"curve/{k}": v for k, v in curves.items()})
    ax.set_xlabel("min-max iteration")
    ax.set_ylabel("mean ||C(G(z)) − C(G(z'))||₂")
    ax.legend()
    ax.set_title(f"Min-max attack convergence ({cfg.dataset}, {cfg.n} pairs)")
    paper = {k: v for k, v in PAPER.items() if k in metrics}
    return write_results(NAME, out=cfg.out, paper_ref="Figure 8", dataset=cfg.dataset, config=cfg,
                         metrics=metrics, paper=paper, runtime_s=timer.elapsed, figures={"": fig})

