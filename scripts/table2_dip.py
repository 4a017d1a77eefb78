"""Table 2 (§4.4) on MNIST: accuracy of the classifier and of the Deep Image Prior defence
under BIM-20 at ε ∈ {0.01, 0.05, 0.1} (paper's [−1, 1] scale), and the early-stopping curve.

The experiment itself is :mod:`tf_inc.experiments.table2_dip`; this script parses its config
(``--help`` lists every flag with the paper's default) and prints where the figures and the
result JSON went.

    python scripts/table2_dip.py                    # default run
    python scripts/table2_dip.py --n 1000 --bpda-n 50
"""
from tf_inc.cli import run_script
from tf_inc.experiments.table2_dip import Table2DIPConfig, run

if __name__ == "__main__":
    run_script(Table2DIPConfig, run)
