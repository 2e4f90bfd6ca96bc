"""Package attributes imported on first use (PEP 562), so that light entry points (the
command line's ``--help``, option declarations) do not load torch, ray, av or cv2."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any


def homes(**modules: Iterable[str]) -> dict[str, str]:
    """``homes(api=["stylize", ...])`` -> ``{"stylize": "api", ...}``."""
    return {name: module for module, names in modules.items() for name in names}


def install(package: str, where: Mapping[str, str]) -> None:
    """Make each public name of ``package`` import from its submodule (``where[name]``,
    relative to the package) on first use.

    A public name may be spelled like a submodule (``nst.score``, the function, lives in
    ``nst/score.py``): importing that submodule must not replace the public name with
    the module, as it would on a plain package, so such an assignment is ignored.
    """
    module = sys.modules[package]

    class LazyPackage(ModuleType):
        def __getattr__(self, name: str) -> Any:
            home = where.get(name)
            if home is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(f".{home}", package), name)
            ModuleType.__setattr__(self, name, value)
            return value

        def __setattr__(self, name: str, value: Any) -> None:
            if name in where and getattr(value, "__name__", None) == f"{package}.{name}":
                return  # the import system binding the submodule over the public name
            ModuleType.__setattr__(self, name, value)

        def __dir__(self) -> list[str]:
            return sorted({*self.__dict__, *where})

    module.__class__ = LazyPackage
