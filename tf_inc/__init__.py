"""tf-inc: Invert-and-Classify and the Robust Manifold Defense in TensorFlow 2 / Keras 3.

Reproduction of Ilyas, Jalal, Asteri, Daskalakis, Dimakis,
"The Robust Manifold Defense: Adversarial Training using Generative Models".
"""

import os as _os

# Keep TensorFlow's C++ start-up chatter out of user output (override by setting it yourself).
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
