"""Saving result images: check the bytes, pick names that never overwrite, write a sidecar.

Pure file-system work; the clients fetch the bytes and call these.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from PIL import Image

from ._exceptions import DownloadError
from ._images import sniff_format
from ._models import EditResult, now_iso

MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


def public_link(url: str) -> str:
    """The link without its query string, which holds the storage signature."""
    parts = _split(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts else "<invalid link>"


def download_error(result: EditResult, url: str, why: str) -> DownloadError:
    """A bilingual error naming the order and the link, for a result that could not be saved."""
    return DownloadError(
        f"download failed: 结果图片下载失败 (订单 {result.order_id}) / could not save the result of "
        f"order {result.order_id} from {public_link(url)}: {why}",
        order_id=result.order_id,
    )


def check_url(result: EditResult, url: str) -> None:
    """Only well-formed http(s) result links are fetched."""
    parts = _split(url)
    if parts is None or parts.scheme not in ("http", "https"):
        raise download_error(result, url, "only well-formed http(s) links are fetched")


def check_image(result: EditResult, url: str, data: bytes) -> str:
    """Return the format of downloaded bytes, or raise if they are not a whole image."""
    fmt = sniff_format(data)
    if fmt is None:
        raise download_error(result, url, "the link did not return an image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception:
        raise download_error(result, url, "the image is corrupt or truncated") from None
    return fmt


def _safe_stem(order_id: str) -> str:
    stem = "".join(c for c in order_id if c.isalnum() or c in "-_")[:64]
    return stem or "result"


def _write_new(directory: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write `data` to a fresh name (stem, stem-2, ...) atomically; never replace a file."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".partial-", suffix=suffix)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        n = 1
        while True:
            target = directory / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
            try:
                os.link(tmp, target)  # fails if the name exists: no overwrite, no race
                return target
            except FileExistsError:
                n += 1
    finally:
        os.unlink(tmp)


def save_result(
    result: EditResult,
    directory: str | os.PathLike,
    images: list[tuple[str, bytes, str]],
    stem: str | None = None,
) -> list[Path]:
    """Write each (url, bytes, format) and the JSON sidecar; return the image paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    stem = _safe_stem(stem or result.order_id)
    paths = []
    for index, (_url, data, fmt) in enumerate(images, start=1):
        name = stem if len(images) == 1 else f"{stem}_{index}"
        paths.append(_write_new(folder, name, EXTENSIONS.get(fmt, ".img"), data))
    sidecar = {
        **result.to_dict(),
        "downloaded_at": now_iso(),
        "files": [p.name for p in paths],
    }
    _write_new(folder, paths[0].stem, ".json", json.dumps(sidecar, ensure_ascii=False, indent=2).encode())
    return paths
