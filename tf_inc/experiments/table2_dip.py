"""Table 2 (§4.4) on MNIST: the Deep Image Prior defence against BIM, and why it must stop early.

Protocol (§4.4.1–4.4.2, applied to our trained MNIST classifier instead of a ResNet152):

* **attack**: BIM with 20 steps ``x ← Π_{x0,ε}(x + 2ε·sign ∇L)`` (the paper's step 2ε, no
  random start) against the unprotected classifier, at ε ∈ {0.01, 0.05, 0.1} in the paper's
  [−1, 1] pixel scale, i.e. ε/2 = {0.005, 0.025, 0.05} on MNIST's [0, 1] pixels;
* **defence**: DIP INC (Alg. 2, :class:`tf_inc.defences.dip.DIPInvertAndClassify`): Adam
  (lr 0.01) on the weights of a fresh skip network per image, at most 500 iterations for
  ε ≤ 0.05 and 100 for ε = 0.1, stopping once the MSE < 0.005; the classifier labels the fit;
* **report**: accuracy of the classifier and of the DIP-protected classifier on the clean and
  the adversarial images, the mean number of iterations and the seconds per image.

The clean images are fitted once with the largest budget; the output after a smaller budget
is read from the same fit (a snapshot), which is exactly what a separate shorter fit returns.

**Early stopping matters** (§2.4, §4.4.2): on a subset, the fit runs with no MSE stop for up
to 2000 iterations and the classifier labels its output after 25, 50, …, 2000 iterations, with
the MSE of the fit to the adversarial and to the clean image: a long fit reconstructs the
perturbation and the accuracy falls back towards the unprotected classifier's.

Optionally (``bpda_n`` > 0) the same BIM-20 is also run *adaptively* through the defence's
BPDA gradient (the fit treated as the identity in the backward pass, Athalye et al. 2018;
``bpda_eot`` > 1 averages several seeds of the fit), and the deployed defence judges the result.

**Resume** (``run_dir``): every DIP fit of the protocol (clean, per-ε adversarial, the curve) saves
its finished chunks of ``batch_size`` images atomically, keyed by a fingerprint of its settings and
its images (:mod:`tf_inc.experiments.resumable`); a run killed half-way and started again with the
same flags recomputes the (deterministic, cheap) BIM images, reuses every saved chunk and fits only
the rest. The optional BPDA attack is not checkpointed.

The paper's Table 2 (ImageNet, ResNet152, 1000 images) is stored in ``paper`` for reference;
the numbers are not expected to carry over to MNIST.

    python scripts/table2_dip.py                   # the default run (see Table2DIPConfig.n)
    python scripts/table2_dip.py --n 1000 --curve-n 200
    python scripts/table2_dip.py --n 1000 --run-dir runs/table2_dip   # resumable: a rerun after a kill
                                                                      # refits only unfinished chunks
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from tf_inc.defences.dip import DIPConfig, DIPInvertAndClassify
from tf_inc.experiments.evaluation import STRATEGY_HELP, evaluation_strategy, require_mnist, results_dir
from tf_inc.experiments.results import Timer, write_results
from tf_inc.models.skip_net import SkipNetConfig
from tf_inc.training.distribute import STRATEGIES

NAME = "table2_dip"

#: Table 2 of the paper (ImageNet, ResNet152, 1000 validation images), as fractions
PAPER_TABLE2 = {
    "0.01": dict(classifier_clean_acc=0.71, dip_clean_acc=0.52, classifier_adv_acc=0.05, dip_adv_acc=0.49),
    "0.05": dict(classifier_clean_acc=0.71, dip_clean_acc=0.52, classifier_adv_acc=0.02, dip_adv_acc=0.40),
    "0.1": dict(classifier_clean_acc=0.71, dip_clean_acc=0.35, classifier_adv_acc=0.01, dip_adv_acc=0.30),
}


def eps_key(eps: float) -> str:
    return f"{float(eps):g}"


def paper_metrics() -> Dict[str, float]:
    return {f"{e}/{k}": v for e, row in PAPER_TABLE2.items() for k, v in row.items()}


@dataclass
class Table2DIPConfig:
    """Table 2 (§4.4) on MNIST: DIP-protected classifier vs BIM-20, plus the early-stopping curve."""

    dataset: str = field(default="mnist", metadata={
        "help": "MNIST (the ImageNet run is table2_dip_imagenet)", "choices": ["mnist"]})
    n: int = field(default=200, metadata={"help": "number of MNIST test images"})
    seed: int = field(default=0, metadata={"help": "seed of the networks' random weights and codes"})
    out: str = field(default="results", metadata={"help": "output directory"})
    eps: List[float] = field(default_factory=lambda: [0.01, 0.05, 0.1, 0.2, 0.4], metadata={
        "help": "BIM l-inf budgets in the paper's [-1, 1] pixel scale (MNIST [0, 1] budget = eps/2); the "
                "paper's are 0.01, 0.05, 0.1, too small to fool an MNIST classifier, so 0.2 and 0.4 are added"})
    bim_steps: int = field(default=20, metadata={"help": "BIM iterations (paper 20, step 2 eps)"})
    max_iterations: List[int] = field(default_factory=lambda: [500, 500, 100, 100, 100], metadata={
        "help": "DIP iteration budget per eps (paper 500 for eps <= 0.05, 100 for eps = 0.1; 100 beyond)"})
    mse_threshold: float = field(default=DIPConfig.mse_threshold, metadata={
        "help": "stop a fit once its MSE ([0, 1] scale) is below this (paper 0.005)"})
    learning_rate: float = field(default=DIPConfig.learning_rate, metadata={"help": "Adam lr (paper 0.01)"})
    input_noise_std: float = field(default=0.0, metadata={"help": "code noise σ per iteration (reference 1/30; 0 = Alg. 2)"})
    ema: float = field(default=0.0, metadata={"help": "output averaging (reference 0.99; 0 = off)"})
    batch_size: int = field(default=64, metadata={"help": "networks fitted at once"})
    net_scales: int = field(default=3, metadata={"help": "skip-network scales (reference 5; 3 for 32 px)"})
    net_down: int = field(default=16, metadata={"help": "encoder width (reference 128)"})
    net_up: int = field(default=16, metadata={"help": "decoder width (reference 128)"})
    net_skip: int = field(default=4, metadata={"help": "skip width (reference 4)"})
    net_code_channels: int = field(default=8, metadata={"help": "channels of the random code (reference 32)"})
    canvas_multiple: int = field(default=32, metadata={"help": "network canvas multiple (28 px -> 32)"})
    curve_n: int = field(default=12, metadata={"help": "images of the early-stopping curve (0 = skip it)"})
    curve_iterations: List[int] = field(default_factory=lambda: [25, 50, 100, 200, 400, 1000],
                                        metadata={"help": "iteration counts of the early-stopping curve "
                                                          "(one fit per image, cost grows with the largest)"})
    curve_eps: List[float] = field(default_factory=lambda: [0.1, 0.4], metadata={
        "help": "budgets (paper scale) of the early-stopping curve (the clean images are always included)"})
    bpda_n: int = field(default=12, metadata={"help": "images of the adaptive BPDA BIM attack (0 = skip it)"})
    bpda_eps: List[float] = field(default_factory=lambda: [0.1, 0.4], metadata={
        "help": "budgets (paper scale, a subset of eps) of the BPDA attack; every BIM step refits the batch"})
    bpda_eot: int = field(default=1, metadata={"help": "EOT draws (fit seeds) averaged by the BPDA attacker"})
    recon_images: int = field(default=8, metadata={"help": "columns of the Figure 10-style grid"})
    recon_eps: float = field(default=0.05, metadata={"help": "budget of the grid (paper Fig. 10: 0.05)"})
    run_dir: str = field(default="", metadata={
        "help": "resume directory: every DIP fit's finished chunks are saved here (atomically) and a rerun with "
                "the same settings after a kill skips them (timings then cover the rerun's work only); "
                "empty = no resume"})
    strategy: str = field(default="default", metadata={"help": STRATEGY_HELP, "choices": list(STRATEGIES)})

    def net_config(self) -> SkipNetConfig:
        return SkipNetConfig.uniform(self.net_scales, self.net_down, self.net_up, self.net_skip,
                                     input_channels=self.net_code_channels, canvas_multiple=self.canvas_multiple)

    def dip_config(self, max_iterations: int) -> DIPConfig:
        return DIPConfig(max_iterations=int(max_iterations), learning_rate=self.learning_rate,
                         mse_threshold=self.mse_threshold, input_noise_std=self.input_noise_std, ema=self.ema,
                         batch_size=self.batch_size)

    def validate(self) -> "Table2DIPConfig":
        from tf_inc.errors import InputError

        if len(self.max_iterations) != len(self.eps):
            raise InputError(f"max_iterations ({self.max_iterations}) must have one entry per eps ({self.eps})")
        if self.n < 1 or self.curve_n < 0 or self.bpda_n < 0 or self.bim_steps < 1 or self.bpda_eot < 1:
            raise InputError("n, bim_steps, bpda_eot must be >= 1 and curve_n, bpda_n >= 0")
        return self


def _acc(labels, y) -> float:
    return float((np.asarray(labels) == np.asarray(y)).mean())


def _labels(classifier, x, batch: int = 500) -> np.ndarray:
    import tensorflow as tf

    return np.concatenate([tf.argmax(classifier(tf.convert_to_tensor(x[s:s + batch]), training=False), 1).numpy()
                           for s in range(0, len(x), batch)])


class _Clock:
    """Wall and process-CPU seconds of a block (the machine may be shared: both are reported)."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


