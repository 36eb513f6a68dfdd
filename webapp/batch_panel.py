"""Batch (issue 19): one instruction over up to 20 photos, in the page and as the `/batch` endpoint.

The panel is a closed accordion under the main form: photos dropped at once, an instruction, a size,
optionally the form's 图2 / 图3 as references for every photo. Each photo is one edit of `juhe`'s
batch engine (see `webapp.batching`), shown in a progress table as it goes; failed photos can be
retried alone; the results download as one zip with the engine's manifest, and join the history
as one run (saved and registered like single edits, so Delete and reloads work as for them).

The batch's items live in a `gr.State` of the tab; the engine runs on a task of its own, so a
visitor who leaves (or reloads) mid-way stops new photos from going while those in flight finish
and are saved.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder

from juhe import Batch, BatchItem, JuheError, manifest, zip_results
from webapp.backend import Backend
from webapp.batching import (
    MAX_BATCH,
    Pacer,
    Progress,
    StoreClient,
    api_photos,
    batch_slots,
    counts,
    make_items,
    photo_problem,
    progress_html,
)
from webapp.errors import user_error
from webapp.handlers import (
    HISTORY_KEPT,
    Handlers,
    _gallery,
    _in_upload_folder,
    _visitor_file,
    api_size,
    history_entries,
    ordered_images,
)
from webapp.settings import AppSettings
from webapp.spend import DailyLimitError
from webapp.texts import I18N, TITLES, error_text, request_chinese, say

PRIVATE = {"api_visibility": "private"}
TICK_S = 0.5  # how often the progress table is sent while a batch runs
PHOTO_TYPES = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif"]
ZIP_NAME = "juhe-batch.zip"


def batch_panel(size_choices: list) -> dict:
    """The closed "Batch" accordion: photos, instruction, size, references, Run and Retry failed,
    the progress table and the zip. Nothing in it loads until it is opened."""
    parts: dict = {}
    with gr.Accordion(I18N("batch"), open=False, elem_id="batch"):
        gr.Markdown(I18N("batch_info"), elem_id="batch-info")
        parts["files"] = gr.File(
            file_count="multiple",
            file_types=PHOTO_TYPES,
            label=I18N("batch_files"),
            height=150,
            elem_id="batch-files",
        )
        parts["prompt"] = gr.Textbox(label=I18N("batch_prompt"), lines=2, max_lines=6, elem_id="batch-prompt")
        parts["size"] = gr.Dropdown(
            [choice for choice in size_choices if choice[1] != "custom"],
            value="auto",
            label=I18N("size"),
            elem_id="batch-size",
        )
        # on a line of its own: beside the size, a phone squeezed its label into a column of one word
        parts["refs"] = gr.Checkbox(False, label=I18N("batch_refs"), elem_id="batch-refs")
        with gr.Row():
            parts["run"] = gr.Button(I18N("batch_run"), variant="primary", elem_id="batch-run")
            parts["retry"] = gr.Button(I18N("batch_retry"), visible=False, elem_id="batch-retry")
        parts["progress"] = gr.HTML("", elem_id="batch-progress")
        parts["zip"] = gr.File(label=I18N("batch_zip"), visible=False, interactive=False, elem_id="batch-zip")
    parts["state"] = gr.State(None)  # the batch's items and settings, for Retry failed and the zip
    return parts


class BatchHandlers:
    """The batch panel's events and the `/batch` endpoint, bound to the app's settings, backend and
    page handlers (whose rate limit, history and pictures a batch shares)."""

    def __init__(self, settings: AppSettings, backend: Backend, handlers: Handlers) -> None:
        self.settings = settings
        self.backend = backend
        self.handlers = handlers

    # --- the page ----------------------------------------------------------------------------------

    async def check_photos(self, files: list | None, request: gr.Request = None):
        """Photos dropped: those that are not usable images (or over the upload limit) are removed at
        once, as are those beyond 20, each said in a warning; the panel says how many are ready."""
        chinese = request_chinese(request)
        files = [str(f) for f in files or []]
        problems = await asyncio.to_thread(
            lambda: [photo_problem(f, self.settings.max_upload_bytes) for f in files]
        )
        kept = [f for f, problem in zip(files, problems, strict=True) if problem is None]
        removed = [Path(f).name for f, problem in zip(files, problems, strict=True) if problem is not None]
        if removed:
            gr.Warning(html.escape(error_text("batch_removed", names=", ".join(removed)), quote=False))
        if len(kept) > MAX_BATCH:
            gr.Warning(error_text("batch_extra", most=MAX_BATCH, n=len(kept) - MAX_BATCH))
            kept = kept[:MAX_BATCH]
        note = f"<p class='batch-summary'>{html.escape(say('batch_ready', chinese, n=len(kept)))}</p>"
        return (kept if kept != files else gr.skip()), note

    async def run_batch(
        self,
        files: list | None,
        prompt: str | None,
        size: str | None,
        use_refs: bool,
        image2: str | None,
        image3: str | None,
        model: str | None,
        api_key: str | None,
        history: list | None,
        browser_ids: list | None,
        request: gr.Request = None,
    ):
        """Run batch: check the photos and the instruction, check the daily cap for all of them up
        front, then edit each (a few at a time, paced under a rate limit), showing every photo's
        state as it changes and each result in the history as it arrives; at the end the zip."""
        chinese = request_chinese(request)
        photos = [str(f) for f in files or []]
        try:
            if not photos:
                raise user_error(error_text("batch_none"), title=TITLES["batch"])
            if len(photos) > MAX_BATCH:
                raise user_error(
                    error_text("batch_too_many", most=MAX_BATCH, n=len(photos)), title=TITLES["batch"]
                )
            if not (prompt or "").strip():
                raise user_error(error_text("batch_prompt"), title=TITLES["batch"])
            size = api_size(size or "auto")
            references = ordered_images(["图1", image2, image3])[1:] if use_refs else []
        except gr.Error as exc:
            yield _refused(exc)
            raise
        run = secrets.token_hex(8)
        items = await asyncio.to_thread(
            make_items, photos, prompt, size, model or "auto", run, self.settings.max_upload_bytes
        )
        state = {
            "items": items,
            "prompt": prompt,
            "size": size,
            "model": model or "auto",
            "references": references,
            "group": None,
            "records": {},
            "elapsed": 0.0,  # seconds of the batch's runs so far (a retry adds its own)
        }
        async for values in self._drive(state, api_key, history, browser_ids, chinese, request):
            yield values

    async def retry_failed(
        self,
        state: dict | None,
        api_key: str | None,
        history: list | None,
        browser_ids: list | None,
        request: gr.Request = None,
    ):
        """Retry failed: send the failed photos of the last batch again, alone, with its instruction
        and settings; the others keep their results."""
        chinese = request_chinese(request)
        if not state or not any(item.status == "failed" for item in state["items"]):
            error = user_error(error_text("batch_no_failed"), title=TITLES["batch"])
            yield _refused(error)
            raise error
        async for values in self._drive(state, api_key, history, browser_ids, chinese, request):
            yield values

    async def _drive(
        self,
        state: dict,
        api_key: str | None,
        history: list | None,
        browser_ids: list | None,
        chinese: bool,
        request: gr.Request | None,
    ) -> AsyncIterator[tuple]:
        """Run the state's unfinished items through the engine and yield the panel's values as it goes."""
        key = (api_key or "").strip() or None
        progress = Progress()
        batch = Batch()
        pacer = self._pacer(request)
        items = state["items"]
        try:
            todo, client = await self._admit(items, key, state["group"], progress)
        except gr.Error as exc:
            yield _refused(exc)
            raise
        state["group"] = client.admission.group
        task = asyncio.create_task(self._run(batch, client, todo, state, pacer, progress))
        history, ids = list(history or []), list(browser_ids or [])
        started = time.monotonic() - state["elapsed"]
        try:
            while True:
                await asyncio.wait({task}, timeout=TICK_S)
                finished = progress.take_finished()
                if finished:
                    history, ids = await self._remember(finished, client, state, history, ids)
                table = progress_html(
                    items, time.monotonic() - started, chinese, pacer.next_in(), self.settings.rate_limit
                )
                if task.done():
                    break
                yield _panel(table, history if finished else None, ids if finished else None)
        except asyncio.CancelledError:
            # the visitor left: no new photo goes; those in flight finish and are saved
            batch.stopped_by = JuheError("批量已停止", "the batch was stopped", kind="stopped")
            self.backend.keep_running(task)
            raise
        task.result()  # a fault of this app (not of a photo) is raised here, as Gradio expects
        # photos that finished while the last ones were being remembered (a full CI run lost two)
        finished = progress.take_finished()
        if finished:
            history, ids = await self._remember(finished, client, state, history, ids)
        state["elapsed"] = time.monotonic() - started
        numbers = counts(items)
        line = say("batch_finished", chinese, done=numbers["done"], total=numbers["total"])
        line = ("⚠️ " if numbers["failed"] else "✅ ") + line
        if numbers["failed"]:
            line += say("batch_some_failed", chinese, failed=numbers["failed"])
        archive = await self._zip(state["items"], list(state["records"].values()))
        yield (
            f"<p class='batch-done'>{html.escape(line)}</p>" + table,
            gr.update(value=archive, visible=archive is not None),
            gr.update(visible=numbers["failed"] > 0),
            state,
            gr.update(value=_gallery(history), visible=bool(history)),
            history,
            ids,
        )

    def _pacer(self, request: gr.Request | None) -> Pacer:
        """The rate limit's pacing for this caller (none without a limit or a request)."""
        limit = self.settings.rate_limit if request is not None else 0
        keys = self.handlers.rate_keys(request) if limit else []
        return Pacer(self.backend.edits, keys, limit, self.backend.sleep)

    async def _admit(
        self, items: list[BatchItem], key: str | None, group: str | None, progress: Progress
    ) -> tuple[list[BatchItem], StoreClient]:
        """The items to send (not done, and passing the photo checks: the others fail at once, unsent)
        and their client, with today's edits reserved for all of them: refused whole, saying how many
        fit, when fewer are left."""
        checks = await asyncio.to_thread(
            lambda: [
                None if item.status == "done" else photo_problem(item.input, self.settings.max_upload_bytes)
                for item in items
            ]
        )
        todo = []
        for item, problem in zip(items, checks, strict=True):
            if item.status == "done":
                continue
            if problem is not None:
                item.fail(problem)
                progress.item_changed(item)
            else:
                todo.append(item)
        try:
            admission = self.backend.reserve(len(todo), key, group)
        except DailyLimitError as exc:
            if exc.left:
                text = error_text("batch_daily_left", left=exc.left, limit=exc.limit, n=exc.asked)
            else:
                text = error_text("daily_limit", limit=exc.limit)
            raise user_error(text, title=TITLES["daily_limit"]) from None
        return todo, StoreClient(self.backend, admission, key, {item.stem: item.input for item in todo})

    async def _run(
        self, batch: Batch, client: StoreClient, todo: list, state: dict, pacer: Pacer, progress: Progress
    ) -> None:
        """The engine's run over `todo`; the reserved edits of photos that never went are given back."""
        try:
            await batch.run(
                client,
                todo,
                state["prompt"],
                out_dir=self.backend.output_dir,
                size=state["size"],
                model=state["model"],
                references=state["references"],
                concurrency=batch_slots(self.settings.concurrency),
                sink=progress,
                pace=pacer,
            )
        finally:
            unsent = [i for i in todo if i.status == "queued" and i not in batch.abandoned]
            self.backend.refund(client.admission, len(unsent))

    async def _remember(
        self, finished: list[BatchItem], client: StoreClient, state: dict, history: list, ids: list
    ) -> tuple[list, list]:
        """Finished photos join the history (newest first) and the browser's ids, so a reload finds
        them; each one's upload is tied to its result, so Delete removes it too."""
        for item in finished:
            record = client.records.get(item.stem)
            paths = await asyncio.to_thread(self.backend.show, item.files, record)
            history = (history_entries(record, paths, item.prompt, item.order_id) + history)[:HISTORY_KEPT]
            if record is None:
                continue
            state["records"][item.stem] = record.id
            ids = ([record.id] + [i for i in ids if i != record.id])[:HISTORY_KEPT]
            if _visitor_file(str(item.input)):
                await self.backend.run_file_work(self.backend.store.register_copy, record.id, item.input)
        return history, ids

    async def _zip(self, items: list[BatchItem], record_ids: list[str]) -> str | None:
        """Every result of the batch so far and both manifests in one zip in Gradio's cache; it goes
        with any of its results' Delete. None when nothing was made."""
        items = [_present(item) for item in items]
        if not any(item.files for item in items):
            return None
        target = Path(get_upload_folder()) / "juhe-batches" / secrets.token_hex(16) / ZIP_NAME
        target.parent.mkdir(parents=True)
        await asyncio.to_thread(zip_results, items, target)
        for rid in record_ids:
            await self.backend.run_file_work(self.backend.store.register_copy, rid, target)
        return str(target)

    # --- the `/batch` endpoint (gradio_client; hidden from MCP) -------------------------------------

    async def batch(
        self,
        images: list,
        prompt: str,
        size: str = "auto",
        model: str = "auto",
        api_key: str | None = None,
        request: gr.Request = None,
    ) -> tuple[list[FileData], FileData | None, dict]:
        """Edit up to 20 photos with one instruction: each photo is 图1 of its own edit.

        Args:
            images: a list of 1 to 20 image files sent with handle_file() (no links, no data URIs)
            prompt: the instruction for every photo, Chinese or English
            size: auto, original, or W*H with each side in [512, 2048]
            model: the provider's model name; auto
            api_key: your own Juhe key for this call only; never stored

        Returns:
            The made images (in the photos' order), a zip of them with manifest.csv and manifest.json,
            and a record: total, done, failed, elapsed_s, simulated and manifest (one row per image or
            failed photo: file, input, instruction, size, order_id, status, error).
        """
        for name, value in (("prompt", prompt), ("size", size), ("model", model), ("api_key", api_key)):
            if value is not None and not isinstance(value, str):
                raise user_error(error_text("api_text", name=name), title=TITLES["error"])
        try:
            photos = api_photos(images, _in_upload_folder)
        except ValueError as exc:
            key, values = exc.args
            raise user_error(error_text(key, **values), title=TITLES["batch"]) from None
        if not (prompt or "").strip():
            raise user_error(error_text("batch_prompt"), title=TITLES["batch"])
        size = api_size(size)
        key = (api_key or "").strip() or None
        items = await asyncio.to_thread(
            make_items,
            photos,
            prompt,
            size,
            model or "auto",
            secrets.token_hex(8),
            self.settings.max_upload_bytes,
        )
        progress, batch = Progress(), Batch()
        todo, client = await self._admit(items, key, None, progress)
        started = time.monotonic()
        state = {"prompt": prompt, "size": size, "model": model or "auto", "references": []}
        await self._run(batch, client, todo, state, self._pacer(request), progress)
        files = []
        for item in items:
            if item.status == "done":
                shown = await asyncio.to_thread(self.backend.show, item.files, client.records.get(item.stem))
                files += [FileData(path=path) for path in shown]
        records = [r.id for r in client.records.values() if r is not None]
        archive = await self._zip(items, records)
        numbers = counts(items)
        _, rows = manifest(items)
        record = {
            "total": numbers["total"],
            "done": numbers["done"],
            "failed": numbers["failed"],
            "elapsed_s": round(time.monotonic() - started, 3),
            "simulated": self.backend.offline and not key,
            "manifest": json.loads(rows),
        }
        return files, (FileData(path=archive) if archive else None), record


