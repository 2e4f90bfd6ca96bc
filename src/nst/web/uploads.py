"""A job submission turned into a plan: parameters, uploads, built-ins, the start image.

Runs in a worker thread (never on the event loop): uploads are measured from their
headers first (the decoded pixels of one request are capped), decoded by the
project's loader, re-encoded as PNG into the job's folder, and the run is planned
once; the plan goes to the job runner. Every problem is an :class:`Refusal` with an
HTTP status and a one-line message that names no server path.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .. import builtins
from ..config import MAX_SIDE, Config
from ..errors import ConfigError, ImageError, ImageTooLarge, NstError, UnreadableImage, one_line
from ..imageio import fit_size, image_size, load_image, save_image, to_tensor, too_many_pixels
from ..numbers import loads
from ..planning import Plan, plan_stylize
from .settings import FILE_MODE, WebSettings


class Refusal(Exception):
    """A submission that cannot run: HTTP ``status`` and a one-line ``detail``."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = one_line(detail)
        self.field = field  # the option at fault, when one is


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str


@dataclass(frozen=True)
class Submission:
    """What a POST /api/jobs carried, read off the request."""

    params: str
    content: Upload | None
    content_builtin: str | None
    styles: tuple[Upload, ...]
    style_builtins: tuple[str, ...]
    mask: Upload | None
    init_from: Path | None  # an earlier job's result


def image_status(exc: ImageError) -> int:
    """The HTTP status of an image's refusal, by its kind."""
    if isinstance(exc, UnreadableImage):
        return 415
    if isinstance(exc, ImageTooLarge):
        return 413
    return 422


def parse_params(text: str) -> dict[str, Any]:
    try:
        values = loads(text, "params")
    except ConfigError as exc:
        raise Refusal(422, str(exc)) from None
    if not isinstance(values, dict):
        raise Refusal(422, "params: expected a JSON object")
    return values


def make_config(
    settings: WebSettings,
    params: dict[str, Any],
    extra: dict[str, Any],
    config_class: type[Config] = Config,
) -> Config:
    """The job's config: the page's parameters within this server's limits. What a browser
    may not set (server-only options, files in path options) and the caps come from the
    options' declarations; ``extra`` holds the values the server sets itself (the uploaded
    mask's and start image's places)."""
    try:
        config_class.refuse_from_browser(params)
        paths = config_class.path_options()
        given = {k: v for k, v in params.items() if not (k in paths and v in ("", None))}
        config = config_class.from_dict({**given, **extra}, limits=settings.limits())
        config.check_caps(settings.limits())
    except ConfigError as exc:
        raise Refusal(422, str(exc), exc.option) from None
    if config.style_longest > min(settings.max_size, MAX_SIDE):
        raise Refusal(
            422,
            f"style-scale: the style image would be {config.style_longest} px, over this "
            f"server's {settings.max_size} px",
            "style_size" if config.style_size is not None else "style_scale",
        )
    return config


class Preparer:
    """Writes a submission's inputs into a job folder and plans its run."""

    def __init__(self, settings: WebSettings, config_class: type[Config] = Config) -> None:
        self.settings = settings
        self.config_class = config_class

    def check_pixels(self, uploads: list[Upload]) -> None:
        """Refuse, before decoding any, uploads whose pixels together pass the cap."""
        total = 0
        for up in uploads:
            try:
                w, h = image_size(up.data, up.filename)
            except ImageError as exc:
                raise Refusal(image_status(exc), str(exc)) from None
            if w * h > self.settings.max_pixels:
                limit = self.settings.max_pixels
                raise Refusal(413, f"{up.filename}: {too_many_pixels(w, h, limit)}")
            total += w * h
        if total > self.settings.max_request_pixels:
            raise Refusal(
                413,
                f"the images of one job hold {total:,} pixels together, the limit is "
                f"{self.settings.max_request_pixels:,}",
            )

    def decode(self, up: Upload, target: Path, longest: int, labels: bool = False) -> None:
        """Decode an upload and keep it at most ``longest`` px on its longest side (twice
        what the job can use: the run's own resampling decides the pixels). A mask
        (``labels``) is reduced by nearest neighbour, so no colour blends into another;
        a 36-megapixel mask is then written and read back in a fraction of a second."""
        if not up.data:
            raise Refusal(422, f"{up.filename}: empty file (0 bytes)")
        try:
            img = load_image(up.data, name=up.filename, max_pixels=self.settings.max_pixels)
        except ImageError as exc:
            raise Refusal(image_status(exc), str(exc)) from None
        if max(img.size) > longest:
            w, h = fit_size(img.width, img.height, longest)
            img = img.resize((w, h), Image.Resampling.NEAREST if labels else Image.Resampling.BOX)
        save_image(to_tensor(img), target, mode=FILE_MODE)

    def builtin(self, name: str, target: Path) -> None:
        if not builtins.is_builtin(name):
            raise Refusal(422, f"unknown built-in image '{name}' (use builtin:NAME)")
        try:
            save_image(builtins.image(name), target, mode=FILE_MODE)
        except ImageError as exc:
            raise Refusal(422, str(exc)) from None

    def prepare(self, folder: Path, sub: Submission) -> tuple[Plan, list[Path]]:
        """Decode, write and plan; every message is stripped of server paths."""
        try:
            return self._prepare(folder, sub)
        except Refusal as exc:
            raise Refusal(exc.status, self.public(exc.detail, folder), exc.field) from None
        except ImageError as exc:
            raise Refusal(image_status(exc), self.public(str(exc), folder)) from None
        except ConfigError as exc:
            raise Refusal(422, self.public(str(exc), folder), exc.option) from None
        except NstError as exc:
            raise Refusal(422, self.public(str(exc), folder)) from None

    def public(self, message: str, folder: Path) -> str:
        """A message with the job folder and the data directory taken out."""
        for place in (folder, self.settings.data_dir):
            for form in {str(place), str(place.resolve())}:
                message = message.replace(form + os.sep, "").replace(form, "(data)")
        return message

    def _prepare(self, folder: Path, sub: Submission) -> tuple[Plan, list[Path]]:
        values = parse_params(sub.params)
        extra: dict[str, Any] = {}
        if sub.mask is not None:
            extra["mask"] = str(folder / "mask.png")
        if sub.init_from is not None:
            extra["init"] = str(folder / "init.png")
        config = make_config(self.settings, dict(values), extra, self.config_class)
        uploads = [u for u in (sub.content, *sub.styles, sub.mask) if u is not None]
        self.check_pixels(uploads)
        content_path = folder / "content.png"
        keep = 2 * config.size  # the most of an upload a job can use, with a margin
        if sub.content is not None:
            self.decode(sub.content, content_path, keep)
        else:
            self.builtin(str(sub.content_builtin), content_path)
        style_paths: list[Path] = []
        for up in sub.styles:
            style_paths.append(folder / f"style_{len(style_paths)}.png")
            self.decode(up, style_paths[-1], 2 * max(config.size, config.style_longest))
        for ref in sub.style_builtins:
            style_paths.append(folder / f"style_{len(style_paths)}.png")
            self.builtin(ref, style_paths[-1])
        if sub.mask is not None:
            self.decode(sub.mask, folder / "mask.png", keep, labels=True)
        if sub.init_from is not None:
            shutil.copyfile(sub.init_from, folder / "init.png")
            os.chmod(folder / "init.png", FILE_MODE)
        plan = plan_stylize(str(content_path), [str(p) for p in style_paths], config)
        return plan, style_paths
