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

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .errors import ConfigError, one_line
from .layers import LayerWeights, format_layer_weights, parse_layer_weights
from .numbers import parse_int, quote, show

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
    #: checks a typed value against the option's declaration (range, choices)
    check: Callable[[Option, Any], None] = lambda opt, value: None
    #: a typed value in its canonical container (lists -> tuples, ints -> floats)
    canonical: Callable[[Option, Any], Any] = lambda opt, value: value


def _int_text(text: str, what: str) -> int:
    return parse_int(text, what)


def _int_json(value: Any, what: str) -> int:
    if isinstance(value, str):
        return _int_text(value, what)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise ConfigError(f"{what}: {_show(value)} is not an integer")


def _float_text(text: str, what: str) -> float:
    try:  # inf and nan are read here and refused by the option's check, which names them
        return float(text.strip())
    except ValueError:
        raise ConfigError(f"{what}: {quote(text)} is not a number") from None


def _float_json(value: Any, what: str) -> float:
    if isinstance(value, str):
        return _float_text(value, what)
    if _number(value):
        try:
            return float(value)
        except OverflowError:  # an integer past 1e308
            raise ConfigError(f"{what}: {_show(value)} is too large") from None
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


def _check_int(opt: Option, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{opt.what} must be an integer (got {_show(value)})")
    lo, hi = opt.lo, opt.hi
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise ConfigError(
            f"{opt.what} must be between {int(lo)} and {int(hi)} (got {_show(value)})"
        )
    if lo is not None and hi is None and value < lo:
        raise ConfigError(f"{opt.what} must be >= {int(lo)} (got {_show(value)})")


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past 1e308
        return False


def _check_float(opt: Option, value: Any) -> None:
    if not _number(value) or not _finite(value):
        raise ConfigError(f"{opt.what} must be a finite number (got {_show(value)})")
    lo, hi = opt.lo, opt.hi
    low_ok = lo is None or (value > lo if opt.lo_open else value >= lo)
    high_ok = hi is None or value <= hi
    if low_ok and high_ok:
        return
    low = f"> {lo:g}" if opt.lo_open else f">= {lo:g}"
    if hi is None:
        raise ConfigError(f"{opt.what} must be {low} (got {value:g})")
    if lo is None:
        raise ConfigError(f"{opt.what} must be at most {hi:g} (got {value:g})")
    if opt.lo_open:
        raise ConfigError(f"{opt.what} must be {low} and at most {hi:g} (got {value:g})")
    raise ConfigError(f"{opt.what} must be between {lo:g} and {hi:g} (got {value:g})")


def _check_bool(opt: Option, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{opt.what} must be true or false (got {_show(value)})")


def _check_text(opt: Option, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{opt.what} must be text (got {_show(value)})")
    if opt.choices is not None and value not in opt.choices:
        raise ConfigError(f"{opt.what} must be one of {', '.join(opt.choices)} (got {value!r})")


def _each(check: Callable[[Option, Any], None]) -> Callable[[Option, Any], None]:
    def check_all(opt: Option, values: Any) -> None:
        for v in values:
            check(opt, v)

    return check_all


def _float_value(opt: Option, value: Any) -> Any:
    return float(value) if _number(value) else value


def _via_json(kind_json: Callable[[Any, str], Any]) -> Callable[[Option, Any], Any]:
    return lambda opt, value: kind_json(value, opt.what)


def _regions_out(v: Any) -> str:
    return ",".join(f"{c}={t}" for c, t in v)


INT = Kind("int", "an integer", _int_text, _int_json, check=_check_int)


#: ``auto`` as an integer option holds it (iterations: until the picture stops changing)
AUTO = 0


class _Given(int):
    """An integer read from text or JSON: never :data:`AUTO` (only the word is), so a
    given 0 is checked, and refused, as any integer out of range."""


def _auto_text(text: str, what: str) -> int:
    return _auto_json(text, what)


def _auto_json(value: Any, what: str) -> int:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return AUTO
    return _Given(_int_json(value, what))


def _check_auto(opt: Option, value: Any) -> None:
    if type(value) is int and value == AUTO:
        return
    _check_int(opt, int(value) if isinstance(value, _Given) else value)


def _auto_value(opt: Option, value: Any) -> Any:
    """A given integer as a plain one (a given 0 stays marked: the check refuses it)."""
    return int(value) if isinstance(value, _Given) and value != AUTO else value


#: an integer or ``auto`` (held as :data:`AUTO`); the web shows it as an integer field
INT_OR_AUTO = Kind("int", "an integer or auto", _auto_text, _auto_json,
                   to_json=lambda v: "auto" if v == AUTO else v,
                   to_text=lambda v: "auto" if v == AUTO else str(v),
                   check=_check_auto, canonical=_auto_value)  # fmt: skip
FLOAT = Kind("float", "a number", _float_text, _float_json, to_text=lambda v: f"{v:g}",
             check=_check_float, canonical=_float_value)  # fmt: skip
BOOL = Kind("bool", "true or false", _bool_text, _bool_json, to_text=lambda v: str(v).lower(),
            check=_check_bool)  # fmt: skip
TEXT = Kind("str", "text", lambda t, w: t, _str_json, check=_check_text)
FLOATS = Kind("floats", "a list of numbers", _floats_text, _floats_json, list, _join,
              check=_each(_check_float), canonical=_via_json(_floats_json))  # fmt: skip
INTS = Kind("ints", "a list of integers", _ints_text, _ints_json, list, _join,
            check=_each(_check_int), canonical=_via_json(_ints_json))  # fmt: skip
LAYERS = Kind("layers", "layer weights", _layers_text, _layers_json,
              format_layer_weights, format_layer_weights,
              canonical=_via_json(_layers_json))  # fmt: skip
REGIONS = Kind("regions", "colour=style pairs", _regions_text, _regions_json, _regions_out,
               _regions_out, canonical=_via_json(_regions_json))  # fmt: skip


def _show(value: Any) -> str:
    """A value as a short, one-line quotation for an error message."""
    return show(value)


# -- declarations ------------------------------------------------------------------------------
#: where the web form shows an option: the main form, "Advanced", nowhere but settable by a
#: request (``hidden``: a page's own control sets it), or nowhere (``server``: only whoever
#: runs the server sets it; refused in a request)
WEB_PLACES = ("main", "advanced", "hidden", "server")
#: what a run does with its options: stylize (also the web, batch, demo), video (one frame's
#: stylization inside a video), content (feature inversion), texture (texture synthesis),
#: metrics (scoring a finished video). An option applies to the modes it declares.
MODES = ("stylize", "video", "content", "texture", "metrics")


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
    #: the value names an input file (read before work, shipped to batch workers, checked
    #: against outputs); ``keywords`` are the values that name no file
    path: bool = False
    keywords: tuple[str, ...] = ()
    #: a path option whose file is an image (read and checked as one before work)
    image: bool = False
    #: the server limit (a field of the web app's settings) that bounds this option
    cap: str | None = None
    unit: str = ""  # of its numbers, in messages ("px")
    #: the modes (:data:`MODES`) it applies to; a command shows only its mode's options
    modes: tuple[str, ...] = MODES
    #: part of a result's identity (batch output names); False for where a run happens
    identity: bool = True
    #: the value a web form starts from, where it differs from ``default`` (a first visit)
    web_default: Any = None
    #: how help shows the default where it is not a value (``seed``: random, printed)
    default_text: str = ""
    #: a short flag as well (``-k``)
    short: str = ""

    @property
    def server_only(self) -> bool:
        """Set only by whoever runs the server (paths, hardware): refused from a browser."""
        return self.web == "server"

    def names_file(self, value: Any) -> bool:
        """Whether ``value`` of this option names an input file."""
        return self.path and isinstance(value, str) and value.strip() not in ("", *self.keywords)

    def over_cap(self, value: Any, limit: float) -> bool:
        """Whether a typed value passes a server limit (lists: any element)."""
        if value is None:
            return False
        values = value if isinstance(value, (tuple, list)) else (value,)
        return any(_number(v) and v > limit for v in values)

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
        typed = self.convert(value)
        self.check(typed)
        return typed

    def convert(self, value: Any) -> Any:
        """A typed value from text or JSON, not yet checked against the option's range."""
        if isinstance(value, str):
            return self.kind.from_text(value, self.what)
        return self.kind.from_json(value, self.what)

    # -- typed values ------------------------------------------------------------------------
    def normalize(self, value: Any) -> Any:
        """A typed value in its canonical container (lists -> tuples, ints -> floats)."""
        if value is None:
            return None
        if isinstance(value, str) and self.kind is not TEXT:
            raise ConfigError(
                f"{self.what}: {_show(value)} is text; Config takes typed values "
                f"(parse text with Config.from_dict or nst.options.OPTIONS['{self.name}'].parse)"
            )
        return self.kind.canonical(self, value)

    def check(self, value: Any) -> None:
        """Raise a one-line ConfigError if ``value`` (typed) is not allowed."""
        if value is None:
            if not self.nullable:
                raise ConfigError(f"{self.what}: a value is needed")
            return
        self.kind.check(self, value)

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
            "unit": self.unit,
        }


@contextlib.contextmanager
def _blaming(name: str) -> Iterator[None]:
    """A ConfigError raised inside names ``name`` as its option (unless it names one)."""
    try:
        yield
    except ConfigError as exc:
        if exc.option is None:
            exc.option = name
        raise


def option(default: Any, help: str, kind: Kind, **spec: Any) -> Any:
    """A Config field declared with its :class:`Option` (name filled in by Config)."""
    return field(default=default, metadata={"option": (kind, help, spec)})


class Declared:
    """Base of the frozen option dataclasses (:class:`nst.config.Config`, the explain tools'
    settings): typed values checked on construction, text and JSON parsed by
    :meth:`from_dict`, written back by :meth:`to_dict`. Subclasses call :func:`declare`.

    Every role an option plays beyond its value is read off its declaration here: which
    options name files (:meth:`input_paths`, :meth:`with_paths`), which a browser may not
    set (:meth:`refuse_from_browser`), the server's caps (:meth:`check_caps`,
    :meth:`web_schema`), the modes a command shows (:meth:`options_for`) and what makes two
    results the same (:meth:`identity`)."""

    OPTIONS: ClassVar[dict[str, Option]]
    #: named bundles of option values (as text or JSON) and the option that names one:
    #: :meth:`from_dict` applies a bundle beneath the options given with it
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    PRESET_OPTION: ClassVar[str | None] = None

    # -- roles derived from the declarations ---------------------------------------------------
    @classmethod
    def options_for(cls, mode: str) -> dict[str, Option]:
        """The options that apply in ``mode`` (one of :data:`MODES`)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        return {n: o for n, o in cls.OPTIONS.items() if mode in o.modes}

    @classmethod
    def check_values(cls, **values: Any) -> None:
        """Check values given one by one (a library function's keywords) as declared."""
        for name, value in values.items():
            opt = cls.OPTIONS[name]
            with _blaming(name):
                opt.check(opt.normalize(value))

    @classmethod
    def path_options(cls) -> dict[str, Option]:
        return {n: o for n, o in cls.OPTIONS.items() if o.path}

    @classmethod
    def server_only(cls) -> frozenset[str]:
        """Options only the server's owner sets (refused in a request, hidden in the form)."""
        return frozenset(n for n, o in cls.OPTIONS.items() if o.server_only)

    def input_paths(self) -> dict[str, str]:
        """The files this configuration names, by option (keywords such as ``noise`` are
        not files; built-in images are left to the caller)."""
        out = {}
        for name, opt in self.path_options().items():
            value = getattr(self, name)
            if opt.names_file(value):
                out[name] = value
        return out

    def with_paths(self: D, mapping: Callable[[str], str]) -> D:
        """A copy with every file-naming option's value mapped (e.g. to a worker's copy)."""
        changes = {name: mapping(value) for name, value in self.input_paths().items()}
        return self.replace(**changes) if changes else self

    @classmethod
    def refuse_from_browser(cls, params: Mapping[str, Any]) -> None:
        """Refuse, in one line, values a request may not carry: server-only options, and
        a file name in a path option (only its keywords are allowed)."""
        forbidden = sorted(n for n in params if n in cls.OPTIONS and cls.OPTIONS[n].server_only)
        if forbidden:
            raise ConfigError(f"parameter(s) not settable here: {', '.join(forbidden)}")
        for name, value in params.items():
            opt = cls.OPTIONS.get(name)
            if opt is not None and opt.names_file(value):
                raise ConfigError(f"{opt.what} must be one of {', '.join(opt.keywords)}",
                                  option=name)  # fmt: skip

    def check_caps(self, limits: Mapping[str, float]) -> None:
        """Refuse values over a server limit (``limits``: the settings' fields by name)."""
        self._check_caps({name: getattr(self, name) for name in self.OPTIONS}, limits)

    @classmethod
    def _check_caps(cls, values: Mapping[str, Any], limits: Mapping[str, float]) -> None:
        for name, value in values.items():
            opt = cls.OPTIONS[name]
            if opt.cap is None or opt.cap not in limits:
                continue
            limit = limits[opt.cap]
            if opt.over_cap(value, limit):
                unit = f" {opt.unit}" if opt.unit else ""
                raise ConfigError(f"{opt.what}: at most {limit:g}{unit} on this server",
                                  option=name)  # fmt: skip

    @classmethod
    def web_schema(cls, limits: Mapping[str, float]) -> list[dict[str, Any]]:
        """The fields a web form shows: no server-only option, caps as maxima, a path
        option's keywords as its choices."""
        fields = []
        for opt in cls.OPTIONS.values():
            if opt.web in ("server", "hidden"):
                continue
            f = opt.schema()
            if opt.cap is not None and opt.cap in limits:
                f["max"] = limits[opt.cap] if f["max"] is None else min(f["max"], limits[opt.cap])
            if opt.path:
                f["choices"] = list(opt.keywords)
            if opt.web_default is not None:
                f["default"] = opt.to_json(opt.web_default)
            fields.append(f)
        return fields

    def identity(self) -> dict[str, Any]:
        """What makes two results the same: the JSON values of the options that take part
        in identity and differ from their defaults. An option added later with a default
        leaves it unchanged; a changed setting changes it."""
        out = {}
        for name, opt in self.OPTIONS.items():
            value = getattr(self, name)
            if opt.identity and value != opt.normalize(opt.default):
                out[name] = opt.to_json(value)
        return out

    def __post_init__(self) -> None:
        for name, opt in self.OPTIONS.items():
            with _blaming(name):
                value = opt.normalize(getattr(self, name))
                opt.check(value)
            object.__setattr__(self, name, value)
        self._check_together()

    def _check_together(self) -> None:
        """Checks that involve more than one option (subclasses add theirs)."""

    def replace(self: D, **changes: Any) -> D:
        """A copy with some options changed (typed values); a preset named among the
        changes applies beneath the other changes, over this copy's values."""
        return dataclasses.replace(self, **self.with_preset(changes))  # type: ignore[type-var]

    @classmethod
    def with_preset(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` with the bundle of the preset it names beneath it (what is given
        explicitly wins): the one place a preset is applied, by ``Config(...)``,
        :meth:`replace` and :meth:`from_dict` alike."""
        name = cls.PRESET_OPTION
        if name is None or given.get(name) in (None, ""):
            return dict(given)
        with _blaming(name):
            bundle = cls.PRESETS[cls.OPTIONS[name].parse(given[name])]
        return {**bundle, **given}

    def text(self, name: str) -> str:
        """One option's value as the command line writes it (``auto``, ``0.5``, ...)."""
        return self.OPTIONS[name].to_text(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (layer weights as ``"conv1_1:0.2,..."``); from_dict reads them."""
        return {name: opt.to_json(getattr(self, name)) for name, opt in self.OPTIONS.items()}

    @classmethod
    def from_dict(
        cls: type[D], data: Any, base: D | None = None, limits: Mapping[str, float] | None = None
    ) -> D:
        """The boundary parser: text or JSON values by option name.

        Used by every front end (CLI strings, web JSON, manifest cells). Unknown names are
        refused with their name; a preset's options apply beneath the options given; options
        not given keep the value in ``base`` (default: the defaults). With a server's
        ``limits``, a value over its cap is refused with the server's limit before the
        declared range is checked (the range a form shows is the server's). A refusal
        names its option (``ConfigError.option``).
        """
        if not isinstance(data, dict):
            raise ConfigError("parameters: expected an object of option names and values")
        unknown = sorted(str(k) for k in data if k not in cls.OPTIONS)
        if unknown:
            shown = ", ".join(u if len(u) <= 40 else u[:37] + "..." for u in unknown[:5])
            raise ConfigError(f"unknown parameter(s): {one_line(shown)}")
        data = cls.with_preset(data)  # the bundle's values are parsed as the others are
        values = {}
        for key, value in data.items():
            opt = cls.OPTIONS[key]
            with _blaming(key):
                if limits is not None and opt.cap in limits and value not in (None, ""):
                    cls._check_caps({key: opt.convert(value)}, limits)  # before the range
                values[key] = opt.parse(value)
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
        opt = Option(f.name, kind, f.default, help_text, **spec)
        if opt.web not in WEB_PLACES or not set(opt.modes) <= set(MODES):
            raise ValueError(f"option {f.name}: web must be one of {WEB_PLACES}, modes of {MODES}")
        out[f.name] = opt
    cls.OPTIONS = out
    _apply_presets_on_init(cls)
    return cls


def _apply_presets_on_init(cls: type[D]) -> None:
    """``cls(preset=NAME, ...)`` applies the preset's bundle beneath the keywords given,
    as :meth:`Declared.from_dict` and :meth:`Declared.replace` do (a class without
    presets is unchanged)."""
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **cls.with_preset(kwargs))

    cls.__init__ = __init__  # type: ignore[method-assign]