def run_protocol(classifier, x, y, cfg: Table2DIPConfig, bounds, log=print) -> Dict[str, object]:
    """The Table 2 protocol on ``(x, y)`` for any classifier / image size (MNIST and ImageNet runs).

    Returns ``{"metrics": ..., "adv": {eps: x_adv}, "fits": {...}, "curve": ...}``.
    """
    from tf_inc.attacks import bim

    cfg.validate()
    lo, hi = bounds
    scale = (hi - lo) / 2.0                        # paper ε is in [−1, 1] units
    n = len(x)
    eps = [float(e) for e in cfg.eps]
    net = cfg.net_config()
    run_dir = cfg.run_dir or None            # resumable DIP fits (tf_inc.experiments.resumable)
    strategy = evaluation_strategy(cfg.strategy)     # DIP fits sharded over replicas (same rows)
    metrics: Dict[str, object] = {"n": n}
    clf_clean = _labels(classifier, x)
    clf_clean_acc = _acc(clf_clean, y)

    # --- BIM-20 (step 2ε, projection onto the ε-ball) against the unprotected classifier
    log(f"[{NAME}] BIM-{cfg.bim_steps} at eps {eps} (paper scale; x{scale:g} in pixel units) on {n} images")
    adv: Dict[float, np.ndarray] = {}
    for s in range(0, n, 500):
        outs = bim(classifier, x[s:s + 500], y[s:s + 500], [e * scale for e in eps], nb_iter=cfg.bim_steps,
                   bounds=bounds)
        for e, xa in zip(eps, outs):
            adv.setdefault(e, []).append(xa.numpy())
    adv = {e: np.concatenate(v) for e, v in adv.items()}

    # --- clean fits: one fit with the largest budget, smaller budgets read off as snapshots
    budgets = sorted({int(b) for b in cfg.max_iterations})
    top = budgets[-1]
    dip = DIPInvertAndClassify(classifier, cfg.dip_config(top), net=net, seed=cfg.seed, bounds=bounds,
                               image_shape=x.shape[1:])
    log(f"[{NAME}] DIP fits of the {n} clean images (<= {top} iterations, stop at MSE < {cfg.mse_threshold})")
    with _Clock() as clk:
        clean = dip.fit(x, progress=True, snapshots=budgets[:-1], run_dir=run_dir, strategy=strategy)
    clean_out = {b: (clean.snapshots[b] if b != top else clean.x_hat) for b in budgets}
    clean_lab = {b: dip.classify(v).argmax(1) for b, v in clean_out.items()}
    fits = {"clean": clean_out[budgets[-1]], "clean_by_budget": clean_out}
    metrics["clean/seconds_per_image"] = clk.wall / n
    metrics["clean/cpu_seconds_per_image"] = clk.cpu / n

    # --- adversarial fits, each with its budget's schedule
    for e, budget in zip(eps, cfg.max_iterations):
        k = eps_key(e)
        d = dip.with_config(max_iterations=int(budget))
        log(f"[{NAME}] eps={k}: DIP fits of the adversarial images (<= {budget} iterations)")
        with _Clock() as clk:
            res = d.fit(adv[e], progress=True, run_dir=run_dir, strategy=strategy)
        lab = d.classify(res.x_hat).argmax(1)
        fits[e] = res.x_hat
        metrics[f"{k}/eps_pixels"] = e * scale
        metrics[f"{k}/max_iterations"] = int(budget)
        metrics[f"{k}/classifier_clean_acc"] = clf_clean_acc
        metrics[f"{k}/dip_clean_acc"] = _acc(clean_lab[int(budget)], y)
        metrics[f"{k}/classifier_adv_acc"] = _acc(_labels(classifier, adv[e]), y)
        metrics[f"{k}/dip_adv_acc"] = _acc(lab, y)
        metrics[f"{k}/mean_iterations"] = float(res.iterations.mean())
        metrics[f"{k}/mean_iterations_clean"] = float(np.minimum(clean.iterations, budget).mean())
        metrics[f"{k}/stopped_frac"] = float(res.stopped.mean())
        metrics[f"{k}/mean_mse"] = float(res.mse.mean())
        metrics[f"{k}/seconds_per_image"] = clk.wall / n
        metrics[f"{k}/cpu_seconds_per_image"] = clk.cpu / n
        log(f"  eps={k:<5} classifier clean {metrics[f'{k}/classifier_clean_acc']:.3f} adv "
            f"{metrics[f'{k}/classifier_adv_acc']:.3f} | DIP clean {metrics[f'{k}/dip_clean_acc']:.3f} adv "
            f"{metrics[f'{k}/dip_adv_acc']:.3f} | {metrics[f'{k}/mean_iterations']:.1f} it, "
            f"{metrics[f'{k}/seconds_per_image']:.2f} s/img")

    # --- early stopping matters: accuracy vs iterations with no MSE stop
    curve = None
    if cfg.curve_n > 0:
        curve = _early_stopping_curve(dip, classifier, x, y, adv, cfg, metrics, log, strategy)

    # --- optional adaptive attack: BIM-20 through the defence's BPDA gradient
    if cfg.bpda_n > 0:
        _bpda(dip, classifier, x, y, cfg, bounds, scale, metrics, log)
    return {"metrics": metrics, "adv": adv, "fits": fits, "curve": curve}


