"""Built-in images: photos bundled with scikit-image and paintings generated here.

Anywhere an image is accepted, ``builtin:NAME`` names one of these; this module is
the one place that reads such names. Each built-in says whether it is a photo
(offered as content) or a painting (offered as a style).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ImageError

if TYPE_CHECKING:  # imported when an image is made, so that --help stays instant
    from PIL import Image

PREFIX = "builtin:"


@dataclass(frozen=True)
class Builtin:
    name: str
    kind: str  # "photo" or "painting"
    title: str
    make: Callable[[], Image.Image]

    @property
    def ref(self) -> str:
        """How it is named in options and requests: ``builtin:NAME``."""
        return PREFIX + self.name


def _photo(name: str) -> Callable[[], Image.Image]:
    def make() -> Image.Image:
        import numpy as np
        from PIL import Image
        from skimage import data

        return Image.fromarray(np.asarray(getattr(data, name)())[:, :, :3])

    return make


def _painting(name: str) -> Callable[[], Image.Image]:
    def make() -> Image.Image:
        from . import paintings

        made: Image.Image = getattr(paintings, name)()
        return made

    return make


_TITLES = {
    "chelsea": ("photo", "Chelsea the cat (scikit-image)"),
    "astronaut": ("photo", "Astronaut Eileen Collins (scikit-image)"),
    "coffee": ("photo", "A cup of coffee (scikit-image)"),
    "rocket": ("photo", "A rocket launch (scikit-image)"),
    "swirls": ("painting", "Swirls: a night sky of brush strokes (generated)"),
    "mosaic": ("painting", "Mosaic: stained glass (generated)"),
}
BUILTINS: dict[str, Builtin] = {
    name: Builtin(name, kind, title, _photo(name) if kind == "photo" else _painting(name))
    for name, (kind, title) in _TITLES.items()
}
PHOTOS = tuple(n for n, b in BUILTINS.items() if b.kind == "photo")
PAINTINGS = tuple(n for n, b in BUILTINS.items() if b.kind == "painting")
#: what ``nst demo`` paints
DEMO_CONTENT = PREFIX + "chelsea"
DEMO_STYLE = PREFIX + "swirls"


def is_builtin(name: object) -> bool:
    """True for a ``builtin:`` name (whether or not such a built-in exists)."""
    return isinstance(name, str) and name.startswith(PREFIX)


def lookup(name: str) -> Builtin:
    """The built-in for ``builtin:NAME`` (or a bare ``NAME``); ImageError if unknown."""
    bare = name[len(PREFIX) :] if is_builtin(name) else name
    if bare not in BUILTINS:
        known = ", ".join(b.ref for b in BUILTINS.values())
        raise ImageError(PREFIX + bare, f"no such built-in image (known: {known})")
    return BUILTINS[bare]


@functools.lru_cache(maxsize=8)
def image(name: str) -> Image.Image:
    """A built-in image (``builtin:NAME`` or ``NAME``) as RGB."""
    return lookup(name).make().convert("RGB")


def stem(name: str) -> str:
    """A file-name stem for an input: the built-in's name, or the path's stem."""
    from pathlib import Path

    return lookup(name).name if is_builtin(name) else Path(name).stem
