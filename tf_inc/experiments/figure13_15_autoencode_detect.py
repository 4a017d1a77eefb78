"""Appendix A, Figures 13–15: autoencode-and-classify, detection by reconstruction error, and the
adaptive attack on each detector.

* The defended model is ``C(G(E(x)))`` with the MNIST VAE's encoder; it is attacked
  through the encoder with FGSM (paper eq. 12), ε = 0.1 as in Fig. 15.
* **Figure 13**: distributions of ``‖x − G(E(x))‖₂`` (encoder path) and
  ``‖x − G(z*)‖₂`` (INC's projection) for clean and adversarial inputs; both as
  detectors: ROC, AUC, and the detection rate at a threshold calibrated for a 5 %
  false-positive rate on clean images of the validation split.
* **Figure 14**: codes ``E(x)`` of clean and adversarial inputs for a VAE with a
  2-d latent (same architecture, ``mnist_vae_2d.keras``, trained once), attacked
  the same way through its own encoder; against the N(0, I) prior.
* **Figure 15**: x, x_adv, G(E(x_adv)), G(z*_adv) with the classifier's labels.
* **Adaptive attacks** (Carlini & Wagner 2017): PGD that must fool the guarded
  classifier *and* keep the detector's score under its threshold
  (:func:`tf_inc.attacks.detector_aware.detector_aware_pgd`), through the encoder
  for the encoder path and with BPDA + Danskin's gradient through a cheaper
  projection for the INC path; judged by the deployed detector, before (λ = 0,
  the attacker ignores the detector) and after (λ > 0) the attacker knows it.

    python scripts/figure13_15_autoencode_detect.py
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np

from tf_inc.attacks import fgsm
from tf_inc.attacks.detector_aware import detector_aware_pgd
from tf_inc.defences.autoencode import AutoencodeAndClassify
from tf_inc.defences.inc import InvertAndClassify
from tf_inc.detectors.evaluation import detection_metrics, roc, roc_axes, threshold_at_fpr
from tf_inc.detectors.reconstruction import EncoderReconstructionDetector, InversionReconstructionDetector
from tf_inc.experiments import zoo
from tf_inc.experiments.evaluation import predict_labels, require_mnist
from tf_inc.experiments.results import Timer, write_results
from tf_inc.manifold.inversion import InversionConfig

NAME = "figure13_15_autoencode_detect"


@dataclass
class Figure13To15Config:
    """Appendix A (Figs. 13–15): autoencode-and-classify, reconstruction-error detectors, adaptive attacks."""

    dataset: str = field(default="mnist", metadata={"help": "Appendix A is MNIST-only", "choices": ["mnist"]})
    n: int = field(default=200, metadata={"help": "test images (clean and adversarial)"})
    seed: int = field(default=0, metadata={"help": "seed of the inversion restarts and attack starts"})
    out: str = field(default="results", metadata={"help": "output directory"})
    eps: float = field(default=0.1, metadata={"help": "ℓ∞ budget of the eq. 12 FGSM (Fig. 15: 0.1)"})
    fpr: float = field(default=0.05, metadata={"help": "false-positive rate the thresholds are calibrated at"})
    n_calib: int = field(default=200, metadata={"help": "clean validation images (last 5000 of train) for thresholds"})
    steps: int = field(default=InversionConfig.steps, metadata={"help": "INC inversion steps"})
    restarts: int = field(default=InversionConfig.restarts, metadata={"help": "INC inversion restarts"})
    grid_images: int = field(default=8, metadata={"help": "columns of the Figure 15 grid"})
    vae2d_epochs: int = field(default=100, metadata={"help": "max epochs if mnist_vae_2d.keras must be trained"})
    vae2d_n_train: int = field(default=0, metadata={"help": "training images for the 2-d VAE (0 = all 55000)"})
    vae2d_run_dir: str = field(default="runs/mnist_vae_2d", metadata={"help": "2-d VAE checkpoints"})
    adaptive_n: int = field(default=100, metadata={"help": "images attacked adaptively (0 = skip)"})
    adaptive_eps_encoder: float = field(default=0.1, metadata={"help": "ℓ∞ budget against the encoder path"})
    adaptive_eps_inc: float = field(default=0.3, metadata={"help": "ℓ∞ budget against INC + its detector"})
    adaptive_iter: int = field(default=100, metadata={"help": "PGD steps against the encoder path"})
    adaptive_inc_iter: int = field(default=40, metadata={"help": "PGD steps against the INC path"})
    adaptive_lams: List[float] = field(default_factory=lambda: [1.0, 10.0],
                                       metadata={"help": "λ of the detector term, one restart each"})
    attack_steps: int = field(default=100, metadata={"help": "inversion steps of the INC attacker's projection"})


def _panel_hist(ax, clean, adv, thr, title):
    bins = np.linspace(0.0, max(np.max(clean), np.max(adv)) * 1.05, 40)
    ax.hist(clean, bins=bins, alpha=0.6, label="clean x", color="tab:blue")
    ax.hist(adv, bins=bins, alpha=0.6, label="adversarial x+δ", color="tab:orange")
    ax.axvline(thr, color="k", ls="--", lw=1, label="threshold (5 % FPR)")
    ax.set_xlabel("ℓ2 reconstruction error")
    ax.set_ylabel("images")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def _adaptive(detector, judge, x, y, eps, n_iter, lams, seed):
    """Run the attack that ignores the detector (λ = 0) and the detector-aware one; ``judge(x_adv)``
    returns the deployed system's (labels, scores)."""
    out = {}
    for tag, ls in (("unaware", [0.0]), ("aware", list(lams))):
        res = detector_aware_pgd(detector, x, y, eps, lams=ls, nb_iter=n_iter, seed=seed)
        labels, scores = judge(res.x_adv)
        fooled = labels != y
        detected = scores > detector.threshold
        out[tag] = {
            "attack_success": float(fooled.mean()),
            "detection_rate": float(detected.mean()),
            "detection_rate_of_fooled": float(detected[fooled].mean()) if fooled.any() else float("nan"),
            "undetected_success": float((fooled & ~detected).mean()),
            "attacker_view_undetected_success": float(res.undetected.mean()),
        }
    return out


