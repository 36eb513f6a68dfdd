"""Input images, generated here with Pillow and numpy: what is sent unchanged, what is converted, what
is refused, and that the body stays within its budget."""

from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image, ImageFile

from juhe import MAX_INPUT_PIXELS, InvalidRequestError, sniff_format
from juhe import _images as juhe_images
from juhe._images import (
    STRIP_PIXELS,
    PreparedImage,
    _MemoryBudget,
    _reduce_in_bands,
    _to_mode,
    prepare_image,
    share_image_work,
)
from juhe._metadata import ORIENTATION_TAG
from juhe._request import build_form, check_params, image_budget, prepare_images

MiB = 1024 * 1024
BIG_BUDGET = 20 * MiB
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def prepare(item, *, max_side: int = 2048, budget: int = BIG_BUDGET) -> PreparedImage:
    return prepare_image(item, max_side=max_side, budget=budget)


def payload(prepared: PreparedImage) -> tuple[str, bytes]:
    """(mime, bytes) of a prepared data URI."""
    head, _, data = prepared.value.partition(",")
    assert head.startswith("data:") and head.endswith(";base64")
    return head[5:-7], base64.b64decode(data, validate=True)


def decoded(prepared: PreparedImage) -> Image.Image:
    """The image the provider would decode; its mime must match its bytes."""
    mime, data = payload(prepared)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert mime == Image.MIME[image.format] == f"image/{sniff_format(data).lower()}"
    assert (image.width, image.height) == (prepared.width, prepared.height)
    return image


def escaped_size(prepared: PreparedImage) -> int:
    """Bytes the value takes in the form body."""
    return len(quote(prepared.value, safe=""))


