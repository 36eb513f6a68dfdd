"""What the page's events and the public API do. The layout and its wiring are in `webapp.ui`.

`Handlers` holds the settings and the backend, built once at start and passed in; no handler reads a
module global. Per-visitor values live in `gr.State` (this tab) and `gr.BrowserState` (the ids of the
visitor's own results, which survive reloads). Page handlers answer with `view(...)`: one value per
name in `VIEW`, `gr.skip()` for the rest, so a handler says only what it changes. (No
`from __future__ import annotations` here: `gr.api` reads the public endpoint's types at run time.)
"""

import asyncio
import collections
import html
import json
import logging
import math
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TypedDict

import gradio as gr
from gradio.data_classes import FileData
from gradio.route_utils import get_root_url
from gradio.utils import get_upload_folder
from gradio_client.utils import encode_file_path
from PIL import Image, ImageChops

from juhe import MAX_VARIANTS, ORIGINAL_SIZE, JuheError, is_http_url, parse_size
from webapp import chains, opened, snippets
from webapp.backend import Backend, BusyError, SavedEdit
from webapp.changes import painted_box, what_changed
from webapp.errors import in_visitor_language, juhe_error, user_error
from webapp.exports import ExportError, export_result
from webapp.pictures import editor_preview, fit_before, heif_preview, mime_of, pixel_size, region_files
from webapp.settings import AppSettings
from webapp.spend import DailyLimitError
from webapp.store import Record
from webapp.texts import (
    API_DESCRIPTION,
    EXAMPLES_DIR,
    REGION_EXAMPLE,
    TITLES,
    chain_say,
    error_text,
    request_chinese,
    say,
)
from webapp.views import describe_changes, view_error
from webapp.visitors import address_key, visitor_address
from webapp.window import Window

HISTORY_KEPT = 60  # results a browser remembers
NAMES_AN_IMAGE = re.compile(r"图\s*[123一二三]|(image|picture|photo|pic|img)\s*#?\s*[123]", re.IGNORECASE)
MCP_MOUNT = "/gradio_api/mcp"  # where Gradio mounts its MCP sub-app
TICK_S = 0.5  # how often the status line's count of seconds moves while the provider works
# The ready-made masks of the region examples, chosen by index: no event takes a path from outside.
PRESET_MASKS = (EXAMPLES_DIR / REGION_EXAMPLE[2],)
logger = logging.getLogger("webapp")

# The page's outputs a handler may set, in the order `webapp.ui` wires them.
VIEW = (
    "status",
    "empty",
    "result",
    "gallery",
    "compare",
    "actions",
    "share_box",
    "revoke",
    "cancel",
    "api_panel",
    "curl",
    "python",
    "gradio",
    "api_files",
    "record",
    "history",
    "history_state",
    "results_state",
    "open_state",
    "browser_ids",
    "timer",
)


def view(**values) -> tuple:
    """The page's outputs: the given values, `gr.skip()` for every other name in `VIEW`."""
    unknown = set(values) - set(VIEW)
    assert not unknown, unknown
    return tuple(values.get(name, gr.skip()) for name in VIEW)


def edit_error(exc: Exception) -> gr.Error:
    """The toast for an edit that did not happen or failed; for a set of variants refused whole, it
    says what would fit."""
    if isinstance(exc, BusyError):
        key, values = ("busy_variants", {"most": exc.at_most}) if exc.at_most else ("busy", {})
        return user_error(error_text(key, **values), title=TITLES["busy"])
    if isinstance(exc, DailyLimitError):
        if exc.left:
            text = error_text("daily_left", left=exc.left, asked=exc.asked, limit=exc.limit)
        else:
            text = error_text("daily_limit", limit=exc.limit)
        return user_error(text, title=TITLES["daily_limit"])
    return juhe_error(exc)


def md_code(text: str) -> str:
    """Provider text (an order id) shown as Markdown code: nothing in it can close the span or
    become markup."""
    return "`" + re.sub(r"[^\w.:-]", "_", text)[:80] + "`"


class HistoryEntry(TypedDict):
    """One image of the visitor's history as the page's State keeps it (server-side only)."""

    id: str | None  # the result's id in the store (None when it could not be registered)
    n: int  # which image of the result
    path: str  # its shown copy in Gradio's cache
    prompt: str
    order: str
    before: str | None  # the store's copy of 图1, for the before/after: made when first opened
    parent: str | None  # the id of the result this one was made from ("Continue editing")
    group: str | None  # the set of variants it belongs to: made by one run


def history_entries(record: Record | None, paths: list[str], prompt: str, order: str) -> list[HistoryEntry]:
    """The history entries of one result, one per image: the only place entries are made."""
    before = str(record.before) if record and record.before else None
    parent = record.parent if record else None
    return [
        HistoryEntry(
            id=record.id if record else None,
            n=n,
            path=path,
            prompt=prompt,
            order=order,
            before=before,
            parent=parent,
            group=record.group if record else None,
        )
        for n, path in enumerate(paths)
    ]


@dataclass
class Shown:
    """A saved edit and the copies of its images the page or the API serves."""

    saved: SavedEdit
    paths: list[str]


