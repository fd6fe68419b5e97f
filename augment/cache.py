"""Where converted models and fetched datasets are cached between runs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$AUGMENT_CACHE``, else ``$XDG_CACHE_HOME/augment``, else ``~/.cache/augment``."""
    if env := os.environ.get("AUGMENT_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "augment"
