"""Table 1: accuracy without defence and with Invert-and-Classify under FGSM and Carlini–Wagner.

The experiment itself is :mod:`tf_inc.experiments.table1_attacks`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where
the figure and the result JSON went.

    python scripts/table1_attacks.py                 # MNIST, 100 test images
    python scripts/table1_attacks.py --dataset celeba --n 500
"""
from tf_inc.cli import run_script
from tf_inc.experiments.table1_attacks import Table1Config, run

if __name__ == "__main__":
    run_script(Table1Config, run)
