"""The project's typed errors.

Every public entry point reports malformed input with :class:`InputError` (a
``ValueError``), whose message names the problem and says how to fix it, instead
of letting a wrong shape, dtype, range or a NaN reach a TensorFlow graph.
"""
from __future__ import annotations


class InputError(ValueError):
    """Malformed user input: shape, dtype, range, NaN/Inf, empty batch, bad budget or setting."""
