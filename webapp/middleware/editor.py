"""Gradio's component server, a door of its own: `POST …/component_server` calls a component's server
functions directly, outside every event. This app has one that needs it: the region editor, which
sends its canvases (background, composite, one per layer) there before the Edit event, and
`ImageEditor.accept_blobs` keeps them in a dict on the component shared by every visitor until an
event takes them.

So only that function of that component passes, for a live session (one whose events passed the
gate), with one PNG or JPEG of at most `BLOB_BYTES` and `BLOB_PIXELS` (read from its header), a
known part, a layer index below `MAX_LAYERS` and a short id; its bytes count against the visitor's
upload allowance. A session keeps at most `IDS_PER_SESSION` paintings, each is dropped
`BLOB_TTL_S` after it arrived, whether or not an event took it, and all together hold at most
`HELD_BYTES`.
"""

from __future__ import annotations

import collections
import io
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from PIL import Image
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from webapp.gate import MAX_BLOB_ID, MAX_LAYERS, Issued
from webapp.middleware._asgi import read_body, refusal, replay, scope_visitor
from webapp.middleware.uploads import Allowance
from webapp.settings import AppSettings
from webapp.texts import error_text

BLOB_PIXELS = 4_000_000  # the editor paints on a copy of 图1 at most 1280 px long (1.6 MP)
BLOB_BYTES = 8 * 1024 * 1024
IDS_PER_SESSION = 2
HELD_BYTES = 256 * 1024 * 1024  # canvases held at once, all visitors together
BLOB_TTL_S = 600.0
PARTS = ("background", "composite", "layer")
_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_BLOB_ID}}}")
_FORM_SLACK = 64 * 1024

logger = logging.getLogger("webapp.editor")


class EditorBlobs:
    """Let only the region editor's `accept_blobs` through, bounded (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: AppSettings,
        issued: Issued,
        editor: Callable[[], Any],
        allowance: Allowance | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.settings = settings
        self.issued = issued
        self.editor = editor
        self.allowance = allowance
        self.clock = clock
        self._arrived: collections.OrderedDict[str, tuple[str, float, int]] = collections.OrderedDict()
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].rstrip("/").endswith("/component_server"):
            await self.app(scope, receive, send)
            return
        editor = self.editor()
        body = await read_body(receive, BLOB_BYTES + _FORM_SLACK) if scope["method"] == "POST" else b""
        why = "too large" if body is None else await self._why_not(scope, body, editor)
        if why:
            logger.info("component server: refused (%s)", why)
            status = 413 if why == "too large" else 403
            await refusal(status, error_text("editor_blobs", why=why))(scope, receive, send)
            return
        if self.allowance is not None:
            refused = self.allowance.spend(scope_visitor(scope, self.settings), len(body))
            if refused is not None:
                await refused(scope, receive, send)
                return
        await self.app(scope, replay(body, receive), send)

    async def _why_not(self, scope: Scope, body: bytes, editor: Any) -> str | None:
        """Why this request may not reach the editor, or None."""
        if editor is None or scope["method"] != "POST":
            return "not served"
        if not (dict(scope.get("headers") or []).get(b"content-type", b"")).startswith(
            b"multipart/form-data"
        ):
            return "not a canvas"
        try:
            form = await Request(scope, replay(body, _never)).form(max_files=1, max_fields=8)
        except Exception:  # a malformed body is the sender's problem, never a traceback here
            return "malformed"
        try:
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            files = [v for _, v in form.multi_items() if not isinstance(v, str)]
            if fields.get("fn_name") != "accept_blobs" or fields.get("component_id") != str(editor._id):
                return "not served"
            session = fields.get("session_hash", "")
            if not self.issued.seen(session):
                return "no such session"
            index = fields.get("index", "null")
            if fields.get("type") not in PARTS or not _ID.fullmatch(fields.get("id", "")):
                return "not a canvas"
            if index not in ("", "null") and not (index.isdigit() and int(index) < MAX_LAYERS):
                return f"at most {MAX_LAYERS} layers"
            if len(files) != 1:
                return "not a canvas"
            data = await files[0].read(BLOB_BYTES + 1)
            why = _image_why_not(data)
            if why:
                return why
        finally:
            await form.close()
        return self._arrived_now(fields["id"], session, len(data), editor)

    def _arrived_now(self, blob_id: str, session: str, size: int, editor: Any) -> str | None:
        """Remember each painting's arrival and size, dropping the expired and a session's oldest;
        refuse when all of them together would hold more than `HELD_BYTES`."""
        now = self.clock()
        storage = editor.blob_storage
        with self._lock:
            old_session, _, held = self._arrived.get(blob_id, (session, now, 0))
            if old_session != session:
                return "not your painting"
            self._arrived[blob_id] = (session, now, held + size)
            self._arrived.move_to_end(blob_id)
            mine = [i for i, (s, _, _) in self._arrived.items() if s == session]
            stale = [i for i, (_, t, _) in self._arrived.items() if now - t > BLOB_TTL_S]
            for old in set(stale) | set(mine[:-IDS_PER_SESSION]):
                self._arrived.pop(old, None)
                storage.pop(old, None)
            held_now = sum(b for i, (_, _, b) in self._arrived.items() if i == blob_id or i in storage)
            if held_now > HELD_BYTES:
                self._arrived.pop(blob_id, None)
                storage.pop(blob_id, None)
                return "the server is busy"
        return None


def _image_why_not(data: bytes) -> str | None:
    """Why these bytes are not a canvas the editor sends (a PNG or JPEG within the bounds), or None."""
    if len(data) > BLOB_BYTES:
        return "too large"
    try:
        with Image.open(io.BytesIO(data)) as image:  # the header only
            if image.format not in ("PNG", "JPEG", "WEBP"):
                return "not a canvas"
            if image.width * image.height > BLOB_PIXELS:
                return "too many pixels"
    except (OSError, ValueError, Image.DecompressionBombError):
        return "not a canvas"
    return None


async def _never() -> dict:
    return {"type": "http.disconnect"}
