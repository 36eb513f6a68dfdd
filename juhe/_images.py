"""Turn one user image into the data URI (or URL) the provider accepts, within a byte budget.

Pure CPU work with no I/O beyond reading a local file; the async client runs it in a thread.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image

from ._exceptions import InvalidRequestError, invalid
from ._formats import open_image, read_orientation, sniff_format, sniff_heif, upright_turn
from ._heic import heif_size, heif_to_jpeg
from ._metadata import strip_metadata
from ._urls import is_http_url

# The provider's formats; the mime must match the bytes.
SUPPORTED_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
}
MAX_INPUT_BYTES = 64 * 1024 * 1024
# Decoded pixels all preparations in this process may hold at once; one larger image runs alone.
DECODE_MEMORY_BYTES = 256 * 1024 * 1024
# Decoding a HEIF photo holds libheif's buffer and the reduced copy: a 48-MP photo peaked at
# 287 MB (tests/benchmarks/heic.py), about 6 bytes a pixel.
HEIF_BYTES_PER_PIXEL = 6
# Pixels of one band when a large image is converted and reduced a band at a time.
STRIP_PIXELS = 2_000_000
# Pillow allocates pixels in blocks of 16 MB by default, which glibc serves from the heap of the
# thread that asked and keeps there once freed: two threads that had each decoded a 49-MP PNG held
# 460 MB between them. Blocks over 32 MB are mapped, and go back to the system when freed.
LARGE_IMAGE_BLOCK_BYTES = 64 * 1024 * 1024
JPEG_QUALITIES = (90, 85, 78, 70, 60)
WEBP_QUALITIES = (90, 80, 70, 60)
# TIFF tags that describe the person, the camera, the place or the file's history: a TIFF holding
# any of them is re-encoded rather than sent as it is (its other tags only say how to read pixels).
TIFF_METADATA_TAGS = {
    270: "ImageDescription",
    271: "Make",
    272: "Model",
    305: "Software",
    306: "DateTime",
    315: "Artist",
    316: "HostComputer",
    700: "XMP",
    33432: "Copyright",
    33723: "IPTC",
    34377: "Photoshop",
    34665: "EXIF",
    34853: "GPS",
    37724: "ImageSourceData",
}
# Modes sent unchanged. CMYK and 16-bit inputs are re-encoded: many decoders misread CMYK JPEGs,
# and a plain 8-bit conversion clips 16-bit greyscale to white.
PASSTHROUGH_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")

ImageInput = Any  # str path or URL or data URI, os.PathLike, bytes, or PIL.Image.Image

# Re-encoding a 12-MP photo holds about 70 MB of pixels and a whole core for a moment. Running more
# of them at once than there are cores is no faster and only adds memory, so in this process at
# most one per core runs at a time, however many requests or threads ask (or this process's share
# of the cores, when several share the work: `share_image_work`).
_REENCODE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)


class _MemoryBudget:
    """Bytes of decoded pixels the preparations of this process hold at once, however many run."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Wait until `nbytes` (at most the whole budget) are free, and hold them inside."""
        nbytes = min(nbytes, self.total)
        with self._changed:
            self._changed.wait_for(lambda: self.free >= nbytes)
            self.free -= nbytes
        try:
            yield
        finally:
            with self._changed:
                self.free += nbytes
                self._changed.notify_all()


_DECODE_MEMORY = _MemoryBudget(DECODE_MEMORY_BYTES)


def share_image_work(parts: int) -> None:
    """Make this process's decode budget `DECODE_MEMORY_BYTES` / `parts`, and its re-encodes at once
    the cores / `parts` (at least one): for one of `parts` processes that prepare images side by
    side (the web app's edit processes), so that together they hold and run no more than one
    process alone. Call before any image work."""
    global _DECODE_MEMORY, _REENCODE_SLOTS
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    _DECODE_MEMORY = _MemoryBudget(DECODE_MEMORY_BYTES // parts)
    _REENCODE_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 1) // parts))


