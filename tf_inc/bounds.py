"""Pixel bounds and input checks: the one place both come from.

A model's input bounds travel with it: :class:`tf_inc.models.Generator` stores
them in its saved config, the classifier builders attach them, and the zoo
re-attaches them when it loads an artifact (:func:`attach_bounds`). Attacks,
INC and the other defences resolve them with :func:`bounds_of` when they start
(an explicit ``bounds=`` argument wins) and check their input with
:func:`check_images` / :func:`check_attack_inputs`, so a wrong shape, dtype,
range, a NaN or an empty batch raises one :class:`~tf_inc.errors.InputError`
that says how to fix the input, before anything is traced.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

from tf_inc.errors import InputError

Bounds = Tuple[float, float]

#: pixel range of each dataset's images as the models see them
DATASET_BOUNDS = {"mnist": (0.0, 1.0), "celeba": (-1.0, 1.0), "imagenet": (0.0, 1.0)}


def dataset_bounds(dataset: str) -> Bounds:
    """Pixel range of ``dataset`` (``mnist`` (0, 1), ``celeba`` (-1, 1), ``imagenet`` (0, 1))."""
    if dataset not in DATASET_BOUNDS:
        raise InputError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASET_BOUNDS)}")
    return DATASET_BOUNDS[dataset]


def attach_bounds(model, bounds: Sequence[float]):
    """Record ``bounds`` on ``model`` (a Keras model or any object) and return it."""
    lo, hi = float(bounds[0]), float(bounds[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InputError(f"bounds must be two finite numbers lo < hi, got {tuple(bounds)}")
    object.__setattr__(model, "bounds", (lo, hi))
    return model


def _owner(model_fn):
    """The object behind a bound method (``inc.bpda_logits`` -> ``inc``), else ``model_fn``."""
    return getattr(model_fn, "__self__", model_fn)


def bounds_of(model_fn, bounds: Optional[Sequence[float]] = None) -> Bounds:
    """Input bounds of ``model_fn``: ``bounds`` if given, else the ones the model carries.

    Raises :class:`InputError` when neither is available (there is no silent default).
    """
    if bounds is None:
        for obj in (model_fn, _owner(model_fn)):
            b = getattr(obj, "bounds", None)
            if b is not None:
                bounds = b
                break
    if bounds is None:
        raise InputError(
            "the model carries no input bounds: pass bounds=(lo, hi) (MNIST (0, 1), CelebA (-1, 1)), "
            "load it with tf_inc.experiments.zoo, or record them with tf_inc.bounds.attach_bounds(model, (lo, hi))")
    try:
        lo, hi = float(bounds[0]), float(bounds[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise InputError(f"bounds must be a pair (lo, hi), got {bounds!r}") from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InputError(f"bounds must be two finite numbers lo < hi, got {bounds!r}")
    return lo, hi


def input_shape_of(model_fn) -> Optional[Tuple[Optional[int], ...]]:
    """Per-image input shape of ``model_fn`` when it declares one (Keras model, INC), else ``None``."""
    for obj in (model_fn, _owner(model_fn)):
        shape = getattr(obj, "image_shape", None)
        if shape is None:
            try:
                shape = getattr(obj, "input_shape", None)
            except (AttributeError, ValueError):
                shape = None
            if isinstance(shape, list):    # multi-input models: not an image classifier
                shape = None
            shape = None if shape is None else tuple(shape)[1:]
        if shape:
            return tuple(None if d is None else int(d) for d in shape)
    return None


def num_classes_of(model_fn, _depth: int = 0) -> Optional[int]:
    """Number of classes of ``model_fn`` (its ``num_classes`` / output width, or those of the
    classifier / model / INC it wraps), else ``None``."""
    if _depth > 4:
        return None
    for obj in (model_fn, _owner(model_fn)):
        for attr in ("num_classes", "output_shape"):
            try:
                v = getattr(obj, attr, None)
            except (AttributeError, ValueError):
                v = None
            if isinstance(v, int):
                return v
            if isinstance(v, tuple) and v and isinstance(v[-1], int):
                return int(v[-1])
        for inner in ("classifier", "model", "inc"):       # defences, detectors (the model they guard)
            clf = getattr(obj, inner, None)
            if clf is not None and clf is not obj:
                n = num_classes_of(clf, _depth + 1)
                if n:
                    return n
    return None


def check_images(
    x,
    *,
    shape: Optional[Sequence[Optional[int]]] = None,
    bounds: Optional[Tuple[float, float]] = None,
    name: str = "x",
    atol: float = 1e-5,
    allow_empty: bool = False,
) -> np.ndarray:
    """Validate a batch of images and return it as a float32 numpy array.

    Args:
      x: array-like of shape ``(N, *shape)``.
      shape: expected per-image shape; ``None`` entries are wildcards.
      bounds: ``(lo, hi)`` pixel range the data must lie in.
      name: used in error messages.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise InputError(f"{name}: cannot convert to an array ({exc})") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.integer):
        raise InputError(
            f"{name}: expected float images, got integer dtype {arr.dtype}; "
            "scale them to the model's range first (e.g. x / 255.0 for MNIST)"
        )
    arr = arr.astype(np.float32, copy=False)
    if shape is not None:
        expected = tuple(shape)
        if arr.ndim != len(expected) + 1 or any(
            e is not None and e != a for e, a in zip(expected, arr.shape[1:])
        ):
            pretty = "(N, " + ", ".join("?" if e is None else str(e) for e in expected) + ")"
            raise InputError(f"{name}: expected shape {pretty}, got {arr.shape}")
    if arr.ndim >= 1 and arr.shape[0] == 0 and not allow_empty:
        raise InputError(f"{name}: empty batch (shape {arr.shape}); pass at least one image")
    if arr.size and not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: contains NaN or infinite values")
    if bounds is not None and arr.size:
        lo, hi = bounds
        amin, amax = float(arr.min()), float(arr.max())
        if amin < lo - atol or amax > hi + atol:
            raise InputError(
                f"{name}: pixel values must lie in [{lo}, {hi}], got [{amin:.4g}, {amax:.4g}]"
            )
    return arr


