"""A package face whose names load on first use (PEP 562).

``import augment.errors`` runs ``augment/__init__.py`` first; if that imported the API
eagerly, every classifier and the TensorFlow child would load torch and the generation
stack just to name an exception.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name in ``exports`` comes from the module it maps to."""
    def get(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def names() -> list[str]:
        return sorted({*importlib.import_module(package).__dict__, *exports})

    return get, names
