"""Notes: natural adversaries (Zhao et al.) searched in the VAE's latent space, and the
reconstruction-correction table (clean / FGSM / CW / natural, before and after G(E(.)) and G(z*)).

The experiment itself is :mod:`tf_inc.experiments.notes_natural_adversaries`; this script parses its
config (``--help`` lists every flag with its default) and prints where the figures and the result JSON went.

    python scripts/notes_natural_adversaries.py
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_natural_adversaries import NaturalAdversariesConfig, run

if __name__ == "__main__":
    run_script(NaturalAdversariesConfig, run)
