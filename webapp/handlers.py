"""What the page's events and the public API do. The layout and its wiring are in `webapp.ui`.

`Handlers` holds the settings, the backend and the rate limiter, built once at start and passed in;
no handler reads a module global, and per-visitor values live in `gr.State` only. (No
`from __future__ import annotations` here: `gr.api` reads the public endpoint's types at run time.)
"""

import asyncio
import html
import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData
from gradio.route_utils import get_root_url
from gradio.utils import get_upload_folder
from gradio_client.utils import encode_file_path
from PIL import Image

from juhe import JuheError, parse_size
from webapp.backend import Backend, BusyError, SavedEdit
from webapp.guards import address_key, visitor_address
from webapp.limits import RateLimiter
from webapp.settings import AppSettings
from webapp.spend import DailyLimitError
from webapp.texts import API_DESCRIPTION, TITLES, error_text, say, wants_chinese

HISTORY_KEPT = 60
NAMES_AN_IMAGE = re.compile(r"图\s*[123一二三]|(image|picture|photo|pic|img)\s*#?\s*[123]", re.IGNORECASE)
STAGE_SHARE = {"preparing": 0.05, "waiting": 0.3, "saving": 0.9}


def user_error(message: str, title: str = TITLES["error"], duration: float | None = 10) -> gr.Error:
    """A visitor-facing error: shown as a toast, not logged with a traceback (it is expected)."""
    return gr.Error(message, title=title, duration=duration, print_exception=False)


def juhe_error(exc: JuheError) -> gr.Error:
    """The toast for a failed edit. Toasts render HTML, and the message may hold provider text."""
    title = f"错误 Error {exc.code}" if exc.code else TITLES["error"]
    return user_error(html.escape(str(exc), quote=False), title=title, duration=None)