def close_to(pixel, expected, tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def halves(size=(300, 200), left=RED, right=BLUE) -> Image.Image:
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def noisy(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-sized array of noise, the worst case for compression; tiled to be quick to make."""
    tile = np.random.default_rng(seed).integers(0, 256, (500, 500, 3), dtype=np.uint8)
    return np.tile(tile, (-(-height // 500), -(-width // 500), 1))[:height, :width]


@pytest.fixture(scope="module")
def photo_12mp() -> bytes:
    """A 4000x3000 noisy JPEG, like a phone photo but harder to compress."""
    return encode(Image.fromarray(noisy(4000, 3000)), "JPEG", quality=90)


# --- sent unchanged ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime", "options"),
    [
        ("JPEG", "image/jpeg", {"quality": 90}),
        ("PNG", "image/png", {}),
        ("WEBP", "image/webp", {"quality": 90}),
        ("BMP", "image/bmp", {}),
        ("TIFF", "image/tiff", {}),
    ],
)
def test_compliant_image_is_passed_byte_for_byte(fmt, mime, options):
    data = encode(halves((1024, 768)), fmt, **options)
    prepared = prepare(data)
    assert prepared.value == f"data:{mime};base64," + base64.b64encode(data).decode()
    assert prepared.passthrough and prepared.mime == mime
    assert (prepared.width, prepared.height, prepared.source_bytes) == (1024, 768, len(data))


def test_small_rgba_png_is_passed_unchanged_with_its_transparency():
    image = Image.new("RGBA", (200, 100), (*RED, 255))
    image.paste((0, 0, 0, 0), (0, 0, 100, 100))
    data = encode(image, "PNG")
    prepared = prepare(data)
    assert prepared.passthrough and payload(prepared) == ("image/png", data)


@pytest.mark.parametrize("source", ["str", "path", "bytes", "data-uri"])
def test_every_input_kind_of_the_same_file_gives_the_same_value(tmp_path, source):
    data = encode(halves(), "JPEG")
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    item = {
        "str": str(path),
        "path": path,
        "bytes": data,
        "data-uri": "data:image/jpeg;base64," + base64.b64encode(data).decode(),
    }[source]
    assert payload(prepare(item)) == ("image/jpeg", data)


def test_format_comes_from_the_bytes_not_the_name(tmp_path):
    png, jpeg = encode(halves(), "PNG"), encode(halves(), "JPEG")
    (tmp_path / "really-png.jpg").write_bytes(png)
    (tmp_path / "really-jpeg.png").write_bytes(jpeg)
    assert payload(prepare(tmp_path / "really-png.jpg")) == ("image/png", png)
    assert payload(prepare(tmp_path / "really-jpeg.png")) == ("image/jpeg", jpeg)
    lying_uri = "data:image/png;base64," + base64.b64encode(jpeg).decode()
    assert payload(prepare(lying_uri)) == ("image/jpeg", jpeg)


@pytest.mark.parametrize("url", ["https://example.com/cat.png?sig=a+b", "http://example.com/x.jpg"])
def test_http_links_are_passed_untouched(url):
    prepared = prepare(url)
    assert (prepared.value, prepared.mime, prepared.passthrough) == (url, None, True)


# --- converted -----------------------------------------------------------------------------------


def test_exif_rotated_jpeg_is_turned_upright_and_re_encoded():
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6  # stored sideways: shown after a 90° clockwise turn
    data = encode(halves((300, 200)), "JPEG", quality=95, exif=exif.tobytes())
    prepared = prepare(data)
    assert not prepared.passthrough
    image = decoded(prepared)
    assert image.size == (200, 300)
    assert close_to(image.getpixel((100, 20)), RED) and close_to(image.getpixel((100, 280)), BLUE)
    assert image.getexif().get(ORIENTATION_TAG, 1) == 1  # no second turn at the provider


def test_pil_image_input_is_encoded():
    image = decoded(prepare(halves((120, 60))))
    assert image.format == "JPEG" and image.size == (120, 60)
    assert close_to(image.getpixel((10, 30)), RED)


def test_large_image_is_scaled_to_max_side():
    prepared = prepare(encode(halves((3000, 1000)), "PNG"))
    assert not prepared.passthrough
    assert decoded(prepared).size == (2048, 683)


def test_max_side_setting_is_honoured():
    assert decoded(prepare(encode(halves((1024, 768)), "JPEG"), max_side=512)).size == (512, 384)


@pytest.mark.slow  # full-size photos
def test_large_rgba_png_keeps_its_transparency_when_converted():
    rgba = np.zeros((2000, 3000, 4), dtype=np.uint8)
    rgba[..., 0] = np.linspace(0, 255, 3000, dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:, :1500, 3] = 0  # the left half is transparent
    prepared = prepare(encode(Image.fromarray(rgba), "PNG"))
    assert not prepared.passthrough
    image = decoded(prepared).convert("RGBA")
    assert image.size == (2048, 1365)
    assert image.getpixel((100, 600))[3] == 0 and image.getpixel((2000, 600))[3] == 255


def test_gif_is_converted_to_a_supported_format():
    image = decoded(prepare(encode(halves((160, 80)), "GIF")))
    assert image.format in ("JPEG", "PNG") and image.size == (160, 80)
    assert close_to(image.convert("RGB").getpixel((10, 40)), RED)


def test_transparent_gif_keeps_its_transparency():
    frame = Image.new("P", (80, 40), 0)
    frame.putpalette([*RED, *BLUE] + [0] * 762)
    frame.paste(1, (40, 0, 80, 40))
    image = decoded(prepare(encode(frame, "GIF", transparency=0))).convert("RGBA")
    assert image.getpixel((10, 20))[3] == 0
    assert close_to(image.getpixel((60, 20)), (*BLUE, 255))


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animation_is_sent_as_its_first_frame(fmt):
    frames = [Image.new("RGB", (120, 80), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "is_animated", False)
    prepared = prepare(data)
    assert not prepared.passthrough
    image = decoded(prepared)
    assert not getattr(image, "is_animated", False) and image.size == (120, 80)
    assert close_to(image.convert("RGB").getpixel((60, 40)), RED)


def test_cmyk_jpeg_is_converted_to_rgb_with_its_colours():
    data = encode(Image.new("CMYK", (300, 200), (0, 255, 255, 0)), "JPEG", quality=95)  # red ink
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    image = decoded(prepare(data))
    assert image.mode == "RGB" and image.size == (300, 200)
    assert close_to(image.getpixel((150, 100)), RED)


def test_16_bit_png_is_scaled_to_8_bits_not_clipped_to_white():
    ramp = np.tile(np.linspace(0, 65535, 600).astype(np.uint16), (100, 1))
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    image = decoded(prepare(data)).convert("L")
    assert image.size == (600, 100)
    assert image.getpixel((5, 50)) < 16
    assert 112 < image.getpixel((300, 50)) < 144
    assert image.getpixel((595, 50)) > 240


def test_palette_png_with_transparency_keeps_it():
    image = Image.new("P", (100, 100), 0)
    image.putpalette([*RED, *BLUE] + [0] * 762)
    image.paste(1, (50, 0, 100, 100))
    result = decoded(prepare(encode(image, "PNG", transparency=0))).convert("RGBA")
    assert result.getpixel((10, 50))[3] == 0
    assert close_to(result.getpixel((90, 50)), (*BLUE, 255))


# --- size and budget -----------------------------------------------------------------------------


@pytest.mark.slow  # full-size photos
def test_12_megapixel_noisy_photo_ends_within_budget_and_2048_px(photo_12mp):
    budget = 2 * MiB
    assert len(photo_12mp) > budget
    prepared = prepare(photo_12mp, budget=budget)
    assert escaped_size(prepared) <= budget
    assert decoded(prepared).size == (2048, 1536)


@pytest.mark.slow  # full-size photos
def test_12_megapixel_photo_turned_by_exif_ends_upright_within_2048_px():
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    data = encode(Image.fromarray(noisy(4000, 3000, seed=1)), "JPEG", quality=85, exif=exif.tobytes())
    assert decoded(prepare(data, budget=3 * MiB)).size == (1536, 2048)


@pytest.mark.slow  # full-size photos
@pytest.mark.parametrize("max_body", [6 * MiB, 2 * MiB])
def test_three_12_megapixel_photos_keep_the_whole_body_within_the_limit(photo_12mp, max_body):
    key = "k" * 32
    params = check_params("把图1的天空换到图2和图3", [photo_12mp] * 3, size="1024*1024")
    prepared = prepare_images(params, max_side=2048, budget=image_budget(max_body, params, key))
    body = build_form(key, params, prepared)
    assert len(body) <= max_body
    assert all(max(decoded(p).size) <= 2048 for p in prepared)


@pytest.mark.slow  # full-size photos
def test_tight_budget_scales_the_image_down_until_it_fits(photo_12mp):
    prepared = prepare(photo_12mp, budget=200_000)
    assert escaped_size(prepared) <= 200_000
    assert max(decoded(prepared).size) < 2048


def test_budget_is_exact_for_an_unchanged_image():
    data = encode(Image.fromarray(noisy(64, 64)), "PNG")  # re-encoded as JPEG it is smaller
    exact = escaped_size(prepare(data))
    assert prepare(data, budget=exact).passthrough
    below = prepare(data, budget=exact - 1)
    assert not below.passthrough and escaped_size(below) <= exact - 1


def test_image_that_cannot_fit_is_refused():
    with pytest.raises(InvalidRequestError, match="small enough"):
        prepare(encode(Image.fromarray(noisy(600, 400)), "PNG"), budget=500)


# --- refused -------------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def declared_png(width: int, height: int) -> bytes:
    """A valid, tiny PNG whose header declares `width` x `height` RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * min(width, 1000)) * 10)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (10000, 8500)])
