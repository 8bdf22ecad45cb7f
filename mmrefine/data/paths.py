"""Where data lives: ``--data-root``, then ``$MMREFINE_DATA``, then ``../shared/data``;
where derived data is cached: ``$MMREFINE_CACHE``, else ``~/.cache/mmrefine``."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_root() -> Path | None:
    env = os.environ.get("MMREFINE_DATA")
    if env:
        return Path(env)
    for cand in (Path.cwd() / ".." / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"):
        if cand.is_dir():
            return cand.resolve()
    return None


def resolve_data_root(root: str | os.PathLike | None) -> Path | None:
    return Path(root).expanduser() if root is not None else default_data_root()


def dataset_folder(root: str | os.PathLike | None, name: str) -> Path:
    """``ROOT/name`` when that folder exists, else ``ROOT`` itself (a user may
    point straight at the dataset's folder); raises when no root is known."""
    base = require_data_root(root, name)
    return base / name if (base / name).is_dir() else base


def require_data_root(root: str | os.PathLike | None, name: str) -> Path:
    """The resolved data root; raises naming ``name`` when none is known."""
    from mmrefine.core.errors import DataError

    base = resolve_data_root(root)
    if base is None:
        raise DataError(f"no data root for '{name}': pass data.root or --data-root, or set $MMREFINE_DATA")
    return base


def default_cache_dir() -> Path:
    env = os.environ.get("MMREFINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mmrefine"
