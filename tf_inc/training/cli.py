"""One training entry per model: ``python -m tf_inc.training <model> [--flag value ...]``.

Models: ``mnist-classifier``, ``vae``, ``celeba-classifier``, ``began``, ``robust-classifier``,
``adv-classifier`` (adversarial-training baseline). Every
flag is a field of the model's config dataclass (``--help`` lists them with the
paper's defaults). Runs resume from their ``--run-dir`` after an interruption.
"""
from __future__ import annotations

import sys


def _entries():
    from began.train import BEGANConfig, train_began
    from tf_inc.defences.adversarial_training import (
        AdversarialTrainingConfig,
        train_adversarial_classifier,
    )
    from tf_inc.defences.robust_training import (
        RobustTrainingConfig,
        train_robust_classifier,
    )
    from tf_inc.training.classifier import (
        CelebAClassifierConfig,
        MnistClassifierConfig,
        train_celeba_classifier,
        train_mnist_classifier,
    )
    from vae.model import VAEConfig
    from vae.train import train_vae

    return {
        "mnist-classifier": (MnistClassifierConfig, train_mnist_classifier),
        "vae": (VAEConfig, train_vae),
        "celeba-classifier": (CelebAClassifierConfig, train_celeba_classifier),
        "began": (BEGANConfig, train_began),
        "robust-classifier": (RobustTrainingConfig, train_robust_classifier),
        "adv-classifier": (AdversarialTrainingConfig, train_adversarial_classifier),
    }


def main(argv=None):
    from tf_inc.cli import parse_config

    argv = list(sys.argv[1:] if argv is None else argv)
    entries = _entries()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in entries:
        print(__doc__)
        print("usage: python -m tf_inc.training {" + ",".join(entries) + "} [--flags]")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    cls, fn = entries[argv[0]]
    from tf_inc.errors import InputError

    cfg = parse_config(cls, argv[1:], description=f"train {argv[0]}")
    try:
        fn(cfg)
    except InputError as e:          # bad data, TF_CONFIG, ...: one line, not a traceback
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