def _early_stopping_curve(dip, classifier, x, y, adv, cfg, metrics, log, strategy=None):
    m = min(cfg.curve_n, len(x))
    its = sorted({int(t) for t in cfg.curve_iterations})
    long_fit = dip.with_config(max_iterations=its[-1], mse_threshold=0.0)
    sets = [("clean", x[:m])] + [(eps_key(e), adv[float(e)][:m]) for e in cfg.curve_eps if float(e) in adv]
    xs = np.concatenate([s for _, s in sets])
    log(f"[{NAME}] early-stopping curve: {len(sets)} x {m} images, no MSE stop, snapshots at {its}")
    res = long_fit.fit(xs, progress=True, snapshots=its, run_dir=cfg.run_dir or None, strategy=strategy)
    curve = {"iterations": its}
    metrics["curve/n"] = m
    metrics["curve/iterations"] = its
    d = int(np.prod(x.shape[1:]))
    span = float(dip.bounds[1] - dip.bounds[0])
    for j, (name, xs_j) in enumerate(sets):
        sl = slice(j * m, (j + 1) * m)
        acc = [_acc(dip.classify(res.snapshots[t][sl]).argmax(1), y[:m]) for t in its]
        to_input = [float(np.mean(((res.snapshots[t][sl] - xs_j) / span) ** 2)) for t in its]
        to_clean = [float(np.mean(((res.snapshots[t][sl] - x[:m]) / span) ** 2)) for t in its]
        metrics[f"curve/{name}/dip_acc"] = acc
        metrics[f"curve/{name}/mse_to_input"] = to_input
        metrics[f"curve/{name}/mse_to_clean"] = to_clean
        metrics[f"curve/{name}/classifier_acc"] = _acc(_labels(classifier, xs_j), y[:m])
        curve[name] = acc
        log(f"  {name:<6} accuracy after {its} iterations: {[round(a, 3) for a in acc]}")
    del d
    return curve


