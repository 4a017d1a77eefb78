"""Bad inputs shared by tests/test_bad_input.py (issue 15): each a transform of a good batch
and the words the error must contain.

Every transform takes the good images ``x`` (N, 28, 28, 1) float32 in [0, 1] and labels ``y``
(N,) int64 and returns the bad ``(x, y)``; ``match`` is a regular expression the
:class:`~tf_inc.errors.InputError` message must match.
"""
from __future__ import annotations

import numpy as np

SHAPE = (28, 28, 1)
SHAPE_MSG = r"expected shape \(N, 28, 28, 1\)"
RANGE_MSG = r"must lie in \[0\.0, 1\.0\]"


def _poke(x, value):
    """``x`` with one pixel (of the second image when there is one) set to ``value``."""
    x = x.copy()
    x[min(1, len(x) - 1), 3, 4, 0] = value
    return x


#: name -> (transform (x, y) -> (x, y), regex the InputError must match)
IMAGE_CASES = {
    "rank3_no_channel_axis": (lambda x, y: (x[..., 0], y), SHAPE_MSG),
    "one_image_without_batch_axis": (lambda x, y: (x[0], y), SHAPE_MSG),
    "wrong_image_size_14x14": (lambda x, y: (x[:, :14, :14], y), SHAPE_MSG),
    "three_channels": (lambda x, y: (np.repeat(x, 3, axis=-1), y), SHAPE_MSG),
    "uint8_0_255": (lambda x, y: ((x * 255).astype(np.uint8), y), "integer dtype uint8"),
    "int64_0_1": (lambda x, y: (np.round(x).astype(np.int64), y), "integer dtype int64"),
    "float_0_255": (lambda x, y: (x * 255.0, y), RANGE_MSG),
    "float_minus1_1": (lambda x, y: (x * 2.0 - 1.0, y), RANGE_MSG),
    "one_pixel_above_range": (lambda x, y: (_poke(x, 1.5), y), RANGE_MSG),
    "nan": (lambda x, y: (_poke(x, np.nan), y), "NaN or infinite"),
    "plus_inf": (lambda x, y: (_poke(x, np.inf), y), "NaN or infinite"),
    "minus_inf": (lambda x, y: (_poke(x, -np.inf), y), "NaN or infinite"),
    "empty_batch": (lambda x, y: (x[:0], y[:0]), "empty batch"),
    "strings": (lambda x, y: (np.array([["a"]]), y), "numeric"),
}

#: cases for entry points that take labels (or targets): name -> (transform, regex)
LABEL_CASES = {
    "labels_one_short": (lambda x, y: (x, y[:-1]), r"expected shape \(3,\)"),
    "labels_2d": (lambda x, y: (x, y[:, None]), r"expected shape \(3,\)"),
    "labels_float": (lambda x, y: (x, y.astype(np.float32)), "integer class labels"),
    "labels_out_of_range": (lambda x, y: (x, y + 10), r"must lie in \[0, 9\]"),
    "labels_negative": (lambda x, y: (x, y - 10), "non-negative"),
}


def good_batch(n: int = 3, seed: int = 0):
    """``n`` smooth blob images (float32 in [0, 1]) and labels 0..n-1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    imgs = []
    for _ in range(n):
        cy, cx = rng.uniform(8, 20, 2)
        imgs.append(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0))
    x = np.clip(np.stack(imgs)[..., None] + rng.uniform(0, 0.1, (n, 28, 28, 1)), 0, 1).astype(np.float32)
    return x, (np.arange(n) % 10).astype(np.int64)