@contextlib.contextmanager
def pixel_work(nbytes: int) -> Iterator[None]:
    """Hold `nbytes` of the process's decode budget and one core's slot for some image work.

    For work beside `prepare_image` (a region's crop and stitch, a resized result); never call
    `prepare_image` inside it, which takes its own share.
    """
    with _DECODE_MEMORY.hold(nbytes), _REENCODE_SLOTS:
        yield


@dataclass(frozen=True)
class PreparedImage:
    """One image ready for the form: `value` is a URL or `data:{mime};base64,...`."""

    value: str
    mime: str | None  # None for a URL
    width: int | None
    height: int | None
    passthrough: bool  # True when the caller's pixels are sent unchanged (metadata stripped)
    source_bytes: int  # size of the input as given
    source_format: str | None = None  # of the input's bytes: "JPEG", "HEIF", ...; None for PIL or a link
    metadata_removed: tuple[str, ...] = ()  # what the input held that was not sent


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
        if is_http_url(item):
            return None, None, item
        scheme = item.split("://", 1)[0]
        if scheme.lower() in ("http", "https"):
            raise invalid("图片链接无效", "the image link is not a valid http(s) URL with a host")
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


def _may_have_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _to_mode(image: Image.Image, target: str) -> Image.Image:
    """`image` in `target` mode; 16-bit greyscale is scaled to 8 bits rather than clipped to white."""
    if image.mode.startswith("I"):
        image = image.point(lambda v: v / 256).convert("L")
    return image if image.mode == target else image.convert(target)


def _is_transparent(image: Image.Image) -> bool:
    return image.mode == "RGBA" and image.getchannel("A").getextrema()[0] < 255


