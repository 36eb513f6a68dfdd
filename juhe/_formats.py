"""What an image is, from its first bytes and its header: the format, the pixel bound, the turn that
makes it upright. Nothing here decodes pixels.

`_images` (preparing an input) and `_heic` (HEIF photos) both build on this module, and neither on
the other's internals, so the two import without a circle.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from ._exceptions import invalid
from ._metadata import ORIENTATION_TAG

# The one bound on an input's pixels, whatever its format, read from the header before decoding:
# a 48-MP phone photo (8064x6048) fits; decoded as RGBA it is at most 200 MB.
MAX_INPUT_PIXELS = 50_000_000
# ISO-BMFF brands (the `ftyp` box): HEVC-coded HEIF, generic HEIF, and AV1-coded AVIF
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})
AVIF_BRANDS = frozenset({b"avif", b"avis"})
MAX_FTYP_BYTES = 1024  # a real ftyp box lists a handful of brands
# EXIF orientation -> the turn that makes the image upright (as ImageOps.exif_transpose does)
UPRIGHT_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def sniff_format(head: bytes) -> str | None:
    """Name the format ("JPEG", "PNG", "BMP", "TIFF", "WEBP" or "GIF") from the first 12 bytes of a
    file, never from its name; None for anything else (see `sniff_heif` for HEIC/HEIF and AVIF)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def sniff_heif(head: bytes) -> str | None:
    """ "HEIF" or "AVIF" from the `ftyp` box that opens the file (of which at most the first
    `MAX_FTYP_BYTES` are read; 64 hold a phone photo's), None for anything else."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return None
    end = min(int.from_bytes(head[:4], "big"), len(head), MAX_FTYP_BYTES)
    major = head[8:12]
    brands = {major} | {head[i : i + 4] for i in range(16, end - 3, 4)}
    if major in AVIF_BRANDS or (major in GENERIC_BRANDS and brands & AVIF_BRANDS):
        return "AVIF"
    if brands & (HEIF_BRANDS | GENERIC_BRANDS):
        return "HEIF"
    return None


def open_image(data: bytes) -> Image.Image:
    """Open bytes as an image, reading the header only; refuse non-images and bombs."""
    if not data:
        raise invalid("图片文件为空", "the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # judged below against MAX_INPUT_PIXELS, whatever Pillow's process-wide limit warns at
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise invalid("图片像素过多", f"the image has more than {MAX_INPUT_PIXELS:,} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise invalid(
            "无法识别的图片", "not a readable image (JPEG, PNG, BMP, TIFF, WebP or GIF expected)"
        ) from None
    if image.width * image.height > MAX_INPUT_PIXELS:
        raise invalid(
            f"图片像素过多（{image.width}x{image.height}），最多 {MAX_INPUT_PIXELS:,} 像素，请先缩小",
            f"the image is {image.width}x{image.height}; at most {MAX_INPUT_PIXELS:,} pixels are "
            "accepted (a 48-MP phone photo fits): scale it down first",
        )
    return image


def read_orientation(image: Image.Image) -> int:
    """The image's EXIF orientation, 1 (as stored) to 8; 1 when it has none or a broken one."""
    try:
        return int(image.getexif().get(ORIENTATION_TAG, 1) or 1)
    except Exception:  # a broken EXIF block must not stop the edit: the pixels stay as stored
        return 1


def upright_turn(image: Image.Image) -> Image.Transpose | None:
    """The turn (`image.transpose(turn)`) that shows the image upright; None when it already is."""
    return UPRIGHT_TURNS.get(read_orientation(image))


def upright_size(image: Image.Image) -> tuple[int, int]:
    """Width and height of an image once its EXIF orientation is applied."""
    width, height = image.size
    return (height, width) if read_orientation(image) in (5, 6, 7, 8) else (width, height)
