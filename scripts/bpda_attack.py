"""BPDA (+ EOT) adaptive attack on Invert-and-Classify (Athalye, Carlini & Wagner 2018).

The experiment itself is :mod:`tf_inc.experiments.bpda_attack`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where
the figure and the result JSON went.

    python scripts/bpda_attack.py                   # MNIST, 100 test images
"""
from tf_inc.cli import run_script
from tf_inc.experiments.bpda_attack import BPDAConfig, run

if __name__ == "__main__":
    run_script(BPDAConfig, run)
