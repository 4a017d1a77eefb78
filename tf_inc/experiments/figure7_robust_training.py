"""Figure 7: the cross-entropy and adversarial loss components during robust training (eq. 10).

Trains (or resumes) the robust classifier, plots both components per step, and reports
clean accuracy of both classifiers and the min-max attack's numbers against both.

    python scripts/figure7_robust_training.py --iterations 2000
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import numpy as np

from tf_inc.defences.robust_training import (
    RobustTrainingConfig,
    robust_run_dir,
    train_robust_classifier,
)
from tf_inc.experiments import zoo
from tf_inc.experiments.evaluation import accuracy, load_eval_data
from tf_inc.experiments.minmax_report import PAPER, MinMaxScriptConfig, attack_metrics
from tf_inc.experiments.results import Timer, write_results
from tf_inc.paths import model_path

NAME = "figure7_robust_training"


@dataclass
class Figure7Config(MinMaxScriptConfig):
    """Figure 7: robust manifold training curves and its effect."""

    train_epochs: int = field(default=RobustTrainingConfig.epochs, metadata={"help": "training rounds"})
    train_steps_per_epoch: int = field(default=RobustTrainingConfig.steps_per_epoch,
                                       metadata={"help": "steps per round"})
    attack_steps: int = field(default=RobustTrainingConfig.attack_steps,
                              metadata={"help": "min-max steps per adversarial batch (paper 500)"})
    every_k: int = field(default=RobustTrainingConfig.every_k, metadata={"help": "adversarial batch every k steps"})
    mu: float = field(default=RobustTrainingConfig.mu, metadata={"help": "adversarial loss weight"})
    attack_divergences: List[str] = field(default_factory=lambda: list(RobustTrainingConfig().attack_divergences),
                                          metadata={"help": "divergences of the training attack (cycled)"})
    run_dir: str = field(default="", metadata={"help": "training run dir (default runs/<dataset>_classifier_robust)"})
    n_test: int = field(default=10000, metadata={"help": "test images for clean accuracy"})


def run(cfg: Figure7Config):
    timer = Timer()
    classifier, generator, _ = zoo.dataset_models(cfg.dataset)
    run_dir = Path(cfg.run_dir or robust_run_dir(cfg.dataset))
    rcfg = RobustTrainingConfig(dataset=cfg.dataset, epochs=cfg.train_epochs,
                                steps_per_epoch=cfg.train_steps_per_epoch, attack_steps=cfg.attack_steps,
                                every_k=cfg.every_k, mu=cfg.mu, attack_divergences=cfg.attack_divergences,
                                budget_msd=cfg.budget_msd, seed=cfg.seed,
                                run_dir=str(run_dir))
    robust, _ = train_robust_classifier(rcfg, verbose=2)   # resumes / finishes instantly when done
    steps = [json.loads(l) for l in (run_dir / "steps.jsonl").read_text().splitlines()] \
        if (run_dir / "steps.jsonl").exists() else []
    x, y = load_eval_data(cfg.dataset, cfg.n_test)
    metrics = {"clean_acc": accuracy(classifier, x, y), "robust/clean_acc": accuracy(robust, x, y)}
    print(f"[{NAME}] min-max attack on both classifiers ({cfg.iterations} steps) ...", flush=True)
    metrics.update(attack_metrics(generator, classifier, cfg)[1])
    metrics.update(attack_metrics(generator, robust, cfg, "robust/")[1])
    for k, v in metrics.items():
        print(f"  {k:28s} {v:.4f}")

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    if steps:
        s = np.array([r["step"] for r in steps])
        ce = np.array([r["ce"] for r in steps])
        adv = np.array([r["adv"] for r in steps])

        def smooth(v, k=25):
            return np.convolve(v, np.ones(k) / k, mode="valid") if len(v) > k else v

        ax.plot(s[: len(smooth(ce))], smooth(ce), label="cross-entropy")
        m = adv >= 0
        ax.plot(s[m][: len(smooth(adv[m], 5))], smooth(adv[m], 5), label="adversarial (min-max pairs)")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"Robust manifold training ({cfg.dataset})")
    metrics["robust_model"] = model_path(f"{cfg.dataset}_classifier_robust.keras").name    # in the models dir
    paper = {k: v for k, v in PAPER.items() if k in metrics}
    return write_results(NAME, out=cfg.out, paper_ref="Figure 7 / §4.3", dataset=cfg.dataset, config=cfg,
                         metrics=metrics, paper=paper, runtime_s=timer.elapsed, figures={"": fig})

