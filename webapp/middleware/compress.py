"""The app's page (GET `/`) gzipped for browsers that accept it.

Gradio compresses by the path's file extension, so the page, whose HTML carries the whole config
(240 KB here), went out plain to every first visit. Starlette's `GZipMiddleware` compresses it
(about 30 KB) when the request accepts gzip; large bodies are compressed on a worker thread.
It must sit outside every middleware that writes into the page (the login script, the language
switch's choice): they pass an encoded page on unchanged.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class CompressPage:
    """GET/HEAD of the page through `GZipMiddleware`; everything else passes as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = (scope.get("root_path") or "").rstrip("/")
        page = scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
        if page and scope["path"] in ("/", f"{root}/"):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
