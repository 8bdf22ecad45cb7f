"""Name -> class registries with strict keyword validation.

Configs build components as ``{"name": "gmu", "out_dim": 64}``. ``Registry.build``
checks every key against the class signature, so a misspelt key is an error that
names it instead of a setting that silently does nothing.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Generic, Mapping, TypeVar

from mmrefine.core.errors import ConfigError, ContractError
from mmrefine.core.typecheck import check_range, convert, signature_hints

T = TypeVar("T")


def _suggest(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[T]):
    """A named collection of constructors of one kind (encoders, fusions, ...)."""

    def __init__(self, kind: str, symbol: str | None = None) -> None:
        self.kind = kind
        self.symbol = symbol or f"{kind.upper()}S"  # the registry's name in mmrefine, for error messages
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(obj: Callable[..., T]) -> Callable[..., T]:
            if name in self._items:
                raise ContractError(f"{self.kind} '{name}' is already registered")
            self._items[name] = obj
            return obj

        return deco

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str, where: str = "") -> Callable[..., T]:
        if name not in self._items:
            loc = f"{where}: " if where else ""
            raise ConfigError(
                f"{loc}unknown {self.kind} '{name}'{_suggest(name, self.names())}; "
                f"known: {', '.join(self.names())}. To add your own, register it in a module of yours "
                f"(e.g. @{self.symbol}.register('{name}') on its class) and load that module with "
                f"'mmrefine --import MODULE ...' or an 'mmrefine.plugins' entry point"
            )
        return self._items[name]

    def build(
        self,
        spec: Mapping[str, Any],
        where: str = "",
        provided: Mapping[str, Any] | None = None,
    ) -> T:
        """Build from ``spec`` (``name`` plus keyword arguments).

        ``provided`` holds arguments the caller supplies (e.g. input shapes);
        they may not be set in the spec.
        """
        if "name" not in spec:
            raise ConfigError(f"{where or self.kind}: missing key 'name' ({self.kind} names: {', '.join(self.names())})")
        name = spec["name"]
        kwargs = {k: v for k, v in spec.items() if k != "name"}
        return build_checked(self.get(name, where), kwargs, where, provided, f"{self.kind} '{name}'")


def build_checked(
    cls: Callable[..., T],
    kwargs: Mapping[str, Any],
    where: str,
    provided: Mapping[str, Any] | None = None,
    what: str = "",
) -> T:
    """Call ``cls(**provided, **kwargs)`` after checking every config key in
    ``kwargs`` against its signature (unknown keys and keys the caller sets are
    errors) and its value against the parameter's type hint."""
    what = what or getattr(cls, "__name__", "component")
    provided = dict(provided or {})
    params = _signature_params(cls)
    takes_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    settable = [k for k in params if k not in provided]
    for key in kwargs:
        if key in provided:
            raise ConfigError(f"{where}.{key}: set automatically for {what}; remove it from the config")
        if key not in params and not takes_var_kw:
            raise ConfigError(f"{where}.{key}: unknown key for {what}{_suggest(key, settable)}; accepted: {', '.join(settable)}")
    hints = signature_hints(cls)
    kwargs = {k: convert(v, hints[k], f"{where}.{k}") if k in hints else v for k, v in kwargs.items()}
    for k, v in kwargs.items():
        check_range(k, v, f"{where}.{k}")
    provided = {k: v for k, v in provided.items() if k in params or takes_var_kw}
    missing = [
        k for k, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and k not in kwargs and k not in provided
    ]
    if missing:
        raise ConfigError(f"{where}: {what} needs {', '.join(repr(m) for m in missing)}")
    try:
        return cls(**provided, **kwargs)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a constructor on config values is a config error
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{where}: cannot build {what}{' with ' + given if given else ''}: {first}") from exc


def _signature_params(obj: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    params = dict(inspect.signature(target).parameters)
    params.pop("self", None)
    return {k: p for k, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL}
