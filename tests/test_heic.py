"""HEIC/HEIF and AVIF inputs, generated here with pillow-heif and Pillow: recognised from their
bytes, opened upright, bounded, and turned into JPEG without their metadata."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms

from juhe import MAX_INPUT_PIXELS, InvalidRequestError, heif_to_jpeg, sniff_heif
from juhe._heic import open_heif
from juhe._metadata import jpeg_segments

ORIENTATION = 0x0112
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
RED, BLUE = (255, 0, 0), (0, 0, 255)


def marked(width: int = 64, height: int = 32) -> Image.Image:
    """Red, with a blue square in the top-left corner: shows any turn or flip."""
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (0, 0, width // 4, height // 2))
    return image


def exif(orientation: int = 1, gps: bool = True) -> bytes:
    data = Image.Exif()
    data[0x010F] = "Apple"
    if orientation != 1:
        data[ORIENTATION] = orientation
    if gps:
        data.get_ifd(0x8825)[2] = (31.0, 13.0, 44.5)
    return data.tobytes()


def heic(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    pillow_heif.encode(image.mode, image.size, image.tobytes(), out, quality=90, **options)
    return out.getvalue()


def close(pixel, expected, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


def test_brands_are_recognised_from_the_bytes():
    assert sniff_heif(heic(marked())) == "HEIF"
    avif = io.BytesIO()
    marked().save(avif, "AVIF")
    assert sniff_heif(avif.getvalue()) == "AVIF"
    generic = b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic"
    assert sniff_heif(generic) == "HEIF"
    assert sniff_heif(b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isomavc1") is None  # an MP4 video
    assert sniff_heif(b"\xff\xd8\xff\xe0" + bytes(20)) is None
    assert sniff_heif(b"\x00\x00\x00\x18ftyp") is None


@pytest.mark.parametrize("orientation", [1, 6, 8, 3])
def test_heic_opens_upright(orientation):
    image = open_heif(heic(marked(), exif=exif(orientation)))

    expected = marked()
    if orientation != 1:
        expected = expected.transpose(
            {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90, 3: Image.Transpose.ROTATE_180}[
                orientation
            ]
        )
    assert image.size == expected.size and image.mode == "RGB"
    difference = np.abs(np.asarray(image).astype(int) - np.asarray(expected).astype(int))
    assert difference.mean() < 8  # HEVC is lossy; a wrong turn would differ by about 100
    assert image.info == {}  # no EXIF, no GPS, no XMP


def test_heic_with_alpha_and_icc_keeps_them():
    rgba = marked().convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    image = open_heif(heic(rgba, icc_profile=ICC))

    assert image.mode == "RGBA" and image.size == (64, 32)
    assert image.getchannel("A").getextrema()[0] < 40
    assert image.info == {"icc_profile": ICC}


def test_avif_opens_upright_through_pillow():
    avif = io.BytesIO()
    marked().save(avif, "AVIF", exif=exif(6), quality=90)

    image = open_heif(avif.getvalue())

    assert image.size == (32, 64) and image.mode == "RGB"
    assert close(image.getpixel((31, 0)), BLUE) and close(image.getpixel((0, 63)), RED)
    assert "exif" not in image.info


def test_the_pixel_bound_is_checked_before_decoding():
    data = heic(marked(64, 32))
    with pytest.raises(InvalidRequestError, match="64x32.*2000 pixels") as caught:
        open_heif(data, max_pixels=2000)
    assert "图片像素过多" in str(caught.value)
    assert MAX_INPUT_PIXELS >= 8064 * 6048  # a 48-MP iPhone photo is within the shared bound


def test_corrupt_and_foreign_bytes_are_clear_errors():
    data = heic(marked())
    with pytest.raises(InvalidRequestError, match="corrupt"):
        open_heif(data[: len(data) // 2])
    with pytest.raises(InvalidRequestError, match="not a HEIC"):
        open_heif(b"\xff\xd8\xff\xe0 a jpeg")


def test_heif_to_jpeg_is_upright_small_and_without_metadata():
    data = heic(marked(640, 320), exif=exif(6), icc_profile=ICC)

    jpeg = heif_to_jpeg(data, max_side=200)

    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (100, 200)
    assert close(image.getpixel((95, 5)), BLUE) and close(image.getpixel((5, 195)), RED)
    kept = {jpeg[s + 4 : s + 8] for m, s, _ in jpeg_segments(jpeg) if 0xE0 <= m <= 0xEF}
    assert kept == {b"JFIF", b"ICC_"}  # no EXIF, no XMP
    assert image.info["icc_profile"] == ICC


def test_heif_to_jpeg_flattens_transparency_onto_white():
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    image = Image.open(io.BytesIO(heif_to_jpeg(heic(rgba))))
    assert image.mode == "RGB" and close(image.getpixel((16, 16)), (255, 255, 255), 8)


def test_pillow_heif_is_imported_only_when_needed():
    """No module of the package imports pillow_heif at import time (it loads a native library)."""
    for path in Path("juhe").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only; a function body imports it when called
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(name.startswith("pillow_heif") for name in names), path


def test_shrinking_while_reading_equals_shrinking_the_whole_image(monkeypatch):
    monkeypatch.setattr("juhe._heic.HEIF_BAND_ROWS", 8)  # bands of 56 rows: 8 bands, the last partial
    rng = np.random.default_rng(3)
    data = heic(Image.fromarray(rng.integers(0, 256, (430, 90, 3), dtype=np.uint8)))

    shrunk = open_heif(data, max_side=60)  # 430 // 60 = 7

    whole = open_heif(data)
    assert shrunk.size == (13, 62) == whole.reduce(7).size
    assert np.array_equal(np.asarray(shrunk), np.asarray(whole.reduce(7)))
