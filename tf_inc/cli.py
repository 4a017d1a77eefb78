"""Dataclass configs <-> command-line flags.

Each experiment has one dataclass whose defaults are the paper's values;
:func:`parse_config` exposes every field as ``--field-name`` so any of them can
be overridden without editing code.
"""
from __future__ import annotations

import argparse
import dataclasses
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


def parse_config(cls: Type[T], argv: Optional[Sequence[str]] = None, description: str = "") -> T:
    parser = argparse.ArgumentParser(description=description or (cls.__doc__ or "").strip().split("\n")[0])
    add_dataclass_arguments(parser, cls)
    return config_from_args(cls, parser.parse_args(argv))


def run_script(cls: Type[T], run, argv: Optional[Sequence[str]] = None):
    """What every ``scripts/<name>.py`` does: parse ``cls`` from the command line, call
    ``run(config)`` (which returns the paths it wrote) and print where they went."""
    from tf_inc.experiments.results import print_outputs

    paths = run(parse_config(cls, argv))
    print_outputs(paths)
    return paths
