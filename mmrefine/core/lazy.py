"""Names of a package imported on first use (PEP 562), so that importing the package stays light.

``__getattr__ = lazy_names(__name__, {"NAME": "submodule", ...})`` in a package's
``__init__`` makes ``package.NAME`` import ``package.submodule`` the first time it is read and
keep the value in the package, so later reads cost nothing."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_names(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``: ``NAME`` from ``package.homes[NAME]``."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = vars(importlib.import_module(f"{package}.{homes[name]}"))[name]
        vars(sys.modules[package])[name] = value
        return value

    return __getattr__
