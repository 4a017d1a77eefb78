"""BEGAN (Berthelot et al.) for 64×64 CelebA; its generator is the INC generator for CelebA."""
import tf_inc  # noqa: F401  (sets TF log level before TensorFlow loads)
from began.model import BEGAN, build_discriminator, build_generator  # noqa: F401
