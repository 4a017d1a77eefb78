"""``python -m tf_inc.serving [--dataset mnist] --out exported``."""
import sys

from tf_inc.serving.export import main

sys.exit(main())
