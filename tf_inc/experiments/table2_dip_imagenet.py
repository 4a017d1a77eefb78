"""Table 2 on real ImageNet photos: BIM-20 against a pretrained ImageNet classifier and the DIP defence.

The paper (§4.4, Table 2) attacks a ResNet152 with 20 steps of the Basic
Iterative Method, ``x ← Π_{x0,ε}(x + 2ε·sign ∇L)`` (§4.4.1), at ε ∈ {0.01, 0.05,
0.1} with pixels in [−1, 1], and classifies the Deep Image Prior fit of each
image instead of the image (Alg. 2), with §4.4.2's early stopping: Adam lr 0.01,
at most 500 iterations for ε ≤ 0.05 and 100 for ε = 0.1, stop once the MSE falls
below 0.005. It reports, on 1000 random validation images, the accuracy of the
classifier and of the DIP-protected classifier on clean and adversarial images.

Here the same protocol runs at 224 px with the full-size skip network of
Ulyanov et al. (5 scales, 128/128/4 channels, :mod:`tf_inc.models.skip_net`):

* **embedded default**: SqueezeNet 1.1 with ImageNet weights (converted from
  ndf's SHA-pinned pickle, :mod:`tf_inc.models.imagenet`) on the bundled labelled
  photos (20 ImageNet validation images from foolbox, then photos from
  ai-benchmark labelled by eye, :mod:`tf_inc.data.imagenet`);
* **the paper's configuration**: ``--classifier resnet152 --weights FILE
  --images DIR`` (Keras ResNet152 ImageNet weights and a folder of labelled
  ImageNet images the user supplies; ``--n 1000`` random images of it with
  ``--seed``).

Our images are in [0, 1], so the paper's ε is halved (ε = 0.01 in [−1, 1] is
0.005 here, 1.3/255) and so is BIM's step; the classifiers do their own Caffe
preprocessing inside the model. The DIP fits of the clean images are shared by
the ε's with the same iteration budget; the 100-iteration clean fit is the
500-iteration fit's snapshot after 100 iterations (the same deterministic fit).
A full-size fit is slow on a CPU, hence the small default ``--n``; ``seconds
_per_image`` in the result says what a larger run costs. With ``--run-dir DIR`` every DIP fit is
resumable: finished chunks (``--batch-size`` images each) are saved atomically and a rerun with the
same settings after a kill refits only the rest.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from tf_inc.experiments.results import Timer, write_results

NAME = "table2_dip_imagenet"
#: Table 2 (ResNet152, 1000 ImageNet validation images), by ε in the paper's [−1, 1] scale
PAPER_TABLE2 = {
    0.01: {"classifier_clean_acc": 0.71, "dip_clean_acc": 0.52, "classifier_adv_acc": 0.05, "dip_adv_acc": 0.49},
    0.05: {"classifier_clean_acc": 0.71, "dip_clean_acc": 0.52, "classifier_adv_acc": 0.02, "dip_adv_acc": 0.40},
    0.1: {"classifier_clean_acc": 0.71, "dip_clean_acc": 0.35, "classifier_adv_acc": 0.01, "dip_adv_acc": 0.30},
}
PAPER_RANGE_WIDTH = 2.0     # the paper's pixels lie in [−1, 1]


def eps_key(eps: float) -> str:
    return f"{float(eps):g}"


@dataclass
class Table2ImageNetConfig:
    """Table 2 on ImageNet photos: BIM-20 vs the DIP-protected classifier (paper §4.4)."""

    dataset: str = field(default="imagenet", metadata={"help": "ImageNet only", "choices": ["imagenet"]})
    n: int = field(default=2, metadata={
        "help": "number of images (bundled photos: foolbox's 20 first; the paper used 1000)"})
    seed: int = field(default=0, metadata={
        "help": "seed of the DIP networks' random weights and codes (and of the --images subset)"})
    out: str = field(default="results", metadata={"help": "output directory"})
    classifier: str = field(default="squeezenet", metadata={
        "help": "squeezenet (embedded) or resnet152 (the paper's; needs --weights)",
        "choices": ["squeezenet", "resnet152"]})
    weights: str = field(default="", metadata={
        "help": "ResNet152 Keras ImageNet weights .h5 (default: <models dir>/"
                "resnet152_weights_tf_dim_ordering_tf_kernels.h5)"})
    images: str = field(default="", metadata={
        "help": "folder of labelled ImageNet images (<wnid or index>/*.JPEG, labels.csv, or ILSVRC2012 val); "
                "empty = the bundled photos"})
    labels_csv: str = field(default="", metadata={"help": "labels CSV for --images (default DIR/labels.csv)"})
    image_size: int = field(default=224, metadata={"help": "crop size (paper 224)"})
    eps: List[float] = field(default_factory=lambda: [0.01, 0.05, 0.1], metadata={
        "help": "BIM ℓ∞ budgets in the paper's [-1, 1] scale (halved for our [0, 1] pixels)"})
    bim_steps: int = field(default=20, metadata={"help": "BIM iterations (paper 20)"})
    bim_step_factor: float = field(default=2.0, metadata={"help": "BIM step = factor × ε (paper: 2ε)"})
    max_iterations: Optional[int] = field(default=None, metadata={
        "help": "DIP iterations for every ε (none = the paper's: 500 for ε <= 0.05, 100 for ε = 0.1)"})
    mse_threshold: float = field(default=0.005, metadata={"help": "stop a fit once its MSE < this (paper 0.005)"})
    mse_scale: str = field(default="01", metadata={
        "help": "pixel scale the MSE threshold is measured in: 01 = [0, 1] (the reference DIP code's, as "
                "tf_inc.defences.dip), pm1 = [-1, 1] (the paper's image scale; 4x the [0, 1] MSE, so a "
                "4x tighter fit)", "choices": ["01", "pm1"]})
    learning_rate: float = field(default=0.01, metadata={"help": "DIP Adam lr (paper 0.01)"})
    input_noise_std: float = field(default=0.0, metadata={
        "help": "code noise σ per iteration (reference denoising 1/30; 0 = Alg. 2 as written)"})
    ema: float = field(default=0.0, metadata={"help": "output averaging (reference 0.99; 0 = Alg. 2 as written)"})
    net_scales: int = field(default=5, metadata={"help": "skip-network scales (reference 5)"})
    net_channels: int = field(default=128, metadata={"help": "skip-network down/up widths (reference 128)"})
    net_skip: int = field(default=4, metadata={"help": "skip-network skip widths (reference 4)"})
    batch_size: int = field(default=1, metadata={
        "help": "DIP networks fitted at once (at 224 px one at a time was fastest on a 2-core CPU)"})
    attack_batch: int = field(default=16, metadata={"help": "images per BIM batch"})
    figure_images: int = field(default=4, metadata={"help": "columns of the Figure 10-style grid (ε = 0.05)"})
    run_dir: str = field(default="", metadata={
        "help": "resume directory: every DIP fit's finished chunks are saved here (atomically) and a rerun with "
                "the same settings after a kill skips them (timings then cover the rerun's work only); "
                "empty = no resume"})


def _load_data(cfg: Table2ImageNetConfig):
    from tf_inc.data.imagenet import load_imagenet

    x, y, items = load_imagenet(cfg.n, cfg.image_size, images=cfg.images or None,
                                labels_csv=cfg.labels_csv or None, seed=cfg.seed if cfg.images else None)
    return x, y, items


def _bim(classifier, x, y, eps01: List[float], cfg: Table2ImageNetConfig, bounds):
    """BIM-20 (step factor × ε, ℓ∞ projection, clip to bounds) at every ε, in image batches."""
    from tf_inc.attacks.pgd import basic_iterative_method

    advs = [[] for _ in eps01]
    for s in range(0, len(x), cfg.attack_batch):
        sl = slice(s, s + cfg.attack_batch)
        outs = []
        for e in eps01:        # one ε at a time: its own step size
            outs.append(basic_iterative_method(classifier, x[sl], y[sl], e, nb_iter=cfg.bim_steps,
                                               eps_iter=cfg.bim_step_factor * e, bounds=bounds))
        for k, a in enumerate(outs):
            advs[k].append(np.asarray(a))
    return [np.concatenate(a) for a in advs]


def _budget(cfg: Table2ImageNetConfig, eps: float) -> int:
    from tf_inc.defences.dip import DIPConfig

    return int(cfg.max_iterations) if cfg.max_iterations is not None else DIPConfig.paper_max_iterations(eps)


def _threshold01(cfg: Table2ImageNetConfig) -> float:
    """The early-stopping threshold on the [0, 1]-scale MSE the fitter measures."""
    if cfg.mse_scale not in ("01", "pm1"):
        from tf_inc.errors import InputError

        raise InputError(f"mse_scale must be 01 or pm1, got {cfg.mse_scale!r}")
    return cfg.mse_threshold if cfg.mse_scale == "01" else cfg.mse_threshold / PAPER_RANGE_WIDTH ** 2


def run(cfg: Table2ImageNetConfig):
    from tf_inc.defences.dip import DIPConfig, DIPInvertAndClassify
    from tf_inc.errors import InputError
    from tf_inc.experiments.evaluation import predict_labels
    from tf_inc.models.imagenet import load_classifier
    from tf_inc.models.skip_net import SkipNetConfig

    if cfg.dataset != "imagenet":
        raise SystemExit(f"{NAME} runs on ImageNet photos only (use table2_dip for MNIST)")
    if cfg.n < 1:
        raise InputError(f"--n must be >= 1, got {cfg.n}")
    timer = Timer()
    classifier = load_classifier(cfg.classifier, cfg.image_size, cfg.weights or None)
    bounds = classifier.bounds
    x, y, items = _load_data(cfg)
    n = len(x)
    eps = [float(e) for e in cfg.eps]
    width = bounds[1] - bounds[0]
    eps01 = [e * width / PAPER_RANGE_WIDTH for e in eps]
    print(f"[{NAME}] {cfg.classifier} on {n} images ({'folder ' + cfg.images if cfg.images else 'bundled photos'}), "
          f"BIM-{cfg.bim_steps} at paper ε {eps} = {[round(e, 5) for e in eps01]} on [0, 1] pixels", flush=True)

    clean_pred = predict_labels(classifier, x, batch=32)
    clean_acc = float((clean_pred == y).mean())
    t0 = time.time()
    advs = _bim(classifier, x, y, eps01, cfg, bounds)
    bim_s = time.time() - t0
    adv_acc = [float((predict_labels(classifier, a, batch=32) == y).mean()) for a in advs]

    dip_cfg = DIPConfig(max_iterations=max(_budget(cfg, e) for e in eps), learning_rate=cfg.learning_rate,
                        mse_threshold=_threshold01(cfg), input_noise_std=cfg.input_noise_std, ema=cfg.ema,
                        batch_size=cfg.batch_size)
    net = SkipNetConfig.uniform(cfg.net_scales, cfg.net_channels, cfg.net_channels, cfg.net_skip)
    dip = DIPInvertAndClassify(classifier, dip_cfg, net=net, seed=cfg.seed, bounds=bounds,
                               image_shape=(cfg.image_size, cfg.image_size, 3))
    budgets = sorted({_budget(cfg, e) for e in eps})

    # --- clean images: one fit of the largest budget, snapshots at the smaller ones
    print(f"[{NAME}] DIP fits of the clean images (<= {budgets[-1]} iterations, "
          f"MSE < {cfg.mse_threshold} in {'[0, 1]' if cfg.mse_scale == '01' else '[-1, 1]'} scale) ...", flush=True)
    t0 = time.time()
    run_dir = cfg.run_dir or None            # resumable DIP fits (tf_inc.experiments.resumable)
    clean_fit = dip.fit(x, progress=True, snapshots=budgets[:-1], max_iterations=budgets[-1], run_dir=run_dir)
    clean_s = time.time() - t0
    clean_hat = {budgets[-1]: clean_fit.x_hat, **clean_fit.snapshots}
    clean_iters = {b: np.minimum(clean_fit.iterations, b) for b in budgets}
    dip_clean_acc = {b: float((np.argmax(dip.classify(clean_hat[b]), 1) == y).mean()) for b in budgets}

    metrics = {"n": n, "classifier_top1_clean": clean_acc}
    paper = {}
    adv_fits = {}
    for k, e in enumerate(eps):
        b = _budget(cfg, e)
        print(f"[{NAME}] ε={e:g}: DIP fits of the adversarial images (<= {b} iterations) ...", flush=True)
        t0 = time.time()
        fit = dip.fit(advs[k], progress=True, max_iterations=b, run_dir=run_dir)
        secs = time.time() - t0
        adv_fits[e] = fit
        dip_adv = float((np.argmax(dip.classify(fit.x_hat), 1) == y).mean())
        key = eps_key(e)
        metrics.update({
            f"{key}/classifier_clean_acc": clean_acc,
            f"{key}/dip_clean_acc": dip_clean_acc[b],
            f"{key}/classifier_adv_acc": adv_acc[k],
            f"{key}/dip_adv_acc": dip_adv,
            f"{key}/mean_iterations": float(fit.iterations.mean()),
            f"{key}/seconds_per_image": secs / n,
            f"{key}/dip_clean_mean_iterations": float(clean_iters[b].mean()),
            f"{key}/dip_adv_mse": float(fit.mse.mean()),
            f"{key}/dip_adv_stopped_frac": float(fit.stopped.mean()),
            f"{key}/eps_pixel_01": e * width / PAPER_RANGE_WIDTH,
            f"{key}/max_iterations": b,
        })
        if e in PAPER_TABLE2:
            paper.update({f"{key}/{m}": v for m, v in PAPER_TABLE2[e].items()})
        print(f"  ε={key:<5} classifier clean {clean_acc:6.1%} adv {adv_acc[k]:6.1%} | DIP clean "
              f"{dip_clean_acc[b]:6.1%} adv {dip_adv:6.1%} | {fit.iterations.mean():.0f} it, "
              f"{secs / n:.1f} s/image", flush=True)
    metrics.update({"clean_fit_seconds_per_image": clean_s / n, "bim_seconds": bim_s,
                    "dip_clean_mse": float(clean_fit.mse.mean())})

    figures = {"": _table_figure(eps, metrics, paper, n, cfg.classifier)}
    e_fig = min(eps, key=lambda e: abs(e - 0.05))
    m = min(cfg.figure_images, n)
    if m:
        k = eps.index(e_fig)
        b = _budget(cfg, e_fig)
        figures["_reconstructions"] = _recon_figure(dip, classifier, x[:m], clean_hat[b][:m], advs[k][:m],
                                                    adv_fits[e_fig].x_hat[:m], y[:m], e_fig, bounds)
    config = dict(cfg.__dict__, resolved_eps_pixel_01=eps01, images_used=[str(it.path) for it in items],
                  dip_net=str(dip.net_config), dip_budgets=budgets)
    return write_results(NAME, out=cfg.out, paper_ref="Table 2", dataset="imagenet", config=config,
                         metrics=metrics, paper=paper, runtime_s=timer.elapsed, figures=figures)


def _table_figure(eps, metrics, paper, n, classifier_name):
    import matplotlib.pyplot as plt

    cols = [("classifier_clean_acc", "clean, no defence"), ("dip_clean_acc", "clean, DIP"),
            ("classifier_adv_acc", "BIM, no defence"), ("dip_adv_acc", "BIM, DIP")]
    fig, axes = plt.subplots(1, len(eps), figsize=(3.4 * len(eps), 3.2), squeeze=False, sharey=True)
    for ax, e in zip(axes[0], eps):
        key = eps_key(e)
        ours = [metrics[f"{key}/{c}"] * 100 for c, _ in cols]
        xs = np.arange(len(cols))
        ax.bar(xs - 0.2, ours, 0.4, label=f"{classifier_name} (n={n})", color="tab:blue")
        if paper:
            ref = [paper.get(f"{key}/{c}", np.nan) * 100 for c, _ in cols]
            ax.bar(xs + 0.2, ref, 0.4, label="paper: ResNet152 (n=1000)", color="tab:gray")
        ax.set_xticks(xs, [lbl for _, lbl in cols], rotation=30, ha="right", fontsize=8)
        ax.set_title(f"BIM-20, ε = {e:g} in [-1, 1]", fontsize=9)
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("top-1 accuracy (%)")
    axes[0][0].legend(fontsize=7, loc="upper right")
    fig.suptitle("Table 2: Deep Image Prior INC on ImageNet photos", fontsize=10)
    fig.tight_layout()
    return fig


def _recon_figure(dip, classifier, x, x_hat, x_adv, x_adv_hat, y, eps, bounds):
    from tf_inc.data.imagenet import class_name
    from tf_inc.experiments.plots import image_grid

    rows = [x, x_hat, x_adv, x_adv_hat]
    captions = []
    for r, row in enumerate(rows):
        probs = dip.classify(row)
        captions.append([f"{class_name(int(p.argmax()))[:14]} {p.max() * 100:.0f}%"
                         + (" ✓" if int(p.argmax()) == int(t) else "") for p, t in zip(probs, y)])
    return image_grid(rows, ["x", "DIP fit of x", f"x_adv (BIM ε={eps:g})", "DIP fit of x_adv"], captions,
                      bounds=bounds, title="Figure 10-style: classifier's top class on each image")
