"""Notes: adversarial and random cross-sections of the classifier (Goodfellow's lecture; the
maps of Warde-Farley & Goodfellow 2016).

For an image x, the *adversarial* cross-section is the class the model gives to

    x + a · sign(∇_x L(x, y)) + b · r,      a, b ∈ [−ε_max, ε_max],

where sign(∇L) is the FGSM direction (left to right) and r a random ±1 direction made
orthogonal to it, rescaled to the same ℓ2 norm (top to bottom). The *random* cross-section
replaces the FGSM direction by a second random direction. The lecture's observations: the
adversarial maps are split in two by a near-linear boundary, the FGSM half wrong and the other
half right (adversarial examples fill half-spaces, not isolated pockets), while random maps
stay correct. Measured per map type: the misclassified share of the map, of each half, the
share of rows whose correct→wrong pattern along ``a`` has a single boundary, and the smallest
``a`` on the FGSM axis that flips the label.

By default the plane is not clipped to the pixel range (it is a cross-section of the function
the network computes); ``--clip true`` clips every point to [0, 1].

    python scripts/notes_cross_sections.py
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from tf_inc.attacks.utils import call_model, loss_gradient, prepare
from tf_inc.experiments import zoo
from tf_inc.experiments.notes_common import correct_test_images, require_mnist
from tf_inc.experiments.results import Timer, write_results

NAME = "notes_cross_sections"


def random_sign_direction(shape, rng) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0], np.float32), size=shape)


def orthogonal_to(d, ref) -> np.ndarray:
    """``d`` minus its projection on ``ref`` (per image), rescaled to ``ref``'s ℓ2 norm."""
    d = np.asarray(d, np.float64).reshape(len(d), -1)
    r = np.asarray(ref, np.float64).reshape(len(ref), -1)
    d = d - (np.sum(d * r, 1, keepdims=True) / np.maximum(np.sum(r * r, 1, keepdims=True), 1e-12)) * r
    d *= np.linalg.norm(r, axis=1, keepdims=True) / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    return d.reshape(np.shape(ref)).astype(np.float32)


def cross_section(model_fn, x, d1, d2, eps_max: float, grid: int, bounds: Optional[Tuple[float, float]] = None,
                  batch: int = 2048) -> np.ndarray:
    """Labels of ``x + a·d1 + b·d2`` on a ``grid × grid`` lattice of ``[−eps_max, eps_max]²``:
    shape (N, grid_b, grid_a) — rows are b (``d2``), columns a (``d1``). ``bounds`` clips."""
    coords = np.linspace(-eps_max, eps_max, grid, dtype=np.float32)
    a, b = np.meshgrid(coords, coords)                       # (grid_b, grid_a)
    a, b = a.reshape(-1), b.reshape(-1)
    out = np.empty((len(x), grid * grid), np.int64)
    for i in range(len(x)):
        pts = x[i][None] + a[:, None, None, None] * d1[i][None] + b[:, None, None, None] * d2[i][None]
        if bounds is not None:
            pts = np.clip(pts, *bounds)
        out[i] = np.concatenate([np.asarray(call_model(model_fn, tf.constant(pts[s:s + batch]))).argmax(1)
                                 for s in range(0, len(pts), batch)])
    return out.reshape(len(x), grid, grid)


def fgsm_direction(model_fn, x, y) -> np.ndarray:
    x, y, _ = prepare(model_fn, x, y)
    return np.sign(loss_gradient(model_fn, x, y).numpy())


def map_statistics(labels, y, coords) -> dict:
    """Misclassified share (whole map, a > 0, a < 0), single-boundary rows, first flip on the a axis."""
    wrong = labels != np.asarray(y)[:, None, None]
    pos, neg = coords > 0, coords < 0
    transitions = np.abs(np.diff(wrong.astype(np.int8), axis=2)).sum(axis=2)      # (N, grid_b)
    centre = len(coords) // 2
    flips = []
    for w in wrong[:, centre, :]:
        hit = np.where(w & pos)[0]
        flips.append(coords[hit[0]] if len(hit) else np.nan)
    flips = np.asarray(flips, np.float64)
    return {"misclassified_frac": float(wrong.mean()),
            "pos_half_misclassified_frac": float(wrong[:, :, pos].mean()),
            "neg_half_misclassified_frac": float(wrong[:, :, neg].mean()),
            "single_boundary_rows_frac": float((transitions <= 1).mean()),
            "axis_flip_frac": float(np.isfinite(flips).mean()),
            "axis_flip_eps_mean": float(np.nanmean(flips)) if np.isfinite(flips).any() else float("nan")}


