"""Notes: dimension of the adversarial subspace (GAAS, Tramer et al. 2017) per MNIST image.

The experiment itself is :mod:`tf_inc.experiments.notes_adversarial_subspace`; this script parses its config
(``--help`` lists every flag with its default) and prints where the figure and the result
JSON went.

    python scripts/notes_adversarial_subspace.py --eps 3 4 5
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_adversarial_subspace import SubspaceConfig, run

if __name__ == "__main__":
    run_script(SubspaceConfig, run)
