"""Image files in and out, and conversion to and from tensors.

Loading handles what real files bring: EXIF orientation, grayscale, palette,
alpha (composited on white), 16-bit, CMYK (through its ICC profile when it has
one), a pixel limit against decompression bombs, and every failure as one
:class:`ImageError` line naming the file and the reason. Saving is atomic: the
image is written to a temporary file beside the target and renamed over it.
Used by the front ends and the API layer only; the core works on tensors.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import ImageError

#: decoded pixels allowed per image (width * height); NST_MAX_PIXELS overrides
MAX_PIXELS = int(os.environ.get("NST_MAX_PIXELS", 80_000_000))
#: formats accepted on input
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "MPO")
#: output formats by file extension
SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

_SRGB = None


def _srgb_profile() -> ImageCms.ImageCmsProfile:
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB


def load_image(
    source: str | os.PathLike[str] | bytes | BinaryIO,
    *,
    name: str | None = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Open an image file (or bytes) as an 8-bit RGB PIL image, upright.

    ``name`` is what error messages call the source (default: the path).
    """
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<upload>")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError(label, "no such file")
        if path.is_dir():
            raise ImageError(label, "is a directory, not an image file")
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ImageError(label, f"cannot read ({exc.strerror})") from None
        if size == 0:
            raise ImageError(label, "empty file (0 bytes)")
        try:
            fp: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ImageError(label, f"cannot open ({exc.strerror})") from None
    elif isinstance(source, bytes):
        if not source:
            raise ImageError(label, "empty file (0 bytes)")
        fp = io.BytesIO(source)
    else:
        fp = source
    try:
        return _decode(fp, label, limit)
    finally:
        fp.close()


def _decode(fp: BinaryIO, label: str, limit: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp)
        except UnidentifiedImageError:
            raise ImageError(label, "not an image file, or a format nst cannot read") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(label, "image is too large (decompression bomb guard)") from None
        except OSError as exc:
            raise ImageError(label, f"cannot read image ({exc})") from None
        if img.format not in ALLOWED_FORMATS:
            raise ImageError(
                label,
                f"unsupported image format {img.format} (use PNG, JPEG, WebP, BMP, TIFF or GIF)",
            )
        w, h = img.size
        if w < 1 or h < 1:
            raise ImageError(label, f"image has no pixels ({w}x{h})")
        if w * h > limit:
            raise ImageError(
                label, f"image is too large: {w}x{h} = {w * h:,} pixels, the limit is {limit:,}"
            )
        try:
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(label, "image is too large (decompression bomb guard)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            raise ImageError(label, f"truncated or corrupt image data ({reason})") from None
    try:
        return to_rgb(img)
    except (OSError, ValueError) as exc:
        raise ImageError(label, f"cannot convert image to RGB ({exc})") from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Upright 8-bit RGB: EXIF orientation, 16-bit, CMYK, palette and alpha handled."""
    img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        if mode == "F" and arr.max() <= 1.0:
            top = 1.0
        arr8 = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "CMYK":
        profile = img.info.get("icc_profile")
        if profile:
            try:
                src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
                out = ImageCms.profileToProfile(img, src, _srgb_profile(), outputMode="RGB")
                if out is not None:
                    return out
            except (ImageCms.PyCMSError, OSError):
                pass  # a broken profile falls back to the plain conversion
        return img.convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    if mode != "RGB":
        return img.convert("RGB")
    return img


# -- tensors ---------------------------------------------------------------------------------
def to_tensor(img: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
    """(3, H, W) float32 RGB in [0, 1] from a PIL image, an HxWx3 array or a tensor."""
    if isinstance(img, torch.Tensor):
        t = img.detach().float().cpu()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 3 or t.shape[0] != 3:
            raise ValueError(f"expected a (3, H, W) tensor, got shape {tuple(img.shape)}")
        return t.clamp(0, 1)
    if isinstance(img, Image.Image):
        arr = np.asarray(to_rgb(img), dtype=np.uint8)
    else:
        arr = np.asarray(img)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"expected an HxWx3 array, got shape {arr.shape}")
        arr = arr[:, :, :3]
        if arr.dtype != np.uint8:
            arr = np.clip(arr.astype(np.float64) * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255)
            arr = arr.round().astype(np.uint8)
    return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float().div_(255.0)


def to_pil(t: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB PIL image."""
    if t.dim() == 4:
        t = t[0]
    arr = t.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def fit_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """(w, h) scaled so that the longest side is ``longest`` (aspect kept)."""
    k = longest / max(width, height)
    return max(1, round(width * k)), max(1, round(height * k))


def resize_longest(t: torch.Tensor, longest: int) -> torch.Tensor:
    """Resize a (3, H, W) image so its longest side is ``longest``; unchanged if it is."""
    _, h, w = t.shape
    nw, nh = fit_size(w, h, longest)
    return resize_to(t, (nh, nw))


def resize_to(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a (3, H, W) image to (h, w) with Lanczos (PIL); no-op at the same size."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    h, w = size
    pil = to_pil(t).resize((w, h), Image.Resampling.LANCZOS)
    return to_tensor(pil)


# -- saving ----------------------------------------------------------------------------------
def output_format(path: str | os.PathLike[str]) -> str:
    """The PIL format for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    if ext not in SAVE_FORMATS:
        known = ", ".join(sorted(SAVE_FORMATS))
        raise ImageError(str(path), f"unknown output extension '{ext or '(none)'}' (use {known})")
    return SAVE_FORMATS[ext]


def save_image(image: torch.Tensor | Image.Image, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temporary file + rename); the format follows the extension."""
    target = Path(path)
    fmt = output_format(target)
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    if fmt == "JPEG" and pil.mode != "RGB":
        pil = pil.convert("RGB")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise ImageError(str(target), f"folder {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
            pil.save(f, format=fmt, **options)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ImageError(str(target), f"cannot write ({exc.strerror or exc})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True if two paths name the same file (existing or not)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()
