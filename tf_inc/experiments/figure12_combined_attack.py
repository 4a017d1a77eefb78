"""Figure 12 (Appendix A): the combined attack through a learned encoder.

E is an encoder for the fixed generator G (the VAE's own encoder on MNIST, or one
trained with G frozen: ``--encoder train``). FGSM on the autoencode-and-classify
model C∘G∘E (paper eq. 12) fools C∘G∘E, but the examples do not transfer to INC,
whose projection is gradient descent rather than E.

    python scripts/figure12_combined_attack.py
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np

from tf_inc.attacks import combined_model, fgsm_multi_eps
from tf_inc.bounds import dataset_bounds
from tf_inc.defences.inc import InvertAndClassify
from tf_inc.experiments import zoo
from tf_inc.experiments.evaluation import (
    inversion_config,
    load_eval_data,
    predict_labels,
)
from tf_inc.experiments.plots import accuracy_curves
from tf_inc.experiments.results import Timer, write_results
from tf_inc.manifold.inversion import InversionConfig

NAME = "figure12_combined_attack"


@dataclass
class Figure12Config:
    """Figure 12: FGSM through C∘G∘E and its (non-)transfer to INC."""

    dataset: str = field(default="mnist", metadata={"help": "mnist or celeba", "choices": ["mnist", "celeba"]})
    n: int = field(default=200, metadata={"help": "number of test images"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    out: str = field(default="results", metadata={"help": "output directory"})
    eps: List[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3],
                             metadata={"help": "FGSM budgets"})
    encoder: str = field(default="auto", metadata={"help": "vae (MNIST), train, or auto (vae if available)"})
    encoder_images: int = field(default=20000, metadata={"help": "training images for --encoder train"})
    encoder_epochs: int = field(default=10, metadata={"help": "epochs for --encoder train"})
    steps: int = field(default=0, metadata={"min": 0, "help": "INC inversion steps (0 = dataset default)"})
    restarts: int = field(default=InversionConfig.restarts, metadata={"help": "INC inversion restarts"})


def run(cfg: Figure12Config):
    timer = Timer()
    bounds = dataset_bounds(cfg.dataset)
    classifier, generator, vae_encode = zoo.dataset_models(cfg.dataset)
    if cfg.encoder in ("vae", "auto") and vae_encode is not None:
        encode, enc_name = vae_encode, "vae"
    elif cfg.encoder == "vae":
        raise SystemExit("--encoder vae needs the MNIST VAE; use --encoder train")
    else:
        from tf_inc.training.encoder import train_encoder

        x_tr, _ = load_eval_data(cfg.dataset, cfg.encoder_images, split="train")
        print(f"[{NAME}] training an encoder for the fixed generator on {len(x_tr)} images ...", flush=True)
        encode, enc_name = train_encoder(generator, x_tr, epochs=cfg.encoder_epochs, seed=cfg.seed), "trained"

    combined = combined_model(classifier, generator, encode, bounds)   # C∘G∘E, differentiable end to end

    x, y = load_eval_data(cfg.dataset, cfg.n)
    advs = [xa.numpy() for xa in fgsm_multi_eps(combined, x, y, cfg.eps, bounds)]
    inv = inversion_config(cfg.dataset, cfg.steps, cfg.restarts)
    inc = InvertAndClassify(generator, classifier, inv, seed=cfg.seed)
    out = inc.predict(np.concatenate(advs), progress=True)
    n = len(x)
    recons = [combined.reconstruct(a).numpy() for a in advs]          # G(E(x_adv)), classified by C∘G∘E
    ae_acc = [float((predict_labels(classifier, r) == y).mean()) for r in recons]
    clf_acc = [float((predict_labels(classifier, a) == y).mean()) for a in advs]
    inc_acc = [float((out["label"][k * n:(k + 1) * n] == y).mean()) for k in range(len(advs))]
    ae_l2 = [float(np.linalg.norm((r - a).reshape(n, -1), axis=1).mean()) for r, a in zip(recons, advs)]
    inc_l2 = [float(out["result"].l2[k * n:(k + 1) * n].mean()) for k in range(len(advs))]
    for e, a, b in zip(cfg.eps, ae_acc, inc_acc):
        print(f"  eps={e:<5} C∘G∘E {a * 100:5.1f}%   INC {b * 100:5.1f}%")
    metrics = {"eps": list(cfg.eps), "autoencoder_acc": ae_acc, "inc_acc": inc_acc, "classifier_acc": clf_acc,
               "autoencoder_recon_l2": ae_l2, "inc_recon_l2": inc_l2, "encoder": enc_name}
    fig = accuracy_curves(cfg.eps, {"C∘G∘E (attacked)": ae_acc, "Invert-and-Classify": inc_acc,
                                    "C alone": clf_acc},
                          xlabel="FGSM ε on C∘G∘E", title=f"Combined attack ({cfg.dataset}, n={n})")
    return write_results(NAME, out=cfg.out, paper_ref="Figure 12", dataset=cfg.dataset, config=cfg,
                         metrics=metrics, paper={}, runtime_s=timer.elapsed, figures={"": fig})

