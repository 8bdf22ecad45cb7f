"""Where data lives: ``--data-root``, then ``$MMREFINE_DATA``, then ``../shared/data``."""

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
