"""The project's typed errors.

Every public entry point reports malformed input with :class:`InputError` (a
``ValueError``), whose message names the problem and says how to fix it, instead
of letting a wrong shape, dtype, range or a NaN reach a TensorFlow graph.
"""
from __future__ import annotations


class InputError(ValueError):
    """Malformed user input: shape, dtype, range, NaN/Inf, empty batch, bad budget or setting."""


class DataMissingError(FileNotFoundError):
    """Data or weights that cannot be downloaded here are not on this machine; the message says
    which files to put where (CelebA, ImageNet images, pretrained weights, the MNIST package)."""


class UntrustedFileError(RuntimeError):
    """A file that must not be used: hash mismatch, truncated, corrupt, wrong architecture; the
    message says how to get a good copy."""


#: what a script reports as one ``error: ...`` line (exit status 2) instead of a traceback
USER_ERRORS = (InputError, DataMissingError, UntrustedFileError)
