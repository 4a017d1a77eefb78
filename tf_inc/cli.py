"""Dataclass configs <-> command-line flags.

Each experiment has one dataclass whose defaults are the paper's values;
:func:`parse_config` exposes every field as ``--field-name`` so any of them can
be overridden without editing code.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import re
import typing
from typing import Any, List, Optional, Sequence, Type, TypeVar  # noqa: F401

T = TypeVar("T")


def _parse_bool(s: str) -> bool:
    v = s.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {s!r}")


def _field_type(tp):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union and type(None) in args:  # Optional[X]
        inner = [a for a in args if a is not type(None)][0]
        return _field_type(inner)[0], True
    return tp, False


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: Type) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp, optional = _field_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore
        help_ = f.metadata.get("help", "") + f" (default: {default})"
        origin = typing.get_origin(tp)
        if origin in (list, tuple, List, Sequence):
            (elem,) = typing.get_args(tp)[:1] or (str,)
            parser.add_argument(flag, type=elem, nargs="+", default=None, help=help_,
                                choices=f.metadata.get("choices"))
        elif tp is bool:
            parser.add_argument(flag, type=_parse_bool, default=None, metavar="{true,false}", help=help_)
        else:
            conv = (lambda s, _tp=tp: None if s.lower() == "none" else _tp(s)) if optional else tp
            parser.add_argument(flag, type=conv, default=None, help=help_, choices=f.metadata.get("choices"))


def config_from_args(cls: Type[T], args: argparse.Namespace, **extra: Any) -> T:
    kwargs = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if f.init and getattr(args, f.name, None) is not None}
    kwargs.update(extra)
    return cls(**kwargs)


_POSITIVE_INT = re.compile(r"^(n|steps|restarts|iterations|epochs|batch_size|rounds)$"
                           r"|_(steps|iter|iters|iterations|restarts|samples|images|epochs|batch|pairs|draws)$")
_POSITIVE_FLOAT = re.compile(r"(^|_)(learning_rate|lr)$")
_NONNEG = re.compile(r"(^|_)(seed|eps|epsilon|eta|n)$|^n_|_(eps|epsilon|weight|std|msd)$|(^|_)eps_")


def _bad_value(name: str, value: Any, default: Any, meta: dict) -> Optional[str]:
    """Why ``value`` is not a valid ``--name`` (None if it is): the universal rules by field name
    (counts ≥ 1, learning rates > 0, seeds / budgets / sizes ≥ 0, no NaN, no ±inf unless the
    default is inf) plus ``min`` / ``max`` in the field's metadata."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if isinstance(v, float) and math.isnan(v):
            return "is NaN"
        if isinstance(v, float) and math.isinf(v):
            defaults = default if isinstance(default, (list, tuple)) else [default]
            if not any(isinstance(d, float) and math.isinf(d) for d in defaults):
                return f"must be finite, got {v}"
            continue
        lo, hi = meta.get("min"), meta.get("max")
        if lo is None:
            if isinstance(v, int) and _POSITIVE_INT.search(name):
                lo = 1
            elif _POSITIVE_FLOAT.search(name):
                if v <= 0:
                    return f"must be > 0, got {v}"
            elif _NONNEG.search(name):
                lo = 0
        if lo is not None and v < lo:
            return f"must be ≥ {lo}, got {v}"
        if hi is not None and v > hi:
            return f"must be ≤ {hi}, got {v}"
    return None


def validate_config(cfg: Any) -> List[str]:
    """Every problem with a config's values, as ``--flag: reason`` strings (empty: valid)."""
    problems = []
    for f in dataclasses.fields(cfg):
        if not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore
        why = _bad_value(f.name, getattr(cfg, f.name), default, dict(f.metadata))
        if why:
            problems.append(f"--{f.name.replace('_', '-')} {why}")
    return problems


def parse_config(cls: Type[T], argv: Optional[Sequence[str]] = None, description: str = "") -> T:
    """Parse ``cls`` from ``argv``; a value that cannot work (``--n 0``, ``--learning-rate -1``,
    ``--eps nan``) stops here with one line naming the flag, before any model is loaded."""
    parser = argparse.ArgumentParser(description=description or (cls.__doc__ or "").strip().split("\n")[0])
    add_dataclass_arguments(parser, cls)
    from tf_inc.errors import InputError

    try:
        cfg = config_from_args(cls, parser.parse_args(argv))
    except InputError as e:           # configs that check themselves in __post_init__
        parser.error(str(e))
    problems = validate_config(cfg)
    if problems:
        parser.error("; ".join(problems))
    return cfg


def run_script(cls: Type[T], run, argv: Optional[Sequence[str]] = None):
    """What every ``scripts/<name>.py`` does: parse ``cls`` from the command line, call
    ``run(config)`` (which returns the paths it wrote) and print where they went.

    Bad input found later (:class:`~tf_inc.errors.InputError`, e.g. a budget outside the data's
    range), data or weights that are not on this machine (:class:`~tf_inc.errors.DataMissingError`)
    and an untrusted model file (:class:`~tf_inc.errors.UntrustedFileError`) end the script with
    ``error: <what and how to fix it>`` and exit status 2, not a traceback."""
    import sys

    from tf_inc.errors import USER_ERRORS
    from tf_inc.experiments.results import print_outputs

    cfg = parse_config(cls, argv)
    try:
        paths = run(cfg)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    print_outputs(paths)
    return paths