@dataclass
class CrossSectionConfig:
    """Adversarial (FGSM × random) and random (random × random) cross-sections of the classifier."""

    dataset: str = field(default="mnist", metadata={"help": "MNIST only", "choices": ["mnist"]})
    n: int = field(default=16, metadata={"help": "correctly classified test images"})
    seed: int = field(default=0, metadata={"help": "seed of the random directions"})
    out: str = field(default="results", metadata={"help": "output directory"})
    eps_max: float = field(default=0.3, metadata={"help": "half-width of the plane (ℓ∞ units of sign(∇L))",
                                                    "min": 0.0})
    grid: int = field(default=41, metadata={"help": "lattice points per axis", "min": 3})
    clip: bool = field(default=False, metadata={"help": "clip every point of the plane to [0, 1]"})
    figure_images: int = field(default=8, metadata={"help": "maps drawn per type"})


def _draw(fig, axes, maps, y, eps, title_row):
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    base = plt.get_cmap("tab10")(np.arange(10))
    for ax, lab, yy in zip(axes, maps, y):
        colors = base.copy()
        colors[int(yy)] = (1, 1, 1, 1)                 # the correct class is white
        ax.imshow(lab, cmap=ListedColormap(colors), vmin=-0.5, vmax=9.5, extent=(-eps, eps, eps, -eps),
                  interpolation="nearest")
        ax.axhline(0, color="0.7", lw=0.4)
        ax.axvline(0, color="0.7", lw=0.4)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"y={int(yy)}", fontsize=7)
    axes[0].set_ylabel(title_row, fontsize=8)


def run(cfg: CrossSectionConfig):
    require_mnist(cfg.dataset, NAME)
    timer = Timer()
    model = zoo.mnist_classifier()
    x, y = correct_test_images(model, cfg.n)
    rng = np.random.default_rng(cfg.seed)
    s = fgsm_direction(model, x, y)
    r1 = orthogonal_to(random_sign_direction(x.shape, rng), s)
    q1 = random_sign_direction(x.shape, rng)
    q2 = orthogonal_to(random_sign_direction(x.shape, rng), q1)
    bounds = model.bounds if cfg.clip else None
    print(f"[{NAME}] {len(x)} images x 2 maps of {cfg.grid}x{cfg.grid} points ...", flush=True)
    adv = cross_section(model, x, s, r1, cfg.eps_max, cfg.grid, bounds)
    rnd = cross_section(model, x, q1, q2, cfg.eps_max, cfg.grid, bounds)
    coords = np.linspace(-cfg.eps_max, cfg.eps_max, cfg.grid)
    metrics = {"n": int(len(x))}
    for kind, maps in (("adversarial", adv), ("random", rnd)):
        for k, v in map_statistics(maps, y, coords).items():
            metrics[f"{kind}/{k}"] = v
    for k, v in metrics.items():
        print(f"  {k:<44} {v:.4g}")

    import matplotlib.pyplot as plt

    m = min(cfg.figure_images, len(x))
    fig, axes = plt.subplots(2, m, figsize=(1.5 * m + 0.6, 4.0), squeeze=False)
    _draw(fig, axes[0], adv[:m], y[:m], cfg.eps_max, "FGSM → / random ↓")
    _draw(fig, axes[1], rnd[:m], y[:m], cfg.eps_max, "random → / random ↓")
    fig.suptitle(f"cross-sections over [−{cfg.eps_max:g}, {cfg.eps_max:g}]² (white = correct class, "
                 f"colour = tab10 class)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.94), h_pad=1.2)
    return write_results(NAME, out=cfg.out, paper_ref="notes: adversarial and random cross-sections (lecture)",
                         dataset="mnist", config=cfg, metrics=metrics, paper={}, runtime_s=timer.elapsed,
                         figures={"": fig})
