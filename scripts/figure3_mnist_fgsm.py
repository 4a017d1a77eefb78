"""Figure 3: accuracy of the classifier and of Invert-and-Classify under FGSM.

The experiment itself is :mod:`tf_inc.experiments.figure3_mnist_fgsm`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where
the figure and the result JSON went.

    python scripts/figure3_mnist_fgsm.py                 # a few hundred test images
    python scripts/figure3_mnist_fgsm.py --n 10000        # the whole test set
"""
from tf_inc.cli import run_script
from tf_inc.experiments.figure3_mnist_fgsm import Figure3Config, run

if __name__ == "__main__":
    run_script(Figure3Config, run)
