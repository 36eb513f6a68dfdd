"""Download as PNG, JPEG or WebP: a saved result re-encoded at the visitor's quality, carrying the
AI-content label (GB 45438-2025) and nothing else of any metadata.

The pixels come from the saved result, turned upright (a region edit of a phone photo is saved in
its stored orientation with an EXIF orientation tag, which the new file does not carry). Pillow
encodes them with no `exif=`, so no EXIF, GPS or comment of anyone survives; the colour profile,
which only says how to show the colours, is kept. The label is the saved result's own (read back
with `juhe.read_provenance`: the same producer, order and instruction the page's other download
carries); for PNG and JPEG juhe's writer puts it in, for WebP Pillow's encoder writes juhe's XMP
packet (juhe's writer handles PNG and JPEG only). WebP holds at most 16383 px a side.
"""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from PIL import Image, ImageOps

from juhe import read_provenance
from juhe._provenance import build_provenance, write_provenance, xmp_packet

FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WebP": ".webp"}
QUALITY_RANGE = (60, 100)  # for JPEG and WebP; PNG is lossless
DEFAULT_QUALITY = 90
WEBP_MAX_SIDE = 16383  # the format's own limit


class ExportError(ValueError):
    """A format or quality the export does not take; `key` names the visitor's message."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def checked(fmt: object, quality: object, size: tuple[int, int]) -> tuple[str, int]:
    """The format and quality, or ExportError: an unknown format, a quality out of range, or a
    WebP of a picture with a side over `WEBP_MAX_SIDE`."""
    if fmt not in FORMATS:
        raise ExportError("export_format")
    low, high = QUALITY_RANGE
    if isinstance(quality, bool) or not isinstance(quality, (int, float)) or not low <= quality <= high:
        raise ExportError("export_quality", low=low, high=high)
    if fmt == "WebP" and max(size) > WEBP_MAX_SIDE:
        raise ExportError("export_webp_side", side=WEBP_MAX_SIDE, width=size[0], height=size[1])
    return fmt, int(quality)


def encode(image: Image.Image, fmt: str, quality: int, record: dict, icc: bytes | None = None) -> bytes:
    """`image` as `fmt` bytes with `record` as its label and no other metadata."""
    picture = image
    if fmt == "JPEG" and picture.mode != "RGB":
        rgba = picture.convert("RGBA")
        picture = Image.new("RGB", rgba.size, "white")  # JPEG has no transparency: flattened on white
        picture.paste(rgba, mask=rgba.getchannel("A"))
    elif picture.mode not in ("RGB", "RGBA", "L", "LA") or (fmt == "WebP" and picture.mode in ("L", "LA")):
        picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
    if picture.info:  # Pillow's encoders fall back to `info` (a JPEG comment, XMP): none may pass
        picture = picture.copy() if picture is image else picture
        picture.info = {}
    out = io.BytesIO()
    options: dict = {"icc_profile": icc} if icc else {}
    if fmt == "PNG":
        picture.save(out, "PNG", optimize=False, compress_level=6, **options)
        return write_provenance(out.getvalue(), record)
    if fmt == "JPEG":
        picture.save(out, "JPEG", quality=quality, **options)
        return write_provenance(out.getvalue(), record)
    picture.save(out, "WEBP", quality=quality, method=4, xmp=xmp_packet(record), **options)
    return out.getvalue()


def export_result(
    saved: str | Path, fmt: object, quality: object, folder: str | Path, fallback: dict | None = None
) -> str:
    """Write the saved result as `fmt` at `quality` into a new folder under `folder`; return the
    file's path (named after the saved file). `fallback` holds `build_provenance` arguments for a
    result saved without a label. Raises ExportError (see `checked`). File and CPU work: run it in a
    worker thread."""
    if fmt not in FORMATS:  # before any decoding
        raise ExportError("export_format")
    with Image.open(saved) as opened:
        icc = opened.info.get("icc_profile")
        picture = ImageOps.exif_transpose(opened)  # upright: the new file carries no orientation
        picture.load()
    picture.info = {}  # our own copy: cleared here, so `encode` need not copy 12 MP again
    fmt, quality = checked(fmt, quality, picture.size)
    record = read_provenance(saved) or build_provenance(**(fallback or {}))
    data = encode(picture, fmt, quality, record, icc)
    target = Path(folder) / "juhe-export" / secrets.token_hex(16) / (Path(saved).stem + FORMATS[fmt])
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    return str(target)
