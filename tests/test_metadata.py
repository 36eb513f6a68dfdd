"""Stripping metadata in place: generated JPEG, PNG and WebP files lose GPS, EXIF, XMP, IPTC and
comments, keep their ICC profile, and their image data stays byte-identical."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers.images import (
    GPS_IFD,
    ORIENTATION,
    XMP,
    exif_with_gps,
    scan_data,
)
from PIL import Image, ImageCms, ImageOps, PngImagePlugin

from juhe._metadata import (
    jpeg_segment,
    png_chunk,
    png_chunks,
    strip_jpeg,
    strip_metadata,
    strip_png,
    strip_webp,
)

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def photo(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def jpeg(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def insert_after_soi(data: bytes, segment: bytes) -> bytes:
    return data[:2] + segment + data[2:]


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# --- JPEG -------------------------------------------------------------------------------------


def test_jpeg_with_gps_loses_it_and_keeps_scan_data_and_icc_byte_identical():
    iptc = jpeg_segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0dsecret place")
    source = insert_after_soi(
        jpeg(photo(), exif=exif_with_gps().tobytes(), xmp=XMP, comment=b"taken at home", icc_profile=ICC),
        iptc,
    )
    assert b"PhoneMaker" in source and b"secret place" in source and b"taken at home" in source

    stripped, removed = strip_metadata(source)

    assert Image.open(io.BytesIO(source)).getexif().get_ifd(GPS_IFD)  # the test file had GPS
    image = Image.open(io.BytesIO(stripped))
    assert not image.getexif() and "xmp" not in image.info and "comment" not in image.info
    for secret in (b"PhoneMaker", b"Phone 15", b"creator", b"secret place", b"taken at home", b"Exif"):
        assert secret not in stripped
    assert image.info["icc_profile"] == ICC
    assert scan_data(stripped) == scan_data(source)
    assert np.array_equal(pixels(stripped), pixels(source))
    assert any(item.startswith("EXIF, with GPS") for item in removed)
    assert any(item.startswith("XMP") for item in removed)
    assert any(item.startswith("IPTC") for item in removed)
    assert any(item.startswith("comment") for item in removed)
    assert len(stripped) < len(source)


def test_jpeg_without_metadata_is_unchanged():
    source = jpeg(photo())  # Pillow writes SOI, JFIF APP0, tables, frame, scan, EOI
    assert strip_jpeg(source) == (source, [])


def test_jpeg_orientation_other_than_1_survives_alone():
    source = jpeg(photo(), exif=exif_with_gps(orientation=6).tobytes())

    stripped, removed = strip_jpeg(source)

    exif = Image.open(io.BytesIO(stripped)).getexif()
    assert dict(exif) == {ORIENTATION: 6}
    assert b"PhoneMaker" not in stripped and not exif.get_ifd(GPS_IFD)
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(stripped))).size == (64, 96)
    assert scan_data(stripped) == scan_data(source)
    assert "EXIF kept only its orientation (6)" in removed


def test_jpeg_trailing_images_and_mpf_are_removed():
    mpf = jpeg_segment(0xE2, b"MPF\x00II*\x00" + b"\x00" * 16)
    second = jpeg(photo(seed=1), exif=exif_with_gps().tobytes())  # e.g. a depth map or gain map
    source = insert_after_soi(jpeg(photo()), mpf) + second

    stripped, removed = strip_jpeg(source)

    assert stripped == jpeg(photo())
    assert any(item.startswith("MPF") for item in removed)
    assert any(item.startswith("data after the image") for item in removed)


def test_jpeg_thumbnails_of_the_original_are_removed():
    thumb = bytes(3 * 2 * 2)
    jfif = jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x02\x02" + thumb)
    jfxx = jpeg_segment(0xE0, b"JFXX\x00\x13" + b"\x02\x02" + thumb)
    plain = jpeg(photo())
    body = plain[2 + 18 :]  # Pillow's own JFIF segment is 18 bytes after SOI
    source = b"\xff\xd8" + jfif + jfxx + body

    stripped, removed = strip_jpeg(source)

    assert stripped[2:20] == jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    assert b"JFXX" not in stripped
    assert removed[0] == "JFIF thumbnail" and removed[1].startswith("JFIF extension thumbnail")
    assert np.array_equal(pixels(stripped), pixels(plain))


def test_progressive_jpeg_loses_a_comment_between_scans():
    source = jpeg(photo(), progressive=True)
    first_scan = source.index(b"\xff\xda")
    second_scan = source.index(b"\xff\xda", first_scan + 2)  # FF DA never occurs inside scan data
    comment = jpeg_segment(0xFE, b"hidden between scans")
    source_with_comment = source[:second_scan] + comment + source[second_scan:]

    stripped, removed = strip_jpeg(source_with_comment)

    assert stripped == source
    assert removed == [f"comment ({len(comment)} bytes)"]


@pytest.mark.parametrize(
    "cut",
    [
        lambda d: d[: len(d) // 2],  # truncated inside the scan
        lambda d: d[:30],  # truncated inside a segment
        lambda d: d[:2] + b"\x00\x00" + d[2:],  # garbage where a marker should be
        lambda d: d[:4] + b"\xff\xff" + d[6:],  # a segment length past the end
    ],
)
def test_broken_jpeg_is_a_clear_error(cut):
    with pytest.raises(ValueError, match="malformed JPEG"):
        strip_jpeg(cut(jpeg(photo())))


def test_a_segment_over_the_jpeg_limit_is_refused():
    with pytest.raises(ValueError, match="65533"):
        jpeg_segment(0xE1, bytes(65534))


# --- PNG --------------------------------------------------------------------------------------


def png(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def with_chunk_before_iend(data: bytes, chunk: bytes) -> bytes:
    return data[:-12] + chunk + data[-12:]


def test_png_loses_text_exif_and_time_and_keeps_colour_chunks():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "my flat")
    info.add_text("parameters", "a long prompt", zip=True)
    info.add_itxt("Description", "我的家", lang="zh")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    source = png(photo(), pnginfo=info, exif=exif_with_gps().tobytes(), icc_profile=ICC, dpi=(300, 300))
    source = with_chunk_before_iend(source, png_chunk(b"tIME", b"\x07\xe9\x05\x01\x0c\x00\x00"))
    source = with_chunk_before_iend(source, png_chunk(b"gAMA", (45455).to_bytes(4, "big")))
    source = with_chunk_before_iend(source, png_chunk(b"prVt", b"private vendor data"))

    stripped, removed = strip_metadata(source)

    kinds = [kind for kind, _, _ in png_chunks(stripped)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    for kept in (b"iCCP", b"pHYs", b"gAMA", b"IDAT"):
        assert kept in kinds
    for dropped in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME", b"prVt"):
        assert dropped not in kinds
    idat = [source[s:e] for k, s, e in png_chunks(source) if k == b"IDAT"]
    assert idat == [stripped[s:e] for k, s, e in png_chunks(stripped) if k == b"IDAT"]
    image = Image.open(io.BytesIO(stripped))
    assert image.info["icc_profile"] == ICC and not image.getexif()
    assert np.array_equal(pixels(stripped), pixels(source))
    labels = " | ".join(removed)
    for expected in ("text 'Comment'", "text 'parameters'", "text 'Description'", "XMP", "EXIF, with GPS"):
        assert expected in labels
    assert "modification time" in labels and "chunk prVt" in labels


def test_png_with_transparency_and_palette_keeps_them():
    image = Image.new("P", (8, 8))
    image.putpalette([0, 0, 0, 255, 0, 0] * 128)
    source = png(image, transparency=0)

    stripped, removed = strip_png(source)

    assert stripped == source and removed == []


def test_broken_png_is_a_clear_error():
    source = png(photo())
    with pytest.raises(ValueError, match="malformed PNG"):
        strip_png(source[:-20])
    with pytest.raises(ValueError, match="malformed PNG"):
        strip_png(source[:12] + b"\x00\x01\x02\x03" + source[16:])


# --- WebP and others --------------------------------------------------------------------------


def test_webp_loses_exif_and_xmp_and_keeps_icc_and_pixels():
    source = io.BytesIO()
    photo().save(source, "WEBP", lossless=True, exif=exif_with_gps().tobytes(), xmp=XMP, icc_profile=ICC)
    source = source.getvalue()

    stripped, removed = strip_webp(source)

    image = Image.open(io.BytesIO(stripped))
    assert not image.getexif() and "xmp" not in image.info
    assert image.info["icc_profile"] == ICC
    assert b"PhoneMaker" not in stripped and b"creator" not in stripped
    assert int.from_bytes(stripped[4:8], "little") == len(stripped) - 8
    flags = stripped[stripped.index(b"VP8X") + 8]
    assert flags & 0x0C == 0 and flags & 0x20  # EXIF and XMP flags cleared, ICC flag kept
    assert np.array_equal(pixels(stripped), pixels(source))
    assert [item.split(" (")[0] for item in removed] == ["EXIF, with GPS", "XMP"]


def test_bmp_has_nothing_to_strip_and_other_formats_are_refused():
    bmp = io.BytesIO()
    photo().save(bmp, "BMP")
    assert strip_metadata(bmp.getvalue()) == (bmp.getvalue(), [])
    tiff = io.BytesIO()
    photo().save(tiff, "TIFF", exif=exif_with_gps().tobytes())
    with pytest.raises(ValueError, match="re-encode"):
        strip_metadata(tiff.getvalue())
