"""Keras models of the paper: classifiers, the generator wrapper and the encoder of §4.2.3."""
from tf_inc.models.classifiers import (  # noqa: F401
    LocalResponseNorm,
    celeba_classifier,
    mnist_classifier,
)
from tf_inc.models.encoder import GeneratorAutoencoder, build_encoder  # noqa: F401
from tf_inc.models.generator import Generator  # noqa: F401
