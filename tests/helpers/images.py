"""Images the tests make and the measures they take of them: photo-like pixels, masks, encodings,
metadata, and the distance bands a region edit's changes are checked against."""

from __future__ import annotations

import io
import math
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from juhe._metadata import jpeg_segments


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth shading, soft shapes and sensor noise: how a photo behaves under JPEG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    img = np.stack([128 + 70 * np.sin(x * rng.uniform(3, 9) + rng.uniform(0, 6)) for _ in range(3)], axis=-1)
    img += (40 * np.cos(y * rng.uniform(2, 7)))[..., None]
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.03, 0.2)
        img += (np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)) * rng.uniform(-80, 80))[..., None]
    img += rng.normal(0, 4, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def ellipse_mask(size: tuple[int, int], box: tuple[int, int, int, int], mode: str = "L") -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return mask.convert(mode) if mode != "L" else mask


def decoded(data: bytes) -> np.ndarray:
    """An image file as the user sees it: upright, 8-bit RGB."""
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")).astype(int)


def _row_dilate(mask: np.ndarray, half: int) -> np.ndarray:
    """Each row's True pixels spread by `half` px either way (a running sum)."""
    width = mask.shape[1]
    padded = np.pad(mask.astype(np.int32), ((0, 0), (half + 1, half)))
    sums = np.cumsum(padded, axis=1)
    return (sums[:, 2 * half + 1 :] - sums[:, :width]) > 0


def within(mask: np.ndarray, radius: float) -> np.ndarray:
    """Pixels at Euclidean distance at most `radius` from a True pixel of `mask`."""
    height = mask.shape[0]
    out = np.zeros_like(mask)
    reach = int(radius)
    for dy in range(-reach, reach + 1):
        shifted = np.zeros_like(mask)
        if dy >= 0:
            shifted[dy:] = mask[: height - dy]
        else:
            shifted[:dy] = mask[-dy:]
        out |= _row_dilate(shifted, int(math.floor(math.sqrt(radius * radius - dy * dy))))
    return out


def within_box(mask: np.ndarray, reach: int) -> np.ndarray:
    """Pixels at Chebyshev distance at most `reach` from a True pixel."""
    return _row_dilate(_row_dilate(mask, reach).T, reach).T


def jpeg_errors(out: np.ndarray, before: np.ndarray, far: np.ndarray) -> tuple[float, int, float]:
    difference = np.abs(out - before)[far]
    identical = np.all(np.abs(out - before) == 0, axis=-1)[far].mean()
    return float(difference.mean()), int(difference.max()), float(identical)


GPS_IFD = 0x8825


ORIENTATION = 0x0112


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description creator="me"/></rdf:RDF></x:xmpmeta>'


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Phone 15"
    if orientation != 1:
        exif[ORIENTATION] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (31.0, 13.0, 44.5)
    gps[3] = "E"
    gps[4] = (121.0, 28.0, 9.25)
    return exif


def scan_data(data: bytes) -> list[bytes]:
    """The JPEG's tables, frame headers and entropy-coded data: everything that makes pixels."""
    keep = {0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD, 0xDA, 0}
    return [data[s:e] for m, s, e in jpeg_segments(data) if m in keep]


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` grey pixels and holds none: what `Image.open` reads (the
    header) of a huge image, in 60 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
