"""Values from YAML checked against type hints.

Used for the typed config sections and for every component's settings
(``data``, ``model.fusion``, ``model.encoders.*``, ...), which are checked
against the constructor's hints: ``standardize: "false"`` is an error naming
the key, not a truthy string.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import types
import typing
from typing import Any, Mapping, Sequence, Union

from mmrefine.core.errors import ConfigError


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def convert(value: Any, tp: Any, path: str) -> Any:
    """``value`` checked against the type hint ``tp`` (bool, int, float, str,
    lists/sequences, mappings, unions, optional, dataclasses; other types pass
    as they are), ints widened to float where a float is expected. Raises
    :class:`ConfigError` naming ``path``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, path)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return convert(value, a, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{path}: {value!r} matches none of {' | '.join(_type_name(a) for a in args)}")
    if origin in (list, tuple, Sequence, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args and (origin is not tuple or len(args) == 2 and args[1] is Ellipsis) else Any
        return [convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Mapping, collections.abc.Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        if args:
            return {k: convert(v, args[1], f"{path}.{k}") for k, v in value.items()}
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


RANGE_RULES: tuple[tuple[str, Any, str], ...] = (
    (r"(^|_)dropout$", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    (r"(^|_)(dim|dims|width|heads|rank)$|^(hidden|steps|layers|num_layers|n_layers|kernel_size)$", lambda v: v >= 1, "must be >= 1"),
    (r"(^|_)(lr|temperature|margin_scale|epsilon)$", lambda v: v > 0, "must be positive"),
)


def check_range(key: str, value: Any, path: str) -> None:
    """Numbers (or lists of numbers) under a conventional name checked against its range:
    ``*dropout`` in [0, 1), ``*_dim``, ``*heads``, ``*layers``, ``*steps``, ``hidden`` >= 1,
    ``lr``, ``temperature`` > 0. Raises :class:`ConfigError` naming ``path``."""
    import re

    values = value if isinstance(value, (list, tuple)) else [value]
    for pattern, ok, rule in RANGE_RULES:
        if re.search(pattern, key):
            for v in values:
                if isinstance(v, (int, float)) and not isinstance(v, bool) and not ok(v):
                    raise ConfigError(f"{path} {rule}, got {value!r}")
            return


def from_dict(cls: type, data: Mapping[str, Any], path: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown config key '{where}'{hint}; allowed here: {', '.join(names)}")
        kwargs[key] = convert(value, hints[key], where)
    return cls(**kwargs)


def signature_hints(obj: Any) -> dict[str, Any]:
    """Resolved type hints of a class's ``__init__`` or a function ({} when they cannot be resolved)."""
    target = obj.__init__ if isinstance(obj, type) else obj
    try:
        return typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - unresolvable hints (forward references): check names only
        return {}
