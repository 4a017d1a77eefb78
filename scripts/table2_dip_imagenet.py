"""Table 2 on real ImageNet photos: BIM-20 vs SqueezeNet 1.1 (or ResNet152) and its DIP-protected version.

The experiment itself is :mod:`tf_inc.experiments.table2_dip_imagenet`; this script parses its
config (``--help`` lists every flag with the paper's default) and prints where the figure and
the result JSON went.

    python scripts/table2_dip_imagenet.py                       # SqueezeNet, first bundled photos
    python scripts/table2_dip_imagenet.py --n 50                # more photos (slow on a CPU)
    python scripts/table2_dip_imagenet.py --classifier resnet152 --weights FILE.h5 --images DIR --n 1000
"""
from tf_inc.cli import run_script
from tf_inc.experiments.table2_dip_imagenet import Table2ImageNetConfig, run

if __name__ == "__main__":
    run_script(Table2ImageNetConfig, run)
