"""Many edits at once: one engine for the command line and the page.

    items = [BatchItem.for_input(path, prompt) for path in photos]
    batch = Batch()
    async with AsyncImageEditClient() as client:
        await batch.run(client, items, prompt, out_dir="outputs", sink=my_sink)
        failed = [item for item in items if item.status == FAILED]
        await batch.run(client, failed, prompt, out_dir="outputs", sink=my_sink)  # retry those alone
    csv_text, json_text = manifest(items)
    zip_results(items, "results.zip")

Each item is one edit with the client's usual checks; `sink.item_changed(item)` hears every state
change (queued -> running -> done | failed). A failure never stops the others (unless its kind is
named in `stop_on`, as the CLI does for account errors). Items whose result is already in `out_dir`
(by file name: `<stem>.json` lists the images) are resumed as done without a call.

`edit_variants` sends N edits of the same input at once and yields each as it arrives.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import re
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from PIL import Image

from ._exceptions import AuthenticationError, InvalidRequestError, JuheError, RateLimitError
from ._images import ImageInput
from ._models import EditResult

if TYPE_CHECKING:
    from ._client import AsyncImageEditClient

Status = Literal["queued", "running", "done", "failed"]
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
MAX_VARIANTS = 4
# Errors of the account rather than of one photo: every later call would fail the same way.
ACCOUNT_ERRORS: tuple[type[JuheError], ...] = (AuthenticationError, RateLimitError)
TAG_LENGTH = 10  # hex digits of the tag that makes a batch result's name unique
# A batch sidecar: `<stem>.json`, `<stem>_1.json` for several images, `-N` added if a name was taken.
_SIDECAR = re.compile(rf"(?P<stem>.+-[0-9a-f]{{{TAG_LENGTH}}})(?:_1)?(?:-\d+)*\.json")
MANIFEST_COLUMNS = ("file", "input", "instruction", "size", "order_id", "status", "error")
MANIFEST_NAMES = ("manifest.csv", "manifest.json")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Pace = Callable[[], Awaitable[None]]


# ---------------------------------------------------------------- items and names


def job_stem(path: Path, prompt: str, size: str, model: str, run: str = "") -> str:
    """`<input name>-<tag>`; the tag hashes the full path and the settings, so it is unique. `run`
    makes it unique to one run too (see `BatchItem.for_input`)."""
    identity = "\0".join((str(Path(path).resolve()), prompt.strip(), size, model.strip() or "auto"))
    if run:  # only when given: the names the command line resumes by stay as they were
        identity += "\0" + run
    tag = hashlib.sha256(identity.encode()).hexdigest()[:TAG_LENGTH]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)[:40] or "image"
    return f"{name}-{tag}"


def finished_results(out_dir: Path) -> dict[str, list[Path]]:
    """Stem -> result images, for each sidecar in `out_dir` whose images all exist.

    The sidecar is written after the images, so its presence means the result is complete.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return {}
    names = {entry.name for entry in os.scandir(out_dir)}
    done: dict[str, list[Path]] = {}
    for name in sorted(names):
        match = _SIDECAR.fullmatch(name)
        if not match:
            continue
        try:
            files = json.loads((out_dir / name).read_text("utf-8")).get("files")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(files, list) and files and all(isinstance(f, str) and f in names for f in files):
            done.setdefault(match["stem"], [out_dir / f for f in files])
    return done


@dataclass(eq=False)
class BatchItem:
    """One photo of a batch and what became of it.

    `status` moves queued -> running -> done | failed; `error_code` is the error's kind (a provider
    code such as "282505", or a word such as "timeout") and `error` its `中文 / English` text.
    `elapsed` is the seconds from sending to saved (or failed); `resumed` says the result was
    found in the output folder, so no call was made.
    """

    input: Path
    stem: str
    status: Status = QUEUED
    prompt: str = ""
    order_id: str = ""
    files: list[Path] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)  # "W*H" of each saved file, "" if unreadable
    error_code: str = ""
    error: str = ""
    elapsed: float = 0.0
    warnings: list[str] = field(default_factory=list)
    resumed: bool = False

    @classmethod
    def for_input(
        cls, path: str | os.PathLike, prompt: str, size: str = "", model: str = "auto", run: str = ""
    ) -> BatchItem:
        """A queued item named for its path and the edit's settings (see `job_stem`). A `run` key
        (any text, e.g. a random token and the item's place) ties the name to one run: an app whose
        visitors share one output folder then never resumes one visitor's item from another's result,
        and the same photo twice in a run makes two items."""
        return cls(Path(path), job_stem(Path(path), prompt, size, model, run))

    def fail(self, error: JuheError) -> None:
        """Record `error` as this item's outcome."""
        self.status = FAILED
        self.error_code, self.error = error.kind, error.explanation
        self.order_id = error.order_id or self.order_id


class BatchSink(Protocol):
    """Where a batch reports: called in the event loop after each change of an item's state."""

    def item_changed(self, item: BatchItem) -> None:
        """`item` changed status (its fields already hold the new state)."""


