import time

import numpy as np
import pytest

from tests.data.celeba_fixture import make_celeba
from tf_inc.data import celeba


def test_crop_coordinates_and_range_exact():
    # pixel value = row index in channel 0, column index in channel 1
    rows = np.arange(218, dtype=np.float32)[:, None] * np.ones((1, 178), np.float32)
    cols = np.ones((218, 1), np.float32) * np.arange(178, dtype=np.float32)[None, :]
    img = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)
    out = celeba.preprocess_celeba(img).numpy()
    assert out.shape == (64, 64, 3)
    assert out.min() >= -1.0 and out.max() <= 1.0
    # bilinear 128 -> 64 (half-pixel centres) averages rows 2i, 2i+1 of the crop
    i = np.arange(64)
    np.testing.assert_allclose(out[:, 0, 0], (50 + 2 * i + 0.5) / 127.5 - 1, atol=1e-5)
    np.testing.assert_allclose(out[0, :, 1], (25 + 2 * i + 0.5) / 127.5 - 1, atol=1e-5)


def test_preprocess_rejects_small_or_grey_images():
    with pytest.raises(ValueError, match="too small"):
        celeba.preprocess_celeba(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        celeba.preprocess_celeba(np.zeros((218, 178), np.uint8))


def test_folder_loader_labels_splits_ranges(tmp_path):
    truth = make_celeba(tmp_path, n=12)
    for split, pid in celeba.SPLITS.items():
        ds = celeba.load_celeba(split, root=tmp_path, source="folder")
        items = list(ds.as_numpy_iterator())
        names = sorted(nm for nm, (_, p) in truth.items() if p == pid)
        assert len(items) == len(names)
        for (x, y), nm in zip(items, names):
            assert x.shape == (64, 64, 3) and x.dtype == np.float32
            assert -1.0 <= x.min() and x.max() <= 1.0
            assert y == truth[nm][0]
            # males carry a white box exactly on the crop: the crop is (nearly) all +1
            if y == 1:
                assert x.mean() > 0.97
            else:
                assert x.mean() < 0.5


def test_gan_split_is_first_images_in_order(tmp_path):
    make_celeba(tmp_path, n=12)
    paths, labels = celeba.folder_index(tmp_path, "gan", n=5)
    assert [p.rsplit("/", 1)[1] for p in paths] == [f"{i:06d}.jpg" for i in range(1, 6)]
    assert labels.tolist() == [1, 0, 0, 1, 0]


def test_missing_data_fails_fast_with_instructions(tmp_path):
    t = time.time()
    with pytest.raises(celeba.CelebAMissingError) as err:
        celeba.load_celeba("train", root=tmp_path / "nowhere")
    assert time.time() - t < 1.0
    msg = str(err.value)
    for needed in ("img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt", "TF_INC_CELEBA"):
        assert needed in msg


def test_tfds_builder_from_manual_dir(tmp_path, monkeypatch):
    """The real tfds ``celeb_a`` builder, fed the five original files (fixture-sized)."""
    from tensorflow_datasets.core.download import download_manager

    # fixture files cannot match the registered checksums of the real archives
    monkeypatch.setattr(download_manager.DownloadManager, "_register_or_validate_checksums",
                        lambda self, *a, **k: None)
    truth = make_celeba(tmp_path / "manual", n=12, tfds_layout=True)
    ds = celeba.load_celeba("train", root=tmp_path / "manual", source="tfds", tfds_data_dir=tmp_path / "tfds")
    items = list(ds.as_numpy_iterator())
    assert len(items) == sum(1 for _, p in truth.values() if p == 0)
    for x, y in items:
        assert x.shape == (64, 64, 3) and -1 <= x.min() and x.max() <= 1
        assert (y == 1) == (x.mean() > 0.97)
    # once prepared, it loads without the manual files
    ds2 = celeba.load_celeba("test", root=tmp_path / "empty", source="tfds", tfds_data_dir=tmp_path / "tfds")
    assert len(list(ds2)) == sum(1 for _, p in truth.values() if p == 2)
