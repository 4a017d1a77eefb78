"""Notes: targeted iterative FGSM, "fool the network into reading every 2 as a 6".

The blog post repeats a targeted FGSM step (α = 0.001) 200 times on correctly classified
2s with the target 6, and reports that the success rate is high but that the perturbation
touches many pixels (which motivates JSMA). This runs exactly that on our MNIST classifier,
then the same attack stopped at the first step that reaches the target (the least
perturbation of the run) and, for a wider view, random wrong targets on test digits of
every class. Reported: success rate and mean number of pixels changed (plus ℓ∞/ℓ2 size).

    python scripts/notes_targeted_fgsm.py            # 200 test 2s -> 6, 200 random targets
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tf_inc.attacks.targeted import changed_pixels, random_targets, target_success, targeted_ifgsm
from tf_inc.experiments import zoo
from tf_inc.experiments.notes_common import check_source_target, correct_test_images, require_mnist
from tf_inc.experiments.results import Timer, write_results

NAME = "notes_targeted_fgsm"


@dataclass
class TargetedFgsmConfig:
    """Targeted iterative FGSM (notes): every source digit -> the target digit."""

    dataset: str = field(default="mnist", metadata={"help": "MNIST only", "choices": ["mnist"]})
    n: int = field(default=200, metadata={"help": "correctly classified test images of source_class"})
    n_random: int = field(default=200, metadata={"help": "test images of any class with random targets "
                                                         "(0: skip)"})
    seed: int = field(default=0, metadata={"help": "seed of the random targets"})
    out: str = field(default="results", metadata={"help": "output directory"})
    source_class: int = field(default=2, metadata={"help": "digit to attack (notes: 2)"})
    target_class: int = field(default=6, metadata={"help": "digit to reach (notes: 6)"})
    eps_iter: float = field(default=0.001, metadata={"help": "step α (notes: 0.001)", "min": 0.0})
    nb_iter: int = field(default=200, metadata={"help": "steps (notes: 200)"})
    batch: int = field(default=100, metadata={"help": "images per attack call", "min": 1})
    figure_images: int = field(default=8, metadata={"help": "columns of the figure"})

    def __post_init__(self):
        check_source_target(self)


def _stats(prefix, model, x, x_adv, target, steps=None):
    ok = target_success(model, x_adv, target)
    px = changed_pixels(x, x_adv)
    d = (np.asarray(x_adv, np.float64) - x).reshape(len(x), -1)
    m = {f"{prefix}success_rate": float(ok.mean()),
         f"{prefix}mean_pixels_changed": float(px.mean()),
         f"{prefix}mean_pixels_changed_successful": float(px[ok].mean()) if ok.any() else float("nan"),
         f"{prefix}mean_linf": float(np.abs(d).max(1).mean()),
         f"{prefix}mean_l2": float(np.linalg.norm(d, axis=1).mean()),
         f"{prefix}n": int(len(x))}
    if steps is not None:
        m[f"{prefix}mean_steps"] = float(np.mean(steps))
        m[f"{prefix}mean_steps_successful"] = float(np.mean(steps[ok])) if ok.any() else float("nan")
    return m, ok


def _attack(model, x, t, cfg, early_stop):
    outs, steps = [], []
    for s in range(0, len(x), cfg.batch):
        xa, st = targeted_ifgsm(model, x[s:s + cfg.batch], t[s:s + cfg.batch], eps_iter=cfg.eps_iter,
                                nb_iter=cfg.nb_iter, early_stop=early_stop, return_steps=True)
        outs.append(xa.numpy())
        steps.append(st)
    return np.concatenate(outs), np.concatenate(steps)


def run(cfg: TargetedFgsmConfig):
    require_mnist(cfg.dataset, NAME)
    timer = Timer()
    model = zoo.mnist_classifier()
    x, y = correct_test_images(model, cfg.n, digit=cfg.source_class)
    t = np.full(len(y), cfg.target_class, np.int64)
    print(f"[{NAME}] {len(x)} test {cfg.source_class}s -> {cfg.target_class}: {cfg.nb_iter} steps of "
          f"{cfg.eps_iter} ...", flush=True)
    x_adv, steps = _attack(model, x, t, cfg, early_stop=False)
    metrics, _ = _stats("", model, x, x_adv, t, steps)
    x_es, steps_es = _attack(model, x, t, cfg, early_stop=True)
    m_es, _ = _stats("early_stop/", model, x, x_es, t, steps_es)
    metrics.update(m_es)
    if cfg.n_random:
        xr, yr = correct_test_images(model, cfg.n_random)
        tr = random_targets(yr, cfg.seed)
        xr_adv, st_r = _attack(model, xr, tr, cfg, early_stop=False)
        metrics.update(_stats("random_targets/", model, xr, xr_adv, tr, st_r)[0])
    for k in ("success_rate", "mean_pixels_changed", "early_stop/success_rate", "early_stop/mean_pixels_changed",
              "random_targets/success_rate"):
        if k in metrics:
            print(f"  {k:<34} {metrics[k]:.4g}")

    from tf_inc.experiments.evaluation import predict_labels
    from tf_inc.experiments.plots import image_grid

    m = min(cfg.figure_images, len(x))
    pred_adv = predict_labels(model, x_adv[:m])
    delta = x_adv[:m] - x[:m]
    fig = image_grid([x[:m], 0.5 + delta / (2 * max(1e-6, np.abs(delta).max())), x_adv[:m], x_es[:m]],
                     ["x", "perturbation", f"x_adv ({cfg.nb_iter} steps)", "x_adv (early stop)"],
                     [[f"{cfg.source_class}"] * m, [f"{int(c)} px" for c in changed_pixels(x[:m], x_adv[:m])],
                      [f"-> {p}" for p in pred_adv],
                      [f"-> {p}, {int(c)} px" for p, c in zip(predict_labels(model, x_es[:m]),
                                                              changed_pixels(x[:m], x_es[:m]))]],
                     title=f"targeted iterative FGSM {cfg.source_class} -> {cfg.target_class}: "
                           f"success {metrics['success_rate'] * 100:.0f}%")
    return write_results(NAME, out=cfg.out, paper_ref="notes: targeted iterative FGSM (blog)", dataset="mnist",
                         config=cfg, metrics=metrics, paper={}, runtime_s=timer.elapsed, figures={"": fig})
