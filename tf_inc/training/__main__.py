"""``python -m tf_inc.training <model> [--flags]``: see :mod:`tf_inc.training.cli`."""
import sys

from tf_inc.training.cli import main

sys.exit(main())