def _reduce_in_bands(image: Image.Image, factor: int, target: str) -> Image.Image:
    """`image` in `target` mode, box-reduced by `factor`, a band of rows at a time.

    Converting a 50-MP image whole would hold a second full-size copy (200 MB as RGBA); in bands of
    whole boxes the result is the same and only the decoded image is ever held at full size.
    """
    width, height = image.size
    out = Image.new(target, (-(-width // factor), -(-height // factor)))
    rows = max(1, STRIP_PIXELS // (width * factor)) * factor
    for top in range(0, height, rows):
        band = _to_mode(image.crop((0, top, width, min(height, top + rows))), target)
        out.paste(band.reduce(factor), (0, top // factor))
    return out


def _normalise(image: Image.Image, max_side: int, *, owned: bool) -> tuple[Image.Image, bool]:
    """Upright, first frame, 8-bit RGB or RGBA, long side at most `max_side`.

    An image at least twice `max_side` is first box-reduced a band at a time (`_reduce_in_bands`),
    so no full-size copy is made; a smaller one is converted whole. Transparency is judged on the
    converted pixels; an image not `owned` (the caller's) is copied rather than scaled in place.
    """
    image.seek(0)
    turn = upright_turn(image)
    target = "RGBA" if _may_have_alpha(image) else "RGB"
    factor = max(image.size) // max_side
    if factor >= 2:
        if Image.core.get_block_size() < LARGE_IMAGE_BLOCK_BYTES:  # before the image is decoded
            Image.core.set_block_size(LARGE_IMAGE_BLOCK_BYTES)
        reduced = _reduce_in_bands(image, factor, target)
        if owned:
            image.close()  # frees the decoded full-size pixels now, before the final scaling
        image = reduced
    elif image.mode != target or image.mode.startswith("I"):
        image = _to_mode(image, target)
    elif not owned:
        image = image.copy()
    alpha = _is_transparent(image)
    if target == "RGBA" and not alpha:
        image = image.convert("RGB")
    if max(image.size) > max_side:
        # bicubic, not Lanczos: at these few-fold reductions the two look the same (and the model
        # works at about 1 MP), while Lanczos took 1.5x as long, the largest part of a 12-MP photo
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    if turn is not None:
        image = image.transpose(turn)
    image.info = {k: v for k, v in image.info.items() if k == "icc_profile"}  # no EXIF, XMP or comment
    return image, alpha


def _working_bytes(image: Image.Image, max_side: int) -> int:
    """About the most memory `_normalise` holds for `image`: a reduced image is decoded and then
    banded (4 bytes a pixel at most); a smaller one may be held in three modes at once."""
    pixels = image.width * image.height
    return 4 * pixels if max(image.size) >= 2 * max_side else 12 * pixels


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


def _tiff_metadata(image: Image.Image) -> list[str]:
    tags = getattr(image, "tag_v2", None) or {}
    return [f"TIFF {name}" for tag, name in TIFF_METADATA_TAGS.items() if tag in tags]


def _without_metadata(data: bytes | None, image: Image.Image) -> tuple[bytes | None, list[str]]:
    """The input's bytes without privacy metadata, and what that removed; None where only a
    re-encode can drop it (a TIFF with such tags, GIF, or a PIL image, which has no bytes)."""
    if data is None:
        return None, [name.upper() for name in ("exif", "xmp", "comment") if image.info.get(name)]
    if image.format == "TIFF":
        found = _tiff_metadata(image)
        return (None if found else data), found
    try:
        return strip_metadata(data)
    except ValueError:
        return None, []


def _prepare_heif(data: bytes, *, max_side: int, budget: int) -> PreparedImage:
    """A HEIC/HEIF photo turned upright into a JPEG of at most `max_side`, then prepared as one."""
    width, height = heif_size(data)  # from the header: over MAX_INPUT_PIXELS is refused here
    with pixel_work(HEIF_BYTES_PER_PIXEL * width * height):
        jpeg = heif_to_jpeg(data, max_side=max_side)
    prepared = prepare_image(jpeg, max_side=max_side, budget=budget)
    return replace(
        prepared,
        passthrough=False,
        source_bytes=len(data),
        source_format="HEIF",
        metadata_removed=("EXIF and XMP, if any (converted to JPEG: only the ICC profile kept)",),
    )


def prepare_image(item: ImageInput, *, max_side: int, budget: int) -> PreparedImage:
    """Validate one input and return it as the provider expects, at most `budget` escaped bytes.

    A compliant JPEG, PNG, WebP or BMP is sent with its pixels byte for byte and its metadata
    (EXIF with GPS, XMP, comments, ...) stripped; anything else is re-encoded, which carries none.
    A HEIC/HEIF photo is turned upright and sent as JPEG.
    """
    data, image, url = read_input(item)
    if url is not None:
        return PreparedImage(url, None, None, None, True, len(url))
    if data is not None and sniff_heif(data) == "HEIF":  # AVIF is opened by Pillow, where built with it
        return _prepare_heif(data, max_side=max_side, budget=budget)
    fmt = None
    if image is None:
        image = open_image(data)
        fmt = sniff_format(data)
    clean, removed = _without_metadata(data, image)
    if (
        clean is not None
        and fmt in SUPPORTED_MIME
        and fmt == image.format
        and image.mode in PASSTHROUGH_MODES
        and max(image.size) <= max_side
        and read_orientation(image) == 1
        and not getattr(image, "is_animated", False)
    ):
        uri = _fits(clean, SUPPORTED_MIME[fmt], budget)
        if uri is not None:
            width, height = image.size  # read first: the decode check may draft a JPEG at 1/8 scale
            _check_decodes(image, data)
            return PreparedImage(
                uri, SUPPORTED_MIME[fmt], width, height, True, len(data), fmt, tuple(removed)
            )
    # re-encoded: none of it is sent (a JPEG's orientation is applied to the pixels, not kept)
    removed = [note for note in removed if not note.startswith("EXIF kept only its orientation")]
    source_format = (fmt or image.format) if data is not None else None
    scale = min(1.0, max_side / max(image.size))
    if image.format == "JPEG" and scale < 0.5:
        # decode at a reduced scale: a 12-MP photo needs only the pixels we keep
        image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
    with _DECODE_MEMORY.hold(_working_bytes(image, max_side)), _REENCODE_SLOTS:
        try:  # pixels are decoded lazily, so a truncated file may fail as late as the encoding
            normal, alpha = _normalise(image, max_side, owned=data is not None)
            uri, mime, final = _encode_within(normal, alpha, budget)
        except InvalidRequestError:
            raise
        except Exception:
            raise invalid("图片文件已损坏", "the image is truncated or corrupt") from None
    return PreparedImage(
        uri, mime, final.width, final.height, False, len(data or b""), source_format, tuple(removed)
    )
