"""Shared pieces of the min-max / robust-training scripts (Figures 6–9)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from tf_inc.manifold.divergences import DIVERGENCES
from tf_inc.manifold.minmax import (
    MinMaxAttack,
    MinMaxConfig,
    PairResult,
    mean_over_valid,
    pair_metrics,
)

# paper §4.3, CelebA
PAPER = {
    "valid_frac": 0.93, "mean_kl": 2.47, "differ_frac": 0.57,
    "robust/valid_frac": 1.00, "robust/mean_kl": 0.08, "robust/differ_frac": 0.22,
    "old_pairs_on_robust/mean_kl": 0.007, "old_pairs_on_robust/differ_frac": 0.18,
    "clean_acc": 0.97, "robust/clean_acc": 0.97,
}


@dataclass
class MinMaxScriptConfig:
    """Common flags of the min-max scripts (paper values as defaults)."""

    dataset: str = field(default="mnist", metadata={"help": "mnist or celeba", "choices": ["mnist", "celeba"]})
    n: int = field(default=32, metadata={"help": "number of pairs (slots)"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    out: str = field(default="results", metadata={"help": "output directory"})
    iterations: int = field(default=MinMaxConfig.iterations, metadata={"help": "min-max iterations (paper: 10 000)"})
    budget_msd: float = field(default=MinMaxConfig.budget_msd, metadata={"help": "per-pixel η²/D (paper: 2e-4)"})
    valid_msd: float = field(default=MinMaxConfig.valid_msd, metadata={"help": "validity threshold (paper: 0.0005)"})
    divergence: str = field(default=MinMaxConfig.divergence, metadata={
        "help": "the attack's divergence for the main metrics: l2 (paper eq. 9), sym_ce (original code) or sym_kl",
        "choices": list(DIVERGENCES)})
    also_divergences: List[str] = field(default_factory=lambda: ["sym_ce"], metadata={
        "help": "further attacks, reported under '<divergence>/' keys (default: the original code's sym_ce)",
        "choices": list(DIVERGENCES)})
    inc_check: bool = field(default=True, metadata={"help": "feed the pairs through INC as the paper does"})
    inc_steps: int = field(default=500, metadata={"help": "INC steps for the end-to-end check"})
    minmax_run_dir: str = field(default="", metadata={
        "help": "checkpoint directory of the min-max searches: each saves its whole state every "
                "--minmax-segment-steps steps (atomically) and a rerun with the same settings after a kill "
                "resumes from there, or skips a finished search; empty = no checkpoints"})
    minmax_segment_steps: int = field(default=500, metadata={
        "help": "min-max steps between checkpoints (a multiple of 50, the convergence-log interval)"})


def minmax_config(cfg) -> MinMaxConfig:
    return MinMaxConfig(iterations=cfg.iterations, budget_msd=cfg.budget_msd, valid_msd=cfg.valid_msd,
                        divergence=cfg.divergence)


def attack(generator, classifier, cfg, budget: Optional[float] = None, divergence: Optional[str] = None) -> PairResult:
    mm = minmax_config(cfg)
    if budget is not None:
        mm.budget_msd = budget
    if divergence is not None:
        mm.divergence = divergence
    run_dir = getattr(cfg, "minmax_run_dir", "") or None        # resumable search (segment checkpoints)
    return MinMaxAttack(generator, classifier, mm)(cfg.n, seed=cfg.seed, run_dir=run_dir,
                                                   segment_steps=getattr(cfg, "minmax_segment_steps", 500),
                                                   progress=True)


def attack_metrics(generator, classifier, cfg, prefix: str = "") -> Tuple[PairResult, Dict[str, float]]:
    """The main attack (``cfg.divergence``) and every ``cfg.also_divergences`` one.

    Returns the main attack's pairs and the metrics of all of them: the main ones under
    ``prefix``, the others under ``prefix + "<divergence>/"``. The divergence matters:
    sym_ce contains the entropies of both outputs, so it also rewards pairs where the
    classifier is merely uncertain; ``confident_differ_frac`` separates those out.
    """
    res = attack(generator, classifier, cfg)
    metrics = metrics_for(res, prefix)
    for d in cfg.also_divergences:
        if d != cfg.divergence:
            metrics.update(metrics_for(attack(generator, classifier, cfg, divergence=d), f"{prefix}{d}/"))
    return res, metrics


def inc_disagreement(generator, classifier, res: PairResult, dataset: str, steps: int, seed: int,
                     restarts: int = 2) -> Dict[str, float]:
    """The paper's end-to-end check: how often INC classifies G(z) and G(z') differently.

    The pair images are clipped to the data range first: INC accepts only valid images,
    and a generator without an output squashing (BEGAN) can step slightly outside it.
    """
    from tf_inc.defences.inc import InvertAndClassify
    from tf_inc.experiments.evaluation import inversion_config

    lo, hi = generator.bounds
    inc = InvertAndClassify(generator, classifier, inversion_config(dataset, steps, restarts), seed=seed)
    lab = inc.predict(np.clip(np.concatenate([res.x, res.x2]), lo, hi))["label"]
    n = len(res.x)
    return {"inc_disagree_frac": mean_over_valid(lab[:n] != lab[n:], res.valid)}


def pair_grid(res: PairResult, bounds, other_p: Optional[Dict[str, np.ndarray]] = None, k: int = 8,
              title: str = ""):
    """G(z) / G(z') rows; captions: predicted class and confidence of each classifier."""
    from tf_inc.experiments.plots import image_grid

    order = np.argsort(-(res.valid.astype(float) * 10 + (res.p.argmax(1) != res.p2.argmax(1))))[:k]

    def cap(p, i):
        return f"{p[i].argmax()}:{p[i].max() * 100:.0f}%"

    rows = [res.x[order], res.x2[order]]
    caps = [[cap(res.p, i) for i in order], [cap(res.p2, i) for i in order]]
    if other_p is not None:
        caps = [[c + " | " + cap(other_p["p"], i) for c, i in zip(caps[0], order)],
                [c + " | " + cap(other_p["p2"], i) for c, i in zip(caps[1], order)]]
    return image_grid(rows, ["G(z)", "G(z')"], caps, bounds=bounds, title=title)


def metrics_for(res: PairResult, prefix: str = "") -> Dict[str, float]:
    return pair_metrics(res.p, res.p2, res.valid, prefix)