def check_labels(y, n: int, num_classes: Optional[int] = None, name: str = "y") -> np.ndarray:
    """Validate integer labels aligned with ``n`` images (range checked when ``num_classes`` is known)."""
    try:
        arr = np.asarray(y)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise InputError(f"{name}: cannot convert to an array ({exc})") from exc
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(f"{name}: expected shape ({n},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise InputError(f"{name}: labels must be non-negative class indices, got {int(arr.min())}")
    if num_classes is not None and arr.size and arr.max() >= num_classes:
        raise InputError(f"{name}: labels must lie in [0, {num_classes - 1}], got {int(arr.max())}")
    return arr.astype(np.int64)


def check_budget(eps, name: str = "eps", allow_list: bool = True) -> None:
    """A perturbation budget (or list of them): finite and >= 0."""
    try:
        arr = np.asarray(eps, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected a number{' or a list of numbers' if allow_list else ''}, "
                         f"got {eps!r}") from exc
    if arr.ndim > (1 if allow_list else 0):
        raise InputError(f"{name}: expected a number{' or a flat list' if allow_list else ''}, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name}: empty list of budgets")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InputError(f"{name}: budgets must be finite and >= 0, got {eps!r}")


def check_count(value, name: str, minimum: int = 1) -> int:
    """An integer setting (iterations, restarts, pairs, ...) that must be >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise InputError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def check_attack_inputs(model_fn, x, y, bounds: Optional[Sequence[float]] = None, eps=None,
                        num_classes: Optional[int] = None):
    """Start-of-attack checks shared by every attack: returns ``(x, y, bounds)``.

    ``x``: float images of the model's input shape inside the model's bounds (no NaN/Inf,
    non-empty); ``y``: integer labels, one per image; ``eps`` (optional): finite budgets >= 0.
    """
    b = bounds_of(model_fn, bounds)
    shape = input_shape_of(model_fn)
    xs = check_images(x, shape=shape, bounds=b, name="x")
    if shape is None and xs.ndim < 2:
        raise InputError(f"x: expected a batch of images (N, ...), got shape {xs.shape}")
    ys = check_labels(y, len(xs), num_classes or num_classes_of(model_fn), name="y")
    if eps is not None:
        check_budget(eps)
    return xs, ys, b
