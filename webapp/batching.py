"""Batches on the app's side (issue 19): one instruction over up to 20 photos, run by `juhe`'s own
batch engine (`juhe.Batch`), never a second one.

The engine gets `StoreClient` as its client: every call takes one slot of the app's shared pool
(first come, first served, so other visitors' single edits wait behind at most one batch call) and
gives back its reserved edit of the daily cap when it was never sent; every result is saved and
registered in the store as a page's edit is. `Pacer` is the engine's `pace` hook: under a
per-minute limit each photo waits for its turn in the same window the visitor's single edits count
in, instead of being refused. The rest is pure: the checks of a photo and of the API's list, the
progress table.
"""

from __future__ import annotations

import html
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

from PIL import Image

from juhe import (
    MAX_INPUT_PIXELS,
    BatchItem,
    EditResult,
    InvalidRequestError,
    JuheError,
    sniff_format,
    sniff_heif,
)
from webapp.backend import Admission, Backend, BusyError, SavedEdit
from webapp.store import Record
from webapp.texts import ERRORS, say
from webapp.window import Window

MAX_BATCH = 20  # photos in one batch
MAX_BATCH_SLOTS = 3  # edits of one batch in flight at once, at most
HEAD_BYTES = 64  # enough of a file to name its format (HEIC's ftyp box included)
STATUS_ICONS = {"queued": "⏸", "running": "⏳", "done": "✅", "failed": "✕"}


