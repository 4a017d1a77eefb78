"""Input checks shared by loaders, models and entry points.

Every public entry point calls :func:`check_images` so that a wrong shape,
dtype, range or a NaN produces one clear ``ValueError`` instead of a cryptic
TensorFlow shape error deep inside a graph.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np


class InputError(ValueError):
    """Raised for malformed user input (shape, dtype, range, NaN, missing file)."""


def check_images(
    x,
    *,
    shape: Optional[Sequence[Optional[int]]] = None,
    bounds: Optional[Tuple[float, float]] = None,
    name: str = "x",
    atol: float = 1e-5,
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


def check_labels(y, n: int, num_classes: int, name: str = "y") -> np.ndarray:
    """Validate integer labels aligned with ``n`` images."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(f"{name}: expected shape ({n},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise InputError(f"{name}: labels must lie in [0, {num_classes - 1}]")
    return arr.astype(np.int64)
