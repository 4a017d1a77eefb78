"""Notes: one-/few-pixel black-box attack by differential evolution (Su et al.), 1/3/5 pixels.

The experiment itself is :mod:`tf_inc.experiments.notes_one_pixel`; this script parses its config
(``--help`` lists every flag with its default) and prints where the figure and the result
JSON went.

    python scripts/notes_one_pixel.py --n 16 --pixels 1 3 5
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_one_pixel import OnePixelConfig, run

if __name__ == "__main__":
    run_script(OnePixelConfig, run)
