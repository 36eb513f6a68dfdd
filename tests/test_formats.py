"""The image facts juhe offers the app: formats from bytes, the upright turn, what results are saved as."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from juhe import (
    OTHER_EXTENSION,
    RESULT_EXTENSIONS,
    read_orientation,
    sniff_format,
    sniff_heif,
    upright_turn,
)
from juhe._formats import upright_size
from juhe._metadata import ORIENTATION_TAG


def encoded(fmt: str, size: tuple[int, int] = (6, 4), **options) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, fmt, **options)
    return out.getvalue()


def with_orientation(orientation: int) -> Image.Image:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return Image.open(io.BytesIO(encoded("JPEG", exif=exif.tobytes())))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF"])
def test_the_format_is_named_from_the_first_bytes(fmt):
    assert sniff_format(encoded(fmt)[:12]) == fmt


@pytest.mark.parametrize("head", [b"", b"<svg xmlns=", b"%PDF-1.7", b"\x00\x00\x00\x18ftypheic"])
def test_other_bytes_have_no_format(head):
    assert sniff_format(head) is None


def test_heif_is_told_apart_from_other_iso_media_files():
    brands = b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic"
    assert sniff_heif(brands) == "HEIF"
    assert sniff_heif(b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00avifmif1") == "AVIF"
    assert sniff_heif(b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isomavc1") is None  # an MP4 video


def test_the_upright_turn_follows_the_exif_orientation():
    assert (read_orientation(with_orientation(6)), upright_turn(with_orientation(6))) == (
        6,
        Image.Transpose.ROTATE_270,
    )
    assert upright_size(with_orientation(6)) == (4, 6)
    plain = Image.open(io.BytesIO(encoded("JPEG")))
    assert (read_orientation(plain), upright_turn(plain), upright_size(plain)) == (1, None, (6, 4))


def test_a_broken_orientation_counts_as_upright():
    assert read_orientation(with_orientation(0)) == 1
    broken = Image.open(io.BytesIO(encoded("PNG")))

    def unreadable_exif() -> Image.Exif:
        raise SyntaxError("not a TIFF file")  # what Pillow raises for a damaged EXIF block

    broken.getexif = unreadable_exif
    assert (read_orientation(broken), upright_turn(broken)) == (1, None)


def test_results_are_saved_under_the_extension_of_their_format():
    assert dict(RESULT_EXTENSIONS) == {
        "PNG": ".png",
        "JPEG": ".jpg",
        "WEBP": ".webp",
        "BMP": ".bmp",
        "TIFF": ".tif",
        "GIF": ".gif",
    }
    assert OTHER_EXTENSION not in RESULT_EXTENSIONS.values()
    with pytest.raises(TypeError):
        RESULT_EXTENSIONS["AVIF"] = ".avif"  # read-only: the app relies on the list
