"""Keras models of the paper: classifiers and the generator wrapper."""
from tf_inc.models.classifiers import (  # noqa: F401
    LocalResponseNorm,
    celeba_classifier,
    mnist_classifier,
)
from tf_inc.models.generator import Generator  # noqa: F401
