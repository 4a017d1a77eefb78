"""Figure 10 (§4.4.4): Deep Image Prior reconstructions of clean and BIM (ε = 0.05) images.

The experiment itself is :mod:`tf_inc.experiments.figure10_dip_reconstructions`; this script
parses its config and prints where the figure and the result JSON went.

    python scripts/figure10_dip_reconstructions.py
"""
from tf_inc.cli import run_script
from tf_inc.experiments.figure10_dip_reconstructions import Figure10Config, run

if __name__ == "__main__":
    run_script(Figure10Config, run)
