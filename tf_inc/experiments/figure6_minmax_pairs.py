"""Figure 6: pairs G(z), G(z') found by the overpowered min-max attack (paper eq. 9).

Attacks the standard classifier and the robust one (trained if missing), reports
the paper's numbers (% valid, mean KL over valid pairs, % of valid pairs classified
differently) and the end-to-end INC check, and draws the pairs with both
classifiers' predictions (standard | robust).

    python scripts/figure6_minmax_pairs.py --iterations 2000
"""
from __future__ import annotations

from dataclasses import dataclass

from tf_inc.bounds import dataset_bounds
from tf_inc.experiments import zoo
from tf_inc.experiments.minmax_report import (
    PAPER,
    MinMaxScriptConfig,
    attack_metrics,
    inc_disagreement,
    pair_grid,
)
from tf_inc.experiments.results import Timer, write_results
from tf_inc.experiments.zoo import robust_classifier
from tf_inc.manifold.minmax import evaluate_pairs

NAME = "figure6_minmax_pairs"


@dataclass
class Figure6Config(MinMaxScriptConfig):
    """Figure 6: min-max pairs against the standard and the robust classifier."""


def run(cfg: Figure6Config):
    timer = Timer()
    classifier, generator, _ = zoo.dataset_models(cfg.dataset)
    robust = robust_classifier(cfg.dataset)
    print(f"[{NAME}] min-max attack on the standard classifier ({cfg.n} pairs, {cfg.iterations} steps) ...",
          flush=True)
    res, metrics = attack_metrics(generator, classifier, cfg)
    print(f"[{NAME}] min-max attack on the robust classifier ...", flush=True)
    metrics.update(attack_metrics(generator, robust, cfg, "robust/")[1])
    if cfg.inc_check:
        metrics.update(inc_disagreement(generator, classifier, res, cfg.dataset, cfg.inc_steps, cfg.seed))
    for k, v in metrics.items():
        print(f"  {k:28s} {v:.4f}")
    fig = pair_grid(res, dataset_bounds(cfg.dataset), evaluate_pairs(robust, res.x, res.x2),
                    title="pairs found against the standard classifier — class:confidence (standard | robust)")
    paper = {k: v for k, v in PAPER.items() if k in metrics}
    return write_results(NAME, out=cfg.out, paper_ref="Figure 6 / §4.3", dataset=cfg.dataset, config=cfg,
                         metrics=metrics, paper=paper, runtime_s=timer.elapsed, figures={"": fig})

