"""Notes: where adversarial inputs land in the network's representation, layer by layer.

The blog post embeds the CNN's representation of clean 2s, their targeted adversarial
versions (2 → 6, iterative FGSM) and the test set with t-SNE and PCA, and observes that the
adversarial points leave the 2 cluster for the 6 cluster; then it draws, for each conv
layer, the channel-wise maximum of ``|a(x_adv) − a(x)|`` and observes that the small input
change grows through the layers (and fades out when the attack fails).

Here the representation is the *penultimate* layer of our classifier (the input of its
logit layer, ``fc1`` for the Deep-MNIST net). PCA is fitted on the clean background
(:mod:`sklearn.decomposition`), t-SNE (:mod:`sklearn.manifold`) on everything. Measured:
where the adversarial points land (majority of their k nearest clean neighbours, nearest
class centroid), and per layer the relative change ``‖a(x_adv) − a(x)‖ / ‖a(x)‖`` for
successful and failed attacks.

    python scripts/notes_representation_plots.py
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import keras
import numpy as np

from tf_inc.attacks.targeted import target_success, targeted_ifgsm
from tf_inc.experiments import zoo
from tf_inc.experiments.notes_common import correct_test_images, require_mnist
from tf_inc.experiments.results import Timer, write_results

NAME = "notes_representation_plots"
SKIP = (keras.layers.InputLayer, keras.layers.Flatten, keras.layers.Dropout)


def penultimate(model: keras.Model) -> keras.Model:
    """``x -> input of the model's last layer`` (the representation its linear read-out sees)."""
    return keras.Model(model.input, model.layers[-1].input, name=f"{model.name}_penultimate")


def activation_layers(model: keras.Model) -> List[str]:
    """Names of the layers whose outputs are compared (everything but input/flatten/dropout)."""
    return [layer.name for layer in model.layers if not isinstance(layer, SKIP)]


def activations(model: keras.Model, x, names: Optional[List[str]] = None, batch: int = 500) -> Dict[str, np.ndarray]:
    """``{layer name: outputs on x}`` for ``names`` (default :func:`activation_layers`)."""
    names = names or activation_layers(model)
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    outs = [probe(x[s:s + batch], training=False) for s in range(0, len(x), batch)]
    return {n: np.concatenate([np.asarray(o[i]) for o in outs]) for i, n in enumerate(names)}


def relative_change(a, a_adv) -> np.ndarray:
    """Per image ``‖a_adv − a‖₂ / ‖a‖₂`` over all units of a layer."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    d = np.asarray(a_adv, np.float64).reshape(len(a), -1) - a
    return np.linalg.norm(d, axis=1) / np.maximum(np.linalg.norm(a, axis=1), 1e-12)


def difference_map(a, a_adv) -> np.ndarray:
    """The blog's per-layer picture: max over channels of ``|a_adv − a|`` (conv maps: (N, H, W))."""
    d = np.abs(np.asarray(a_adv) - np.asarray(a))
    return d.max(axis=-1) if d.ndim == 4 else d


def knn_labels(ref, ref_labels, query, k: int = 10) -> np.ndarray:
    """Majority label of each query's ``k`` nearest reference points (Euclidean)."""
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=k).fit(ref, ref_labels).predict(query)


@dataclass
class RepresentationConfig:
    """PCA / t-SNE of penultimate representations and per-layer activation differences."""

    dataset: str = field(default="mnist", metadata={"help": "MNIST only", "choices": ["mnist"]})
    n: int = field(default=200, metadata={"help": "correctly classified test images of source_class attacked"})
    n_background: int = field(default=2000, metadata={"help": "clean test images (all classes) as background"})
    seed: int = field(default=0, metadata={"help": "t-SNE seed"})
    out: str = field(default="results", metadata={"help": "output directory"})
    source_class: int = field(default=2, metadata={"help": "digit attacked (notes: 2)"})
    target_class: int = field(default=6, metadata={"help": "target digit (notes: 6)"})
    eps_iter: float = field(default=0.001, metadata={"help": "targeted IFGSM step (notes: 0.001)"})
    nb_iter: int = field(default=200, metadata={"help": "targeted IFGSM steps (notes: 200)"})
    knn: int = field(default=10, metadata={"help": "neighbours of the k-NN read-out of the representation"})
    perplexity: float = field(default=30.0, metadata={"help": "t-SNE perplexity"})
    figure_images: int = field(default=6, metadata={"help": "rows of the activation-difference figure"})


def _embedding_figure(pca_xy, tsne_xy, labels, n_bg, n, cfg, explained):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.4))
    for ax, xy, title in ((axes[0], pca_xy, f"PCA (fit on clean; {explained * 100:.0f}% var.)"),
                          (axes[1], tsne_xy, "t-SNE")):
        bg = xy[:n_bg]
        sc = ax.scatter(bg[:, 0], bg[:, 1], c=labels, cmap="tab10", s=4, alpha=0.35, vmin=-0.5, vmax=9.5)
        clean, adv = xy[n_bg:n_bg + n], xy[n_bg + n:]
        for i in range(n):
            ax.plot([clean[i, 0], adv[i, 0]], [clean[i, 1], adv[i, 1]], color="0.6", lw=0.3, alpha=0.5)
        ax.scatter(clean[:, 0], clean[:, 1], marker=f"${cfg.source_class}$", color="black", s=30,
                   label=f"clean {cfg.source_class}s")
        ax.scatter(adv[:, 0], adv[:, 1], marker=f"${cfg.source_class}$", color="blue", s=30,
                   label=f"adversarial ({cfg.source_class}→{cfg.target_class})")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, loc="best")
    fig.colorbar(sc, ax=axes, ticks=range(10), label="class of the clean background", shrink=0.8)
    fig.suptitle("penultimate representation: clean background, clean and adversarial inputs", fontsize=11)
    return fig


