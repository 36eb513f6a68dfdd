"""Saving result images: check the bytes, pick names that never overwrite, write a sidecar.

Pure file-system work; the clients fetch the bytes and hand them to a `ResultSaver`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from PIL import Image

from ._exceptions import DownloadError, download_error
from ._formats import sniff_format
from ._models import EditResult, now_iso
from ._precise import PROVIDER_SUFFIX, finish_image
from ._urls import is_http_url

logger = logging.getLogger("juhe")

MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024  # a 2048x2048 RGBA PNG of pure noise is 16 MB
# The model returns about 1 MP, and the largest size one can ask for is 2048x2048 (4.2 MP).
MAX_RESULT_PIXELS = 5_000_000
MAX_STEM_BYTES = 128  # UTF-8 bytes of a file name's stem; names may take 255 on most file systems
# What a result image is saved as, by its format; one in any other format (none passes
# `check_image` today) as OTHER_EXTENSION
RESULT_EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}
)
OTHER_EXTENSION = ".img"


def check_url(result: EditResult, url: str) -> None:
    """Only well-formed http(s) result links are fetched."""
    if not is_http_url(url):
        raise download_error(result.order_id, url, "only well-formed http(s) links are fetched")


def check_image(result: EditResult, url: str, data: bytes) -> str:
    """Return the format of downloaded bytes, or raise unless they are one whole image of at most
    `MAX_RESULT_PIXELS` pixels (judged from the header, before any decoding)."""
    fmt = sniff_format(data)
    if fmt is None:
        raise download_error(result.order_id, url, "the link did not return an image")
    too_many = f"more than {MAX_RESULT_PIXELS:,} pixels (the model returns about 1 MP)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise download_error(result.order_id, url, f"the image has {too_many}") from None
    except Exception:
        raise download_error(result.order_id, url, "the image is corrupt or truncated") from None
    with image:
        if image.width * image.height > MAX_RESULT_PIXELS:
            raise download_error(
                result.order_id, url, f"the image is {image.width}x{image.height}, {too_many}"
            )
        try:
            image.verify()
        except Exception:
            raise download_error(result.order_id, url, "the image is corrupt or truncated") from None
    return fmt


def safe_stem(name: str) -> str:
    """Letters, digits, `-` and `_` of `name`, cut to `MAX_STEM_BYTES` UTF-8 bytes; "result" if none."""
    kept = "".join(c for c in name if c.isalnum() or c in "-_")  # a lone surrogate is not alnum
    return kept.encode("utf-8")[:MAX_STEM_BYTES].decode("utf-8", "ignore") or "result"


def _write_files(directory: Path, stem: str, files: list[tuple[str, bytes]]) -> list[Path]:
    """Write each (name ending, data) under the first free stem (stem, stem-2, ...) atomically;
    never replace a file. The files of one call share their stem: `JH1.png` and
    `JH1_provider.png`, or `JH1-2.png` and `JH1-2_provider.png`."""
    temporary = []
    try:
        for ending, data in files:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".partial-", suffix=Path(ending).suffix)
            temporary.append(tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are ordinary files
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        n = 1
        while True:
            name = stem if n == 1 else f"{stem}-{n}"
            linked: list[Path] = []
            try:
                for tmp, (ending, _) in zip(temporary, files, strict=True):
                    target = directory / f"{name}{ending}"
                    os.link(tmp, target)  # fails if the name exists: no overwrite, no race
                    linked.append(target)
                return linked
            except FileExistsError:
                for target in linked:
                    target.unlink()
                n += 1
    finally:
        for tmp in temporary:
            os.unlink(tmp)


def _write_new(directory: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write `data` to a fresh name (stem, stem-2, ...) atomically; never replace a file."""
    return _write_files(directory, stem, [(suffix, data)])[0]


