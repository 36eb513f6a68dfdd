"""Strip privacy metadata (GPS, EXIF, XMP, IPTC, comments) from JPEG, PNG and WebP without
re-encoding: the file's segments or chunks are walked and the image data is copied byte for byte.

What stays is what decoding needs: JPEG tables and frames, the JFIF header (without its thumbnail),
the Adobe colour-transform segment and the ICC profile; PNG critical chunks and the colour and
transparency chunks; WebP image, alpha, animation and ICC chunks.

Orientation: the client sends only upright images, and a JPEG is passed through only when its EXIF
orientation is 1, so dropping the EXIF block changes nothing there (no EXIF means orientation 1).
A JPEG with another orientation keeps a minimal EXIF block holding that one tag, so it still
shows upright; nothing else of the original EXIF survives.

Pure functions on bytes; a malformed or unsupported file raises ValueError (the client turns it
into InvalidRequestError for an input; a result is then saved as it came, with a warning).
"""

from __future__ import annotations

import struct
import zlib

JPEG_SOI = b"\xff\xd8"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ORIENTATION_TAG = 0x0112
GPS_IFD_TAG = 0x8825

# JPEG markers that stand alone, without a length: TEM and RST0-7
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_SOS, _EOI, _APP0, _APP1, _APP2, _APP13, _APP14, _COM = 0xDA, 0xD9, 0xE0, 0xE1, 0xE2, 0xED, 0xEE, 0xFE
EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENSION_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"

# PNG ancillary chunks that describe how to show the pixels, and carry nothing about the person,
# the camera or the place. Every other ancillary chunk (eXIf, tEXt, zTXt, iTXt, tIME, and private
# ones such as Apple's iDOT or C2PA's caBX) is dropped; critical chunks are always kept.
PNG_KEPT = frozenset(
    {
        b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs", b"bKGD", b"hIST", b"sPLT",
        b"cICP", b"mDCV", b"cLLI", b"mDCv", b"cLLi",  # HDR colour (PNG 3rd edition, and draft names)
        b"acTL", b"fcTL", b"fdAT",  # APNG frames
    }
)  # fmt: skip
_PNG_NAMES = {b"eXIf": "EXIF", b"tIME": "modification time"}
_WEBP_DROPPED = {b"EXIF": "EXIF", b"XMP ": "XMP"}
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def _malformed(kind: str, why: str) -> ValueError:
    return ValueError(f"{kind} 文件结构损坏 / malformed {kind} file: {why}")


# --- JPEG -------------------------------------------------------------------------------------


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """Every marker segment of a JPEG as (marker, start, end), `start` at its 0xFF.

    Entropy-coded data after each SOS is its own item with marker 0 (start to the next marker).
    Fill bytes (extra 0xFF before a marker) belong to no item. Stops after EOI; bytes after it
    are not listed. Raises ValueError on a broken structure.
    """
    if not data.startswith(JPEG_SOI):
        raise _malformed("JPEG", "no start-of-image marker")
    items = [(0xD8, 0, 2)]
    pos, size = 2, len(data)
    while True:
        if pos >= size or data[pos] != 0xFF:
            raise _malformed("JPEG", f"no marker at byte {pos}")
        while pos < size and data[pos] == 0xFF:  # fill bytes may precede a marker
            pos += 1
        if pos >= size:
            raise _malformed("JPEG", "truncated before end-of-image")
        start = pos - 1
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            items.append((marker, start, pos))
            return items
        if marker in _STANDALONE:
            items.append((marker, start, pos))
            continue
        if pos + 2 > size:
            raise _malformed("JPEG", "truncated segment length")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > size:
            raise _malformed("JPEG", f"segment 0x{marker:02X} runs past the end")
        pos += length
        items.append((marker, start, pos))
        if marker == _SOS:
            scan = pos
            while True:  # entropy-coded data ends at the first 0xFF not followed by 0x00 or RSTn
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= size:
                    raise _malformed("JPEG", "scan data runs past the end")
                follower = data[pos + 1]
                if follower == 0x00 or 0xD0 <= follower <= 0xD7:
                    pos += 2
                    continue
                break
            items.append((0, scan, pos))