def test_pixel_bomb_is_refused_from_its_header_without_decoding(monkeypatch, width, height):
    bomb = declared_png(width, height)
    assert len(bomb) < 10_000
    loads = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self.size) or real_load(self))
    with pytest.raises(InvalidRequestError, match="pixels"):
        prepare(bomb)
    assert loads == []


def test_truncated_12_megapixel_photo_is_refused(photo_12mp):
    with pytest.raises(InvalidRequestError, match="truncated or corrupt"):
        prepare(photo_12mp[: len(photo_12mp) // 2])


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_small_image_is_refused(fmt):
    data = encode(Image.fromarray(noisy(300, 200)), fmt)
    with pytest.raises(InvalidRequestError, match="truncated or corrupt"):
        prepare(data[: len(data) // 2])


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff" + bytes(range(256)) * 4,  # a JPEG signature, then garbage
        b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
        b"GIF89a" + b"x" * 50,
        b"RIFF\x00\x00\x00\x00WEBPVP8 garbage",
        b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n",
        "你好, not an image".encode(),
        b"\0",
    ],
)
def test_corrupt_or_non_image_bytes_are_refused(data):
    with pytest.raises(InvalidRequestError, match="invalid request"):
        prepare(data)


def test_zero_byte_file_is_refused(tmp_path):
    (tmp_path / "empty.jpg").touch()
    with pytest.raises(InvalidRequestError, match="empty"):
        prepare(tmp_path / "empty.jpg")


def test_text_file_named_like_an_image_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(InvalidRequestError, match="not a readable image"):
        prepare(str(path))


@pytest.mark.parametrize(
    "item",
    [
        "no/such/file.png",
        Path("no/such/file.png"),
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:image/png,not-base64",
        "data:image/png;base64,@@@@",
        12345,
        None,
    ],
)
def test_unusable_inputs_are_refused(item):
    with pytest.raises(InvalidRequestError, match="invalid request"):
        prepare(item)


# --- memory: one pixel bound, and large images handled a band at a time --------------------------


def test_the_input_pixel_bound_is_50_megapixels_whatever_the_format():
    assert MAX_INPUT_PIXELS == 50_000_000
    with pytest.raises(InvalidRequestError, match="50,000,000 pixels") as info:
        prepare(declared_png(8200, 6200))
    assert "8200x6200" in info.value.en


@pytest.mark.slow  # full-size photos
def test_a_48_megapixel_phone_photo_is_accepted():
    photo = encode(Image.new("RGB", (8064, 6048), (120, 90, 60)), "JPEG", quality=85)
    prepared = prepare(photo)
    assert (prepared.width, prepared.height) == (2048, 1536)


@pytest.mark.slow  # full-size photos
def test_a_large_transparent_png_is_never_converted_whole(monkeypatch):
    """A 30-MP palette PNG is 30 MB decoded; one RGBA copy of it would be 120 MB more."""
    big = Image.new("P", (6000, 5000), 0)
    big.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    big.paste(1, (3000, 0, 6000, 5000))
    data = encode(big, "PNG", transparency=0)
    converted = []
    real_convert = Image.Image.convert

    def convert(self, *args, **kwargs):
        converted.append(self.width * self.height)
        return real_convert(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", convert)
    result = decoded(prepare(data))
    # bands of the full-size image, and the image once box-reduced: never the whole at full size
    assert max(converted) <= 6000 * 5000 // 4 and 0 < min(converted) <= STRIP_PIXELS, converted
    assert result.mode == "RGBA" and max(result.size) == 2048
    assert result.getpixel((10, 10))[3] == 0 and close_to(result.getpixel((2000, 10))[:3], RED)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "I;16", "CMYK"])
def test_reducing_in_bands_equals_reducing_the_whole_image(mode):
    source = Image.fromarray(noisy(997, 613)).convert("RGB")
    image = source.convert(mode) if mode != "I;16" else source.convert("L").convert("I;16")
    target = "RGBA" if mode == "RGBA" else "RGB"
    whole = _to_mode(image, target).reduce(3)
    assert _reduce_in_bands(image, 3, target).tobytes() == whole.tobytes()


def test_a_process_can_take_a_share_of_the_image_work(monkeypatch):
    """One of two edit processes holds half of the pixels, and runs half of the re-encodes, that one
    process alone may."""
    monkeypatch.setattr(juhe_images, "_DECODE_MEMORY", juhe_images._DECODE_MEMORY)
    monkeypatch.setattr(juhe_images, "_REENCODE_SLOTS", juhe_images._REENCODE_SLOTS)
    monkeypatch.setattr(juhe_images.os, "cpu_count", lambda: 4)
    share_image_work(2)
    assert juhe_images._DECODE_MEMORY.total == juhe_images.DECODE_MEMORY_BYTES // 2
    slots = juhe_images._REENCODE_SLOTS
    assert [slots.acquire(blocking=False) for _ in range(3)] == [True, True, False]
    share_image_work(8)  # more processes than cores: each still runs one
    assert juhe_images._REENCODE_SLOTS.acquire(blocking=False)
    with pytest.raises(ValueError, match="parts must be at least 1"):
        share_image_work(0)


def test_the_decode_memory_lets_large_images_run_one_at_a_time():
    budget = _MemoryBudget(100)
    inside, peak = [0], []
    lock = threading.Lock()

    def work(nbytes: int) -> None:
        with budget.hold(nbytes):
            with lock:
                inside[0] += nbytes
                peak.append(inside[0])
            time.sleep(0.02)
            with lock:
                inside[0] -= nbytes

    threads = [threading.Thread(target=work, args=(n,)) for n in (60, 60, 60, 30, 500)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert max(peak) <= 500 and sorted(peak)[-2] <= 90  # 500 is held alone (clamped to the whole)
    assert budget.free == budget.total == 100
