"""Turn one user image into the data URI (or URL) the provider accepts, within a byte budget.

Pure CPU work with no I/O beyond reading a local file; the async client runs it in a thread.
"""

from __future__ import annotations

import base64
import io
import math
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, UnidentifiedImageError

from ._exceptions import InvalidRequestError

# The provider's formats; the mime must match the bytes.
SUPPORTED_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
}
MAX_PIXELS = 80_000_000  # a 30000x30000 "bomb" is refused from its header, before decoding
MAX_INPUT_BYTES = 64 * 1024 * 1024
JPEG_QUALITIES = (90, 85, 78, 70, 60)
WEBP_QUALITIES = (90, 80, 70, 60)
ORIENTATION_TAG = 0x0112
# EXIF orientation -> the turn that makes the image upright (as ImageOps.exif_transpose does)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes sent unchanged. CMYK and 16-bit inputs are re-encoded: many decoders misread CMYK JPEGs,
# and a plain 8-bit conversion clips 16-bit greyscale to white.
PASSTHROUGH_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")

ImageInput = Any  # str path or URL or data URI, os.PathLike, bytes, or PIL.Image.Image

# Re-encoding a 12-MP photo holds about 70 MB of pixels and a whole core for a moment. Running more
# of them at once than there are cores is no faster and only adds memory, so in this process at
# most one per core runs at a time, however many requests or threads ask.
_REENCODE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)


@dataclass(frozen=True)
class PreparedImage:
    """One image ready for the form: `value` is a URL or `data:{mime};base64,...`."""

    value: str
    mime: str | None  # None for a URL
    width: int | None
    height: int | None
    passthrough: bool  # True when the caller's bytes are sent unchanged
    source_bytes: int  # size of the input as given


def invalid(zh: str, en: str) -> InvalidRequestError:
    """A local validation error with a bilingual message."""
    return InvalidRequestError(f"invalid request: {zh} / {en}")


