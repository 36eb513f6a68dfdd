"""Uploads: a budget per visitor per minute, and a record of who uploaded what (for the gate).

The budget (when a rate limit is set) allows, per edit per minute the rate limit allows, 10 files and
4 uploads of the largest allowed size (an edit takes at most 3 images). Image bytes sent inside JSON
(the `edit` endpoint, MCP) and the region editor's canvases count against the same bytes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.gate import Issued
from webapp.middleware._asgi import content_length, header, metered, refusal, scope_visitor, size_text
from webapp.settings import AppSettings
from webapp.texts import error_text
from webapp.window import Window

UPLOAD_FILES_PER_EDIT = 10
UPLOAD_SIZES_PER_EDIT = 4
MAX_UPLOAD_ANSWER = 1024 * 1024  # an upload's answer (a list of paths) larger than this is not read


def is_upload(scope: Scope) -> bool:
    """True for `POST …/upload`."""
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and scope["path"].rstrip("/").endswith("/upload")
    )


class Allowance:
    """Files and bytes per visitor per minute, shared by every route that receives images."""

    def __init__(self, files: int, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.files, self.size = files, size
        self.file_window, self.byte_window = Window(clock=clock), Window(clock=clock)

    @classmethod
    def for_settings(cls, settings: AppSettings) -> Allowance | None:
        """The allowance these settings call for (none without a rate limit)."""
        if not settings.rate_limit:
            return None
        return cls(
            UPLOAD_FILES_PER_EDIT * settings.rate_limit,
            UPLOAD_SIZES_PER_EDIT * settings.max_upload_bytes * settings.rate_limit,
        )

    def spent(self, key: str, extra_bytes: int = 0) -> bool:
        """True when `key` has used its files or bytes (with `extra_bytes` more)."""
        return (
            self.file_window.total(key) > self.files or self.byte_window.total(key) + extra_bytes > self.size
        )

    def spend(self, key: str, size: int) -> Response | None:
        """Count `size` bytes for `key`, or the refusal when they do not fit (nothing counted)."""
        if self.byte_window.take([key], self.size, size):
            return self.refusal(key)
        return None

    def refusal(self, key: str) -> Response:
        """HTTP 429 saying what the budget is and when it frees up."""
        wait = max(self.file_window.retry_after(key), self.byte_window.retry_after(key))
        message = error_text("uploads", files=self.files, size=size_text(self.size), wait=round(wait + 0.5))
        return refusal(429, message, wait)


class _PartCounter:
    """Counts the parts of a multipart body as it streams by: each boundary not closing the body."""

    def __init__(self, content_type: str | None) -> None:
        match = re.search(r'boundary="?([^";]+)"?', content_type or "")
        self.delimiter = b"--" + match[1].encode("latin-1") if match else None
        self.tail = b""

    def feed(self, chunk: bytes) -> int:
        """The parts that begin in `chunk` (with what came before it)."""
        if self.delimiter is None:
            return 0
        data, size, parts = self.tail + chunk, len(self.delimiter), 0
        position = data.find(self.delimiter)
        while position != -1 and position + size + 2 <= len(data):
            parts += data[position + size : position + size + 2] != b"--"
            position = data.find(self.delimiter, position + 1)
        self.tail = data[-(size + 1) :]
        return parts


class UploadBudget:
    """Per visitor, at most the allowance's files and bytes per minute; beyond, HTTP 429 with
    Retry-After. A request over what is left is refused by its Content-Length before it is read, or
    cut as soon as its streamed parts or bytes pass the budget."""

    def __init__(self, app: ASGIApp, settings: AppSettings, allowance: Allowance) -> None:
        self.app = app
        self.settings = settings
        self.allowance = allowance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_upload(scope):
            await self.app(scope, receive, send)
            return
        key = scope_visitor(scope, self.settings)
        allowance = self.allowance
        used_up = (
            allowance.file_window.total(key) >= allowance.files
            or allowance.byte_window.total(key) >= allowance.size
        )
        if used_up or allowance.spent(key, content_length(scope) or 0):
            await allowance.refusal(key)(scope, receive, send)
            return
        parts = _PartCounter(header(scope, b"content-type"))

        def check(chunk: bytes) -> Response | None:
            allowance.byte_window.add(key, len(chunk))
            allowance.file_window.add(key, parts.feed(chunk))
            return allowance.refusal(key) if allowance.spent(key) else None

        await metered(self.app, scope, receive, send, check)


class IssueUploads:
    """Record the files each visitor uploaded (from the upload's answer), so the gate admits them
    from that visitor's events and no one else's."""

    def __init__(self, app: ASGIApp, settings: AppSettings, issued: Issued) -> None:
        self.app = app
        self.settings = settings
        self.issued = issued

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_upload(scope):
            await self.app(scope, receive, send)
            return
        status, chunks, size = 0, [], 0
        visitor = scope_visitor(scope, self.settings)

        async def observed(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200 and size <= MAX_UPLOAD_ANSWER:
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if not message.get("more_body", False):
                    self._record(visitor, b"".join(chunks))  # before the browser can send them back
            await send(message)

        await self.app(scope, receive, observed)

    def _record(self, visitor: str, answer: bytes) -> None:
        try:
            paths = json.loads(answer)
        except ValueError:
            return
        if isinstance(paths, list):
            self.issued.upload(visitor, [p for p in paths if isinstance(p, str)])
