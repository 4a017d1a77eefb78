"""Dataset loaders: MNIST (embedded default) and CelebA (user-provided)."""
from tf_inc.data.celeba import (  # noqa: F401
    CelebAMissingError,
    load_celeba,
    preprocess_celeba,
)
from tf_inc.data.mnist import load_mnist, mnist_datasets  # noqa: F401