class Handlers:
    """The handlers of one app, bound to its settings, backend and rate limiter."""

    def __init__(self, settings: AppSettings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        # edits per minute, per visitor and per session: the backend's, which batches pace in too (a
        # Handlers without a backend, as the limit's own tests make, keeps a window of its own)
        self.edits = backend.edits if backend is not None else Window()

    # --- the shared core ---------------------------------------------------------------------

    def check_rate(self, request: gr.Request | None, amount: int = 1) -> None:
        """Refuse when this visitor or this session is over the per-minute limit; a set of `amount`
        variants counts `amount` edits, taken whole or not at all (the refusal says how many fit)."""
        limit = self.settings.rate_limit
        if not limit or request is None:
            return
        if amount > limit:
            raise user_error(
                error_text("rate_limit_set", limit=limit, asked=amount), title=TITLES["rate_limit"]
            )
        keys = self.rate_keys(request)
        wait = self.edits.take(keys, limit, amount)
        if wait:
            left = int(limit - max(self.edits.total(key) for key in keys))
            if amount > 1 and left > 0:
                message = error_text("rate_limit_left", left=left, wait=f"{wait:.0f}")
            else:
                message = error_text("rate_limit", wait=f"{wait:.0f}", limit=limit)
            raise user_error(message, title=TITLES["rate_limit"])

    def rate_keys(self, request: gr.Request) -> list[str]:
        """The keys the per-minute limit counts this caller's edits under: its address and its
        session."""
        address = visitor_address(
            request.client.host if request.client else None,
            request.headers.get("x-forwarded-for"),
            self.settings.trusted_proxies,
            self.settings.on_space,
        )
        # Per visitor only where the address is the visitor's: behind an untrusted proxy it is the
        # proxy's, shared by all, and one visitor would lock out every other; then per session.
        keys = [f"visitor:{address_key(address)}"] if address else []
        session = getattr(request, "session_hash", None)  # MCP calls come without a session
        if session:
            keys.append(f"session:{session}")
        return keys or ["anonymous"]

    async def show(self, saved: SavedEdit) -> Shown:
        """Link the saved images into Gradio's cache, where they are served without hashing."""
        paths = await asyncio.to_thread(self.backend.show, saved.paths, saved.record)
        return Shown(saved, paths)

    # --- the public API: scripts (gradio_client) and agents (MCP) ----------------------------

    async def edit(
        self,
        image1: str,
        prompt: str,
        image2: str | None = None,
        image3: str | None = None,
        size: str = "auto",
        model: str = "auto",
        api_key: str | None = None,
        mask: str | None = None,
        variants: int = 1,
        request: gr.Request = None,
    ) -> tuple[FileData, dict | str]:
        # gr.api passes values through unchecked: text parameters must be text before anything else
        for name, value in (("prompt", prompt), ("size", size), ("model", model), ("api_key", api_key)):
            if value is not None and not isinstance(value, str):
                raise user_error(error_text("api_text", name=name), title=TITLES["error"])
        images = ordered_images([api_image(value, n) for n, value in enumerate((image1, image2, image3), 1)])
        size = api_size(size)
        region = api_mask(mask)
        n = api_variants(variants)
        self.check_rate(request, n)
        key = (api_key or "").strip() or None
        try:
            outcomes = sorted(
                [
                    o
                    async for o in self.backend.edit_set(
                        n, prompt, images, size, model, visitor_key=key, page=False, mask=region
                    )
                ],
                key=lambda outcome: outcome[0],
            )
        except (BusyError, DailyLimitError, JuheError) as exc:  # refused whole: nothing was sent
            raise edit_error(exc) from None
        made = [(i, saved) for i, saved in outcomes if isinstance(saved, SavedEdit)]
        failed = [(i, exc) for i, exc in outcomes if not isinstance(exc, SavedEdit)]
        for _, exc in failed:
            if not isinstance(exc, JuheError):
                raise exc  # a fault of this app, not of an edit: Gradio masks it
        if not made:
            raise edit_error(failed[0][1]) from None
        root = _root_url(request)
        links, first = {}, None
        for index, saved in made:  # in index order: the first made variant is the image output
            shown = await self.show(saved)
            links[index] = [f"{root}/gradio_api/file={encode_file_path(p)}" for p in shown.paths]
            first = first or shown
        result = first.saved.result
        width, height = await asyncio.to_thread(pixel_size, first.paths[0])
        record = {
            "order_id": result.order_id,
            "images": [link for index, _ in made for link in links[index]],
            "size": f"{width}*{height}",
            "model": result.model,
            "elapsed_s": result.elapsed_s,
            "simulated": first.saved.simulated,
            "warnings": list(dict.fromkeys(w for _, saved in made for w in saved.result.warnings)),
        }
        if n > 1:  # only then: a caller of one edit keeps the record it knew
            record["variants"] = [
                {"index": i, "order_id": outcome.result.order_id, "images": links[i]}
                if isinstance(outcome, SavedEdit)
                else {
                    "index": i,
                    "error": {"code": outcome.code, "kind": outcome.kind, "message": str(outcome)},
                }
                for i, outcome in outcomes
            ]
        if _called_by_mcp(request):
            # MCP hands a dict to its clients as str(dict), a Python repr; agents parse JSON.
            # gradio_client callers keep their dict.
            return FileData(path=first.paths[0]), json.dumps(record, ensure_ascii=False)
        return FileData(path=first.paths[0]), record

    edit.__doc__ = API_DESCRIPTION

    # --- the page: running an edit ---------------------------------------------------------------

    async def edit_image(
        self,
        image1: str | None,
        image2: str | None,
        image3: str | None,
        prompt: str,
        size_choice: str | None,
        width: float | None,
        height: float | None,
        model: str | None,
        url1: str | None,
        url2: str | None,
        url3: str | None,
        api_key: str | None,
        region: dict | None,
        painting: bool,
        preset_mask: int | None,
        history: list | None,
        browser_ids: list | None,
        chain: dict | None = None,
        variants: str | None = None,
        request: gr.Request = None,
    ):
        """The run button: validate, show that it is working, count the seconds in the status line
        while the provider works, then show the result, its before/after, the API call and the
        history. A visitor who presses Cancel stops waiting; the edit itself goes on and is collected
        later (`collect_late`). A failure is said in the status line and one toast, in the visitor's
        language first; whatever was on show stays (the event hides Gradio's own progress and error
        overlay, which would cover it)."""
        chinese = request_chinese(request)
        try:
            images = ordered_images(page_images([image1, image2, image3], [url1, url2, url3]))
            size = page_size(size_choice, width, height)
            preset = PRESET_MASKS[preset_mask] if isinstance(preset_mask, int) else None
            mask = painted_mask(region, preset) if painting else None
            if mask is not None and size not in ("auto", ORIGINAL_SIZE):
                gr.Warning(error_text("region_size"))  # a region edit is always at 图1's own size
                size = "auto"
            n = api_variants(int(variants or 1))  # "1"-"4": the gate lets only the Radio's choices in
            self.check_rate(request, n)
        except gr.Error as exc:
            yield view(status=failed_status(exc, chinese, bool(history)), cancel=gr.update(interactive=False))
            raise for_visitor(exc, chinese) from None
        if len(images) >= 2 and not NAMES_AN_IMAGE.search(prompt or ""):
            gr.Warning(error_text("name_images"))
        # "Editing…" and Cancel come from the click itself (app.js `juheRunStarts`): from here, a
        # first update could arrive after a quick Cancel and undo what it said

        key = (api_key or "").strip() or None
        session = getattr(request, "session_hash", None)
        parent = chains.chain_parent(chain, image1, url1)  # the record remembers what 图1 came from
        started = time.monotonic()
        typical = max(1.0, self.backend.typical_seconds())
        try:
            admission = await self.backend.admit(n, key)  # the whole set, or nothing is sent
        except (BusyError, DailyLimitError) as exc:
            error = edit_error(exc)
            yield view(
                status=failed_status(error, chinese, bool(history), exc), cancel=gr.update(interactive=False)
            )
            raise for_visitor(error, chinese, exc) from None
        pending = self.backend.start_set(
            admission, session, prompt, images, size, model, key, mask=mask, parent=parent
        )
        index_of = {one.task: index for index, one in enumerate(pending)}
        arrived: list[tuple[int, Shown | Exception]] = []  # in the order they came
        waiting = set(index_of)
        try:
            while waiting:
                done, waiting = await asyncio.wait(
                    waiting, timeout=TICK_S, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    status = waiting_status(time.monotonic() - started, typical, chinese)
                    if n > 1:
                        status += say("variants_progress", chinese, done=len(arrived), n=n)
                    yield view(status=status)
                    continue
                for task in sorted(done, key=index_of.get):
                    exc = task.exception()
                    if exc is not None and not isinstance(exc, (BusyError, DailyLimitError, JuheError)):
                        raise exc
                    arrived.append((index_of[task], exc or await self.show(task.result())))
                if waiting and any(isinstance(o, Shown) for _, o in arrived):
                    # results appear as each arrives, not after the slowest
                    status = waiting_status(time.monotonic() - started, typical, chinese)
                    status += say("variants_progress", chinese, done=len(arrived), n=n)
                    yield view(
                        status=status, **await self._set_view(arrived, n, history, browser_ids, chinese)
                    )
        except asyncio.CancelledError:  # Cancel: the status is the cancel's own
            shown_tasks = {task for task, index in index_of.items() if any(i == index for i, _ in arrived)}
            for one in pending:
                if one.task not in shown_tasks:  # each late result is still saved and collected
                    self.backend.abandon(one)
            raise

        made = [outcome for _, outcome in arrived if isinstance(outcome, Shown)]
        if not made:
            # earlier results stay on show; the status says so only when there are some
            exc = arrived[0][1]
            error = edit_error(exc)
            status = failed_status(error, chinese, bool(history), exc)
            yield view(status=status, cancel=gr.update(interactive=False))
            raise for_visitor(error, chinese, exc) from None

        shown = made[0]  # the first to arrive is the result on show
        result = shown.saved.result
        for note in dict.fromkeys(note for one in made for note in one.saved.result.warnings):
            gr.Warning(html.escape(note, quote=False))
        before = images[0] if isinstance(images[0], str) and not is_http_url(images[0]) else None
        rid = shown.saved.record.id if shown.saved.record else None
        # Delete removes the visitor's upload too (registered with the slider's copy: one write)
        upload = (before,) if before and _visitor_file(before) else ()
        compare = await self._compare(before, shown.paths[0], rid, also=upload)
        # reading each image's header is file work: off the event loop, as every edit's
        mimes = await asyncio.to_thread(lambda: tuple(None if is_http_url(i) else mime_of(i) for i in images))
        call = snippets.Call(
            prompt=result.prompt,
            images=snippets.file_names(images),
            mimes=mimes,
            size=result.size,
            model=result.model,
            endpoint=self.settings.client.api_url,
            app_url=_root_url(request) or "http://127.0.0.1:7860",
            own_key=key is not None,
            original=size == ORIGINAL_SIZE or mask is not None,
            region=result.region if mask is not None else None,
            offline=self.settings.offline,
        )
        status = self._done(shown, chinese)
        if n > 1:
            status += say("variants_done", chinese, ok=len(made), n=n)
            if len(made) < len(arrived):
                status += say("variants_failed", chinese, failed=len(arrived) - len(made))
        yield view(
            status=status,
            **await self._set_view(arrived, n, history, browser_ids, chinese),
            compare=compare,
            share_box=gr.update(value="", visible=False),
            revoke=gr.update(visible=False),
            cancel=gr.update(interactive=False),
            api_panel=gr.update(visible=True),
            curl=snippets.curl(call),
            python=snippets.python_client(call),
            gradio=snippets.gradio_client(call),
            api_files=await self._snippet_files(images[0], mask),
            record=gr.update(value=opened.record_text(shown.saved.record, chinese), visible=True),
        )

    async def _set_view(
        self, arrived: list, n: int, history: list | None, browser_ids: list | None, chinese: bool
    ) -> dict:
        """The page's values for the results of a run so far: the first to arrive on show, every one
        in the results grid in the order they came (a failed variant as a tile naming its code, in
        its own place), and the made ones in the history as one run."""
        made = [outcome for _, outcome in arrived if isinstance(outcome, Shown)]
        first = made[0]
        entries = [entry for one in made for entry in self._entries(one)]
        tiles: list = []
        results: list = []
        if n == 1:
            tiles, results = list(first.paths), entries
        else:
            failed_tile = await asyncio.to_thread(_failed_tile, get_upload_folder())
            for index, outcome in arrived:
                if isinstance(outcome, Shown):
                    own = self._entries(outcome)
                    tiles += [(entry["path"], f"{index + 1}/{n}") for entry in own]
                    results += own
                else:
                    code = (
                        outcome.code
                        if getattr(outcome, "code", None) is not None
                        else _failure_label(outcome)
                    )
                    tiles.append((failed_tile, say("variant_failed", chinese, code=code, n=index + 1)))
                    results.append({"failed": str(code)})  # not selectable: nothing to open
        ids = list(browser_ids or [])
        for one in reversed(made):
            ids = _remember(ids, one)
        history = (entries + list(history or []))[:HISTORY_KEPT]
        return {
            "empty": gr.update(visible=False),
            "result": gr.update(value=first.paths[0], visible=True),
            "gallery": gr.update(value=tiles, visible=len(tiles) > 1 or n > 1, selected_index=None),
            "actions": gr.update(visible=True),
            "history": gr.update(value=_gallery(history), visible=True),
            "history_state": history,
            "results_state": results,
            "open_state": entries[0],
            "browser_ids": ids,
        }

    async def _snippet_files(self, image1: object, mask: Image.Image | None):
        """For a region edit, the crop and mask its code snippets name, to download beside them."""
        if mask is None or not isinstance(image1, str) or is_http_url(image1):
            return gr.update(value=None, visible=False)
        try:
            files = await asyncio.to_thread(region_files, image1, mask, get_upload_folder())
        except (OSError, ValueError, JuheError):
            files = []
        return gr.update(value=files or None, visible=bool(files))

    def _done(self, shown: Shown, chinese: bool) -> str:
        result = shown.saved.result
        region = say("region_done", chinese) if result.region else ""
        text = say(
            "done", chinese, order=md_code(result.order_id).strip("`"), seconds=f"{result.elapsed_s:.1f}"
        )
        if len(shown.paths) > 1:
            text += say("results_count", chinese, count=len(shown.paths))
        if shown.saved.simulated:
            text += say("simulated", chinese)
        return text + region

    def _entries(self, shown: Shown) -> list[HistoryEntry]:
        """History entries of one edit: one per image, all carrying the result's id."""
        result = shown.saved.result
        return history_entries(shown.saved.record, shown.paths, result.prompt, result.order_id)

    async def _compare(self, before: str | None, after: str, rid: str | None = None, also: tuple = ()):
        """The slider's value: 图1 fitted into the result's frame, so both layers cover one box; a
        copy the result's Delete removes (with the files in `also`, registered in the same write)."""
        fitted = None
        if before:
            try:
                fitted = await asyncio.to_thread(fit_before, before, after, get_upload_folder())
            except (OSError, ValueError):
                fitted = None
        copies = (*also, *([fitted] if fitted else []))
        if rid and copies:
            await self.backend.run_file_work(self.backend.store.register_copy, rid, *copies)
        if fitted is None:
            return gr.update(value=None, visible=False)
        return gr.update(value=(fitted, after), visible=True)

    async def _before_of(self, entry: dict) -> str | None:
        """The store's "before" copy of a history entry's 图1, made the first time it is asked for
        (not by the edit: issue 19); None when the result has none."""
        rid = entry.get("id")
        if not entry.get("before") or not rid:
            return entry.get("before")
        # decoding 图1 runs on a worker thread, not the store's own (it would hold up every save)
        made = await asyncio.to_thread(self.backend.store.before_copy, rid)
        return str(made) if made else None

    def cancel_edit(self, request: gr.Request = None):
        """Cancel: the page is free again; a late result is collected by the timer."""
        chinese = request_chinese(request)
        return view(
            status=say("cancelled", chinese), cancel=gr.update(interactive=False), timer=gr.Timer(active=True)
        )

    async def collect_late(self, history: list | None, browser_ids: list | None, request: gr.Request = None):
        """The timer after a cancel: add results of cancelled edits that finished after all."""
        chinese = request_chinese(request)
        edits, running = self.backend.collect_late(getattr(request, "session_hash", None))
        if not edits:
            return view(timer=gr.Timer(active=running))
        entries, ids = [], list(browser_ids or [])
        for saved in edits:
            shown = await self.show(saved)
            entries = self._entries(shown) + entries
            ids = _remember(ids, shown)
        history = (entries + list(history or []))[:HISTORY_KEPT]
        return view(
            status=say("late", chinese, order=md_code(edits[-1].result.order_id).strip("`")),
            history=gr.update(value=_gallery(history), visible=True),
            history_state=history,
            browser_ids=ids,
            timer=gr.Timer(active=running),
        )

    # --- the page: looking at results -------------------------------------------------------------

    async def open_result(self, results: list | None, evt: gr.SelectData, request: gr.Request = None):
        """A click on one of this edit's results: show it large, with its before/after and record (the
        API panel already shows this edit's own call)."""
        if not results or not 0 <= evt.index < len(results):
            return view()
        entry = results[evt.index]
        if entry.get("failed"):  # a variant that failed: its tile only names its code
            return view()
        record, _ = await self._item_record(entry, request, with_call=False)
        return view(result=entry["path"], open_state=entry, **record, **await self._item_compare(entry))

    async def open_history(self, history: list | None, evt: gr.SelectData, request: gr.Request = None):
        """A click on a history item: open it in the result panel, large, with its actions, its whole
        record and the API call that would make it again."""
        if not history or not 0 <= evt.index < len(history):
            return view()
        entry = history[evt.index]
        record, call = await self._item_record(entry, request)
        return view(
            **record,
            **call,
            empty=gr.update(visible=False),
            result=gr.update(value=entry["path"], visible=True),
            gallery=gr.update(visible=False),
            actions=gr.update(visible=True),
            share_box=gr.update(value="", visible=False),
            revoke=gr.update(visible=False),
            open_state=entry,
            **await self._item_compare(entry),
        )

    async def _item_record(self, entry: dict, request: gr.Request | None, with_call: bool = True):
        """The record panel of an opened result, and (`with_call`) the API panel's values for it,
        rebuilt from the store's record; without a record (it was deleted meanwhile) the panel says
        what the page knows and the API panel is hidden rather than wrong."""
        chinese = request_chinese(request)
        rid = entry.get("id")
        found = await self.backend.run_file_work(self.backend.store.get, rid) if rid else None
        text = opened.record_text(found, chinese, entry.get("prompt") or "", entry.get("order") or "")
        shown = {"record": gr.update(value=text, visible=True)}
        if not with_call:
            return shown, {}
        if found is None:
            return shown, {"api_panel": gr.update(visible=False)}
        facts = await asyncio.to_thread(opened.sidecar_facts, found.sidecar)
        call = opened.record_call(
            found,
            facts,
            endpoint=self.settings.client.api_url,
            app_url=_root_url(request) or "http://127.0.0.1:7860",
            offline=self.settings.offline,
        )
        return shown, {
            "api_panel": gr.update(visible=True),
            "curl": snippets.curl(call),
            "python": snippets.python_client(call),
            "gradio": snippets.gradio_client(call),
            "api_files": gr.update(value=None, visible=False),
        }

    async def _item_compare(self, entry: dict) -> dict:
        """The before/after of a result opened again: from the store's copy of its 图1."""
        before = await self._before_of(entry)
        return {"compare": await self._compare(before, entry["path"], entry.get("id"))}

    def reuse_result(self, entry: dict | None):
        """Continue editing: the result on show becomes 图1 (a link typed for 图1 is cleared, or it
        would win), and a painting made for the old 图1 is dropped."""
        if not entry:
            raise user_error(error_text("no_result"))
        return entry["path"], "", *self.close_region()

    # --- the page: history across reloads, sharing, deleting ---------------------------------------

    async def restore_history(self, browser_ids: list | None):
        """On page load: this browser's own results, looked up by the ids it kept."""
        ids = [i for i in (browser_ids or []) if isinstance(i, str)][:HISTORY_KEPT]
        history, kept = [], []
        for rid in ids:
            record = await self.backend.run_file_work(self.backend.store.get, rid)
            if record is None:
                continue  # deleted, expired, or never ours: forgotten
            paths = await asyncio.to_thread(self.backend.show, list(record.images), record)
            kept.append(rid)
            history += history_entries(record, paths, record.prompt, record.order_id)
        return view(
            history=gr.update(value=_gallery(history), visible=bool(history)),
            history_state=history,
            browser_ids=kept,
        )

    async def share_result(self, entry: dict | None, steps: bool = False, request: gr.Request = None):
        """Make (or show again) the share link of the result on show; with `steps` its page shows the
        edits that led to it too."""
        if not entry or not entry.get("id") or not self.settings.sharing:
            raise user_error(error_text("no_result"))
        token = await self.backend.run_file_work(self.backend.store.share, entry["id"], steps is True)
        if token is None:
            raise user_error(error_text("no_result"))
        base = self.settings.public_url or _root_url(request)
        # the link opens in the language the page is shown in (the share page offers the other)
        lang = "zh" if request_chinese(request) else "en"
        return view(
            share_box=gr.update(value=f"{base}/share/{token}?lang={lang}", visible=True),
            revoke=gr.update(visible=True),
        )

    async def revoke_share(self, entry: dict | None, request: gr.Request = None):
        """Revoke the share link of the result on show (through its id, never a token from outside),
        and say so in the status line."""
        chinese = request_chinese(request)
        revoked = False
        if entry and entry.get("id"):
            record = await self.backend.run_file_work(self.backend.store.get, entry["id"])
            if record is not None and record.share:
                await self.backend.run_file_work(self.backend.store.revoke, record.share)
                revoked = True
        return view(
            status=say("revoked" if revoked else "no_link", chinese),
            share_box=gr.update(value="", visible=False),
            revoke=gr.update(visible=False),
        )

    async def delete_result(
        self,
        confirmed: bool,
        entry: dict | None,
        history: list | None,
        results: list | None,
        browser_ids: list | None,
        image1: str | None = None,
        image2: str | None = None,
        image3: str | None = None,
        request: gr.Request = None,
    ):
        """Delete the result on show, once the visitor confirmed: its files, its share link and its
        shown copies; the status line says it is done. A 图 slot that shows the visitor's upload
        deleted with it (Gradio keeps one file per upload's content, so a photo used again is the same
        file) is emptied, rather than left to fail at the next edit as unreadable."""
        slots = (image1, image2, image3)
        if not confirmed or not entry:
            return *view(), *(gr.skip() for _ in slots)
        if not entry.get("id"):
            raise user_error(error_text("no_result"))
        rid = entry["id"]
        await self.backend.run_file_work(self.backend.store.delete, rid)
        history = [h for h in (history or []) if h.get("id") != rid]
        results = [r for r in (results or []) if r.get("id") != rid]
        ids = [i for i in (browser_ids or []) if i != rid]
        chinese = request_chinese(request)
        gone = [bool(slot) and isinstance(slot, str) and not os.path.exists(slot) for slot in slots]
        return *view(
            status=say("deleted", chinese) + (say("deleted_slots", chinese) if any(gone) else ""),
            empty=gr.update(visible=True),
            result=gr.update(value=None, visible=False),
            gallery=gr.update(value=None, visible=False),
            compare=gr.update(value=None, visible=False),
            actions=gr.update(visible=False),
            share_box=gr.update(value="", visible=False),
            revoke=gr.update(visible=False),
            record=gr.update(value="", visible=False),
            history=gr.update(value=_gallery(history), visible=bool(history)),
            history_state=history,
            results_state=results,
            open_state=None,
            browser_ids=ids,
        ), *(gr.update(value=None) if went else gr.skip() for went in gone)

    def show_custom_size(self, choice: str):
        """The width and height boxes are shown for "Custom…" only."""
        return gr.update(visible=choice == "custom")

    async def accept_upload(self, image: str | None):
        """On upload (Gradio has checked the image by now): an iPhone photo (HEIC), which browsers
        cannot show, is replaced by an upright JPEG of it, without its metadata."""
        if not image:
            return gr.skip()
        jpeg = await asyncio.to_thread(heif_preview, image, get_upload_folder())
        return jpeg or gr.skip()

    async def open_region(self, image1: str | None):
        """Show the region editor with 图1 to paint on."""
        if not image1:
            raise user_error(error_text("paint_first"), title=TITLES["image1"])
        value = await _editor_value(image1)
        return gr.update(visible=True), value, gr.update(visible=False), True, None

    async def load_region_example(self, image1: str | None, prompt: str):
        """The region-edit example: 图1 and the instruction are filled by the example; its mask
        (chosen here, by the example's index) is shown tinted in the editor (more strokes can be
        added) and used as the painting."""
        if not image1:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        value = await _editor_value(image1, PRESET_MASKS[0])
        return gr.update(visible=True), value, gr.update(visible=False), True, 0

    def close_region(self):
        """Back to editing the whole image: the painting is dropped."""
        return gr.update(visible=False), None, gr.update(visible=True), False, None

    async def follow_image1(self, image1: str | None, painting: bool):
        """The visitor put another 图1 while painting: paint on the new one (the old strokes, and a
        ready-made mask, no longer apply)."""
        if not painting:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        if not image1:
            return self.close_region()
        return gr.skip(), await _editor_value(image1), gr.skip(), gr.skip(), None

    # --- the page: edit chains and reordering 图1-图3 (issue 18) ----------------------------------

    def remember_parent(self, entry: dict | None):
        """Continue editing: remember which result now sits in 图1 (its id and shown path), so the
        next edit's record names it as its parent."""
        if not entry or not entry.get("id"):
            return None
        return {"id": entry["id"], "path": entry["path"]}

    def forget_parent(self):
        """The visitor put another 图1 (or cleared it): the next edit is made from nothing saved."""
        return None

    def show_made_from(self, entry: dict | None, history: list | None, request: gr.Request = None):
        """The "made from …" line and its button under the result on show: only when its parent is in
        this browser's history (a chain never leads into results this browser does not hold)."""
        parent = _parent_entry(entry, history)
        if parent is None:
            hidden = gr.update(visible=False)
            return gr.update(value="", visible=False), hidden, gr.update(value=False, visible=False)
        chinese = request_chinese(request)
        prompt = html.escape(parent["prompt"][:120], quote=False) or "—"
        text = chain_say("made_from", chinese, prompt=prompt)
        steps = gr.update(visible=self.settings.sharing)  # "share the steps too": only for a chain
        return gr.update(value=text, visible=True), gr.update(visible=True), steps

    async def open_parent(self, entry: dict | None, history: list | None, request: gr.Request = None):
        """Open the result the one on show was made from, as a click on it in the history would."""
        parent = _parent_entry(entry, history)
        if parent is None:
            return view()
        return await self.open_history(history, SimpleNamespace(index=history.index(parent)), request)

    def swapper(self, a: int, b: int):
        """The handler of the button that swaps slots `a` and `b`: images and links move together
        (returned, so the gate issues the moved files to this session), and when the instruction names
        an image that moved, a suggestion to renumber it is shown; the instruction itself is left
        alone until the visitor applies it."""

        def swap_slots(
            image_a: str | None,
            image_b: str | None,
            link_a: str | None,
            link_b: str | None,
            prompt: str | None,
            order: list | None,
            request: gr.Request = None,
        ):
            moved = chains.compose_swap(order, a, b)
            chinese = request_chinese(request)
            return (
                image_b,
                image_a,
                link_b or "",
                link_a or "",
                list(moved),
                *_suggestion(prompt, moved, chinese),
            )

        swap_slots.__name__ = f"swap_slots_{a}{b}"
        return swap_slots

    def suggest_renumber(self, prompt: str | None, order: list | None, request: gr.Request = None):
        """The instruction changed while a swap is pending: say again what applying would give."""
        if tuple(chains.compose_swap(order, 1, 1)) == chains.IDENTITY:
            return gr.skip(), gr.skip()  # no swap pending: nothing to say
        chinese = request_chinese(request)
        return _suggestion(prompt, chains.compose_swap(order, 1, 1), chinese)

    def apply_renumber(self, prompt: str | None, order: list | None):
        """Apply: the instruction's 图N references follow the swapped images; the suggestion goes."""
        moved = chains.compose_swap(order, 1, 1)
        return chains.renumber(prompt or "", moved), list(chains.IDENTITY), *_suggestion("", chains.IDENTITY)

    def keep_prompt(self):
        """Keep the instruction as it is: the suggestion goes, and the swaps so far are settled."""
        return list(chains.IDENTITY), *_suggestion("", chains.IDENTITY)

    # --- the page: what changed, and download as (issue 18) ------------------------------------

    def reset_views(self, entry: dict | None):
        """Another result on show (or none): the views panel follows it, computed again on demand."""
        return (
            gr.update(visible=bool(entry)),
            gr.update(value=None, visible=False),
            gr.update(value="", visible=False),
            gr.update(value=None, visible=False),
        )

    async def show_changes(self, entry: dict | None, request: gr.Request = None):
        """What changed: the overlay and its sentence, computed only when asked, in a worker thread."""
        chinese = request_chinese(request)
        if not entry:
            raise user_error(error_text("no_result"))
        before = await self._before_of(entry)
        if not before:
            raise view_error("changes_no_before")
        rid = entry.get("id")
        record = await self.backend.run_file_work(self.backend.store.get, rid) if rid else None
        box = await asyncio.to_thread(painted_box, record.sidecar if record else None)
        try:
            path, changes = await asyncio.to_thread(
                what_changed, before, entry["path"], get_upload_folder(), box
            )
        except (OSError, ValueError):
            raise view_error("changes_no_before") from None
        if rid:  # Delete removes the overlay too
            await self.backend.run_file_work(self.backend.store.register_copy, rid, path)
        return gr.update(value=path, visible=True), gr.update(
            value=describe_changes(changes, box is not None, chinese), visible=True
        )

    async def export_file(self, entry: dict | None, fmt: str | None, quality: float | None):
        """Download as: the result on show as PNG, JPEG or WebP at the chosen quality, labelled."""
        if not entry:
            raise user_error(error_text("no_result"))
        fallback = {
            "provider": "juhe",
            "order_id": entry.get("order") or "unknown",
            "model": "",
            "prompt": entry.get("prompt") or "",
            "size": "",
            "inputs_sha256": [],
        }
        try:
            path = await asyncio.to_thread(
                export_result, entry["path"], fmt, quality, get_upload_folder(), fallback
            )
        except ExportError as exc:
            raise view_error(exc.key, **exc.values) from None
        if entry.get("id"):  # Delete removes the made file too
            await self.backend.run_file_work(self.backend.store.register_copy, entry["id"], path)
        return gr.update(value=path, visible=True)


def _parent_entry(entry: dict | None, history: list | None) -> dict | None:
    """The history entry (first image) of the result `entry` was made from, if this browser has it."""
    parent = (entry or {}).get("parent")
    if not parent:
        return None
    return next((h for h in history or [] if h.get("id") == parent and h.get("n") == 0), None)


def _suggestion(prompt: str | None, moved, chinese: bool = False) -> tuple:
    """The renumbering suggestion's text and its row's visibility (hidden when nothing moved that the
    instruction names)."""
    named = chains.moved_references(prompt or "", moved)
    if not named:
        return gr.update(value="", visible=False), gr.update(visible=False)
    names = ", ".join(f"图{n}" for n in named)
    preview = html.escape(chains.renumber(prompt or "", moved)[:300], quote=False)
    text = chain_say("swap_suggest", chinese, names=names, preview=f"<q>{preview}</q>")
    return gr.update(value=text, visible=True), gr.update(visible=True)


# --- pure helpers -------------------------------------------------------------------------------


def progress_share(elapsed: float, typical: float) -> float:
    """The progress bar while the provider works: steady up to 85 % at the typical time, then
    creeping on towards 95 % (a slow edit still moves, and never looks finished)."""
    if elapsed <= typical:
        return 0.05 + 0.8 * elapsed / typical
    return 0.85 + 0.1 * (1 - math.exp(-(elapsed - typical) / typical))


def waiting_status(elapsed: float, typical: float, chinese: bool) -> str:
    """The status line while the provider works: the seconds so far against the typical time, and a
    bar of text cells (`progress_share`). It is the page's only progress display: Gradio's own
    tracker is hidden on the run event, as it would cover the result on show."""
    filled = round(10 * progress_share(elapsed, typical))
    bar = "▰" * filled + "▱" * (10 - filled)
    return f"⏳ {say('waiting', chinese, elapsed=f'{elapsed:.0f}', typical=f'{typical:.0f}')} {bar}"


def failure_reason(error: gr.Error, chinese: bool, exc: Exception | None = None) -> str:
    """Why an edit failed, in the visitor's language only (the toast carries both), as Markdown
    text: the provider's words are in it, so nothing may become markup."""
    if isinstance(exc, JuheError):
        tail = exc.explanation.removeprefix(f"{exc.zh} / {exc.en}")
        why = html.escape(f"{exc.label}: {exc.zh if chinese else exc.en}{tail}", quote=False)
    else:
        zh, slash, en = error.message.partition(" / ")
        why = (zh if chinese or not slash else en).strip()
    why = re.sub(r"([\\`*_\[\]()|~#<>])", r"\\\1", why.rstrip("."))
    # Markdown turns a bare address into a link: a zero-width space keeps it text
    return re.sub(r"(?i)(://|www\.)", lambda m: m[1][0] + "\u200b" + m[1][1:], why)


def failed_status(error: gr.Error, chinese: bool, kept: bool, exc: Exception | None = None) -> str:
    """The status line after a failed edit: what went wrong, and that earlier results stay (said
    only when there are some)."""
    why = failure_reason(error, chinese, exc)
    return say("edit_failed_kept" if kept else "edit_failed", chinese, why=why)


def for_visitor(error: gr.Error, chinese: bool, exc: Exception | None = None) -> gr.Error:
    """The same toast with the visitor's language first (both kept), gone after a while: the status
    line keeps saying why, so toasts do not pile up over the page."""
    fresh = gr.Error(error.message, title=error.title, duration=10, print_exception=False)
    return in_visitor_language(fresh, chinese, exc or getattr(error, "juhe_source", None))


def api_image(value: object, number: int) -> str | Path | None:
    """One image of the public API: a link or data URI as given, or a file gradio_client uploaded.

    A plain string that is neither would be read by the client as a path on this server, and a
    file object whose path is a link would have Gradio fetch it: both are refused.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        path = value.get("path")
        if isinstance(path, str) and not is_http_url(path) and _in_upload_folder(path):
            return Path(path)
    elif isinstance(value, str):
        text = value.strip()
        if is_http_url(text) or text.startswith("data:"):
            return text
    raise user_error(error_text("api_image", n=number), title=TITLES["image"])


def api_variants(value: object) -> int:
    """How many variants the public API asks for: a whole number from 1 to `MAX_VARIANTS` (None is
    the default, 1). Gradio checks nothing here; a bool, a float (even 2.0) or text is refused, as
    each variant is a billed call and the caller must have meant the number."""
    if value is None:
        return 1
    if type(value) is not int or not 1 <= value <= MAX_VARIANTS:
        raise user_error(error_text("variants", most=MAX_VARIANTS), title=TITLES["error"])
    return value


def api_size(size: str | None) -> str:
    """`auto`, `original` (图1's exact size), or `W*H` / `WxH` with sides in range; refused with a
    clear message before sending."""
    if isinstance(size, str) and size.strip().lower() == ORIGINAL_SIZE:
        return ORIGINAL_SIZE
    try:
        return parse_size(size) or "auto"
    except JuheError as exc:
        raise juhe_error(exc) from None


def api_mask(value: object) -> str | Path | None:
    """The public API's optional mask: a data URI, or a file gradio_client uploaded. A link is
    refused: a region edit needs the mask's pixels here, and this server never fetches links."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().startswith("data:"):
        return value.strip()
    if isinstance(value, dict) and not is_http_url(value.get("path") or ""):
        path = value.get("path")
        if isinstance(path, str) and _in_upload_folder(path):
            return Path(path)
    raise user_error(error_text("mask_form"), title=TITLES["image"])


def painted_mask(region: dict | None, preset: Path | None = None) -> Image.Image | None:
    """The mask of what the visitor painted over 图1 in the region editor (any stroke, at any
    opacity, means change) together with a ready-made `preset` mask (white: change), or None when
    nothing is painted."""
    mask = None
    if preset:
        with Image.open(preset) as opened:
            mask = opened.convert("L").point(lambda v: 255 if v > 127 else 0)
    for layer in (region or {}).get("layers") or []:
        if layer is None or layer.mode not in ("RGBA", "LA"):
            continue
        alpha = layer.getchannel("A").point(lambda a: 255 if a else 0)
        if mask is not None and mask.size != alpha.size:
            alpha = alpha.resize(mask.size)
        mask = alpha if mask is None else ImageChops.lighter(mask, alpha)
    return mask if mask is not None and mask.getbbox() else None


def page_size(choice: str | None, width: float | None, height: float | None) -> str:
    """The size the page asks for: a preset, auto, or the custom width and height (checked)."""
    if choice != "custom":
        return api_size(choice or "auto")
    if width is None or height is None:
        return api_size("custom")
    return api_size(f"{int(width)}*{int(height)}")


def page_images(slots: list[str | None], links: list[str | None]) -> list[str | None]:
    """One input per slot of the page: a link typed under Advanced wins over an upload (the page
    says so beside the slot)."""
    chosen: list[str | None] = []
    for number, (upload, link) in enumerate(zip(slots, links, strict=True), start=1):
        link = (link or "").strip()
        # Only http(s): the client also reads local paths and data URIs, and a path typed here
        # would make the server read its own files (another visitor's results) and send them out.
        if link and not is_http_url(link):
            raise user_error(error_text("link_scheme", n=number), title=TITLES["link"])
        chosen.append(link or upload)
    return chosen


def ordered_images(images: list) -> list:
    """The images without trailing blanks; 图 numbers must not shift, so a gap is refused."""
    chosen = list(images)
    while chosen and not chosen[-1]:
        chosen.pop()
    if not chosen:
        raise user_error(error_text("no_image1"), title=TITLES["image1"])
    if not all(chosen):
        missing = next(i for i, item in enumerate(chosen, start=1) if not item)
        raise user_error(error_text("slot_gap", n=missing), title=TITLES["order"])
    return chosen


async def _editor_value(image1: str, mask: Path | None = None) -> dict:
    """The region editor's value: a preview-sized copy of 图1 (with a ready-made mask tinted)."""
    preview = await asyncio.to_thread(editor_preview, image1, get_upload_folder(), mask)
    return {"background": preview, "layers": [], "composite": preview}


def _gallery(history: list) -> list:
    captions = chains.chain_captions(history)  # "⛓ 2/3 · " for the steps of an edit chain
    sets = collections.Counter(entry.get("group") for entry in history if entry.get("group"))
    return [
        (entry["path"], caption + _set_caption(entry, sets) + entry["prompt"][:120])
        for entry, caption in zip(history, captions, strict=True)
    ]


def _set_caption(entry: dict, sets: collections.Counter) -> str:
    """ "🎲×3 · " on each result of a set of variants in this history: the marks of one run."""
    group = entry.get("group")
    return f"🎲×{sets[group]} · " if group and sets[group] > 1 else ""


def _failure_label(exc: Exception) -> str:
    """A failed variant's short name when it has no provider code (a timeout, a refused answer)."""
    return exc.kind if isinstance(exc, JuheError) else type(exc).__name__


def _failed_tile(folder: str) -> str:
    """A plain grey tile standing for a failed variant in the results grid (its caption names the
    code), made once in Gradio's cache folder. File work: call it from a worker thread."""
    path = Path(folder) / "juhe-variants" / "failed.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        Image.new("RGB", (256, 256), (200, 200, 200)).save(staging, "PNG")
        staging.replace(path)  # atomic: two runs at once never see half a file
    return str(path)


def _remember(browser_ids: list | None, shown: Shown) -> list:
    """The browser's result ids with this edit's first: ids only, never images or paths."""
    record = shown.saved.record
    ids = [i for i in (browser_ids or []) if isinstance(i, str)]
    if record is not None:
        ids = [record.id] + [i for i in ids if i != record.id]
    return ids[:HISTORY_KEPT]


def _visitor_file(path: str) -> bool:
    """True for a file a visitor sent (an upload, a HEIC preview), not a result shown again."""
    return _in_upload_folder(path) and "juhe-results" not in Path(path).parts


def _in_upload_folder(path: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve())
    except (OSError, ValueError):
        return False


def _root_url(request: gr.Request | None) -> str:
    """The app's public address as this caller reached it (Gradio's own rule, proxies included).

    A queued call gets a `gr.Request`; an MCP call run directly gets Starlette's request itself.
    Inside the MCP sub-app (a Starlette mount) `root_path` already ends in `/gradio_api/mcp`; a
    root built from it doubled that prefix (links that answered 404), so the mount is cut off. (Not
    `app_root_path`: for an app mounted in another that is the outer app's root, not this one's.)
    """
    inner = _starlette_request(request)
    if inner is None:
        return ""
    root_path = str(inner.scope.get("root_path") or "")
    root_path = root_path.removesuffix(MCP_MOUNT)
    return get_root_url(request=inner, route_path=inner.url.path, root_path=root_path)


def _starlette_request(request: gr.Request | None):
    inner = request.request if isinstance(request, gr.Request) else request
    return inner if inner is not None and hasattr(inner, "scope") else None


def _called_by_mcp(request: gr.Request | None) -> bool:
    """True when this call came through the MCP route (its scope is the MCP sub-app's)."""
    inner = _starlette_request(request)
    return inner is not None and str(inner.scope.get("root_path") or "").endswith(MCP_MOUNT)
