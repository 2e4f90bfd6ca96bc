"""Mutation fuzz of the image loader: whatever the bytes, only ImageError escapes, and
nothing else is printed or warned."""

import io
import random
import time
import warnings

from PIL import Image

from nst.errors import ImageError
from nst.imageio import load_image
from tests.robustness import corpus

CASES = 6000
SEED = 20261123


def seeds() -> list[bytes]:
    """Real images of every accepted format, with metadata, plus the hostile corpus."""
    img = corpus.photo(40, 30, 1)
    out = []
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    exif[0x010F] = "camera"
    for fmt, kw in [
        ("PNG", {"exif": exif.tobytes()}),
        ("JPEG", {"exif": exif.tobytes(), "icc_profile": b"\x00" * 128}),
        ("WEBP", {"exif": exif.tobytes()}),
        ("BMP", {}),
        ("TIFF", {}),
        ("GIF", {}),
    ]:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        out.append(buf.getvalue())
    out += [make() for make in corpus.BAD_FILES.values()]
    return [s for s in out if len(s) < 200_000]


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        # most damage near the start, where headers and metadata live
        pos = min(int(rng.expovariate(1 / 200)), len(b) - 1) if b else 0
        op = rng.random()
        if op < 0.5 and b:
            b[pos] = rng.randrange(256)
        elif op < 0.65:
            del b[pos : pos + rng.randint(1, 32)]
        elif op < 0.8:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op < 0.9 and len(b) > 8:
            at = rng.randrange(len(b) - 4)  # a length or offset field set to an extreme
            b[at : at + 4] = rng.choice(
                [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"]
            )
        else:
            b = b[: max(1, pos)]
    return bytes(b) or b"\x00"


def test_only_image_errors_escape_the_loader(capfd):
    rng = random.Random(SEED)
    pool = seeds()
    start = time.perf_counter()
    escaped: dict[str, str] = {}
    kinds = {"ok": 0, "refused": 0}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(CASES):
            data = mutate(rng.choice(pool), rng)
            try:
                load_image(data, name=f"case{i}", max_pixels=4_000_000)
                kinds["ok"] += 1
            except ImageError as exc:
                assert "\n" not in str(exc)
                kinds["refused"] += 1
            except BaseException as exc:
                escaped.setdefault(type(exc).__name__, f"case {i}: {exc}")
    took = time.perf_counter() - start
    assert not escaped, escaped
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr().err == ""
    assert kinds["refused"] > CASES // 4 and kinds["ok"] > 0  # the mutations did damage
    print(f"{CASES} cases in {took:.1f} s")  # speed is the benchmarks' business
