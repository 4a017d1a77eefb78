"""Notes: JSMA (Papernot et al. 2016), targeted, pixel pairs: success rate and pixels changed.

The experiment itself is :mod:`tf_inc.experiments.notes_jsma`; this script parses its config
(``--help`` lists every flag with its default) and prints where the figure and the result
JSON went.

    python scripts/notes_jsma.py                          # 100 test 2s -> 6 and 100 random targets
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_jsma import JsmaConfig, run

if __name__ == "__main__":
    run_script(JsmaConfig, run)