def _present(item: BatchItem) -> BatchItem:
    """The item as it stands on disk: a result deleted meanwhile is left out of the zip."""
    return dataclasses.replace(item, files=[f for f in item.files if Path(f).is_file()])


def _panel(table: str, history: list | None = None, ids: list | None = None) -> tuple:
    """The panel's values while a batch runs: the table, and the history when it changed."""
    skip = gr.skip()
    gallery = gr.update(value=_gallery(history), visible=True) if history is not None else skip
    return (
        table,
        skip,
        skip,
        skip,
        gallery,
        history if history is not None else skip,
        ids if ids is not None else skip,
    )


def _refused(error: gr.Error) -> tuple:
    """The panel's values for a batch refused before anything was sent: the reason in the panel too."""
    text = getattr(error, "message", None) or str(error)
    return (f"<p class='batch-error' role='alert'>{html.escape(text)}</p>", *_panel("")[1:])


def wire_batch(handlers: BatchHandlers, batch: dict, form: dict, history, state: dict) -> None:
    """The panel's events (private) and the `/batch` endpoint (undocumented: callable by gradio_client,
    left out of the API page and so out of MCP's tools)."""
    settings = handlers.settings
    outputs = [
        batch["progress"],
        batch["zip"],
        batch["retry"],
        batch["state"],
        history,
        state["history_state"],
        state["browser_ids"],
    ]
    batch["files"].upload(
        handlers.check_photos, inputs=batch["files"], outputs=[batch["files"], batch["progress"]], **PRIVATE
    )
    running = {
        "outputs": outputs,
        "concurrency_limit": settings.concurrency,
        "concurrency_id": "batch",
        "trigger_mode": "once",
        "show_progress": "hidden",  # the panel's own table says how it goes
    }
    batch["run"].click(
        handlers.run_batch,
        inputs=[
            batch["files"],
            batch["prompt"],
            batch["size"],
            batch["refs"],
            form["images"][1],
            form["images"][2],
            form["model"],
            form["api_key"],
            state["history_state"],
            state["browser_ids"],
        ],
        **running,
        **PRIVATE,
    )
    batch["retry"].click(
        handlers.retry_failed,
        inputs=[batch["state"], form["api_key"], state["history_state"], state["browser_ids"]],
        **running,
        **PRIVATE,
    )
    # An agent's tool call would hold the call open for minutes and bill up to 20 edits on one
    # request: MCP offers `edit` only. "undocumented" keeps /batch out of the API page's list, from
    # which Gradio builds the MCP tools, while gradio_client can still call it (by position).
    gr.api(
        handlers.batch,
        api_name="batch",
        api_visibility="undocumented",
        queue=True,
        concurrency_limit=settings.concurrency,
        concurrency_id="batch",
    )
