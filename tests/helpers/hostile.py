"""Hostile files: markup posing as images, decompression bombs, truncated and animated images."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.images import encode

HTML = b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)>hello</body></html>"


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b'<script>alert(1)</script><rect width="64" height="64" fill="red"/></svg>'
)


RED, BLUE = (255, 0, 0), (0, 0, 255)


def png_declaring(width: int, height: int) -> bytes:
    """A few-KB PNG whose header declares `width` x `height` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" + b"\x00" * width, 9) * 2
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"tEXt", b"Comment\x00" + b"bomb " * 400)
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )


def truncated_jpeg() -> bytes:
    noise = np.random.default_rng(7).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG", quality=90)
    return data[: len(data) // 2]


def animated(fmt: str) -> bytes:
    """Two frames, red then blue: only the first may reach the provider."""
    frames = [Image.new("RGB", (96, 64), color) for color in (RED, BLUE)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def reddish(pixel) -> bool:
    r, g, b = pixel[:3]
    return r > 200 and g < 60 and b < 60
