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
import errno
import glob
import io
import logging
import os
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from . import process
from .errors import ConfigError, ImageError, ImageTooLarge, UnreadableImage, one_line

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
# Pillow logs damaged metadata at ERROR level; without a handler Python's last resort
# would print it on stderr, beside the one line nst says about the file
logging.getLogger("PIL").addHandler(logging.NullHandler())


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

    ``name`` is what error messages call the source (default: the path). Every failure,
    whatever the decoder raises, is one :class:`ImageError`; Pillow's warnings about
    damaged metadata stay quiet.
    """
    limit = process.current().max_pixels if max_pixels is None else max_pixels
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<upload>")
    if isinstance(source, (str, os.PathLike)):
        fp: BinaryIO = open_regular(source, label)
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


def file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be read as an input file, or None if it can."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of symbolic links"
        if exc.errno == errno.ENAMETOOLONG:
            return "the file name is too long"
        return f"cannot read ({exc.strerror or exc})"
    except ValueError:  # a NUL in the name
        return "not a valid file name"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not an image file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a pipe, device or socket)"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    return None


def open_regular(path: str | os.PathLike[str], label: str) -> BinaryIO:
    """Open a regular, non-empty file for reading, or raise a one-line ImageError."""
    problem = file_problem(path)
    if problem:
        raise ImageError(label, problem)
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ImageError(label, f"cannot open ({exc.strerror or exc})") from None


def _decode(fp: BinaryIO, label: str, limit: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Corrupt EXIF data" and the like: the image decides
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _open(fp, label, limit)
        except ImageError:
            raise
        except UnidentifiedImageError:
            raise UnreadableImage(label, "not an image file, or a format nst cannot read") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            size = _declared_size(fp)
            if size is None:
                raise ImageTooLarge(label, "too many pixels (decompression bomb guard)") from None
            raise ImageTooLarge(label, too_many_pixels(*size, limit)) from None
        except MemoryError:
            raise ImageTooLarge(label, "not enough memory to decode the image") from None
        except Exception as exc:  # Pillow raises many kinds for damaged files
            reason = one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            reason = reason[:120] or type(exc).__name__
            raise ImageError(label, f"truncated or corrupt image data ({reason})") from None


def _open(fp: BinaryIO, label: str, limit: int) -> Image.Image:
    img = Image.open(fp)
    if img.format not in ALLOWED_FORMATS:
        raise UnreadableImage(
            label, f"unsupported image format {img.format} (use PNG, JPEG, WebP, BMP, TIFF or GIF)"
        )
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(label, f"image has no pixels ({w}x{h})")
    if w * h > limit:
        raise ImageTooLarge(label, too_many_pixels(w, h, limit))
    img.load()
    return to_rgb(img)


def too_many_pixels(width: int, height: int, limit: int) -> str:
    """The one reason for an image over a pixel limit."""
    return f"too many pixels ({width}×{height} = {width * height:,} > {limit:,})"


def image_size(data: bytes, label: str) -> tuple[int, int]:
    """(width, height) from an image's header, without decoding its pixels."""
    return _header(io.BytesIO(data), label)


def probe(path: str | os.PathLike[str], label: str | None = None) -> tuple[int, int]:
    """(width, height) of an image file from its header: a file that is not an image nst
    reads (text, a damaged header, an unsupported format) is refused in one ImageError
    line before any work, in milliseconds."""
    name = label or str(path)
    with open_regular(path, name) as fp:
        return _header(fp, name)


def _declared_size(fp: BinaryIO) -> tuple[int, int] | None:
    """The size an image's header declares, read by its format's Pillow plugin without
    ``Image.open``'s decompression-bomb check (nothing is decoded), or None."""
    for fmt in ALLOWED_FORMATS:
        if fmt not in Image.OPEN:
            continue
        factory, accept = Image.OPEN[fmt]
        try:
            fp.seek(0)
            if accept is not None and not accept(fp.read(16)):
                continue
            fp.seek(0)
            with factory(fp, "") as img:
                return img.size
        except Exception:  # a damaged header: try the next format
            continue
    return None


