"""Request bodies, capped per route: page events need small bodies; only the `edit` endpoint and MCP
carry images inside JSON, and those bytes count against the visitor's upload allowance.

Gradio's `max_file_size` covers uploads only; without this a JSON body (a data URI sent to any event)
would be unbounded, and every event would accept one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from webapp.middleware._asgi import content_length, read_body, refusal, replay, scope_visitor, size_text
from webapp.middleware.uploads import Allowance, is_upload
from webapp.settings import AppSettings
from webapp.texts import error_text

PAGE_BODY = 1024 * 1024  # every body but uploads, the editor's canvases and image-carrying API calls
BODY_IMAGES = 3
BODY_SLACK = 1024 * 1024
_BODYLESS = ("GET", "HEAD", "OPTIONS")  # the app reads no body of these
_IMAGE_ROUTES = ("/call/edit", "/run/edit")  # the edit endpoint by name
_EVENT_ROUTES = ("/queue/join", "/run/predict")  # any event by fn_index


def max_request_body(max_upload_bytes: int) -> int:
    """The cap of an image-carrying body: 3 images as base64 of `max_upload_bytes`, + 1 MiB."""
    return BODY_IMAGES * 4 * math.ceil(max_upload_bytes / 3) + BODY_SLACK


class BodyCap:
    """Answer 413 to a body over `PAGE_BODY`, unless it is an image-carrying API call: the `edit`
    endpoint (by name, or by `fn_index` in `image_fns()`) or MCP (`mcp_prefix`), capped at
    `max_request_body` and charged to the visitor's `allowance` (429 beyond it). Uploads and the
    component server have their own guards."""

    def __init__(
        self,
        app: ASGIApp,
        settings: AppSettings,
        allowance: Allowance | None = None,
        image_fns: Callable[[], Collection[int]] = tuple,
        mcp_prefix: str = "/gradio_api/mcp",
        page_limit: int = PAGE_BODY,
    ) -> None:
        self.app = app
        self.settings = settings
        self.allowance = allowance
        self.image_fns = image_fns
        self.mcp_prefix = mcp_prefix
        self.page_limit = page_limit
        self.limit = max(page_limit, max_request_body(settings.max_upload_bytes))

    def _too_big(self, limit: int):
        return refusal(413, error_text("body_size", size=size_text(limit)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").rstrip("/")
        if (
            scope["type"] != "http"
            or scope["method"] in _BODYLESS
            or is_upload(scope)
            or path.endswith("/component_server")
        ):
            await self.app(scope, receive, send)
            return
        length = content_length(scope)
        if length is not None and length > self.limit:
            await self._too_big(self.limit)(scope, receive, send)
            return
        body = await read_body(receive, self.limit)
        if body is None:
            await self._too_big(self.limit)(scope, receive, send)
            return
        if len(body) > self.page_limit:
            if not self._carries_images(path, body):
                await self._too_big(self.page_limit)(scope, receive, send)
                return
            if self.allowance is not None:
                refused = self.allowance.spend(scope_visitor(scope, self.settings), len(body))
                if refused is not None:
                    await refused(scope, receive, send)
                    return
        await self.app(scope, replay(body, receive), send)

    def _carries_images(self, path: str, body: bytes) -> bool:
        if path.endswith(_IMAGE_ROUTES) or path.startswith(self.mcp_prefix):
            return True
        if not path.endswith(_EVENT_ROUTES):
            return False
        try:
            fn_index = json.loads(body).get("fn_index")
        except (ValueError, AttributeError):
            return False
        return isinstance(fn_index, int) and fn_index in self.image_fns()
