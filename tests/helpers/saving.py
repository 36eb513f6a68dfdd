"""Results saved the way the client saves them (image files plus the JSON sidecar), for the tests of
what reads saved results: the store and the share pages."""

from __future__ import annotations

from pathlib import Path

from juhe import EditResult
from juhe._download import ResultSaver


def save_result(
    result: EditResult, directory: Path, images: list[tuple[str, bytes, str]], stem: str | None = None
) -> list[Path]:
    """Save images already fetched, as (link, bytes, format), and the sidecar (under `stem` if given);
    return the paths."""
    saver = ResultSaver(result, directory, stem)
    for index, (_url, data, fmt) in enumerate(images, start=1):
        saver.save(index, data, fmt)
    return saver.finish()
