"""Figure 4: x, G(z*), x_adv, G(z*_adv) with the classifier's confidence in the true class.

The experiment itself is :mod:`tf_inc.experiments.figure4_reconstructions`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where
the figure and the result JSON went.

    python scripts/figure4_reconstructions.py
    python scripts/figure4_reconstructions.py --dataset celeba --eps 0.05
"""
from tf_inc.cli import run_script
from tf_inc.experiments.figure4_reconstructions import Figure4Config, run

if __name__ == "__main__":
    run_script(Figure4Config, run)