def batch_slots(concurrency: int) -> int:
    """How many edits one batch may have in flight: at most 3 and at most half the app's slots (at
    least 1), so single edits always find room beside a batch."""
    return max(1, min(MAX_BATCH_SLOTS, concurrency // 2))


def size_words(nbytes: int) -> str:
    """A byte count as people read it: `20 MB`, `512 KB`, `10 bytes`."""
    if nbytes >= 1_000_000:
        return f"{nbytes / 1_000_000:g} MB"
    return f"{nbytes // 1000} KB" if nbytes >= 1000 else f"{nbytes} bytes"


def photo_problem(path: str | Path, max_bytes: int) -> JuheError | None:
    """Why this file cannot be one photo of a batch, or None: over the upload limit, not an image
    format the app takes (read from its bytes, never its name), or over `juhe`'s pixel bound (read
    from the header; nothing is decoded). The client checks again when it prepares the photo."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return _photo_error("photo_format")
    if size > max_bytes:
        return _photo_error("photo_large", size=size_words(max_bytes))
    if sniff_heif(head):
        return None  # its size is read (and bounded) by the client, which decodes HEIC itself
    if sniff_format(head) is None:
        return _photo_error("photo_format")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_INPUT_PIXELS:
                return _photo_error("photo_pixels")
    except Image.DecompressionBombError:
        return _photo_error("photo_pixels")
    except (OSError, ValueError, SyntaxError):
        return _photo_error("photo_format")
    return None


def _photo_error(key: str, **values: object) -> JuheError:
    zh, en = ERRORS[key]
    return InvalidRequestError(zh.format(**values), en.format(**values))


def api_photos(value: object, is_upload: Callable[[str], bool], most: int = MAX_BATCH) -> list[Path]:
    """The `/batch` endpoint's `images`: a list of 1 to `most` files that gradio_client uploaded
    (`handle_file()`), as paths. Anything else raises `ValueError` naming the error text's key and
    values: a non-list (text, a dict, a bool), too many, and an item that is not an upload of this
    server (a link, a data URI, a path typed by hand, a bool)."""
    if not isinstance(value, list) or not 1 <= len(value) <= most:
        raise ValueError("batch_list", {"most": most})
    paths = []
    for number, item in enumerate(value, start=1):
        path = item.get("path") if isinstance(item, dict) else None
        if not isinstance(path, str) or not path or not is_upload(path):
            raise ValueError("batch_file", {"n": number})
        paths.append(Path(path))
    return paths


def make_items(
    photos: Sequence[str | Path], prompt: str, size: str, model: str, run: str, max_bytes: int
) -> list[BatchItem]:
    """One engine item per photo, named for this run (`run`) and its place in it; a photo that fails
    `photo_problem` is failed at once and never sent."""
    items = []
    for place, photo in enumerate(photos):
        item = BatchItem.for_input(photo, prompt, size, model, run=f"{run}:{place}")
        item.prompt = prompt
        problem = photo_problem(photo, max_bytes)
        if problem is not None:
            item.fail(problem)
        items.append(item)
    return items


class Pacer:
    """The engine's `pace` hook: before each photo is sent, take one edit of the per-minute `limit`
    under `keys` in `window` (the one the visitor's single edits count in); with none left, wait the
    seconds until there is one (`sleep`) and try again. `next_in()` says when the soonest waiting
    photo goes."""

    def __init__(
        self,
        window: Window,
        keys: Sequence[str],
        limit: int,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.window, self.keys, self.limit, self.sleep = window, list(keys), limit, sleep
        self._due: dict[int, float] = {}  # each waiting photo's turn, on the window's clock
        self._tickets = itertools.count()

    async def __call__(self) -> None:
        """Return once this photo may be sent."""
        if not self.limit:
            return
        ticket = next(self._tickets)
        try:
            while wait := self.window.take(self.keys, self.limit, 1):
                self._due[ticket] = self.window.clock() + wait
                await self.sleep(wait)
        finally:
            self._due.pop(ticket, None)

    def next_in(self) -> float | None:
        """Seconds until the soonest waiting photo may go, or None when none waits."""
        if not self._due:
            return None
        return max(0.0, min(self._due.values()) - self.window.clock())


class StoreClient:
    """The client `juhe.Batch` runs a batch through inside the app. `edit` takes one slot of the
    shared pool for the call (and gives back the photo's reserved edit of the daily cap when it was
    never sent); `download` saves the result and registers it in the store with the photo as its
    "before", under the batch's group. `records` maps each item's stem to its record."""

    def __init__(
        self, backend: Backend, admission: Admission, visitor_key: str | None, inputs: dict[str, Path]
    ) -> None:
        self.backend = backend
        self.admission = admission
        self.visitor_key = visitor_key
        self.inputs = inputs
        self.records: dict[str, Record | None] = {}

    async def edit(
        self,
        prompt: str,
        images: Sequence[object],
        size: str | None = None,
        model: str | None = None,
        **options,
    ) -> EditResult:
        """One photo's edit, holding one slot of the shared pool while it runs."""
        client, _ = self.backend.client_for(self.visitor_key)
        sent = False

        def staged(stage: str) -> None:
            nonlocal sent
            sent = sent or stage == "waiting"  # the request goes out right after this stage

        try:
            await self.backend.pool.acquire(1)
        except BusyError:
            self.backend.refund(self.admission)
            zh, en = ERRORS["busy"]
            raise JuheError(zh, en, kind="busy") from None
        try:
            return await client.edit(
                prompt, images, size, model, api_key=self.visitor_key, on_stage=staged, **options
            )
        finally:
            self.backend.pool.release(1)
            if not sent:
                self.backend.refund(self.admission)

    async def download(
        self, result: EditResult, directory: str | Path, *, stem: str | None = None
    ) -> list[Path]:
        """Save the result's images (named for the item) and register them in the store."""
        client, simulated = self.backend.client_for(self.visitor_key)
        paths = await client.download(result, directory, stem=stem)
        saved = SavedEdit(result, paths, simulated)
        image1 = self.inputs.get(stem or "")
        self.records[stem or ""] = await self.backend.keep_result(saved, image1, self.admission.group)
        return paths


class Progress:
    """The engine's sink: notes that something changed, and which items finished since last asked."""

    def __init__(self) -> None:
        self.changed = True
        self._finished: list[BatchItem] = []

    def item_changed(self, item: BatchItem) -> None:
        """An item changed state (called by the engine on the event loop)."""
        self.changed = True
        if item.status == "done" and not item.resumed:
            self._finished.append(item)

    def take_finished(self) -> list[BatchItem]:
        """The items done since the last call, in the order they finished."""
        finished, self._finished = self._finished, []
        return finished


def counts(items: Iterable[BatchItem]) -> dict[str, int]:
    """How many items are in each state, and the total."""
    found = {"queued": 0, "running": 0, "done": 0, "failed": 0}
    for item in items:
        found[item.status] += 1
    return {**found, "total": sum(found.values())}


def progress_html(
    items: Sequence[BatchItem],
    elapsed: float,
    chinese: bool,
    next_in: float | None = None,
    limit: int = 0,
) -> str:
    """The panel's progress: a summary line (the counts, the seconds so far and, when a photo waits
    for the rate limit, when it goes), then one row per photo with its state and its order id or its
    error's code and words. Every name and word from outside is escaped."""
    numbers = counts(items)
    seconds = f"{elapsed:.1f}" if elapsed < 10 else f"{elapsed:.0f}"  # a fast batch does not read "0 s"
    summary = say("batch_summary", chinese, elapsed=seconds, **numbers)
    if next_in is not None:
        summary += say("batch_next", chinese, wait=f"{next_in:.0f}", limit=limit)
    head = "".join(
        f"<th scope='col'>{say(key, chinese)}</th>"
        for key in ("batch_photo", "batch_status", "batch_outcome", "batch_seconds")
    )
    rows = []
    for number, item in enumerate(items, start=1):
        name = html.escape(_shown_name(item.input))
        state = f"{STATUS_ICONS[item.status]} {say('batch_' + item.status, chinese)}"
        if item.status == "failed":
            words = _error_words(item.error, chinese)
            outcome = f"<code>{html.escape(item.error_code)}</code> {html.escape(words)}"
        else:
            outcome = f"<code>{html.escape(item.order_id)}</code>" if item.order_id else ""
        seconds = f"{item.elapsed:.1f}" if item.status in ("done", "failed") and item.elapsed else ""
        rows.append(
            f"<tr class='{item.status}'><td>{number}. {name}</td><td>{state}</td>"
            f"<td>{outcome}</td><td>{seconds}</td></tr>"
        )
    return (
        f"<p class='batch-summary' role='status'>{html.escape(summary)}</p>"
        f"<div class='batch-table'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _shown_name(path: Path) -> str:
    """A photo's name as the visitor knows it: Gradio keeps the uploaded name, in a folder of its own."""
    name = Path(path).name
    return name if len(name) <= 60 else name[:57] + "…"


def _error_words(explanation: str, chinese: bool) -> str:
    """An error's `中文 / English` explanation in the visitor's language only (the whole text, as the
    engine keeps it, when it has no such halves)."""
    zh, slash, en = explanation.partition(" / ")
    return (zh if chinese else en) if slash else explanation


def elapsed_since(started: float | None) -> float:
    """Seconds since `started` (a `time.monotonic()` reading), 0 before it."""
    return 0.0 if started is None else time.monotonic() - started
