"""Figure 5: black-box substitute-model attack on Invert-and-Classify (paper §4.2.2).

The experiment itself is :mod:`tf_inc.experiments.figure5_substitute`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where
the figure and the result JSON went.

    python scripts/figure5_substitute.py
"""
from tf_inc.cli import run_script
from tf_inc.experiments.figure5_substitute import Figure5Config, run

if __name__ == "__main__":
    run_script(Figure5Config, run)
