import numpy as np
import pytest

from tf_inc.data import mnist


def test_shapes_ranges_and_canonical_order():
    x, y = mnist.load_mnist("test")
    assert x.shape == (10000, 28, 28, 1) and x.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    # the canonical (unshuffled) test set starts 7 2 1 0 4 1 4 9 5 9
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    xt, yt = mnist.load_mnist("train")
    assert xt.shape == (60000, 28, 28, 1)
    assert yt[:5].tolist() == [5, 0, 4, 1, 9]


def test_cache_is_written_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_INC_DATA", str(tmp_path))
    x1, y1 = mnist.load_mnist("test", 100)
    assert (tmp_path / "mnist.npz").exists()
    x2, y2 = mnist.load_mnist("test", 100)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        mnist.load_mnist("validation")
    with pytest.raises(ValueError, match="positive"):
        mnist.load_mnist("test", 0)


def test_tf_data_pipelines():
    train, test = mnist.mnist_datasets(batch_size=32, n_train=256, n_test=64)
    xb, yb = next(iter(train))
    assert xb.shape == (32, 28, 28, 1) and yb.shape == (32,)
    assert sum(int(b[0].shape[0]) for b in test) == 64


def test_cache_file_has_normal_permissions(tmp_path, monkeypatch):
    import os
    import stat

    monkeypatch.setenv("TF_INC_DATA", str(tmp_path))
    mnist.load_mnist("test", 10)
    mode = stat.S_IMODE(os.stat(tmp_path / "mnist.npz").st_mode)
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask
