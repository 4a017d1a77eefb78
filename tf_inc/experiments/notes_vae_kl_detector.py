"""Notes: the VAE reconstruction detector — KL between the classifier's outputs on x and on G(E(x)).

The notes autoencode each input with a VAE and flag it when the classifier's output
distribution on the reconstruction diverges from its output on the input,
``KL(C(x) ‖ C(G(E(x))))`` (:class:`tf_inc.detectors.reconstruction.VAEKLDetector`);
they report 99–100 % detection at the threshold 0.3 for their (2-d latent) VAE and
targeted iterative FGSM. Here, for both the paper's 20-d VAE and a 2-d one
(``mnist_vae_2d.keras``) and several attacks on the classifier (FGSM, the notes'
targeted iterative FGSM towards 6, PGD, CW-ℓ2): the threshold sweep, ROC and AUC, the
detection rate at a threshold calibrated for 5 % false positives on clean validation
images, and at the notes' 0.3. Then the adaptive attacker (Carlini & Wagner 2017) who
knows the detector: PGD on the CW margin plus the KL above the threshold.

    python scripts/notes_vae_kl_detector.py
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from tf_inc.attacks import bim, cw_l2, fgsm, pgd
from tf_inc.attacks.detector_aware import detector_aware_pgd
from tf_inc.defences.autoencode import AutoencodeAndClassify
from tf_inc.detectors.evaluation import detection_metrics, roc_axes, sweep, threshold_at_fpr
from tf_inc.detectors.reconstruction import KL_DIRECTIONS, VAEKLDetector
from tf_inc.experiments import zoo
from tf_inc.experiments.evaluation import predict_labels, require_mnist
from tf_inc.experiments.results import Timer, write_results

NAME = "notes_vae_kl_detector"
NOTES_THRESHOLD = 0.3


@dataclass
class VAEKLConfig:
    """Notes: KL(C(x) ‖ C(G(E(x)))) as an adversarial-input detector, 20-d and 2-d VAEs."""

    dataset: str = field(default="mnist", metadata={"help": "the notes use MNIST", "choices": ["mnist"]})
    n: int = field(default=200, metadata={"help": "test images"})
    seed: int = field(default=0, metadata={"help": "seed of the PGD starts"})
    out: str = field(default="results", metadata={"help": "output directory"})
    fpr: float = field(default=0.05, metadata={"help": "false-positive rate of the calibrated threshold"})
    n_calib: int = field(default=1000, metadata={"help": "clean validation images (last 5000 of train) for thresholds"})
    direction: str = field(default="forward", metadata={"help": "KL(C(x)‖C(x̂)) forward, reverse or symmetric",
                                                        "choices": list(KL_DIRECTIONS)})
    latents: List[int] = field(default_factory=lambda: [20, 2], metadata={"help": "VAE latent sizes (20 and/or 2)"})
    thresholds: List[float] = field(default_factory=lambda: [0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
                                    metadata={"help": "threshold sweep"})
    fgsm_eps: float = field(default=0.3, metadata={"help": "FGSM ℓ∞ budget"})
    ifgsm_target: int = field(default=6, metadata={"help": "target class of the notes' iterative FGSM"})
    ifgsm_step: float = field(default=0.001, metadata={"help": "iterative FGSM step (notes: 0.001)"})
    ifgsm_iter: int = field(default=200, metadata={"help": "iterative FGSM steps (notes: 200)"})
    pgd_eps: float = field(default=0.3, metadata={"help": "PGD ℓ∞ budget"})
    pgd_iter: int = field(default=40, metadata={"help": "PGD steps"})
    cw_binary_steps: int = field(default=4, metadata={"help": "CW-ℓ2 binary-search steps"})
    cw_iterations: int = field(default=150, metadata={"help": "CW-ℓ2 Adam iterations per step"})
    cw_learning_rate: float = field(default=0.05, metadata={"help": "CW-ℓ2 Adam learning rate"})
    cw_initial_const: float = field(default=0.1, metadata={"help": "CW-ℓ2 initial c"})
    vae2d_epochs: int = field(default=100, metadata={"help": "max epochs if mnist_vae_2d.keras must be trained"})
    vae2d_n_train: int = field(default=0, metadata={"help": "training images for the 2-d VAE (0 = all 55000)"})
    vae2d_run_dir: str = field(default="runs/mnist_vae_2d", metadata={"help": "2-d VAE checkpoints"})
    adaptive_n: int = field(default=100, metadata={"help": "images attacked adaptively (0 = skip)"})
    adaptive_eps: float = field(default=0.3, metadata={"help": "ℓ∞ budget of the adaptive attack"})
    adaptive_iter: int = field(default=100, metadata={"help": "PGD steps of the adaptive attack"})
    adaptive_lams: List[float] = field(default_factory=lambda: [1.0, 10.0],
                                       metadata={"help": "λ of the detector term, one restart each"})


def _attacks(cfg: VAEKLConfig, classifier, x, y) -> Dict[str, tuple]:
    """``name -> (images, labels, mask of images it applies to)``."""
    out = {}
    out[f"fgsm_{cfg.fgsm_eps:g}"] = np.concatenate([fgsm(classifier, x[s:s + 500], y[s:s + 500], cfg.fgsm_eps)
                                                    .numpy() for s in range(0, len(x), 500)])
    keep = y != cfg.ifgsm_target
    target = np.full(int(keep.sum()), cfg.ifgsm_target, np.int64)
    # the notes' loop: x ← clip(x − α·sign ∇ CE(target)), 200 steps of 0.001 (so ‖δ‖∞ ≤ 0.2, never projected)
    ifgsm = bim(classifier, x[keep], target, eps=cfg.ifgsm_step * cfg.ifgsm_iter, nb_iter=cfg.ifgsm_iter,
                eps_iter=cfg.ifgsm_step, targeted=True).numpy()
    out[f"ifgsm_to{cfg.ifgsm_target}"] = (ifgsm, keep)
    out[f"pgd_{cfg.pgd_eps:g}"] = pgd(classifier, x, y, cfg.pgd_eps, nb_iter=cfg.pgd_iter, seed=cfg.seed).numpy()
    out["cw_l2"] = cw_l2(classifier, x, y, binary_search_steps=cfg.cw_binary_steps, max_iterations=cfg.cw_iterations,
                         learning_rate=cfg.cw_learning_rate, initial_const=cfg.cw_initial_const).numpy()
    return {k: (v if isinstance(v, tuple) else (v, np.ones(len(x), bool))) for k, v in out.items()}


def run(cfg: VAEKLConfig):
    require_mnist(cfg.dataset, NAME)
    if not set(cfg.latents) <= {2, 20} or not cfg.latents:
        raise SystemExit("--latents: 20 (the paper's VAE) and/or 2 (mnist_vae_2d.keras)")
    import matplotlib.pyplot as plt

    from tf_inc.data.mnist import load_mnist, train_val_split

    timer = Timer()
    classifier, generator, encode = zoo.dataset_models("mnist")
    vaes = {}
    for k in cfg.latents:
        if k == 20:
            vaes[k] = (generator, encode)
        else:
            v2 = zoo.mnist_vae_2d(epochs=cfg.vae2d_epochs, n_train=cfg.vae2d_n_train, run_dir=cfg.vae2d_run_dir)
            vaes[k] = (v2.decoder, v2.encode)
    x, y = load_mnist("test", cfg.n)
    _, (x_val, _) = train_val_split()
    x_cal = x_val[:cfg.n_calib]
    print(f"[{NAME}] attacks on {len(x)} images ...", flush=True)
    attacks = _attacks(cfg, classifier, x, y)

    m: Dict[str, object] = {"n": len(x)}
    for name, (imgs, keep) in attacks.items():
        m[f"{name}/classifier_acc"] = float((predict_labels(classifier, imgs) == y[keep]).mean())
        m[f"{name}/n"] = int(keep.sum())
    hist_data, roc_data, sweeps = {}, {}, {}
    for k, (gen, enc) in vaes.items():
        ae = AutoencodeAndClassify(classifier, gen, enc)
        det = VAEKLDetector(classifier, ae, direction=cfg.direction)
        s_cal = det.score(x_cal)
        det.threshold = threshold_at_fpr(s_cal, cfg.fpr)
        s_clean = det.score(x)
        p = f"vae{k}/"
        m[p + "threshold_at_fpr"] = det.threshold
        m[p + "clean_acc_reconstructed"] = float((ae.predict(x)["label"] == y).mean())
        m[p + "false_positive_rate_at_notes_threshold"] = float((s_clean > NOTES_THRESHOLD).mean())
        for name, (imgs, keep) in attacks.items():
            s_adv = det.score(imgs)
            dm = detection_metrics(s_clean, s_adv, det.threshold, p + name + "/")
            m.update(dm)
            m[p + name + "/detection_rate_at_notes_threshold"] = float((s_adv > NOTES_THRESHOLD).mean())
            m[p + name + "/reconstructed_acc"] = float((ae.predict(imgs)["label"] == y[keep]).mean())
            sw = sweep(s_clean, s_adv, cfg.thresholds)
            m[p + name + "/sweep_detection_rate"] = sw["detection_rate"]
            m[p + "sweep_false_positive_rate"] = sw["false_positive_rate"]
            roc_data.setdefault(k, {})[name] = (s_clean, s_adv)
            sweeps.setdefault(k, {})[name] = sw
            hist_data.setdefault(k, {"clean": s_clean})[name] = s_adv
        m["thresholds"] = list(cfg.thresholds)

        if cfg.adaptive_n > 0 and k == cfg.latents[0]:
            ok = np.where(predict_labels(classifier, x) == y)[0][:cfg.adaptive_n]
            print(f"[{NAME}] adaptive attack on the {k}-d KL detector, {len(ok)} images ...", flush=True)
            for tag, lams in (("unaware", [0.0]), ("aware", list(cfg.adaptive_lams))):
                res = detector_aware_pgd(det, x[ok], y[ok], cfg.adaptive_eps, lams=lams,
                                         nb_iter=cfg.adaptive_iter, seed=cfg.seed)
                fooled = predict_labels(classifier, res.x_adv) != y[ok]
                detected = det.detect(res.x_adv)
                m[f"adaptive/{tag}/attack_success"] = float(fooled.mean())
                m[f"adaptive/{tag}/detection_rate"] = float(detected.mean())
                m[f"adaptive/{tag}/undetected_success"] = float((fooled & ~detected).mean())
            m["adaptive/vae_latent"] = int(k)
            m["adaptive/n"] = int(len(ok))

    for k in vaes:
        for name in attacks:
            p = f"vae{k}/{name}/"
            print(f"  {k:2d}-d VAE {name:12s} AUC {m[p + 'auc']:.3f}  "
                  f"detect@5%FPR {m[p + 'detection_rate'] * 100:5.1f}%  "
                  f"detect@0.3 {m[p + 'detection_rate_at_notes_threshold'] * 100:5.1f}%")

    ks = list(vaes)
    fig, axes = plt.subplots(len(ks), 3, figsize=(14, 3.6 * len(ks)), squeeze=False)
    for row, k in enumerate(ks):
        ax = axes[row][0]
        bins = np.logspace(-6, 2, 50)
        for name, v in hist_data[k].items():
            ax.hist(np.clip(v, 1e-6, 100), bins=bins, histtype="step", lw=1.3, label=name)
        ax.axvline(NOTES_THRESHOLD, color="k", ls="--", lw=1, label="notes' 0.3")
        ax.set_xscale("log")
        ax.set_xlabel("KL(C(x) ‖ C(G(E(x))))")
        ax.set_title(f"{k}-d VAE: KL distribution", fontsize=9)
        ax.legend(fontsize=7)
        ax = axes[row][1]
        for name, sw in sweeps[k].items():
            ax.plot(sw["thresholds"], np.asarray(sw["detection_rate"]) * 100, marker="o", label=name)
        ax.plot(cfg.thresholds, np.asarray(m[f"vae{k}/sweep_false_positive_rate"]) * 100, "k--", marker="x",
                label="clean (false positives)")
        ax.set_xscale("log")
        ax.set_xlabel("threshold")
        ax.set_ylabel("flagged (%)")
        ax.set_title(f"{k}-d VAE: threshold sweep", fontsize=9)
        ax.legend(fontsize=7)
        roc_axes(axes[row][2], roc_data[k], title=f"{k}-d VAE: ROC", mark_fpr=cfg.fpr)
    fig.tight_layout()
    paper = {"vae2/ifgsm_to6/detection_rate_at_notes_threshold": 0.99,
             "ifgsm_to6/classifier_acc": 0.095, "vae2/ifgsm_to6/reconstructed_acc": 0.218}
    return write_results(NAME, out=cfg.out, paper_ref="notes: VAE reconstruction (KL) detector", dataset="mnist",
                         config=cfg, metrics=m, paper=paper, runtime_s=timer.elapsed, figures={"": fig})
