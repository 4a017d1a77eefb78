"""Figure 9: softmax outputs of the original (blue) and the robust (green) classifier on the

The experiment itself is :mod:`tf_inc.experiments.figure9_borderline_softmax`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where
the figure and the result JSON went.

    python scripts/figure9_borderline_softmax.py --iterations 2000
"""
from tf_inc.cli import run_script
from tf_inc.experiments.figure9_borderline_softmax import Figure9Config, run

if __name__ == "__main__":
    run_script(Figure9Config, run)