class ResultSaver:
    """Saves the images of one result as they arrive, then its JSON sidecar.

    Each image is finished first (`finish_image`): its metadata stripped, stitched into 图1 or
    resized to 图1's size when the edit asked for that (the provider's own image then saved beside
    it as `<name>_provider.<ext>`), and labelled (GB 45438-2025). A link that failed is named in a
    warning on `result.warnings` while the others are still saved; only when none could be saved
    is an error raised. The sidecar is written last and never costs a saved image: if it cannot be
    written, that is a warning too. `endpoint` is the API address the label records; a provider's
    own label holding one of `secrets` (the keys) is not copied into ours.
    """

    def __init__(
        self,
        result: EditResult,
        directory: str | os.PathLike,
        stem: str | None = None,
        endpoint: str = "",
        secrets: Sequence[str | None] = (),
    ) -> None:
        self.result = result
        self.folder = Path(directory)
        self.stem = safe_stem(stem or result.order_id)
        self.endpoint = endpoint
        self.secrets = tuple(secrets)
        self.saved: dict[int, Path] = {}
        self.described: dict[int, dict] = {}
        self.failures: dict[int, DownloadError] = {}  # by link number: downloads may end in any order

    def save(self, index: int, data: bytes, fmt: str) -> Path:
        """Finish and write image number `index` (from 1) of the result under a fresh name."""
        finished = finish_image(self.result, index, data, fmt, endpoint=self.endpoint, secrets=self.secrets)
        self.result.warnings.extend(finished.warnings)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = self.stem if len(self.result.image_urls) == 1 else f"{self.stem}_{index}"
        files = [(RESULT_EXTENSIONS.get(finished.format, OTHER_EXTENSION), finished.data)]
        if finished.provider is not None:
            own, own_format = finished.provider
            files.append((PROVIDER_SUFFIX + RESULT_EXTENSIONS.get(own_format, OTHER_EXTENSION), own))
        paths = _write_files(self.folder, name, files)
        self.saved[index] = paths[0]
        self.described[index] = {
            "file": paths[0].name,
            "kind": finished.kind,
            "format": finished.format,
            "size": f"{finished.size[0]}*{finished.size[1]}",
            "provider_file": paths[1].name if len(paths) > 1 else None,
            "labelled": finished.labelled,
            "metadata_removed": finished.metadata_removed,
        }
        return paths[0]

    def fail(self, index: int, error: DownloadError) -> None:
        """Record that image number `index` could not be saved."""
        self.failures[index] = error
        total = len(self.result.image_urls)
        self.result.warnings.append(
            f"结果 {index}/{total} 未能保存 / result {index} of {total} was not saved: {error}"
        )

    def finish(self) -> list[Path]:
        """Write the sidecar and return the saved paths in link order; raise if none was saved.

        The provider's own images kept beside stitched or resized results are not returned: the
        sidecar lists them (`provider_files`), each named `<result name>_provider.<ext>`.
        """
        if not self.saved:
            first = self.failures[min(self.failures)]  # the first link's, whichever failed first
            if len(self.failures) > 1:
                first.detail = f"{first.detail} (all {len(self.failures)} result links failed)"
            raise first
        order = sorted(self.saved)
        paths = [self.saved[index] for index in order]
        described = [self.described[index] for index in order]
        sidecar = {
            **self.result.to_dict(),
            "downloaded_at": now_iso(),
            "files": [p.name for p in paths],
            "provider_files": [d["provider_file"] for d in described if d["provider_file"]],
            "results": described,
        }
        # default=str and backslashreplace: no provider text can stop the sidecar being written
        text = json.dumps(sidecar, ensure_ascii=False, indent=2, default=str)
        try:
            _write_new(self.folder, paths[0].stem, ".json", text.encode("utf-8", "backslashreplace"))
        except OSError as exc:
            logger.warning("sidecar of %s not written: %s", paths[0].name, exc)
            self.result.warnings.append(
                f"结果已保存，但元数据文件写入失败 / the result was saved, but not its JSON sidecar: {exc}"
            )
        return paths
