"""Figure 7: the cross-entropy and adversarial loss components during robust training (eq. 10).

The experiment itself is :mod:`tf_inc.experiments.figure7_robust_training`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where
the figure and the result JSON went.

    python scripts/figure7_robust_training.py --iterations 2000
"""
from tf_inc.cli import run_script
from tf_inc.experiments.figure7_robust_training import Figure7Config, run

if __name__ == "__main__":
    run_script(Figure7Config, run)
