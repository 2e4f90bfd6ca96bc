"""Option declarations: one per parameter, read by every front end.

Each field of :class:`nst.config.Config` is declared with :func:`option`: its kind
(how a value is read from text or JSON and checked), its range or choices, whether
it may be empty, its help text, the help panel it belongs to and where the web form
shows it. From that one declaration derive:

* the checks ``Config`` runs on typed values (:meth:`Option.check`);
* the one boundary parser every front end uses for text and JSON values
  (:meth:`Option.parse`, through :meth:`Config.from_dict`): CLI strings, web form JSON;
* the CLI options (``nst.cli.options``), ``/api/config`` and the web form.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .errors import ConfigError, one_line
from .layers import LayerWeights, format_layer_weights, parse_layer_weights

# -- kinds -----------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Kind:
    """How values of one type are read from text or JSON, normalized and written back."""

    name: str  # what the schema and the docs call it
    label: str  # what an error message calls a value of it
    from_text: Callable[[str, str], Any]
    from_json: Callable[[Any, str], Any]
    to_json: Callable[[Any], Any] = lambda v: v
    to_text: Callable[[Any], str] = str


def _int_text(text: str, what: str) -> int:
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        raise ConfigError(f"{what}: '{text}' is not an integer") from None


def _int_json(value: Any, what: str) -> int:
    if isinstance(value, str):
        return _int_text(value, what)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise ConfigError(f"{what}: {_show(value)} is not an integer")


def _float_text(text: str, what: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ConfigError(f"{what}: '{text}' is not a number") from None


def _float_json(value: Any, what: str) -> float:
    if isinstance(value, str):
        return _float_text(value, what)
    if _number(value):
        return float(value)
    raise ConfigError(f"{what}: {_show(value)} is not a number")


def _bool_text(text: str, what: str) -> bool:
    t = text.strip().lower()
    if t in {"1", "true", "yes", "on"}:
        return True
    if t in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{what}: '{text}' is not true or false")


def _bool_json(value: Any, what: str) -> bool:
    if isinstance(value, str):
        return _bool_text(value, what)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigError(f"{what}: {_show(value)} is not true or false")


def _str_json(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    raise ConfigError(f"{what}: {_show(value)} is not text")


def _list_text(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _seq(value: Any, what: str) -> Sequence[Any]:
    if isinstance(value, (list, tuple)):
        return value
    raise ConfigError(f"{what}: {_show(value)} is not a list")


def _floats_text(text: str, what: str) -> tuple[float, ...]:
    return tuple(_float_text(p, what) for p in _list_text(text))


def _floats_json(value: Any, what: str) -> tuple[float, ...]:
    if isinstance(value, str):
        return _floats_text(value, what)
    return tuple(_float_json(v, what) if not isinstance(v, str) else _bad(v, what, "a number")
                 for v in _seq(value, what))  # fmt: skip


def _ints_text(text: str, what: str) -> tuple[int, ...]:
    return tuple(_int_text(p, what) for p in _list_text(text))


def _ints_json(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, str):
        return _ints_text(value, what)
    return tuple(_int_json(v, what) if not isinstance(v, str) else _bad(v, what, "an integer")
                 for v in _seq(value, what))  # fmt: skip


def _bad(value: Any, what: str, expected: str) -> Any:
    raise ConfigError(f"{what}: {_show(value)} is not {expected}")


def _layers_text(text: str, what: str) -> LayerWeights:
    return parse_layer_weights(text, what=what)


def _layers_json(value: Any, what: str) -> LayerWeights:
    if isinstance(value, str):
        return parse_layer_weights(value, what=what)
    if isinstance(value, Mapping):
        items: list[Any] = list(value.items())
    else:
        items = list(_seq(value, what))
    pairs: list[str | tuple[str, float]] = []
    for item in items:
        if isinstance(item, str):
            pairs.append(item)
        elif isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
            pairs.append((item[0], _float_json(item[1], what)))
        else:
            raise ConfigError(f"{what}: {_show(item)} is not a layer or a [layer, weight] pair")
    if any(isinstance(p, str) for p in pairs) and not all(isinstance(p, str) for p in pairs):
        raise ConfigError(f"{what}: give a weight for every layer or for none")
    return parse_layer_weights(pairs, what=what)


def parse_colour(text: str) -> tuple[int, int, int]:
    """``#rrggbb`` (or ``rrggbb``) -> (r, g, b)."""
    hexa = text.strip().lower().removeprefix("#")
    if len(hexa) != 6 or any(ch not in "0123456789abcdef" for ch in hexa):
        raise ConfigError(f"regions: colour '{text}' is not of the form #rrggbb")
    return int(hexa[0:2], 16), int(hexa[2:4], 16), int(hexa[4:6], 16)


