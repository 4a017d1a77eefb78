"""Notes: the VAE reconstruction (KL) detector — threshold sweep, ROC/AUC, detection at a fixed
false-positive rate, for the 20-d and 2-d VAEs, and the adaptive attack that knows the detector.

The experiment itself is :mod:`tf_inc.experiments.notes_vae_kl_detector`; this script parses its
config (``--help`` lists every flag with its default) and prints where the figures and the result JSON went.

    python scripts/notes_vae_kl_detector.py
"""
from tf_inc.cli import run_script
from tf_inc.experiments.notes_vae_kl_detector import VAEKLConfig, run

if __name__ == "__main__":
    run_script(VAEKLConfig, run)
