"""What to look at: a channel (``conv5_1:12``), a neuron (``conv5_1:12@3,4``: row 3,
column 4 of that feature map), a class score (``class:283``, ``class:tabby``) or the
strongest channel of a layer on the image at hand (``auto``: conv5_1's; ``conv4_1:auto``),
which :func:`nst.explain.saliency.resolve` turns into a channel.

Parsing checks the syntax and the layer name; :func:`check` checks a target against a
network (channel in range, neuron inside the map at the working size, a classifier for
class targets). Every problem is one :class:`~nst.errors.ConfigError` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError, one_line
from ..layers import canonical, feature_size, min_side
from ..numbers import parse_int, quote
from . import classes

_CHANNEL = re.compile(r"^([A-Za-z0-9_]+):(\d+)(?:@(\d+),(\d+))?$")
#: the layer of ``--target auto``
AUTO_LAYER = "conv5_1"


@dataclass(frozen=True)
class Target:
    """``kind`` is ``channel``, ``neuron``, ``class`` or ``auto`` (the strongest channel of
    ``layer`` on an image, to be resolved); ``index`` the channel or class."""

    kind: str
    index: int
    layer: str | None = None
    row: int | None = None
    col: int | None = None

    @property
    def label(self) -> str:
        """How sheets and messages name it: ``conv5_1:12``, ``conv5_1:12@3,4``,
        ``class 281 (tabby)``."""
        if self.kind == "class":
            return f"class {self.index} ({classes.name(self.index)})"
        if self.kind == "auto":
            return f"{self.layer}:auto"
        at = f"@{self.row},{self.col}" if self.kind == "neuron" else ""
        return f"{self.layer}:{self.index}{at}"


def parse(text: str) -> Target:
    """A target from its text; one ConfigError line for any mistake."""
    t = text.strip()
    if t.lower() == "auto" or t.lower().endswith(":auto"):
        layer = t[: -len(":auto")] if ":" in t else AUTO_LAYER
        return Target("auto", -1, canonical(layer))
    if t.lower().startswith("class:"):
        rest = t.split(":", 1)[1].strip()
        if rest.isascii() and rest.isdigit():
            index = parse_int(rest, f"target {quote(t)}")
            if index >= classes.COUNT:
                raise ConfigError(f"target {t}: class {index} is out of range (0-999)")
            return Target("class", index)
        return Target("class", classes.lookup(rest))
    m = _CHANNEL.match(t)
    if not m:
        raise ConfigError(
            f"target '{one_line(t)}' is not LAYER:CHANNEL, LAYER:CHANNEL@ROW,COL or class:N "
            "(e.g. conv5_1:12, conv5_1:12@3,4, class:283, class:tabby)"
        )
    layer = canonical(m.group(1))
    what = f"target {quote(t)}"
    index = parse_int(m.group(2), what)
    if m.group(3) is None:
        return Target("channel", index, layer)
    return Target("neuron", index, layer, parse_int(m.group(3), what), parse_int(m.group(4), what))


def parse_range(text: str) -> list[Target]:
    """``conv4_1:0-15`` (or ``conv4_1:3,5,8``): several channels of one layer."""
    layer, sep, spec = text.strip().partition(":")
    if not sep or not spec:
        raise ConfigError(f"grid {quote(text)} is not LAYER:FIRST-LAST (e.g. conv4_1:0-15)")
    name = canonical(layer)
    out: list[int] = []
    asked = 0
    for part in spec.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not (lo.isascii() and lo.isdigit()) or (dash and not (hi.isascii() and hi.isdigit())):
            raise ConfigError(f"grid {quote(text)}: {quote(part)} is not N or N-M")
        what = f"grid {quote(text)}"
        first = parse_int(lo, what)
        last = parse_int(hi, what) if dash else first
        if last < first:
            raise ConfigError(f"grid {quote(text)}: {first}-{last} runs backwards")
        asked += last - first + 1
        if asked <= 256:  # a huge range is counted, never listed
            out.extend(range(first, last + 1))
    if asked > 256:
        raise ConfigError(f"grid {quote(text)}: at most 256 channels ({asked:,} asked)")
    return [Target("channel", c, name) for c in out]


def check(
    target: Target,
    channels: dict[str, int],
    classes: int,
    size: tuple[int, int] | None = None,
    on_image: bool = False,
) -> None:
    """Refuse a target this network cannot give at this working size (h, w); ``classes`` is
    the number of classes of its classifier (0: none). An ``auto`` target needs an image to
    be found on (``on_image``: saliency and attribution)."""
    if target.kind == "auto" and not on_image:
        raise ConfigError(
            f"target {target.label}: the strongest channel is found on an image, and this "
            "tool has none; give a channel, e.g. conv5_1:12"
        )
    if target.kind == "class":
        if not classes:
            raise ConfigError(
                f"target {target.label}: class scores need a classifier; pass --weights with a "
                "torchvision VGG19 or VGG16 state_dict that has classifier.* (e.g. "
                "vgg19-dcbb9e9d.pth); the built-in weights have only the convolutions"
            )
        if target.index >= classes:
            raise ConfigError(f"target {target.label}: the classifier has {classes} classes")
        return
    assert target.layer is not None
    if target.layer not in channels:
        raise ConfigError(f"target {target.label}: this network has no layer {target.layer}")
    n = channels[target.layer]
    if target.kind != "auto" and not 0 <= target.index < n:
        raise ConfigError(
            f"target {target.label}: channel {target.index} is out of range "
            f"({target.layer} has channels 0-{n - 1})"
        )
    if size is None:
        return
    need = min_side([target.layer])
    if min(size) < need:
        raise ConfigError(
            f"target {target.label}: at {size[1]}x{size[0]} px {target.layer} has no positions "
            f"(it needs at least {need} px on each side)"
        )
    if target.kind == "neuron":
        h, w = feature_size(target.layer, size)
        assert target.row is not None and target.col is not None
        if not (0 <= target.row < h and 0 <= target.col < w):
            raise ConfigError(
                f"target {target.label}: neuron ({target.row}, {target.col}) is outside the "
                f"{target.layer} map, which is {h}x{w} (rows x columns) at {size[1]}x{size[0]} px"
            )