def is_http_url(value: str) -> bool:
    """True for an http(s) link, the only kind of link handed to the provider."""
    return value.strip().lower().startswith(("http://", "https://"))


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
        self.limiter = RateLimiter(settings.rate_limit)

    # --- the shared core ---------------------------------------------------------------------

    def check_rate(self, request: gr.Request | None) -> None:
        """Refuse when this session or this client address is over the per-minute limit."""
        if not self.settings.rate_limit or request is None:
            return
        address = visitor_address(
            request.client.host if request.client else None,
            request.headers.get("x-forwarded-for"),
            self.settings.trusted_proxies,
            self.settings.on_space,
        )
        # Per address only where the address is the visitor's (behind an untrusted proxy it is the
        # proxy's, shared by all); calls with neither share one key.
        keys = [f"address:{address_key(address)}"] if address else []
        session = getattr(request, "session_hash", None)  # MCP calls come without a session
        if session:
            keys.append(f"session:{session}")
        wait = self.limiter.retry_after(*(keys or ["anonymous"]))
        if wait:
            message = error_text("rate_limit", wait=f"{wait:.0f}", limit=self.settings.rate_limit)
            raise user_error(message, title=TITLES["rate_limit"])

    async def run_edit(
        self,
        prompt: str,
        images: list[object],
        size: str | None,
        model: str | None,
        api_key: str | None,
        on_stage=None,
    ) -> Shown:
        """Send one edit, save its results and link them into Gradio's cache for showing."""
        try:
            saved = await self.backend.edit(
                prompt, images, size, model, (api_key or "").strip() or None, on_stage
            )
        except BusyError:
            raise user_error(error_text("busy"), title=TITLES["busy"]) from None
        except DailyLimitError as exc:
            raise user_error(
                error_text("daily_limit", limit=exc.limit), title=TITLES["daily_limit"]
            ) from None
        except JuheError as exc:
            raise juhe_error(exc) from None
        cache_dir = get_upload_folder()  # results inside it are served without hashing on the event loop
        shown = await asyncio.to_thread(
            lambda: [self.backend.display_path(p, cache_dir) for p in saved.paths]
        )
        return Shown(saved, shown)

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
        request: gr.Request = None,
    ) -> tuple[FileData, dict]:
        images = [api_image(value, n) for n, value in enumerate((image1, image2, image3), start=1)]
        chosen = ordered_images(images)
        size = api_size(size)
        self.check_rate(request)
        shown = await self.run_edit(prompt, chosen, size, model, api_key)
        result = shown.saved.result
        root = _root_url(request)
        record = {
            "order_id": result.order_id,
            "images": [f"{root}/gradio_api/file={encode_file_path(p)}" for p in shown.paths],
            "size": await asyncio.to_thread(_pixel_size, shown.paths[0]),
            "model": result.model,
            "elapsed_s": result.elapsed_s,
            "simulated": shown.saved.simulated,
            "warnings": list(result.warnings),
        }
        return FileData(path=shown.paths[0]), record

    edit.__doc__ = API_DESCRIPTION

    # --- the page --------------------------------------------------------------------------------

    async def edit_image(
        self,
        image1: str | None,
        image2: str | None,
        image3: str | None,
        prompt: str,
        size: str | None,
        model: str | None,
        url1: str | None,
        url2: str | None,
        url3: str | None,
        api_key: str | None,
        history: list | None,
        request: gr.Request = None,
        progress: gr.Progress = gr.Progress(),
    ):
        """The run button: edit, then fill the gallery, the before/after, the status and the history."""
        chinese = wants_chinese(request.headers.get("accept-language") if request else None)
        images = ordered_images(page_images([image1, image2, image3], [url1, url2, url3]))
        self.check_rate(request)
        if len(images) >= 2 and not NAMES_AN_IMAGE.search(prompt or ""):
            gr.Warning(error_text("name_images"))
        if size == "custom":
            size = "auto"

        def on_stage(stage: str) -> None:
            progress(STAGE_SHARE[stage], desc=say(stage, chinese))

        shown = await self.run_edit(prompt, images, size, model, api_key, on_stage)
        result = shown.saved.result
        history = ([(path, result.prompt) for path in shown.paths] + list(history or []))[:HISTORY_KEPT]
        for note in result.warnings:
            gr.Warning(html.escape(note, quote=False))
        status = (
            f"✅ **{say('done', chinese)}** · {say('order', chinese)} `{result.order_id}` · "
            f"{result.elapsed_s:.1f} s · {say('saved', chinese)} `{_relative(shown.saved.paths[0])}`"
            + (f" · *{say('simulated', chinese)}*" if shown.saved.simulated else "")
        )
        before = image1 if image1 and not (url1 or "").strip() else None
        compare = (before, shown.paths[0]) if before else None
        return shown.paths, compare, status, history, history, shown.paths

    def mark_failed(self, results: list[str] | None, request: gr.Request = None):
        """After a failed edit: keep the earlier results on show and say they are the earlier ones."""
        chinese = wants_chinese(request.headers.get("accept-language") if request else None)
        return results or [], f"⚠️ {say('failed', chinese)}"

    def select_result(self, results: list[str] | None, image1: str | None, evt: gr.SelectData):
        """Remember the clicked result and show it against 图1."""
        chosen = results[evt.index] if results and 0 <= evt.index < len(results) else None
        compare = (image1, chosen) if image1 and chosen else gr.skip()
        return chosen, compare

    def reuse_result(self, selected: str | None, results: list[str] | None):
        """Make the selected (or first) result the new 图1."""
        chosen = selected or (results[0] if results else None)
        if not chosen:
            raise user_error(error_text("no_result"))
        return chosen

    def pick_size(self, choice: str):
        """Show the width and height boxes for a custom size and write their value into `size`."""
        if choice == "custom":
            return gr.update(visible=True), "1024*1024", 1024, 1024
        if choice == "auto" or "*" not in (choice or ""):
            return gr.update(visible=choice not in ("auto", "")), gr.skip(), gr.skip(), gr.skip()
        try:  # a preset or a typed "W*H": show it in the width and height boxes
            width, height = parse_size(choice).split("*")
        except (JuheError, ValueError):
            return gr.update(visible=True), gr.skip(), gr.skip(), gr.skip()
        return gr.update(visible=False), gr.skip(), int(width), int(height)

    def set_custom_size(self, width: float | None, height: float | None) -> str:
        """The `W*H` of the custom width and height."""
        return f"{int(width or 1024)}*{int(height or 1024)}"


# --- pure helpers -------------------------------------------------------------------------------


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


def api_size(size: str | None) -> str:
    """`auto`, or `W*H` / `WxH` with sides in range; refused with a clear message before sending."""
    try:
        return parse_size(size) or "auto"
    except JuheError as exc:
        raise juhe_error(exc) from None


def page_images(slots: list[str | None], links: list[str | None]) -> list[str | None]:
    """One input per slot of the page: a link typed under Advanced wins over an upload."""
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


def _in_upload_folder(path: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve())
    except (OSError, ValueError):
        return False


def _pixel_size(path: str) -> str:
    with Image.open(path) as image:
        return f"{image.width}*{image.height}"


def _root_url(request: gr.Request | None) -> str:
    """The app's public address as this caller reached it (Gradio's own rule, proxies included).

    A queued call gets a `gr.Request`; an MCP call run directly gets Starlette's request itself.
    """
    inner = request.request if isinstance(request, gr.Request) else request
    if inner is None or not hasattr(inner, "scope"):
        return ""
    return get_root_url(request=inner, route_path=inner.url.path, root_path=inner.scope.get("root_path"))


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
