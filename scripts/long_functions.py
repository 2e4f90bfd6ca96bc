"""Functions in src/ longer than a limit (default 80 lines), longest first; exit 1 if any.

python scripts/long_functions.py [--limit 80]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def long_functions(limit: int) -> list[tuple[int, str, str]]:
    rows = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    rows.append((length, str(path.relative_to(SRC.parent)), node.name))
    return sorted(rows, reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=80)
    rows = long_functions(parser.parse_args().limit)
    for length, path, name in rows:
        print(f"{length:4d}  {path}  {name}")
    return 1 if rows else 0


if __name__ == "__main__":
    sys.exit(main())
