"""CelebA loaders (gender = ``Male`` attribute), with the paper's preprocessing.

Preprocessing (paper §4.1): crop the 128×128 box whose top-left corner is at
row 50, column 25 of the 218×178 aligned image, resize bilinearly to 64×64 and
scale pixels to [-1, 1].

Two sources, both reading files the user already has (nothing is downloaded):

* ``folder``: ``<root>/img_align_celeba/*.jpg``, ``<root>/list_attr_celeba.txt``,
  ``<root>/list_eval_partition.txt`` (the layout of the official archive).
* ``tfds``: the ``celeb_a`` TFDS builder prepared from a manual dir holding the
  five original files (see :data:`TFDS_MANUAL_FILES`), or an already prepared
  ``celeb_a`` in ``data_dir``.

If neither is there, :class:`CelebAMissingError` says which files to put where,
without ever calling the network (an offline ``tfds.load`` hangs for minutes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from tf_inc.bounds import dataset_bounds
from tf_inc.errors import DataMissingError
from tf_inc.paths import celeba_dir

CROP_TOP, CROP_LEFT, CROP_SIZE = 50, 25, 128
IMAGE_SIZE = 64
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 3)
BOUNDS = dataset_bounds("celeba")
NUM_CLASSES = 2
LABEL_ATTRIBUTE = "Male"
GAN_TRAIN_IMAGES = 160_000  # the paper trained BEGAN on the first 160k images
SPLITS = {"train": 0, "validation": 1, "test": 2}

FOLDER_FILES = ("img_align_celeba/", "list_attr_celeba.txt", "list_eval_partition.txt")
TFDS_MANUAL_FILES = (
    "img_align_celeba.zip",
    "list_attr_celeba.txt",
    "list_eval_partition.txt",
    "list_landmarks_align_celeba.txt",
    "identity_CelebA.txt",
)


class CelebAMissingError(DataMissingError):
    """CelebA is not on this machine; the message says what to put where."""


def missing_message(root: Path) -> str:
    return (
        f"CelebA not found under {root}.\n"
        "Put ONE of these layouts there (or point $TF_INC_CELEBA / --celeba-dir at it):\n"
        "  (a) folder:  img_align_celeba/000001.jpg ... , list_attr_celeba.txt, list_eval_partition.txt\n"
        "  (b) tfds manual dir:  " + ", ".join(TFDS_MANUAL_FILES) + "\n"
        "These are the files of the official CelebA release (aligned & cropped images). "
        "Nothing is downloaded automatically."
    )


# --------------------------------------------------------------------------- preprocessing
def preprocess_celeba(images):
    """uint8 (N, 218, 178, 3) or (218, 178, 3) -> float32 (…, 64, 64, 3) in [-1, 1]."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    if images.shape.rank not in (3, 4) or images.shape[-1] != 3:
        raise ValueError(f"expected RGB images (..., H, W, 3), got shape {images.shape}")
    h, w = images.shape[-3], images.shape[-2]
    if h is not None and w is not None and (h < CROP_TOP + CROP_SIZE or w < CROP_LEFT + CROP_SIZE):
        raise ValueError(
            f"image {h}x{w} is too small for the paper's crop "
            f"(rows {CROP_TOP}:{CROP_TOP + CROP_SIZE}, cols {CROP_LEFT}:{CROP_LEFT + CROP_SIZE})"
        )
    crop = images[..., CROP_TOP : CROP_TOP + CROP_SIZE, CROP_LEFT : CROP_LEFT + CROP_SIZE, :]
    crop = tf.cast(crop, tf.float32)
    resized = tf.image.resize(crop, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear")
    return tf.clip_by_value(resized / 127.5 - 1.0, -1.0, 1.0)


# --------------------------------------------------------------------------- text files
def read_attributes(path: Path) -> Tuple[List[str], Dict[str, np.ndarray]]:
    """Parse ``list_attr_celeba.txt``: count line, header line, then ``name v1 ... v40``."""
    lines = Path(path).read_text().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: not a CelebA attribute file (too short)")
    header = lines[1].split()
    table: Dict[str, np.ndarray] = {}
    for line in lines[2:]:
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(header) + 1:
            raise ValueError(f"{path}: row {parts[0]!r} has {len(parts) - 1} values, header has {len(header)}")
        table[parts[0]] = np.asarray(parts[1:], dtype=np.int8)
    return header, table


def read_partition(path: Path) -> Dict[str, int]:
    """Parse ``list_eval_partition.txt``: ``000001.jpg 0`` (0 train, 1 validation, 2 test)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = int(parts[1])
    return out


def _folder_available(root: Path) -> bool:
    return (
        (root / "img_align_celeba").is_dir()
        and (root / "list_attr_celeba.txt").is_file()
        and (root / "list_eval_partition.txt").is_file()
    )


def _tfds_manual_available(root: Path) -> bool:
    return all((root / f).is_file() for f in TFDS_MANUAL_FILES)


def _tfds_prepared(data_dir: Optional[Path]) -> bool:
    if data_dir is None:
        return False
    d = Path(data_dir) / "celeb_a"
    return d.is_dir() and any(d.glob("*/dataset_info.json"))


# --------------------------------------------------------------------------- loaders
def folder_index(root: Path, split: str = "train", n: Optional[int] = None):
    """File paths and Male labels of ``split`` in the plain-folder layout, in file order."""
    if split not in SPLITS and split != "gan":
        raise ValueError(f"split must be one of {list(SPLITS) + ['gan']}, got {split!r}")
    header, attrs = read_attributes(root / "list_attr_celeba.txt")
    if LABEL_ATTRIBUTE not in header:
        raise ValueError(f"{root / 'list_attr_celeba.txt'} has no {LABEL_ATTRIBUTE!r} column")
    col = header.index(LABEL_ATTRIBUTE)
    names = sorted(attrs)
    if split == "gan":
        names = names[:GAN_TRAIN_IMAGES]
    else:
        partition = read_partition(root / "list_eval_partition.txt")
        names = [f for f in names if partition.get(f) == SPLITS[split]]
    if n is not None:
        names = names[:n]
    paths = [str(root / "img_align_celeba" / f) for f in names]
    missing = [p for p in paths[:5] if not Path(p).exists()]
    if missing:
        raise CelebAMissingError(f"images listed in list_attr_celeba.txt are missing, e.g. {missing[0]}")
    labels = np.asarray([1 if attrs[f][col] > 0 else 0 for f in names], dtype=np.int64)
    return paths, labels


def celeba_folder_dataset(root: Path, split: str = "train", n: Optional[int] = None):
    """tf.data of (64×64×3 in [-1,1], Male label) from the plain-folder layout."""
    import tensorflow as tf

    paths, labels = folder_index(Path(root), split, n)

    def load(path, label):
        img = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return preprocess_celeba(img), label

    return tf.data.Dataset.from_tensor_slices((paths, labels)).map(load, num_parallel_calls=tf.data.AUTOTUNE)


def celeba_tfds_dataset(
    split: str = "train",
    manual_dir: Optional[Path] = None,
    data_dir: Optional[Path] = None,
    n: Optional[int] = None,
):
    """tf.data of (image, Male label) from TFDS ``celeb_a``, never downloading.

    Builds the dataset from ``manual_dir`` (the five original files) if it is
    not prepared in ``data_dir`` yet.
    """
    import tensorflow_datasets as tfds

    if not _tfds_prepared(data_dir):
        if manual_dir is None or not _tfds_manual_available(Path(manual_dir)):
            raise CelebAMissingError(missing_message(Path(manual_dir or celeba_dir())))
        builder = tfds.builder("celeb_a", data_dir=None if data_dir is None else str(data_dir))
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(
                manual_dir=str(manual_dir), force_checksums_validation=False
            )
        )
    else:
        builder = tfds.builder("celeb_a", data_dir=str(data_dir))
    tfds_split = split if n is None else f"{split}[:{n}]"
    ds = builder.as_dataset(split=tfds_split, shuffle_files=False)
    return ds.map(lambda ex: (preprocess_celeba(ex["image"]), _male(ex)))


def _male(ex):
    import tensorflow as tf

    return tf.cast(ex["attributes"][LABEL_ATTRIBUTE], tf.int64)


def load_celeba(
    split: str = "train",
    root: Optional[Path] = None,
    source: str = "auto",
    n: Optional[int] = None,
    tfds_data_dir: Optional[Path] = None,
):
    """CelebA as a tf.data.Dataset of ``(image, label)``; raises :class:`CelebAMissingError` fast.

    ``source``: ``"folder"``, ``"tfds"`` or ``"auto"`` (folder layout first, then tfds).
    """
    if source not in ("auto", "folder", "tfds"):
        raise ValueError(f"source must be 'auto', 'folder' or 'tfds', got {source!r}")
    root = Path(root) if root is not None else celeba_dir()
    if source in ("auto", "folder") and _folder_available(root):
        return celeba_folder_dataset(root, split, n)
    if source in ("auto", "tfds") and (_tfds_manual_available(root) or _tfds_prepared(tfds_data_dir)):
        return celeba_tfds_dataset(split, manual_dir=root, data_dir=tfds_data_dir, n=n)
    raise CelebAMissingError(missing_message(root))
