"""The registry of figures: each is a builder that plans one sheet from the roles."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..errors import ConfigError
from ..numbers import parse_float
from .sheets import Sheet

#: the paper's styles: file name in the paper's image folder, alpha/beta, title
PAPER_STYLES: dict[str, tuple[str, float, str]] = {
    "shipwreck": ("shipwreck.jpg", 1e-3, "The Shipwreck of the Minotaur"),
    "starry_night": ("starry_night.jpg", 8e-4, "The Starry Night"),
    "the_scream": ("the_scream.jpg", 5e-3, "Der Schrei"),
    "seated-nude": ("seated-nude.jpg", 5e-4, "Femme nue assise"),
}
ROLE_FILES = {
    "content": "tubingen.jpg",
    "photo_content": "golden_gate.jpg",
    "photo_style": "hoovertowernight.jpg",
}
DEFAULT_RATIO = 1e-3


@dataclass
class Roles:
    """Which image plays which part; paths or ``builtin:`` names."""

    content: str | None = None
    styles: dict[str, tuple[str, float]] = field(default_factory=dict)  # name: (path, ratio)
    photo_content: str | None = None
    photo_style: str | None = None

    @classmethod
    def from_dir(
        cls,
        folder: str | os.PathLike[str] | None,
        content: str | None = None,
        styles: Sequence[str] = (),
        photo_content: str | None = None,
        photo_style: str | None = None,
    ) -> Roles:
        """Defaults from the paper's file names (tubingen.jpg, starry_night.jpg, ...),
        then overrides. ``styles`` entries are ``NAME=PATH`` (alpha/beta: the paper's for
        its styles, else 1e-3) or ``NAME=PATH@RATIO``."""
        roles = cls()
        base = Path(folder) if folder else None

        def found(name: str) -> str | None:
            if base is None:
                return None
            p = base / name
            return str(p) if p.is_file() else None

        roles.content = content or found(ROLE_FILES["content"])
        roles.photo_content = photo_content or found(ROLE_FILES["photo_content"])
        roles.photo_style = photo_style or found(ROLE_FILES["photo_style"])
        for name, (file, ratio, _) in PAPER_STYLES.items():
            path = found(file)
            if path:
                roles.styles[name] = (path, ratio)
        for spec in styles:
            name, sep, rest = spec.partition("=")
            if not sep or not rest:
                raise ConfigError(f"style: '{spec}' is not NAME=PATH (or NAME=PATH@RATIO)")
            path, _, ratio_text = rest.partition("@")
            default = PAPER_STYLES.get(name, ("", DEFAULT_RATIO, ""))[1]
            ratio = parse_float(ratio_text, f"style: ratio of {name}") if ratio_text else default
            if not 0 < ratio < float("inf"):
                raise ConfigError(f"style: ratio of {name} must be a number > 0")
            roles.styles[name] = (path, ratio)
        return roles

    def main_style(self) -> tuple[str, str, float] | None:
        """The style the single-style figures use: Starry Night if present, else the first."""
        if not self.styles:
            return None
        name = "starry_night" if "starry_night" in self.styles else next(iter(self.styles))
        path, ratio = self.styles[name]
        return name, path, ratio

    # -- for builders that declared what they need (present, so typed as present) ------------
    def photo(self) -> str:
        assert self.content is not None, "declare needs=('content',)"
        return self.content

    def style(self) -> tuple[str, str, float]:
        main = self.main_style()
        assert main is not None, "declare needs=('style',)"
        return main

    def photo_pair(self) -> tuple[str, str]:
        assert self.photo_content and self.photo_style, "declare needs=('photo_content', ...)"
        return self.photo_content, self.photo_style

    def present(self, role: str) -> object:
        """What ``needs`` names: content, style (the main one), styles, photo_content,
        photo_style."""
        if role == "style":
            return self.main_style()
        return getattr(self, role)


@dataclass(frozen=True)
class Context:
    """What every builder gets besides the roles."""

    base: Config  # size, iterations, seed, precision, ... of every run
    texture_size: tuple[int, int]  # (h, w) of synthesized textures (the sheet's cell)

    @property
    def seeded(self) -> Config:
        """The base with its seed fixed (0 when none was given): sheets repeat exactly."""
        return self.base.replace(seed=self.base.seed if self.base.seed is not None else 0)


#: a builder returns its sheet, or the message saying why it is skipped
Builder = Callable[[Roles, Context], "Sheet | str"]


@dataclass(frozen=True)
class Figure:
    name: str
    summary: str
    build: Builder


FIGURES: dict[str, Figure] = {}


def figure(name: str, summary: str, needs: tuple[str, ...] = ()) -> Callable[[Builder], Builder]:
    """Register a builder under ``name`` (``fig3``: the paper's Figure 3). ``needs`` names
    the images it needs (see :meth:`Roles.present`): without one of them the figure is
    skipped with a message, and the builder is not called."""

    def register(build: Builder) -> Builder:
        def checked(roles: Roles, ctx: Context) -> Sheet | str:
            given = {role.removesuffix("s"): roles.present(role) for role in needs}
            skip = missing(name, **given)
            return skip if skip else build(roles, ctx)

        FIGURES[name] = Figure(name, summary, checked)
        return build

    return register


def missing(fig: str, **parts: object) -> str | None:
    """The skip message when any of ``parts`` is missing, else None."""
    absent = [k.replace("_", " ") for k, v in parts.items() if not v]
    return f"{fig}: skipped, no {' and no '.join(absent)} image" if absent else None
