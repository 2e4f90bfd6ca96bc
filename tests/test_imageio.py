"""Real-world image files in, atomic files out, one-line errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from nst.errors import ImageError
from nst.imageio import (
    load_image,
    resize_longest,
    resize_to,
    same_file,
    save_image,
    to_pil,
    to_tensor,
)
from tests.conftest import picture


def _message(path, **kw):
    with pytest.raises(ImageError) as exc:
        load_image(path, **kw)
    return str(exc.value)


def test_bad_inputs_get_one_line_naming_file_and_reason(tmp_path):
    assert _message(tmp_path / "missing.jpg") == f"{tmp_path / 'missing.jpg'}: no such file"
    assert _message(tmp_path) == f"{tmp_path}: is a directory, not an image file"
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert _message(empty) == f"{empty}: empty file (0 bytes)"
    text = tmp_path / "notes.png"
    text.write_text("hello, I am not a picture")
    assert _message(text) == f"{text}: not an image file, or a format nst cannot read"


def test_truncated_and_oversized_images(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(picture(64, 48)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert _message(cut).startswith(f"{cut}: truncated or corrupt image data")
    big = _message(good, max_pixels=1000)
    assert big == f"{good}: too many pixels (64×48 = 3,072 > 1,000)"


def test_unsupported_format_is_named(tmp_path):
    ppm = tmp_path / "img.ppm"
    Image.fromarray(picture(8, 8)).save(ppm)
    assert _message(ppm) == (
        f"{ppm}: unsupported image format PPM (use PNG, JPEG, WebP, BMP, TIFF or GIF)"
    )


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = (255, 0, 0)  # red stripe on the left of a landscape image
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was rotated: display rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=100)
    img = load_image(path)
    assert img.size == (20, 40)  # portrait now
    top = np.asarray(img)[:8].reshape(-1, 3).mean(axis=0)
    assert top[0] > 200 and top[1] < 60  # the red stripe is on top after rotation


def test_gray_palette_alpha_sixteen_bit_and_cmyk_become_rgb(tmp_path):
    gray = tmp_path / "gray.png"
    Image.new("L", (4, 4), 100).save(gray)
    assert load_image(gray).getpixel((0, 0)) == (100, 100, 100)

    rgba = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    rgba.putpixel((0, 0), (10, 20, 30, 255))
    p = tmp_path / "alpha.png"
    rgba.save(p)
    img = load_image(p)
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (10, 20, 30) and img.getpixel((1, 1)) == (255, 255, 255)

    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    pal.putpixel((1, 1), 1)
    pp = tmp_path / "palette.png"
    pal.save(pp, transparency=0)
    img = load_image(pp)
    assert img.getpixel((0, 0)) == (255, 255, 255) and img.getpixel((1, 1)) == (0, 255, 0)

    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 39321, np.uint16)).save(deep)  # 0.6 of full scale
    assert Image.open(deep).mode.startswith("I")
    assert load_image(deep).getpixel((0, 0)) == (153, 153, 153)

    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(cmyk, quality=100)
    r, g, b = load_image(cmyk).getpixel((4, 4))
    assert r > 230 and g < 30 and b < 30


def test_tensor_conversions_round_trip():
    arr = picture(10, 6)
    t = to_tensor(arr)
    assert t.shape == (3, 6, 10) and t.dtype == torch.float32 and float(t.min()) >= 0
    assert np.array_equal(np.asarray(to_pil(t)), arr)
    assert torch.equal(to_tensor(Image.fromarray(arr)), t)


def test_resizing_keeps_aspect_and_skips_images_already_at_size():
    t = to_tensor(picture(40, 30))
    assert resize_longest(t, 20).shape == (3, 15, 20)
    assert resize_longest(t, 40) is t
    assert resize_to(t, (30, 40)) is t


def test_save_is_atomic_and_format_follows_extension(tmp_path):
    t = to_tensor(picture(12, 8))
    out = tmp_path / "out.jpg"
    out.write_bytes(b"old")
    save_image(t, out)
    assert Image.open(out).format == "JPEG"
    save_image(t, tmp_path / "out.png")
    assert Image.open(tmp_path / "out.png").format == "PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg", "out.png"]  # no temp left
    with pytest.raises(ImageError) as exc:
        save_image(t, tmp_path / "out.xyz")
    assert str(exc.value) == (
        f"{tmp_path / 'out.xyz'}: unknown output extension '.xyz' "
        "(use .bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp)"
    )
    with pytest.raises(ImageError, match="folder .* does not exist"):
        save_image(t, tmp_path / "no" / "out.png")


def test_same_file_sees_through_spellings(tmp_path, monkeypatch):
    f = tmp_path / "a.png"
    f.write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert same_file("a.png", f) and same_file("./a.png", tmp_path / "." / "a.png")
    assert not same_file("b.png", f)


def test_resizing_is_in_float_so_16_bit_values_keep_their_precision():
    from nst.imageio import resize_to

    flat = torch.full((3, 40, 30), 0.123456)
    out = resize_to(flat, (20, 15))
    assert out.shape == (3, 20, 15)
    assert torch.allclose(out, flat[:, :20, :15], atol=1e-6)  # 8 bits would give 31/255
    ramp = torch.linspace(0, 1, 64 * 64).view(1, 64, 64).repeat(2, 1, 1)  # any channel count
    small = resize_to(ramp, (32, 32))
    assert small.shape == (2, 32, 32) and small.min() >= 0 and small.max() <= 1
    assert (small * 255 - (small * 255).round()).abs().max() > 0.1  # off the 8-bit grid


def test_image_files_expands_folders_by_their_own_images_or_recursively(tmp_path):
    from nst.errors import ConfigError
    from nst.imageio import image_files

    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "notes.txt", "sub/c.png"):
        (tmp_path / name).write_bytes(b"x")
    top = [str(tmp_path / "a.JPG"), str(tmp_path / "b.png")]
    assert image_files([str(tmp_path)], "contents") == top
    assert image_files([str(tmp_path)], "images", recursive=True) == [
        *top,
        str(tmp_path / "sub/c.png"),
    ]
    assert image_files(["builtin:chelsea", str(tmp_path / "*.png")], "x") == [
        "builtin:chelsea", str(tmp_path / "b.png")]  # fmt: skip
    with pytest.raises(ConfigError, match=r"styles: .*empty: no images in this folder"):
        (tmp_path / "empty").mkdir()
        image_files([str(tmp_path / "empty")], "styles")


def test_an_images_refusal_has_a_kind_a_server_can_answer_by():
    """The kinds are types (a server's 415 and 413 come from them, not from the words)."""
    import io

    from PIL import Image

    from nst.errors import ImageError, ImageTooLarge, UnreadableImage
    from nst.imageio import load_image
    from nst.web.uploads import image_status

    noise = torch.randint(0, 256, (20, 30, 3), generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    Image.fromarray(noise.to(torch.uint8).numpy()).save(buf, "PNG")
    png = buf.getvalue()
    cases = [
        (b"plain text, no image", 500, UnreadableImage, 415),
        (png, 500, ImageTooLarge, 413),
        (png[: len(png) // 2], 1000, ImageError, 422),  # cut short: damaged, neither of the two
    ]
    for data, limit, kind, status in cases:
        with pytest.raises(ImageError) as caught:
            load_image(data, name="x.png", max_pixels=limit)
        assert type(caught.value) is kind, caught.value
        assert image_status(caught.value) == status