def _region(colour: str, target: str, part: str) -> tuple[str, str]:
    colour, target = colour.strip().lower(), target.strip().lower()
    if not target:
        raise ConfigError(f"regions: '{part}' is not COLOUR=STYLE (e.g. #ff0000=1)")
    parse_colour(colour)
    if target != "content" and not (target.isdigit() and int(target) >= 1):
        raise ConfigError(
            f"regions: '{target}' is neither a style number (1, 2, ...) nor 'content'"
        )
    return colour, target


def _regions_text(text: str, what: str) -> tuple[tuple[str, str], ...]:
    out = []
    for part in _list_text(text):
        colour, sep, target = part.partition("=")
        if not sep:
            raise ConfigError(f"regions: '{part}' is not COLOUR=STYLE (e.g. #ff0000=1)")
        out.append(_region(colour, target, part))
    return tuple(out)


def _regions_json(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str):
        return _regions_text(value, what)
    items = list(value.items()) if isinstance(value, Mapping) else list(_seq(value, what))
    out = []
    for item in items:
        if (
            isinstance(item, (list, tuple))
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], (str, int))
            and not isinstance(item[1], bool)
        ):
            out.append(_region(item[0], str(item[1]), f"{item[0]}={item[1]}"))
        else:
            raise ConfigError(f"regions: {_show(item)} is not a [colour, style] pair")
    return tuple(out)


def _join(values: Sequence[Any]) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


INT = Kind("int", "an integer", _int_text, _int_json)
FLOAT = Kind("float", "a number", _float_text, _float_json, to_text=lambda v: f"{v:g}")
BOOL = Kind("bool", "true or false", _bool_text, _bool_json, to_text=lambda v: str(v).lower())
TEXT = Kind("str", "text", lambda t, w: t, _str_json)
FLOATS = Kind("floats", "a list of numbers", _floats_text, _floats_json, list, _join)
INTS = Kind("ints", "a list of integers", _ints_text, _ints_json, list, _join)
LAYERS = Kind("layers", "layer weights", _layers_text, _layers_json,
              format_layer_weights, format_layer_weights)  # fmt: skip
REGIONS = Kind(
    "regions",
    "colour=style pairs",
    _regions_text,
    _regions_json,
    lambda v: ",".join(f"{c}={t}" for c, t in v),
    lambda v: ",".join(f"{c}={t}" for c, t in v),
)