def _bpda(dip, classifier, x, y, cfg, bounds, scale, metrics, log):
    from tf_inc.attacks import EOT, bim

    m = min(cfg.bpda_n, len(x))
    wanted = {float(e) for e in cfg.bpda_eps}
    for e, budget in zip(cfg.eps, cfg.max_iterations):
        if float(e) not in wanted:
            continue
        k = eps_key(e)
        deployed = dip.with_config(max_iterations=int(budget))
        if cfg.bpda_eot > 1:
            model = EOT([deployed.attack_view(1000 + s).bpda_logits for s in range(cfg.bpda_eot)],
                        bounds=bounds)
        else:
            model = deployed.bpda_logits
        log(f"[{NAME}] eps={k}: BPDA{'+EOT' if cfg.bpda_eot > 1 else ''} BIM-{cfg.bim_steps} on {m} images "
            f"(each step fits the batch)")
        with _Clock() as clk:
            xa = bim(model, x[:m], y[:m], float(e) * scale, nb_iter=cfg.bim_steps, bounds=bounds).numpy()
        lab = deployed.classify(deployed.fit(xa).x_hat).argmax(1)
        metrics[f"{k}/bpda_n"] = m
        metrics[f"{k}/dip_bpda_acc"] = _acc(lab, y[:m])
        metrics[f"{k}/classifier_on_bpda_acc"] = _acc(_labels(classifier, xa), y[:m])
        metrics[f"{k}/bpda_seconds_per_image"] = clk.wall / m
        log(f"  eps={k:<5} DIP accuracy under BPDA BIM {metrics[f'{k}/dip_bpda_acc']:.3f} (n={m})")


