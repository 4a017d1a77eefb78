"""Notes: the one-/few-pixel black-box attack by differential evolution (Su et al.).

The blog post searches, by differential evolution, for 1 or 5 pixels whose new values make
the classifier misread a 2: the one-pixel search fails on its image and the five-pixel one
succeeds, which it reads as "few-pixel attacks are hard on MNIST". This runs Su et al.'s
untargeted attack (population 400, ≤ 100 generations, F = 0.5, no crossover, stop at the
first fooling candidate) with 1, 3 and 5 pixels on correctly classified test digits and
reports the success rate for each, with the queries it took.

It also times the two DE back-ends of :func:`tf_inc.attacks.one_pixel.pixel_attack` on the
same few images and settings (``compare_*``): SciPy's ``differential_evolution`` with
vectorised population evaluation per image, and the batched TensorFlow DE over a chunk of
images; the main run uses ``backend``.

    python scripts/notes_one_pixel.py
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np

from tf_inc.attacks.one_pixel import pixel_attack
from tf_inc.experiments import zoo
from tf_inc.experiments.notes_common import correct_test_images, require_mnist
from tf_inc.experiments.results import Timer, write_results

NAME = "notes_one_pixel"


@dataclass
class OnePixelConfig:
    """Few-pixel differential-evolution attack (Su et al.) on MNIST."""

    dataset: str = field(default="mnist", metadata={"help": "MNIST only", "choices": ["mnist"]})
    n: int = field(default=16, metadata={"help": "correctly classified test images attacked"})
    seed: int = field(default=0, metadata={"help": "DE seed"})
    out: str = field(default="results", metadata={"help": "output directory"})
    pixels: List[int] = field(default_factory=lambda: [1, 3, 5], metadata={"help": "pixels per candidate"})
    popsize: int = field(default=400, metadata={"help": "DE population (Su et al.: 400)", "min": 4})
    maxiter: int = field(default=100, metadata={"help": "max generations (Su et al.: 100)", "min": 1})
    mutation: float = field(default=0.5, metadata={"help": "DE scale F (Su et al.: 0.5)", "min": 0.0, "max": 2.0})
    recombination: float = field(default=1.0, metadata={"help": "crossover CR (1 = none, Su et al.)", "min": 0.0,
                                                                 "max": 1.0})
    backend: str = field(default="tf", metadata={"help": "DE back-end of the main run", "choices": ["tf", "scipy"]})
    chunk: int = field(default=8, metadata={"help": "images per TF DE call", "min": 1})
    compare_n: int = field(default=4, metadata={"help": "images of the back-end timing (0: skip)"})
    compare_maxiter: int = field(default=20, metadata={"help": "generations of the timing runs", "min": 1})
    figure_images: int = field(default=8, metadata={"help": "columns of the figure"})


def _time_backends(model, x, y, cfg):
    """Same images, same DE settings, 1 pixel, no early success expected: seconds per image."""
    out = {}
    for backend in ("tf", "scipy"):
        # one warm-up image so that tracing / first-call costs do not count
        pixel_attack(model, x, y, pixels=1, popsize=cfg.popsize, maxiter=1, backend=backend,
                     seed=cfg.seed, chunk=len(x))
        t = Timer()
        r = pixel_attack(model, x, y, pixels=1, popsize=cfg.popsize, maxiter=cfg.compare_maxiter,
                         mutation=cfg.mutation, recombination=cfg.recombination, backend=backend,
                         seed=cfg.seed, chunk=len(x))
        out[f"timing/{backend}_s_per_image"] = t.elapsed / len(x)
        out[f"timing/{backend}_queries_per_s"] = float(r.queries.sum() / t.elapsed)
    out["timing/images"] = int(len(x))
    out["timing/generations"] = int(cfg.compare_maxiter)
    return out


def run(cfg: OnePixelConfig):
    require_mnist(cfg.dataset, NAME)
    timer = Timer()
    model = zoo.mnist_classifier()
    x, y = correct_test_images(model, cfg.n)
    metrics = {"n": int(len(x))}
    results = {}
    for k in cfg.pixels:
        t = Timer()
        print(f"[{NAME}] {k}-pixel DE on {len(x)} images (pop {cfg.popsize}, <= {cfg.maxiter} gens, "
              f"{cfg.backend}) ...", flush=True)
        r = pixel_attack(model, x, y, pixels=int(k), popsize=cfg.popsize, maxiter=cfg.maxiter,
                         mutation=cfg.mutation, recombination=cfg.recombination, backend=cfg.backend,
                         seed=cfg.seed, chunk=cfg.chunk, progress=True)
        results[k] = r
        ok = r.success
        metrics[f"{k}px/success_rate"] = float(ok.mean())
        metrics[f"{k}px/n_success"] = int(ok.sum())
        metrics[f"{k}px/mean_queries"] = float(r.queries.mean())
        metrics[f"{k}px/mean_queries_successful"] = float(r.queries[ok].mean()) if ok.any() else float("nan")
        metrics[f"{k}px/seconds"] = t.elapsed
        print(f"  {k} px: success {ok.mean() * 100:.1f}% ({ok.sum()}/{len(ok)}), "
              f"{r.queries.mean():.0f} queries/image, {t.elapsed:.0f}s", flush=True)
    if cfg.compare_n:
        print(f"[{NAME}] timing the DE back-ends on {cfg.compare_n} images ...", flush=True)
        metrics.update(_time_backends(model, x[:cfg.compare_n], y[:cfg.compare_n], cfg))
        print(f"  tf {metrics['timing/tf_s_per_image']:.1f}s/image, "
              f"scipy {metrics['timing/scipy_s_per_image']:.1f}s/image", flush=True)

    from tf_inc.experiments.evaluation import predict_labels
    from tf_inc.experiments.plots import image_grid

    rows, titles, caps = [], [], []
    m = min(cfg.figure_images, len(x))
    for k, r in results.items():
        # show the successes first
        order = np.argsort(~r.success, kind="stable")[:m]
        rows.append(r.x_adv[order])
        titles.append(f"{k} px")
        caps.append([f"{y[i]}->{p}" + ("" if r.success[i] else " (x)")
                     for i, p in zip(order, predict_labels(model, r.x_adv[order]))])
    fig = image_grid(rows, titles, caps, title="few-pixel DE attack: true -> predicted ((x) = failed)")
    return write_results(NAME, out=cfg.out, paper_ref="notes: one-pixel attack (Su et al.)", dataset="mnist",
                         config=cfg, metrics=metrics, paper={}, runtime_s=timer.elapsed, figures={"": fig})