def _show(value: Any) -> str:
    """A value as a short, one-line quotation for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- declarations ------------------------------------------------------------------------------
#: where the web form shows an option: the main form, "Advanced", or nowhere (server only)
WEB_PLACES = ("main", "advanced", "server")


@dataclass(frozen=True)
class Option:
    """One parameter: what it is, what values it takes, where it is shown."""

    name: str
    kind: Kind
    default: Any
    help: str
    panel: str = "Objective"
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo itself is excluded (> instead of >=)
    choices: tuple[str, ...] | None = None
    nullable: bool = False
    web: str = "advanced"
    label: str = ""

    @property
    def what(self) -> str:
        """The name messages use (``style-weight``), as the CLI flag without dashes."""
        return self.name.replace("_", "-")

    @property
    def flag(self) -> str:
        return "--" + self.what

    # -- the boundary: text or JSON to a typed value ------------------------------------------
    def parse(self, value: Any) -> Any:
        """A typed value from text (CLI, manifests) or JSON (web), checked."""
        if value is None or (isinstance(value, str) and not value.strip() and self.nullable):
            if self.nullable:
                return None
            raise ConfigError(f"{self.what}: a value is needed")
        if isinstance(value, str):
            typed = self.kind.from_text(value, self.what)
        else:
            typed = self.kind.from_json(value, self.what)
        self.check(typed)
        return typed

    # -- typed values ------------------------------------------------------------------------
    def normalize(self, value: Any) -> Any:
        """A typed value in its canonical container (lists -> tuples, ints -> floats)."""
        if value is None:
            return None
        if isinstance(value, str) and self.kind not in (TEXT,):
            raise ConfigError(
                f"{self.what}: {_show(value)} is text; Config takes typed values "
                f"(parse text with Config.from_dict or nst.options.OPTIONS['{self.name}'].parse)"
            )
        if self.kind is FLOAT and _number(value):
            return float(value)
        if self.kind in (FLOATS, INTS, LAYERS, REGIONS):
            return self.kind.from_json(value, self.what)
        return value

    def check(self, value: Any) -> None:
        """Raise a one-line ConfigError if ``value`` (typed) is not allowed."""
        if value is None:
            if not self.nullable:
                raise ConfigError(f"{self.what}: a value is needed")
            return
        kind = self.kind
        if kind is INT:
            self._check_int(value)
        elif kind is FLOAT:
            self._check_float(value)
        elif kind is BOOL:
            if not isinstance(value, bool):
                raise ConfigError(f"{self.what} must be true or false (got {_show(value)})")
        elif kind is TEXT:
            if not isinstance(value, str):
                raise ConfigError(f"{self.what} must be text (got {_show(value)})")
            if self.choices is not None and value not in self.choices:
                raise ConfigError(
                    f"{self.what} must be one of {', '.join(self.choices)} (got {value!r})"
                )
        elif kind is INTS:
            for v in value:
                self._check_int(v)
        elif kind is FLOATS:
            for v in value:
                self._check_float(v)

    def _check_int(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.what} must be an integer (got {_show(value)})")
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None and not lo <= value <= hi:
            raise ConfigError(f"{self.what} must be between {int(lo)} and {int(hi)} (got {value})")
        if lo is not None and hi is None and value < lo:
            raise ConfigError(f"{self.what} must be >= {int(lo)} (got {value})")

    def _check_float(self, value: Any) -> None:
        if not _number(value) or not math.isfinite(value):
            raise ConfigError(f"{self.what} must be a finite number (got {_show(value)})")
        lo, hi = self.lo, self.hi
        low_ok = lo is None or (value > lo if self.lo_open else value >= lo)
        high_ok = hi is None or value <= hi
        if low_ok and high_ok:
            return
        low = f"> {lo:g}" if self.lo_open else f">= {lo:g}"
        if hi is None:
            raise ConfigError(f"{self.what} must be {low} (got {value:g})")
        if lo is None:
            raise ConfigError(f"{self.what} must be at most {hi:g} (got {value:g})")
        if self.lo_open:
            raise ConfigError(f"{self.what} must be {low} and at most {hi:g} (got {value:g})")
        raise ConfigError(f"{self.what} must be between {lo:g} and {hi:g} (got {value:g})")

    # -- schema --------------------------------------------------------------------------------
    def to_text(self, value: Any) -> str:
        return "" if value is None else self.kind.to_text(value)

    def to_json(self, value: Any) -> Any:
        return None if value is None else self.kind.to_json(value)

    def schema(self) -> dict[str, Any]:
        """What ``/api/config`` tells a form about this option."""
        return {
            "name": self.name,
            "kind": self.kind.name,
            "default": self.to_json(self.default),
            "help": self.help,
            "label": self.label or self.name.replace("_", " ").capitalize(),
            "panel": self.panel,
            "web": self.web,
            "choices": list(self.choices) if self.choices else None,
            "min": self.lo,
            "max": self.hi,
            "min_exclusive": self.lo_open,
            "nullable": self.nullable,
        }


def option(default: Any, help: str, kind: Kind, **spec: Any) -> Any:
    """A Config field declared with its :class:`Option` (name filled in by Config)."""
    return field(default=default, metadata={"option": (kind, help, spec)})


class Declared:
    """Base of the frozen option dataclasses (:class:`nst.config.Config`, the explain tools'
    settings): typed values checked on construction, text and JSON parsed by
    :meth:`from_dict`, written back by :meth:`to_dict`. Subclasses call :func:`declare`."""

    OPTIONS: ClassVar[dict[str, Option]]

    def __post_init__(self) -> None:
        for name, opt in self.OPTIONS.items():
            value = opt.normalize(getattr(self, name))
            opt.check(value)
            object.__setattr__(self, name, value)
        self._check_together()

    def _check_together(self) -> None:
        """Checks that involve more than one option (subclasses add theirs)."""

    def replace(self: D, **changes: Any) -> D:
        """A copy with some options changed (typed values)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (layer weights as ``"conv1_1:0.2,..."``); from_dict reads them."""
        return {name: opt.to_json(getattr(self, name)) for name, opt in self.OPTIONS.items()}

    @classmethod
    def from_dict(cls: type[D], data: Any, base: D | None = None) -> D:
        """The boundary parser: text or JSON values by option name.

        Used by every front end (CLI strings, web JSON, manifest cells). Unknown names are
        refused with their name; options not given keep the value in ``base`` (default:
        the defaults).
        """
        if not isinstance(data, dict):
            raise ConfigError("parameters: expected an object of option names and values")
        unknown = sorted(str(k) for k in data if k not in cls.OPTIONS)
        if unknown:
            shown = ", ".join(u if len(u) <= 40 else u[:37] + "..." for u in unknown[:5])
            raise ConfigError(f"unknown parameter(s): {one_line(shown)}")
        values = {key: cls.OPTIONS[key].parse(value) for key, value in data.items()}
        try:
            if base is not None:
                return dataclasses.replace(base, **values)  # type: ignore[type-var]
            return cls(**values)
        except TypeError as exc:  # pragma: no cover - guarded by the checks above
            raise ConfigError(str(exc)) from None


D = TypeVar("D", bound=Declared)


def declare(cls: type[D]) -> type[D]:
    """Collect the :class:`Option` of every field declared with :func:`option`."""
    out: dict[str, Option] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind, help_text, spec = f.metadata["option"]
        out[f.name] = Option(f.name, kind, f.default, help_text, **spec)
    cls.OPTIONS = out
    return cls
