"""Lazy package exports (PEP 562), so that ``mlic --help``, ``mlic info`` and ``mlic zoo``
start without importing torch: a package names what it exports and the submodule that
defines it, and the submodule is imported on first use."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``where[name]`` (a submodule,
    relative to the package) when ``name`` is first asked for."""

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__
