"""Compiled functions shared per model.

Several objects wrap one model (an ``InvertAndClassify`` and its attacker's copies, a DIP defence
and its ``attack_view`` / ``with_config`` copies). Each would otherwise build and trace its own
``tf.function`` around the same model. :func:`shared_compiled` keeps one per (model, settings)
instead.
"""
from __future__ import annotations

import weakref
from typing import Callable, Hashable


def shared_compiled(cache: "weakref.WeakKeyDictionary", owner, key: Hashable, make: Callable):
    """``make()`` built once per ``(owner, key)`` and kept in ``cache`` (``owner`` → ``{key: fn}``).

    ``owner`` is the model the function closes over. A traced function holds its model's
    variables, so a cached model lives as long as the process. An owner that cannot be weakly
    referenced (or hashed) gets a fresh ``make()`` every time, as without the cache."""
    try:
        per_owner = cache.setdefault(owner, {})
    except TypeError:
        return make()
    if key not in per_owner:
        per_owner[key] = make()
    return per_owner[key]
