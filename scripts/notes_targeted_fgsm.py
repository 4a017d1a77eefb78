"""Notes: targeted iterative FGSM (every 2 -> 6): success rate and pixels changed.

The experiment itself is :mod:`tf_inc.experiments.notes_targeted_fgsm`; this script parses its config
(``--help`` lists every flag with its default) and prints where the figure and the result
JSON went.

    python scripts/notes_targeted_fgsm.py                 # 200 test 2s -> 6 and 200 random targets
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_targeted_fgsm import TargetedFgsmConfig, run

if __name__ == "__main__":
    run_script(TargetedFgsmConfig, run)
