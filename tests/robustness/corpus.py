"""Hostile input files, made at run time (nothing binary is committed).

Each maker returns the bytes of a file that a careless loader fails on in its own way:
damaged metadata (EXIF, ICC, text chunks), damaged headers, truncated data, images
too large or too small, files that are not images at all.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

from tests.conftest import picture


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def photo(w: int = 48, h: int = 36, seed: int = 0) -> Image.Image:
    return Image.fromarray(picture(w, h, seed))


def png(w: int = 48, h: int = 36, seed: int = 0) -> bytes:
    return _encode(photo(w, h, seed), "PNG")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with(chunks: list[bytes]) -> bytes:
    """A valid PNG with extra chunks inserted after IHDR."""
    data = png()
    head, rest = data[:33], data[33:]  # signature (8) + IHDR chunk (25)
    return head + b"".join(chunks) + rest


def png_ztxt_bomb() -> bytes:
    """A zTXt chunk that inflates past Pillow's MAX_TEXT_CHUNK (ValueError)."""
    return _png_with([_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * 2**24, 9))])


def png_iccp_bomb() -> bytes:
    """An iCCP profile that inflates past the limit."""
    return _png_with([_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(b"\x00" * 2**24, 9))])


def png_bad_iccp() -> bytes:
    """An iCCP chunk whose profile is not zlib data."""
    return _png_with([_chunk(b"iCCP", b"icc\x00\x00not zlib at all")])


def png_bad_exif() -> bytes:
    """An eXIf chunk of garbage."""
    return _png_with([_chunk(b"eXIf", b"MM\x00\x2a\xff\xff\xff\xff" + b"\x01" * 20)])


def png_truncated_ihdr() -> bytes:
    return png()[:20]


def png_truncated_data() -> bytes:
    data = png(64, 48)
    return data[: len(data) // 2]


def png_bomb_header() -> bytes:
    """A PNG header claiming 60000 x 60000 pixels."""
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")


def png_zero_size() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")


def png_bad_crc() -> bytes:
    data = bytearray(png())
    data[29] ^= 0xFF  # IHDR's CRC
    return bytes(data)


def _jpeg_exif(payload: bytes) -> bytes:
    """A JPEG whose APP1 segment carries ``payload`` after the Exif header."""
    data = _encode(photo(), "JPEG", quality=90)
    app1 = b"Exif\x00\x00" + payload
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    return data[:2] + segment + data[2:]


def jpeg_exif_bad_offset() -> bytes:
    """EXIF whose first IFD lies past the end (Pillow raises while transposing)."""
    return _jpeg_exif(b"MM\x00\x2a\x7f\xff\xff\xff")


def jpeg_exif_bad_orientation() -> bytes:
    """An Orientation tag of type ASCII with a huge count."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHII", 0x0112, 2, 0x7FFFFFFF, 8) + b"\x00" * 4
    return _jpeg_exif(b"MM\x00\x2a\x00\x00\x00\x08" + ifd)


def jpeg_exif_loop() -> bytes:
    """An IFD whose next-IFD pointer points at itself."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHII", 0x0112, 3, 1, 6 << 16) + struct.pack(">I", 8)
    return _jpeg_exif(b"MM\x00\x2a\x00\x00\x00\x08" + ifd)


def jpeg_exif_truncated() -> bytes:
    return _jpeg_exif(b"II*\x00\x08\x00\x00\x00\x05\x00")


def jpeg_truncated() -> bytes:
    data = _encode(photo(64, 48), "JPEG")
    return data[: len(data) // 3]


def jpeg_cmyk_bad_icc() -> bytes:
    img = photo().convert("CMYK")
    return _encode(img, "JPEG", icc_profile=b"not an icc profile" * 4)


def webp_bad_exif() -> bytes:
    return _encode(photo(), "WEBP", exif=b"Exif\x00\x00MM\x00\x2a\x7f\xff\xff\xff")


def webp_exif_not_tiff() -> bytes:
    """EXIF whose TIFF header is wrong: Pillow raises SyntaxError while transposing."""
    return _encode(photo(), "WEBP", exif=b"Exif\x00\x00XX\x00\x2a\x00\x00\x00\x08\x00\x00")


def webp_exif_short() -> bytes:
    """EXIF cut inside its header: Pillow raises struct.error while transposing."""
    return _encode(photo(), "WEBP", exif=b"Exif\x00\x00MM\x00\x2a\x00\x00")


def webp_truncated() -> bytes:
    data = _encode(photo(64, 48), "WEBP")
    return data[: len(data) // 2]


def gif_truncated() -> bytes:
    data = _encode(photo(64, 48).convert("P"), "GIF")
    return data[: len(data) // 2]


def bmp_bad_header() -> bytes:
    data = bytearray(_encode(photo(), "BMP"))
    data[18:26] = struct.pack("<ii", 1 << 30, -(1 << 30))  # width, height
    return bytes(data)


def tiff_samples_bomb() -> bytes:
    """A TIFF whose SamplesPerPixel is absurd (Pillow logs an error and raises)."""
    data = bytearray(_encode(photo(), "TIFF"))
    ifd = struct.unpack("<I", data[4:8])[0]
    n = struct.unpack("<H", data[ifd : ifd + 2])[0]
    for i in range(n):
        at = ifd + 2 + 12 * i
        if struct.unpack("<H", data[at : at + 2])[0] == 277:  # SamplesPerPixel
            data[at + 2 : at + 12] = struct.pack("<HII", 4, 1, 61699)
    return bytes(data)


def tiff_truncated() -> bytes:
    data = _encode(photo(64, 48), "TIFF")
    return data[: len(data) // 2]


def text_file() -> bytes:
    return b"this is not a picture\n"


def html_file() -> bytes:
    return b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"


def pdf_file() -> bytes:
    return b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def svg_file() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


def ico_file() -> bytes:
    return _encode(photo(32, 32), "ICO")


def strip_1x5000() -> bytes:
    return _encode(Image.fromarray(np.full((1, 5000, 3), 128, np.uint8)), "PNG")


def wide_4_to_1() -> bytes:
    return png(160, 40)


def tiny_2x2() -> bytes:
    return png(2, 2)


#: every hostile file, by name (the CLI and the web tests run each)
BAD_FILES: dict[str, Callable[[], bytes]] = {
    name: fn
    for name, fn in globals().items()
    if callable(fn) and fn.__module__ == __name__ and not name.startswith("_")
    and name not in ("photo", "png", "picture")
}  # fmt: skip
