"""Adaptive-attack robustness table: defences × attacks × budgets, per-image worst case.

The experiment itself is :mod:`tf_inc.experiments.robustness_table`; this script parses its
config (``--help`` lists every flag with its default) and prints where the figure and the
result JSON went. Resumable: a killed run continues at the next (defence, attack, budget) cell.

    python scripts/robustness_table.py                        # n = 200, every defence and attack
    python scripts/robustness_table.py --n 20 --defences none inc --pgd-iter 20

Several processes or hosts over a shared run directory: each runs its share of the image blocks,
then one run without ``--shard`` merges them and writes the table (README, "Running on several
GPUs / machines")::

    python scripts/robustness_table.py --block-size 25 --run-dir /shared/rt --shard 0/4   # ... 3/4
    python scripts/robustness_table.py --block-size 25 --run-dir /shared/rt
"""
from tf_inc.cli import run_script
from tf_inc.experiments.robustness_table import RobustnessTableConfig, run

if __name__ == "__main__":
    run_script(RobustnessTableConfig, run)
