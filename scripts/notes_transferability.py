"""Notes: transferability matrix of FGSM/PGD between three MNIST classifiers and their ensemble.

The experiment itself is :mod:`tf_inc.experiments.notes_transferability`; this script parses its config
(``--help`` lists every flag with its default) and prints where the figure and the result
JSON went.

    python scripts/notes_transferability.py        # trains mnist_mlp.keras / mnist_cnn_wide.keras once
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_transferability import TransferabilityConfig, run

if __name__ == "__main__":
    run_script(TransferabilityConfig, run)
