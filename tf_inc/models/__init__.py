"""Keras models of the paper: classifiers, the generator wrapper, the encoder of §4.2.3 and the
Deep Image Prior skip network of §4.4 (:mod:`tf_inc.models.skip_net`)."""
from tf_inc.models.classifiers import (  # noqa: F401
    LocalResponseNorm,
    celeba_classifier,
    mnist_classifier,
)
from tf_inc.models.encoder import GeneratorAutoencoder, build_encoder  # noqa: F401
from tf_inc.models.generator import Generator  # noqa: F401
from tf_inc.models.skip_net import SkipNet, SkipNetConfig, build_keras_skip_net  # noqa: F401