def _header(fp: BinaryIO, label: str) -> tuple[int, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(fp) as img:
                if img.format not in ALLOWED_FORMATS:
                    raise UnreadableImage(label, f"unsupported image format {img.format} "
                                          "(use PNG, JPEG, WebP, BMP, TIFF or GIF)")  # fmt: skip
                return img.size
        except ImageError:
            raise
        except Image.DecompressionBombError:  # past Pillow's own cap: the size, undecoded
            size = _declared_size(fp)
            if size is None:
                raise ImageTooLarge(label, "too many pixels (decompression bomb guard)") from None
            return size
        except UnidentifiedImageError:
            raise UnreadableImage(label, "not an image file, or a format nst cannot read") from None
        except Exception as exc:
            raise ImageError(
                label, f"truncated or corrupt image data ({type(exc).__name__})"
            ) from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Upright 8-bit RGB: EXIF orientation, 16-bit, CMYK, palette and alpha handled."""
    # damaged EXIF ("Corrupt EXIF data" warnings; SyntaxError or struct.error while
    # transposing): the pixels are fine, their orientation is unknown; use them as stored
    with warnings.catch_warnings(), contextlib.suppress(Exception):
        warnings.simplefilter("ignore")
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
    """Resize a (C, H, W) image in [0, 1] to (h, w) with Lanczos, in float (PIL's 32-bit
    float mode, a channel at a time: 16-bit inputs keep their precision); no-op at the
    same size. The filter's overshoot is clipped to [0, 1]."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    h, w = size
    planes = t.detach().float().cpu().numpy()
    out = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(p)).resize((w, h), Image.Resampling.LANCZOS)
        )
        for p in planes
    ]
    return torch.from_numpy(np.stack(out)).clamp_(0.0, 1.0)


#: the extensions a folder's images are found by
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def image_files(specs: Iterable[str], what: str, recursive: bool = False) -> list[str]:
    """Files from a list of files, folders (their images, sorted; with ``recursive`` those
    of their subfolders too) and globs; built-in names pass through. A folder without
    images or a glob matching nothing is refused in one line naming ``what``."""
    from . import builtins

    out: list[str] = []
    for spec in specs:
        if builtins.is_builtin(spec):
            out.append(spec)
            continue
        p = Path(spec)
        if p.is_dir():
            walk = p.rglob("*") if recursive else p.iterdir()
            found = sorted(
                str(f) for f in walk if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
            )
            if not found:
                raise ConfigError(f"{what}: {one_line(spec)}: no images in this folder")
            out.extend(found)
        elif any(ch in spec for ch in "*?["):
            found = sorted(f for f in glob.glob(spec, recursive=True) if Path(f).is_file())
            if not found:
                raise ConfigError(f"{what}: {one_line(spec)}: the pattern matches no file")
            out.extend(found)
        else:
            out.append(spec)
    return out


# -- saving ----------------------------------------------------------------------------------
def output_format(path: str | os.PathLike[str]) -> str:
    """The PIL format for an output path, from its extension."""
    name = Path(path).name
    ext = Path(path).suffix.lower()
    if not ext and name.lower() in SAVE_FORMATS:  # "-o.png" reads as "-o .png"
        raise ImageError(
            str(path), f"the name is only an extension; give a name such as result{name} "
            f"(-o{name} reads as -o {name})"
        )  # fmt: skip
    if ext not in SAVE_FORMATS:
        known = ", ".join(sorted(SAVE_FORMATS))
        raise ImageError(str(path), f"unknown output extension '{ext or '(none)'}' (use {known})")
    return SAVE_FORMATS[ext]


def save_image(
    image: torch.Tensor | Image.Image, path: str | os.PathLike[str], mode: int = 0o644
) -> Path:
    """Write atomically (temporary file + rename) with permissions ``mode``; the format
    follows the extension."""
    target = Path(path)
    fmt = output_format(target)
    pil = image if isinstance(image, Image.Image) else to_pil(image)
    if fmt == "JPEG" and pil.mode != "RGB":
        pil = pil.convert("RGB")
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    return atomic_write(target, lambda f: pil.save(f, format=fmt, **options), mode)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True if two paths name the same file (existing or not)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return pa.resolve() == pb.resolve()


def save_array(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write a NumPy array as ``.npy`` atomically (temporary file + rename)."""
    return atomic_write(Path(path), lambda f: np.save(f, array))


def atomic_write(target: Path, write: Callable[[BinaryIO], object], mode: int = 0o644) -> Path:
    """Write ``target`` through ``write(file)`` into a temporary file in the same folder,
    synced, then renamed over it: readers see the old file or the whole new one. Any
    OSError becomes one :class:`ImageError` naming ``target``; nothing is left behind."""
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise ImageError(str(target), f"folder {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
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
