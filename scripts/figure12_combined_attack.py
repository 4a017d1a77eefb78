"""Figure 12 (Appendix A): the combined attack through a learned encoder.

The experiment itself is :mod:`tf_inc.experiments.figure12_combined_attack`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where
the figure and the result JSON went.

    python scripts/figure12_combined_attack.py
"""
from tf_inc.cli import run_script
from tf_inc.experiments.figure12_combined_attack import Figure12Config, run

if __name__ == "__main__":
    run_script(Figure12Config, run)