def _ifd0_tags(tiff: bytes) -> dict[int, int]:
    """Tag -> first SHORT/LONG value of IFD0 in a TIFF structure (EXIF); {} when unreadable."""
    if len(tiff) < 8 or tiff[:4] not in (b"MM\x00*", b"II*\x00"):
        return {}
    order = ">" if tiff[0] == ord("M") else "<"
    offset = struct.unpack_from(order + "I", tiff, 4)[0]
    if offset + 2 > len(tiff):
        return {}
    count = struct.unpack_from(order + "H", tiff, offset)[0]
    tags = {}
    for index in range(count):
        entry = offset + 2 + 12 * index
        if entry + 12 > len(tiff):
            break
        tag, kind = struct.unpack_from(order + "HH", tiff, entry)
        value_format = order + ("H" if kind == 3 else "I")
        tags[tag] = struct.unpack_from(value_format, tiff, entry + 8)[0]
    return tags


def _exif_label(tiff: bytes) -> str:
    return "EXIF, with GPS" if GPS_IFD_TAG in _ifd0_tags(tiff) else "EXIF"


def orientation_exif(orientation: int) -> bytes:
    """A minimal EXIF payload (for an APP1 segment) holding only the orientation tag."""
    ifd = struct.pack(">HHHIHH", 1, ORIENTATION_TAG, 3, 1, orientation, 0) + b"\x00\x00\x00\x00"
    return EXIF_HEADER + b"MM\x00*" + struct.pack(">I", 8) + ifd


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    """One JPEG marker segment; raises ValueError when `payload` is over the 65,533-byte limit."""
    if len(payload) > 0xFFFF - 2:
        raise ValueError(f"JPEG 段过长 / a JPEG segment holds at most 65533 bytes, not {len(payload)}")
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def _jfif_without_thumbnail(payload: bytes) -> bytes | None:
    """The JFIF header with its thumbnail removed, or None when it had none."""
    if len(payload) >= 14 and (payload[12] or payload[13]):
        return payload[:12] + b"\x00\x00"
    return None


def _kept_jpeg(marker: int, payload: bytes) -> tuple[bool, str]:
    """Whether a header segment stays, and what it is when it goes."""
    if marker == _APP0:
        label = "JFIF extension thumbnail" if payload.startswith(b"JFXX\x00") else "APP0"
        return payload.startswith(b"JFIF\x00"), label
    if marker == _APP1:
        if payload.startswith(EXIF_HEADER):
            return False, _exif_label(payload.removeprefix(EXIF_HEADER))
        if payload.startswith((XMP_HEADER, XMP_EXTENSION_HEADER)):
            return False, "XMP"
        return False, "APP1"
    if marker == _APP2:
        if payload.startswith(b"ICC_PROFILE\x00"):
            return True, ""
        return False, "MPF (more images)" if payload.startswith(b"MPF\x00") else "APP2"
    if marker == _APP14:
        return payload.startswith(b"Adobe"), "APP14"  # Adobe's segment says how to convert colours
    if marker == _APP13:
        return False, "IPTC/Photoshop"
    if 0xE3 <= marker <= 0xEF:
        return False, f"APP{marker - 0xE0}"
    if marker == _COM:
        return False, "comment"
    return True, ""


def strip_jpeg(data: bytes) -> tuple[bytes, list[str]]:
    """Drop every metadata segment of a JPEG; tables, frames and scan data stay byte-identical."""
    out: list[bytes] = []
    removed: list[str] = []
    orientation = 1
    insert_at = 1  # where a minimal EXIF goes: after SOI and JFIF
    items = jpeg_segments(data)
    for marker, start, end in items:
        if marker in (0, 0xD8, _EOI, _SOS) or marker in _STANDALONE:
            out.append(data[start:end])
            continue
        payload = data[start + 4 : end]
        keep, label = _kept_jpeg(marker, payload)
        if marker == _APP1 and payload.startswith(EXIF_HEADER):
            orientation = _ifd0_tags(payload.removeprefix(EXIF_HEADER)).get(ORIENTATION_TAG, 1)
        if keep:
            if marker == _APP0 and (bare := _jfif_without_thumbnail(payload)) is not None:
                out.append(jpeg_segment(marker, bare))
                removed.append("JFIF thumbnail")
            else:
                out.append(data[start:end])
            if marker == _APP0 and len(out) == 2:
                insert_at = 2
        else:
            removed.append(f"{label} ({end - start} bytes)")
    trailing = len(data) - items[-1][2]
    if trailing:
        removed.append(f"data after the image, e.g. more images ({trailing} bytes)")
    if 2 <= orientation <= 8:
        out.insert(insert_at, jpeg_segment(_APP1, orientation_exif(orientation)))
        removed.append(f"EXIF kept only its orientation ({orientation})")
    return b"".join(out), removed