def sniff_format(data: bytes) -> str | None:
    """Name the image format from its first bytes, never from a file name."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def is_url(value: str) -> bool:
    """True for an http(s) link, which is passed to the provider untouched."""
    return value.lower().startswith(("http://", "https://"))


def read_input(item: ImageInput) -> tuple[bytes | None, Image.Image | None, str | None]:
    """Return (bytes, PIL image, URL): exactly one is set. Raises on what is not an image input."""
    if isinstance(item, Image.Image):
        return None, item, None
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item), None, None
    if isinstance(item, str) and item.startswith("data:"):
        header, _, payload = item.partition(",")
        if ";base64" not in header:
            raise invalid("data URI 必须是 base64", "a data URI must be data:{mime};base64,{data}")
        try:
            return base64.b64decode(payload, validate=True), None, None
        except ValueError:
            raise invalid("data URI 中的 base64 无效", "the data URI holds invalid base64") from None
    if isinstance(item, str) and "://" in item[:12]:
        if is_url(item):
            return None, None, item
        scheme = item.split("://", 1)[0]
        raise invalid(f"不支持的链接协议 {scheme}://", f"only http(s) links are accepted, not {scheme}://")
    if isinstance(item, str) and item.lower().startswith(("javascript:", "file:", "ftp:")):
        raise invalid("不支持的链接协议", "only http(s) links are accepted")
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise invalid(f"找不到图片文件 {path}", f"no image file at {path}")
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise invalid("图片文件过大", f"{path.name} is {size} bytes; at most {MAX_INPUT_BYTES} are read")
        return path.read_bytes(), None, None
    raise invalid(
        "不支持的图片类型",
        f"an image must be a path, bytes, a PIL image, an http(s) URL or a data URI, "
        f"not {type(item).__name__}",
    )


def open_image(data: bytes) -> Image.Image:
    """Open bytes as an image, reading the header only; refuse non-images and bombs."""
    if not data:
        raise invalid("图片文件为空", "the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise invalid("图片像素过多", f"the image has more than {MAX_PIXELS} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise invalid(
            "无法识别的图片", "not a readable image (JPEG, PNG, BMP, TIFF, WebP or GIF expected)"
        ) from None
    if image.width * image.height > MAX_PIXELS:
        raise invalid(
            "图片像素过多",
            f"the image is {image.width}x{image.height}; at most {MAX_PIXELS} pixels are accepted",
        )
    return image


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ORIENTATION_TAG, 1) or 1)
    except Exception:  # a broken EXIF block must not stop the edit
        return 1


def _check_decodes(image: Image.Image, data: bytes) -> None:
    """Catch truncated files: a JPEG that ends with its end-of-image marker is whole; other files
    are decoded (a JPEG at 1/8 scale, which still reads every byte of it)."""
    if image.format == "JPEG" and data.endswith(b"\xff\xd9"):
        return
    try:
        if image.format == "JPEG":
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
    except Exception:
        raise invalid("图片文件已损坏", "the image is truncated or corrupt") from None


def _has_transparency(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
        return alpha.getextrema()[0] < 255
    return False


def _normalise(image: Image.Image, max_side: int, *, owned: bool) -> tuple[Image.Image, bool]:
    """Upright, first frame, 8-bit RGB or RGBA, long side at most `max_side`.

    Scales before it turns and converts only a mode that differs, so a 12-MP photo is never copied
    at full size; an image not `owned` (the caller's) is copied rather than scaled in place.
    """
    image.seek(0)
    turn = _TRANSPOSE.get(_orientation(image))
    alpha = _has_transparency(image)
    if image.mode == "I;16" or image.mode.startswith("I"):
        # 16-bit greyscale: scale to 8 bits rather than clipping to white
        image = image.point(lambda v: v / 256).convert("L")
    target = "RGBA" if alpha else "RGB"
    if image.mode != target:
        image = image.convert(target)
    elif not owned:
        image = image.copy()
    if max(image.size) > max_side:
        # bicubic, not Lanczos: at these few-fold reductions the two look the same (and the model
        # works at about 1 MP), while Lanczos took 1.5x as long, the largest part of a 12-MP photo
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    if turn is not None:
        image = image.transpose(turn)
    return image, alpha


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        # progressive with optimised tables: about 7 % smaller than baseline at the same quality
        image.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    elif fmt == "PNG":
        image.save(out, "PNG", compress_level=6)
    else:
        image.save(out, "WEBP", quality=quality, method=4)
    return out.getvalue()


def _escaped_length(b64: bytes) -> int:
    """Length of base64 text once `+`, `/` and `=` are percent-escaped (each grows by 2)."""
    return len(b64) + 2 * (b64.count(b"+") + b64.count(b"/") + b64.count(b"="))


def _fits(data: bytes, mime: str, budget: int) -> str | None:
    """The data URI of `data` if its escaped form fits `budget`, else None."""
    b64 = base64.b64encode(data)
    head = f"data:{mime};base64,"
    head_length = len(quote(head, safe=""))
    # counting the escapes reads the whole text three times: skip it when even the worst case fits
    if head_length + 3 * len(b64) > budget and (
        len(b64) > budget or head_length + _escaped_length(b64) > budget
    ):
        return None
    return head + b64.decode("ascii")


def _encode_within(image: Image.Image, alpha: bool, budget: int) -> tuple[str, str, Image.Image]:
    """Encode, stepping quality then size down until the escaped data URI fits `budget`."""
    while True:
        attempts = (
            [("PNG", 100)] + [("WEBP", q) for q in WEBP_QUALITIES]
            if alpha
            else [("JPEG", q) for q in JPEG_QUALITIES]
        )
        for fmt, quality in attempts:
            uri = _fits(_encode(image, fmt, quality), SUPPORTED_MIME[fmt], budget)
            if uri is not None:
                return uri, SUPPORTED_MIME[fmt], image
        if max(image.size) <= 256:
            raise invalid("图片无法压缩到请求大小上限内", "the image cannot be made small enough")
        image = image.resize(
            (max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)), Image.Resampling.LANCZOS
        )


def prepare_image(item: ImageInput, *, max_side: int, budget: int) -> PreparedImage:
    """Validate one input and return it as the provider expects, at most `budget` escaped bytes."""
    data, image, url = read_input(item)
    if url is not None:
        return PreparedImage(url, None, None, None, True, len(url))
    fmt = None
    if image is None:
        image = open_image(data)
        fmt = sniff_format(data)
    if (
        fmt in SUPPORTED_MIME
        and fmt == image.format
        and image.mode in PASSTHROUGH_MODES
        and max(image.size) <= max_side
        and _orientation(image) == 1
        and not getattr(image, "is_animated", False)
    ):
        uri = _fits(data, SUPPORTED_MIME[fmt], budget)
        if uri is not None:
            width, height = image.size  # read first: the decode check may draft a JPEG at 1/8 scale
            _check_decodes(image, data)
            return PreparedImage(uri, SUPPORTED_MIME[fmt], width, height, True, len(data))
    with _REENCODE_SLOTS:
        try:
            scale = min(1.0, max_side / max(image.size))
            if image.format == "JPEG" and scale < 0.5:
                # decode at a reduced scale: a 12-MP photo needs only the pixels we keep
                image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
            normal, alpha = _normalise(image, max_side, owned=data is not None)
        except InvalidRequestError:
            raise
        except Exception:
            raise invalid("图片文件已损坏", "the image is truncated or corrupt") from None
        uri, mime, final = _encode_within(normal, alpha, budget)
    return PreparedImage(uri, mime, final.width, final.height, False, len(data or b""))
