"""Notes: how many dimensions does the adversarial subspace have? (Tramèr, Papernot,
Goodfellow, Boneh & McDaniel, *The Space of Transferable Adversarial Examples*, 2017, §3;
the lecture quotes "about 25" on MNIST.)

Gradient-Aligned Adversarial Subspace (GAAS). At an image x with loss gradient g, for a
given k there are k **orthogonal** perturbations of ℓ2 norm ε that are all equally aligned
with the gradient, ``r_iᵀ g = ε ‖g‖₂ / √k`` (Tramèr et al.'s Lemma 1): take k orthonormal
vectors ``q_1 … q_k``, the unit vector ``z = Σ q_i / √k``, and the Householder reflection H
that maps z onto ĝ = g/‖g‖; then ``r_i = ε H q_i`` (``rᵢᵀĝ = ε qᵢᵀ z = ε/√k``). Under a
linear model every ``x + r_i`` raises the loss by ``ε‖g‖/√k``, so for small enough k all of
them are adversarial, and the largest number of successful orthogonal directions over k
estimates the dimension of the adversarial subspace at x. Here the ``q_i`` are a random
orthonormal basis (Tramèr et al. use an arbitrary one; the choice only affects the
components orthogonal to g), k runs over ``k_grid``, and the estimate per image is the
maximum, over k, of the number of misclassified ``x + r_i``. Points are clipped to the
pixel range unless ``--clip false`` (then they are exactly orthogonal).

    python scripts/notes_adversarial_subspace.py
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_inc.attacks.utils import call_model, loss_gradient, prepare
from tf_inc.errors import InputError
from tf_inc.experiments import zoo
from tf_inc.experiments.notes_common import correct_test_images, require_mnist
from tf_inc.experiments.results import Timer, write_results

NAME = "notes_adversarial_subspace"
DEFAULT_K = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100]


def gaas_directions(g, k: int, basis) -> np.ndarray:
    """``k`` orthonormal rows ``r_i`` (shape (k, d)) with ``r_iᵀ g = ‖g‖₂/√k`` (Tramèr et al., Lemma 1).

    ``basis``: (d, ≥k) orthonormal columns (its first k are used)."""
    g = np.asarray(g, np.float64).reshape(-1)
    q = np.asarray(basis, np.float64)[:, :k]
    if q.shape[0] != g.size or q.shape[1] < k:
        raise InputError(f"basis: expected ({g.size}, >= {k}) orthonormal columns, got {np.shape(basis)}")
    gn = np.linalg.norm(g)
    if not np.isfinite(gn) or gn == 0:
        raise InputError("gradient is zero or not finite: no aligned direction exists")
    gh = g / gn
    z = q.sum(axis=1) / np.sqrt(k)
    v = z - gh
    vv = float(v @ v)
    b = q if vv < 1e-20 else q - 2.0 * np.outer(v, v @ q) / vv
    return b.T


def random_orthonormal(d: int, k: int, rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, k)))
    return q * np.sign(np.diag(r))[None]


def count_directions(model_fn, x, y, eps: float, k_grid: Sequence[int], seed: int = 0,
                     bounds: Optional[Tuple[float, float]] = None, clip: bool = True, batch: int = 1024):
    """Per image and per k in ``k_grid``: how many of the k GAAS directions of ℓ2 norm ``eps``
    are adversarial. Returns ``counts`` of shape (N, len(k_grid)); the estimate is ``counts.max(1)``."""
    x, y, bounds = prepare(model_fn, x, y, bounds, eps=eps)
    k_grid = sorted({int(k) for k in k_grid})
    d = int(np.prod(x.shape[1:]))
    if k_grid[0] < 1 or k_grid[-1] > d:
        raise InputError(f"k_grid: values must lie in [1, {d}], got {k_grid}")
    g = loss_gradient(model_fn, x, y).numpy().reshape(len(y), d)
    xs, ys = x.numpy(), y.numpy()
    rng = np.random.default_rng(seed)
    counts = np.zeros((len(ys), len(k_grid)), np.int64)
    for i in range(len(ys)):
        basis = random_orthonormal(d, k_grid[-1], rng)
        r = np.concatenate([gaas_directions(g[i], k, basis) for k in k_grid]) * eps    # (Σk, d)
        pts = xs[i].reshape(1, d) + r
        if clip:
            pts = np.clip(pts, *bounds)
        pts = pts.reshape((-1,) + xs.shape[1:]).astype(np.float32)
        pred = np.concatenate([np.asarray(call_model(model_fn, tf.constant(pts[s:s + batch]))).argmax(1)
                               for s in range(0, len(pts), batch)])
        wrong = pred != ys[i]
        ends = np.cumsum(k_grid)
        counts[i] = [wrong[e - k:e].sum() for k, e in zip(k_grid, ends)]
    return counts


@dataclass
class SubspaceConfig:
    """GAAS estimate of the number of orthogonal adversarial directions per MNIST image."""

    dataset: str = field(default="mnist", metadata={"help": "MNIST only", "choices": ["mnist"]})
    n: int = field(default=50, metadata={"help": "correctly classified test images"})
    seed: int = field(default=0, metadata={"help": "seed of the random orthonormal bases"})
    out: str = field(default="results", metadata={"help": "output directory"})
    eps: List[float] = field(default_factory=lambda: [3.0, 4.0, 5.0],
                             metadata={"help": "ℓ2 norms of the perturbations (whole image, pixels in [0, 1])"})
    k_grid: List[int] = field(default_factory=lambda: list(DEFAULT_K), metadata={"help": "values of k tried"})
    clip: bool = field(default=True, metadata={"help": "clip x + r_i to [0, 1] (breaks exact orthogonality)"})
    also_unclipped: bool = field(default=True, metadata={
        "help": "also count, at the largest ε, without clipping (exactly orthogonal, outside [0, 1])"})


def run(cfg: SubspaceConfig):
    require_mnist(cfg.dataset, NAME)
    timer = Timer()
    model = zoo.mnist_classifier()
    x, y = correct_test_images(model, cfg.n)
    metrics = {"n": int(len(x)), "eps": [float(e) for e in cfg.eps], "k_grid": sorted(set(cfg.k_grid))}
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for e in cfg.eps:
        print(f"[{NAME}] GAAS, ε={e} (ℓ2), {len(x)} images, k up to {max(cfg.k_grid)} ...", flush=True)
        counts = count_directions(model, x, y, e, cfg.k_grid, seed=cfg.seed, clip=cfg.clip)
        est = counts.max(axis=1)
        key = f"eps_{e:g}"
        metrics[f"{key}/mean_directions"] = float(est.mean())
        metrics[f"{key}/median_directions"] = float(np.median(est))
        metrics[f"{key}/frac_more_than_1"] = float((est > 1).mean())
        metrics[f"{key}/frac_zero"] = float((est == 0).mean())
        fooled = counts[:, 0] > 0                                  # k = 1: ε·ĝ itself is adversarial
        metrics[f"{key}/gradient_direction_success"] = float(fooled.mean())
        metrics[f"{key}/mean_directions_where_gradient_fools"] = float(est[fooled].mean()) if fooled.any() \
            else float("nan")
        metrics[f"{key}/directions"] = [int(v) for v in est]
        metrics[f"{key}/success_frac_by_k"] = [float(v) for v in (counts / np.asarray(metrics["k_grid"])).mean(0)]
        print(f"  ε={e:g}: mean {est.mean():.1f}, median {np.median(est):.0f} directions "
              f"(>1 for {np.mean(est > 1) * 100:.0f}% of images)", flush=True)
        axes[0].hist(est, bins=np.arange(0, max(metrics["k_grid"]) + 2, 2), alpha=0.5, label=f"ε={e:g}")
        axes[1].plot(metrics["k_grid"], metrics[f"{key}/success_frac_by_k"], marker="o", label=f"ε={e:g}")
    axes[0].axvline(25, color="k", ls="--", lw=0.8, label="lecture: ~25")
    axes[0].set_xlabel("orthogonal adversarial directions per image (max over k)")
    axes[0].set_ylabel("images")
    axes[0].legend()
    axes[1].set_xscale("log")
    axes[1].set_xlabel("k (directions tried)")
    axes[1].set_ylabel("share of the k directions that are adversarial")
    axes[1].legend()
    fig.suptitle(f"GAAS (Tramèr et al. 2017) on MNIST, n={len(x)}", fontsize=10)
    fig.tight_layout()
    main = f"eps_{cfg.eps[-1]:g}/mean_directions"
    metrics["mean_directions"] = metrics[main]
    if cfg.also_unclipped and cfg.clip:
        e = cfg.eps[-1]
        print(f"[{NAME}] GAAS, ε={e} (ℓ2), not clipped ...", flush=True)
        est = count_directions(model, x, y, e, cfg.k_grid, seed=cfg.seed, clip=False).max(axis=1)
        metrics[f"unclipped/eps_{e:g}/mean_directions"] = float(est.mean())
        metrics[f"unclipped/eps_{e:g}/median_directions"] = float(np.median(est))
        metrics[f"unclipped/eps_{e:g}/directions"] = [int(v) for v in est]
        print(f"  ε={e:g} unclipped: mean {est.mean():.1f}, median {np.median(est):.0f} directions", flush=True)
    return write_results(NAME, out=cfg.out,
                         paper_ref="notes: adversarial subspace dimension (lecture; Tramèr et al. 2017)",
                         dataset="mnist", config=cfg, metrics=metrics, paper={"mean_directions": 25},
                         runtime_s=timer.elapsed, figures={"": fig})