def _activation_figure(x, x_adv, acts, acts_adv, names, rows, ok, cfg):
    import matplotlib.pyplot as plt

    maps = [n for n in names if acts[n].ndim == 4]
    cols = 2 + len(maps)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.6 * cols, 1.7 * len(rows) + 0.5), squeeze=False)
    for r, i in enumerate(rows):
        panels = [(x[i, ..., 0], "x", "gray"), (x_adv[i, ..., 0], "x_adv" + ("" if ok[i] else " (failed)"), "gray")]
        panels += [(difference_map(acts[n][i:i + 1], acts_adv[n][i:i + 1])[0], f"|Δ| {n}", "viridis") for n in maps]
        for c, (img, title, cmap) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(img, cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 or c == 1:
                ax.set_title(title, fontsize=7)
    fig.suptitle("activation differences max_channels |a(x_adv) − a(x)| per layer", fontsize=10)
    fig.tight_layout()
    return fig


def run(cfg: RepresentationConfig):
    require_mnist(cfg.dataset, NAME)
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from tf_inc.data.mnist import load_mnist

    timer = Timer()
    model = zoo.mnist_classifier()
    rep = penultimate(model)
    x_bg, y_bg = load_mnist("test", cfg.n_background)
    x, y = correct_test_images(model, cfg.n, digit=cfg.source_class, offset=0)
    t = np.full(len(x), cfg.target_class, np.int64)
    print(f"[{NAME}] targeted IFGSM {cfg.source_class} -> {cfg.target_class} on {len(x)} images ...", flush=True)
    x_adv = np.concatenate([targeted_ifgsm(model, x[s:s + 100], t[s:s + 100], eps_iter=cfg.eps_iter,
                                           nb_iter=cfg.nb_iter).numpy() for s in range(0, len(x), 100)])
    ok = target_success(model, x_adv, t)
    r_bg, r_x, r_adv = (np.asarray(rep.predict(a, batch_size=500, verbose=0)) for a in (x_bg, x, x_adv))

    # where do the adversarial representations land?
    knn_adv = knn_labels(r_bg, y_bg, r_adv, cfg.knn)
    knn_x = knn_labels(r_bg, y_bg, r_x, cfg.knn)
    centroids = np.stack([r_bg[y_bg == c].mean(0) for c in range(10)])
    nearest = np.linalg.norm(r_adv[:, None] - centroids[None], axis=-1).argmin(1)
    metrics = {
        "n": int(len(x)), "attack_success_rate": float(ok.mean()),
        "clean_knn_source_frac": float((knn_x == cfg.source_class).mean()),
        "adv_knn_target_frac": float((knn_adv == cfg.target_class).mean()),
        "adv_knn_source_frac": float((knn_adv == cfg.source_class).mean()),
        "adv_nearest_centroid_target_frac": float((nearest == cfg.target_class).mean()),
        "successful/adv_knn_target_frac": float((knn_adv[ok] == cfg.target_class).mean()) if ok.any() else float("nan"),
        "failed/adv_knn_source_frac": float((knn_adv[~ok] == cfg.source_class).mean()) if (~ok).any() else float("nan"),
    }
    pca = PCA(2, random_state=cfg.seed).fit(r_bg)
    metrics["pca_explained_variance_2d"] = float(pca.explained_variance_ratio_.sum())
    stacked = np.concatenate([r_bg, r_x, r_adv])
    print(f"[{NAME}] t-SNE of {len(stacked)} points ...", flush=True)
    tsne = TSNE(2, perplexity=cfg.perplexity, init="pca", random_state=cfg.seed)
    tsne_xy = tsne.fit_transform(stacked)
    metrics["tsne_kl_divergence"] = float(tsne.kl_divergence_)
    fig = _embedding_figure(pca.transform(stacked), tsne_xy, y_bg, len(x_bg), len(x), cfg,
                            metrics["pca_explained_variance_2d"])

    # layer by layer: how much does the input change grow?
    names = activation_layers(model)
    acts, acts_adv = activations(model, x, names), activations(model, x_adv, names)
    def masked_mean(v, mask):
        return float(v[mask].mean()) if mask.any() else float("nan")

    for n, (a, a_adv) in [("input", (x, x_adv))] + [(n, (acts[n], acts_adv[n])) for n in names]:
        rc = relative_change(a, a_adv)
        metrics[f"rel_change/{n}/successful"] = masked_mean(rc, ok)
        metrics[f"rel_change/{n}/failed"] = masked_mean(rc, ~ok)
    for k, v in metrics.items():
        print(f"  {k:<40} {v:.4g}")
    m = cfg.figure_images
    rows = list(np.where(ok)[0][:max(1, m - m // 3)]) + list(np.where(~ok)[0][:m // 3])
    fig_act = _activation_figure(x, x_adv, acts, acts_adv, names, rows or [0], ok, cfg)
    return write_results(NAME, out=cfg.out, paper_ref="notes: representation space and activations (blog)",
                         dataset="mnist", config=cfg, metrics=metrics, paper={}, runtime_s=timer.elapsed,
                         figures={"": fig, "_activations": fig_act})
