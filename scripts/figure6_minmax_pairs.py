"""Figure 6: pairs G(z), G(z') found by the overpowered min-max attack (paper eq. 9).

The experiment itself is :mod:`tf_inc.experiments.figure6_minmax_pairs`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where
the figure and the result JSON went.

    python scripts/figure6_minmax_pairs.py --iterations 2000
"""
from tf_inc.cli import run_script
from tf_inc.experiments.figure6_minmax_pairs import Figure6Config, run

if __name__ == "__main__":
    run_script(Figure6Config, run)