def run(cfg: Figure13To15Config):
    require_mnist(cfg.dataset, NAME)
    import matplotlib.pyplot as plt

    from tf_inc.data.mnist import BOUNDS, load_mnist, train_val_split
    from tf_inc.experiments.plots import image_grid

    timer = Timer()
    classifier, generator, encode = zoo.dataset_models("mnist")
    ae = AutoencodeAndClassify(classifier, generator, encode)
    x, y = load_mnist("test", cfg.n)
    _, (x_val, _) = train_val_split()
    x_cal = x_val[:cfg.n_calib]
    n = len(x)

    # --- the eq. 12 attack through the encoder
    x_adv = np.concatenate([fgsm(ae, x[s:s + 500], y[s:s + 500], cfg.eps).numpy() for s in range(0, n, 500)])
    p_clean, p_adv, p_cal = ae.predict(x), ae.predict(x_adv), ae.predict(x_cal)
    fooled = p_adv["label"] != y

    # --- encoder path
    enc_det = EncoderReconstructionDetector(ae)
    enc_det.threshold = threshold_at_fpr(p_cal["recon_l2"], cfg.fpr)
    m = detection_metrics(p_clean["recon_l2"], p_adv["recon_l2"], enc_det.threshold, "encoder/")
    m["encoder/detection_rate_of_fooled"] = float((p_adv["recon_l2"][fooled] > enc_det.threshold).mean()) \
        if fooled.any() else float("nan")

    # --- INC path: one projection of calibration, clean and adversarial images
    inv = InversionConfig(steps=cfg.steps, restarts=cfg.restarts)
    inc = InvertAndClassify(generator, classifier, inv, seed=cfg.seed, encoder=encode)
    inc_det = InversionReconstructionDetector(inc)
    print(f"[{NAME}] inverting {len(x_cal) + 2 * n} images ({cfg.restarts} restarts, <= {cfg.steps} steps) ...",
          flush=True)
    res = inc.invert(np.concatenate([x_cal, x, x_adv]), progress=True)
    nc = len(x_cal)
    l2_cal, l2_clean, l2_adv = res.l2[:nc], res.l2[nc:nc + n], res.l2[nc + n:]
    xhat_adv = res.x_hat[nc + n:]
    inc_det.threshold = threshold_at_fpr(l2_cal, cfg.fpr)
    m.update(detection_metrics(l2_clean, l2_adv, inc_det.threshold, "inc/"))
    m["inc/detection_rate_of_fooled"] = float((l2_adv[fooled] > inc_det.threshold).mean()) \
        if fooled.any() else float("nan")

    # --- accuracies and the Fig. 15 comparison G(E(x_adv)) vs G(z*_adv)
    inc_lab_clean = predict_labels(classifier, res.x_hat[nc:nc + n])
    inc_lab_adv = predict_labels(classifier, xhat_adv)
    m.update({
        "n": n, "eps": cfg.eps,
        "autoencoder_clean_acc": float((p_clean["label"] == y).mean()),
        "autoencoder_adv_acc": float((p_adv["label"] == y).mean()),
        "classifier_adv_acc": float((predict_labels(classifier, x_adv) == y).mean()),
        "inc_clean_acc": float((inc_lab_clean == y).mean()),
        "inc_adv_acc": float((inc_lab_adv == y).mean()),
        "mean_l2_x_adv_to_G_E_x_adv": float(p_adv["recon_l2"].mean()),
        "mean_l2_x_adv_to_G_zstar_adv": float(l2_adv.mean()),
        "frac_G_zstar_closer_than_G_E": float((l2_adv < p_adv["recon_l2"]).mean()),
        "latent20/mean_norm_clean": float(np.linalg.norm(p_clean["z"], axis=1).mean()),
        "latent20/mean_norm_adv": float(np.linalg.norm(p_adv["z"], axis=1).mean()),
    })
    m["latent20/norm_auc"] = roc(np.linalg.norm(p_clean["z"], axis=1), np.linalg.norm(p_adv["z"], axis=1))["auc"]

    # --- Figure 14: the 2-d-latent VAE, attacked through its own encoder
    vae2 = zoo.mnist_vae_2d(epochs=cfg.vae2d_epochs, n_train=cfg.vae2d_n_train, run_dir=cfg.vae2d_run_dir)
    ae2 = AutoencodeAndClassify(classifier, vae2.decoder, vae2.encode)
    x_adv2 = np.concatenate([fgsm(ae2, x[s:s + 500], y[s:s + 500], cfg.eps).numpy() for s in range(0, n, 500)])
    q_clean, q_adv = ae2.predict(x), ae2.predict(x_adv2)
    r_clean, r_adv = np.linalg.norm(q_clean["z"], axis=1), np.linalg.norm(q_adv["z"], axis=1)
    m.update({
        "latent2/autoencoder_clean_acc": float((q_clean["label"] == y).mean()),
        "latent2/autoencoder_adv_acc": float((q_adv["label"] == y).mean()),
        "latent2/mean_norm_clean": float(r_clean.mean()),
        "latent2/mean_norm_adv": float(r_adv.mean()),
        "latent2/frac_outside_3sigma_clean": float((r_clean > 3.0).mean()),
        "latent2/frac_outside_3sigma_adv": float((r_adv > 3.0).mean()),
        "latent2/norm_auc": roc(r_clean, r_adv)["auc"],
        "latent2/mean_code_shift": float(np.linalg.norm(q_adv["z"] - q_clean["z"], axis=1).mean()),
        "latent2/recon_auc": roc(q_clean["recon_l2"], q_adv["recon_l2"])["auc"],
    })

    # --- adaptive attacks on both detectors (images the defended model gets right)
    if cfg.adaptive_n > 0:
        ok = np.where(p_clean["label"] == y)[0][:cfg.adaptive_n]
        xa, ya = x[ok], y[ok]
        print(f"[{NAME}] adaptive attacks on {len(ok)} images ...", flush=True)

        def judge_encoder(z):
            p = ae.predict(z)
            return p["label"], p["recon_l2"]

        enc_res = _adaptive(enc_det, judge_encoder, xa, ya, cfg.adaptive_eps_encoder, cfg.adaptive_iter,
                            cfg.adaptive_lams, cfg.seed)
        view = inc_det.attack_view(seed=cfg.seed + 1000, config=InversionConfig(
            steps=cfg.attack_steps, restarts=1, warm_start=True, early_stop=False))

        def judge_inc(z):
            r = inc.invert(z, progress=True)
            return predict_labels(classifier, r.x_hat), r.l2

        inc_res = _adaptive(view, judge_inc, xa, ya, cfg.adaptive_eps_inc, cfg.adaptive_inc_iter,
                            cfg.adaptive_lams, cfg.seed)
        for path, r in (("encoder", enc_res), ("inc", inc_res)):
            for tag, d in r.items():
                for k, v in d.items():
                    m[f"adaptive/{path}/{tag}/{k}"] = v
        m["adaptive/n"] = int(len(ok))
    for k in ("encoder", "inc"):
        print(f"  {k:8s} AUC {m[k + '/auc']:.3f}  detection {m[k + '/detection_rate'] * 100:5.1f}% at FPR "
              f"{m[k + '/false_positive_rate'] * 100:4.1f}%")

    # --- figures
    fig13, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    _panel_hist(axes[0], p_clean["recon_l2"], p_adv["recon_l2"], enc_det.threshold, "‖x − G(E(x))‖ (encoder path)")
    _panel_hist(axes[1], l2_clean, l2_adv, inc_det.threshold, "‖x − G(z*)‖ (INC path)")
    roc_axes(axes[2], {"encoder path": (p_clean["recon_l2"], p_adv["recon_l2"]), "INC path": (l2_clean, l2_adv)},
             title="detection by reconstruction error", mark_fpr=cfg.fpr)
    fig13.suptitle(f"Figure 13: FGSM (eq. 12) through the VAE encoder, ε={cfg.eps}, n={n}", fontsize=10)
    fig13.tight_layout()

    fig14, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(q_clean["z"][:, 0], q_clean["z"][:, 1], s=8, alpha=0.7, label="E(x), clean")
    ax.scatter(q_adv["z"][:, 0], q_adv["z"][:, 1], s=8, alpha=0.7, label="E(x+δ), adversarial")
    t = np.linspace(0, 2 * np.pi, 200)
    for r in (1, 2, 3):
        ax.plot(r * np.cos(t), r * np.sin(t), color="grey", lw=0.7, ls=":")
    ax.set_aspect("equal")
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    ax.legend(fontsize=8)
    ax.set_title(f"Figure 14: 2-d VAE codes (circles: 1, 2, 3 σ of the prior), ε={cfg.eps}", fontsize=9)

    k = min(cfg.grid_images, n)
    rows = [x[:k], x_adv[:k], p_adv["x_hat"][:k], xhat_adv[:k]]
    labs = [predict_labels(classifier, x[:k]), predict_labels(classifier, x_adv[:k]), p_adv["label"][:k],
            inc_lab_adv[:k]]
    captions = [[f"C: {int(v)}" for v in lab] for lab in labs]
    fig15 = image_grid(rows, ["x", f"x_adv ε={cfg.eps:g}", "G(E(x_adv))", "G(z*_adv)"], captions, bounds=BOUNDS,
                       title="Figure 15: the attack fools the encoder; INC's projection finds the right digit "
                             "(C: classifier label)")
    paper = {}
    return write_results(NAME, out=cfg.out, paper_ref="Appendix A, Figures 13-15", dataset="mnist", config=cfg,
                         metrics=m, paper=paper, runtime_s=timer.elapsed,
                         figures={"": fig13, "_latent2d": fig14, "_reconstructions": fig15})
