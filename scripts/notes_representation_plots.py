"""Notes: PCA / t-SNE of penultimate representations (clean vs adversarial) and per-layer activation differences.

The experiment itself is :mod:`tf_inc.experiments.notes_representation_plots`; this script parses its config
(``--help`` lists every flag with its default) and prints where the figure and the result
JSON went.

    python scripts/notes_representation_plots.py
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_representation_plots import RepresentationConfig, run

if __name__ == "__main__":
    run_script(RepresentationConfig, run)
