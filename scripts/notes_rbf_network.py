"""Notes: shallow RBF network vs the CNN under FGSM/PGD (the lecture's good defence, poor accuracy).

The experiment itself is :mod:`tf_inc.experiments.notes_rbf_network`; this script parses its config
(``--help`` lists every flag with its default) and prints where the figure and the result
JSON went.

    python scripts/notes_rbf_network.py            # trains mnist_rbf.keras once
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_rbf_network import RbfConfig, run

if __name__ == "__main__":
    run_script(RbfConfig, run)
