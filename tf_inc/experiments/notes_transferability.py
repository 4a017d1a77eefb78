"""Notes: the transferability matrix, and Liu et al.'s ensemble attack.

The lecture: adversarial examples made for one model fool others, across architectures
(black-box attacks rest on it), and crafting them on an *ensemble* of models makes them
transfer almost always (Liu et al. 2017). Three differently built MNIST classifiers — the
zoo CNN (Deep-MNIST net), an MLP and a wider all-convolutional CNN with another seed
(:mod:`tf_inc.models.extra_classifiers`) — each serve as source of untargeted FGSM and PGD
(ℓ∞, ε = 0.2) and every model is a target. The ensemble row crafts on the fused softmax of
the *other* models (the target is held out, as in Liu et al.). Entries are success rates:
the share of adversarial images the target misclassifies, on test images every model gets
right. Diagonal = white box.

    python scripts/notes_transferability.py
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tf_inc.attacks import fgsm, pgd
from tf_inc.attacks.transfer import Ensemble, commonly_correct, predict, transfer_matrix
from tf_inc.experiments import zoo
from tf_inc.experiments.notes_common import require_mnist
from tf_inc.experiments.results import Timer, write_results

NAME = "notes_transferability"
MODELS = ("cnn", "mlp", "cnn_wide")


@dataclass
class TransferabilityConfig:
    """Transfer of FGSM/PGD between three MNIST classifiers and from their ensemble."""

    dataset: str = field(default="mnist", metadata={"help": "MNIST only", "choices": ["mnist"]})
    n: int = field(default=1000, metadata={"help": "first n test images (those all models get right are used)"})
    seed: int = field(default=0, metadata={"help": "PGD random-start seed"})
    out: str = field(default="results", metadata={"help": "output directory"})
    eps: float = field(default=0.2, metadata={"help": "ℓ∞ budget of both attacks"})
    pgd_steps: int = field(default=40, metadata={"help": "PGD steps (step 2.5·ε/steps, random start)"})
    batch: int = field(default=250, metadata={"help": "images per attack call"})


def load_models():
    from tf_inc.models.extra_classifiers import load_or_train

    return {"cnn": zoo.mnist_classifier(), "mlp": load_or_train("mlp"), "cnn_wide": load_or_train("cnn_wide")}


def _heatmap(ax, mat, rows, cols, title):
    ax.imshow(mat * 100, vmin=0, vmax=100, cmap="magma")
    ax.set_xticks(range(len(cols)), cols, rotation=30)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            ax.text(j, i, f"{mat[i, j] * 100:.0f}", ha="center", va="center",
                    color="black" if mat[i, j] > 0.6 else "white", fontsize=9)
    ax.set_title(title, fontsize=10)


def run(cfg: TransferabilityConfig):
    require_mnist(cfg.dataset, NAME)
    from tf_inc.data.mnist import load_mnist

    timer = Timer()
    models = load_models()
    x_all, y_all = load_mnist("test", cfg.n)
    metrics = {f"clean_acc/{k}": float((predict(m, x_all) == y_all).mean()) for k, m in models.items()}
    keep = commonly_correct(models, x_all, y_all)
    x, y = x_all[keep], y_all[keep]
    metrics["n_evaluated"] = int(len(x))
    attacks = {
        "fgsm": lambda m, xb, yb: fgsm(m, xb, yb, cfg.eps),
        "pgd": lambda m, xb, yb: pgd(m, xb, yb, cfg.eps, nb_iter=cfg.pgd_steps, seed=cfg.seed),
    }
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(attacks), figsize=(5.2 * len(attacks), 4.6))
    for ax, (a_name, attack) in zip(np.atleast_1d(axes), attacks.items()):
        print(f"[{NAME}] {a_name} (ε={cfg.eps}) on {len(x)} images from each source ...", flush=True)
        mat = transfer_matrix(models, models, x, y, attack, batch=cfg.batch)
        ens = {}
        for t_name in MODELS:
            others = Ensemble([models[s] for s in MODELS if s != t_name])
            ens[t_name] = transfer_matrix({"ensemble": others}, {t_name: models[t_name]}, x, y, attack,
                                          batch=cfg.batch)["ensemble"][t_name]
        for s in MODELS:
            for t in MODELS:
                metrics[f"{a_name}/{s}->{t}"] = mat[s][t]
        for t in MODELS:
            metrics[f"{a_name}/ensemble->{t}"] = ens[t]
        metrics[f"{a_name}/mean_white_box"] = float(np.mean([mat[s][s] for s in MODELS]))
        metrics[f"{a_name}/mean_transfer"] = float(np.mean([mat[s][t] for s in MODELS for t in MODELS if s != t]))
        metrics[f"{a_name}/mean_ensemble_transfer"] = float(np.mean(list(ens.values())))
        grid = np.array([[mat[s][t] for t in MODELS] for s in MODELS] + [[ens[t] for t in MODELS]])
        _heatmap(ax, grid, list(MODELS) + ["ensemble\n(target held out)"], list(MODELS),
                 f"{a_name.upper()} ε={cfg.eps}: success on target (%)")
        print(f"  white box {metrics[f'{a_name}/mean_white_box']:.3f}, transfer "
              f"{metrics[f'{a_name}/mean_transfer']:.3f}, ensemble {metrics[f'{a_name}/mean_ensemble_transfer']:.3f}",
              flush=True)
    fig.suptitle(f"MNIST transferability (n={len(x)} images every model gets right)", fontsize=10)
    fig.tight_layout()
    return write_results(NAME, out=cfg.out, paper_ref="notes: transferability (lecture; Liu et al. 2017)",
                         dataset="mnist", config=cfg, metrics=metrics, paper={}, runtime_s=timer.elapsed,
                         figures={"": fig})

