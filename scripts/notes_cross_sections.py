"""Notes: adversarial (FGSM x random) and random cross-section maps of the classifier.

The experiment itself is :mod:`tf_inc.experiments.notes_cross_sections`; this script parses its config
(``--help`` lists every flag with its default) and prints where the figure and the result
JSON went.

    python scripts/notes_cross_sections.py --n 16 --eps-max 0.3
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_cross_sections import CrossSectionConfig, run

if __name__ == "__main__":
    run_script(CrossSectionConfig, run)