def _pixel_sizes(paths: Sequence[Path]) -> list[str]:
    """`W*H` of each image, read from its header; "" for one that cannot be read."""
    sizes = []
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes.append(f"{image.width}*{image.height}")
        except (OSError, ValueError, Image.DecompressionBombError):
            sizes.append("")
    return sizes


# ---------------------------------------------------------------- the engine


class Batch:
    """Runs items through an `AsyncImageEditClient`, a bounded number at a time.

    Keeps what the last `run` did outside the event loop (so Ctrl-C cannot lose it): the items,
    the start and end times, the error that stopped it early, and the items whose call was in
    flight when the run was cancelled (`abandoned`: the provider may still bill them).
    """

    def __init__(self) -> None:
        self.items: list[BatchItem] = []
        self.started: float | None = None
        self.ended: float | None = None
        self.stopped_by: JuheError | None = None
        self.abandoned: list[BatchItem] = []

    @property
    def elapsed(self) -> float:
        """Seconds since the last run started (until it ended)."""
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started

    def counts(self) -> dict[str, int]:
        """How many items of the last run are in each state, and the total."""
        counts = {status: 0 for status in (QUEUED, RUNNING, DONE, FAILED)}
        for item in self.items:
            counts[item.status] += 1
        return {**counts, "total": len(self.items)}

    async def run(
        self,
        client: AsyncImageEditClient,
        items: Sequence[BatchItem],
        prompt: str,
        *,
        out_dir: str | os.PathLike,
        size: str | None = None,
        model: str | None = None,
        mask: ImageInput | None = None,
        references: Sequence[ImageInput] = (),
        concurrency: int = 4,
        sink: BatchSink | None = None,
        pace: Pace | None = None,
        stop_on: tuple[type[JuheError], ...] = (),
    ) -> list[BatchItem]:
        """Edit every item not done yet, `concurrency` at a time, and save each result in `out_dir`.

        Each item is 图1 of its own edit, `references` 图2 and 图3. Items already done are left
        alone, and items whose result is in `out_dir` become done without a call (resume); a failed
        item is tried again (pass only the failed ones to retry those alone). `pace`, if given, is
        awaited before each send (a JuheError it raises fails that item unsent). After an error
        of a kind in `stop_on` no new call starts and the rest stay queued. Returns the items.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        folder = Path(out_dir)
        self.items, self.stopped_by, self.abandoned = list(items), None, []
        self.started, self.ended = time.monotonic(), None

        def changed(item: BatchItem) -> None:
            if sink is not None:
                sink.item_changed(item)

        finished = await asyncio.to_thread(finished_results, folder)
        todo: list[BatchItem] = []
        for item in self.items:
            if item.status == DONE:
                continue
            if item.stem in finished:
                item.files = finished[item.stem]
                item.sizes = await asyncio.to_thread(_pixel_sizes, item.files)
                item.status, item.resumed, item.prompt = DONE, True, item.prompt or prompt
                item.error_code = item.error = ""
                changed(item)
            else:
                if item.status != QUEUED:  # a failed item, or one left running by a crash: again
                    item.status = QUEUED
                    changed(item)
                todo.append(item)

        pending = iter(todo)  # shared by the workers: each item is taken once

        async def one(item: BatchItem) -> None:
            if pace is not None:
                try:
                    await pace()
                except JuheError as exc:
                    item.prompt = prompt
                    self._failed(item, exc, stop_on)
                    changed(item)
                    return
                if self.stopped_by is not None:  # stopped while this one waited its turn
                    return
            item.status, item.prompt, item.error_code, item.error = RUNNING, prompt, "", ""
            item.order_id, item.files, item.sizes, item.warnings = "", [], [], []
            changed(item)
            started = time.monotonic()
            try:
                result = await client.edit(prompt, [item.input, *references], size, model, mask=mask)
                item.order_id = result.order_id
                files = await client.download(result, folder, stem=item.stem)
                item.sizes = await asyncio.to_thread(_pixel_sizes, files)
            except asyncio.CancelledError:
                # back in the queue: the next run sends it again, unless its result got saved
                item.status = QUEUED
                self.abandoned.append(item)
                raise
            except JuheError as exc:
                self._failed(item, exc, stop_on)
            except OSError as exc:
                self._failed(item, JuheError("读写文件失败", "file error", kind="io", detail=str(exc)), ())
            else:
                item.files, item.warnings, item.status = files, list(result.warnings), DONE
            item.elapsed = round(time.monotonic() - started, 3)
            changed(item)

        async def worker() -> None:
            for item in pending:
                if self.stopped_by is not None:
                    return
                await one(item)

        try:
            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(todo)))))
        finally:
            self.ended = time.monotonic()
        return self.items

    def _failed(self, item: BatchItem, error: JuheError, stop_on: tuple[type[JuheError], ...]) -> None:
        item.fail(error)
        if stop_on and isinstance(error, stop_on) and self.stopped_by is None:
            self.stopped_by = error


# ---------------------------------------------------------------- variants


async def edit_variants(
    client: AsyncImageEditClient,
    prompt: str,
    images: ImageInput | Sequence[ImageInput],
    n: int,
    **edit_options: object,
) -> AsyncIterator[tuple[int, EditResult | JuheError]]:
    """Send `n` edits of the same input at once (each billed); yield `(index, outcome)` as each
    completes, index 0 to n-1 in the order sent, the outcome an `EditResult` or the `JuheError` of
    that call (yielded, not raised). Closing or cancelling the generator cancels the calls still
    running. `edit_options` go to `client.edit` (size, model, mask, ...)."""
    if not 1 <= n <= MAX_VARIANTS:
        raise InvalidRequestError(
            f"变体数量须为 1 到 {MAX_VARIANTS}", f"variants must be from 1 to {MAX_VARIANTS}, got {n}"
        )

    async def one(index: int) -> tuple[int, EditResult | JuheError]:
        try:
            return index, await client.edit(prompt, images, **edit_options)
        except JuheError as exc:
            return index, exc

    calls = [asyncio.ensure_future(one(index)) for index in range(n)]
    try:
        for next_done in asyncio.as_completed(calls):
            yield await next_done
    finally:
        for call in calls:
            call.cancel()
        # wait for the cancelled calls, so none outlives its client or the caller's loop
        await asyncio.gather(*calls, return_exceptions=True)


# ---------------------------------------------------------------- manifest and zip


def _archive_name(path: Path) -> str:
    """A file name safe inside a zip: no folders, no leading dots, only letters, digits, `-_.`."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(path).name).lstrip(".")
    return name or "image"


