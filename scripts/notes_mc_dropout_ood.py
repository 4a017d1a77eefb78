"""Notes: MC-dropout (T = 100) mutual information and softmax variance on clean, FGSM, CW and
natural adversarial inputs (Smith & Gal), ROC/AUC per measure, and an adaptive attack on the MI detector.

The experiment itself is :mod:`tf_inc.experiments.notes_mc_dropout_ood`; this script parses its
config (``--help`` lists every flag with its default) and prints where the figures and the result JSON went.

    python scripts/notes_mc_dropout_ood.py
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_mc_dropout_ood import MCDropoutConfig, run

if __name__ == "__main__":
    run_script(MCDropoutConfig, run)