# --- PNG --------------------------------------------------------------------------------------


def png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """Every chunk of a PNG as (type, start, end), through IEND. Raises ValueError if broken."""
    if not data.startswith(PNG_SIGNATURE):
        raise _malformed("PNG", "no PNG signature")
    chunks = []
    pos, size = len(PNG_SIGNATURE), len(data)
    while True:
        if pos + 12 > size:
            raise _malformed("PNG", "truncated before IEND")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > size or not kind.isalpha():
            raise _malformed("PNG", f"chunk at byte {pos} is broken")
        chunks.append((kind, pos, end))
        pos = end
        if kind == b"IEND":
            return chunks


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")


def _png_label(kind: bytes, payload: bytes) -> str:
    if kind in (b"tEXt", b"zTXt", b"iTXt"):
        keyword = payload.split(b"\x00", 1)[0][:79].decode("latin-1")
        return "XMP" if keyword == "XML:com.adobe.xmp" else f"text '{keyword}'"
    if kind == b"eXIf":
        return _exif_label(payload)
    return _PNG_NAMES.get(kind, f"chunk {kind.decode('latin-1')}")


def strip_png(data: bytes) -> tuple[bytes, list[str]]:
    """Drop eXIf, text, time and unknown ancillary chunks; image and colour chunks stay verbatim."""
    out = [PNG_SIGNATURE]
    removed = []
    chunks = png_chunks(data)
    for kind, start, end in chunks:
        critical = not kind[0] & 0x20
        if critical or kind in PNG_KEPT:
            out.append(data[start:end])
        else:
            removed.append(f"{_png_label(kind, data[start + 8 : end - 4])} ({end - start} bytes)")
    trailing = len(data) - chunks[-1][2]
    if trailing:
        removed.append(f"data after the image ({trailing} bytes)")
    return b"".join(out), removed


# --- WebP -------------------------------------------------------------------------------------


def strip_webp(data: bytes) -> tuple[bytes, list[str]]:
    """Drop the EXIF and XMP chunks of a WebP and clear their flags; image chunks stay verbatim."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise _malformed("WebP", "no RIFF/WEBP header")
    end_of_riff = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    out = []
    removed = []
    pos = 12
    while pos < end_of_riff:
        if pos + 8 > end_of_riff:
            raise _malformed("WebP", "truncated chunk header")
        kind = data[pos : pos + 4]
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + length + (length & 1)  # chunks are padded to an even size
        if end > end_of_riff:
            raise _malformed("WebP", f"chunk {kind!r} runs past the end")
        if kind in _WEBP_DROPPED:
            label = _WEBP_DROPPED[kind]
            if kind == b"EXIF":
                payload = data[pos + 8 : pos + 8 + length]
                label = _exif_label(payload.removeprefix(EXIF_HEADER))
            removed.append(f"{label} ({end - pos} bytes)")
        elif kind == b"VP8X" and length >= 1:
            chunk = bytearray(data[pos:end])
            chunk[8] &= ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
            out.append(bytes(chunk))
        else:
            out.append(data[pos:end])
        pos = end
    trailing = len(data) - end_of_riff
    if trailing:
        removed.append(f"data after the image ({trailing} bytes)")
    body = b"WEBP" + b"".join(out)
    return b"RIFF" + len(body).to_bytes(4, "little") + body, removed


# --- any --------------------------------------------------------------------------------------


def strip_metadata(data: bytes) -> tuple[bytes, list[str]]:
    """Return the image without privacy metadata, and what was removed (for the sidecar).

    JPEG, PNG and WebP are rewritten segment by segment, their image data untouched; BMP carries
    no such metadata and comes back unchanged. Any other format (TIFF, GIF, HEIC) raises
    ValueError: it must be re-encoded instead.
    """
    if data.startswith(JPEG_SOI):
        return strip_jpeg(data)
    if data.startswith(PNG_SIGNATURE):
        return strip_png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return strip_webp(data)
    if data.startswith(b"BM"):
        return data, []
    raise ValueError(
        "无法在不重新编码的情况下删除此格式的元数据 / metadata can be stripped in place only from "
        "JPEG, PNG and WebP; re-encode other formats"
    )
