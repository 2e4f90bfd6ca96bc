"""Typed exceptions of the library.

Only front ends (the CLI, the web app) turn these into exit codes, HTTP errors
or log lines. Every message is one line that a user can act on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class NstError(Exception):
    """Base class of every error nst raises on purpose."""

    exit_code = 1


class ConfigError(NstError, ValueError):
    """A parameter is out of range, unknown or inconsistent; ``option`` names the option
    when one is at fault (a form marks that field)."""

    exit_code = 2

    def __init__(self, *args: object, option: str | None = None) -> None:
        super().__init__(*args)
        self.option = option


class TermError(NstError, ValueError):
    """A loss term that cannot be part of an objective (its name, module, layer or value)."""


class ImageError(NstError):
    """An input image cannot be used; the message names the file and the reason."""

    exit_code = 2

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{one_line(source)}: {reason}")
        self.source = source
        self.reason = reason


class UnreadableImage(ImageError):
    """Not an image, or in a format nst does not read (a server answers 415)."""


class ImageTooLarge(ImageError):
    """More pixels than allowed, or than memory can decode (a server answers 413)."""


class WeightsError(NstError):
    """The VGG19 weights are missing or not in a format nst understands."""

    exit_code = 2


class ResourceError(NstError):
    """The machine ran out of memory for a run; the message says what to lower."""


class TooLarge(ResourceError):
    """Refused before any work: the run would not fit the memory limit even in tiles (a
    refusal of the input, exit code 2); the message says what the floor is made of.
    ``need`` is what the stage needs at the least, in words (``about 0.8 GB even in tiles of
    64 px (the floor, ...)``)."""

    exit_code = 2

    def __init__(self, message: str, need: str = "") -> None:
        super().__init__(message)
        self.need = need


class RunStopped(NstError):
    """A run ended before its last iteration; ``image`` holds the last good iterate.

    ``image`` is a (3, H, W) float tensor in [0, 1] on the CPU, ready to save.
    """

    def __init__(self, message: str, image: torch.Tensor, iteration: int) -> None:
        super().__init__(message)
        self.image = image
        self.iteration = iteration


class Diverged(RunStopped):
    """The loss became NaN or infinite; ``image`` is the last iterate with a finite loss."""

    exit_code = 3


class Interrupted(RunStopped):
    """The run was interrupted (Ctrl-C); ``image`` is the last iterate."""

    exit_code = 130


class WorkersLost(NstError):
    """No worker is left to compute a run's tiles (``nst.spread``): the run stops where it
    was, as an interruption does, so its checkpoint continues it."""


class NstWarning(UserWarning):
    """A setting that will not give what it seems to promise (e.g. too few iterations to
    paint from noise); the message says what to change."""


def one_line(text: str) -> str:
    """``text`` with newlines and other control characters escaped, so a message naming a
    hostile file name stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