def _entries(items: Iterable[BatchItem]) -> list[tuple[BatchItem, Path | None, str, str]]:
    """(item, saved file or None, its name in the zip, its size) for each row of the manifest:
    one per saved file, one for an item without any. Names are unique regardless of case and
    never a manifest's."""
    used = {name.lower() for name in MANIFEST_NAMES}
    entries = []
    for item in items:
        sizes = (list(item.sizes) + [""] * len(item.files))[: len(item.files)]
        files = list(zip(item.files, sizes, strict=True))
        if not files:
            entries.append((item, None, "", ""))
        for path, size in files:
            name = _archive_name(path)
            stem, dot, suffix = name.rpartition(".") if "." in name else (name, "", "")
            number = 1
            while name.lower() in used:
                number += 1
                name = f"{stem}-{number}{dot}{suffix}"
            used.add(name.lower())
            entries.append((item, path, name, size))
    return entries


def _rows(items: Iterable[BatchItem]) -> list[dict[str, str]]:
    rows = []
    for item, _path, name, size in _entries(items):
        error = f"{item.error_code}: {item.error}" if item.error_code else ""
        values = (name, Path(item.input).name, item.prompt, size, item.order_id, item.status, error)
        rows.append(dict(zip(MANIFEST_COLUMNS, values, strict=True)))
    return rows


def _cell(value: str) -> str:
    # a leading apostrophe makes a spreadsheet show the text instead of running it
    return "'" + value if value.startswith(_FORMULA_START) else value


def manifest(items: Iterable[BatchItem]) -> tuple[str, str]:
    """The batch as (CSV text, JSON text): one row per saved file (or per item without one), the
    columns file (its name in the zip), input, instruction, size, order_id, status, error.

    The CSV is RFC 4180 (quoted where needed, CRLF line ends); a cell a spreadsheet would run as a
    formula starts with `'`. The JSON is a list of objects with the same keys and exact values.
    """
    rows = _rows(items)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows([_cell(row[column]) for column in MANIFEST_COLUMNS] for row in rows)
    return buffer.getvalue(), json.dumps(rows, ensure_ascii=False, indent=2) + "\n"


def zip_results(items: Sequence[BatchItem], target: str | os.PathLike | io.IOBase) -> None:
    """Write every saved image of `items` (as saved, AIGC label included) and both manifests into
    one zip at `target` (a path or a binary file). Entry names are plain file names, unique, as the
    manifest's `file` column gives them. Raises OSError if a saved file is gone."""
    csv_text, json_text = manifest(items)
    with zipfile.ZipFile(target, "w", strict_timestamps=False) as archive:
        for _item, path, name, _size in _entries(items):
            if path is not None:
                # images are compressed already: stored as saved, byte for byte
                archive.write(path, name, compress_type=zipfile.ZIP_STORED)
        # utf-8-sig: a spreadsheet opening the CSV then reads its 中文 as UTF-8
        archive.writestr(MANIFEST_NAMES[0], csv_text.encode("utf-8-sig"), zipfile.ZIP_DEFLATED)
        archive.writestr(MANIFEST_NAMES[1], json_text.encode("utf-8"), zipfile.ZIP_DEFLATED)
