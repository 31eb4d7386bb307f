"""Tests for gnet.data.images: every PIL mode decodes to sensible RGB, bad input is an ImageError."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from skimage import data as skimage_data

from gnet.data.images import MAX_PIXELS, SUPPORTED_EXTENSIONS, image_digest, load_image
from gnet.errors import ImageError


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    """The encoded bytes of ``image`` in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def rgb_array(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def gradient_rgb(width: int = 48, height: int = 32) -> Image.Image:
    """A non-square image whose every pixel differs, so orientation mistakes show."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 5 % 256, y * 7 % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels)


# --- modes --------------------------------------------------------------------


def test_sixteen_bit_rescales_by_range_instead_of_clipping():
    values = np.array([[0, 32768, 65535, 1000]], dtype=np.uint16)
    image = Image.frombytes("I;16", (4, 1), values.astype("<u2").tobytes())
    gray = rgb_array(load_image(encode(image)))[0, :, 0]
    assert gray[0] == 0
    assert 127 <= gray[1] <= 128
    assert gray[2] == 255
    assert gray[3] == 4  # 1000 / 65535 * 255 = 3.9; PIL's clipping convert("L") would give 255


@pytest.mark.parametrize("mode, dtype", [("I;16", "<u2"), ("I;16B", ">u2")])
def test_sixteen_bit_modes_in_memory(mode, dtype):
    values = np.array([[0, 32768], [65535, 16384]], dtype=np.uint16)
    image = Image.frombytes(mode, (2, 2), values.astype(dtype).tobytes())
    assert image.mode == mode
    out = rgb_array(load_image(image))
    assert out[..., 0].tolist() == [[0, 128], [255, 64]]
    assert (out[..., 0] == out[..., 2]).all()


def test_sixteen_bit_tiff_big_endian_file(tmp_path):
    values = np.array([[65535, 32768, 0]], dtype=np.uint16)
    path = tmp_path / "deep.tiff"
    Image.frombytes("I;16B", (3, 1), values.astype(">u2").tobytes()).save(path)
    assert Image.open(path).mode == "I;16B"
    assert rgb_array(load_image(path))[0, :, 1].tolist() == [255, 128, 0]


def test_thirty_two_bit_int_holding_sixteen_bit_samples():
    image = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.int32))
    assert image.mode == "I"
    assert rgb_array(load_image(image))[0, :, 0].tolist() == [0, 128, 255]


def test_thirty_two_bit_int_outside_sixteen_bit_range_is_stretched():
    image = Image.fromarray(np.array([[-100, 0, 100]], dtype=np.int32))
    low, middle, high = rgb_array(load_image(image))[0, :, 0].tolist()
    assert (low, high) == (0, 255) and 127 <= middle <= 128


def test_float_unit_range_and_arbitrary_range():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert unit.mode == "F"
    assert rgb_array(load_image(unit))[0, :, 0].tolist() == [0, 128, 255]
    wide = Image.fromarray(np.array([[-3.0, 7.0, np.nan]], dtype=np.float32))
    assert rgb_array(load_image(wide))[0, :, 0].tolist() == [0, 255, 76]  # nan -> 0.0, 3/10 of the range


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (20, 10), (0, 255, 255, 0))  # pure red ink-wise
    out = load_image(encode(cmyk, "JPEG", quality=95))
    assert out.size == (20, 10)
    red, green, blue = rgb_array(out).mean(axis=(0, 1))
    assert red > 200 and green < 60 and blue < 60


@pytest.mark.parametrize(
    "mode, color, expected",
    [
        ("1", 1, (255, 255, 255)),
        ("1", 0, (0, 0, 0)),
        ("L", 77, (77, 77, 77)),
        ("RGB", (10, 200, 30), (10, 200, 30)),
        ("RGBA", (10, 200, 30, 255), (10, 200, 30)),
        ("RGBA", (10, 200, 30, 0), (255, 255, 255)),
        ("LA", (40, 0), (255, 255, 255)),
        ("LA", (40, 255), (40, 40, 40)),
    ],
)
def test_plain_modes_via_png(mode, color, expected):
    image = Image.new(mode, (6, 4), color)
    out = load_image(encode(image))
    assert out.size == (6, 4)
    assert out.getpixel((3, 2)) == expected


def test_half_transparent_rgba_blends_with_white():
    image = Image.new("RGBA", (2, 2), (0, 0, 0, 128))
    red, green, blue = load_image(image).getpixel((0, 0))
    assert red == green == blue and 125 <= red <= 129


def test_palette_with_transparency_composites_on_white():
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 255] + [255, 0, 0] + [0] * (254 * 3))  # 0 blue, 1 red
    image.paste(1, (0, 0, 4, 8))
    image.info["transparency"] = 0
    reopened = Image.open(io.BytesIO(encode(image)))
    assert reopened.mode == "P" and "transparency" in reopened.info
    out = load_image(encode(image))
    assert out.getpixel((1, 1)) == (255, 0, 0)
    assert out.getpixel((6, 6)) == (255, 255, 255)  # blue but transparent


def test_palette_alpha_mode():
    image = Image.new("RGBA", (4, 4), (0, 255, 0, 255))
    image.putpixel((0, 0), (0, 255, 0, 0))
    palette_alpha = image.convert("PA")
    assert palette_alpha.mode == "PA"
    out = load_image(palette_alpha)
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((2, 2)) == (0, 255, 0)


def test_gray_png_with_transparent_value():
    image = Image.new("L", (4, 4), 30)
    image.putpixel((0, 0), 200)
    data = encode(image, transparency=30)
    assert "transparency" in Image.open(io.BytesIO(data)).info
    out = load_image(data)
    assert out.getpixel((0, 0)) == (200, 200, 200)
    assert out.getpixel((3, 3)) == (255, 255, 255)


# --- orientation and frames ------------------------------------------------------


def test_exif_orientation_six_rotates_clockwise():
    source = gradient_rgb(width=48, height=32)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    out = load_image(encode(source, "PNG", exif=exif.tobytes()))
    assert out.size == (32, 48)
    expected = np.asarray(source.transpose(Image.Transpose.ROTATE_270))
    assert np.array_equal(np.asarray(out), expected)
    # Displayed top-left pixel is the stored bottom-left one.
    assert out.getpixel((0, 0)) == source.getpixel((0, 31))


def test_exif_orientation_in_jpeg(tmp_path):
    source = Image.new("RGB", (40, 20), (0, 0, 255))
    source.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    source.save(path, quality=95, exif=exif.tobytes())
    out = load_image(path)
    assert out.size == (20, 40)
    top, bottom = rgb_array(out)[5, 10], rgb_array(out)[35, 10]
    assert top[0] > 200 and top[2] < 60  # the stored left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), color) for color in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    assert load_image(path).getpixel((5, 5)) == (255, 0, 0)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG", "TIFF"])
def test_multi_frame_formats_give_first_frame(fmt):
    frames = [Image.new("RGB", (12, 8), color) for color in [(0, 0, 255), (255, 255, 0)]]
    lossless = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], **lossless)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    out = load_image(data)
    assert out.size == (12, 8)
    assert out.getpixel((6, 4)) == (0, 0, 255)


# --- input kinds -----------------------------------------------------------------


def test_path_str_bytes_file_and_pil_agree(tmp_path):
    source = gradient_rgb()
    path = tmp_path / "picture.png"
    source.save(path)
    expected = np.asarray(source)
    with path.open("rb") as handle:
        from_file = load_image(handle)
        assert not handle.closed  # a caller's file stays the caller's
    inputs = [load_image(path), load_image(str(path)), load_image(path.read_bytes()), from_file, load_image(source)]
    for image in inputs:
        assert image.mode == "RGB"
        assert np.array_equal(np.asarray(image), expected)


def test_returned_image_is_independent_of_the_input():
    source = Image.new("RGB", (4, 4), (1, 2, 3))
    out = load_image(source)
    assert out is not source
    out.putpixel((0, 0), (9, 9, 9))
    assert source.getpixel((0, 0)) == (1, 2, 3)


def test_bmp_and_webp_bytes():
    source = gradient_rgb(16, 8)
    assert np.array_equal(np.asarray(load_image(encode(source, "BMP"))), np.asarray(source))
    assert np.array_equal(np.asarray(load_image(encode(source, "WEBP", lossless=True))), np.asarray(source))


def test_supported_extensions():
    assert SUPPORTED_EXTENSIONS == ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
    assert 20_000_000 <= MAX_PIXELS <= 60_000_000


def test_real_photo_round_trip():
    chelsea = skimage_data.chelsea()
    out = load_image(encode(Image.fromarray(chelsea)))
    assert out.size == (chelsea.shape[1], chelsea.shape[0])
    assert np.array_equal(np.asarray(out), chelsea)


# --- broken inputs ---------------------------------------------------------------


def assert_one_sentence(error: ImageError) -> str:
    message = str(error)
    assert "\n" not in message
    assert message.endswith(".")
    assert message[0].isupper() or message[0] == "'"
    assert "<_io." not in message and "object at 0x" not in message
    return message


def truncated_png() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise))
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"", "empty"),
        (b"not an image", "cannot identify image file"),
        (truncated_png(), "truncated"),
        (encode(Image.new("RGB", (16, 16)), "ICO"), "cannot identify image file"),  # decodable by PIL, not allowed
        (encode(Image.new("RGB", (16, 16)), "TGA"), "cannot identify image file"),
    ],
)
def test_broken_bytes_raise_image_error(data, fragment):
    with pytest.raises(ImageError) as caught:
        load_image(data)
    assert fragment in assert_one_sentence(caught.value)


def test_truncated_png_from_file_like():
    with pytest.raises(ImageError, match="truncated"):
        load_image(io.BytesIO(truncated_png()))


def test_text_file_names_the_file_and_formats(tmp_path):
    path = tmp_path / "foo.txt"
    path.write_text("hello, not pixels\n")
    with pytest.raises(ImageError) as caught:
        load_image(path)
    message = assert_one_sentence(caught.value)
    assert "foo.txt" in message and "jpg, png" in message


def test_named_upload_is_named_in_the_message():
    upload = io.BytesIO(b"plain text")
    upload.name = "holiday.heic"
    with pytest.raises(ImageError, match="holiday.heic"):
        load_image(upload)


def test_missing_path_names_it(tmp_path):
    path = tmp_path / "nowhere" / "cat.jpg"
    with pytest.raises(ImageError) as caught:
        load_image(path)
    message = assert_one_sentence(caught.value)
    assert str(path) in message and "does not exist" in message


def test_directory_and_empty_file(tmp_path):
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(empty)


def test_wrong_argument_type_is_a_bug_not_a_user_error():
    with pytest.raises(TypeError):
        load_image(42)


def test_file_handle_is_closed_after_loading(tmp_path, monkeypatch):
    path = tmp_path / "picture.png"
    gradient_rgb().save(path)
    opened = []
    real_open = Path.open

    def recording_open(self, *args, **kwargs):
        handle = real_open(self, *args, **kwargs)
        opened.append(handle)
        return handle

    monkeypatch.setattr(Path, "open", recording_open)
    image = load_image(path)
    assert opened and all(handle.closed for handle in opened)
    assert image.getpixel((0, 0)) == gradient_rgb().getpixel((0, 0))  # pixels survive the close


# --- size limits -------------------------------------------------------------------


def test_too_many_pixels_is_refused_before_decoding(monkeypatch):
    data = encode(Image.new("RGB", (100, 50)))
    decoded = []
    real_load = ImageFile.ImageFile.load

    def recording_load(self):
        decoded.append(self)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    with pytest.raises(ImageError) as caught:
        load_image(data, max_pixels=4999)
    message = assert_one_sentence(caught.value)
    assert "100x50" in message and "limit" in message
    assert decoded == []
    assert load_image(data, max_pixels=5000).size == (100, 50)
    assert decoded  # the recorder does see a real decode


def test_pixel_limit_applies_to_pil_images_too():
    with pytest.raises(ImageError, match="limit"):
        load_image(Image.new("RGB", (10, 10)), max_pixels=99)


def test_pil_decompression_bomb_becomes_image_error(monkeypatch):
    data = encode(Image.new("L", (40, 40)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 1600 px: over PIL's 2x error threshold
    with pytest.raises(ImageError, match="too large"):
        load_image(data)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 px: PIL only warns; we refuse
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(ImageError, match="limit"):
        load_image(data)


# --- digest ------------------------------------------------------------------------


def test_digest_is_stable_and_discriminating():
    image = gradient_rgb()
    digest = image_digest(image)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert image_digest(load_image(encode(image))) == digest  # same pixels, different object
    assert digest == image_digest(gradient_rgb())
    changed = image.copy()
    changed.putpixel((0, 0), (1, 1, 1))
    assert image_digest(changed) != digest
    assert image_digest(image.transpose(Image.Transpose.ROTATE_180)) != digest
    assert image_digest(Image.new("RGB", (4, 2))) != image_digest(Image.new("RGB", (2, 4)))
    assert image_digest(Image.new("L", (2, 2))) != image_digest(Image.new("P", (2, 2)))


def test_digest_known_value():
    # Pins the recipe: changing it silently would invalidate every cached analysis.
    expected = hashlib.sha256(b"RGB:1x1:" + bytes([1, 2, 3])).hexdigest()
    assert image_digest(Image.new("RGB", (1, 1), (1, 2, 3))) == expected