# ----------------------------------------------------------------------------- figures
def table_figure(metrics, eps, paper=None, title=""):
    import matplotlib.pyplot as plt

    cols = [("classifier_clean_acc", "classifier, clean"), ("dip_clean_acc", "DIP, clean"),
            ("classifier_adv_acc", "classifier, BIM"), ("dip_adv_acc", "DIP, BIM")]
    if any(f"{eps_key(e)}/dip_bpda_acc" in metrics for e in eps):
        cols.append(("dip_bpda_acc", "DIP, BPDA BIM"))
    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / len(cols)
    xs = np.arange(len(eps))
    for j, (key, label) in enumerate(cols):
        vals = [metrics.get(f"{eps_key(e)}/{key}", np.nan) for e in eps]
        bars = ax.bar(xs + (j - (len(cols) - 1) / 2) * width, np.asarray(vals) * 100, width, label=label)
        for b, v in zip(bars, vals):
            if np.isfinite(v):
                ax.text(b.get_x() + b.get_width() / 2, v * 100 + 1, f"{v * 100:.0f}", ha="center", fontsize=7)
        if paper is not None:
            pv = [paper.get(f"{eps_key(e)}/{key}", np.nan) for e in eps]
            ax.scatter(xs + (j - (len(cols) - 1) / 2) * width, np.asarray(pv) * 100, marker="_", s=200,
                       color="black", zorder=3, label="paper (ImageNet)" if j == 0 else None)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"ε={eps_key(e)}" for e in eps])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 108)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def curve_figure(metrics, title=""):
    import matplotlib.pyplot as plt

    its = metrics["curve/iterations"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = [k.split("/")[1] for k in metrics if k.startswith("curve/") and k.endswith("/dip_acc")]
    for name in names:
        label = "clean" if name == "clean" else f"BIM ε={name}"
        line = axes[0].plot(its, np.asarray(metrics[f"curve/{name}/dip_acc"]) * 100, marker="o", label=label)[0]
        axes[0].axhline(metrics[f"curve/{name}/classifier_acc"] * 100, color=line.get_color(), ls=":", alpha=0.7)
        axes[1].plot(its, metrics[f"curve/{name}/mse_to_input"], marker="o", color=line.get_color(),
                     label=f"{label}: to its input")
        if name != "clean":
            axes[1].plot(its, metrics[f"curve/{name}/mse_to_clean"], marker="x", ls="--", color=line.get_color(),
                         label=f"{label}: to the clean image")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("DIP iterations (no MSE stop)")
    axes[0].set_ylabel("accuracy of the DIP-protected classifier (%)")
    axes[0].set_title("dotted: unprotected classifier on the same inputs", fontsize=8)
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("DIP iterations (no MSE stop)")
    axes[1].set_ylabel("MSE of the fit ([0, 1] scale)")
    axes[1].grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def reconstruction_grid(classifier, x, x_fit, x_adv, x_adv_fit, y, eps, bounds, title=None):
    """Figure 10: x, its DIP fit, x_adv, its DIP fit, with the classifier's confidence in the true class."""
    from tf_inc.experiments.plots import image_grid
    from tf_inc.experiments.evaluation import true_class_confidence

    rows = [x, x_fit, x_adv, x_adv_fit]
    captions = [[f"{c * 100:.0f}%" for c in true_class_confidence(classifier, r, y)] for r in rows]
    return image_grid(rows, ["x", "DIP fit", f"x_adv ε={eps_key(eps)}", "DIP fit"], captions, bounds=bounds,
                      title=title or "DIP reconstructions (classifier confidence in the true class)")


# ----------------------------------------------------------------------------- entry point
def run(cfg: Table2DIPConfig):
    require_mnist(cfg.dataset, NAME, "the ImageNet protocol is table2_dip_imagenet")
    cfg.validate()
    from tf_inc.data.mnist import BOUNDS, load_mnist
    from tf_inc.experiments import zoo

    timer = Timer()
    classifier = zoo.mnist_classifier()
    x, y = load_mnist("test", cfg.n)
    out = run_protocol(classifier, x, y, cfg, BOUNDS)
    metrics = out["metrics"]
    eps = [float(e) for e in cfg.eps]
    figures = {"": table_figure(metrics, eps, paper_metrics(),
                                title=f"MNIST, BIM-{cfg.bim_steps} (n={len(x)}); bars: ours, ticks: paper (ImageNet)")}
    if out["curve"] is not None:
        figures["_iterations"] = curve_figure(
            metrics, title=f"early stopping matters: DIP fit with no MSE stop (n={metrics['curve/n']} per curve)")
    if float(cfg.recon_eps) in out["fits"] and cfg.recon_images > 0:
        m = min(cfg.recon_images, len(x))
        e = float(cfg.recon_eps)
        figures["_reconstructions"] = reconstruction_grid(classifier, x[:m], out["fits"]["clean"][:m],
                                                          out["adv"][e][:m], out["fits"][e][:m], y[:m], e, BOUNDS)
    config = {**cfg.__dict__, "eps_scale": "paper [-1, 1] units; MNIST pixel budget = eps / 2",
              "eps_pixels": [e / 2 for e in eps], "mse_scale": "[0, 1] pixels",
              "classifier": "zoo mnist_classifier.keras (paper's deep-MNIST architecture)",
              "paper_setting": "Table 2: ImageNet validation images, ResNet152, n=1000"}
    return write_results(NAME, out=results_dir(cfg.out, evaluation_strategy(cfg.strategy)), paper_ref="Table 2",
                         dataset="mnist", config=config,
                         metrics=metrics, paper=paper_metrics(), runtime_s=timer.elapsed, figures=figures)
