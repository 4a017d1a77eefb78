"""Figure 8: convergence of the min-max attack (mean ||C(G(z)) − C(G(z'))||) against the

The experiment itself is :mod:`tf_inc.experiments.figure8_attack_convergence`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where
the figure and the result JSON went.

    python scripts/figure8_attack_convergence.py --iterations 2000
"""
from tf_inc.cli import run_script
from tf_inc.experiments.figure8_attack_convergence import Figure8Config, run

if __name__ == "__main__":
    run_script(Figure8Config, run)
