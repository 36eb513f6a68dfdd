"""HEIC/HEIF photos (the iPhone's default) and AVIF: recognised from their bytes, opened upright,
and turned into JPEG for the provider, which takes neither.

pillow-heif is imported on the first HEIF file, so users who never send one pay nothing for it.
AVIF is decoded by Pillow itself where it was built with libavif (this build's pillow-heif has
no AV1 decoder).
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, features

from ._exceptions import invalid
from ._formats import MAX_INPUT_PIXELS, open_image, sniff_heif

HEIF_JPEG_QUALITY = 90  # the first quality the client tries for a photo
HEIF_BAND_ROWS = 128  # output rows per band when a large HEIF is shrunk while it is read


def _open_heif_file(data: bytes, max_pixels: int):
    """The HEIF container with its size checked; nothing is decoded yet."""
    import pillow_heif  # imported here: its native library loads only when a HEIF file comes

    heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    width, height = heif.size  # from the header; libheif reports it already turned upright
    if width * height > max_pixels:
        raise invalid(
            "图片像素过多",
            f"the HEIF image is {width}x{height}; at most {max_pixels} pixels are accepted",
        )
    return heif


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "RGBA"):
        return image
    return image.convert("RGBA" if "A" in image.mode or "a" in image.mode else "RGB")


def _decode_heif(data: bytes, max_pixels: int, max_side: int | None) -> Image.Image:
    """Decode the primary image upright; shrink it to `max_side` band by band when asked.

    libheif decodes into one buffer (146 MB for a 48-MP photo) and applies the file's rotation
    and mirroring (irot/imir). Pillow keeps RGB at 4 bytes a pixel, so turning that buffer into
    one Pillow image is a second full-size copy (195 MB): when the image is to be shrunk, it is
    read in bands of rows, each box-reduced at once, and no full-size Pillow image exists.
    """
    try:
        heif = _open_heif_file(data, max_pixels)
        (width, height), mode, stride = heif.size, heif.mode, heif.stride  # .stride decodes
        pixels = memoryview(heif.data)
        factor = max(1, max(width, height) // max_side) if max_side else 1
        if factor == 1:
            image = Image.frombuffer(mode, (width, height), pixels, "raw", mode, stride, 1)
        else:
            image = Image.new(mode, (-(-width // factor), -(-height // factor)))
            rows = factor * HEIF_BAND_ROWS  # a multiple of the factor: bands reduce exactly as a whole
            for top in range(0, height, rows):
                count = min(rows, height - top)
                band = pixels[top * stride : (top + count) * stride]
                strip = Image.frombuffer(mode, (width, count), band, "raw", mode, stride, 1)
                image.paste(strip.reduce(factor), (0, top // factor))
        icc = heif.info.get("icc_profile")
    except (ValueError, EOFError, SyntaxError, RuntimeError, OSError):
        raise invalid(
            "HEIF 图片无法解码", "the HEIC/HEIF image is corrupt or uses an unsupported feature"
        ) from None
    image = _rgb(image)
    image.info = {"icc_profile": icc} if icc else {}
    return image


def _decode_avif(data: bytes) -> Image.Image:
    if not features.check("avif"):
        raise invalid("不支持 AVIF 图片", "AVIF images are not supported by this installation of Pillow")
    image = open_image(data)
    try:
        upright = ImageOps.exif_transpose(image)
        icc = image.info.get("icc_profile")
        upright = upright.convert("RGBA" if "A" in upright.mode else "RGB")
    except Exception:
        raise invalid("AVIF 图片无法解码", "the AVIF image is corrupt") from None
    upright.info = {"icc_profile": icc} if icc else {}
    return upright


def open_heif(data: bytes, *, max_pixels: int = MAX_INPUT_PIXELS, max_side: int | None = None) -> Image.Image:
    """Decode a HEIC/HEIF or AVIF image upright, as 8-bit RGB or RGBA.

    With `max_side`, a HEIF image is box-reduced while it is read by the whole factor that keeps
    its long side at least `max_side` (a 48-MP photo is never held twice at full size); the
    caller finishes the scaling. Only the ICC profile is kept in `info`: EXIF (GPS included) and
    XMP are dropped. Raises InvalidRequestError for other bytes, a corrupt file, or more than
    `max_pixels` pixels (checked from the header, before decoding).
    """
    kind = sniff_heif(data)
    if kind == "HEIF":
        return _decode_heif(data, max_pixels, max_side)
    if kind == "AVIF":
        return _decode_avif(data)
    raise invalid("不是 HEIC/HEIF/AVIF 图片", "not a HEIC, HEIF or AVIF image")


def heif_to_jpeg(data: bytes, *, max_side: int | None = None, quality: int = HEIF_JPEG_QUALITY) -> bytes:
    """The image as an upright JPEG, long side at most `max_side`, without metadata but its ICC.

    Transparency is flattened onto white. For sending (`max_side` 2048) and for page previews.
    """
    image = open_heif(data, max_side=max_side)
    if max_side and max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    icc = image.info.get("icc_profile")
    if image.mode == "RGBA":
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True, icc_profile=icc)
    return out.getvalue()


def heif_size(data: bytes, *, max_pixels: int = MAX_INPUT_PIXELS) -> tuple[int, int]:
    """Upright width and height of a HEIC/HEIF image, from its header (nothing is decoded).

    Raises InvalidRequestError for a corrupt file or more than `max_pixels` pixels.
    """
    try:
        return _open_heif_file(data, max_pixels).size
    except (ValueError, EOFError, SyntaxError, RuntimeError, OSError):
        raise invalid("HEIF 图片无法读取", "the HEIC/HEIF image is corrupt") from None
