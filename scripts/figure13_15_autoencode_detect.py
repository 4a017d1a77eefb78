"""Appendix A (Figures 13–15): autoencode-and-classify C(G(E(x))), detection by reconstruction error
(encoder path and INC path: distributions, ROC, AUC), the 2-d-latent codes of clean vs adversarial
inputs, x / x_adv / G(E(x_adv)) / G(z*_adv), and the adaptive attack on each detector.

The experiment itself is :mod:`tf_inc.experiments.figure13_15_autoencode_detect`; this script parses its
config (``--help`` lists every flag with its default) and prints where the figures and the result JSON went.

    python scripts/figure13_15_autoencode_detect.py
"""
from tf_inc.cli import run_script
from tf_inc.experiments.figure13_15_autoencode_detect import Figure13To15Config, run

if __name__ == "__main__":
    run_script(Figure13To15Config, run)
