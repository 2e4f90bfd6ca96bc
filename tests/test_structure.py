"""Rules of the code's shape that a review would otherwise have to catch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_function_in_src_is_over_80_lines():
    rows = _script("long_functions").long_functions(80)
    assert rows == [], "split these: " + "; ".join(f"{p} {n} ({k} lines)" for k, p, n in rows)


def test_the_length_check_finds_a_long_function():
    finder = _script("long_functions")
    assert finder.long_functions(20)  # there are functions over 20 lines: it reads them
