"""The one boundary parser for numbers written by a user: command-line options, targets,
grid ranges, sizes, manifest cells, request fields.

Python's ``int()`` refuses text of more than 4300 digits with a ValueError that names a
``sys`` setting, and ``repr()`` of such an integer fails the same way; ``float()`` turns
``1e999`` into infinity. Every number nst reads from text goes through :func:`parse_int`
or :func:`parse_float`, which read at most :data:`MAX_DIGITS` digits, refuse infinities
and NaN, check an optional range, and quote the text shortened (:func:`quote`), so each
problem is one short :class:`~nst.errors.ConfigError` line.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import ConfigError, one_line

#: the most digits of an integer nst reads (no count, index or size it takes is longer)
MAX_DIGITS = 18
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def quote(text: str, limit: int = 40) -> str:
    """``'text'`` as one line, shortened to about ``limit`` characters (the length said)."""
    t = one_line(text)
    if len(t) <= limit:
        return f"'{t}'"
    return f"'{t[: limit - 3]}...' ({len(text):,} characters)"


def show(value: Any, limit: int = 40) -> str:
    """A JSON or Python value as a short quotation (safe for integers of any size)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1:,} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # a huge int nested in a list
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _range(value: float, what: str, text: str, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            span = f"between {_num(lo)} and {_num(hi)}"
        elif lo is not None:
            span = f"at least {_num(lo)}"
        else:
            span = f"at most {_num(hi or 0)}"
        raise ConfigError(f"{what}: {text} is out of range (use a value {span})")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e16 else f"{v:g}"


def parse_int(text: str, what: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer from text (optional sign, digits; surrounding blanks ignored)."""
    t = text.strip()
    if not _INT.fullmatch(t):
        raise ConfigError(f"{what}: {quote(text)} is not an integer")
    digits = len(t.lstrip("+-").lstrip("0"))
    if digits > MAX_DIGITS:
        allowed = (f"use a value between {lo} and {hi}" if lo is not None and hi is not None
                   else f"at most {MAX_DIGITS} digits")  # fmt: skip
        raise ConfigError(f"{what}: a number of {digits:,} digits is out of range ({allowed})")
    value = int(t)
    _range(value, what, quote(text), lo, hi)
    return value


def parse_float(text: str, what: str, lo: float | None = None, hi: float | None = None) -> float:
    """A finite number from text (``1e999``, ``inf`` and ``nan`` are refused)."""
    t = text.strip()
    if not _FLOAT.fullmatch(t):
        if t.lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise ConfigError(f"{what}: {quote(text)} is not a finite number")
        raise ConfigError(f"{what}: {quote(text)} is not a number")
    value = float(t)
    if not math.isfinite(value):
        raise ConfigError(f"{what}: {quote(text, 24)} is too large (not a finite number)")
    _range(value, what, quote(text, 24), lo, hi)
    return value


def loads(text: str, what: str, **kwargs: Any) -> Any:
    """``json.loads`` whose every failure (syntax, nesting, integers past Python's digit
    limit, NaN/Infinity literals) is one ConfigError line naming ``what``."""

    def constant(name: str) -> Any:
        raise ConfigError(f"{what}: {name} is not a finite number")

    try:
        return json.loads(text, parse_constant=constant, **kwargs)
    except ConfigError:  # from a hook
        raise
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ConfigError(f"{what}: nested too deeply") from None
    except ValueError as exc:  # an integer literal past Python's 4300-digit limit
        if "digit" in str(exc):
            raise ConfigError(f"{what}: a number with too many digits") from None
        raise ConfigError(f"{what}: not valid JSON") from None
