"""Download as PNG, JPEG or WebP (webapp.exports): the label in each format, no visitor metadata,
quality, orientation and the WebP side limit. Small files, no server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from juhe import read_provenance
from juhe._provenance import build_provenance, write_provenance
from webapp.exports import WEBP_MAX_SIDE, ExportError, checked, encode, export_result

GPS_IFD = 0x8825
ORIENTATION = 0x0112
RECORD = build_provenance(
    provider="juhe",
    order_id="JH-ORDER-1",
    model="auto",
    prompt="把猫换成狗",
    size="",
    inputs_sha256=["ab" * 32],
)


def saved_result(tmp_path: Path, fmt: str = "JPEG", orientation: int = 1, size=(120, 80)) -> Path:
    """A result as juhe saves it, carrying its label, plus EXIF with GPS and a comment (what a phone
    photo's region edit could leave) that no download may carry on."""
    picture = Image.new("RGB", size, (200, 40, 40))
    picture.paste((20, 40, 200), (0, 0, size[0] // 2, size[1] // 4))  # the top-left is blue
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(GPS_IFD)[2] = (39.0, 54.0, 0.0)
    out = io.BytesIO()
    if fmt == "JPEG":
        picture.save(out, "JPEG", quality=92, exif=exif.tobytes(), comment=b"visitor's note")
    else:
        picture.save(out, "PNG", exif=exif.tobytes())
    path = tmp_path / ("JH-ORDER-1" + (".jpg" if fmt == "JPEG" else ".png"))
    path.write_bytes(write_provenance(out.getvalue(), RECORD))
    return path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WebP"])
def test_each_format_carries_the_label_and_no_metadata_of_the_visitor(tmp_path, fmt):
    path = export_result(saved_result(tmp_path), fmt, 85, tmp_path)
    label = read_provenance(path)
    assert label is not None and label["AIGC"]["Label"] == "1"
    assert label["AIGC"] == RECORD["AIGC"] and label["order_id"] == "JH-ORDER-1"
    with Image.open(path) as opened:
        assert opened.format == fmt.upper()
        exif = opened.getexif()
        assert not exif and not exif.get_ifd(GPS_IFD)
        assert "exif" not in opened.info and "comment" not in opened.info
    data = Path(path).read_bytes()
    assert b"PhoneMaker" not in data and b"visitor's note" not in data and b"Exif\x00\x00" not in data


def test_quality_changes_the_lossy_formats(tmp_path):
    noisy = Image.effect_noise((200, 200), 60).convert("RGB")
    sizes = {q: len(encode(noisy, "JPEG", q, RECORD)) for q in (60, 100)}
    assert sizes[60] < sizes[100]
    sizes = {q: len(encode(noisy, "WebP", q, RECORD)) for q in (60, 100)}
    assert sizes[60] < sizes[100]


def test_a_rotated_phone_result_is_exported_upright(tmp_path):
    path = export_result(saved_result(tmp_path, orientation=6), "PNG", 90, tmp_path)
    with Image.open(path) as opened:
        assert opened.size == (80, 120)  # turned by its EXIF tag, which it no longer carries
        assert opened.convert("RGB").getpixel((75, 5))[2] > 150  # the blue corner moved to the top right


def test_a_png_result_with_transparency_keeps_it_except_in_jpeg(tmp_path):
    clear = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    for fmt, mode in (("PNG", "RGBA"), ("WebP", "RGBA"), ("JPEG", "RGB")):
        with Image.open(io.BytesIO(encode(clear, fmt, 90, RECORD))) as opened:
            assert opened.mode == mode
    with Image.open(io.BytesIO(encode(clear, "JPEG", 90, RECORD))) as opened:
        assert opened.getpixel((5, 5)) == (255, 255, 255)  # flattened on white


def test_webp_only_up_to_its_side_limit():
    assert checked("WebP", 90, (WEBP_MAX_SIDE, 100)) == ("WebP", 90)
    with pytest.raises(ExportError) as refused:
        checked("WebP", 90, (WEBP_MAX_SIDE + 1, 100))
    assert refused.value.key == "export_webp_side"
    assert checked("PNG", 90, (WEBP_MAX_SIDE + 1, 100)) == ("PNG", 90)  # PNG and JPEG have no such limit


@pytest.mark.parametrize(
    ("fmt", "quality"), [("GIF", 90), ("png", 90), ("JPEG", 59), ("JPEG", 101), ("JPEG", True)]
)
def test_unknown_formats_and_qualities_are_refused(tmp_path, fmt, quality):
    with pytest.raises(ExportError):
        export_result(saved_result(tmp_path), fmt, quality, tmp_path)


def test_a_result_saved_without_a_label_gets_one(tmp_path):
    bare = tmp_path / "bare.png"
    Image.new("RGB", (30, 20), "green").save(bare)
    fallback = dict(provider="juhe", order_id="JH-2", model="auto", prompt="p", size="", inputs_sha256=[])
    label = read_provenance(export_result(bare, "WebP", 80, tmp_path, fallback))
    assert label["AIGC"]["Label"] == "1" and label["order_id"] == "JH-2"
