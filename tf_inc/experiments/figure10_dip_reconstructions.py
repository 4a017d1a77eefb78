"""Figure 10 (§4.4.4): what the Deep Image Prior fit makes of clean and adversarial images.

Rows: x, its DIP fit, x_adv (BIM-20, ε = 0.05 in the paper's [−1, 1] scale, i.e. 0.025 on
MNIST's [0, 1] pixels), its DIP fit; each cell shows the classifier's confidence in the true
class. The fit is the paper's: at most 500 Adam iterations (lr 0.01), stopped once the MSE
falls below 0.005. Shares the protocol code of :mod:`tf_inc.experiments.table2_dip`.

    python scripts/figure10_dip_reconstructions.py
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tf_inc.defences.dip import DIPConfig, DIPInvertAndClassify
from tf_inc.experiments.evaluation import require_mnist
from tf_inc.experiments.results import Timer, write_results
from tf_inc.experiments.table2_dip import Table2DIPConfig, _acc, _labels, eps_key, reconstruction_grid

NAME = "figure10_dip_reconstructions"


@dataclass
class Figure10Config:
    """Figure 10: DIP reconstructions of clean and BIM images (MNIST)."""

    dataset: str = field(default="mnist", metadata={"help": "MNIST", "choices": ["mnist"]})
    n: int = field(default=10, metadata={"help": "images (columns of the grid)"})
    seed: int = field(default=0, metadata={"help": "seed of the networks' random weights and codes"})
    out: str = field(default="results", metadata={"help": "output directory"})
    eps: float = field(default=0.05, metadata={"help": "BIM budget in the paper's [-1, 1] scale (MNIST: eps/2)"})
    bim_steps: int = field(default=20, metadata={"help": "BIM iterations (step 2 eps)"})
    max_iterations: int = field(default=500, metadata={"help": "DIP iteration budget (paper 500)"})
    mse_threshold: float = field(default=DIPConfig.mse_threshold, metadata={"help": "MSE stop ([0, 1] scale)"})
    learning_rate: float = field(default=DIPConfig.learning_rate, metadata={"help": "Adam lr (paper 0.01)"})
    net_scales: int = field(default=Table2DIPConfig.net_scales, metadata={"help": "skip-network scales"})
    net_down: int = field(default=Table2DIPConfig.net_down, metadata={"help": "encoder width"})
    net_up: int = field(default=Table2DIPConfig.net_up, metadata={"help": "decoder width"})
    net_skip: int = field(default=Table2DIPConfig.net_skip, metadata={"help": "skip width"})
    net_code_channels: int = field(default=Table2DIPConfig.net_code_channels, metadata={"help": "code channels"})


def run(cfg: Figure10Config):
    require_mnist(cfg.dataset, NAME)
    from tf_inc.attacks import bim
    from tf_inc.data.mnist import BOUNDS, load_mnist
    from tf_inc.experiments import zoo

    timer = Timer()
    classifier = zoo.mnist_classifier()
    x, y = load_mnist("test", cfg.n)
    t2 = Table2DIPConfig(eps=[cfg.eps], max_iterations=[cfg.max_iterations], mse_threshold=cfg.mse_threshold,
                         learning_rate=cfg.learning_rate, net_scales=cfg.net_scales, net_down=cfg.net_down,
                         net_up=cfg.net_up, net_skip=cfg.net_skip, net_code_channels=cfg.net_code_channels)
    x_adv = bim(classifier, x, y, cfg.eps / 2.0, nb_iter=cfg.bim_steps, bounds=BOUNDS).numpy()
    dip = DIPInvertAndClassify(classifier, t2.dip_config(cfg.max_iterations), net=t2.net_config(), seed=cfg.seed)
    fit = dip.fit(np.concatenate([x, x_adv]))
    n = len(x)
    clean_fit, adv_fit = fit.x_hat[:n], fit.x_hat[n:]
    lab = dip.classify(fit.x_hat).argmax(1)
    metrics = {
        "n": n,
        "classifier_clean_acc": _acc(_labels(classifier, x), y),
        "classifier_adv_acc": _acc(_labels(classifier, x_adv), y),
        "dip_clean_acc": _acc(lab[:n], y),
        "dip_adv_acc": _acc(lab[n:], y),
        "clean/mean_iterations": float(fit.iterations[:n].mean()),
        "adv/mean_iterations": float(fit.iterations[n:].mean()),
        "clean/mean_mse": float(fit.mse[:n].mean()),
        "adv/mean_mse": float(fit.mse[n:].mean()),
        "adv/mse_fit_to_clean": float(np.mean((adv_fit - x) ** 2)),
        "adv/mse_input_to_clean": float(np.mean((x_adv - x) ** 2)),
    }
    print(f"[{NAME}] eps={eps_key(cfg.eps)}: classifier {metrics['classifier_clean_acc']:.2f} clean / "
          f"{metrics['classifier_adv_acc']:.2f} BIM; DIP {metrics['dip_clean_acc']:.2f} / {metrics['dip_adv_acc']:.2f}; "
          f"{metrics['clean/mean_iterations']:.0f} / {metrics['adv/mean_iterations']:.0f} iterations")
    fig = reconstruction_grid(classifier, x, clean_fit, x_adv, adv_fit, y, cfg.eps, BOUNDS,
                              title=f"DIP fits (<= {cfg.max_iterations} it., stop at MSE < {cfg.mse_threshold}); "
                                    "classifier confidence in the true class")
    config = {**cfg.__dict__, "eps_pixels": cfg.eps / 2.0, "mse_scale": "[0, 1] pixels"}
    return write_results(NAME, out=cfg.out, paper_ref="Figure 10", dataset="mnist", config=config,
                         metrics=metrics, paper={}, runtime_s=timer.elapsed, figures={"": fig})
